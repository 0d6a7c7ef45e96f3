"""Keeping faces true to the person: a soft mask over detected faces, and a blend that keeps
the gentler (closer to the scan) result inside it. The detector itself is a model (models.faces);
these are plain image operations on its boxes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np


def face_mask(shape: tuple[int, ...], faces: Sequence[Any], *,
              feather: float = 0.15, grow: float = 1.2) -> np.ndarray:
    """A float32 HxW mask in [0, 1]: 1 inside each face, 0 far from any, soft in between.

    Each face is an ellipse inscribed in its box grown by `grow` (YuNet's box is tight around
    brow to chin; hair and jaw line are part of the likeness too), feathered by a Gaussian of
    `feather` x the face's shorter side, so a strength change has no visible edge.
    """
    h, w = shape[:2]
    mask = np.zeros((h, w), np.float32)
    for face in faces:
        x, y, bw, bh = getattr(face, "box", face)  # a detector's Face or an (x, y, w, h) box
        cx, cy = x + bw / 2, y + bh / 2
        ax, ay = bw * grow / 2, bh * grow / 2
        sigma = max(0.5, feather * min(bw, bh))
        reach = int(np.ceil(3 * sigma))
        left, top = max(0, int(cx - ax) - reach), max(0, int(cy - ay) - reach)
        right, bottom = min(w, int(np.ceil(cx + ax)) + reach + 1), min(h, int(np.ceil(cy + ay)) + reach + 1)
        if right <= left or bottom <= top:
            continue
        roi: np.ndarray = np.zeros((bottom - top, right - left), np.float32)
        shift = 4  # sub-pixel ellipse: OpenCV takes fixed-point coordinates
        cv2.ellipse(roi, (int(round((cx - left) * 16)), int(round((cy - top) * 16))),
                    (int(round(ax * 16)), int(round(ay * 16))), 0, 0, 360, 1.0, -1, cv2.LINE_AA, shift)
        if feather > 0:
            # replicate: where the image edge cuts a face, the face goes on beyond it
            roi = cv2.GaussianBlur(roi, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
        np.maximum(mask[top:bottom, left:right], roi, out=mask[top:bottom, left:right])
    return np.clip(mask, 0.0, 1.0)


def blend_by_mask(strong: np.ndarray, gentle: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`gentle` where mask is 1 (faces), `strong` where it is 0, mixed in between."""
    if strong.shape != gentle.shape or mask.shape != strong.shape[:2]:
        raise ValueError(f"shapes differ: strong {strong.shape}, gentle {gentle.shape}, mask {mask.shape}")
    m = mask.astype(np.float32)[:, :, None] if strong.ndim == 3 else mask.astype(np.float32)
    return np.clip(strong + m * (gentle - strong), 0.0, 1.0).astype(np.float32)
