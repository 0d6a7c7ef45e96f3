"""Ingest: find scans, identify each by content (sha256), and read its header facts.

Originals are opened read-only and never written, renamed or moved.
"""

from __future__ import annotations

import hashlib
import os
import stat as stat_mode
from dataclasses import dataclass, field
from pathlib import Path

from tasks.files.imageio import SUFFIXES, inspect, looks_like_image
from tasks.files.limits import DEFAULT, Limits
from tasks.records.failures import ScanError, scan_boundary
from tasks.records.keys import stable_uuid
from tasks.records.types import DIGEST, INGESTION, AgentInfo, OriginalFacts, StepRecord, utc_now

_CHUNK = 1 << 20


@dataclass
class Discovery:
    """Every non-hidden entry under a folder: a scan to ingest, or skipped with the reason."""

    scans: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def discover(root: Path) -> list[Path]:
    """The scans under root (see discover_all); what is not a scan is left out."""
    return discover_all(root).scans


def discover_all(root: Path, *, file_links_out: bool = False) -> Discovery:
    """Every scan under root (recursively), sorted, and every other entry with why it is skipped.

    A scan is a file named .tif/.tiff/.png/.jpg/.jpeg, or any file whose first bytes are an image
    signature (a scan saved without an extension, a GIF or WebP: ingest says what it is). Hidden
    files and folders (and our own '.name.partial' temporaries) are not listed.

    Symlinked folders are followed (libraries mount shares and collections that way), each real
    folder once: a link back to an ancestor cannot loop, and two links to one folder list its
    scans once; a link to a folder already walked is reported as skipped. Real sub-folders are
    walked before any link, so a folder both present and linked is listed where it really is.
    A symlinked file is followed only when it leads to a file inside root; links leading out,
    broken links and loops are reported, never followed. Paths are as found under root, not
    resolved: the scan's sub-folder is the one under root."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder of scans")
    found = Discovery()
    # file_links_out: a folder restorium staged itself, of links to catalogued originals (reprocessing).
    real_root = None if file_links_out else root.resolve()
    seen: set[tuple[int, int]] = set()  # (st_dev, st_ino) of every folder walked
    tops = [root]  # the root, then the symlinked folders met on the way (fewest link hops first)
    while tops:
        links: list[Path] = []
        for top in tops:
            _walk(top, real_root, seen, links, found)
        tops = sorted(links)
    found.scans.sort()
    found.skipped.sort()
    return found


def _walk(top: Path, real_root: Path | None, seen: set[tuple[int, int]], links: list[Path], found: Discovery) -> None:
    """Scans in top's real sub-tree; symlinked folders go to `links`, to be walked afterwards."""
    for dirpath, dirnames, filenames in os.walk(top):  # does not descend into links by itself
        folder = Path(dirpath)
        try:
            stat = folder.stat()
        except OSError as exc:  # vanished or unreadable meanwhile: nothing to list
            found.skipped.append((folder, f"folder cannot be read ({exc.strerror or exc})"))
            dirnames.clear()
            continue
        if (stat.st_dev, stat.st_ino) in seen:  # already walked (through another link)
            if folder == top and top.is_symlink():
                found.skipped.append((top, f"symlink to a folder already listed ({os.readlink(top)}): "
                                           "its scans are listed once, where first found"))
            dirnames.clear()
            continue
        seen.add((stat.st_dev, stat.st_ino))
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        links += [folder / d for d in dirnames if (folder / d).is_symlink()]
        for name in filenames:
            if not name.startswith("."):
                _classify(folder / name, real_root, found)


def _classify(path: Path, real_root: Path | None, found: Discovery) -> None:
    """A scan, or skipped with the reason; a file that cannot be read goes to ingest, which says so."""
    if path.is_symlink():
        try:
            target = path.resolve(strict=True)
        except RuntimeError:
            found.skipped.append((path, "symlink loop: not followed"))
            return
        except OSError as exc:
            reason = "symlink loop" if "loop" in str(exc).lower() else "broken symlink (its target is missing)"
            found.skipped.append((path, f"{reason}: not followed"))
            return
        if real_root is not None and not target.is_relative_to(real_root):
            found.skipped.append((path, f"symlink leading outside the scanned folder (to {target}): not followed"))
            return
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        found.skipped.append((path, f"cannot be read ({exc.strerror or exc})"))
        return
    if not stat_mode.S_ISREG(mode):  # never open a pipe or a device: reading one can block forever
        found.skipped.append((path, "not a regular file (pipe, socket or device): not read"))
        return
    if path.suffix.lower() in SUFFIXES:
        found.scans.append(path)
        return
    try:
        with open(path, "rb") as fh:
            head = fh.read(32)
    except OSError:
        found.scans.append(path)  # ingest reports why it cannot be read
        return
    if looks_like_image(head):
        found.scans.append(path)
    else:
        found.skipped.append((path, "not an image file (no image extension or signature)"))


def hash_file(path: Path) -> tuple[str, int]:
    """sha256 and size, streaming (a 2 GB TIFF never sits in memory)."""
    digest = hashlib.sha256()
    size = 0
    with open_original(path) as fh:  # read-only: originals are never opened for writing
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def open_original(path: Path):
    """The one place ingest opens an original: read-only."""
    return open(path, "rb")


def ingest_file(path: Path, limits: Limits = DEFAULT) -> OriginalFacts:
    """Content identity and header facts; whatever goes wrong is recorded, not raised.

    A file that cannot even be read has no content identity: its sha256 is "" and error says why."""
    path = Path(path)
    try:
        with scan_boundary(path):
            path = path.resolve()
            sha256, size = hash_file(path)
    except ScanError as exc:
        return OriginalFacts(path=str(path.absolute()), sha256="", size=0, tech=None, error=exc.reason,
                             error_kind=exc.kind)
    try:
        with scan_boundary(path):
            tech, error, kind = inspect(path, limits), None, None
    except ScanError as exc:
        tech, error, kind = None, exc.reason, exc.kind
    return OriginalFacts(path=str(path), sha256=sha256, size=size, tech=tech, error=error, error_kind=kind)


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
