import hashlib
from dataclasses import replace

import numpy as np

from flows.demo_scans import write_demo_scans
from tasks.demo.samples import jpeg_roundtrip
from tasks.files.imageio import decode


def test_demo_scans_are_byte_identical_each_time_and_decode(tmp_path):
    first = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in write_demo_scans(tmp_path / "a")}
    second = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in write_demo_scans(tmp_path / "b")}
    assert first == second and len(first) == 5
    astronaut = decode(tmp_path / "a" / "astronaut_16bit.tif", max_pixels=10**8)
    assert astronaut.bit_depth == 16 and astronaut.icc is not None and astronaut.ppi == 600


def test_the_written_scans_are_demo_scans_pixels_and_the_undamaged_ones_differ_only_in_the_mask(tmp_path):
    # bench/demo_damage.py masters demo_scans() with and without their drawn damage: the files are these
    # pixels, and dropping the damage leaves the rest of each scan as it was (the noise is drawn first).
    from flows.demo_scans import DEMO_DEGRADATION, demo_scans

    damaged = demo_scans()
    undamaged = demo_scans(spec=replace(DEMO_DEGRADATION, scratches=0, dust=0))
    for path, (file, scan, mask), (_, clean, none) in zip(write_demo_scans(tmp_path), damaged, undamaged, strict=True):
        assert path.name == file and mask.any() and not none.any()
        pixels = decode(path, max_pixels=10**8).pixels
        expected = jpeg_roundtrip(scan, 88) if file.endswith(".jpg") else scan
        assert np.array_equal(pixels // 257 if pixels.dtype == np.uint16 else pixels, expected), file
        assert np.array_equal(scan[~mask], clean[~mask]) and not np.array_equal(scan[mask], clean[mask]), file
