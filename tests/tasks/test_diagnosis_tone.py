"""Clipping, contrast and colour cast on real photos with known tone changes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tasks.demo import samples
from tasks.files.imageio import DecodedImage, decode
from tasks.qa.diagnosis.tone import (
    FADED_CONTRAST,
    TONED_RESIDUAL,
    cast_is_reported,
    clipping,
    colour_cast,
    contrast,
    hue_name,
    is_toned_print,
)
from tasks.qa.diagnosis.views import Views


def _views(pixels: np.ndarray) -> Views:
    return Views(DecodedImage(pixels, None, 16 if pixels.dtype == np.uint16 else 8, None, None))


@pytest.fixture(scope="module")
def clean(shared_data) -> np.ndarray:
    return decode(shared_data / "sr_gt/CBSD68/102061.png", max_pixels=10**9).pixels


def test_warm_and_cool_casts_on_a_monochrome_print(clean):
    print_ = cv2.cvtColor(cv2.cvtColor(clean, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    neutral, spread = colour_cast(_views(print_))
    assert neutral["magnitude"] < 1 and not cast_is_reported(neutral, spread)
    warm, spread = colour_cast(_views(samples.colour_cast(print_, 0.06)))
    assert warm["b"] > 5 and cast_is_reported(warm, spread)
    assert hue_name(warm["a"], warm["b"]) in ("yellow", "orange")
    cool, _ = colour_cast(_views(samples.colour_cast(print_, -0.06)))
    assert cool["b"] < -5


def test_warm_cast_raises_b_on_a_colour_photo(clean):
    before, _ = colour_cast(_views(clean))
    after, _ = colour_cast(_views(samples.colour_cast(clean, 0.06)))
    assert after["b"] > before["b"] + 5


def test_grayscale_has_no_cast(clean):
    gray = cv2.cvtColor(clean, cv2.COLOR_RGB2GRAY)
    assert colour_cast(_views(gray))[0] == {"a": 0.0, "b": 0.0, "magnitude": 0.0, "chroma_residual": 0.0}


def test_fading_lowers_contrast(clean):
    assert contrast(_views(clean)) > FADED_CONTRAST > contrast(_views(samples.fade(clean, 0.6)))


def test_clipping_per_channel_and_in_16bit(clean):
    px = clean.copy()
    px[:50, :100, 0] = 255  # 5000 px of red blown out
    px[-20:, :, :] = 0
    shares = clipping(_views(px))
    n = px.shape[0] * px.shape[1]
    assert shares["white"][0] >= 5000 / n and shares["white"][1] < shares["white"][0]
    assert all(s >= 20 * px.shape[1] / n for s in shares["black"])
    assert clipping(_views(px.astype(np.uint16) * 257)) == shares


def _sepia(gray_rgb: np.ndarray) -> np.ndarray:
    """Sepia toning as a toner does it: one brown hue, its strength set by the silver's density."""
    g = gray_rgb[:, :, 0].astype(np.float32) / 255.0
    toned = np.stack([g * 1.07 + 0.03, g * 0.95 + 0.02, g * 0.78], axis=2)
    return np.clip(np.rint(toned * 255), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", ["sr_gt/CBSD68/102061.png", "sr_gt/McMaster/5.tif", "sr_gt/CBSD68/19021.png"])
def test_toned_prints_are_told_from_colour_photographs(shared_data, name):
    colour = decode(shared_data / name, max_pixels=10**9).pixels
    gray = cv2.cvtColor(cv2.cvtColor(colour, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    photo, _ = colour_cast(_views(colour))
    toned, _ = colour_cast(_views(_sepia(gray)))
    print(f"{name}: chroma residual colour {photo['chroma_residual']}, sepia {toned['chroma_residual']}")
    assert not is_toned_print(photo) and photo["chroma_residual"] > 2 * TONED_RESIDUAL
    assert is_toned_print(toned) and toned["chroma_residual"] < TONED_RESIDUAL / 3


@pytest.mark.parametrize(("name", "toned"), [("old_w_scratch/b.png", True), ("old_w_scratch/d.png", True),
                                             ("old/e.png", False), ("old/d.png", False)])
def test_real_old_prints(shared_data, name, toned):
    cast, _ = colour_cast(_views(decode(shared_data / "old_photos" / name, max_pixels=10**9).pixels))
    assert is_toned_print(cast) is toned, cast
