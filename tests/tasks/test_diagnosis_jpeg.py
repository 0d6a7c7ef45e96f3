"""JPEG blocking: a quality-15 JPEG of a real photo is over the threshold, the PNG under it."""

from __future__ import annotations

from tasks.demo import samples
from tasks.files.imageio import DecodedImage, decode
from tasks.qa.diagnosis.jpeg import BLOCKY, assess_jpeg
from tasks.qa.diagnosis.views import Views


def test_blockiness_separates_jpeg_from_png(shared_data):
    clean = decode(shared_data / "sr_gt/CBSD68/102061.png", max_pixels=10**9).pixels
    png = assess_jpeg(Views(DecodedImage(clean, None, 8, None, None)))
    jpg = assess_jpeg(Views(DecodedImage(samples.jpeg_roundtrip(clean, 15), None, 8, None, None)))
    assert png < BLOCKY < jpg
    shifted = samples.jpeg_roundtrip(clean, 15)[3:, 5:]  # a crop moves the grid: still found
    assert assess_jpeg(Views(DecodedImage(shifted, None, 8, None, None))) > BLOCKY
