"""Upscaling to the planned size: model passes at the model's native scale, then an exact resize.

The model itself is passed in (tasks/ never loads one); an x4 model asked for x2 still runs at
x4, so the planner keeps passes to the minimum and the resize takes it to the exact target.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from tasks.restore import resize

ModelFn = Callable[[np.ndarray], np.ndarray]  # float RGB [0,1] → float RGB at the model's scale


def upscale_to(rgb: np.ndarray, width: int, height: int, passes: int, model: ModelFn | None) -> np.ndarray:
    out = rgb
    for _ in range(passes):
        assert model is not None, "the plan asks for model passes but no model was given"
        out = model(out)
    return resize(out, width, height)


def upscale_alpha(alpha: np.ndarray, width: int, height: int) -> np.ndarray:
    """Alpha is a mask, not a picture: resampled classically, never through the model."""
    return resize(alpha, width, height)
