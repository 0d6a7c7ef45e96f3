"""Ingest: find scans, identify each by content (sha256), and read its header facts.

Originals are opened read-only and never written, renamed or moved.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tasks.imageio import SUFFIXES, ScanError, inspect
from tasks.keys import stable_uuid
from tasks.types import DIGEST, INGESTION, AgentInfo, OriginalFacts, StepRecord, utc_now

_CHUNK = 1 << 20


def discover(root: Path) -> list[Path]:
    """Every TIFF/PNG/JPEG under root (recursively), sorted; hidden and partial files skipped."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder of scans")
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue  # hidden files, and our own '.name.partial' temporaries
        if path.suffix.lower() in SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found)


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
