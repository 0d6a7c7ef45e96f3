"""The fidelity guard on real images: honest upscales (Lanczos, the real Real-ESRGAN compact model)
pass, inventions (another picture, painted-in texture, a swapped region, heavy hallucinated
sharpening) are flagged. `_masters` is the calibration behind DEFAULT_SSIM_THRESHOLD, on a subset
(the module docstring has the numbers on 20 images)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.upscaler import Upscaler
from models.weights import resolve
from tasks.files.imageio import decode, to_float
from tasks.steps.fidelity import DEFAULT_SSIM_THRESHOLD, fidelity_check
from tasks.steps.finish import fidelity_blend
from tasks.steps.restore import resize

IMAGES = ["sr_gt/CBSD68/102061.png", "sr_gt/McMaster/5.tif", "old_photos/old/e.png", "real_lowquality/Lincoln.png"]
HONEST = ("lanczos", "real-esrgan", "real-esrgan + 20 % Lanczos")
INVENTED = ("another image", "centre quarter swapped", "painted-in texture", "hallucinated sharpening")


def _crop(rgb: np.ndarray, size: int = 128) -> np.ndarray:
    h, w = rgb.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return rgb[top : top + size, left : left + size]


def _texture(master: np.ndarray, amplitude: float, seed: int) -> np.ndarray:
    """Band-pass noise at 1-2.5 input pixels (x4), as a GAN paints hair or foliage where there was none."""
    noise = np.random.default_rng(seed).standard_normal(master.shape[:2]).astype(np.float32)
    band = cv2.GaussianBlur(noise, (0, 0), 4) - cv2.GaussianBlur(noise, (0, 0), 10)
    return np.clip(master + (amplitude / band.std() * band)[:, :, None], 0, 1)


def _masters(inputs: list[np.ndarray], upscaler: Upscaler) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """(master, restored input) pairs per kind, all at x4."""
    out: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in HONEST + INVENTED}
    for i, x in enumerate(inputs):
        h, w = x.shape[:2]
        sr = upscaler.upscale(x, tile=0)
        other = resize(inputs[(i + 1) % len(inputs)], 4 * w, 4 * h)
        swapped = sr.copy()
        swapped[h : 3 * h, w : 3 * w] = other[h : 3 * h, w : 3 * w]
        blurred = cv2.GaussianBlur(sr, (0, 0), 4)
        kinds = {
            "lanczos": resize(x, 4 * w, 4 * h), "real-esrgan": sr,
            "real-esrgan + 20 % Lanczos": fidelity_blend(sr, x, 0.2),
            "another image": other, "centre quarter swapped": swapped,
            "painted-in texture": _texture(sr, 0.05, i),
            "hallucinated sharpening": np.clip(sr + 4.0 * (sr - blurred), 0, 1),
        }
        for kind, master in kinds.items():
            out[kind].append((master, x))
    return out


@pytest.fixture(scope="module")
def upscaler(shared_models: Path) -> Upscaler:
    return Upscaler(resolve("realesr-general-x4v3", shared_models), device="cpu")


def test_threshold_separates_honest_masters_from_inventions(shared_data, upscaler):
    inputs = [_crop(to_float(decode(shared_data / name, max_pixels=10**9).pixels)) for name in IMAGES]
    results = {kind: [fidelity_check(m, x) for m, x in pairs] for kind, pairs in _masters(inputs, upscaler).items()}
    for kind, rs in results.items():
        print(f"{kind:28s} SSIM " + " ".join(f"{r.ssim:.3f}" for r in rs))
    for kind in HONEST:
        assert all(r.passed and r.reason is None for r in results[kind]), kind
        assert min(r.ssim for r in results[kind]) > DEFAULT_SSIM_THRESHOLD + 0.01  # with a margin
    for kind in INVENTED:
        assert not any(r.passed for r in results[kind]), kind
        assert all("SSIM" in r.reason for r in results[kind])
    assert max(r.ssim for kind in INVENTED for r in results[kind]) < DEFAULT_SSIM_THRESHOLD - 0.02


def test_worst_region_points_at_a_local_invention(shared_data):
    restored = to_float(decode(shared_data / "sr_gt/McMaster/1.tif", max_pixels=10**9).pixels)[:256, :256]
    master = resize(restored, 512, 512)
    other = resize(to_float(decode(shared_data / "sr_gt/CBSD68/19021.png", max_pixels=10**9).pixels)[:64, :64], 128, 128)
    master[256:384, 128:256] = other  # input pixels x 64-128, y 128-192
    result = fidelity_check(master, restored)
    x, y, w, h = result.worst_region["box"]
    assert 64 <= x + w / 2 <= 128 and 128 <= y + h / 2 <= 192
    assert result.worst_region["ssim"] < result.ssim


def test_identity_grayscale_16bit_and_tiny_inputs(shared_data):
    rgb16 = to_float(decode(shared_data / "edge_cases/tree_alpha_16bit.png", max_pixels=10**9).pixels)
    same = fidelity_check(rgb16, rgb16)
    # identical: no finite PSNR, recorded as None, so the event's parameters are valid JSON for the catalog
    assert same.passed and same.ssim == pytest.approx(1.0) and same.psnr is None
    json.dumps(same.to_dict(), allow_nan=False)
    gray = cv2.cvtColor(rgb16, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    up = fidelity_check(resize(gray, 2 * w, 2 * h), gray)  # grayscale, HxW
    assert up.passed and up.to_dict()["threshold"] == DEFAULT_SSIM_THRESHOLD
    strict = fidelity_check(resize(gray, 2 * w, 2 * h), gray, threshold=0.9999)
    assert not strict.passed and strict.reason
    tiny = np.random.default_rng(0).random((5, 4, 3)).astype(np.float32)
    assert fidelity_check(resize(tiny, 8, 10), tiny).ssim > 0.5


def test_banded_ssim_is_skimages_on_the_whole_image(shared_data, monkeypatch):
    """The guard measures a tall scan a band of rows at a time (memory); the mean and the map are
    skimage's on the whole image up to float rounding."""
    from skimage.metrics import structural_similarity

    import tasks.steps.fidelity as fidelity

    ref = cv2.cvtColor(decode(shared_data / "sr_gt/McMaster/1.tif", max_pixels=10**8).pixels, cv2.COLOR_RGB2GRAY)
    ref = (ref / 255.0).astype(np.float32)
    shown = np.clip(ref + np.random.default_rng(0).normal(0, 0.03, ref.shape), 0, 1).astype(np.float32)
    whole, whole_map = structural_similarity(ref, shown, full=True, data_range=1.0, gaussian_weights=True,
                                             sigma=1.5, use_sample_covariance=False)
    monkeypatch.setattr(fidelity, "_BAND_ROWS", 60)
    banded, banded_map = fidelity._ssim(ref, shown)
    assert ref.shape[0] > 2 * 60
    assert abs(banded - whole) < 1e-6 and np.abs(banded_map - whole_map).max() < 1e-5


def test_grain_left_for_the_model_is_taken_out_of_the_reference(shared_data, upscaler):
    """A scan whose grain the pipeline leaves to a fidelity-trained model: an honest master has no
    grain, so against the grainy scan it reads as changed; against the scan less its grain it
    passes, and inventions are still flagged."""
    sigma = 8.0
    clean = [_crop(to_float(decode(shared_data / name, max_pixels=10**9).pixels)) for name in IMAGES]
    grainy = [np.clip(x + np.random.default_rng(i).normal(0, sigma / 255, x.shape).astype(np.float32), 0, 1)
              for i, x in enumerate(clean)]
    pairs = _masters(clean, upscaler)  # masters of the grain-free picture: what the model should give
    for kind in HONEST + INVENTED:
        plain = [fidelity_check(m, g).ssim for (m, _), g in zip(pairs[kind], grainy)]
        less = [fidelity_check(m, g, grain_sigma=sigma) for (m, _), g in zip(pairs[kind], grainy)]
        print(f"{kind:28s} SSIM against the grainy scan " + " ".join(f"{v:.3f}" for v in plain)
              + ", less its grain " + " ".join(f"{r.ssim:.3f}" for r in less))
        assert all(r.grain_sigma == sigma for r in less)
        if kind in HONEST:
            assert min(plain) < DEFAULT_SSIM_THRESHOLD  # the false alarm this is about
            assert min(r.ssim for r in less) > DEFAULT_SSIM_THRESHOLD + 0.02, kind  # with a margin
        else:
            assert max(r.ssim for r in less) < DEFAULT_SSIM_THRESHOLD - 0.1, kind
