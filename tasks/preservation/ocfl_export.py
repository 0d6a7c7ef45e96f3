"""Items as OCFL 1.1 objects, written and validated with ocfl-py (the OCFL editors' implementation).

One object per item, id ``urn:uuid:<item uuid>``: the item uuid is stable and unique (identifiers
are not), and a URN is the URI the spec asks an id to be. New storage roots use layout extension
0003 (hash-and-id n-tuple): sha256 tuples keep any number of objects in small folders, and each
object's own folder is its id, percent-encoded, so a person still finds it by eye (0002,
flat-direct, puts every object in one folder). An existing root keeps the layout it declares.

The state of every version:

    original/<scan name>       the scan as ingested: the preservation object
    service/<identifier>.tif   the current master: a derivative of that scan (a "service" copy)
    access/<identifier>.jpg    the master's access copy
    metadata/premis.xml        PREMIS 3.0 of the item (validated)
    metadata/item.json         the derivation statement, every file's catalog facts, every service
                               copy the object has held and in which versions, the item record and
                               each master's audit

A superseded master leaves the state but stays, unchanged, in the versions that held it (versions
are immutable): the head holds the one service copy to use now, and item.json says where the
earlier ones are. A version is added only when the state differs from the head's (a new master,
a new event such as a decision or a fixity check); its message says what changed and why.

Every file is copied into a staging folder beside the root while hashed and must match the sha256
the catalog recorded. A new object is built there and renamed into place; a new version is written
into the object by ocfl-py and taken out again if writing fails. Every written object is then
validated, digests included.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import ocfl

from config.version import software_agent
from tasks.files.atomic import CopyVerifyError, copy_verified
from tasks.preservation import premis
from tasks.records.item_record import EventFacts, FileFacts, ItemRecord
from tasks.records.types import APPROVAL, REJECTION, REPROCESSING, utc_now

LAYOUT = "0003-hash-and-id-n-tuple-storage-layout"
ITEM_JSON = "metadata/item.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

Status = Literal["created", "updated", "unchanged", "failed"]


class OcflError(RuntimeError):
    """The export cannot go on (not a storage root, a file missing or changed ...)."""


@dataclass
class OcflItem:
    record: ItemRecord
    audits: dict[str, dict[str, Any]] = field(default_factory=dict)  # master uuid -> AuditRecord.to_dict()


@dataclass(frozen=True)
class VersionUser:
    """Who adds a version (OCFL: a name and, preferably, a mailto: or identifier URI)."""

    name: str
    address: str | None = None


@dataclass
class ObjectResult:
    uuid: str
    identifier: str
    object_id: str
    path: str  # object root, relative to the storage root
    status: Status
    version: str | None  # the version added; None when unchanged or failed
    head: str | None  # the object's head after the export
    message: str  # the version message written, or why nothing was


@dataclass
class OcflReport:
    storage_root: str
    initialised: bool  # True when this export created the storage root
    layout: str
    objects: list[ObjectResult]

    @property
    def failed(self) -> int:
        return sum(o.status == "failed" for o in self.objects)


def object_id(item_uuid: str) -> str:
    return f"urn:uuid:{item_uuid}"


def open_storage_root(path: str | Path) -> tuple[ocfl.StorageRoot, bool]:
    """The storage root at `path`, created and initialised when the folder is new or empty;
    OcflError when something else is there. Returns (root, created)."""
    path = Path(path).absolute()
    if path.exists() and not path.is_dir():
        raise OcflError(f"{path}: not a folder")
    if path.is_dir() and any(path.iterdir()):
        root = ocfl.StorageRoot(root=str(path))
        try:
            root.open_root_fs()
            root.check_root_structure()
        except ocfl.StorageRootException as exc:
            why = "no 0=ocfl_1.x declaration" if exc.code == "E069a" else str(exc)
            raise OcflError(f"{path}: exists and is not an OCFL storage root ({why}); "
                            "choose a storage root, or a new or empty folder") from exc
        if root.layout is None:
            raise OcflError(f"{path}: the storage root declares no layout, so objects have no place in it")
        return root, False
    if path.is_dir():
        path.rmdir()  # ocfl-py initialises a folder it creates itself
    path.parent.mkdir(parents=True, exist_ok=True)
    root = ocfl.StorageRoot(root=str(path), layout_name=LAYOUT)
    root.initialize()
    return root, True


def export_items(items: Sequence[OcflItem], storage_root: str | Path, *, user: VersionUser | None = None,
                 now: str | None = None) -> OcflReport:
    """Write each item as an object of the storage root (a new object, a new version, or nothing
    when its state is the head's). A failed item is reported and the others go on."""
    if not items:
        raise OcflError("no items to export")
    path = Path(storage_root).absolute()
    root, created = open_storage_root(path)
    user = user or VersionUser(software_agent())
    results = []
    for item in items:
        work = path.parent / f".{path.name}.{secrets.token_hex(4)}.partial"  # same file system: renames
        work.mkdir()
        try:
            results.append(_export_one(root, path, item, user, now or utc_now(), work))
        except (OcflError, ocfl.ObjectException, ocfl.NewVersionException, OSError) as exc:
            oid = object_id(item.record.uuid)
            results.append(ObjectResult(item.record.uuid, item.record.identifier, oid, root.object_path(oid),
                                        "failed", None, None, str(exc)))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return OcflReport(str(path), created, root.layout_name or LAYOUT, results)


def validate_storage_root(path: str | Path, *, check_digests: bool = True) -> list[str]:
    """The problems ocfl-py's validator finds in the root and every object (empty: valid).
    StorageRoot.validate() alone is not enough: in ocfl-py 2.1.0 its result (and the exit status
    of ocfl-validate.py on a root) ignores invalid objects, which it only counts."""
    root = ocfl.StorageRoot(root=str(path))
    valid = root.validate(check_digests=check_digests, log_warnings=False)
    problems = [f"{p}: {m}" for p, m in root.errors]
    if not valid:
        problems.insert(0, f"{path}: {root.log}")
    if root.good_objects != root.num_objects and not problems:
        problems.append(f"{path}: {root.num_objects - root.good_objects} invalid object(s)")
    return problems


# --- one object ----------------------------------------------------------------------------------------

def _export_one(root: ocfl.StorageRoot, path: Path, item: OcflItem, user: VersionUser, now: str,
                work: Path) -> ObjectResult:
    record = item.record
    oid = object_id(record.uuid)
    rel = root.object_path(oid)
    obj_dir = path / rel
    src = work / "state"
    files = _stage_files(item, src)
    metadata = ocfl.VersionMetadata(created=now, name=user.name, address=user.address)

    if not obj_dir.exists():
        item_json = _item_json(item, files, oid, None, None, "v1")
        _write_metadata(src, record, item_json)
        metadata.message = _message(record, item_json, None)
        staged = work / "object"
        ocfl.Object(identifier=oid, spec_version=root.spec_version).create(str(src), metadata=metadata,
                                                                           objdir=str(staged))
        _validate_object(staged)
        _move_into_root(staged, obj_dir, path)
        return ObjectResult(record.uuid, record.identifier, oid, rel, "created", "v1", "v1", metadata.message)

    inventory = ocfl.Object(path=str(obj_dir)).parse_inventory()
    if inventory.id != oid:
        raise OcflError(f"{obj_dir}: holds object {inventory.id}, not {oid}")
    previous_head = inventory.head
    previous = _read_logical(obj_dir, inventory, previous_head, ITEM_JSON)
    obj = ocfl.Object()
    nv = obj.start_new_version(objdir=str(obj_dir), srcdir=str(src), metadata=metadata, carry_content_forward=False)
    head = nv.inventory.head
    item_json = _item_json(item, files, oid, previous, previous_head, head)
    _write_metadata(src, record, item_json)
    nv.add_from_srcdir()
    if not nv.diff_with_previous():
        return ObjectResult(record.uuid, record.identifier, oid, rel, "unchanged", None, previous_head,
                            f"unchanged since {previous_head}")
    nv.message = _message(record, item_json, previous)
    try:
        obj.write_new_version(nv)
        _validate_object(obj_dir)  # digests included: no version is left on an object that fails
    except BaseException:
        _roll_back(obj_dir, previous_head, head, inventory.digest_algorithm)
        raise
    return ObjectResult(record.uuid, record.identifier, oid, rel, "updated", head, head, nv.message)


def _stage_files(item: OcflItem, src: Path) -> dict[str, FileFacts]:
    """Copy the item's files to their logical paths under src, verified: logical path -> file."""
    record = item.record
    stem = _UNSAFE.sub("_", record.identifier).strip("._") or "item"
    chosen: dict[str, FileFacts] = {}
    for f in record.by_role("original"):
        name = Path(f.path).name
        logical = f"original/{name}"
        if logical in chosen:  # two originals named alike: keep both
            logical = f"original/{Path(name).stem}.{f.uuid[:8]}{Path(name).suffix}"
        chosen[logical] = f
    master = record.current_master()
    if master is not None:
        chosen[f"service/{stem}{Path(master.path).suffix.lower() or '.tif'}"] = master
        access = record.access_of(master)
        if access is not None:
            chosen[f"access/{stem}{Path(access.path).suffix.lower() or '.jpg'}"] = access
    for logical, f in chosen.items():
        _copy_verified(Path(f.path), src / logical, f)
    return chosen


def _copy_verified(source: Path, target: Path, f: FileFacts) -> None:
    try:  # ocfl-py stamps its own times on the content it takes in
        copy_verified(source, target, f.sha256, f.role, copy_times=False)
    except CopyVerifyError as exc:
        raise OcflError(str(exc)) from exc


def _write_metadata(src: Path, record: ItemRecord, item_json: dict[str, Any]) -> None:
    xml = premis.to_xml(record)
    premis.validate(xml, name=f"PREMIS of item {record.uuid}")
    (src / "metadata").mkdir(parents=True, exist_ok=True)
    (src / "metadata" / "premis.xml").write_bytes(xml)
    (src / ITEM_JSON).write_text(json.dumps(item_json, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _read_logical(obj_dir: Path, inventory: ocfl.Inventory, version: str, logical: str) -> dict[str, Any] | None:
    content = inventory.version(version).content_path_for_logical_path(logical)
    if content is None:
        return None  # an object restorium did not write: no history to carry on
    data = json.loads((obj_dir / content).read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None


def _validate_object(obj_dir: Path) -> None:
    passed, validator = ocfl.Object().validate(objdir=str(obj_dir), log_warnings=False)
    if not passed:
        raise OcflError(f"{obj_dir}: ocfl-py finds the object invalid: {validator.status_str()}")


def _move_into_root(staged: Path, obj_dir: Path, root: Path) -> None:
    obj_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        staged.rename(obj_dir)
    except BaseException:
        parent = obj_dir.parent  # an empty folder is an error in a storage root (E073)
        while parent != root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
        raise


def _roll_back(obj_dir: Path, previous: str, new: str, algorithm: str) -> None:
    """Undo a half-written version: the previous version's inventory is the root inventory it replaced."""
    for name in ("inventory.json", f"inventory.json.{algorithm}"):
        shutil.copyfile(obj_dir / previous / name, obj_dir / name)
    shutil.rmtree(obj_dir / new, ignore_errors=True)


# --- item.json and the version message ---------------------------------------------------------------

def _item_json(item: OcflItem, files: dict[str, FileFacts], oid: str, previous: dict[str, Any] | None,
               previous_head: str | None, head: str) -> dict[str, Any]:
    record = item.record
    by_uuid = {f.uuid: logical for logical, f in files.items()}
    original = next((lp for lp, f in files.items() if f.role == "original"), None)
    service = next((lp for lp, f in files.items() if f.role == "master"), None)
    statement = (f"{service} is restorium's master: a derivative (a \"service\" copy) made from the preserved "
                 f"scan {original} by restoration and upscaling. The scan is the preservation object; the "
                 "master is not a substitute for it." if service else "No master yet: only the scan.")
    entries = {lp: {"role": f.role, "file_uuid": f.uuid, "sha256": f.sha256, "size": f.size, "format": f.format,
                    **({"derived_from": by_uuid.get(f.source_uuid, f.source_uuid)} if f.source_uuid else {})}
               for lp, f in files.items()}
    return {
        "object_id": oid,
        "derivation": {"preservation_object": original, "service_copy": service, "statement": statement},
        "files": entries,
        "service_copies": _service_copies(record, service, previous, previous_head, head),
        "item": record.to_dict(),
        "audits": {u: item.audits[u] for u in sorted(item.audits)},
    }


def _service_copies(record: ItemRecord, service: str | None, previous: dict[str, Any] | None,
                    previous_head: str | None, head: str) -> list[dict[str, Any]]:
    """Every master of the item, in order: the current one and since when; the superseded ones and
    the versions that hold them (none when superseded before the object first held them)."""
    before = {c["master_uuid"]: c for c in (previous or {}).get("service_copies", [])}
    current = record.current_master()
    copies = []
    for m in record.by_role("master"):
        entry: dict[str, Any] = {"master_uuid": m.uuid, "sha256": m.sha256, "made_at": m.created_at,
                                 "recipe": {"name": m.recipe_name, "hash": m.recipe_hash}}
        old = before.get(m.uuid, {})
        if m is current:
            since = old["first_version"] if old.get("status") == "current" else head
            entry.update(status="current", logical_path=service, first_version=since)
        elif old.get("status") == "current":
            entry.update(status="superseded", logical_path=old.get("logical_path"),
                         first_version=old.get("first_version"), last_version=previous_head)
        else:
            entry.update(status="superseded", logical_path=old.get("logical_path"),
                         first_version=old.get("first_version"), last_version=old.get("last_version"))
        entry["in_object"] = entry["first_version"] is not None  # False: superseded before the first export
        copies.append(entry)
    return copies


def _message(record: ItemRecord, item_json: dict[str, Any], previous: dict[str, Any] | None) -> str:
    copies = item_json["service_copies"]
    current = next((c for c in copies if c["status"] == "current"), None)
    original = item_json["derivation"]["preservation_object"]
    if previous is None:
        text = f"first export of item {record.identifier}: scan {original} (the preservation object)"
        if current:
            text += f", service copy {_copy_label(current)}, a derivative of the scan"
        if any(f["role"] == "access" for f in item_json["files"].values()):
            text += ", its access copy"
        return text + ", PREMIS and item metadata"
    parts = []
    was = next((c for c in previous.get("service_copies", []) if c.get("status") == "current"), None)
    if current and (was is None or was["master_uuid"] != current["master_uuid"]):
        if was is None:
            parts.append(f"first service copy {_copy_label(current)}, a derivative of the scan")
        else:
            old = next(c for c in copies if c["master_uuid"] == was["master_uuid"])
            parts.append(f"service copy superseded: {_copy_label(current)} replaces master {old['master_uuid'][:8]} "
                         f"(recipe {old['recipe']['name']}), which stays in {_held(old)}; "
                         f"why: {_why(record, item_json['audits'], old['master_uuid'], current['master_uuid'])}")
    elif current is None and was is not None:
        parts.append("no current master")  # cannot come from the catalog, which never deletes one
    moved = sorted(set(item_json["files"]) ^ set(previous.get("files", {})))
    if moved:
        parts.append("files added or removed: " + ", ".join(moved))
    seen = {e["uuid"] for e in previous.get("item", {}).get("events", [])}
    new = Counter(e.type for e in record.events if e.uuid not in seen)
    if new:
        parts.append(f"{sum(new.values())} new event(s): " + ", ".join(f"{t} x{n}" if n > 1 else t
                                                                        for t, n in sorted(new.items())))
    return "; ".join(parts) or "metadata updated (item record)"


def _copy_label(copy: dict[str, Any]) -> str:
    return (f"{copy['logical_path']} (master {copy['master_uuid'][:8]}, recipe {copy['recipe']['name']}, "
            f"made {copy['made_at']})")


def _held(copy: dict[str, Any]) -> str:
    first, last = copy.get("first_version"), copy.get("last_version")
    return str(first) if first == last else f"{first} to {last}"


def _why(record: ItemRecord, audits: dict[str, dict[str, Any]], old: str, new: str) -> str:
    """Why the new master superseded the old: a reviewer's request or decision, else what changed."""
    reasons = []
    for done in (e for e in record.events if e.type == REPROCESSING and e.step == "done"):
        if (done.parameters.get("new_master") or {}).get("uuid") == new:
            request = next((e for e in record.events if e.uuid == done.parameters.get("request")), None)
            reasons.append(request.detail if request else done.detail)
    decision = _latest_decision(record.events, old)
    if decision is not None and decision.type == REJECTION:
        reasons.append(f"master {old[:8]} was rejected: {decision.detail}")
    before, after = audits.get(old, {}), audits.get(new, {})
    if before and after:
        b, a = before.get("recipe", {}), after.get("recipe", {})
        if b.get("hash") != a.get("hash"):
            reasons.append(f"recipe {b.get('name')} {str(b.get('hash'))[:12]} -> {a.get('name')} {str(a.get('hash'))[:12]}")
        bv, av = before.get("software", {}).get("version"), after.get("software", {}).get("version")
        if bv != av:
            reasons.append(f"software {bv} -> {av}")
        bw = {m["name"]: m.get("weights_sha256") for m in before.get("models", [])}
        aw = {m["name"]: m.get("weights_sha256") for m in after.get("models", [])}
        reasons += [f"weights of {n} {str(bw[n])[:12]} -> {str(aw[n])[:12]}"
                    for n in sorted(set(bw) & set(aw)) if bw[n] != aw[n]]
        reasons += [f"models {sorted(bw)} -> {sorted(aw)}"] if set(bw) != set(aw) else []
    return "; ".join(reasons) or "a newer master was made (same recipe, software and weights)"


def _latest_decision(events: list[EventFacts], master_uuid: str) -> EventFacts | None:
    decisions = [e for e in events if e.type in (APPROVAL, REJECTION) and any(u == master_uuid for u, _ in e.files)]
    return max(decisions, key=lambda e: e.when) if decisions else None
