"""Agent details, pixel digests, later events (append-only), fixity candidates, item records and
`find`, on SQLite and PostgreSQL; and migration 0003 on a catalog that already holds masters."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from catalog import Catalog
from catalog.db import make_engine, upgrade
from catalog.schema import Agent
from catalog.sql import agent_key
from tasks.preservation.decisions import decision_step
from tasks.preservation.fixity import check_file, fixity_step
from tasks.records.types import AgentInfo, ScanOutcome

GIT = {"git_commit": "c" * 40}


def _mastered(catalog: Catalog, records, run_uuid: str, name: str, **master_changes) -> ScanOutcome:
    facts = records.facts(name)
    catalog.record_ingest(run_uuid, [records.entry(facts)])
    outcome = records.mastered(facts, run_uuid)
    outcome.master = replace(outcome.master, **master_changes)
    catalog.record_outcomes(run_uuid, [outcome])
    return outcome


def test_agent_key_without_details_is_the_key_stored_before_details_existed() -> None:
    agent = AgentInfo("model", "realesr-general-x4v3", "", "SRVGGNetCompact", "ab" * 32)
    old = hashlib.sha256(json.dumps(["model", "realesr-general-x4v3", "", "SRVGGNetCompact", "ab" * 32],
                                    ensure_ascii=False).encode()).hexdigest()
    assert agent_key(agent) == old
    assert agent_key(replace(agent, details={"licence": "BSD-3-Clause"})) != old
    assert agent_key(replace(agent, details={"a": "1", "b": "2"})) == agent_key(replace(agent, details={"b": "2", "a": "1"}))


def test_agent_details_and_pixel_digest_come_back_in_the_audit(catalog: Catalog, records, run_uuid: str) -> None:
    facts = records.facts("detailed.tif")
    catalog.record_ingest(run_uuid, [records.entry(facts)])
    outcome = records.mastered(facts, run_uuid)
    software = replace(records.SOFTWARE, details=GIT)
    model = replace(records.MODEL, details={"licence": "BSD-3-Clause", "matches_published": "no"})
    host = AgentInfo("host", "gpu-1", "cuda H100", "x86_64", details={"gpu": "NVIDIA H100", "gpu_driver": "580.65"})
    outcome.steps = [replace(s, agents=[software if a.kind == "software" else model if a.kind == "model" else host
                                        for a in s.agents]) for s in outcome.steps]
    outcome.master = replace(outcome.master, pixel_sha256="f" * 64)
    catalog.record_outcomes(run_uuid, [outcome])

    record = catalog.audit(sha256=outcome.master.sha256)
    assert record.master["pixel_sha256"] == "f" * 64
    upscale = next(s for s in record.steps if s.step == "upscale")
    assert upscale.agents == [software, model]
    assert upscale.agents[0].details == GIT and upscale.agents[1].details["licence"] == "BSD-3-Clause"
    assert model in record.models
    with catalog.engine.connect() as conn:  # the same software without details stays one row
        rows = conn.execute(select(Agent.name, Agent.details).where(Agent.kind == "software")).all()
    assert sorted((n, d) for n, d in rows if d) == [("restorium", GIT)]
    # a master without a digest has none in its record (as its XMP has none)
    plain = _mastered(catalog, records, run_uuid, "plain.tif")
    assert "pixel_sha256" not in catalog.audit(sha256=plain.master.sha256).master


def test_later_events_are_appended_and_never_part_of_the_audit(catalog: Catalog, records, run_uuid: str) -> None:
    outcome = _mastered(catalog, records, run_uuid, "decided.tif")
    before = catalog.audit(sha256=outcome.master.sha256)
    software = records.SOFTWARE
    approve = decision_step("approved", master_uuid=outcome.master.uuid, master_sha256=outcome.master.sha256,
                            by="Ada Curator", comment="", software=software, when="2026-11-22T10:00:00Z")
    reject = decision_step("rejected", master_uuid=outcome.master.uuid, master_sha256=outcome.master.sha256,
                           by="Bob  Auditor", comment="faces too smooth", software=software,
                           when="2026-11-22T11:00:00Z")
    assert catalog.record_file_events([(outcome.master.uuid, approve)]) == 1
    assert catalog.record_file_events([(outcome.master.uuid, approve)]) == 0  # the same event: nothing new
    assert catalog.record_file_events([(outcome.master.uuid, reject)]) == 1  # a correction is a new event
    later = catalog.later_events(outcome.master.uuid)
    assert [(e.type, e.parameters["decision"]) for e in later] == [("approval", "approved"), ("rejection", "rejected")]
    assert later[1].agents[0] == AgentInfo("person", "Bob Auditor")
    assert catalog.audit(sha256=outcome.master.sha256) == before  # how it was made is unchanged
    with pytest.raises(ValueError, match="comment"):
        decision_step("rejected", master_uuid="m", master_sha256="s", by="Bob", comment=" ", software=software)
    with pytest.raises(LookupError, match="not in the catalog"):
        catalog.record_file_events([("no-such-file", approve)])


def test_fixity_candidates_skip_recent_successes_only(catalog: Catalog, records, run_uuid: str, tmp_path: Path) -> None:
    outcome = _mastered(catalog, records, run_uuid, "fix.tif")
    files = catalog.fixity_candidates()
    assert {f.role for f in files} == {"original", "master", "access"} and len(files) == 3
    agents = [records.SOFTWARE]
    results = [check_file(f.uuid, f.role, f.path, f.sha256, f.item_uuid) for f in files]  # none exist: missing
    assert {r.status for r in results} == {"missing"}
    master = next(r for r in results if r.role == "master")
    ok = replace(master, status="ok", actual=master.expected)
    catalog.record_file_events([(ok.file_uuid, fixity_step(ok, "check-1", agents))])
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    assert {f.role for f in catalog.fixity_candidates(cutoff)} == {"original", "access"}
    assert len(catalog.fixity_candidates()) == 3  # no window: everything
    catalog.record_file_events([(master.file_uuid, fixity_step(master, "check-2", agents))])  # then it failed
    assert {f.role for f in catalog.fixity_candidates(cutoff)} == {"original", "master", "access"}
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert len(catalog.fixity_candidates(future)) == 3
    assert [e.type for e in catalog.later_events(outcome.master.uuid)] == ["fixity check", "fixity check"]


def test_item_record_links_files_events_and_agents(catalog: Catalog, records, run_uuid: str) -> None:
    outcome = _mastered(catalog, records, run_uuid, "item.tif", pixel_sha256="e" * 64)
    ref = catalog.file_ref(sha256=outcome.master.sha256)
    record = catalog.item_record(ref.item_uuid)
    roles = {f.role: f for f in record.files}
    assert set(roles) == {"original", "master", "access"}
    master = roles["master"]
    assert master.source_uuid == roles["original"].uuid and master.pixel_sha256 == "e" * 64
    assert master.run_uuid == run_uuid and master.recipe_hash == records.RECIPE_HASH
    steps = [e for e in record.events if e.uuid in master.derivation_events]
    assert [e.step for e in steps] == ["qa", "restore", "upscale", "finish", "tag"]
    tag = next(e for e in record.events if e.step == "tag")
    assert ("tag", sorted(r for _, r in tag.files)) == ("tag", ["input", "output", "output"])
    kinds = {a.uuid: a.kind for a in record.agents}
    assert {kinds[a] for e in record.events for a in e.agents} == {"software", "host", "model"}
    assert catalog.items_named("item") == [(record.uuid, "item")]
    assert catalog.items_named(record.uuid) == [(record.uuid, "item")]
    assert catalog.item_record("00000000-0000-0000-0000-000000000000") is None


def test_find_by_model_weights_recipe_and_time(catalog: Catalog, records, run_uuid: str) -> None:
    a = _mastered(catalog, records, run_uuid, "a.tif")
    b = _mastered(catalog, records, run_uuid, "b.tif")
    name, weights = records.MODEL.name, records.MODEL.weights_sha256
    found = catalog.search_masters(model=name)
    assert {r["uuid"] for r in found} == {a.master.uuid, b.master.uuid}
    assert {m["name"] for m in found[0]["models"]} == {name, records.DENOISER.name}
    assert len(catalog.search_masters(model=name, weights=weights[:10], recipe_hash=records.RECIPE_HASH)) == 2
    assert catalog.search_masters(model=name, weights="0" * 10) == []
    assert catalog.search_masters(model="RealESRGAN_x4plus") == []
    assert catalog.search_masters(recipe_hash="6" * 64) == []
    assert len(catalog.search_masters(recipe_hash=records.RECIPE_HASH[:8])) == 2
    future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert catalog.search_masters(model=name, since=future) == []
    assert len(catalog.search_masters(model=name, until=future, limit=1)) == 1
    with pytest.raises(ValueError, match="not hexadecimal"):
        catalog.search_masters(recipe_hash="zz")


def test_migration_0003_keeps_masters_and_backfills_their_models(db_url: str, records) -> None:
    """A catalog with a master at 0002 gains its file_models rows, and its agents keep their keys."""
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0002")
        facts = records.facts("legacy.tif")
        outcome = records.mastered(facts, "run-0002")
        _write_as_0002(engine, records, facts, outcome)
        upgrade(engine)
        catalog = Catalog(engine)
        found = catalog.search_masters(model=records.MODEL.name)
        assert [r["uuid"] for r in found] == [outcome.master.uuid]
        assert {m["name"] for m in found[0]["models"]} == {records.MODEL.name, records.DENOISER.name}
        assert catalog.count_rows()["agents"] == 4
        catalog.record_ingest(None, [records.entry(records.facts("new.tif"))])
        assert catalog.count_rows()["agents"] == 4  # the same agents, recorded anew, reuse the old rows
    finally:
        engine.dispose()


def _write_as_0002(engine, records, facts, outcome: ScanOutcome) -> None:
    """Rows as the code of revision 0002 wrote them: plain SQL, since today's code knows new columns."""
    from sqlalchemy import text

    from catalog.db import write_transaction
    from catalog.sql import derived_key, item_uuid, original_key, original_uuid

    now = dt.datetime.now(dt.UTC)
    with write_transaction(engine) as conn:
        one = lambda sql, **p: conn.execute(text(sql), p).scalar_one()
        run = lambda sql, **p: conn.execute(text(sql), p)
        run("INSERT INTO runs (uuid, started_at, status, scans_dir, recipe_name, recipe_hash, recipe, settings, "
            "software_version, host) VALUES ('run-0002', :t, 'finished', '/s', 'archival', :h, '{}', '{}', '0.1.0', 'h')",
            t=now, h=records.RECIPE_HASH)
        run_id = one("SELECT id FROM runs")
        run("INSERT INTO items (uuid, identifier, created_at) VALUES (:u, 'legacy', :t)", u=item_uuid(facts.sha256), t=now)
        item_id = one("SELECT id FROM items")
        insert_file = ("INSERT INTO files (uuid, key, item_id, role, path, sha256, size, created_at, run_id, "
                       "source_file_id, derivation_key) VALUES (:u, :k, :i, :role, :p, :s, 1, :t, :r, :o, :d)")
        run(insert_file, u=original_uuid(facts.sha256), k=original_key(facts.sha256), i=item_id, role="original",
            p=facts.path, s=facts.sha256, t=now, r=None, o=None, d=None)
        original_id = one("SELECT id FROM files")
        run(insert_file, u=outcome.master.uuid, k=derived_key("master", outcome.derivation_key), i=item_id,
            role="master", p=outcome.master.path, s=outcome.master.sha256, t=now, r=run_id, o=original_id,
            d=outcome.derivation_key)
        for step in outcome.steps:
            run("INSERT INTO events (uuid, type, step, occurred_at, outcome, detail, parameters, item_id, run_id) "
                "VALUES (:u, :ty, :st, :t, 'success', '', :p, :i, :r)", u=step.event_uuid, ty=step.type, st=step.step,
                t=now, p=json.dumps(step.parameters), i=item_id, r=run_id)
            event_id = one("SELECT id FROM events WHERE uuid = :u", u=step.event_uuid)
            run("INSERT INTO event_files VALUES (:e, :f, 'input')", e=event_id, f=original_id)
            for position, agent in enumerate(step.agents):
                key = agent_key(agent)
                if not one("SELECT count(*) FROM agents WHERE key = :k", k=key):
                    run("INSERT INTO agents (key, kind, name, version, architecture, weights_sha256) "
                        "VALUES (:k, :kind, :n, :v, :a, :w)", k=key, kind=agent.kind, n=agent.name,
                        v=agent.version, a=agent.architecture, w=agent.weights_sha256)
                run("INSERT INTO event_agents VALUES (:e, :a, :p)", e=event_id,
                    a=one("SELECT id FROM agents WHERE key = :k", k=key), p=position)
