"""Before/after review sheet: what an archivist looks at before trusting a master.

Layout (uint8 RGB, at most `max_width` wide):

    title
    [ original, scaled to the master's size ] [ master ]          (both shrunk to fit)
    [ crop of the original | crop of the master ]  x (sharpest region + up to 3 faces)

The original is enlarged with nearest-neighbour (shrunk with area), so it shows the scan's own
pixels, neither flattered nor smeared by an interpolator. Crops are 200 %: a window of the
master's pixels doubled with nearest-neighbour, beside the same region of the original at the
same displayed size.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tasks.files.atomic import atomic_write

Box = tuple[int, int, int, int]  # x, y, w, h

_GAP = 8
_LABEL_H = 22
_TITLE_H = 34
_BACKGROUND = (32, 32, 32)
_TEXT = (235, 235, 235)
_MAX_CROP = 256  # master px per crop window (512 px at 200 %)
_MAX_FACES = 3


def _to_uint8_rgb(values: np.ndarray) -> np.ndarray:
    if values.ndim == 2:
        values = np.repeat(values[:, :, None], 3, axis=2)
    if values.dtype == np.uint8:
        return values
    out = np.empty(values.shape, np.uint8)
    for y in range(0, values.shape[0], 256):  # a band at a time: a master is large, its float copies larger
        band = values[y : y + 256]
        if np.issubdtype(values.dtype, np.integer):
            out[y : y + 256] = band.astype(np.float32) / np.iinfo(values.dtype).max * 255.0 + 0.5
        else:
            out[y : y + 256] = np.clip(band, 0.0, 1.0) * 255.0 + 0.5
    return out


def _scale_to(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour when enlarging (the scan's own pixels), area when shrinking."""
    h, w = img.shape[:2]
    if (w, h) == (width, height):
        return img
    enlarging = width >= w and height >= h
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_NEAREST if enlarging else cv2.INTER_AREA)


_SEARCH_PIXELS = 4_000_000


def sharpest_window(master: np.ndarray, size: int) -> Box:
    """The size x size window of the master with the highest Laplacian variance (its finest detail)."""
    gray = cv2.cvtColor(_to_uint8_rgb(master), cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    size = min(size, h, w)
    # Large masters are searched on a grid of k x k blocks (at most ~4 MP of them): the Laplacian
    # and its square block-averaged at full resolution, a band of rows at a time, so the detail
    # measured is still the master's finest, without master-sized float maps.
    k = max(1, min(size, int(np.ceil(np.sqrt(h * w / _SEARCH_PIXELS)))))
    bh, bw, bs = h // k, w // k, max(1, size // k)
    moment1, moment2 = _laplacian_moments(gray, k)
    mean = cv2.boxFilter(moment1, -1, (bs, bs), normalize=True, borderType=cv2.BORDER_REFLECT_101)
    mean_sq = cv2.boxFilter(moment2, -1, (bs, bs), normalize=True, borderType=cv2.BORDER_REFLECT_101)
    var = mean_sq - mean * mean
    half = bs // 2  # the filter is centred: keep only windows fully inside the image
    valid = var[half : bh - (bs - half) + 1, half : bw - (bs - half) + 1]
    y, x = np.unravel_index(int(np.argmax(valid)), valid.shape)
    return min(int(x) * k, w - size), min(int(y) * k, h - size), size, size


def _laplacian_moments(gray: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the Laplacian and of its square over k x k blocks (k = 1: per pixel). Each band
    of rows is filtered with one real row either side (the 3x3 kernel's reach), so the bands
    put together are the whole image's Laplacian."""
    h, w = gray.shape
    bh, bw = h // k, w // k
    moment1, moment2 = np.empty((bh, bw), np.float32), np.empty((bh, bw), np.float32)
    rows = k * max(1, 256 // k)
    for y0 in range(0, bh * k, rows):
        y1 = min(bh * k, y0 + rows)
        a0, a1 = max(0, y0 - 1), min(h, y1 + 1)
        lap = cv2.Laplacian(gray[a0:a1], cv2.CV_32F, ksize=3)[y0 - a0 : y1 - a0, : bw * k]
        shape = (bw, (y1 - y0) // k)
        moment1[y0 // k : y1 // k] = lap if k == 1 else cv2.resize(lap, shape, interpolation=cv2.INTER_AREA)
        np.multiply(lap, lap, out=lap)
        moment2[y0 // k : y1 // k] = lap if k == 1 else cv2.resize(lap, shape, interpolation=cv2.INTER_AREA)
    return moment1, moment2


def _face_window(face: Box, sx: float, sy: float, size: int, mw: int, mh: int) -> Box:
    """A size x size window of the master centred on a face given in the original's pixels."""
    x, y, w, h = face
    cx, cy = (x + w / 2) * sx, (y + h / 2) * sy
    size = min(size, mw, mh)
    left = int(round(min(max(cx - size / 2, 0), mw - size)))
    top = int(round(min(max(cy - size / 2, 0), mh - size)))
    return left, top, size, size


@functools.lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans (shipped with matplotlib, a dependency): file names in archives are not ASCII,
    and OpenCV's Hershey fonts and Pillow's default font draw "Ødegård" as "?deg?rd"."""
    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"), size)
    except (ImportError, OSError):
        return ImageFont.load_default(size)


def _bar(width: int, height: int, text: str, size: int) -> np.ndarray:
    """A caption bar: `text` on the sheet's background, vertically centred."""
    bar = Image.new("RGB", (width, height), _BACKGROUND)
    ImageDraw.Draw(bar).text((6, height // 2), text, font=_font(size), fill=_TEXT, anchor="lm")
    return np.asarray(bar)


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    """`tile` with a caption bar above it."""
    return np.vstack([_bar(tile.shape[1], _LABEL_H, text, 13), tile])


def _hstack(tiles: Sequence[np.ndarray]) -> np.ndarray:
    height = max(t.shape[0] for t in tiles)
    parts: list[np.ndarray] = []
    for i, t in enumerate(tiles):
        if i:
            parts.append(np.full((height, _GAP, 3), _BACKGROUND, np.uint8))
        pad = np.full((height - t.shape[0], t.shape[1], 3), _BACKGROUND, np.uint8)
        parts.append(np.vstack([t, pad]))
    return np.hstack(parts)


def _vstack(rows: Sequence[np.ndarray], width: int) -> np.ndarray:
    parts: list[np.ndarray] = []
    for i, r in enumerate(rows):
        if i:
            parts.append(np.full((_GAP, width, 3), _BACKGROUND, np.uint8))
        parts.append(np.hstack([r, np.full((r.shape[0], width - r.shape[1], 3), _BACKGROUND, np.uint8)]))
    return np.vstack(parts)


def review_sheet(
    original_rgb: np.ndarray, master_rgb: np.ndarray, *, faces: Sequence[Box] = (), title: str,
    max_width: int = 2400,
) -> np.ndarray:
    """The review sheet as uint8 RGB. `faces`: boxes (x, y, w, h) in the original's pixels (at
    most 3 are shown). Images: float in [0, 1] or integer, RGB or grayscale."""
    if max_width < 200:
        raise ValueError(f"max_width must be >= 200, got {max_width}")
    original, master = _to_uint8_rgb(original_rgb), _to_uint8_rgb(master_rgb)
    oh, ow = original.shape[:2]
    mh, mw = master.shape[:2]
    sx, sy = mw / ow, mh / oh

    # Overview: both at the master's size, shrunk alike to fit side by side (the original goes
    # there directly: the same picture as via the master's size, without a huge intermediate).
    fit = min(1.0, (max_width - _GAP) / (2 * mw))
    vw, vh = max(1, int(mw * fit)), max(1, int(mh * fit))
    overview = _hstack([
        _label(_scale_to(original, vw, vh), "original (scaled to master size)"),
        _label(_scale_to(master, vw, vh), f"master {mw}x{mh}"),
    ])

    # Crops: a pair (original | master) per region, each crop shown at 2x its master pixels.
    window = max(8, min(_MAX_CROP, (max_width - 3 * _GAP) // 4))
    regions = [("sharpest region", sharpest_window(master, window))]
    regions += [(f"face {i + 1}", _face_window(f, sx, sy, window, mw, mh))
                for i, f in enumerate(list(faces)[:_MAX_FACES])]
    pairs = []
    for name, (x, y, w, h) in regions:
        shown = (2 * w, 2 * h)
        m_crop = cv2.resize(master[y : y + h, x : x + w], shown, interpolation=cv2.INTER_NEAREST)
        # The same region in the original's pixels (at least one), brought to the same size.
        ox0, oy0 = int(np.floor(x / sx)), int(np.floor(y / sy))
        ox1, oy1 = max(ox0 + 1, int(np.ceil((x + w) / sx))), max(oy0 + 1, int(np.ceil((y + h) / sy)))
        o_crop = _scale_to(original[oy0:oy1, ox0:ox1], *shown)
        pairs.append(_hstack([_label(o_crop, f"{name}: original"), _label(m_crop, f"{name}: master 200%")]))
    per_row = max(1, (max_width + _GAP) // (pairs[0].shape[1] + _GAP))
    crop_rows = [_hstack(pairs[i : i + per_row]) for i in range(0, len(pairs), per_row)]

    body = [overview, *crop_rows]
    width = min(max_width, max(r.shape[1] for r in body))
    return _vstack([_bar(width, _TITLE_H, title, 17), *body], width)


def write_review_sheet(path: str | os.PathLike[str], sheet: np.ndarray) -> None:
    """Write the sheet as PNG, atomically (a temporary file in the same folder, then renamed)."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not encode the review sheet ({sheet.shape}, {sheet.dtype}) as PNG")
    Path(path).parent.mkdir(parents=True, exist_ok=True)  # as the master and access writers do
    atomic_write(path, lambda temp: Path(temp).write_bytes(encoded.tobytes()))
