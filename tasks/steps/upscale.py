"""Upscaling to the planned size: model passes at the model's native scale, then an exact resize.

The model itself is passed in (tasks/ never loads one); an x4 model asked for x2 still runs at
x4, so the planner keeps passes to the minimum and the resize takes it to the exact target. On
the last pass the model is asked to block-average its output by the largest divisor of its scale
that stays at or above the target (x4 asked for x2: 2), tile by tile: the full x4 image is never
held (4.6 GB in float32 for a 24 MP scan) and the block mean is what the area resize would do.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from tasks.steps.restore import resize

# float RGB [0,1] and a block-mean factor (a divisor of the model's scale) → float RGB at scale/factor
ModelFn = Callable[[np.ndarray, int], np.ndarray]


def output_reduction(height: int, width: int, model_scale: int, target_width: int, target_height: int) -> int:
    """The largest divisor r of the model's scale with the model's output divided by r still at
    least the target in both directions (so the final resize only ever shrinks or keeps it)."""
    for r in range(model_scale, 1, -1):
        if model_scale % r == 0 and width * model_scale // r >= target_width \
                and height * model_scale // r >= target_height:
            return r
    return 1


ENSEMBLE_VIEWS = 8  # the dihedral group of the square: 4 rotations, each also mirrored


def _view(a: np.ndarray, k: int) -> np.ndarray:
    """The k-th of the 8 flips and rotations of an H x W x C image (0: the image itself)."""
    return np.rot90(a[:, ::-1] if k >= 4 else a, k % 4)


def _unview(a: np.ndarray, k: int) -> np.ndarray:
    """_view's inverse: the k-th view turned back."""
    a = np.rot90(a, -(k % 4))
    return a[:, ::-1] if k >= 4 else a


def self_ensemble(model: ModelFn, views: int = ENSEMBLE_VIEWS) -> ModelFn:
    """The model run on `views` flips and rotations of its input, each result turned back, averaged
    (a running sum: one extra output held, whatever the number of views)."""
    if not 1 <= views <= ENSEMBLE_VIEWS:
        raise ValueError(f"self-ensemble views must be 1-{ENSEMBLE_VIEWS}, got {views}")
    if views == 1:
        return model  # no copy of the output (a 24 MP scan's is gigabytes)

    def ensembled(rgb: np.ndarray, reduce: int) -> np.ndarray:
        total = model(rgb, reduce).astype(np.float32, copy=True)
        for k in range(1, views):
            total += _unview(model(np.ascontiguousarray(_view(rgb, k)), reduce), k)
        return total / views

    return ensembled


def upscale_to(rgb: np.ndarray, width: int, height: int, passes: int, model: ModelFn | None,
               model_scale: int = 1) -> np.ndarray:
    out = rgb
    for i in range(passes):
        assert model is not None, "the plan asks for model passes but no model was given"
        last = i == passes - 1
        h, w = out.shape[:2]
        out = model(out, output_reduction(h, w, model_scale, width, height) if last else 1)
    return resize(out, width, height)


def upscale_alpha(alpha: np.ndarray, width: int, height: int) -> np.ndarray:
    """Alpha is a mask, not a picture: resampled classically, never through the model."""
    return resize(alpha, width, height)
