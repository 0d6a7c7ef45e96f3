import hashlib

from flows.demo_scans import write_demo_scans
from tasks.files.imageio import decode


def test_demo_scans_are_byte_identical_each_time_and_decode(tmp_path):
    first = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in write_demo_scans(tmp_path / "a")}
    second = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in write_demo_scans(tmp_path / "b")}
    assert first == second and len(first) == 5
    astronaut = decode(tmp_path / "a" / "astronaut_16bit.tif", max_pixels=10**8)
    assert astronaut.bit_depth == 16 and astronaut.icc is not None and astronaut.ppi == 600
