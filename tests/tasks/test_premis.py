"""PREMIS 3.0 export: valid against the official schema, and it says what the record says."""

from __future__ import annotations

import json

import pytest
from lxml import etree

from tasks.preservation import premis
from tasks.records.item_record import AgentFacts, EventFacts, FileFacts, ItemRecord

NS = {"p": premis.PREMIS_NS, "xsi": premis.XSI_NS, "r": premis.RESTORIUM_NS}
SHA = {"o": "a" * 64, "m": "b" * 64, "a": "c" * 64}


def _file(uuid: str, role: str, fmt: str, **extra) -> FileFacts:
    return FileFacts(uuid=uuid, role=role, path=f"/archive/{role}/{uuid}.{fmt.lower()}", sha256=SHA[role[0]],
                     size=1234, format=fmt, width=200, height=100, channels=3, bit_depth=16, has_icc=True,
                     ppi=None, created_at="2026-11-21T22:06:00Z", **extra)


def record() -> ItemRecord:
    agents = [
        AgentFacts("ag-sw", "software", "restorium", "0.1.0", details={"git_commit": "f" * 40}),
        AgentFacts("ag-model", "model", "realesr-general-x4v3", "", "SRVGGNetCompact", "d" * 64,
                   {"licence": "BSD-3-Clause"}),
        AgentFacts("ag-host", "host", "scanner", "cpu", "x86_64", details={"cpu": "Xeon", "gpu_driver": "580.1"}),
        AgentFacts("ag-ada", "person", "Ada Curator"),
    ]
    files = [
        _file("f-orig", "original", "TIFF"),
        _file("f-master", "master", "TIFF", pixel_sha256="e" * 64, source_uuid="f-orig", derivation_key="k" * 64,
              recipe_name="archival", recipe_hash="5" * 64, run_uuid="run-1",
              derivation_events=["e-up", "e-tag"]),
        _file("f-access", "access", "JPEG", source_uuid="f-orig", derivation_key="k" * 64, recipe_name="archival",
              recipe_hash="5" * 64, run_uuid="run-1", derivation_events=["e-up", "e-tag"]),
    ]
    event = lambda uuid, type_, step, agents, files, outcome="success", **params: EventFacts(
        uuid, type_, step, "2026-11-21T22:06:00Z", outcome, f"{step} done", params, agents, files)
    events = [
        event("e-ing", "ingestion", "ingest", ["ag-sw", "ag-host"], [("f-orig", "output")], path="/scans/x.tif"),
        event("e-up", "upscaling", "upscale", ["ag-sw", "ag-model", "ag-host"], [("f-orig", "input")], scale=2),
        event("e-tag", "metadata tagging", "tag", ["ag-sw", "ag-host"],
              [("f-orig", "input"), ("f-master", "output"), ("f-access", "output")]),
        event("e-ok", "approval", "approve", ["ag-ada", "ag-sw"], [("f-master", "input")], decision="approved"),
        event("e-fix", "fixity check", "fixity", ["ag-sw", "ag-host"], [("f-master", "input")], "failure",
              status="mismatch", expected="b" * 64, actual="9" * 64),
    ]
    return ItemRecord("item-1", "box1-0001", None, "2026-11-21T22:05:30Z", files, events, agents)


def test_the_export_validates_against_the_official_premis_3_schema() -> None:
    xml = premis.to_xml(record())
    assert premis.validation_errors(xml) == []
    premis.validate(xml)  # no exception
    assert xml.startswith(b"<?xml") and b'version="3.0"' in xml


def test_the_schema_check_is_real() -> None:
    doc = premis.to_premis(record())
    fixity = doc.find(".//p:object/p:objectCharacteristics/p:fixity", NS)
    fixity.getparent().remove(fixity.getparent().find("p:format", NS))  # a file must have a format
    errors = premis.validation_errors(doc)
    assert errors and any("format" in e for e in errors)
    with pytest.raises(premis.PremisError, match="does not validate"):
        premis.validate(doc)


def test_objects_carry_fixity_size_format_and_derivation_through_events() -> None:
    doc = premis.to_premis(record())
    files = {o.findtext("p:objectIdentifier/p:objectIdentifierValue", namespaces=NS): o
             for o in doc.findall("p:object[@xsi:type='premis:file']", NS)}
    assert set(files) == {"f-orig", "f-master", "f-access"}
    master = files["f-master"]
    chars = master.find("p:objectCharacteristics", NS)
    assert chars.findtext("p:fixity/p:messageDigest", namespaces=NS) == SHA["m"]
    assert chars.findtext("p:fixity/p:messageDigestAlgorithm", namespaces=NS) == "SHA-256"
    assert chars.findtext("p:size", namespaces=NS) == "1234"
    assert chars.findtext("p:format/p:formatDesignation/p:formatName", namespaces=NS) == "image/tiff"
    derivation = [r for r in master.findall("p:relationship", NS)
                  if r.findtext("p:relationshipType", namespaces=NS) == "derivation"]
    assert len(derivation) == 1
    rel = derivation[0]
    assert rel.findtext("p:relationshipSubType", namespaces=NS) == "has source"
    assert rel.findtext("p:relatedObjectIdentifier/p:relatedObjectIdentifierValue", namespaces=NS) == "f-orig"
    assert [e.text for e in rel.findall("p:relatedEventIdentifier/p:relatedEventIdentifierValue", NS)] == [
        "e-up", "e-tag"]
    # every event on the master is linked from it, later ones (approval, fixity) included
    assert {e.text for e in master.findall("p:linkingEventIdentifier/p:linkingEventIdentifierValue", NS)} == {
        "e-tag", "e-ok", "e-fix"}
    props = {p.findtext("p:significantPropertiesType", namespaces=NS): p.findtext(
        "p:significantPropertiesValue", namespaces=NS) for p in master.findall("p:significantProperties", NS)}
    assert props["pixel sha256"] == "e" * 64 and props["width"] == "200"
    assert not [r for r in files["f-orig"].findall("p:relationship", NS)
                if r.findtext("p:relationshipType", namespaces=NS) == "derivation"]


def test_events_have_outcomes_agents_with_roles_and_linked_objects() -> None:
    doc = premis.to_premis(record())
    events = {e.findtext("p:eventIdentifier/p:eventIdentifierValue", namespaces=NS): e
              for e in doc.findall("p:event", NS)}
    tag = events["e-tag"]
    assert [(o.findtext("p:linkingObjectIdentifierValue", namespaces=NS),
             o.findtext("p:linkingObjectRole", namespaces=NS)) for o in tag.findall("p:linkingObjectIdentifier", NS)] == [
        ("f-orig", "source"), ("f-master", "outcome"), ("f-access", "outcome")]
    up = events["e-up"]
    assert [a.findtext("p:linkingAgentIdentifierValue", namespaces=NS)
            for a in up.findall("p:linkingAgentIdentifier", NS)] == ["ag-sw", "ag-model", "ag-host"]
    assert json.loads(up.findtext("p:eventDetailInformation/p:eventDetailExtension/r:parameters",
                                  namespaces=NS)) == {"scale": 2}
    ok = events["e-ok"]
    assert ok.findtext("p:linkingAgentIdentifier/p:linkingAgentRole", namespaces=NS) == "authorizer"
    fix = events["e-fix"]
    assert fix.find("p:eventType", NS).get("valueURI").endswith("/eventType/fix")
    assert fix.findtext("p:eventOutcomeInformation/p:eventOutcome", namespaces=NS) == "failure"
    note = fix.findtext("p:eventOutcomeInformation/p:eventOutcomeDetail/p:eventOutcomeDetailNote", namespaces=NS)
    assert "b" * 64 in note and "9" * 64 in note


def test_agents_carry_their_kind_version_and_details() -> None:
    doc = premis.to_premis(record())
    agents = {a.findtext("p:agentIdentifier/p:agentIdentifierValue", namespaces=NS): a
              for a in doc.findall("p:agent", NS)}
    notes = lambda a: [n.text for n in a.findall("p:agentNote", NS)]
    assert agents["ag-model"].findtext("p:agentType", namespaces=NS) == "software"
    assert "licence: BSD-3-Clause" in notes(agents["ag-model"])
    assert f"weights sha256: {'d' * 64}" in notes(agents["ag-model"])
    assert agents["ag-host"].findtext("p:agentType", namespaces=NS) == "hardware"
    assert "gpu_driver: 580.1" in notes(agents["ag-host"])
    assert f"git_commit: {'f' * 40}" in notes(agents["ag-sw"])
    assert agents["ag-sw"].findtext("p:agentVersion", namespaces=NS) == "0.1.0"
    assert agents["ag-ada"].findtext("p:agentType", namespaces=NS) == "person"


def test_json_form_holds_the_same_record() -> None:
    rec = record()
    data = json.loads(json.dumps(rec.to_dict()))
    assert [f["uuid"] for f in data["files"]] == ["f-orig", "f-master", "f-access"]
    assert data["events"][2]["files"] == [{"uuid": "f-orig", "role": "input"}, {"uuid": "f-master", "role": "output"},
                                          {"uuid": "f-access", "role": "output"}]
    assert data["files"][1]["derivation_events"] == ["e-up", "e-tag"]


def test_the_shipped_schema_is_the_recorded_file() -> None:
    import hashlib

    data = premis.SCHEMA_FILE.read_bytes()
    source = (premis.SCHEMA_FILE.parent / "SOURCE.md").read_text()
    assert hashlib.sha256(data).hexdigest() in source
    schema = etree.parse(str(premis.SCHEMA_FILE)).getroot()
    assert schema.get("targetNamespace") == premis.PREMIS_NS


def test_an_upscaled_master_states_the_scans_sampling_rate_and_its_own_as_interpolated() -> None:
    rec = record()
    rec.file("f-orig").ppi = 300.0
    rec.file("f-master").ppi = 600.0  # a 2x master: its resolution tag says 600
    doc = premis.to_premis(rec)
    assert premis.validation_errors(doc) == []
    files = {o.findtext("p:objectIdentifier/p:objectIdentifierValue", namespaces=NS): o
             for o in doc.findall("p:object[@xsi:type='premis:file']", NS)}
    props = {uuid: {p.findtext("p:significantPropertiesType", namespaces=NS): p.findtext(
        "p:significantPropertiesValue", namespaces=NS) for p in o.findall("p:significantProperties", NS)}
        for uuid, o in files.items()}
    assert props["f-master"]["capture sampling rate (ppi)"] == "300"
    assert props["f-master"]["interpolated sampling rate (ppi)"] == "600"
    assert props["f-orig"]["capture sampling rate (ppi)"] == "300"
    assert "interpolated sampling rate (ppi)" not in props["f-orig"]
    # the access copy claims no ppi of its own: only the scan's is stated
    assert props["f-access"]["capture sampling rate (ppi)"] == "300"
    assert "interpolated sampling rate (ppi)" not in props["f-access"]
    # and the master remains a derivative of the original
    derivation = [r for r in files["f-master"].findall("p:relationship", NS)
                  if r.findtext("p:relationshipType", namespaces=NS) == "derivation"]
    assert [r.findtext("p:relatedObjectIdentifier/p:relatedObjectIdentifierValue", namespaces=NS)
            for r in derivation] == ["f-orig"]

    rec.file("f-master").ppi = 300.0  # same size: nothing was interpolated
    doc = premis.to_premis(rec)
    master = next(o for o in doc.findall("p:object[@xsi:type='premis:file']", NS)
                  if o.findtext("p:objectIdentifier/p:objectIdentifierValue", namespaces=NS) == "f-master")
    types = [p.findtext("p:significantPropertiesType", namespaces=NS) for p in master.findall("p:significantProperties", NS)]
    assert "capture sampling rate (ppi)" in types and "interpolated sampling rate (ppi)" not in types


def test_a_scan_without_ppi_states_no_sampling_rate() -> None:
    doc = premis.to_premis(record())  # every file's ppi is None
    assert premis.validation_errors(doc) == []
    types = {p.text for p in doc.findall(".//p:significantPropertiesType", NS)}
    assert "capture sampling rate (ppi)" not in types and "interpolated sampling rate (ppi)" not in types
