"""Upscaler and Denoiser: a loaded model plus tiled inference on float RGB numpy images.

Build once (per actor), call many times. Both take float32 HxWx3 RGB in [0, 1] and give float32
back, clipped to [0, 1]; callers convert grayscale/alpha first. `last_inference_seconds` is the
time spent inside the network on the last call (synchronised on CUDA), so a benchmark can report
the time beyond model inference.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from models.loading import build_network, default_context, input_multiple, select_device
from models.tiling import tiled_forward
from models.weights import ResolvedWeights
from tasks.types import AgentInfo


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
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


class _Model:
    """A built network with its device, precision and timing."""

    task: str

    def __init__(self, weights: ResolvedWeights, device: str | torch.device = "cpu", *,
                 context: int | None = None) -> None:
        if weights.card.task != self.task:
            raise ValueError(
                f"model {weights.card.name!r} is a {weights.card.task} model, not a {self.task} model"
            )
        self.weights = weights
        self.card = weights.card
        self.device = device if isinstance(device, torch.device) else select_device(device)
        # fp16 only on CUDA: CPU half kernels are slow or missing, and fp32 there is what we measured.
        self.half = self.device.type == "cuda"
        net = build_network(self.card, weights.path, self.device)
        self.net = net.half() if self.half else net
        self.context = default_context(self.card) if context is None else context
        self.multiple = input_multiple(self.card)
        self.last_inference_seconds = 0.0

    @property
    def agent(self) -> AgentInfo:
        return AgentInfo(kind="model", name=self.card.name, version="",
                         architecture=self.card.architecture, weights_sha256=self.weights.sha256)

    def _run(self, rgb: np.ndarray, forward: Callable[[torch.Tensor], torch.Tensor],
             scale: int, tile: int, overlap: int) -> np.ndarray:
        rgb = _check_rgb(rgb)
        self.last_inference_seconds = 0.0
        dtype = torch.float16 if self.half else torch.float32

        def timed(window: torch.Tensor) -> torch.Tensor:
            start = time.perf_counter()
            out = forward(window.to(dtype))
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)  # kernels are async: time the work, not the launch
            self.last_inference_seconds += time.perf_counter() - start
            return out

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].to(self.device)
            y = tiled_forward(timed, x, scale=scale, tile=tile, overlap=overlap,
                              context=self.context, multiple=self.multiple)
            # torch makes the HWC copy with all its threads (numpy's would take one).
            y = y[0].clamp_(0, 1).permute(1, 2, 0).to(torch.float32).contiguous().cpu().numpy()
        return y


class Upscaler(_Model):
    task = "upscale"

    @property
    def scale(self) -> int:
        return self.card.scale

    def upscale(self, rgb: np.ndarray, tile: int = 256, overlap: int = 16) -> np.ndarray:
        """(H, W, 3) float32 in [0, 1] -> (H*scale, W*scale, 3) float32 in [0, 1]. tile=0: untiled."""
        return self._run(rgb, self.net, self.scale, tile, overlap)


class Denoiser(_Model):
    task = "denoise"

    def denoise(self, rgb: np.ndarray, sigma: float, tile: int = 512, overlap: int = 16) -> np.ndarray:
        """(H, W, 3) float32 in [0, 1] -> same shape; sigma is the noise level on the 0-255 scale."""
        if not 0 <= float(sigma) <= 255:
            raise ValueError(f"sigma is on the 0-255 scale, got {sigma}")
        level = float(sigma) / 255.0
        return self._run(rgb, lambda t: self.net(t, level), 1, tile, overlap)
