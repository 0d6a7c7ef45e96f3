"""Browser-sized views of scans and masters: downscaled previews and a grid of 1:1 tiles.

A 100 MP TIFF never goes to a browser: the review app shows JPEG previews (long edge at most
PREVIEW_EDGES[-1]) and, for 100 %/200 % zoom, TILE x TILE JPEG crops of the full-resolution
pixels. Everything is made in one decode, the first time a file is asked for, and cached under
`cache_root/<sha256[:2]>/<sha256>/` keyed by the file's content: a changed file is a new key,
and the same bytes are never decoded twice. `manifest.json` is written last and marks a
complete cache entry.

The same root holds the deep-zoom tiles of the review page (flows.review.deepzoom): IIIF
level-0 folders at `cache_root/iiif/<file uuid>/<sha256[:16]>/`, written whole under a hidden
`.partial` name and renamed into place (tasks.files.iiif_tiles), so a folder at its final name is
complete.

The cache has a size budget (`prune`): whole entries go, least recently used first, preview
entries and IIIF folders alike. An entry's folder mtime is its last use: set when it is built,
and bumped when it is served (`load`, `record_use`, at most once a minute per entry). An evicted
entry is renamed away (a hidden `.<name>.<token>.pruning` sibling) before it is deleted, so its
name never holds a half-deleted entry: a request that finds no manifest (or no info.json) simply
builds it again.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from tasks.files.atomic import atomic_write
from tasks.files.imageio import decode
from tasks.qa.diagnosis.views import resize_long_side  # area-averaged, never enlarged

PREVIEW_EDGES = (320, 1600)  # thumbnail in the item list, the before/after view
TILE = 256  # pixels of the full-resolution image per tile side
_PREVIEW_QUALITY = 88
# Tiles are what a reviewer inspects for invented detail: near-lossless, no chroma subsampling.
_TILE_QUALITY = 95
_SHA = re.compile(r"^[0-9a-f]{64}$")
_SHARD = re.compile(r"^[0-9a-f]{2}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_VERSION = re.compile(r"^[0-9a-f]{16}$")  # sha256[:16] of the file: an IIIF folder's name
IIIF = "iiif"  # cache_root/iiif/<file uuid>/<sha256[:16]>/: deep-zoom tiles (flows.review.deepzoom)
_PARTIAL = ".partial"  # suffix of an IIIF folder being written (tasks.files.iiif_tiles)
MANIFEST = "manifest.json"
TOUCH_EVERY = 60.0  # seconds: serving an entry bumps its folder's mtime at most this often
STALE_AFTER = 3600.0  # seconds: a folder without manifest untouched this long is a build that died
_PRUNING = ".pruning"  # suffix of an evicted entry renamed away, being deleted
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def cache_dir(cache_root: Path, sha256: str) -> Path:
    if not _SHA.match(sha256):  # the only name that reaches the file system here
        raise ValueError(f"{sha256!r} is not a sha256")
    return Path(cache_root) / sha256[:2] / sha256


def iiif_dir(cache_root: Path, file_uuid: str, sha256: str) -> Path:
    """The IIIF folder of a catalogued file's content (its identifier is `<file uuid>/<sha256[:16]>`)."""
    if not _UUID.match(file_uuid):  # both names reach the file system: nothing but hex and dashes
        raise ValueError(f"{file_uuid!r} is not a uuid")
    return iiif_root(cache_root) / file_uuid / cache_dir(cache_root, sha256).name[:16]


def iiif_root(cache_root: Path) -> Path:
    return Path(cache_root) / IIIF


def iiif_key(file_uuid: str, sha256: str) -> str:
    """The name `lock` and `prune` know an IIIF folder by: `iiif/<uuid>/<sha256[:16]>`."""
    return f"{IIIF}/{file_uuid}/{sha256[:16]}"


def to_display(pixels: np.ndarray) -> np.ndarray:
    """uint8 RGB or grayscale for a browser (16-bit scaled, not clipped)."""
    if pixels.dtype == np.uint8:
        return pixels
    if np.issubdtype(pixels.dtype, np.integer):
        return (pixels.astype(np.float32) * (255.0 / np.iinfo(pixels.dtype).max) + 0.5).astype(np.uint8)
    return (np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def jpeg_bytes(pixels: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality, subsampling=0 if quality >= 95 else 2)
    return buffer.getvalue()


def tile_grid(width: int, height: int, tile: int = TILE) -> tuple[int, int]:
    return -(-width // tile), -(-height // tile)


def load(cache_root: Path, sha256: str) -> dict[str, Any] | None:
    """The manifest of the complete cache entry of `sha256`, its use recorded; None when there is
    none (never built, being built, or pruned): the caller builds it (again)."""
    folder = cache_dir(cache_root, sha256)
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (FileNotFoundError, NotADirectoryError):
        return None
    record_use(folder)
    return data


def record_use(folder: Path) -> None:
    """Mark a cache entry as used now (its folder's mtime, what `prune` orders by); at most once
    per TOUCH_EVERY seconds, so serving 100 tiles costs one stat each and one utime."""
    try:
        if time.time() - os.stat(folder).st_mtime >= TOUCH_EVERY:
            os.utime(folder)
    except OSError:  # pruned meanwhile, or a read-only cache: nothing to record
        pass


def build(source: Path, sha256: str, cache_root: Path, *, max_pixels: int) -> dict[str, Any]:
    """The cache entry of `source` (whose content is `sha256`): made once, then read back.

    Returns the manifest: width and height of the full image (upright), the tile size, the
    grid, and the preview sizes. Raises tasks.files.imageio.ScanError for a file that cannot be read."""
    folder = cache_dir(cache_root, sha256)
    if (data := load(cache_root, sha256)) is not None:
        return data
    with _lock(sha256):  # two browser requests for a new file decode it once; prune leaves it be
        if (data := load(cache_root, sha256)) is not None:
            return data
        pixels = to_display(decode(Path(source), max_pixels=max_pixels).pixels)
        try:
            return _fill(folder, sha256, pixels)
        except FileNotFoundError:
            # another process pruned this folder (a stale half-built one) while we filled it
            if folder.is_dir():
                raise
            return _fill(folder, sha256, pixels)


def _fill(folder: Path, sha256: str, pixels: np.ndarray) -> dict[str, Any]:
    h, w = pixels.shape[:2]
    folder.mkdir(parents=True, exist_ok=True)
    previews = {}
    for edge in PREVIEW_EDGES:
        small = resize_long_side(pixels, edge)
        _write(folder / f"preview-{edge}.jpg", jpeg_bytes(small, _PREVIEW_QUALITY))
        previews[str(edge)] = [int(small.shape[1]), int(small.shape[0])]
    cols, rows = tile_grid(w, h)
    for row in range(rows):
        for col in range(cols):
            crop = pixels[row * TILE:(row + 1) * TILE, col * TILE:(col + 1) * TILE]
            _write(folder / f"tile-{col}-{row}.jpg", jpeg_bytes(np.ascontiguousarray(crop), _TILE_QUALITY))
    data = {"sha256": sha256, "width": int(w), "height": int(h), "tile": TILE, "cols": cols, "rows": rows,
            "previews": previews}
    _write(folder / MANIFEST, json.dumps(data).encode())  # last: the entry is complete
    return data


def prune(cache_root: Path, max_bytes: int, *, keep: Iterable[str] = (), stale_after: float = STALE_AFTER,
          now: float | None = None, sizes: dict[tuple[str, int], int] | None = None) -> dict[str, Any]:
    """Shrink the cache under `cache_root` to `max_bytes` (file sizes), least recently used first.

    Preview entries and IIIF folders (`iiif_dir`) share the budget and the order. Only whole
    entries go; entries whose sha256 is in `keep` (being shown: its preview entry and its IIIF
    folders) and builds in progress stay even over budget. A folder without manifest (or a
    `.partial` IIIF folder) untouched for `stale_after` seconds (a build that died) and the
    remains of an interrupted prune are deleted. An entry is renamed
    away before it is deleted, so a concurrent request sees it complete or absent, never half
    gone; in this process an entry being built is never evicted (it holds the build lock).
    Anything else under the root is left alone. `sizes`, a dict kept between calls, remembers
    the bytes of complete entries (they never change), so a later prune stats one folder per
    entry instead of every tile. Returns what was removed and what is kept."""
    if max_bytes < 0:
        raise ValueError(f"max_bytes {max_bytes}: expected 0 or more")
    started = time.perf_counter()
    survey = _Survey(stale_after=stale_after, now=time.time() if now is None else now, sizes=sizes,
                     result=_empty_result(max_bytes))
    keep = set(keep)
    _survey_previews(Path(cache_root), keep, survey)
    _survey_iiif(Path(cache_root), {sha[:16] for sha in keep}, survey)
    _evict_least_recently_used(survey, max_bytes)
    _drop_empty(survey.parents)
    if sizes is not None:  # what is gone is forgotten
        sizes.clear()
        sizes.update(survey.seen)
    result = survey.result
    result["kept_bytes"] = survey.total  # builds in progress included
    result["over_budget"] = survey.total > max_bytes
    result["seconds"] = round(time.perf_counter() - started, 4)
    return result


def _empty_result(max_bytes: int) -> dict[str, float]:
    return {"removed": 0, "removed_bytes": 0, "kept": 0, "kept_bytes": 0, "stale_removed": 0, "stale_bytes": 0,
            "in_progress": 0, "max_bytes": max_bytes}


class _Candidate(NamedTuple):
    """A complete entry `prune` may evict; candidates sort least recently used first."""

    mtime: float
    name: str  # the folder's name
    folder: str
    size: int
    key: tuple[str, int]  # its key in `sizes`: (sha256 or iiif_key, inode)
    lock_key: str  # the key of its build lock (`lock`)


@dataclass
class _Survey:
    """One prune's view of the cache: what it was asked (`stale_after`, `now`, the remembered
    `sizes`), the counts it returns (`result`), the bytes in use (`total`), the complete entries it
    may evict (`candidates`), the sizes of the complete entries (`seen`, remembered for the next
    prune) and the IIIF uuid folders it saw (`parents`)."""

    stale_after: float
    now: float
    sizes: dict[tuple[str, int], int] | None
    result: dict[str, float]
    total: int = 0
    candidates: list[_Candidate] = field(default_factory=list)
    seen: dict[tuple[str, int], int] = field(default_factory=dict)
    parents: list[str] = field(default_factory=list)

    def remembered(self, key: tuple[str, int]) -> int | None:
        """The bytes of a complete entry measured by an earlier prune."""
        return self.sizes.get(key) if self.sizes is not None else None

    def is_stale(self, mtime: float) -> bool:
        return self.now - mtime > self.stale_after

    def remove_leftover(self, folder: str) -> None:
        """Delete a stale folder: the remains of an interrupted prune, or a build that died."""
        self.result["stale_removed"] += 1
        self.result["stale_bytes"] += _remove_tree(folder)

    def add_complete(self, key: tuple[str, int], size: int, candidate: _Candidate | None) -> None:
        """Count a complete entry (its bytes already in `total`); `candidate` unless it is kept."""
        self.seen[key] = size
        self.result["kept"] += 1
        if candidate is not None:
            self.candidates.append(candidate)


def _survey_previews(cache_root: Path, keep: set[str], survey: _Survey) -> None:
    """The preview entries under `cache_root/<sha256[:2]>/<sha256>/`: complete ones (with their
    manifest) are candidates; one without manifest counts as a build in progress until it is
    stale; the remains of an interrupted prune go."""
    for shard in _scan(cache_root):
        if _SHARD.match(shard.name) and shard.is_dir(follow_symlinks=False):
            for entry in _scan(Path(shard.path)):
                _survey_preview_entry(entry, entry.name in keep, survey)


def _survey_preview_entry(entry: os.DirEntry, kept: bool, survey: _Survey) -> None:
    name = entry.name
    if name.startswith(".") and name.endswith(_PRUNING) and entry.is_dir(follow_symlinks=False):
        survey.remove_leftover(entry.path)  # an earlier prune was interrupted
        return
    if not (_SHA.match(name) and entry.is_dir(follow_symlinks=False)):
        return
    key = (name, entry.inode())
    try:
        mtime = entry.stat(follow_symlinks=False).st_mtime
        remembered = survey.remembered(key)
        size, complete = (remembered, True) if remembered is not None else _measure(entry.path)
    except FileNotFoundError:  # evicted by a concurrent prune
        return
    if not complete and survey.is_stale(mtime) and not kept and _evict(entry.path, name, mtime):
        survey.result["stale_removed"] += 1  # a build that died
        survey.result["stale_bytes"] += size
        return
    survey.total += size
    if not complete:
        survey.result["in_progress"] += 1
        return
    survey.add_complete(key, size, None if kept else _Candidate(mtime, name, entry.path, size, key, name))


def _survey_iiif(cache_root: Path, keep: set[str], survey: _Survey) -> None:
    """The IIIF folders under `cache_root/iiif/<uuid>/`: complete ones (at their final name) are
    candidates; a `.partial` one (being written) counts as a build in progress until it is stale;
    the remains of an interrupted prune go."""
    for parent in _scan(iiif_root(cache_root)):
        if _UUID.match(parent.name) and parent.is_dir(follow_symlinks=False):
            survey.parents.append(parent.path)
            for entry in _scan(Path(parent.path)):
                if entry.is_dir(follow_symlinks=False):
                    _survey_iiif_folder(parent.name, entry, entry.name in keep, survey)


def _survey_iiif_folder(file_uuid: str, entry: os.DirEntry, kept: bool, survey: _Survey) -> None:
    name = entry.name
    if name.startswith(".") and name.endswith(_PRUNING):
        survey.remove_leftover(entry.path)  # an earlier prune was interrupted
    elif name.startswith(".") and name.endswith(_PARTIAL):
        _survey_partial_iiif_folder(entry, survey)
    elif _VERSION.match(name):
        key = (iiif_key(file_uuid, name), entry.inode())
        try:
            mtime = entry.stat(follow_symlinks=False).st_mtime
            remembered = survey.remembered(key)
            size = remembered if remembered is not None else _tree_bytes(entry.path, strict=True)
        except FileNotFoundError:  # evicted by a concurrent prune
            return
        survey.total += size
        survey.add_complete(key, size, None if kept else _Candidate(mtime, name, entry.path, size, key, key[0]))


def _survey_partial_iiif_folder(entry: os.DirEntry, survey: _Survey) -> None:
    """A `.partial` IIIF folder: a build in progress, or a build that died (stale; write_iiif
    removes its own otherwise)."""
    try:
        mtime = entry.stat(follow_symlinks=False).st_mtime
    except FileNotFoundError:  # finished (renamed) or given up meanwhile
        return
    if survey.is_stale(mtime):
        survey.remove_leftover(entry.path)
    else:
        survey.result["in_progress"] += 1
        survey.total += _tree_bytes(entry.path)


def _evict_least_recently_used(survey: _Survey, max_bytes: int) -> None:
    """Evict candidates, least recently used first, until the cache fits in `max_bytes`."""
    result = survey.result
    for candidate in sorted(survey.candidates):
        if survey.total <= max_bytes:
            break
        if _evict(candidate.folder, candidate.name, candidate.mtime, candidate.lock_key):
            del survey.seen[candidate.key]
            survey.total -= candidate.size
            result["removed"] += 1
            result["removed_bytes"] += candidate.size
    result["kept"] -= result["removed"]


def _tree_bytes(folder: str, strict: bool = False) -> int:
    """Bytes of the files under `folder`, each hard-linked file once (an IIIF folder names its
    whole-image tile twice). Files vanishing meanwhile are skipped; with `strict`, the folder
    itself vanishing raises FileNotFoundError."""
    size, linked = 0, set()
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                items = list(it)
        except (FileNotFoundError, NotADirectoryError):
            if strict and current == folder:
                raise FileNotFoundError(folder) from None
            continue
        for item in items:
            try:
                if item.is_dir(follow_symlinks=False):
                    stack.append(item.path)
                    continue
                info = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if info.st_nlink > 1:
                if (info.st_dev, info.st_ino) in linked:
                    continue
                linked.add((info.st_dev, info.st_ino))
            size += info.st_size
    return size


def _drop_empty(folders: list[str]) -> None:
    """Remove the uuid folders left empty by eviction (a builder recreates one when it needs it)."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:  # not empty (the usual case), or gone
            pass


def _scan(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _measure(folder: str) -> tuple[int, bool]:
    """Bytes of the files in an entry folder, and whether it is complete (has its manifest)."""
    size, complete = 0, False
    with os.scandir(folder) as it:
        for item in it:
            try:
                size += item.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                continue
            complete = complete or item.name == MANIFEST
    return size, complete


def _evict(folder: str, name: str, mtime: float, lock_key: str | None = None) -> bool:
    """Rename the entry away (its name is free at once, its manifest gone with it), then delete
    it; False when it is left: being built in this process, used since it was measured, or gone."""
    lock = _lock(lock_key or name)
    if not lock.acquire(blocking=False):
        return False
    try:
        if os.stat(folder, follow_symlinks=False).st_mtime != mtime:
            return False
        trash = os.path.join(os.path.dirname(folder), f".{name}.{secrets.token_hex(4)}{_PRUNING}")
        os.rename(folder, trash)
    except FileNotFoundError:
        return False
    finally:
        lock.release()
    shutil.rmtree(trash, ignore_errors=True)  # if interrupted, the next prune removes the rest
    return True


def _remove_tree(folder: str) -> int:
    size = _tree_bytes(folder)
    shutil.rmtree(folder, ignore_errors=True)
    return size


def preview_path(cache_root: Path, sha256: str, edge: int) -> Path:
    if edge not in PREVIEW_EDGES:
        raise ValueError(f"preview edge {edge}: expected one of {PREVIEW_EDGES}")
    return cache_dir(cache_root, sha256) / f"preview-{edge}.jpg"


def tile_path(cache_root: Path, sha256: str, manifest: dict[str, Any], col: int, row: int) -> Path:
    if not (0 <= col < manifest["cols"] and 0 <= row < manifest["rows"]):
        raise ValueError(f"tile {col},{row} is outside the {manifest['cols']}x{manifest['rows']} grid")
    return cache_dir(cache_root, sha256) / f"tile-{col}-{row}.jpg"


def _write(path: Path, data: bytes) -> None:
    atomic_write(path, lambda temp: temp.write_bytes(data))


def lock(key: str) -> threading.Lock:
    """The lock a builder holds while it makes the entry named `key` (a sha256, or an IIIF
    folder's `iiif/<uuid>/<version>`): `prune` never evicts it meanwhile, in this process."""
    return _lock(key)


def _lock(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())
