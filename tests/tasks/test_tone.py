"""Tone and colour cleanup on real photographs with a synthetic fade and colour cast."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tasks.files.imageio import decode, to_float
from tasks.steps.tone import clahe_luminance, levels, measure_cast, to_lab, white_balance


def _rgb(shared_data: Path, name: str) -> np.ndarray:
    return to_float(decode(shared_data / name, max_pixels=10**9).pixels)


def _contrast(rgb: np.ndarray) -> float:
    """As the diagnosis measures it: luminance p99.5 - p0.5."""
    y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return float(np.percentile(y, 99.5) - np.percentile(y, 0.5))


def _fade(rgb: np.ndarray) -> np.ndarray:
    """A faded print: blacks lifted to 0.22, whites down to 0.80."""
    return (0.22 + 0.58 * rgb).astype(np.float32)


def _warm_cast(rgb: np.ndarray) -> np.ndarray:
    """A strong yellow-red cast as in faded colour prints: gains on R and B."""
    return np.clip(rgb * np.array([1.20, 1.0, 0.70], np.float32), 0, 1).astype(np.float32)


def _local_contrast(rgb: np.ndarray) -> float:
    y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return float(np.abs(y - cv2.GaussianBlur(y, (0, 0), 8)).mean())


IMAGES = ["sr_gt/McMaster/1.tif", "sr_gt/CBSD68/102061.png", "sr_gt/CBSD68/19021.png"]


@pytest.mark.parametrize("name", IMAGES)
def test_levels_restores_a_faded_scans_range(shared_data, name):
    clean = _rgb(shared_data, name)
    faded = _fade(clean)
    out, params = levels(faded, black_clip=0.002, white_clip=0.002, strength=1.0)
    before, after, target = _contrast(faded), _contrast(out), _contrast(clean)
    print(f"{name}: contrast clean {target:.3f}, faded {before:.3f}, levels {after:.3f}")
    assert abs(after - target) < 0.3 * abs(before - target)
    # never clips more than the given share: pixels with a channel beyond the black/white point
    assert (faded.min(axis=2) < params["black_point"]).mean() <= 0.002
    assert (faded.max(axis=2) > params["white_point"]).mean() <= 0.002
    assert params["gain"] > 1.5 and 0.0 <= out.min() and out.max() <= 1.0


def test_levels_strength_caps_and_16bit(shared_data):
    rgb = to_float(decode(shared_data / "edge_cases/tree_alpha_16bit.png", max_pixels=10**9).pixels)
    faded = _fade(rgb)
    half, _ = levels(faded, black_clip=0.001, white_clip=0.001, strength=0.5)
    full, _ = levels(faded, black_clip=0.001, white_clip=0.001, strength=1.0)
    assert _contrast(faded) < _contrast(half) < _contrast(full)
    flat = np.full((32, 32, 3), 0.5, np.float32) + np.linspace(0, 0.01, 32, dtype=np.float32)[None, :, None]
    for base in (0.5, 0.02, 0.97):  # a near-flat scan is not stretched into noise, wherever it lies
        out, params = levels(flat - 0.5 + base, black_clip=0.0, white_clip=0.0, strength=1.0)
        assert params["gain"] <= 4.0 + 1e-6 and 0.0 <= out.min() and out.max() <= 1.0


def test_clahe_raises_local_contrast_without_shifting_colour(shared_data):
    clean = _rgb(shared_data, "sr_gt/McMaster/5.tif")
    faded = _fade(clean)
    before = faded.copy()
    out, params = clahe_luminance(faded, clip_limit=2.0, tiles=8, strength=1.0)
    assert np.array_equal(faded, before)
    print(f"local contrast: clean {_local_contrast(clean):.4f}, faded {_local_contrast(faded):.4f}, "
          f"CLAHE {_local_contrast(out):.4f}")
    assert _local_contrast(out) > 1.3 * _local_contrast(faded)
    lab_in, lab_out = to_lab(faded), to_lab(out)
    inside = (out > 0.001).all(axis=2) & (out < 0.999).all(axis=2)  # out of gamut pixels clip
    assert np.median(np.abs(lab_out[..., 1:] - lab_in[..., 1:])[inside]) < 0.05
    assert np.percentile(np.abs(lab_out[..., 1:] - lab_in[..., 1:])[inside], 99) < 1.0
    assert params["space"] == "Lab L" and out.dtype == np.float32


def _cast_distances(clean: np.ndarray, method: str) -> tuple[float, float]:
    """Distance of the grey-world cast (Lab a, b) from the clean photo's: with the cast, and after."""
    cast = _warm_cast(clean)
    out, params = white_balance(cast, method=method, strength=1.0)
    assert params["applied"] and 0.0 <= out.min() and out.max() <= 1.0 and out.dtype == np.float32
    c_clean = measure_cast(clean)

    def distance(c: dict) -> float:
        return float(np.hypot(c["a"] - c_clean["a"], c["b"] - c_clean["b"]))

    return distance(measure_cast(cast)), distance(measure_cast(out))


@pytest.mark.parametrize(("method", "names"), [
    ("grey-edge", IMAGES),
    # grey-world's assumption (the scene averages to grey) holds for these two, not for McMaster/1
    ("grey-world", IMAGES[1:]),
    ("gains", IMAGES[1:]),
])
def test_white_balance_moves_the_cast_towards_the_clean_image(shared_data, method, names):
    ratios = []
    for name in names:
        before, after = _cast_distances(_rgb(shared_data, name), method)
        print(f"{method} {name}: distance to the clean photo's cast {before:.1f} -> {after:.1f}")
        assert after < 0.75 * before
        ratios.append(after / before)
    assert np.mean(ratios) < 0.6


def test_grey_edge_survives_a_colourful_scene_where_grey_world_fails(shared_data):
    """McMaster/1 is itself far from grey on average (grey-world cast ~22): grey-world 'corrects'
    the scene's own colour and ends further from the truth than the cast; grey-edge does not."""
    clean = _rgb(shared_data, "sr_gt/McMaster/1.tif")
    before, grey_world = _cast_distances(clean, "grey-world")
    _, grey_edge = _cast_distances(clean, "grey-edge")
    assert grey_world > before > grey_edge


def test_white_balance_keeps_gray_gray(shared_data):
    gray = cv2.cvtColor(_rgb(shared_data, "sr_gt/CBSD68/19021.png"), cv2.COLOR_RGB2GRAY)
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    for method in ("grey-edge", "grey-world", "gains"):
        out, _ = white_balance(rgb, method=method, strength=1.0)
        assert np.abs(out - rgb).max() < 2e-3


def test_strength_zero_is_exactly_a_no_op(shared_data):
    rgb = _warm_cast(_fade(_rgb(shared_data, "sr_gt/McMaster/1.tif")))
    for fn, kwargs in ((levels, {"black_clip": 0.01, "white_clip": 0.01}), (clahe_luminance, {}),
                       (white_balance, {"method": "grey-world"}), (white_balance, {"method": "gains"}),
                       (white_balance, {"method": "grey-edge"})):
        out, params = fn(rgb, strength=0.0, **kwargs)
        assert np.array_equal(out, rgb) and params["applied"] is False
    with pytest.raises(ValueError):
        levels(rgb, black_clip=0.01, white_clip=0.01, strength=1.5)
