"""Synthetic print damage drawn over clean photographs, with the true mask: what the learned damage
detector (models.damage) is trained on and bench/diagnosis.py scores detectors against.

Drawn in place on float RGB in [0, 1], each mark blended over the photo with its own opacity:
  scratches  straight or curved (cubic Bezier) lines across much of the frame, bright (the paper's
             white where the emulsion is gone) or dark, 1-4 px wide, anti-aliased, opacity 0.4-1,
             sometimes softened (a scanner's blur of a scratch in the emulsion), fading along their
             length;
  fibres     thin dark curved hairs and lint lying on the print or the scanner glass;
  specks     dust, dark or bright, irregular blobs of radius 0.5-4 px.
The mask holds the pixels at least a quarter covered by a mark (its shape before opacity), as
tasks.demo.samples.scratch_and_dust does. Seeded by the caller's numpy Generator: the same
generator state gives the same marks. Pure numpy/OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tasks.demo import samples

_SHIFT = 4  # cv2 fixed-point bits: sub-pixel positions for anti-aliased strokes
_SUPERSAMPLE = 4  # specks are filled at 4x and area-averaged: exact coverage at sub-pixel sizes
COVERED = 0.25  # a pixel at least this covered by a mark is damage in the mask


@dataclass(frozen=True)
class DamageMix:
    """How many marks of each kind (inclusive ranges) and what they look like. Counts are per image
    drawn on; sizes are pixels at `scale` 1."""

    scratches: tuple[int, int] = (0, 3)
    fibres: tuple[int, int] = (0, 2)
    specks: tuple[int, int] = (0, 12)
    p_dark_scratch: float = 0.35
    p_curved: float = 0.5
    scratch_width: tuple[int, int] = (1, 4)
    p_bright_speck: float = 0.3
    speck_radius: tuple[float, float] = (0.5, 4.0)
    opacity: tuple[float, float] = (0.4, 1.0)
    p_soft: float = 0.4  # share of marks blurred a little (sigma up to 0.8 px)


# The bench's new cases (bench/diagnosis.py), one kind of mark each.
CURVED = DamageMix(scratches=(1, 4), fibres=(0, 0), specks=(0, 0), p_dark_scratch=0.0, p_curved=1.0)
DARK = DamageMix(scratches=(1, 4), fibres=(0, 0), specks=(0, 0), p_dark_scratch=1.0)
WIDE = DamageMix(scratches=(1, 3), fibres=(0, 0), specks=(0, 0), scratch_width=(3, 4))
FIBRES = DamageMix(scratches=(0, 0), fibres=(2, 5), specks=(0, 0))
BRIGHT_DUST = DamageMix(scratches=(0, 0), fibres=(0, 0), specks=(25, 25), p_bright_speck=1.0)
MIXED = DamageMix(scratches=(1, 3), fibres=(0, 3), specks=(5, 25))


def draw_damage(img: np.ndarray, rng: np.random.Generator, mix: DamageMix = DamageMix(), *,
                scale: float = 1.0) -> np.ndarray:
    """Draw a random mix of marks on `img` (float32 H x W x 3 in [0, 1], changed in place); the
    true mask (bool H x W). `scale` multiplies widths, radii and fibre lengths (a large scan)."""
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.float32:
        raise ValueError(f"expected float32 RGB (H, W, 3), got {img.dtype} {img.shape}")
    cover = np.zeros(img.shape[:2], np.float32)
    for _ in range(int(rng.integers(mix.scratches[0], mix.scratches[1] + 1))):
        draw_scratch(img, cover, rng, mix, scale)
    for _ in range(int(rng.integers(mix.fibres[0], mix.fibres[1] + 1))):
        draw_fibre(img, cover, rng, mix, scale)
    for _ in range(int(rng.integers(mix.specks[0], mix.specks[1] + 1))):
        draw_speck(img, cover, rng, mix, scale)
    return cover >= COVERED


def classic_scratch_and_dust(pixels: np.ndarray, scratches: int, dust: int = 0,
                             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The bench's original cases, unchanged (thin near-vertical bright lines, dark round dust):
    tasks.demo.samples.scratch_and_dust, uint8 in and out, with its true mask."""
    return samples.scratch_and_dust(pixels, scratches, dust, seed=seed)


def _colour(rng: np.random.Generator, bright: bool) -> np.ndarray:
    level = rng.uniform(0.82, 1.0) if bright else rng.uniform(0.0, 0.22)
    return np.clip(level + rng.uniform(-0.03, 0.03, 3), 0, 1).astype(np.float32)


def _blend(img: np.ndarray, cover: np.ndarray, local: np.ndarray, box: tuple[int, int, int, int],
           colour: np.ndarray, opacity: np.ndarray | float, rng: np.random.Generator, soft: float) -> None:
    """Blend one mark's coverage (`local`, 0-1, the box's size) into the image and the cover map."""
    y0, y1, x0, x1 = box
    if soft > 0:
        local = cv2.GaussianBlur(local, (0, 0), soft)
    alpha = (local * opacity)[:, :, None]
    region = img[y0:y1, x0:x1]
    region *= 1 - alpha
    region += alpha * colour
    np.maximum(cover[y0:y1, x0:x1], local, out=cover[y0:y1, x0:x1])


def _box(points: np.ndarray, margin: float, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    h, w = shape[:2]
    x0, y0 = np.floor(points.min(axis=0) - margin).astype(int)
    x1, y1 = np.ceil(points.max(axis=0) + margin).astype(int) + 1
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    return None if x0 >= x1 or y0 >= y1 else (int(y0), int(y1), int(x0), int(x1))


def _stroke(img: np.ndarray, cover: np.ndarray, points: np.ndarray, width: int, colour: np.ndarray,
            opacity: float, rng: np.random.Generator, soft: float, fade: bool) -> None:
    """An anti-aliased polyline `width` px wide through `points` (x, y), drawn in its bounding box."""
    box = _box(points, width + 3 * soft + 2, img.shape)
    if box is None:
        return
    y0, y1, x0, x1 = box
    canvas = np.zeros((y1 - y0, x1 - x0), np.uint8)
    fixed = np.rint((points - (x0, y0)) * (1 << _SHIFT)).astype(np.int32)
    cv2.polylines(canvas, [fixed], False, 255, int(width), cv2.LINE_AA, _SHIFT)
    local = canvas.astype(np.float32) / 255
    strength: np.ndarray | float = opacity
    if fade:  # scratches come and go along their length: a smooth random field over the box
        grid = rng.uniform(0.5, 1.0, (3, 3)).astype(np.float32)
        strength = opacity * cv2.resize(grid, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    _blend(img, cover, local, box, colour, strength, rng, soft)


def _softness(rng: np.random.Generator, mix: DamageMix) -> float:
    return float(rng.uniform(0.3, 0.8)) if rng.random() < mix.p_soft else 0.0


def draw_scratch(img: np.ndarray, cover: np.ndarray, rng: np.random.Generator, mix: DamageMix,
                 scale: float = 1.0) -> None:
    h, w = img.shape[:2]
    span = max(h, w)
    length = max(12.0, rng.uniform(0.2, 1.3) * span)
    # old prints are scratched along their long side more often than not
    angle = rng.uniform(70, 110) if rng.random() < 0.4 else rng.uniform(0, 180)
    if w > h and rng.random() < 0.5:
        angle -= 90
    direction = np.array([np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))])
    centre = np.array([rng.uniform(0, w), rng.uniform(0, h)])
    a, b = centre - direction * length / 2, centre + direction * length / 2
    if rng.random() < mix.p_curved:  # cubic Bezier: control points pushed sideways
        normal = np.array([-direction[1], direction[0]])
        c1 = a + (b - a) / 3 + normal * rng.uniform(-0.25, 0.25) * length
        c2 = a + 2 * (b - a) / 3 + normal * rng.uniform(-0.25, 0.25) * length
        t = np.linspace(0, 1, max(8, int(length / 4)))[:, None]
        points = (1 - t) ** 3 * a + 3 * (1 - t) ** 2 * t * c1 + 3 * (1 - t) * t ** 2 * c2 + t ** 3 * b
    else:
        points = np.stack([a, b])
    width = max(1, int(round(rng.integers(mix.scratch_width[0], mix.scratch_width[1] + 1) * scale)))
    bright = rng.random() >= mix.p_dark_scratch
    _stroke(img, cover, points, width, _colour(rng, bright), float(rng.uniform(*mix.opacity)), rng,
            _softness(rng, mix) * scale, fade=rng.random() < 0.5)


def draw_fibre(img: np.ndarray, cover: np.ndarray, rng: np.random.Generator, mix: DamageMix,
               scale: float = 1.0) -> None:
    """A hair or a textile fibre: a thin dark line that wanders (its heading drifts smoothly)."""
    h, w = img.shape[:2]
    length = rng.uniform(10, 70) * scale
    n = max(6, int(length / 2))
    turn = np.cumsum(rng.normal(0, 0.25, n))  # radians per step, accumulated: smooth curls
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(turn * 0.3)
    step = length / n
    xy = np.cumsum(np.stack([np.cos(heading), np.sin(heading)], axis=1) * step, axis=0)
    points = xy - xy.mean(axis=0) + (rng.uniform(0, w), rng.uniform(0, h))
    width = max(1, int(round((2 if rng.random() < 0.2 else 1) * scale)))
    _stroke(img, cover, points, width, _colour(rng, False), float(rng.uniform(0.5, 1.0)), rng,
            _softness(rng, mix) * scale, fade=False)


def draw_speck(img: np.ndarray, cover: np.ndarray, rng: np.random.Generator, mix: DamageMix,
               scale: float = 1.0) -> None:
    """A dust speck: an irregular blob (a polygon of jittered radii) filled at 4x, area-averaged."""
    h, w = img.shape[:2]
    lo, hi = mix.speck_radius
    radius = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) * scale  # small specks are the common ones
    centre = np.array([rng.uniform(0, w), rng.uniform(0, h)])
    box = _box(centre[None], radius * 1.4 + 2, img.shape)
    if box is None:
        return
    y0, y1, x0, x1 = box
    k = int(rng.integers(5, 10))
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    radii = radius * rng.uniform(0.6, 1.3, k)
    poly = centre + np.stack([np.cos(angles), np.sin(angles)], axis=1) * radii[:, None]
    s = _SUPERSAMPLE
    canvas = np.zeros(((y1 - y0) * s, (x1 - x0) * s), np.uint8)
    fixed = np.rint(((poly - (x0, y0)) * s - 0.5) * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(canvas, [fixed], 255, cv2.LINE_8, _SHIFT)
    local = cv2.resize(canvas.astype(np.float32) / 255, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    bright = rng.random() < mix.p_bright_speck
    soft = float(rng.uniform(0.3, 0.6)) * scale if rng.random() < mix.p_soft else 0.0
    _blend(img, cover, local, box, _colour(rng, bright), float(rng.uniform(0.6, 1.0)), rng, soft)
