"""BagIt packages of items: their files and provenance, with checksums, for hand-over.

Layout (RFC 8493, written with the `bagit` library):

    DEST/bagit.txt, bag-info.txt, manifest-sha256.txt, manifest-sha512.txt, tagmanifest-*.txt
    DEST/data/<identifier>_<item uuid 8>/original/<file>      the scan as ingested
                                        /master/<file>.tif    masters: derivatives ("service" copies) of the scans
                                        /access/<file>.jpg    access copies
                                        /review/<file>.png    review sheets
                                        /metadata/premis.xml  PREMIS 3.0 (validated)
                                        /metadata/provenance.json

Every file is copied while hashed and must match the sha256 the catalog recorded: a bag never
carries a file that changed since it was catalogued. The bag is built in a hidden sibling folder
and renamed into place once `bagit` validates it, so DEST is either a whole valid bag or absent.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bagit

from tasks.files.atomic import CopyVerifyError, copy_verified
from tasks.preservation import premis
from tasks.records.item_record import ItemRecord

CHECKSUMS = ("sha256", "sha512")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class BagError(RuntimeError):
    """The bag cannot be made (a file missing or changed, DEST in the way ...)."""


@dataclass
class BagItem:
    record: ItemRecord
    provenance: dict[str, Any] = field(default_factory=dict)  # extra JSON (e.g. each master's audit)


@dataclass
class BagReport:
    path: str
    items: list[dict[str, Any]]  # uuid, identifier, folder, files
    payload_files: int
    payload_bytes: int


def item_folder(record: ItemRecord) -> str:
    stem = _UNSAFE.sub("_", record.identifier).strip("._") or "item"
    return f"{stem[:80]}_{record.uuid[:8]}"


def make_bag(items: Sequence[BagItem], dest: str | Path, *, bag_info: dict[str, str] | None = None) -> BagReport:
    """Write a validated bag of `items` at `dest` (which must not exist yet, or be empty)."""
    dest = Path(dest).absolute()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BagError(f"{dest}: already exists and is not an empty folder; choose a new destination")
    if not items:
        raise BagError("no items to bag")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.{secrets.token_hex(4)}.partial"
    staging.mkdir()
    try:
        summary = [_stage_item(staging, item) for item in items]
        info = {
            "External-Description": f"restorium export of {len(items)} item(s): originals (the unaltered scans, "
                                    "the preservation objects), masters (restored derivatives of them, "
                                    "'service' copies), access copies, review sheets and their PREMIS 3.0 / "
                                    "JSON provenance",
            "External-Identifier": " ".join(i.record.uuid for i in items),
            **(bag_info or {}),
        }
        bag = bagit.make_bag(str(staging), bag_info=info, checksums=list(CHECKSUMS))
        bag.validate()
        oxum = bag.info.get("Payload-Oxum", "0.0")
        if dest.exists():
            dest.rmdir()  # empty (checked above)
        staging.rename(dest)
    except bagit.BagError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BagError(f"{dest}: the bag does not validate: {exc}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    size, count = oxum.split(".")
    return BagReport(path=str(dest), items=summary, payload_files=int(count), payload_bytes=int(size))


def _stage_item(staging: Path, item: BagItem) -> dict[str, Any]:
    record = item.record
    folder = staging / item_folder(record)
    if folder.exists():
        raise BagError(f"item {record.uuid} is listed twice")
    copied = []
    for f in record.files:
        if f.role == "iiif":  # tiles are made again from the master or scan in the bag
            continue
        target = folder / f.role / Path(f.path).name
        if target.exists():  # same name within a role (e.g. two originals named alike): keep both
            target = target.with_name(f"{target.stem}.{f.uuid[:8]}{target.suffix}")
        _copy_verified(Path(f.path), target, f.sha256, f.role)
        copied.append({"uuid": f.uuid, "role": f.role, "bag_path": str(target.relative_to(staging)),
                       "sha256": f.sha256})
    xml = premis.to_xml(record)
    premis.validate(xml, name=f"PREMIS of item {record.uuid}")
    metadata = folder / "metadata"
    metadata.mkdir(parents=True, exist_ok=True)
    (metadata / "premis.xml").write_bytes(xml)
    provenance = {"item": record.to_dict(), "bag_files": copied, **item.provenance}
    (metadata / "provenance.json").write_text(json.dumps(provenance, indent=2, ensure_ascii=False) + "\n")
    return {"uuid": record.uuid, "identifier": record.identifier, "folder": f"data/{folder.name}",
            "files": len(copied)}


def _copy_verified(source: Path, target: Path, sha256: str, role: str) -> None:
    try:
        copy_verified(source, target, sha256, role)
    except CopyVerifyError as exc:
        raise BagError(str(exc)) from exc


def validate_bag(path: str | Path) -> None:
    """Full validation (manifests, checksums, Payload-Oxum), raising BagError with the reasons."""
    try:
        bagit.Bag(str(path)).validate()
    except bagit.BagError as exc:
        details = getattr(exc, "details", None) or []
        raise BagError(f"{path}: not a valid bag: {exc}" + "".join(f"; {d}" for d in details[:5])) from exc
