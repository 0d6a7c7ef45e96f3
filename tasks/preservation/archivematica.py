"""Archivematica standard transfers of items (`restorium export archivematica`): plain files, no SQL.

    DEST/objects/<stem>.<ext>               the scan, byte for byte: the preservation object
    DEST/objects/service/<stem>.tif         restorium's newest master: a *service copy* derived from the scan
    DEST/objects/access/<stem>.jpg          the access copy made with that master
    DEST/metadata/metadata.csv              filename first (objects/... paths), dc.* columns, a row per file
    DEST/metadata/premis.xml                PREMIS 3.0: files linked to events by premis:originalName
    DEST/metadata/checksum.sha256           a line per file under objects/, its path relative to objects/
    DEST/metadata/submissionDocumentation/  README.txt, restorium-transfer.json, audit/<stem>.json, run reports
    DEST/logs/                              empty: Archivematica writes its logs there

With `bag=True` the same tree is the payload of a BagIt bag (DEST/data/objects/...), and the paths
in metadata.csv and premis.xml start with data/. What Archivematica expects, and where it says so:

- archivematica-docs, user-manual/transfer/transfer.rst, "Create a transfer with submission
  documentation" and "Create a transfer with existing checksums": objects/, logs/, metadata/,
  metadata/submissionDocumentation/ (verify_transfer_compliance.py refuses anything else at the
  top), checksum.md5|sha1|sha256 in metadata/. Its verify_checksum.py counts one line per file
  under objects/, then runs `sha256sum -c --strict` inside objects/: hence paths relative to it.
- user-manual/transfer/access_and_service.rst, "Processing access and service files": service
  and access copies keep the original's base name, the extension may differ;
  check_for_service_directory.py and check_for_access_directory.py pair objects/service/X.* and
  objects/access/X.* with the original that starts with "objects/X.", so stems carry no dot.
- user-manual/transfer/import-metadata.rst, "Importing descriptive metadata with metadata.csv":
  the filename column first, paths starting with objects/, dc.* and dcterms.* columns repeated for
  repeated values, UTF-8; "Adding metadata to bags": paths in a bag start with data/ (Archivematica
  assigns file UUIDs before it moves a bag's data/ up, so data/... is a file's original location).
- Same page, "Importing event metadata with premis.xml", and load_premis_events_from_xml.py: the
  file must validate against PREMIS 3 (Archivematica ships the same premis.xsd as schemas/premis);
  files are premis:object xsi:type="premis:file" whose originalName is a path of the transfer;
  every file, event and agent must be linked to the others and no link may lead outside the
  document, or the job fails. `import_problems` checks exactly those rules.
"""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bagit
from lxml import etree

from tasks.files.atomic import CopyVerifyError, copy_verified
from tasks.preservation import premis
from tasks.preservation.bag import CHECKSUMS
from tasks.records.item_metadata import ItemMetadata
from tasks.records.item_record import FileFacts, ItemRecord
from tasks.records.keys import stable_uuid

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")  # no dot: see the module doc
_UNSAFE_DOC = re.compile(r"[^A-Za-z0-9._-]+")  # submission documentation names are not cleaned up
_EXT = {"TIFF": "tif", "JPEG": "jpg", "PNG": "png"}
_NS = {"p": premis.PREMIS_NS, "xsi": premis.XSI_NS}
_FILE_TYPE = "premis:file"
_LEVEL = {
    "original": ("original", "the unaltered scan: the preservation object"),
    "master": ("service", "restorium's master: a restored, upscaled derivative of the scan, not a replacement"),
    "access": ("access", "access copy (JPEG) made with the service copy"),
}
# Archivematica refuses an event without an agent; restorium recorded every event it exports.
RECORDER = stable_uuid("agent", "archivematica-export", "restorium")


class TransferError(RuntimeError):
    """The transfer cannot be made (a file missing or changed, DEST in the way, a bad record ...)."""


@dataclass
class TransferItem:
    record: ItemRecord
    audits: dict[str, dict[str, Any]] = field(default_factory=dict)  # file uuid → AuditRecord.to_dict()
    metadata: dict[str, Any] | None = None  # ItemMetadata.to_dict(); None: the record's own


@dataclass
class TransferReport:
    path: str
    bag: bool
    items: list[dict[str, Any]]  # uuid, identifier, stem, scan, service, access, master_uuid, superseded
    object_files: int
    object_bytes: int
    notes: list[str]


@dataclass
class _Placed:
    item: TransferItem
    stem: str
    scan: FileFacts
    service: FileFacts | None
    access: FileFacts | None
    superseded: list[FileFacts]
    paths: dict[str, str] = field(default_factory=dict)  # file uuid → path under objects/ ("service/x.tif")

    @property
    def record(self) -> ItemRecord:
        return self.item.record

    def metadata(self) -> ItemMetadata | None:
        data = self.item.metadata if self.item.metadata is not None else self.record.metadata
        return ItemMetadata.from_dict(data) if data else None


def write_transfer(items: Sequence[TransferItem], dest: str | Path, *, bag: bool = False,
                   submission_docs: Sequence[Path] = ()) -> TransferReport:
    """Write an Archivematica transfer of `items` at `dest` (new, or an empty folder). It is built in
    a hidden sibling and renamed into place once checked: DEST is whole or untouched."""
    dest = Path(dest).absolute()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise TransferError(f"{dest}: already exists and is not an empty folder; choose a new destination")
    if not items:
        raise TransferError("no items to transfer")
    if len({i.record.uuid for i in items}) != len(items):
        raise TransferError("an item is listed twice")
    for doc in submission_docs:
        if not Path(doc).is_file():
            raise TransferError(f"{doc}: submission documentation that is not a file")
    notes: list[str] = []
    placed = _place(items, notes)
    prefix = "data/" if bag else ""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.{secrets.token_hex(4)}.partial"
    staging.mkdir()
    try:
        sums = _copy_objects(placed, staging / "objects")
        meta = staging / "metadata"
        meta.mkdir()
        (meta / "metadata.csv").write_text(metadata_csv(placed, prefix), encoding="utf-8", newline="")
        xml = etree.tostring(transfer_premis(placed, prefix), xml_declaration=True, encoding="UTF-8",
                             pretty_print=True)
        problems = import_problems(xml, {prefix + "objects/" + p for p in sums})
        if problems:  # a bug, not a user error
            raise TransferError("premis.xml would not import into Archivematica: " + "; ".join(problems[:5]))
        (meta / "premis.xml").write_bytes(xml)
        (meta / "checksum.sha256").write_text("".join(f"{sha}  {path}\n" for path, sha in sorted(sums.items())),
                                             encoding="utf-8")
        report = TransferReport(str(dest), bag, [_summary(p) for p in placed], len(sums),
                                sum((staging / "objects" / p).stat().st_size for p in sums), notes)
        _submission(meta / "submissionDocumentation", placed, submission_docs, report, prefix)
        if bag:
            _bag(staging, items)
        else:
            (staging / "logs").mkdir()
        if dest.exists():
            dest.rmdir()  # empty (checked above)
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


# --- which files, under which names ---------------------------------------------------------

def _place(items: Sequence[TransferItem], notes: list[str]) -> list[_Placed]:
    placed: list[_Placed] = []
    taken: set[str] = set()
    for item in items:
        record = item.record
        scan, service, access, superseded = choose_files(record)
        stem = base = stem_of(record.identifier)
        if stem.casefold() in taken:  # casefold: the transfer may land on a case-insensitive disk
            stem = f"{base}_{record.uuid[:8]}"
            n = 2
            while stem.casefold() in taken:
                stem, n = f"{base}_{record.uuid[:8]}_{n}", n + 1
            notes.append(f"{record.identifier} ({record.uuid}): another item has the same identifier; "
                         f"its files are named {stem}.*")
        taken.add(stem.casefold())
        p = _Placed(item, stem, scan, service, access, superseded)
        p.paths[scan.uuid] = f"{stem}.{extension(scan)}"
        if service:
            p.paths[service.uuid] = f"service/{stem}.{extension(service)}"
        if access:
            p.paths[access.uuid] = f"access/{stem}.{extension(access)}"
        if service is None:
            notes.append(f"{record.identifier} ({record.uuid}): no master yet; the scan goes alone")
        elif access is None:
            notes.append(f"{record.identifier} ({record.uuid}): its master has no access copy")
        if superseded:
            notes.append(f"{record.identifier} ({record.uuid}): the newest master ({service.uuid if service else '-'})"
                         f" goes; {len(superseded)} older master(s) superseded by it stay out")
        placed.append(p)
    return placed


def choose_files(record: ItemRecord) -> tuple[FileFacts, FileFacts | None, FileFacts | None, list[FileFacts]]:
    """(scan, newest master, its access copy, older masters) of an item."""
    service = record.current_master()
    scan = record.scan_of(service)
    if scan is None:
        raise TransferError(f"item {record.uuid} ({record.identifier}): the catalog has no scan"
                            + (f" for master {service.uuid}" if service else ""))
    superseded = [m for m in record.by_role("master") if m is not service]
    return scan, service, record.access_of(service) if service else None, superseded


def stem_of(identifier: str) -> str:
    return _UNSAFE.sub("_", identifier).strip("_-")[:100] or "item"


def extension(f: FileFacts) -> str:
    return _EXT.get(f.format or "") or (_UNSAFE.sub("", Path(f.path).suffix.lower()) or "bin")


def _copy_objects(placed: Sequence[_Placed], objects: Path) -> dict[str, str]:
    sums: dict[str, str] = {}
    for p in placed:
        for f in (p.scan, p.service, p.access):
            if f is not None:
                _copy_verified(Path(f.path), objects / p.paths[f.uuid], f.sha256, f.role)
                sums[p.paths[f.uuid]] = f.sha256
    return sums


def _copy_verified(source: Path, target: Path, sha256: str, role: str) -> None:
    try:
        copy_verified(source, target, sha256, role)
    except CopyVerifyError as exc:
        raise TransferError(str(exc)) from exc


# --- metadata.csv -----------------------------------------------------------------------------

def metadata_csv(placed: Sequence[_Placed], prefix: str = "") -> str:
    """One row per file; a column repeats where a row has several values (Archivematica's form)."""
    rows = [row for p in placed for row in _rows(p, prefix)]
    width: dict[str, int] = {}
    for _, cells in rows:
        for key in dict.fromkeys(k for k, _ in cells):
            width[key] = max(width.get(key, 0), sum(k == key for k, _ in cells))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["filename"] + [k for k, n in width.items() for _ in range(n)])
    for path, cells in rows:
        values = [[v for k2, v in cells if k2 == k] for k in width]
        writer.writerow([path] + [v for vs, n in zip(values, width.values(), strict=True)
                                  for v in vs + [""] * (n - len(vs))])
    return out.getvalue()


def _rows(p: _Placed, prefix: str) -> list[tuple[str, list[tuple[str, str]]]]:
    record, meta = p.record, p.metadata()
    path = {u: f"{prefix}objects/{rel}" for u, rel in p.paths.items()}
    scan = path[p.scan.uuid]
    cells = meta.dublin_core() if meta else []
    if not any(k == "dc.identifier" for k, _ in cells):
        cells.insert(0, ("dc.identifier", record.identifier))
    if record.title and not any(k == "dc.title" for k, _ in cells):
        cells.append(("dc.title", record.title))
    if meta and meta.physical:
        size = meta.physical
        cells.append(("dcterms.extent", f"{size.width:g} x {size.height:g} {size.unit} (the photograph)"))
    rows = [(scan, cells)]
    if p.service:
        service = path[p.service.uuid]
        cells.append(("dc.relation", f"service copy: {service} (restorium master, a derivative of this scan; "
                                     "this scan is the preservation object)"))
        rows.append((service, [
            ("dc.identifier", f"{record.identifier} (service copy)"),
            ("dc.source", scan),
            ("dc.relation", f"derivative of {scan}"),
            ("dc.description", _service_note(p)),
        ]))
    if p.access:
        access = path[p.access.uuid]
        cells.append(("dc.relation", f"access copy: {access}"))
        rows.append((access, [
            ("dc.identifier", f"{record.identifier} (access copy)"),
            ("dc.source", path[p.service.uuid] if p.service else scan),
            ("dc.relation", f"derivative of {scan}"),
            ("dc.description", "Access copy (JPEG) written with the service copy from the same pixels."),
        ]))
    return rows


def _service_note(p: _Placed) -> str:
    m = p.service
    assert m is not None
    note = (f"Service copy: restorium master {m.uuid}, restored and upscaled from the scan by recipe "
            f"{m.recipe_name or '?'} (hash {m.recipe_hash or '?'}) in run {m.run_uuid or '?'} at {m.created_at}; "
            "a derivative, not the preservation object.")
    if p.superseded:
        note += f" The newest of {len(p.superseded) + 1} masters; the older ones are not in this transfer."
    return note


# --- premis.xml -----------------------------------------------------------------------------

def transfer_premis(placed: Sequence[_Placed], prefix: str = "") -> etree._Element:
    """The items' PREMIS (tasks.preservation.premis) in the form Archivematica imports: only the
    files in the transfer, their originalName the transfer path, only the events about them (links
    to other files dropped), only the agents of those events."""
    root = etree.Element(premis._q("premis"), nsmap={"premis": premis.PREMIS_NS, "xsi": premis.XSI_NS,
                                                    "restorium": premis.RESTORIUM_NS})
    root.set("version", "3.0")
    root.set(f"{{{premis.XSI_NS}}}schemaLocation", f"{premis.PREMIS_NS} {premis.SCHEMA_LOCATION}")
    objects: list[etree._Element] = []
    events: list[etree._Element] = []
    agents: dict[str, etree._Element] = {}
    for p in placed:
        doc = premis.to_premis(p.record)
        roles = {f.uuid: f.role for f in (p.scan, p.service, p.access) if f is not None}
        for obj in doc.findall("p:object", _NS):
            uuid = obj.findtext("p:objectIdentifier/p:objectIdentifierValue", namespaces=_NS) or ""
            if obj.get(f"{{{premis.XSI_NS}}}type") != _FILE_TYPE:
                objects.append(obj)  # the item (intellectual entity); Archivematica reads files only
            elif uuid in roles:
                _adapt_file(obj, roles[uuid], f"{prefix}objects/{p.paths[uuid]}")
                objects.append(obj)
        for event in doc.findall("p:event", _NS):
            links = event.findall("p:linkingObjectIdentifier", _NS)
            if not any(_value(link) in roles for link in links):
                continue
            for link in links:
                if _value(link) not in roles:
                    event.remove(link)
            events.append(event)
        for agent in doc.findall("p:agent", _NS):
            agents.setdefault(_value(agent.find("p:agentIdentifier", _NS)), agent)
    used: set[str] = set()
    for event in events:
        links = event.findall("p:linkingAgentIdentifier", _NS)
        if not links:
            _link_recorder(event)
            used.add(RECORDER)
        used.update(_value(link) for link in links)
    if RECORDER in used:
        agents[RECORDER] = _recorder()
    root.extend(objects + events + [a for u, a in agents.items() if u in used])
    return root


def _value(node: etree._Element | None) -> str:
    return "" if node is None else (node[1].text or "").strip()  # (type, value) children


def _adapt_file(obj: etree._Element, role: str, path: str) -> None:
    level = obj.find("p:preservationLevel", _NS)
    assert level is not None  # premis.to_premis writes one on every file
    value, why = _LEVEL[role]
    for child in list(level):
        level.remove(child)
    premis._el(level, "preservationLevelValue", value)
    premis._el(level, "preservationLevelRationale", why)
    name = obj.find("p:originalName", _NS)
    assert name is not None
    name.text = path  # what links the object to the transfer's file


def _link_recorder(event: etree._Element) -> None:
    link = etree.Element(premis._q("linkingAgentIdentifier"))
    premis._el(link, "linkingAgentIdentifierType", "UUID")
    premis._el(link, "linkingAgentIdentifierValue", RECORDER)
    premis._el(link, "linkingAgentRole", "implementer")
    first = event.find("p:linkingObjectIdentifier", _NS)
    if first is not None:
        first.addprevious(link)
    else:
        event.append(link)


def _recorder() -> etree._Element:
    agent = etree.Element(premis._q("agent"))
    premis._ident(agent, "agentIdentifier", "UUID", RECORDER)
    premis._el(agent, "agentName", "restorium")
    premis._el(agent, "agentType", "software", authority="agentType")
    premis._el(agent, "agentNote", "recorded the events the catalog names no agent for")
    return agent


def import_problems(xml: bytes, transfer_files: set[str]) -> list[str]:
    """Why Archivematica's "Load PREMIS events from metadata/premis.xml" would fail on `xml`, by the
    rules of its load_premis_events_from_xml.py; empty when it would import every event."""
    errors = premis.validation_errors(xml)
    if errors:
        return errors
    doc = etree.fromstring(xml, etree.XMLParser(no_network=True, resolve_entities=False))

    def ident(node: etree._Element | None, kind: str) -> tuple[str, str]:
        if node is None:  # the schema requires one; a missing one reads as empty
            return "", ""
        return (node.findtext(f"p:{kind}Type", namespaces=_NS) or "").strip(), \
               (node.findtext(f"p:{kind}Value", namespaces=_NS) or "").strip()

    def links(node: etree._Element, kind: str) -> set[tuple[str, str]]:
        return {ident(n, kind) for n in node.findall(f"p:{kind}", _NS)}

    files = {ident(o.find("p:objectIdentifier", _NS), "objectIdentifier"):
             ((o.findtext("p:originalName", namespaces=_NS) or "").strip(), links(o, "linkingEventIdentifier"))
             for o in doc.findall(f"p:object[@xsi:type='{_FILE_TYPE}']", _NS)}
    agents = {ident(a.find("p:agentIdentifier", _NS), "agentIdentifier"): links(a, "linkingEventIdentifier")
              for a in doc.findall("p:agent", _NS)}
    events = {ident(e.find("p:eventIdentifier", _NS), "eventIdentifier"):
              (links(e, "linkingObjectIdentifier"), links(e, "linkingAgentIdentifier"))
              for e in doc.findall("p:event", _NS)}
    problems = []
    bad = {f for f, (name, _) in files.items() if name not in transfer_files}
    problems += [f"file {f[1]}: originalName {files[f][0]!r} is no file of the transfer" for f in sorted(bad)]
    for f, (_, evs) in files.items():
        problems += [f"file {f[1]} links event {e[1]}, not in the document" for e in sorted(evs - events.keys())]
        for e in evs & events.keys():
            events[e][0].add(f)
    for a, evs in agents.items():
        problems += [f"agent {a[1]} links event {e[1]}, not in the document" for e in sorted(evs - events.keys())]
        for e in evs & events.keys():
            events[e][1].add(a)
    for e, (objs, ags) in events.items():
        problems += [f"event {e[1]} links object {o[1]}, not a file in the document" for o in sorted(objs - files.keys())]
        problems += [f"event {e[1]} links agent {a[1]}, not in the document" for a in sorted(ags - agents.keys())]
        if not (objs & files.keys()) - bad:
            problems.append(f"event {e[1]}: no file of the transfer")
        if not ags & agents.keys():
            problems.append(f"event {e[1]}: no agent")
    linked_files = {f for objs, _ in events.values() for f in objs}
    linked_agents = {a for _, ags in events.values() for a in ags}
    problems += [f"file {f[1]}: no event" for f in files if f not in linked_files]
    problems += [f"agent {a[1]}: no event" for a in agents if a not in linked_agents]
    return problems


# --- submission documentation and the bag ----------------------------------------------------

def _summary(p: _Placed) -> dict[str, Any]:
    return {"uuid": p.record.uuid, "identifier": p.record.identifier, "stem": p.stem,
            "scan": f"objects/{p.paths[p.scan.uuid]}",
            "service": f"objects/{p.paths[p.service.uuid]}" if p.service else None,
            "access": f"objects/{p.paths[p.access.uuid]}" if p.access else None,
            "master_uuid": p.service.uuid if p.service else None,
            "superseded": [m.uuid for m in p.superseded]}


def _submission(folder: Path, placed: Sequence[_Placed], docs: Sequence[Path], report: TransferReport,
                prefix: str) -> None:
    folder.mkdir(parents=True)
    (folder / "README.txt").write_text(_readme(report, prefix), encoding="utf-8")
    files = {p.record.uuid: {u: {"path": f"{prefix}objects/{rel}", "role": p.record.file(u).role,
                                 "sha256": p.record.file(u).sha256, "catalog_path": p.record.file(u).path}
                             for u, rel in p.paths.items()} for p in placed}
    manifest = {"items": report.items, "files": files, "notes": report.notes,
                "records": {p.record.uuid: p.record.to_dict() for p in placed}}
    (folder / "restorium-transfer.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                                    encoding="utf-8")
    for p in placed:
        audits = {u: a for u, a in p.item.audits.items() if u in p.paths}
        if audits:
            (folder / "audit").mkdir(exist_ok=True)
            (folder / "audit" / f"{p.stem}.json").write_text(json.dumps(audits, indent=2, ensure_ascii=False) + "\n",
                                                             encoding="utf-8")
    taken = {"README.txt", "restorium-transfer.json", "audit"}
    for doc in docs:
        name = _UNSAFE_DOC.sub("_", Path(doc).name).strip("._") or "document"
        stem, suffix, n = Path(name).stem, Path(name).suffix, 2
        while name in taken:
            name, n = f"{stem}_{n}{suffix}", n + 1
        taken.add(name)
        shutil.copyfile(doc, folder / name)


def _readme(report: TransferReport, prefix: str) -> str:
    rows = [
        (f"{prefix}objects/<name>.<ext>", "the scan as catalogued, byte for byte: the preservation object"),
        (f"{prefix}objects/service/<name>.tif", "restorium's master: a SERVICE COPY, a derivative of the scan"),
        ("", "(restored and upscaled); it does not replace the scan"),
        (f"{prefix}objects/access/<name>.jpg", "the access copy made with that master"),
        (f"{prefix}metadata/metadata.csv", "Dublin Core per file (dc.source, dc.relation: the derivations)"),
        (f"{prefix}metadata/premis.xml", "PREMIS 3.0 events and agents, files linked by originalName"),
        (f"{prefix}metadata/checksum.sha256", "sha256 of every file under objects/, paths relative to objects/"),
        (f"{prefix}metadata/submissionDocumentation/", "this file; restorium-transfer.json (items, files, uuids);"),
        ("", "audit/<name>.json (how each copy was made); run reports"),
    ]
    width = max(len(path) for path, _ in rows) + 2
    lines = ["restorium export: an Archivematica standard transfer" + (" (as a BagIt bag)" if report.bag else ""), ""]
    lines += [f"{path:<{width}}{what}" for path, what in rows]
    lines += ["", "Where an item has several masters, the newest goes; older (superseded) ones stay out.", ""]
    for item in report.items:
        lines.append(f"{item['identifier']} (item {item['uuid']}): {prefix}{item['scan']}"
                     + (f", service {prefix}{item['service']} (master {item['master_uuid']})" if item["service"] else "")
                     + (f", access {prefix}{item['access']}" if item["access"] else ""))
    if report.notes:
        lines += ["", "Notes:"] + [f"- {n}" for n in report.notes]
    return "\n".join(lines) + "\n"


def _bag(staging: Path, items: Sequence[TransferItem]) -> None:
    info = {"External-Description": "restorium export: an Archivematica transfer (objects/: scans; "
                                    "objects/service/: masters, derivatives of the scans; objects/access/)",
            "External-Identifier": " ".join(i.record.uuid for i in items)}
    try:
        bagit.make_bag(str(staging), bag_info=info, checksums=list(CHECKSUMS)).validate()
    except bagit.BagError as exc:
        raise TransferError(f"the bag does not validate: {exc}") from exc
