"""Deblurring on real photographs blurred with a known PSF: it helps, and stays within its bounds."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.restoration import estimate_sigma

from tasks.files.imageio import decode, to_float
from tasks.steps.deblur import DEFAULT_MAX_NOISE_GAIN, deblur, motion_psf, psf_from_findings

CLEAN = ["sr_gt/McMaster/1.tif", "sr_gt/McMaster/5.tif", "sr_gt/CBSD68/102061.png", "sr_gt/CBSD68/19021.png"]
MOTION = {"type": "motion", "score": 0.8, "angle_deg": 30.0, "length_px": 11.0, "sigma_px": None}
DEFOCUS = {"type": "defocus", "score": 0.8, "sigma_px": 2.0, "angle_deg": None, "length_px": None}
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _rgb(shared_data: Path, name: str) -> np.ndarray:
    return to_float(decode(shared_data / name, max_pixels=10**9).pixels)


def _degrade(clean: np.ndarray, blur: dict, noise: float, seed: int = 0) -> np.ndarray:
    """Blur with the finding's own PSF, add Gaussian noise (0-255 scale), round to 8 bits."""
    psf = psf_from_findings(blur).astype(np.float32)
    out = cv2.filter2D(clean, -1, psf, borderType=cv2.BORDER_REFLECT_101)
    out = out + np.random.default_rng(seed).normal(0, noise / 255, out.shape)
    return (np.round(np.clip(out, 0, 1) * 255) / 255).astype(np.float32)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1 / np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.mark.parametrize(("blur", "mean_gain"), [(MOTION, 1.0), (DEFOCUS, 0.6)], ids=["motion", "defocus"])
def test_psnr_improves_on_real_photos(shared_data, blur, mean_gain):
    """Measured: motion 11 px 1.09-1.49 dB, defocus sigma 2 0.65-0.91 dB (noise 3, strength 0.7)."""
    gains = []
    for i, name in enumerate(CLEAN):
        clean = _rgb(shared_data, name)
        blurred = _degrade(clean, blur, noise=3.0, seed=i)
        out, params = deblur(blurred, blur, strength=0.7, noise_sigma=3.0)
        assert params["applied"] and out.dtype == np.float32 and out.shape == clean.shape
        assert 0.0 <= out.min() and out.max() <= 1.0
        gains.append(_psnr(out, clean) - _psnr(blurred, clean))
    print(f"{blur['type']}: PSNR gain at noise 3, strength 0.7: " + ", ".join(f"{g:.2f}" for g in gains))
    assert np.mean(gains) > mean_gain and min(gains) > 0.5


@pytest.mark.parametrize("noise", [1.0, 3.0, 8.0])
@pytest.mark.parametrize("blur", [MOTION, DEFOCUS], ids=["motion", "defocus"])
def test_noise_never_rises_beyond_the_bound(blur, noise):
    """On a flat grey field the output's noise is the noise gain at work: it stays under the bound."""
    rng = np.random.default_rng(1)
    flat = np.clip(0.5 + rng.normal(0, noise / 255, (256, 256, 1)), 0, 1).repeat(3, axis=2).astype(np.float32)
    for strength, bound in ((0.7, DEFAULT_MAX_NOISE_GAIN), (1.0, DEFAULT_MAX_NOISE_GAIN), (1.0, 1.1)):
        out, params = deblur(flat, blur, strength=strength, noise_sigma=noise, max_noise_gain=bound)
        ratio = float(out[16:-16, 16:-16].std() / flat[16:-16, 16:-16].std())
        assert params["noise_gain"] <= bound + 1e-3
        assert ratio <= bound, (strength, bound, ratio, params)


def test_noise_bound_by_the_estimator_on_a_real_photo(shared_data):
    """The same bound, measured with QA's wavelet noise estimator on a real blurred, noisy photo."""
    clean = _rgb(shared_data, "sr_gt/McMaster/11.tif")
    for blur in (MOTION, DEFOCUS):
        blurred = _degrade(clean, blur, noise=2.0)
        out, params = deblur(blurred, blur, strength=1.0, noise_sigma=2.0)
        before = estimate_sigma(blurred @ LUMA) * 255
        after = estimate_sigma(out @ LUMA) * 255
        print(f"{blur['type']}: estimated noise {before:.2f} -> {after:.2f} (bound x{params['noise_gain']})")
        assert after <= DEFAULT_MAX_NOISE_GAIN * before


def test_no_ringing_beyond_the_local_range(shared_data):
    """Output luminance stays within the blurred luminance's min/max over the PSF footprint."""
    clean = _rgb(shared_data, "sr_gt/CBSD68/102061.png")
    # A hard black/white step as well, where an unbounded inverse filter overshoots most.
    clean[:, :40] = 0.05
    clean[:, 40:80] = 0.95
    for blur in (MOTION, DEFOCUS):
        blurred = _degrade(clean, blur, noise=1.0)
        out, _ = deblur(blurred, blur, strength=1.0, noise_sigma=1.0)
        y_in, y_out = blurred @ LUMA, out @ LUMA
        psf = psf_from_findings(blur)
        footprint = (psf > psf.max() * 0.05).astype(np.uint8)
        lo = cv2.erode(y_in, footprint, borderType=cv2.BORDER_REFLECT_101)
        hi = cv2.dilate(y_in, footprint, borderType=cv2.BORDER_REFLECT_101)
        assert (y_out >= lo - 1e-4).all() and (y_out <= hi + 1e-4).all()
        step = np.s_[40:-40, 25:65]  # the synthetic step: no halo beyond its plateaus
        assert y_out[step].min() >= y_in[step].min() - 1e-4
        assert y_out[step].max() <= y_in[step].max() + 1e-4


def test_colours_do_not_shift(shared_data):
    """Only luminance is corrected: chroma (Cr, Cb) is unchanged wherever nothing clipped."""
    clean = _rgb(shared_data, "sr_gt/McMaster/5.tif")
    blurred = _degrade(clean, DEFOCUS, noise=1.0)
    out, _ = deblur(blurred, DEFOCUS, strength=1.0, noise_sigma=1.0)
    ycc_in, ycc_out = cv2.cvtColor(blurred, cv2.COLOR_RGB2YCrCb), cv2.cvtColor(out, cv2.COLOR_RGB2YCrCb)
    unclipped = (out > 0).all(axis=2) & (out < 1).all(axis=2)
    assert unclipped.mean() > 0.95
    assert np.abs(ycc_out[..., 1:] - ycc_in[..., 1:])[unclipped].max() < 1e-4


def test_no_op_for_none_tiny_blur_and_zero_strength(shared_data):
    rgb = _rgb(shared_data, "sr_gt/McMaster/1.tif")
    before = rgb.copy()
    for blur, strength in (({"type": "none", "score": 0.0}, 0.7), (DEFOCUS, 0.0),
                           ({"type": "defocus", "sigma_px": 0.1}, 0.7), ({"type": "motion", "length_px": 1.0, "angle_deg": 0}, 0.7)):
        out, params = deblur(rgb, blur, strength=strength, noise_sigma=3.0)
        assert params["applied"] is False and np.array_equal(out, rgb)
    assert np.array_equal(rgb, before)
    with pytest.raises(ValueError):
        deblur(rgb, {"type": "lens"}, strength=0.5, noise_sigma=1.0)


def test_16bit_grayscale_large_input_and_inputs_untouched(shared_data):
    """A 16-bit scan keeps sub-8-bit values; a grayscale scan (replicated) stays gray; a scan larger
    than one deconvolution tile matches the single-tile result (no seams)."""
    import tasks.steps.deblur as module

    pixels = decode(shared_data / "edge_cases/tree_alpha_16bit.png", max_pixels=10**9).pixels
    assert pixels.dtype == np.uint16
    rgb16 = to_float(pixels)
    blurred = cv2.GaussianBlur(rgb16, (0, 0), 1.5)
    before = blurred.copy()
    out, params = deblur(blurred, DEFOCUS, strength=0.7, noise_sigma=1.0)
    assert np.array_equal(blurred, before)
    assert params["applied"] and not np.allclose(out * 255, np.round(out * 255), atol=1e-3)

    gray = cv2.cvtColor(_rgb(shared_data, "sr_gt/CBSD68/19021.png"), cv2.COLOR_RGB2GRAY)
    gray3 = np.repeat(_degrade(gray, MOTION, 1.0)[:, :, None], 3, axis=2)
    whole, _ = deblur(gray3, MOTION, strength=0.7, noise_sigma=1.0)
    assert np.abs(whole - whole[:, :, :1]).max() < 1e-6

    saved = module._TILE
    module._TILE = 128  # 321x481 in 128 px tiles
    try:
        tiled, _ = deblur(gray3, MOTION, strength=0.7, noise_sigma=1.0)
    finally:
        module._TILE = saved
    assert np.abs(tiled - whole).max() < 1.0 / 255


def test_motion_psf_direction():
    """Counter-clockwise from +x with rows growing downwards: 45 deg runs bottom-left to top-right."""
    horizontal, vertical, diagonal = motion_psf(9, 0), motion_psf(9, 90), motion_psf(9, 45)
    c = horizontal.shape[0] // 2
    assert horizontal[c].sum() == pytest.approx(1.0) and vertical[:, c].sum() == pytest.approx(1.0)
    assert diagonal[0:c, c + 1 :].sum() > 0.3 and diagonal[c + 1 :, 0:c].sum() > 0.3
    assert diagonal[0:c, 0:c].sum() < 0.05
    for psf in (horizontal, vertical, diagonal, motion_psf(7.3, 17.0)):
        assert psf.sum() == pytest.approx(1.0) and np.allclose(psf, psf[::-1, ::-1])
