"""The review app's preview cache (flows.review.previews): entries built from real scans, then pruned
to a size budget, least recently used first.

Real images from ../shared/data, real JPEG encoding, a real file system; the only thing set by
hand is an entry's last use (its folder's mtime), so the order is known without sleeping.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from flows.review import previews
from tasks.files.atomic import sha256_file

MAX_PIXELS = 400_000_000
HOUR = 3600.0


@pytest.fixture(scope="module")
def scans(tmp_path_factory, shared_data) -> dict[str, tuple[Path, str]]:
    """Four small real scans of different sizes (so entries differ in bytes): name -> (path, sha256)."""
    folder = tmp_path_factory.mktemp("scans")
    crops = {"a": ("old_photos/old/h.png", (0, 0, 300, 200)), "b": ("old_photos/old/f.png", (0, 0, 520, 400)),
             "c": ("old_photos/old/b.png", (0, 0, 600, 600)), "d": ("edge_cases/0030.jpg", None)}
    out = {}
    for name, (rel, box) in crops.items():
        image = Image.open(shared_data / rel).convert("RGB")
        path = folder / f"{name}.png"
        (image.crop(box) if box else image).save(path)
        out[name] = (path, sha256_file(path))
    return out


def _build_all(scans, root: Path) -> dict[str, Path]:
    return {name: _build(scans, root, name) for name in scans}


def _build(scans, root: Path, name: str) -> Path:
    path, sha = scans[name]
    previews.build(path, sha, root, max_pixels=MAX_PIXELS)
    return previews.cache_dir(root, sha)


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir())


def _cache_bytes(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


def _age(folder: Path, seconds_ago: float) -> None:
    stamp = time.time() - seconds_ago
    os.utime(folder, (stamp, stamp))


def test_an_entry_is_built_once_and_serving_it_records_its_use(scans, tmp_path) -> None:
    path, sha = scans["b"]
    manifest = previews.build(path, sha, tmp_path, max_pixels=MAX_PIXELS)
    folder = previews.cache_dir(tmp_path, sha)
    assert (manifest["cols"], manifest["rows"]) == (3, 2) and (folder / "manifest.json").is_file()
    assert len(list(folder.glob("tile-*.jpg"))) == 6 and not list(folder.glob(".*"))
    assert time.time() - folder.stat().st_mtime < 60  # built now = used now
    _age(folder, HOUR)
    stamp = (folder / "manifest.json").stat().st_mtime_ns
    assert previews.load(tmp_path, sha) == manifest
    assert time.time() - folder.stat().st_mtime < 60  # served: used now
    assert (folder / "manifest.json").stat().st_mtime_ns == stamp  # and not made again
    # served again within the minute: no second write to the folder
    _age(folder, 30)
    before = folder.stat().st_mtime_ns
    assert previews.build(path, sha, tmp_path, max_pixels=MAX_PIXELS) == manifest
    assert folder.stat().st_mtime_ns == before
    assert previews.load(tmp_path, "0" * 64) is None


def test_prune_evicts_the_least_recently_used_entries_first(scans, tmp_path) -> None:
    folders = _build_all(scans, tmp_path)
    sizes = {name: _size(folder) for name, folder in folders.items()}
    # last used: a four hours ago, b three, c two, d one; then b is served again
    for hours, name in enumerate("dcba", start=1):
        _age(folders[name], hours * HOUR)
    assert previews.load(tmp_path, scans["b"][1]) is not None
    # room for the two most recently used (b, d) and not for a third
    budget = sizes["b"] + sizes["d"] + min(sizes["a"], sizes["c"]) - 1
    result = previews.prune(tmp_path, budget)
    assert {n for n, f in folders.items() if f.exists()} == {"b", "d"}
    assert result["removed"] == 2 and result["removed_bytes"] == sizes["a"] + sizes["c"]
    assert result["kept"] == 2 and result["kept_bytes"] == sizes["b"] + sizes["d"] <= budget
    assert not result["over_budget"] and _cache_bytes(tmp_path) == result["kept_bytes"]
    # nothing hidden is left behind: the evicted entries were renamed away, then deleted
    assert not [p for p in tmp_path.rglob(".*")]
    # within budget: a second prune removes nothing
    again = previews.prune(tmp_path, budget)
    assert again["removed"] == 0 and again["kept"] == 2


def test_prune_to_zero_keeps_only_the_entries_in_use(scans, tmp_path) -> None:
    folders = _build_all(scans, tmp_path)
    _age(folders["a"], 5 * HOUR)  # the oldest, but on screen
    result = previews.prune(tmp_path, 0, keep=[scans["a"][1]])
    assert [n for n, f in folders.items() if f.exists()] == ["a"]
    assert result["removed"] == 3 and result["kept"] == 1 and result["over_budget"]
    assert result["kept_bytes"] == _size(folders["a"]) == _cache_bytes(tmp_path)
    assert previews.prune(tmp_path, 0)["removed"] == 1 and _cache_bytes(tmp_path) == 0
    with pytest.raises(ValueError):
        previews.prune(tmp_path, -1)
    # an empty or missing cache is fine
    assert previews.prune(tmp_path / "nowhere", 0)["kept"] == 0


def test_a_pruned_entry_is_built_again_on_the_next_request(scans, tmp_path) -> None:
    path, sha = scans["c"]
    first = previews.build(path, sha, tmp_path, max_pixels=MAX_PIXELS)
    folder = previews.cache_dir(tmp_path, sha)
    bytes_before = {p.name: p.read_bytes() for p in folder.iterdir()}
    _age(folder, HOUR)
    assert previews.prune(tmp_path, 0)["removed"] == 1
    assert not folder.exists() and previews.load(tmp_path, sha) is None
    assert previews.build(path, sha, tmp_path, max_pixels=MAX_PIXELS) == first
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == bytes_before
    assert previews.preview_path(tmp_path, sha, 320).is_file()


def test_half_built_and_half_deleted_folders_are_cleaned_up_when_stale(scans, tmp_path) -> None:
    folders = _build_all(scans, tmp_path)
    # a build that died an hour and a half ago: tiles written, no manifest, a temp file left
    (folders["a"] / "manifest.json").unlink()
    (folders["a"] / ".tile-0-0.jpg.1234abcd.partial").write_bytes(b"\xff\xd8 half a tile")
    _age(folders["a"], 1.5 * HOUR)
    # a build in progress (written a moment ago): left alone, counted
    (folders["b"] / "manifest.json").unlink()
    # what an interrupted prune left (renamed away, half deleted)
    leftover = folders["c"].with_name(f".{scans['c'][1]}.0badf00d.pruning")
    os.rename(folders["c"], leftover)
    (leftover / "manifest.json").unlink()
    # things the cache does not own are not touched
    stranger = tmp_path / "ab" / "notes.txt"
    stranger.parent.mkdir(exist_ok=True)
    stranger.write_text("not an entry")
    result = previews.prune(tmp_path, 10**9)
    assert not folders["a"].exists() and not leftover.exists()
    assert folders["b"].is_dir() and folders["d"].is_dir() and stranger.is_file()
    assert result["stale_removed"] == 2 and result["stale_bytes"] > 0
    assert result["in_progress"] == 1 and result["kept"] == 1 and result["removed"] == 0
    # the build in progress is not evicted even at a zero budget; it is not complete either
    result = previews.prune(tmp_path, 0)
    assert folders["b"].is_dir() and not folders["d"].exists()
    assert result["in_progress"] == 1 and result["over_budget"]
    # finishing it (as a new request would) makes it a complete entry again
    assert previews.build(*scans["b"], tmp_path, max_pixels=MAX_PIXELS)["cols"] == 3
    assert previews.load(tmp_path, scans["b"][1]) is not None


def test_requests_during_pruning_get_a_complete_entry_or_build_it_again(scans, tmp_path) -> None:
    """A pruner at budget 0 racing readers and builders: every request ends with the right
    manifest and readable files (built again when pruned), never an error."""
    stop = threading.Event()
    pruned = []

    def pruner() -> None:
        while not stop.is_set():
            pruned.append(previews.prune(tmp_path, 0)["removed"])

    expected = {name: previews.build(path, sha, tmp_path, max_pixels=MAX_PIXELS)
                for name, (path, sha) in scans.items()}
    thread = threading.Thread(target=pruner)
    thread.start()
    again, rounds, deadline = 0, 0, time.monotonic() + 30
    try:
        while rounds < 10 or (sum(pruned) < 10 and time.monotonic() < deadline):
            rounds += 1
            for name, (path, sha) in scans.items():
                for _attempt in range(50):  # what the app does: a file gone since the manifest -> once more
                    data = previews.load(tmp_path, sha) or previews.build(path, sha, tmp_path, max_pixels=MAX_PIXELS)
                    assert data == expected[name]
                    try:
                        assert previews.preview_path(tmp_path, sha, 320).read_bytes()[:2] == b"\xff\xd8"
                        break
                    except FileNotFoundError:
                        again += 1
                else:
                    pytest.fail("never served")
    finally:
        stop.set()
        thread.join()
    assert sum(pruned) > 0  # the race really happened
    print(f"\n{sum(pruned)} entries pruned under the readers, {again} reads built again")
    for name, (path, sha) in scans.items():  # afterwards every entry is whole or absent
        folder = previews.cache_dir(tmp_path, sha)
        if (folder / "manifest.json").is_file():
            assert len(list(folder.glob("tile-*.jpg"))) == expected[name]["cols"] * expected[name]["rows"]


@pytest.mark.slow  # 10,000 files to write and delete: seconds on a busy disk
def test_pruning_a_thousand_entries_is_fast(tmp_path) -> None:
    """The cost of a prune is a scan of the cache: 1000 entries of 10 files (synthetic bytes,
    real layout) take well under a second to measure and to bring to half their size."""
    names = [f"{i:064x}" for i in range(1000)]
    for i, sha in enumerate(names):
        folder = previews.cache_dir(tmp_path, sha)
        folder.mkdir(parents=True)
        for t in range(9):
            (folder / f"tile-{t}-0.jpg").write_bytes(b"\xff" * 100)
        (folder / "manifest.json").write_text("{}")
        os.utime(folder, (1_000_000 + i, 1_000_000 + i))
    entry = 9 * 100 + 2
    sizes: dict = {}
    measured = previews.prune(tmp_path, 10**12, sizes=sizes)
    assert measured["kept"] == 1000 and measured["kept_bytes"] == 1000 * entry and len(sizes) == 1000
    remembered = previews.prune(tmp_path, 10**12, sizes=sizes)  # one stat per entry, not per tile
    assert remembered["kept_bytes"] == measured["kept_bytes"]
    halved = previews.prune(tmp_path, 500 * entry, sizes=sizes)
    assert halved["removed"] == 500 and halved["kept"] == 500 and len(sizes) == 500
    # least recently used first: the first 500 (oldest mtimes) went
    assert not previews.cache_dir(tmp_path, names[499]).exists() and previews.cache_dir(tmp_path, names[500]).exists()
    print(f"\nprune of 1000 entries x 10 files: measure {measured['seconds']:.3f} s, with remembered sizes "
          f"{remembered['seconds']:.3f} s, evict 500 {halved['seconds']:.3f} s")
    assert measured["seconds"] < 2.0 and remembered["seconds"] < 1.0 and halved["seconds"] < 5.0
