"""Finishing: keep the master a believable likeness of the scan."""

from __future__ import annotations

import numpy as np

from tasks.restore import resize


def fidelity_blend(ai: np.ndarray, restored: np.ndarray, strength: float) -> np.ndarray:
    """Mix a classical (Lanczos) upscale of the restored scan into the AI result.

    `strength` is the classical share: 0 keeps the AI output, 1 is a plain Lanczos upscale.
    Tames the model's invented texture ("plastic skin") while keeping most of its clarity.
    """
    if strength <= 0:
        return ai
    h, w = ai.shape[:2]
    classical = resize(restored, w, h)
    return np.clip((1.0 - strength) * ai + strength * classical, 0.0, 1.0).astype(np.float32)
