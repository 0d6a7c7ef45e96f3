from __future__ import annotations

import numpy as np
import pytest

from tasks.steps.upscale import ENSEMBLE_VIEWS, _unview, _view, self_ensemble, upscale_to


def _nearest_x4(rgb: np.ndarray, reduce: int) -> np.ndarray:  # the same in every orientation
    out = np.repeat(np.repeat(rgb, 4, axis=0), 4, axis=1)
    h, w = out.shape[:2]
    return out.reshape(h // reduce, reduce, w // reduce, reduce, 3).mean(axis=(1, 3))


def _with_left_bias(rgb: np.ndarray, reduce: int) -> np.ndarray:
    """A model that invents something tied to its orientation: it brightens the left edge."""
    out = _nearest_x4(rgb, reduce).copy()
    out[:, :2] += 0.4
    return out


def test_each_view_turns_back_to_the_image():
    image = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)  # not square: rotations swap H, W
    shapes = {_view(image, k).shape for k in range(ENSEMBLE_VIEWS)}
    assert shapes == {(5, 7, 3), (7, 5, 3)}
    for k in range(ENSEMBLE_VIEWS):
        assert np.array_equal(_unview(_view(image, k), k), image)


def test_self_ensemble_keeps_what_every_view_agrees_on_and_averages_out_the_rest():
    image = np.random.default_rng(1).random((6, 9, 3)).astype(np.float32)
    agreed = self_ensemble(_nearest_x4)(image, 2)
    assert agreed.shape == (12, 18, 3)
    np.testing.assert_allclose(agreed, _nearest_x4(image, 2), atol=1e-6)

    single = _with_left_bias(image, 1)
    averaged = self_ensemble(_with_left_bias)(image, 1)
    truth = _nearest_x4(image, 1)
    assert np.abs(single - truth).max() == pytest.approx(0.4)
    # the bias lands on a different edge in each view: on the left edge only 2 of 8 views add it
    np.testing.assert_allclose(averaged[12:-12, :2] - truth[12:-12, :2], 0.4 * 2 / 8, atol=1e-6)
    np.testing.assert_allclose(averaged[8:-8, 8:-8], truth[8:-8, 8:-8], atol=1e-6)


def test_self_ensemble_runs_each_pass_in_every_view():
    calls: list[tuple[int, int]] = []

    def counting(rgb: np.ndarray, reduce: int) -> np.ndarray:
        calls.append(rgb.shape[:2])
        return _nearest_x4(rgb, reduce)

    out = upscale_to(np.zeros((4, 6, 3), np.float32), 48, 32, 1, self_ensemble(counting), 4)
    assert out.shape == (32, 48, 3)
    assert len(calls) == ENSEMBLE_VIEWS and set(calls) == {(4, 6), (6, 4)}
    assert self_ensemble(counting, 1) is counting  # one view: the model itself, no copy
    with pytest.raises(ValueError, match="views"):
        self_ensemble(counting, 9)
