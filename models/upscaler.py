"""Upscaler and Denoiser: a loaded model plus tiled inference on float RGB numpy images.

Build once (per actor), call many times. Both take float32 HxWx3 RGB in [0, 1] and give float32
back, clipped to [0, 1]; callers convert grayscale/alpha first. `last_inference_seconds` is the
time spent inside the network on the last call (synchronised on CUDA), so a benchmark can report
the time beyond model inference; `last_execution` says how the call ran (precision, tile, overlap,
batch, windows redone in fp32) for the step's recorded parameters.

How a call runs, by device (bench/upscale_overhead.py and bench/gpu.py measure it):
- the network in channels_last at the resolved precision (models.precision);
- CPU: the caller's (the recipe's) tile, one window at a time: on the development CPU windows of
  up to ~360 px ran at the best rate per pixel, larger ones up to 2x slower (cache), and stacking
  windows into a batch was slower, not faster;
- CUDA: the tile from free memory (the whole image when it fits), equal-shaped windows batched,
  the input uploaded once from pinned memory, the output brought back as uint16 (half the bytes of
  float32; 1/65535 is below any master's quantisation);
- with an exact context (the model's whole receptive field) tiles do not need to overlap: every
  kept pixel is what the untiled network computes, so the overlap is dropped and its compute saved.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from models.loading import build_network, default_context, input_multiple, receptive_radius, select_device
from models.precision import autocast, has_non_finite, resolve_precision
from models.tiling import tiled_forward
from models.weights import ResolvedWeights
from tasks.records.types import AgentInfo


def _check_rgb(rgb: object) -> np.ndarray:  # whatever a caller hands the model: checked here
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", type(rgb).__name__)
        raise ValueError(
            f"expected an RGB image of shape (H, W, 3), got shape {shape}; convert grayscale or "
            "drop alpha before calling the model"
        )
    if not np.issubdtype(rgb.dtype, np.floating):
        raise ValueError(f"expected float RGB in [0, 1], got dtype {rgb.dtype} (shape {rgb.shape})")
    if min(rgb.shape[:2]) < 1:
        raise ValueError(f"empty image of shape {rgb.shape}")
    return rgb.astype(np.float32, copy=False)


# Bytes of device memory per input pixel of a window, for choosing CUDA tiles: a few live feature
# maps at the compute precision plus the float32 output. Generous on purpose (fragmentation,
# cuDNN workspaces): a tile that is too small costs a little speed, one too large fails the scan.
_LIVE_FEATURE_MAPS = 6
_CUDA_MEMORY_SHARE = 0.5
_CUDA_MAX_TILE = 2048
_CUDA_MAX_BATCH = 16


_DEVICE_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def device_lock(device: torch.device) -> threading.Lock:
    """One network call at a time per device and process: a worker holds several scans at once
    (one in the model, the others in CPU stages), and two calls at once would only split the
    device between them (and the CPU's threads twice over)."""
    with _LOCKS_LOCK:
        return _DEVICE_LOCKS.setdefault(str(device), threading.Lock())


class _Model:
    """A built network with its device, precision, tiling policy and timing.

    `last_inference_seconds` and `last_execution` are per thread: a worker's scans run on threads.
    """

    task: str

    def __init__(self, weights: ResolvedWeights, device: str | torch.device = "cpu", *,
                 context: int | None = None, precision: str = "fp32", tile: int | None = None) -> None:
        if weights.card.task != self.task:
            raise ValueError(
                f"model {weights.card.name!r} is a {weights.card.task} model, not a {self.task} model"
            )
        self.weights = weights
        self.card = weights.card
        self.device = device if isinstance(device, torch.device) else select_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.tile_setting = tile  # None: per device (see module doc); a number: that tile everywhere
        net = build_network(self.card, weights.path, self.device)
        self.net = net.to(memory_format=torch.channels_last)
        self.context = default_context(self.card) if context is None else context
        radius = receptive_radius(self.card)
        self.exact_context = radius is not None and self.context >= radius
        self.multiple = input_multiple(self.card)
        self._last = threading.local()
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # window shapes repeat: tune each once

    @property
    def last_inference_seconds(self) -> float:
        """Seconds inside the network during this thread's last call (waiting for the device excluded)."""
        return getattr(self._last, "seconds", 0.0)

    @property
    def last_execution(self) -> dict[str, Any]:
        return getattr(self._last, "execution", {})

    @property
    def agent(self) -> AgentInfo:
        return AgentInfo(kind="model", name=self.card.name, version="",
                         architecture=self.card.architecture, weights_sha256=self.weights.sha256)

    def tiling(self, h: int, w: int, tile: int, overlap: int) -> tuple[int, int, int]:
        """(tile, overlap, batch) for an h x w input, given the caller's tile and overlap."""
        if self.tile_setting is not None:
            tile = self.tile_setting
        elif self.device.type == "cuda":
            tile = self._cuda_tile(h, w)
        batch = self._cuda_batch(tile) if self.device.type == "cuda" else 1
        if self.exact_context or tile <= 0:
            overlap = 0  # nothing to blend: tiled == untiled
        elif overlap * 2 >= tile:
            overlap = tile // 4
        return tile, overlap, batch

    def _bytes_per_pixel(self) -> int:
        feat = int(self.card.arch_kwargs.get("num_feat", self.card.arch_kwargs.get("nc", 64)))
        elem = 4 if self.precision == "fp32" else 2
        out_ch = int(self.card.arch_kwargs.get("num_out_ch", self.card.arch_kwargs.get("out_nc", 3)))
        return feat * elem * _LIVE_FEATURE_MAPS + out_ch * max(1, self.card.scale) ** 2 * 4 * 2

    def _budget(self) -> int:
        free, _ = torch.cuda.mem_get_info(self.device)
        return int(free * _CUDA_MEMORY_SHARE)

    def _cuda_tile(self, h: int, w: int) -> int:
        per_px, budget = self._bytes_per_pixel(), self._budget()  # one free-memory query
        if h * w * per_px <= budget:
            return 0  # the whole image at once: no context computed twice
        side = int((budget / per_px) ** 0.5) - 2 * self.context
        return max(64, min(_CUDA_MAX_TILE, side - side % 32))

    def _cuda_batch(self, tile: int) -> int:
        if tile <= 0:
            return 1
        window = (tile + 2 * self.context) ** 2 * self._bytes_per_pixel()
        return max(1, min(_CUDA_MAX_BATCH, self._budget() // window))

    def _to_device(self, rgb: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
        if self.device.type == "cuda":
            return x.pin_memory().to(self.device, non_blocking=True)
        return x

    def _to_host(self, y: torch.Tensor) -> np.ndarray:
        """(1, 3, H, W) float on the device -> (H, W, 3) float32 numpy in [0, 1]."""
        y = y[0].clamp_(0, 1).permute(1, 2, 0)
        if self.device.type == "cuda":
            y16 = y.mul(65535).round_().to(torch.uint16).contiguous().cpu()
            return y16.numpy().astype(np.float32) / np.float32(65535)
        # tiled_forward's output is channels_last: its HWC view is already contiguous, no copy.
        return y.to(torch.float32).contiguous().numpy()

    def _run(self, rgb: np.ndarray, forward: Callable[[torch.Tensor], torch.Tensor],
             scale: int, tile: int, overlap: int, reduce: int = 1) -> np.ndarray:
        rgb = _check_rgb(rgb)
        h, w = rgb.shape[:2]
        tile, overlap, batch = self.tiling(h, w, tile, overlap)
        seconds, redone = 0.0, 0

        def timed(window: torch.Tensor) -> torch.Tensor:
            nonlocal redone, seconds
            start = time.perf_counter()
            window = window.contiguous(memory_format=torch.channels_last)
            with autocast(self.precision, self.device):
                out = forward(window)
            if self.precision != "fp32" and has_non_finite(out):
                redone += window.shape[0]  # overflow in fp16 (bf16 has fp32's range): run it in fp32
                out = forward(window)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)  # kernels are async: time the work, not the launch
            seconds += time.perf_counter() - start
            return out

        with device_lock(self.device), torch.inference_mode():
            y = tiled_forward(timed, self._to_device(rgb), scale=scale, tile=tile, overlap=overlap,
                              context=self.context, multiple=self.multiple, batch=batch, reduce=reduce)
            result = self._to_host(y)
        self._last.seconds = seconds
        self._last.execution = {"precision": self.precision, "tile": tile, "tile_overlap": overlap,
                                "batch": batch, "fp32_redone_windows": redone}
        return result


class Upscaler(_Model):
    task = "upscale"

    @property
    def scale(self) -> int:
        return self.card.scale

    def upscale(self, rgb: np.ndarray, tile: int = 256, overlap: int = 16, reduce: int = 1) -> np.ndarray:
        """(H, W, 3) float32 in [0, 1] -> (H*scale/reduce, W*scale/reduce, 3) float32 in [0, 1].

        tile=0: untiled. `reduce` (a divisor of the scale) block-averages the output tile by tile,
        so an x4 model asked for x2 never holds the x4 image."""
        return self._run(rgb, self.net, self.scale, tile, overlap, reduce)


class Denoiser(_Model):
    task = "denoise"

    def denoise(self, rgb: np.ndarray, sigma: float, tile: int = 512, overlap: int = 16) -> np.ndarray:
        """(H, W, 3) float32 in [0, 1] -> same shape; sigma is the noise level on the 0-255 scale."""
        if not 0 <= float(sigma) <= 255:
            raise ValueError(f"sigma is on the 0-255 scale, got {sigma}")
        level = float(sigma) / 255.0
        return self._run(rgb, lambda t: self.net(t, level), 1, tile, overlap)
