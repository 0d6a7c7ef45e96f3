"""Learned damage detection: a small U-Net that marks scratches, fibres and dust on a scan.

The network (DamageUNet) is trained here, on synthetic damage drawn over clean photographs
(models.damage_training, tasks.demo.damage), like the scratch detector of Microsoft's Bringing Old
Photos Back to Life; `restorium models prepare` makes the weights. It takes RGB in [0, 1] and
gives one logit per pixel at the input's size.

DamageDetector.detect runs it over a scan in tiles with the whole receptive field as context, so
tiled output is the untiled output (no seams, no overlap to blend), then keeps the pixels over
`threshold` that belong to a component reaching `seed_threshold` (hysteresis: a faint stretch
of a scratch stays when the scratch is found, an isolated faint response does not) and at least
`min_area` pixels.

The card's network takes the grey image's white and black top-hats (3, 5, 9 px) beside RGB and
normalises each convolution's output (BatchNorm): fixed line and speck features the first
layers need not learn in a few minutes of training. Measured against the classical detector (bench/diagnosis.py --only
damage) it finds far more of the curved, dark, wide and mixed damage but marks too much clean
texture to be any preset's default (bench/RESULTS.md); a recipe can name it in cleanup.detector.

Speed (bench/diagnosis.py, the 2-core development CPU): 0.16 s for a 0.15-0.25 MP photo.
"""

from __future__ import annotations

import time
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.upscaler import _check_rgb, _Model
from models.weights import ResolvedWeights


def _block(cin: int, cout: int, norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(2):
        layers.append(nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=not norm))
        if norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class DamageUNet(nn.Module):
    """U-Net: `levels` resolutions, `base` channels at the full one, doubling at each halving.

    Max-pool down, 2x2 transposed convolution up, two 3x3 convolutions per level each way. Inputs of
    any size: padded (replicating the border) to a multiple of 2^(levels-1) and cropped back.
    """

    def __init__(self, in_ch: int = 3, base: int = 16, levels: int = 3, norm: bool = False,
                 tophat: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.tophat = tuple(int(k) for k in tophat)
        in_ch += 2 * len(self.tophat)
        if not 2 <= levels <= 4:  # tiles keep an 8 px grid (models.architectures): 3 halvings at most
            raise ValueError(f"DamageUNet has 2 to 4 levels, got {levels}")
        chans = [base * 2**i for i in range(levels)]
        self.multiple = 2 ** (levels - 1)
        self.down = nn.ModuleList([_block(in_ch, chans[0], norm)]
                                  + [_block(chans[i - 1], chans[i], norm) for i in range(1, levels)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(chans[i], chans[i - 1], 2, stride=2)
                                 for i in range(levels - 1, 0, -1)])
        self.merge = nn.ModuleList([_block(2 * chans[i - 1], chans[i - 1], norm) for i in range(levels - 1, 0, -1)])
        self.head = nn.Conv2d(chans[0], 1, 1, bias=True)
        assert self.head.bias is not None  # (bias=True: for the type checker)
        # Start at the damage prior (about 2 % of pixels), not at 50 %: the first steps then learn
        # what damage looks like instead of that most pixels are clean (RetinaNet's prior init).
        nn.init.constant_(self.head.bias, -4.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        extra_h, extra_w = -h % self.multiple, -w % self.multiple
        if extra_h or extra_w:
            x = F.pad(x, (0, extra_w, 0, extra_h), mode="replicate")
        x = self._features(x)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for up, merge in zip(self.up, self.merge, strict=True):
            x = merge(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)[..., :h, :w]

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """RGB centred on 0, plus white and black top-hats of the grey image (k x k squares): what
        is lighter or darker than an opening/closing of that size, i.e. marks narrower than k px.
        Fixed, not learned: the first layers need not find line and speck detectors themselves."""
        feats = [x - 0.5]
        grey = x.mean(dim=1, keepdim=True)
        for k in self.tophat:
            dilate = lambda t: F.max_pool2d(t, k, stride=1, padding=k // 2)
            erode = lambda t: -F.max_pool2d(-t, k, stride=1, padding=k // 2)
            feats += [grey - dilate(erode(grey)), erode(dilate(grey)) - grey]
        return torch.cat(feats, dim=1) if len(feats) > 1 else feats[0]


class DamageDetector(_Model):
    """A damage U-Net ready to run on scans: `detect(rgb) -> (mask, info)`."""

    task = "segment"

    def __init__(self, weights: ResolvedWeights, device: str | torch.device = "cpu", *,
                 precision: str = "auto", tile: int | None = None, threshold: float = 0.5,
                 seed_threshold: float = 0.85, min_area: int = 2) -> None:
        super().__init__(weights, device, precision=precision, tile=tile)
        if not 0 < threshold <= seed_threshold < 1:
            raise ValueError(f"need 0 < threshold <= seed_threshold < 1, got {threshold}, {seed_threshold}")
        self.threshold, self.seed_threshold, self.min_area = threshold, seed_threshold, int(min_area)

    def probability(self, rgb: np.ndarray, tile: int = 512) -> np.ndarray:
        """Per-pixel damage probability (float32 H x W) of float RGB in [0, 1] (H x W x 3)."""
        out = self._run(rgb, lambda t: torch.sigmoid(self.net(t).float()), 1, tile, 0)
        return out[:, :, 0]

    def detect(self, rgb: np.ndarray, tile: int = 512) -> tuple[np.ndarray, dict[str, Any]]:
        """The damage mask (bool H x W) of float RGB in [0, 1], and what was found: component
        counts (specks: at most 40 px and 8 px across; the rest lines), coverage, timing."""
        rgb = _check_rgb(rgb)
        start = time.perf_counter()
        prob = self.probability(rgb, tile)
        mask, specks, lines = self._components(prob)
        info: dict[str, Any] = {
            "damaged": bool(specks or lines), "specks": specks, "lines": lines,
            "coverage": round(float(mask.mean()), 6), "threshold": self.threshold,
            "seed_threshold": self.seed_threshold, "min_area": self.min_area,
            "model": self.card.name, "weights_sha256": self.weights.sha256,
            "inference_seconds": round(self.last_inference_seconds, 3),
            "seconds": round(time.perf_counter() - start, 3), **self.last_execution,
        }
        return mask, info

    def _components(self, prob: np.ndarray) -> tuple[np.ndarray, int, int]:
        """Hysteresis on the probability map: components over `threshold` that reach
        `seed_threshold` and `min_area` px; (mask, specks, lines)."""
        candidate = (prob > self.threshold).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(candidate, connectivity=8)
        if n <= 1:
            return np.zeros(prob.shape, bool), 0, 0
        seeded = np.zeros(n, bool)
        seeded[labels[prob >= self.seed_threshold]] = True
        area = stats[:, cv2.CC_STAT_AREA]
        side = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
        keep = seeded & (area >= self.min_area)
        keep[0] = False
        speck = keep & (area <= 40) & (side <= 8)
        return keep[labels], int(speck.sum()), int((keep & ~speck).sum())
