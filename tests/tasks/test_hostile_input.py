"""Hostile input at the stage level: the boundary, the limits, and every corpus case's reading.

The whole batch over the corpus is tests/flows/test_hostile_corpus.py (slow); here each case
is discovered, ingested and decoded alone, which is where it must already be classified.
"""

from __future__ import annotations

import errno
import struct
from pathlib import Path

import hostile_corpus
import numpy as np
import pytest
from PIL import Image

from tasks.files.imageio import decode, inspect, jpeg_frame
from tasks.files.ingest import discover_all, ingest_file
from tasks.files.limits import Limits, check_image
from tasks.records.failures import MEMORY, TOO_LARGE, UNREADABLE, ScanError, failure_of, scan_boundary


@pytest.fixture(scope="module")
def photo(shared_data) -> np.ndarray:
    return np.asarray(Image.open(shared_data / "old_photos/old/h.png").convert("RGB"))[100:140, 60:108].copy()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, photo):
    base = tmp_path_factory.mktemp("hostile")
    cases = hostile_corpus.build(base / "scans", photo, base / "outside")
    return base / "scans", cases


def test_the_corpus_has_at_least_forty_kinds(corpus):
    _, cases = corpus
    assert len(cases) >= 40 and len({c.name for c in cases}) == len(cases)


def test_every_corpus_case_is_read_as_it_declares(corpus, monkeypatch):
    root, cases = corpus
    found = discover_all(root)
    skipped = {p.relative_to(root).as_posix(): reason for p, reason in found.skipped}
    scans = {p.relative_to(root).as_posix() for p in found.scans}
    assert not scans & set(skipped)
    assert scans | set(skipped) == {c.name for c in cases}  # every entry accounted for
    for case in cases:
        if case.outcome == "skipped":
            assert case.detail in skipped[case.name], case.name
            continue
        assert case.name in scans, case.name
        if case.unreadable:
            continue  # root reads anything: the flow test makes its open fail
        path = root / case.name
        facts = ingest_file(path)
        assert facts.sha256, case.name
        try:
            image = decode(Path(facts.path), max_pixels=400_000_000)
        except ScanError as exc:
            assert case.outcome == "failed", f"{case.name}: {exc}"
            if case.detail:
                assert exc.kind == case.detail, f"{case.name}: {exc.kind} {exc.reason}"
            if case.reason:
                assert case.reason in exc.reason, f"{case.name}: {exc.reason}"
            continue
        assert case.outcome in ("mastered", "unchanged"), f"{case.name} decoded but should fail"
        if case.outcome == "mastered" and case.detail and "near-duplicate" not in case.detail:
            assert any(case.detail in note for note in image.notes), f"{case.name}: {image.notes}"


def test_a_header_bomb_is_refused_before_pillow_sees_it(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(hostile_corpus.png_header_bomb(60000, 60000))
    facts = ingest_file(path)  # used to raise DecompressionBombError out of ingest
    assert facts.error_kind == TOO_LARGE and "over the pixel limit of 400,000,000" in facts.error


def test_a_large_valid_scan_passes_the_limits_and_bytes_are_limited_too(tmp_path):
    check_image("scan.tif", 12_000, 10_000, 3, 2, Limits())  # 120 MP 16-bit RGB: a real scan
    with pytest.raises(ScanError, match="decoded-bytes limit") as refused:
        check_image("scan.tif", 12_000, 10_000, 3, 2, Limits(max_pixels=400_000_000, max_bytes=500_000_000))
    assert refused.value.kind == TOO_LARGE


def test_jpeg_frame_is_read_without_decoding(tmp_path, photo):
    path = tmp_path / "x.jpg"
    path.write_bytes(hostile_corpus.jpeg_header_bomb(hostile_corpus.pil_bytes(Image.fromarray(photo), "JPEG"),
                                                     65000, 65000))
    assert jpeg_frame(path)[:2] == (65000, 65000)
    with pytest.raises(ScanError, match="pixel limit"):
        inspect(path)


def test_the_boundary_classifies_what_decoders_raise():
    from PIL.Image import DecompressionBombError

    assert failure_of("a.png", MemoryError()).kind == MEMORY
    assert failure_of("a.png", DecompressionBombError("big")).kind == TOO_LARGE
    assert failure_of("a.png", PermissionError(errno.EACCES, "Permission denied")).kind == UNREADABLE
    assert failure_of("a.png", OSError("image file is truncated")).kind == "invalid"
    assert failure_of("a.png", struct.error("unpack")).kind == "invalid"
    with pytest.raises(ScanError, match="a.png: damaged or malformed file \\(AttributeError"):
        with scan_boundary("a.png"):
            raise AttributeError("'int' object has no attribute 'name'")  # tifffile on a bad enum
    with pytest.raises(KeyboardInterrupt):  # the run itself may still be stopped
        with scan_boundary("a.png"):
            raise KeyboardInterrupt


def test_warnings_inside_the_boundary_become_notes_even_when_warnings_are_errors():
    import warnings

    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with scan_boundary("a.jpg", notes):
            warnings.warn("Corrupt EXIF data", UserWarning)
    assert notes == ["decoder warning: UserWarning: Corrupt EXIF data"]


def test_an_unreadable_file_is_reported_not_raised(tmp_path, monkeypatch):
    import tasks.files.ingest as ingest

    path = tmp_path / "locked.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n")

    def refuse(p):
        raise PermissionError(errno.EACCES, "Permission denied", str(p))

    monkeypatch.setattr(ingest, "open_original", refuse)  # tests run as root: chmod 000 would not stop it
    facts = ingest_file(path)
    assert facts.sha256 == "" and facts.error_kind == UNREADABLE and "Permission denied" in facts.error


def test_a_120_megapixel_scan_passes_the_limits_and_decodes(tmp_path):
    import tifffile

    path = tmp_path / "large.tif"
    rows = np.arange(10_000, dtype=np.uint8)[:, None]
    tifffile.imwrite(path, np.broadcast_to(rows, (10_000, 12_000)), rowsperstrip=256, compression="zlib")
    image = decode(path, max_pixels=400_000_000)
    assert (image.width, image.height) == (12_000, 10_000) and image.pixels[9_999, 0] == 9_999 % 256


def test_what_tifffile_logs_about_a_scan_becomes_its_notes(caplog):
    import logging

    notes: list[str] = []
    with caplog.at_level(logging.WARNING), scan_boundary("a.tif", notes):
        logging.getLogger("tifffile").error("<tifffile.TiffPage 0 @8> incorrect StripByteCounts count")
    assert notes == ["tifffile: <tifffile.TiffPage 0 @8> incorrect StripByteCounts count"]
    assert not [r for r in caplog.records if r.name == "tifffile"]  # not also on the console


def test_the_boundary_keeps_each_threads_notes_apart():
    import logging
    import threading

    barrier = threading.Barrier(2)
    notes: dict[str, list[str]] = {"a": [], "b": []}

    def work(name: str) -> None:
        with scan_boundary(f"{name}.tif", notes[name]):
            barrier.wait()  # both threads inside a boundary at once
            logging.getLogger("tifffile").warning(f"bad tag in {name}")
            barrier.wait()

    threads = [threading.Thread(target=work, args=(n,)) for n in notes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert notes == {"a": ["tifffile: bad tag in a"], "b": ["tifffile: bad tag in b"]}
