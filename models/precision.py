"""Compute precision for the networks: what `auto` means on a device, and how a forward pass runs.

Precision changes pixels (a little), so it is a recorded choice: the driver resolves it once,
the derivation key carries it (a bf16 master is not "unchanged" against an fp32 one), every model
event records it, and `reproduce` runs the recorded one.

- fp32: the reference.
- bf16: autocast to bfloat16 (weights and activations; convolutions accumulate in fp32). Fast
  only where the hardware has bf16 dot products: CPUs with AVX512_BF16 or AMX, CUDA GPUs of
  compute capability 8.0+. Elsewhere torch emulates it, slower than fp32, so `auto` does not pick it.
- fp16: CUDA only, forced by settings (never `auto`): fp16 overflows inside some networks
  (Real-ESRGAN #632, black/NaN tiles with x4plus), so every fp16 window is checked for NaN/Inf and
  run again in fp32 when it has any (models.upscaler counts those windows; the event says so).

All three run the network in channels_last layout (NHWC): oneDNN's and cuDNN's fast convolution
kernels want it, and NCHW input makes them reorder every layer (bench/upscale_overhead.py).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import torch

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class PrecisionError(ValueError):
    """A precision the device cannot run."""


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty where unknown)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_fast_bf16(flags: frozenset[str] | None = None) -> bool:
    """bf16 dot products in hardware: AVX512_BF16 (Cooper Lake, Zen 4+) or AMX (Sapphire Rapids+)."""
    flags = cpu_flags() if flags is None else flags
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def cuda_has_fast_bf16(device: torch.device) -> bool:
    """Ampere (8.0) and newer run bf16 on tensor cores; torch.cuda.is_bf16_supported() also says
    yes on older cards, where it is emulated."""
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def resolve_precision(requested: str, device: torch.device, *, cpu_bf16: bool | None = None) -> Precision:
    """'auto' → bf16 where the device computes it in hardware, else fp32; an explicit choice is
    checked against the device (fp16 needs CUDA). `cpu_bf16` overrides the CPU probe (tests)."""
    if requested not in ("auto", *PRECISIONS):
        raise PrecisionError(f"unknown precision {requested!r}: expected auto, fp32, bf16 or fp16")
    if requested == "fp16" and device.type != "cuda":
        raise PrecisionError("precision fp16 runs on CUDA only (CPU half kernels are slow or missing); "
                             "use bf16 or fp32 on this device")
    if requested != "auto":
        return requested  # type: ignore[return-value]
    if device.type == "cuda":
        return "bf16" if cuda_has_fast_bf16(device) else "fp32"
    fast = cpu_has_fast_bf16() if cpu_bf16 is None else cpu_bf16
    return "bf16" if fast else "fp32"


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    """The forward pass's numeric context: nothing for fp32, torch.autocast for bf16/fp16."""
    if precision == "fp32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=DTYPES[precision]):
        yield


def has_non_finite(t: torch.Tensor) -> bool:
    """Any NaN or Inf (an fp16 overflow) in a window's output."""
    return not bool(torch.isfinite(t).all())
