"""Fixtures for the models tests. The weights and images come from the shared fixtures in
tests/conftest.py (shared_models: $RESTORIUM_MODELS_DIR or ../shared/models; shared_data)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _private_user_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash caches for read-only model folders go to the user cache: keep tests out of ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


def _read_rgb(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, f"cv2 could not read {path}"
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * float(np.log10(1.0 / mse))


@pytest.fixture(scope="session")
def read_rgb() -> Callable[[Path], np.ndarray]:
    """float32 RGB in [0, 1] from an image file (cv2 reads BGR)."""
    return _read_rgb


@pytest.fixture(scope="session")
def psnr() -> Callable[[np.ndarray, np.ndarray], float]:
    """PSNR in dB of images in [0, 1]."""
    return _psnr
