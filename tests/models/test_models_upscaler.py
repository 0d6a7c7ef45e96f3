"""Upscaler and Denoiser on the real weights: shapes, provenance, and that they do their job."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.upscaler import Denoiser, Upscaler
from models.weights import resolve
from tasks.records.types import AgentInfo


@pytest.fixture(scope="module")
def upscaler(shared_models: Path) -> Upscaler:
    return Upscaler(resolve("realesr-general-x4v3", shared_models), device="cpu")


@pytest.fixture(scope="module")
def denoiser(shared_models: Path) -> Denoiser:
    return Denoiser(resolve("ffdnet_color", shared_models), device="cpu")


def test_upscaler_on_set5(upscaler: Upscaler, shared_data: Path, read_rgb, psnr) -> None:
    """4x the size, the same pixels as realesrgan's own RealESRGANer inside the image, and a plausible
    reconstruction. Not 'better PSNR than bicubic': a GAN model trained on real degradations loses to
    bicubic in PSNR on clean bicubic-downscaled input (all five Set5 images), while being sharper."""
    import cv2

    hr = read_rgb(shared_data / "sr_gt" / "Set5" / "HR" / "bird.png")
    lr = read_rgb(shared_data / "sr_gt" / "Set5" / "LR_bicubic" / "X4" / "birdx4.png")  # 72 x 72
    sr = upscaler.upscale(lr)
    assert upscaler.scale == 4
    assert sr.shape == (288, 288, 3) and sr.dtype == np.float32
    assert 0.0 <= sr.min() and sr.max() <= 1.0
    assert 0 < upscaler.last_inference_seconds

    bicubic = np.clip(cv2.resize(lr, (288, 288), interpolation=cv2.INTER_CUBIC), 0, 1)
    crop = np.s_[4:-4, 4:-4]
    sr_psnr, bicubic_psnr = psnr(sr[crop], hr[crop]), psnr(bicubic[crop], hr[crop])
    print(f"bird x4: general-x4v3 {sr_psnr:.2f} dB, bicubic {bicubic_psnr:.2f} dB")
    assert sr_psnr > 24.0  # wrong weights/channel order/alignment land far below (~12-18 dB)
    assert sr_psnr > bicubic_psnr - 4.0

    def detail(img: np.ndarray) -> float:
        return float(np.abs(np.diff(img, axis=0)).mean() + np.abs(np.diff(img, axis=1)).mean())

    assert detail(sr) > 1.2 * detail(bicubic), "the model restores edges bicubic smears"


def test_upscaler_matches_realesrganer(upscaler: Upscaler, shared_data: Path, read_rgb) -> None:
    """Our loading and tiling reproduce the reference implementation's pixels (inside the image,
    where its zero-padded borders do not reach; it rounds to 8 bits, hence the tolerance)."""
    import cv2

    from models.torch_compat import ensure_basicsr_importable

    ensure_basicsr_importable()
    from realesrgan import RealESRGANer

    path = shared_data / "sr_gt" / "Set5" / "LR_bicubic" / "X4" / "headx4.png"
    lr = read_rgb(path)
    reference = RealESRGANer(scale=4, model_path=str(upscaler.weights.path), model=upscaler.net,
                             tile=0, pre_pad=0, half=False, device="cpu")
    out, _ = reference.enhance(cv2.imread(str(path)), outscale=4)
    expected = cv2.cvtColor(out, cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    ours = upscaler.upscale(lr, tile=48, overlap=8)
    b = 4 * upscaler.context
    assert np.abs(ours - expected)[b:-b, b:-b].max() <= 0.5 / 255 + 1e-4


def test_upscaler_agent_and_shape_errors(upscaler: Upscaler) -> None:
    agent = upscaler.agent
    assert agent == AgentInfo(kind="model", name="realesr-general-x4v3", version="",
                              architecture="SRVGGNetCompact", weights_sha256=upscaler.weights.sha256)
    with pytest.raises(ValueError, match=r"\(20, 30\)"):
        upscaler.upscale(np.zeros((20, 30), np.float32))
    with pytest.raises(ValueError, match=r"\(20, 30, 4\)"):
        upscaler.upscale(np.zeros((20, 30, 4), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        upscaler.upscale(np.zeros((20, 30, 3), np.uint8))
    tiny = upscaler.upscale(np.full((5, 7, 3), 0.5, np.float32))  # smaller than the context pad
    assert tiny.shape == (20, 28, 3)


def test_ffdnet_denoises_real_image(denoiser: Denoiser, shared_data: Path, read_rgb, psnr) -> None:
    clean = read_rgb(shared_data / "sr_gt" / "McMaster" / "1.tif")[:192, :256]
    noise = np.random.default_rng(0).normal(0.0, 25 / 255, clean.shape)
    noisy = (clean + noise).astype(np.float32)
    denoised = denoiser.denoise(noisy, sigma=25)
    assert denoised.shape == clean.shape and denoised.dtype == np.float32
    gain = psnr(denoised, clean) - psnr(noisy, clean)
    print(f"FFDNet sigma 25: {psnr(noisy, clean):.2f} -> {psnr(denoised, clean):.2f} dB (+{gain:.2f})")
    assert gain > 5.0
    # Tiles change nothing beyond float rounding (full receptive-field context).
    tiled = denoiser.denoise(noisy, sigma=25, tile=64, overlap=8)
    assert np.abs(tiled - denoised).max() < 0.5 / 255
    # Strength is a parameter: sigma 0 leaves a clean image nearly as it is.
    assert psnr(denoiser.denoise(clean, sigma=0), clean) > 35


def test_denoiser_agent_and_errors(denoiser: Denoiser, shared_models: Path) -> None:
    assert denoiser.agent.name == "ffdnet_color" and denoiser.agent.architecture == "FFDNet"
    assert denoiser.agent.weights_sha256 == denoiser.weights.sha256
    with pytest.raises(ValueError, match=r"\(8, 8, 1\)"):
        denoiser.denoise(np.zeros((8, 8, 1), np.float32), sigma=10)
    with pytest.raises(ValueError, match="0-255"):
        denoiser.denoise(np.zeros((8, 8, 3), np.float32), sigma=-1)
    with pytest.raises(ValueError, match="not a upscale model|denoise model"):
        Upscaler(resolve("ffdnet_color", shared_models))


def test_select_device() -> None:
    import torch

    from models.loading import select_device

    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="'tpu'"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            select_device("cuda")


@pytest.mark.parametrize("tile", [0, 40])
def test_output_reduced_tile_by_tile_is_the_area_resize_of_the_full_output(
        upscaler: Upscaler, shared_data: Path, read_rgb, tile: int) -> None:
    """An x4 model asked for x2 block-averages each tile on the way out: the same pixels as the
    area resize of the whole x4 output (float rounding apart), without ever holding that output;
    and the result is a contiguous HWC array (no copy made on the way to numpy)."""
    import cv2

    lr = read_rgb(shared_data / "sr_gt" / "Set5" / "LR_bicubic" / "X4" / "birdx4.png")[:60, :70]
    full = upscaler.upscale(lr, tile=tile, overlap=0)
    reduced = upscaler.upscale(lr, tile=tile, overlap=0, reduce=2)
    assert reduced.shape == (120, 140, 3) and reduced.flags["C_CONTIGUOUS"]
    area = cv2.resize(full, (140, 120), interpolation=cv2.INTER_AREA)
    assert np.abs(reduced - area).max() < 1e-5
    with pytest.raises(ValueError, match="divisor of the scale"):
        upscaler.upscale(lr, tile=tile, reduce=3)
