"""Learned damage detection: a small U-Net that marks scratches, fibres and dust on a scan.

The network (DamageUNet) is trained here, on synthetic damage drawn over clean photographs
(models.damage_training, tasks.demo.damage), like the scratch detector of Microsoft's Bringing Old
Photos Back to Life; `restorium models prepare` makes the weights. It takes RGB in [0, 1] and
gives one logit per pixel at the input's size.

DamageDetector.detect runs it over a scan in tiles with the whole receptive field as context, so
tiled output is the untiled output (no seams, no overlap to blend), averages its answer over the
eight turned and mirrored views of each tile, then keeps the pixels over `threshold` that belong
to a component reaching `seed_threshold` (hysteresis: a faint stretch of a scratch stays when the
scratch is found, an isolated faint response does not) and at least `min_area` pixels.

The defaults are strict (8 views, 0.8, seed 0.995, 16 px): what it keeps is nearly always damage
(precision 0.94 on bench/diagnosis.py --only damage --quick), so tasks.qa.assessment adds its
mask to the classical detector's. It then finds a fifth of the curved, dark and wide marks the
classical one cannot see, and no dust. It still flags 1 of 12 clean photographs and 1 of 51
further clean images (the looser 0.5 / 0.85 / 2 px of one view flagged 67-83 % of them). On a
24 MP scan it takes about 4 minutes on 2 cores and finds none of the damage drawn there at twice
the size (bench/RESULTS.md).

The card's network takes the grey image's white and black top-hats (3, 5, 9 px) beside RGB and
normalises each convolution's output (BatchNorm): fixed line and speck features the first
layers need not learn in a few minutes of training. A recipe names it in
cleanup.detector; no preset does, because a fresh install does not make its weights.

Speed (bench/diagnosis.py, the 2-core development CPU): 0.16 s a view for a 0.15-0.25 MP photo.
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


# Test-time views: (quarter turns, mirrored). The network's stray answers on clean texture differ
# from view to view while damage is found in every one, so the mean is a surer score (bench/RESULTS.md).
VIEWS: dict[int, tuple[tuple[int, bool], ...]] = {
    1: ((0, False),),
    2: ((0, False), (0, True)),
    4: ((0, False), (1, False), (2, True), (3, True)),
    8: tuple((turns, mirror) for turns in range(4) for mirror in (False, True)),
}


class DamageDetector(_Model):
    """A damage U-Net ready to run on scans: `detect(rgb) -> (mask, info)`."""

    task = "segment"

    def __init__(self, weights: ResolvedWeights, device: str | torch.device = "cpu", *,
                 precision: str = "auto", tile: int | None = None, threshold: float = 0.8,
                 seed_threshold: float = 0.995, min_area: int = 16, views: int = 8) -> None:
        super().__init__(weights, device, precision=precision, tile=tile)
        if not 0 < threshold <= seed_threshold < 1:
            raise ValueError(f"need 0 < threshold <= seed_threshold < 1, got {threshold}, {seed_threshold}")
        if views not in VIEWS:
            raise ValueError(f"views is one of {sorted(VIEWS)}, got {views}")
        self.threshold, self.seed_threshold, self.min_area = threshold, seed_threshold, int(min_area)
        self.views = views

    def probability(self, rgb: np.ndarray, tile: int = 512) -> np.ndarray:
        """Per-pixel damage probability (float32 H x W) of float RGB in [0, 1] (H x W x 3): the
        mean over `views` turned and mirrored copies of each tile, each mapped back."""
        def forward(t: torch.Tensor) -> torch.Tensor:
            total = torch.zeros_like(t[:, :1], dtype=torch.float32)
            for turns, mirror in VIEWS[self.views]:
                view = torch.rot90(t.flip(-1) if mirror else t, turns, (-2, -1))
                p = torch.rot90(torch.sigmoid(self.net(view).float()), -turns, (-2, -1))
                total += p.flip(-1) if mirror else p
            return total / self.views

        return self._run(rgb, forward, 1, tile, 0)[:, :, 0]

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
            "seed_threshold": self.seed_threshold, "min_area": self.min_area, "views": self.views,
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
