"""PREMIS 3.0 XML for one item, from its ItemRecord (tasks.records.item_record), and validation against the
official schema shipped in tasks/schemas/premis (see SOURCE.md there).

What goes where:
- objects: the item as an intellectualEntity; each file (original, master, access copy, review
  sheet) as a `file` with its UUID, SHA-256 fixity, size, format, creating application (derived
  files), location, and relationships: structural "is included in" the item, and for derived
  files derivation "has source" → the original, listing the events that made them;
- sampling rate, told truthfully: every file states the scan's "capture sampling rate (ppi)"
  (a derived file's comes from its source), and a derived file whose ppi differs from it (an
  upscaled master) states its own as "interpolated sampling rate (ppi)";
- events: type, time, detail (restorium's parameters as JSON in an extension), outcome (with the
  fixity expectations of a failed check), the agents (role: executing program / implementer /
  authorizer) and the objects (role: source for inputs, outcome for outputs);
- agents: software (name, version, git commit), models (architecture, weights sha256, licence),
  hosts (hardware: CPU/GPU, driver) and people.

Controlled values use the Library of Congress preservation vocabularies where restorium's term is
one of theirs (eventType, cryptographicHashFunctions, relationshipType ...), with their URIs.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from lxml import etree

from tasks.files.descriptive import interpolated, ppi_text
from tasks.records.item_record import AgentFacts, EventFacts, FileFacts, ItemRecord
from tasks.records.results import StepOutcome
from tasks.records.types import APPROVAL, DIGEST, FIXITY_CHECK, INGESTION, REJECTION, VALIDATION

PREMIS_NS = "http://www.loc.gov/premis/v3"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
RESTORIUM_NS = "https://restorium.org/ns/1.0/"
SCHEMA_LOCATION = "http://www.loc.gov/standards/premis/v3/premis-v3-0.xsd"
SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "premis" / "premis-v3-0.xsd"

_VOCAB = "http://id.loc.gov/vocabulary/preservation"
# restorium's event types that are terms of the LoC eventType vocabulary, with their codes.
_EVENT_TYPES = {INGESTION: "ing", DIGEST: "mes", VALIDATION: "val", FIXITY_CHECK: "fix"}
_AGENT_TYPES = {"software": "software", "model": "software", "host": "hardware", "person": "person"}
_MIME = {"TIFF": "image/tiff", "JPEG": "image/jpeg", "PNG": "image/png"}
# The unaltered scan is what the archive preserves; restorium's master is a derivative of it
# (Archivematica's "service" copy), whatever restorium's users call it.
_ROLE_LEVEL = {"original": "preservation (the unaltered scan)", "master": "service copy (derivative of the scan)",
               "access": "access copy", "review": "review sheet", "iiif": "access copy (IIIF level-0 tiles)"}


class PremisError(ValueError):
    """PREMIS that does not validate against the schema."""


def _q(tag: str) -> str:
    return f"{{{PREMIS_NS}}}{tag}"


def _el(parent: etree._Element, tag: str, text: Any = None, **attrs: str) -> etree._Element:
    node = etree.SubElement(parent, _q(tag), {k: v for k, v in attrs.items() if v})
    if text is not None:
        node.text = str(text)
    return node


def _ident(parent: etree._Element, kind: str, id_type: str, value: str) -> None:
    node = _el(parent, kind)
    _el(node, f"{kind}Type", id_type)
    _el(node, f"{kind}Value", value)


def _linking(parent: etree._Element, kind: str, id_type: str, value: str, role: str | None = None,
             role_tag: str | None = None) -> None:
    node = _el(parent, kind)
    _el(node, f"{kind}Type", id_type)
    _el(node, f"{kind}Value", value)
    if role and role_tag:
        _el(node, role_tag, role)


def to_premis(record: ItemRecord) -> etree._Element:
    """The item's PREMIS document (a <premis version="3.0"> element)."""
    root = etree.Element(_q("premis"), nsmap={"premis": PREMIS_NS, "xsi": XSI_NS, "restorium": RESTORIUM_NS})
    root.set("version", "3.0")
    root.set(f"{{{XSI_NS}}}schemaLocation", f"{PREMIS_NS} {SCHEMA_LOCATION}")
    events_of: dict[str, list[str]] = {f.uuid: [] for f in record.files}
    for event in record.events:
        for file_uuid, _ in event.files:
            if file_uuid in events_of and event.uuid not in events_of[file_uuid]:
                events_of[file_uuid].append(event.uuid)
    _entity(root, record)
    for f in record.files:
        _file(root, record, f, events_of[f.uuid])
    for event in record.events:
        _event(root, event, record)
    for agent in record.agents:
        _agent(root, agent)
    return root


def to_xml(record: ItemRecord) -> bytes:
    return etree.tostring(to_premis(record), xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _entity(root: etree._Element, record: ItemRecord) -> None:
    obj = _el(root, "object", **{f"{{{XSI_NS}}}type": "premis:intellectualEntity"})
    _ident(obj, "objectIdentifier", "UUID", record.uuid)
    _ident(obj, "objectIdentifier", "local", record.identifier)
    if record.title:
        _el(obj, "originalName", record.title)


def _file(root: etree._Element, record: ItemRecord, f: FileFacts, event_uuids: list[str]) -> None:
    obj = _el(root, "object", **{f"{{{XSI_NS}}}type": "premis:file"})
    _ident(obj, "objectIdentifier", "UUID", f.uuid)
    level = _el(obj, "preservationLevel")
    _el(level, "preservationLevelValue", _ROLE_LEVEL.get(f.role, f.role))
    for name, value in (("width", f.width), ("height", f.height), ("channels", f.channels),
                        ("bit depth", f.bit_depth), ("ICC profile", None if f.has_icc is None else
                                                     ("yes" if f.has_icc else "no")),
                        ("ppi", f.ppi), ("pixel sha256", f.pixel_sha256), *_sampling_rates(record, f)):
        if value is not None:
            prop = _el(obj, "significantProperties")
            _el(prop, "significantPropertiesType", name)
            _el(prop, "significantPropertiesValue", value)
    chars = _el(obj, "objectCharacteristics")
    _el(chars, "compositionLevel", 0)
    fixity = _el(chars, "fixity")
    _el(fixity, "messageDigestAlgorithm", "SHA-256", authority="cryptographicHashFunctions",
        authorityURI=f"{_VOCAB}/cryptographicHashFunctions",
        valueURI=f"{_VOCAB}/cryptographicHashFunctions/sha256")
    _el(fixity, "messageDigest", f.sha256)
    _el(fixity, "messageDigestOriginator", "restorium")
    _el(chars, "size", f.size)
    fmt = _el(chars, "format")
    designation = _el(fmt, "formatDesignation")
    _el(designation, "formatName", _MIME.get(f.format or "", f.format or "unknown"))
    if f.role != "original":
        app = _el(chars, "creatingApplication")
        _el(app, "creatingApplicationName", "restorium")
        _el(app, "dateCreatedByApplication", f.created_at)
        if f.recipe_name or f.recipe_hash:
            ext = _el(app, "creatingApplicationExtension")
            recipe = etree.SubElement(ext, f"{{{RESTORIUM_NS}}}recipe")
            recipe.set("name", f.recipe_name or "")
            recipe.set("hash", f.recipe_hash or "")
            if f.derivation_key:
                recipe.set("derivationKey", f.derivation_key)
            if f.run_uuid:
                recipe.set("run", f.run_uuid)
    _el(obj, "originalName", Path(f.path).name)
    storage = _el(obj, "storage")
    location = _el(storage, "contentLocation")
    _el(location, "contentLocationType", "filepath")
    _el(location, "contentLocationValue", f.path)
    structural = _el(obj, "relationship")
    _el(structural, "relationshipType", "structural", authority="relationshipType",
        valueURI=f"{_VOCAB}/relationshipType/str")
    _el(structural, "relationshipSubType", "is included in")
    _ident(structural, "relatedObjectIdentifier", "UUID", record.uuid)
    if f.source_uuid:
        # Derivation: this file was made from its original by these events, in order.
        derived = _el(obj, "relationship")
        _el(derived, "relationshipType", "derivation", authority="relationshipType",
            valueURI=f"{_VOCAB}/relationshipType/der")
        _el(derived, "relationshipSubType", "has source")
        _ident(derived, "relatedObjectIdentifier", "UUID", f.source_uuid)
        for n, event_uuid in enumerate(f.derivation_events, 1):
            rel = _el(derived, "relatedEventIdentifier")
            _el(rel, "relatedEventIdentifierType", "UUID")
            _el(rel, "relatedEventIdentifierValue", event_uuid)
            _el(rel, "relatedEventSequence", n)
    for event_uuid in event_uuids:
        _linking(obj, "linkingEventIdentifier", "UUID", event_uuid)


def _sampling_rates(record: ItemRecord, f: FileFacts) -> list[tuple[str, str | None]]:
    """The scan's sampling rate and, where this file's ppi is not it, this file's interpolated one:
    a 2x master's 600 ppi were never captured."""
    source = next((s for s in record.files if s.uuid == f.source_uuid), None) if f.source_uuid else f
    capture = source.ppi if source else None
    rates: list[tuple[str, str | None]] = [
        ("capture sampling rate (ppi)", None if capture is None else ppi_text(capture))]
    if f.ppi is not None and interpolated(f.ppi, capture):
        rates.append(("interpolated sampling rate (ppi)", ppi_text(f.ppi)))
    return rates


def _event(root: etree._Element, event: EventFacts, record: ItemRecord) -> None:
    node = _el(root, "event")
    _ident(node, "eventIdentifier", "UUID", event.uuid)
    code = _EVENT_TYPES.get(event.type)
    if code:
        _el(node, "eventType", event.type, authority="eventType", authorityURI=f"{_VOCAB}/eventType",
            valueURI=f"{_VOCAB}/eventType/{code}")
    else:
        _el(node, "eventType", event.type)
    _el(node, "eventDateTime", event.when)
    info = _el(node, "eventDetailInformation")
    _el(info, "eventDetail", f"{event.step}: {event.detail}" if event.detail else event.step)
    ext = _el(info, "eventDetailExtension")
    params = etree.SubElement(ext, f"{{{RESTORIUM_NS}}}parameters")
    params.set("step", event.step)
    if event.run_uuid:
        params.set("run", event.run_uuid)
    params.text = json.dumps(event.parameters, sort_keys=True, ensure_ascii=False)
    outcome = _el(node, "eventOutcomeInformation")
    _el(outcome, "eventOutcome", event.outcome)
    note = _outcome_note(event)
    if note:
        detail = _el(outcome, "eventOutcomeDetail")
        _el(detail, "eventOutcomeDetailNote", note)
    kinds = {a.uuid: a.kind for a in record.agents}
    for agent_uuid in event.agents:
        _linking(node, "linkingAgentIdentifier", "UUID", agent_uuid,
                 _agent_role(event.type, kinds.get(agent_uuid, "")), "linkingAgentRole")
    for file_uuid, role in event.files:
        _linking(node, "linkingObjectIdentifier", "UUID", file_uuid,
                 "source" if role == "input" else "outcome", "linkingObjectRole")


def _outcome_note(event: EventFacts) -> str:
    p = event.parameters
    if event.type == FIXITY_CHECK and p.get("status") and p["status"] != "ok":
        return f"{p['status']}: expected sha256 {p.get('expected')}, found {p.get('actual') or 'no file'}"
    if event.outcome != StepOutcome.SUCCESS:
        return event.detail
    return ""


def _agent_role(event_type: str, kind: str) -> str:
    if kind == "person":
        return "authorizer" if event_type in (APPROVAL, REJECTION) else "implementer"
    return "executing program"


def _agent(root: etree._Element, agent: AgentFacts) -> None:
    node = _el(root, "agent")
    _ident(node, "agentIdentifier", "UUID", agent.uuid)
    _el(node, "agentName", agent.name)
    _el(node, "agentType", _AGENT_TYPES.get(agent.kind, agent.kind), authority="agentType")
    if agent.version:
        _el(node, "agentVersion", agent.version)
    _el(node, "agentNote", f"restorium agent kind: {agent.kind}")
    if agent.architecture:
        _el(node, "agentNote", f"architecture: {agent.architecture}")
    if agent.weights_sha256:
        _el(node, "agentNote", f"weights sha256: {agent.weights_sha256}")
    for key, value in sorted(agent.details.items()):
        _el(node, "agentNote", f"{key}: {value}")


# --- validation -------------------------------------------------------------------------------

@functools.cache
def _schema() -> etree.XMLSchema:
    # The schema imports nothing, so no resolver or network is involved.
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(SCHEMA_FILE), parser))


def validation_errors(xml: bytes | etree._Element) -> list[str]:
    """Schema errors ('line N: message'), empty when the document is valid PREMIS 3.0."""
    doc = xml if isinstance(xml, etree._Element) else etree.fromstring(
        xml, etree.XMLParser(no_network=True, resolve_entities=False))
    schema = _schema()
    if schema.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def validate(xml: bytes | etree._Element, *, name: str = "PREMIS document") -> None:
    errors = validation_errors(xml)
    if errors:
        raise PremisError(f"{name} does not validate against {SCHEMA_FILE.name}: " + "; ".join(errors[:5]))
