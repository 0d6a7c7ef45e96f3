"""Perceptual hash for near-duplicate scans: the classic 64-bit DCT hash (as `imagehash.phash`).

Luminance area-downscaled to 32x32, 2-D DCT, the 8x8 lowest frequencies compared with their
median, row-major bits as 16 hex digits. Resizing, recompression and mild tone changes move a
hash by a few bits; different photographs differ in about half of them (32). Near duplicates:
`phash_distance(a, b) <= NEAR_DUPLICATE_BITS`.
"""

from __future__ import annotations

import cv2
import numpy as np

from tasks.qa.diagnosis.views import Views

NEAR_DUPLICATE_BITS = 6


def phash_of_gray(gray: np.ndarray) -> str:
    small = cv2.resize(gray.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:8, :8]
    bits = (low > np.median(low)).ravel()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def perceptual_hash(views: Views) -> str:
    return phash_of_gray(views.small_gray(512))


def phash_distance(a: str, b: str) -> int:
    """Hamming distance between two 16-hex-digit hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
