"""Perceptual hash: a resized, recompressed copy is a near duplicate, another photo is not."""

from __future__ import annotations

import cv2
import numpy as np

from tasks.demo import samples
from tasks.files.imageio import DecodedImage, decode
from tasks.qa.diagnosis.phash import NEAR_DUPLICATE_BITS, perceptual_hash, phash_distance
from tasks.qa.diagnosis.views import Views


def _hash(pixels: np.ndarray) -> str:
    return perceptual_hash(Views(DecodedImage(pixels, None, 8, None, None)))


def test_near_duplicates_and_different_photos(shared_data):
    a = decode(shared_data / "sr_gt/McMaster/1.tif", max_pixels=10**9).pixels
    b = decode(shared_data / "sr_gt/CBSD68/102061.png", max_pixels=10**9).pixels
    h = _hash(a)
    assert len(h) == 16 and set(h) <= set("0123456789abcdef")
    assert _hash(a) == h  # the same pixels, the same hash
    copy = samples.jpeg_roundtrip(cv2.resize(a, (333, 333), interpolation=cv2.INTER_AREA), 60)
    assert phash_distance(h, _hash(copy)) <= min(6, NEAR_DUPLICATE_BITS)
    assert phash_distance(h, _hash(b)) >= 20


def test_distance_counts_differing_bits():
    assert phash_distance("0000000000000000", "000000000000000f") == 4
    assert phash_distance("ffffffffffffffff", "ffffffffffffffff") == 0
