from __future__ import annotations

import hashlib
import shutil

import pytest
from PIL import Image

from tasks.files.ingest import discover, hash_file, ingest_file, ingest_steps
from tasks.records.types import DIGEST, INGESTION, AgentInfo


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


def test_discover_follows_symlinked_folders_as_found_under_root(tmp_path, shared_data):
    share, root = tmp_path / "share", tmp_path / "scans"
    (share / "box3").mkdir(parents=True)
    (share / ".trash").mkdir()
    root.mkdir()
    src = shared_data / "edge_cases/0014.jpg"
    for rel in ["a.jpg", "box3/b.tif", ".trash/c.jpg", ".d.jpg"]:
        shutil.copy(src, share / rel)
    shutil.copy(src, root / "local.png")
    (root / "collection").symlink_to(share, target_is_directory=True)
    (root / ".hidden-link").symlink_to(share, target_is_directory=True)
    found = [p.relative_to(root).as_posix() for p in discover(root)]
    # paths as found, not resolved: the sub-folder under root is what the masters keep
    assert found == ["collection/a.jpg", "collection/box3/b.tif", "local.png"]


def test_discover_lists_each_real_folder_once_and_a_link_to_an_ancestor_does_not_loop(tmp_path, shared_data):
    root = tmp_path / "scans"
    (root / "box1/sub").mkdir(parents=True)
    src = shared_data / "edge_cases/0014.jpg"
    shutil.copy(src, root / "top.jpg")
    shutil.copy(src, root / "box1/sub/deep.jpg")
    (root / "box1/sub/back").symlink_to(root, target_is_directory=True)  # a loop to the root
    (root / "box1/up").symlink_to(root / "box1", target_is_directory=True)  # a loop to the parent
    (root / "alias").symlink_to(root / "box1", target_is_directory=True)  # a second way into box1
    (root / "alias2").symlink_to(root / "box1/sub", target_is_directory=True)  # and into its sub-folder
    found = [p.relative_to(root).as_posix() for p in discover(root)]
    # every file once, where it really is (real folders win over links, whatever the names' order)
    assert found == ["box1/sub/deep.jpg", "top.jpg"]


def test_discover_walks_two_links_to_one_outside_folder_once_in_a_stable_order(tmp_path, shared_data):
    share, root = tmp_path / "share", tmp_path / "scans"
    share.mkdir()
    root.mkdir()
    shutil.copy(shared_data / "edge_cases/0014.jpg", share / "x.jpg")
    (root / "b-link").symlink_to(share, target_is_directory=True)
    (root / "a-link").symlink_to(share, target_is_directory=True)
    (root / "broken").symlink_to(tmp_path / "gone", target_is_directory=True)
    assert [p.relative_to(root).as_posix() for p in discover(root)] == ["a-link/x.jpg"]


def test_discover_refuses_a_file_with_a_clear_error(tmp_path):
    path = tmp_path / "scan.jpg"
    path.touch()
    with pytest.raises(NotADirectoryError, match="not a folder of scans"):
        discover(path)
