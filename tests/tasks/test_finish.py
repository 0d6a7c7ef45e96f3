"""Finishing touches on real photographs: colour transfer, grain, sharpening (and the blend)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tasks.files.imageio import decode, to_float
from tasks.steps.deblur import gaussian_psf
from tasks.steps.finish import add_grain, color_transfer, consistency, fidelity_blend, sharpen
from tasks.steps.restore import resize
from tasks.steps.tone import from_lab, to_lab


def _rgb(shared_data: Path, name: str) -> np.ndarray:
    return to_float(decode(shared_data / name, max_pixels=10**9).pixels)


def _delta_e(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIE76 colour difference."""
    return float(np.linalg.norm(to_lab(a) - to_lab(b), axis=2).mean())


def _model_shift(rgb: np.ndarray) -> np.ndarray:
    """What an upscaler does to colour: a tint, a little more saturation and contrast."""
    lab = to_lab(rgb)
    lab[..., 0] = (lab[..., 0] - 50) * 1.08 + 52
    lab[..., 1] = lab[..., 1] * 1.15 + 4
    lab[..., 2] = lab[..., 2] * 1.15 - 5
    return from_lab(lab)


@pytest.mark.parametrize("name", ["sr_gt/McMaster/1.tif", "sr_gt/CBSD68/19021.png", "old_photos/old/b.png"])
def test_color_transfer_undoes_a_models_colour_shift(shared_data, name):
    reference = _rgb(shared_data, name)  # the restored scan, at its own size
    h, w = reference.shape[:2]
    result = _model_shift(resize(reference, 2 * w, 2 * h))  # the upscaled master, shifted
    before = result.copy()
    out, params = color_transfer(result, reference, strength=1.0)
    assert np.array_equal(result, before) and out.shape == result.shape and out.dtype == np.float32

    def error(x: np.ndarray) -> float:
        return _delta_e(cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA), reference)

    print(f"{name}: mean dE vs the reference {error(result):.2f} -> {error(out):.2f}")
    assert error(out) < 0.55 * error(result)  # McMaster/1 is saturated: the shift clipped out of gamut
    assert np.allclose(params["reference_mean"], to_lab(reference).reshape(-1, 3).mean(axis=0), atol=0.01)
    half, _ = color_transfer(result, reference, strength=0.5)
    assert error(out) < error(half) < error(result)


def test_grain_is_seeded_subtle_and_zero_mean():
    grey = np.full((256, 256, 3), 0.5, np.float32)
    a, params = add_grain(grey, amount=0.01, seed=7, size=1.0)
    b, _ = add_grain(grey, amount=0.01, seed=7, size=1.0)
    c, _ = add_grain(grey, amount=0.01, seed=8, size=1.0)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    delta = a - grey
    assert abs(float(delta.mean())) < 1e-3  # zero-mean
    assert float(delta.std()) == pytest.approx(0.01, rel=0.05)  # `amount` at mid-grey
    assert np.array_equal(delta[..., 0], delta[..., 1])  # monochrome: no colour noise
    assert params["seed"] == 7 and params["applied"]
    # black and white stay clean (the grain is luminance-weighted)
    ends = np.zeros((64, 64, 3), np.float32)
    ends[:, 32:] = 1.0
    assert np.array_equal(add_grain(ends, amount=0.05, seed=1)[0], ends)


def test_grain_on_a_real_photo_and_no_op(shared_data):
    rgb = _rgb(shared_data, "sr_gt/CBSD68/102061.png")
    out, _ = add_grain(rgb, amount=0.01, seed=3, size=1.5)
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert abs(float((out - rgb).mean())) < 5e-4
    same, params = add_grain(rgb, amount=0.0, seed=3)
    assert np.array_equal(same, rgb) and params["applied"] is False


def test_sharpen_is_minimal_and_a_no_op_at_zero(shared_data):
    rgb = cv2.GaussianBlur(_rgb(shared_data, "sr_gt/McMaster/5.tif"), (0, 0), 1.2)
    before = rgb.copy()
    same, params = sharpen(rgb, amount=0.0, radius=1.0, threshold=0.01)
    assert np.array_equal(same, rgb) and params["applied"] is False

    out, _ = sharpen(rgb, amount=0.5, radius=1.0, threshold=0.005)
    assert np.array_equal(rgb, before)

    def laplacian_var(x: np.ndarray) -> float:
        return float(cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.CV_32F).var())

    assert laplacian_var(out) > 1.2 * laplacian_var(rgb)
    ycc_in, ycc_out = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb), cv2.cvtColor(out, cv2.COLOR_RGB2YCrCb)
    unclipped = (out > 0).all(axis=2) & (out < 1).all(axis=2)
    assert np.abs(ycc_out[..., 1:] - ycc_in[..., 1:])[unclipped].max() < 1e-4  # luminance only

    # detail below the threshold (fine grain) is left alone
    rng = np.random.default_rng(0)
    grain = (0.5 + rng.normal(0, 0.002, (64, 64, 1))).repeat(3, axis=2).astype(np.float32)
    assert np.array_equal(sharpen(grain, amount=1.0, radius=1.0, threshold=0.02)[0], grain)


def test_finishing_keeps_grayscale_gray_and_16bit_precision(shared_data):
    rgb16 = to_float(decode(shared_data / "edge_cases/tree_alpha_16bit.png", max_pixels=10**9).pixels)
    gray = cv2.cvtColor(rgb16, cv2.COLOR_RGB2GRAY)
    gray3 = np.repeat(gray[:, :, None], 3, axis=2)
    for out in (sharpen(gray3, amount=0.4)[0], add_grain(gray3, amount=0.01, seed=0)[0]):
        assert np.abs(out - out[:, :, :1]).max() < 1e-6
    out, _ = color_transfer(gray3, gray3, strength=1.0)  # a gray reference adds no colour
    assert np.abs(out - out[:, :, :1]).max() < 2e-3
    assert np.abs(out - gray3).max() < 2e-3
    sharp, _ = sharpen(rgb16, amount=0.4)
    assert np.abs(sharp * 255 - np.round(sharp * 255)).max() > 0.01  # not rounded to 8 bits


def test_fidelity_blend_unchanged(shared_data):
    restored = _rgb(shared_data, "sr_gt/CBSD68/19021.png")
    h, w = restored.shape[:2]
    ai = np.zeros((2 * h, 2 * w, 3), np.float32)
    assert fidelity_blend(ai, restored, 0.0) is ai
    np.testing.assert_allclose(fidelity_blend(ai, restored, 1.0), resize(restored, 2 * w, 2 * h), atol=1e-6)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(cv2.PSNR(a.astype(np.float64), b.astype(np.float64), 1.0))


def _area(x: np.ndarray, w: int, h: int) -> np.ndarray:
    return cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("name", ["sr_gt/McMaster/5.tif", "sr_gt/CBSD68/19021.png"])
def test_consistency_puts_what_a_model_moved_back_onto_the_scan(shared_data, name):
    truth = _rgb(shared_data, name)
    h, w = (truth.shape[0] // 2) * 2, (truth.shape[1] // 2) * 2
    truth = truth[:h, :w]
    scan = _area(truth, w // 2, h // 2)
    # What a GAN upscaler does at the scan's scale: oversharpened edges and a colour shift.
    guess = resize(scan, w, h)
    guess = _model_shift(np.clip(guess + 1.5 * (guess - cv2.GaussianBlur(guess, (0, 0), 2.0)), 0, 1))
    before = guess.copy()
    out, params = consistency(guess, scan, strength=1.0, iterations=2)
    assert np.array_equal(guess, before) and out.shape == guess.shape and out.dtype == np.float32
    seen_before, seen_after = _psnr(_area(guess, w // 2, h // 2), scan), _psnr(_area(out, w // 2, h // 2), scan)
    print(f"{name}: at the scan's size {seen_before:.1f} -> {seen_after:.1f} dB; "
          f"against the truth {_psnr(guess, truth):.2f} -> {_psnr(out, truth):.2f} dB; {params['rms_difference']}")
    assert seen_after > 38.0 and seen_after > seen_before + 15.0
    assert _psnr(out, truth) > _psnr(guess, truth) + 3.0  # closer to the real picture, not just to the scan
    assert params["applied"] and params["rms_difference"][-1] < 0.2 * params["rms_difference"][0]
    same, off = consistency(guess, scan, strength=0.0)
    assert same is guess and off["applied"] is False
    with pytest.raises(ValueError, match="strength"):
        consistency(guess, scan, strength=1.5)


def test_consistency_through_the_diagnosed_blur_keeps_the_master_sharp(shared_data):
    truth = _rgb(shared_data, "sr_gt/McMaster/8.tif")
    h, w = (truth.shape[0] // 2) * 2, (truth.shape[1] // 2) * 2
    truth = truth[:h, :w]
    psf = gaussian_psf(1.2)
    blurred_scan = cv2.filter2D(_area(truth, w // 2, h // 2), -1, psf, borderType=cv2.BORDER_REFLECT_101)
    sharp_guess = resize(_area(truth, w // 2, h // 2), w, h)  # what a model that undid the blur might give
    plain, _ = consistency(sharp_guess, blurred_scan)  # ignores the blur: pulls the master back to it
    aware, params = consistency(sharp_guess, blurred_scan, psf=psf)
    print(f"vs truth: guess {_psnr(sharp_guess, truth):.2f}, plain {_psnr(plain, truth):.2f}, "
          f"through the PSF {_psnr(aware, truth):.2f} dB")
    assert params["psf_size"] == psf.shape[0]
    assert _psnr(aware, truth) > _psnr(plain, truth) + 1.0
    assert _psnr(aware, truth) > _psnr(sharp_guess, truth) - 0.3  # keeps what the model recovered
    reblurred = cv2.filter2D(_area(aware, w // 2, h // 2), -1, psf, borderType=cv2.BORDER_REFLECT_101)
    assert _psnr(reblurred, blurred_scan) > _psnr(
        cv2.filter2D(_area(sharp_guess, w // 2, h // 2), -1, psf, borderType=cv2.BORDER_REFLECT_101), blurred_scan)


@pytest.mark.parametrize("size", [(72, 90, 144, 180), (250, 300, 960, 1152), (97, 101, 388, 404), (300, 280, 150, 140)])
def test_band_by_band_resampling_is_the_whole_image_resize(shared_data, size):
    """Finishing resamples the restored scan to the master's size a band of rows at a time (a
    24 MP scan's x2 master is 1.15 GB in float32): the bands put together are the whole resize,
    up to float rounding, for integer and fractional scales, enlarging (Lanczos, cubic) and
    shrinking (area)."""
    from tasks.steps.restore import aligned_bands, resize_rows

    h, w, big_h, big_w = size
    src = cv2.resize(_rgb(shared_data, "sr_gt/McMaster/1.tif"), (w, h), interpolation=cv2.INTER_AREA)
    for interpolation in (None, cv2.INTER_CUBIC):
        whole = resize(src, big_w, big_h) if interpolation is None else \
            cv2.resize(src, (big_w, big_h), interpolation=interpolation)
        bands = aligned_bands(big_h, h)
        pieces = np.concatenate([resize_rows(src, big_w, big_h, big, small, interpolation) for big, small in bands])
        assert pieces.shape == whole.shape
        assert np.abs(pieces - whole).max() < 1e-4, (size, interpolation)
    if big_h > 200:
        assert len(bands) > 1  # really in bands


def test_finishing_in_place_band_by_band_matches_the_whole_image_steps(shared_data):
    """The pipeline finishes the model's output in place; each step gives what it gives on a new
    array, and the guard's scan-size view of the blend equals shrinking the full-size blend."""
    from tasks.steps.finish import blended_at_scan_size

    restored = _rgb(shared_data, "sr_gt/CBSD68/19021.png")
    h, w = restored.shape[:2]
    ai = _model_shift(resize(restored, 2 * w, 2 * h))
    expected_small = cv2.resize(fidelity_blend(ai, restored, 0.3), (w, h), interpolation=cv2.INTER_AREA)
    assert np.abs(blended_at_scan_size(ai, restored, 0.3) - expected_small).max() < 1e-5

    fresh = [color_transfer(ai, restored)[0], consistency(ai, restored)[0], fidelity_blend(ai, restored, 0.3),
             add_grain(ai, amount=0.02, seed=3)[0], sharpen(ai, amount=0.5)[0]]
    in_place = []
    for step in (lambda x: color_transfer(x, restored, out=x)[0], lambda x: consistency(x, restored, out=x)[0],
                 lambda x: fidelity_blend(x, restored, 0.3, out=x), lambda x: add_grain(x, amount=0.02, seed=3, out=x)[0],
                 lambda x: sharpen(x, amount=0.5, out=x)[0]):
        x = ai.copy()
        assert step(x) is x
        in_place.append(x)
    for a, b in zip(fresh, in_place):
        assert np.abs(a - b).max() < 1e-6
