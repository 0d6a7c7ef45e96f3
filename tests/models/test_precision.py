"""Precision and the device-dependent paths of the upscaler, exercised on the CPU: what `auto`
resolves to, bf16 against fp32 on the real weights, the fp32 re-run of windows that overflow,
batched windows, and the CUDA tile/batch choice and uint16 transfer (their logic, without a GPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.precision import PrecisionError, cpu_has_fast_bf16, resolve_precision
from models.tiling import batches, plan_windows, tiled_forward
from models.upscaler import Upscaler
from models.weights import resolve
from tasks.records.keys import derivation_key

CPU = torch.device("cpu")


def test_auto_is_bf16_only_where_the_cpu_computes_it() -> None:
    assert resolve_precision("auto", CPU, cpu_bf16=True) == "bf16"
    assert resolve_precision("auto", CPU, cpu_bf16=False) == "fp32"
    assert resolve_precision("fp32", CPU, cpu_bf16=True) == "fp32"
    assert resolve_precision("bf16", CPU, cpu_bf16=False) == "bf16"  # forced: slow, but allowed
    assert cpu_has_fast_bf16(frozenset({"avx2", "avx512_bf16"}))
    assert cpu_has_fast_bf16(frozenset({"amx_bf16", "amx_tile"}))
    assert not cpu_has_fast_bf16(frozenset({"avx2", "avx512f", "avx512_vnni"}))


def test_fp16_needs_cuda_and_unknown_names_are_refused() -> None:
    with pytest.raises(PrecisionError, match="CUDA only"):
        resolve_precision("fp16", CPU)
    with pytest.raises(PrecisionError, match="unknown precision"):
        resolve_precision("int8", CPU)


def test_precision_is_part_of_the_derivation_key_except_fp32() -> None:
    """fp32 keys are the keys masters had before precision was a choice (they stay 'unchanged')."""
    before = derivation_key("a" * 64, "r", {"m": "w"}, "1.0")
    assert derivation_key("a" * 64, "r", {"m": "w"}, "1.0", "fp32") == before
    bf16 = derivation_key("a" * 64, "r", {"m": "w"}, "1.0", "bf16")
    assert bf16 != before and bf16 != derivation_key("a" * 64, "r", {"m": "w"}, "1.0", "fp16")


@pytest.fixture(scope="module")
def weights(shared_models: Path):
    return resolve("realesr-general-x4v3", shared_models)


@pytest.fixture(scope="module")
def photo(shared_data: Path, read_rgb) -> np.ndarray:
    return np.ascontiguousarray(read_rgb(shared_data / "sr_gt" / "McMaster" / "1.tif")[:120, :150])


def test_bf16_master_is_close_to_fp32_and_tiles_stay_exact(weights, photo, psnr) -> None:
    fp32 = Upscaler(weights, "cpu", precision="fp32")
    bf16 = Upscaler(weights, "cpu", precision="bf16")
    reference = fp32.upscale(photo, 0, 0)
    whole, tiled = bf16.upscale(photo, 0, 0), bf16.upscale(photo, 64, 16)
    assert bf16.last_execution == {"precision": "bf16", "tile": 64, "tile_overlap": 0, "batch": 1,
                                   "fp32_redone_windows": 0}  # exact context: no overlap to blend
    assert np.abs(tiled - whole).max() * 255 < 0.01  # tiles change nothing beyond rounding
    quality = psnr(whole, reference)
    print(f"bf16 vs fp32: {quality:.1f} dB, max {np.abs(whole - reference).max() * 255:.2f}/255")
    assert 45 < quality < 200  # close, and really computed in another precision (not identical)


class _OverflowsWhenAutocast(torch.nn.Module):
    """Returns Inf under autocast (as fp16 does inside some networks), the real result otherwise."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if torch.is_autocast_enabled("cpu"):
            out = out.float().clone()
            out[..., 0] = float("inf")
        return out


def test_windows_that_overflow_are_run_again_in_fp32(weights, photo) -> None:
    model = Upscaler(weights, "cpu", precision="bf16")
    reference = Upscaler(weights, "cpu", precision="fp32").upscale(photo, 64, 0)
    model.net = _OverflowsWhenAutocast(model.net)
    out = model.upscale(photo, 64, 0)
    windows = len(plan_windows(*photo.shape[:2], tile=64, overlap=0, context=model.context))
    assert model.last_execution["fp32_redone_windows"] == windows == 6
    assert np.isfinite(out).all() and np.abs(out - reference).max() < 1e-5


def test_equal_windows_are_batched_and_batching_changes_no_pixel() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.PReLU(8),
                              torch.nn.Conv2d(8, 3 * 4, 3, padding=1), torch.nn.PixelShuffle(2)).eval()
    seen: list[int] = []

    def counting(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.shape[0])
        return net(x)

    x = torch.rand(1, 3, 100, 130)
    with torch.inference_mode():
        one = tiled_forward(counting, x, scale=2, tile=32, overlap=0, context=2, batch=1)
        calls_one = len(seen)
        seen.clear()
        many = tiled_forward(counting, x, scale=2, tile=32, overlap=0, context=2, batch=8)
    windows = plan_windows(100, 130, tile=32, overlap=0, context=2)
    groups = batches(windows, 8)
    assert calls_one == len(windows) and len(seen) == len(groups) < len(windows)
    assert max(seen) > 1 and sum(seen) == len(windows)
    assert all(len({w.shape for w in g}) == 1 for g in groups)  # one shape per batch: no padding
    assert torch.allclose(one, many, atol=1e-6)


def test_cuda_tiles_come_from_free_memory(weights, monkeypatch) -> None:
    """The CUDA policy without a GPU: the whole image when it fits, else the largest tile that
    does, with as many windows per batch as the budget holds."""
    model = Upscaler(weights, "cpu", precision="bf16")
    monkeypatch.setattr(model, "device", torch.device("cuda"))
    per_px = model._bytes_per_pixel()
    monkeypatch.setattr(model, "_budget", lambda: 4000 * 3000 * per_px)
    assert model.tiling(2000, 3000, 256, 16) == (0, 0, 1)  # fits: one window, no context twice
    monkeypatch.setattr(model, "_budget", lambda: 600 * 600 * per_px)
    tile, overlap, batch = model.tiling(4000, 6000, 256, 16)
    assert tile == 512 and overlap == 0 and batch == 1  # (512 + 2*34)^2 < 600^2
    monkeypatch.setattr(model, "_budget", lambda: 2500 * 2500 * per_px)
    tile, _, batch = model.tiling(40000, 60000, 256, 16)
    assert tile == 2048 and batch == 1
    model.tile_setting = 256  # a tile named in the settings wins
    tile, _, batch = model.tiling(40000, 60000, 128, 16)
    assert tile == 256 and batch == min(16, (2500 * 2500) // (324 * 324))  # capped at 16


def test_the_cuda_transfer_keeps_sixteen_bit_precision(weights, monkeypatch) -> None:
    model = Upscaler(weights, "cpu")
    y = torch.rand(1, 3, 17, 23)
    cpu = model._to_host(y.clone())
    monkeypatch.setattr(model, "device", torch.device("cuda"))
    as_uint16 = model._to_host(y.clone())
    assert as_uint16.dtype == np.float32 and as_uint16.shape == (17, 23, 3)
    assert np.abs(as_uint16 - cpu).max() <= 0.5 / 65535 + 1e-7


def test_the_gpu_bench_runs_on_the_cpu(shared_models: Path) -> None:
    """bench/gpu.py is run on a lent GPU machine within minutes: its first run must not be there."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, str(repo / "bench/gpu.py"), "--device", "cpu", "--input", "64x40", "--repeats", "1",
         "--models", "realesr-general-x4v3"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "RESTORIUM_MODELS_DIR": str(shared_models)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("realesr-general-x4v3")]
    assert [ln.split()[1] for ln in lines[:3]] == ["RealESRGANer", "restorium", "restorium"]
    assert "x the RealESRGANer loop" in lines[-1]


def test_scans_on_threads_share_the_model_one_call_at_a_time(weights, photo) -> None:
    """A worker holds several scans at once (settings.scans_in_flight): calls from two threads give
    what they give alone, never overlap inside the network, and each thread reads its own timing."""
    import threading

    model = Upscaler(weights, "cpu", precision="bf16")
    alone = model.upscale(photo, 64, 0)
    inside, overlapped, results, seconds = [0], [False], {}, {}
    real = model.net

    def watched(x: torch.Tensor) -> torch.Tensor:
        inside[0] += 1
        overlapped[0] |= inside[0] > 1
        try:
            return real(x)
        finally:
            inside[0] -= 1

    model.net = watched

    def scan(name: str, image: np.ndarray) -> None:
        results[name] = model.upscale(image, 64, 0)
        seconds[name] = model.last_inference_seconds

    small = np.ascontiguousarray(photo[:40, :50])
    threads = [threading.Thread(target=scan, args=("big", photo)), threading.Thread(target=scan, args=("small", small))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not overlapped[0]
    assert np.array_equal(results["big"], alone)
    assert np.array_equal(results["small"], Upscaler(weights, "cpu", precision="bf16").upscale(small, 64, 0))
    assert seconds["big"] > seconds["small"] > 0  # each thread its own call's time
