"""The fidelity guard: does the master, seen at the scan's size, still show the restored scan?

An honest upscale, shrunk back (area averaging) to the input's size, reproduces the input; a
model that invents structure (another face, texture that was not there, moved edges) does not.
The comparison is SSIM on luminance (Wang et al. 2004: Gaussian 11x11 window, sigma 1.5), with
PSNR alongside. Texture finer than one input pixel averages away when shrunk, so this guards
what can be seen at the scan's resolution, which is what a likeness is judged by.

DEFAULT_SSIM_THRESHOLD = 0.90 separates the two on 20 real images upscaled x4: honest masters
(the archival blend after general-x4v3) stay at or above 0.917 but for one tiny, heavily
compressed cartoon whose lines the model redraws; inventions (another image, a replaced centre,
added texture, strong "GAN" sharpening, a 1 px shift) mostly fall below it, and so do
RealESRGAN_x4plus's known failures (flagging them is the point). The calibration log is in
bench/RESULTS.md.

Grain the pipeline leaves for a fidelity-trained model to remove (denoise skipped below the
recipe's `fidelity_model_min_sigma`) is in the restored scan but not in an honest master; shrunk
back, the master then looks cleaner than the scan and SSIM falls for that alone (12 McMaster
photos with grain of sigma 6, the fidelity model's output: 0.955 mean, 0.893 lowest, against 0.980
/ 0.963 with the clean scan as reference). With `grain_sigma` the reference's luminance is first
denoised by NL-means at 0.8 x that sigma: the reference the threshold was calibrated on (0.983 /
0.966 there).

What it does not catch: geometric warps of 1-2 input px on smooth content, and changes confined
to a small region (see `worst_region`, reported, not gated). tests/tasks/test_fidelity.py
re-measures both sides on 4 of these images (`_masters` builds the honest and the invented
masters).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np
from skimage.metrics import structural_similarity

DEFAULT_SSIM_THRESHOLD = 0.90
GRAIN_REFERENCE_FRACTION = 0.8  # of the grain's sigma: the NL-means strength of the calibration
_MIN_SIDE = 7  # SSIM needs a window; tinier images are edge-padded to it


@dataclass(frozen=True)
class FidelityResult:
    ssim: float
    psnr: float | None  # None: identical at the scan's size
    passed: bool
    threshold: float
    reason: str | None = None  # why it failed, for the review flag and the catalog
    # The block (x, y, w, h in input pixels) with the lowest mean SSIM, and that SSIM: where to
    # look first in a review. Reported only; a local gate is not calibrated.
    worst_region: dict[str, Any] | None = None
    grain_sigma: float = 0.0  # > 0: grain left for the model, taken out of the reference first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _luminance(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float32, copy=False)
    if values.ndim == 2:
        return values
    return cv2.cvtColor(values, cv2.COLOR_RGB2GRAY)


def fidelity_check(
    master: np.ndarray, restored_input: np.ndarray, *, threshold: float = DEFAULT_SSIM_THRESHOLD,
    grain_sigma: float = 0.0,
) -> FidelityResult:
    """Compare the master, area-downscaled to the restored input's size, with that input.

    Both float in [0, 1], RGB (HxWx3) or grayscale (HxW). Fails (passed=False, with a reason)
    when luminance SSIM is below `threshold`. grain_sigma (0-255 scale): grain left in the
    restored input for the model to remove, taken out of the reference first (see above).
    """
    h, w = restored_input.shape[:2]
    ref = _luminance(restored_input)
    if grain_sigma > 0:
        ref = _without_grain(ref, grain_sigma)
    if master.shape[:2] != (h, w):  # shrunk first (area is linear): no master-sized luminance copy
        master = cv2.resize(master.astype(np.float32, copy=False), (w, h), interpolation=cv2.INTER_AREA)
    shown = _luminance(master)
    if min(h, w) < _MIN_SIDE:
        pad = ((0, max(0, _MIN_SIDE - h)), (0, max(0, _MIN_SIDE - w)))
        ref, shown = np.pad(ref, pad, mode="edge"), np.pad(shown, pad, mode="edge")
    ssim, ssim_map = _ssim(ref, shown)
    mse = cv2.norm(ref, shown, cv2.NORM_L2SQR) / ref.size  # accumulated in float64, no image-sized temporaries
    psnr = float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)
    passed = ssim >= threshold
    reason = None if passed else (
        f"master differs from the restored scan at the scan's size: SSIM {ssim:.3f} < {threshold:.3f} "
        f"(PSNR {psnr:.1f} dB); the model may have invented detail, review it"
    )
    # Identical images have no finite PSNR: recorded as None (JSON null), as the catalog stores
    # no NaN or infinity.
    return FidelityResult(ssim=round(ssim, 5), psnr=round(psnr, 3) if np.isfinite(psnr) else None,
                          passed=passed, threshold=threshold, reason=reason,
                          worst_region=_worst_block(ssim_map[:h, :w]), grain_sigma=grain_sigma)


def _without_grain(luminance: np.ndarray, sigma: float) -> np.ndarray:
    """NL-means at GRAIN_REFERENCE_FRACTION x sigma on the 8-bit luminance (cv2's defaults: 7 px
    patches, 21 px search; 15 s on a 24 MP scan on a 2-core CPU). Not restore.denoise_nlmeans:
    its 5 px patches and 6 px reach leave more grain (an honest Lanczos master 0.920 where this
    gives 0.942, tests/tasks/test_fidelity.py) and take 2.7x as long (41 s on 24 MP)."""
    u8 = np.clip(luminance * 255.0 + 0.5, 0, 255).astype(np.uint8)
    denoised = cv2.fastNlMeansDenoising(u8, None, GRAIN_REFERENCE_FRACTION * sigma, 7, 21)
    return denoised.astype(np.float32) / 255.0


_BAND_ROWS = 512
_RADIUS = 5  # the Gaussian window's reach: int(3.5 * 1.5 + 0.5), skimage's truncate and sigma
_GAUSSIAN = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 1.0}


def _ssim(ref: np.ndarray, shown: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean SSIM and the SSIM map (float32), as skimage's structural_similarity computes them.

    A tall image goes a band of rows at a time (skimage works in float64, about ten image-sized
    maps: 2 GB for a 24 MP scan): each band with the window's reach of real rows either side,
    so its map rows are the whole image's, and the mean over the same interior (the window's
    reach in from each border) as skimage takes it."""
    h, w = ref.shape
    if min(h, w) < 11:  # the Gaussian window is 11 px: a uniform 7 px one on tiny images
        ssim, ssim_map = structural_similarity(ref, shown, data_range=1.0, win_size=_MIN_SIDE, full=True)
        return float(ssim), ssim_map.astype(np.float32)
    if h <= 2 * _BAND_ROWS:
        ssim, ssim_map = structural_similarity(ref, shown, full=True, **_GAUSSIAN)
        return float(ssim), ssim_map.astype(np.float32)
    ssim_map = np.empty((h, w), np.float32)
    edges = np.linspace(0, h, -(-h // _BAND_ROWS) + 1).astype(int)
    for y0, y1 in zip(edges[:-1], edges[1:]):
        a0, a1 = max(0, y0 - _RADIUS), min(h, y1 + _RADIUS)
        _, band = structural_similarity(ref[a0:a1], shown[a0:a1], full=True, **_GAUSSIAN)
        ssim_map[y0:y1] = band[y0 - a0 : y1 - a0]
    interior = ssim_map[_RADIUS : h - _RADIUS, _RADIUS : w - _RADIUS]
    return float(interior.mean(dtype=np.float64)), ssim_map


def _worst_block(ssim_map: np.ndarray) -> dict[str, Any]:
    """The block of about 1/8 of the shorter side (>= 16 px) with the lowest mean SSIM."""
    h, w = ssim_map.shape
    block = max(16, min(h, w) // 8)
    best: tuple[float, int, int] | None = None
    for top in range(0, h, block):
        for left in range(0, w, block):
            value = float(ssim_map[top : top + block, left : left + block].mean())
            if best is None or value < best[0]:
                best = (value, left, top)
    value, left, top = best  # type: ignore[misc]
    return {"box": [left, top, min(block, w - left), min(block, h - top)], "ssim": round(value, 5)}
