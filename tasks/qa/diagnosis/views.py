"""Shared views of one scan for the detectors: downscaled copies, luminance, full-resolution crops.

A 24-megapixel 16-bit scan is 144 MB; converting it all to float would alone eat the time budget.
So every detector works on what its finding allows: a downscaled copy (made once with area
averaging, then reused), or a few full-resolution crops when the finding lives at the pixel scale
(noise, JPEG blocks, blur extent). Values are float32 in [0, 1] whatever the bit depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from tasks.files.imageio import DecodedImage

_FIRST_LEVEL = 2048  # the one downscale of the full image; smaller views are made from it


def unit_float(pixels: np.ndarray) -> np.ndarray:
    """uint8/uint16/float pixels → float32 in [0, 1]."""
    if pixels.dtype == np.float32:
        return pixels
    if pixels.dtype.kind == "f":
        return pixels.astype(np.float32)
    return pixels.astype(np.float32) / float(np.iinfo(pixels.dtype).max)


def to_gray(values: np.ndarray) -> np.ndarray:
    """Float RGB → luminance (Rec. 601, as OpenCV and the rest of the pipeline)."""
    return values if values.ndim == 2 else cv2.cvtColor(values, cv2.COLOR_RGB2GRAY)


def resize_long_side(values: np.ndarray, long_side: int) -> np.ndarray:
    """Area-averaged copy whose long side is at most `long_side` (the input itself if smaller)."""
    h, w = values.shape[:2]
    scale = long_side / max(h, w)
    if scale >= 1:
        return values
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(values, size, interpolation=cv2.INTER_AREA)


@dataclass
class Views:
    """Lazily made, cached views of one decoded image."""

    image: DecodedImage
    _cache: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.height, self.image.width

    @property
    def pixels(self) -> np.ndarray:
        return self.image.pixels

    @property
    def peak(self) -> float:
        return float(np.iinfo(self.pixels.dtype).max)

    def small(self, long_side: int) -> np.ndarray:
        """Float RGB (or gray) copy with the long side at most `long_side`."""
        key = ("rgb", long_side)
        if key not in self._cache:
            longest = max(self.shape)
            if longest <= long_side:
                out = unit_float(self.pixels)
            elif long_side >= _FIRST_LEVEL or longest <= _FIRST_LEVEL:
                # resize the integer pixels, then convert: 3x cheaper than the other way round
                out = unit_float(resize_long_side(self.pixels, long_side))
            else:
                out = resize_long_side(self.small(_FIRST_LEVEL), long_side)
            self._cache[key] = out
        return self._cache[key]

    def small_gray(self, long_side: int) -> np.ndarray:
        key = ("gray", long_side)
        if key not in self._cache:
            self._cache[key] = to_gray(self.small(long_side))
        return self._cache[key]

    def crop(self, top: int, left: int, height: int, width: int, *, gray: bool = True) -> np.ndarray:
        """Full-resolution float crop (luminance unless gray=False)."""
        values = unit_float(self.pixels[top : top + height, left : left + width])
        return to_gray(values) if gray else values

    def crops(self, side: int, count: int) -> list[tuple[int, int, int, int]]:
        """Up to `count` full-resolution boxes (top, left, h, w) of `side` px centred on an
        interior grid (away from scan borders and frames); the whole image when it is smaller."""
        h, w = self.shape
        if h * w <= side * side * count:
            return [(0, 0, h, w)]
        n = max(1, math.isqrt(count))
        sh, sw = min(side, h), min(side, w)
        tops = np.clip(np.linspace(0, h, n + 2)[1:-1] - sh / 2, 0, h - sh).round().astype(int)
        lefts = np.clip(np.linspace(0, w, n + 2)[1:-1] - sw / 2, 0, w - sw).round().astype(int)
        return [(int(t), int(lf), sh, sw) for t in tops for lf in lefts]


def json_float(value: float, digits: int) -> float:
    """A plain, finite, rounded float for the findings (no numpy types, no NaN/inf)."""
    value = float(value)
    if not math.isfinite(value):
        return 0.0
    return round(value, digits) + 0.0  # + 0.0 turns -0.0 into 0.0
