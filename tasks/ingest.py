"""Ingest: find scans, identify each by content (sha256), and read its header facts.

Originals are opened read-only and never written, renamed or moved.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tasks.imageio import SUFFIXES, ScanError, inspect
from tasks.keys import stable_uuid
from tasks.types import DIGEST, INGESTION, AgentInfo, OriginalFacts, StepRecord, utc_now

_CHUNK = 1 << 20


def discover(root: Path) -> list[Path]:
    """Every TIFF/PNG/JPEG under root (recursively), sorted; hidden and partial files skipped.

    Symlinked folders are followed (libraries mount shares and collections that way), each real
    folder once: a link back to an ancestor cannot loop, and two links to one folder list its
    scans once. Real sub-folders are walked before any link, so a folder both present and linked
    is listed where it really is. Paths are as found under root, not resolved: the scan's
    sub-folder is the one under root."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder of scans")
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()  # (st_dev, st_ino) of every folder walked
    tops = [root]  # the root, then the symlinked folders met on the way (fewest link hops first)
    while tops:
        links: list[Path] = []
        for top in tops:
            found += _walk(top, seen, links)
        tops = sorted(links)
    return sorted(found)


def _walk(top: Path, seen: set[tuple[int, int]], links: list[Path]) -> list[Path]:
    """Scans in top's real sub-tree; symlinked folders go to `links`, to be walked afterwards."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):  # does not descend into links by itself
        folder = Path(dirpath)
        try:
            stat = folder.stat()
        except OSError:  # vanished or unreadable meanwhile: nothing to list
            dirnames.clear()
            continue
        if (stat.st_dev, stat.st_ino) in seen:  # already walked (through another link)
            dirnames.clear()
            continue
        seen.add((stat.st_dev, stat.st_ino))
        # hidden files and folders, and our own '.name.partial' temporaries
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        links += [folder / d for d in dirnames if (folder / d).is_symlink()]
        for name in filenames:
            path = folder / name
            if not name.startswith(".") and path.suffix.lower() in SUFFIXES and path.is_file():
                found.append(path)
    return found


def hash_file(path: Path) -> tuple[str, int]:
    """sha256 and size, streaming (a 2 GB TIFF never sits in memory)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:  # read-only: originals are never opened for writing
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def ingest_file(path: Path) -> OriginalFacts:
    """Content identity and header facts; a bad header is recorded, not raised."""
    path = Path(path).resolve()
    sha256, size = hash_file(path)
    try:
        tech, error = inspect(path), None
    except ScanError as exc:
        tech, error = None, exc.reason
    return OriginalFacts(path=str(path), sha256=sha256, size=size, tech=tech, error=error)


def identifier_for(path: Path) -> str:
    """The item's identifier: the scan's file name without extension (often the accession id)."""
    return Path(path).stem


def ingest_steps(facts: OriginalFacts, agents: list[AgentInfo]) -> list[StepRecord]:
    """The ingestion and message-digest events of one original (deterministic ids per content)."""
    when = utc_now()
    tech = facts.tech
    ingestion = StepRecord(
        event_uuid=stable_uuid("ingestion", facts.sha256),
        type=INGESTION, step="ingest", when=when, outcome="success",
        detail=f"registered {facts.path}",
        agents=agents,
        parameters={
            "path": facts.path, "size": facts.size,
            "format": tech.format if tech else None,
            "width": tech.width if tech else None, "height": tech.height if tech else None,
            "bit_depth": tech.bit_depth if tech else None, "channels": tech.channels if tech else None,
            "has_icc": tech.has_icc if tech else None, "ppi": tech.ppi if tech else None,
            "orientation": tech.orientation if tech else None,
            "header_error": facts.error,
        },
    )
    digest = StepRecord(
        event_uuid=stable_uuid("digest", facts.sha256),
        type=DIGEST, step="digest", when=when, outcome="success",
        detail="sha256 computed while streaming the original",
        agents=agents, parameters={"algorithm": "sha256", "value": facts.sha256},
    )
    return [ingestion, digest]
