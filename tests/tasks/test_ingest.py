from __future__ import annotations

import hashlib
import shutil

from PIL import Image

from tasks.ingest import discover, hash_file, ingest_file, ingest_steps
from tasks.types import DIGEST, INGESTION, AgentInfo


def test_discover_is_recursive_sorted_and_skips_hidden_and_other_files(tmp_path, shared_data):
    (tmp_path / "box1/folder2").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    src = shared_data / "edge_cases/0014.jpg"
    for rel in ["b.JPG", "box1/a.jpeg", "box1/folder2/c.jpg", ".hidden/d.jpg", "box1/.e.jpg.partial"]:
        shutil.copy(src, tmp_path / rel)
    (tmp_path / "notes.txt").write_text("x")
    found = [p.relative_to(tmp_path).as_posix() for p in discover(tmp_path)]
    assert found == ["b.JPG", "box1/a.jpeg", "box1/folder2/c.jpg"]


def test_hash_streams_the_whole_file(shared_data):
    path = shared_data / "sr_gt/McMaster/1.tif"
    digest, size = hash_file(path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest() and size == path.stat().st_size


def test_ingest_reads_header_facts_including_exif_orientation(tmp_path, shared_data):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90° CW
    path = tmp_path / "rotated.jpg"
    Image.open(shared_data / "edge_cases/0014.jpg").save(path, exif=exif, dpi=(1200, 1200))
    facts = ingest_file(path)
    assert facts.error is None
    assert (facts.tech.format, facts.tech.orientation, facts.tech.ppi, facts.tech.bit_depth) == ("JPEG", 6, 1200.0, 8)


def test_ingest_records_a_bad_header_instead_of_raising(tmp_path):
    path = tmp_path / "empty.png"
    path.touch()
    facts = ingest_file(path)
    assert facts.tech is None and facts.error == "zero-byte file"
    assert facts.sha256 == hashlib.sha256(b"").hexdigest()


def test_ingest_steps_are_deterministic_per_content(shared_data):
    agent = AgentInfo(kind="software", name="restorium", version="0.1.0")
    facts = ingest_file(shared_data / "edge_cases/0014.jpg")
    first, second = ingest_steps(facts, [agent]), ingest_steps(facts, [agent])
    assert [s.type for s in first] == [INGESTION, DIGEST]
    assert [s.event_uuid for s in first] == [s.event_uuid for s in second]
    assert first[1].parameters["value"] == facts.sha256
