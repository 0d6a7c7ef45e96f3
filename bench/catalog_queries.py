"""`find` and `audit` latency on a large catalog (default 1,000,000 events), SQLite and PostgreSQL.

    .venv/bin/python bench/catalog_queries.py [--events 1000000] [--backends sqlite,postgresql]
                                              [--queries 200] [--pg-admin postgresql://postgres@127.0.0.1/postgres]

The catalog is made by the real migrations (so the real indexes), then filled in bulk (sqlite3
executemany / PostgreSQL COPY) with the shape restorium writes: per master an original, a master
and an access copy; 7 events (ingestion, digest, qa, denoise, upscale, finish, tag) with their
file links (the tag step also outputs master and access copy) and agents (software with a git
commit, host, the models); file_models rows (the models of each master). Runs spread over two years, 40 recipe hashes, six
model versions under three names. Queries go through the real Catalog API:

- find A: --model NAME --recipe-hash H --since (last 180 days)
- find B: --model NAME --weights SHA-PREFIX --since (a faulty model version, last 90 days) --limit 1000
- audit:  Catalog.audit(sha256=...) of a random master (the full AuditRecord)

Each is timed over --queries random instances, each run three times: median, p95 and max of the
first runs (what a user sees, with this shared machine's noise), median and p95 of the best of
three (the query's own cost), and the result sizes, next to the 50 ms target. The PostgreSQL
database is a scratch one, created and dropped here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from catalog.repository import Catalog
from catalog.sql import agent_key
from tasks.records.types import AgentInfo

TARGET_MS = 50.0
EVENTS_PER_MASTER = 7
NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
SPAN = dt.timedelta(days=730)
N_RUNS = 500
N_RECIPES = 40
STEPS = [  # (type, step, model slot or None, links)
    ("ingestion", "ingest", None), ("message digest calculation", "digest", None),
    ("quality assessment", "qa", None), ("restoration", "denoise", "denoiser"),
    ("upscaling", "upscale", "upscaler"), ("restoration", "finish", None), ("metadata tagging", "tag", None),
]


def _hex(rng: random.Random, bits: int = 256) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _agents(rng: random.Random) -> list[AgentInfo]:
    software = [AgentInfo("software", "restorium", v, details={"git_commit": _hex(rng, 160)})
                for v in ("0.1.0", "0.2.0", "0.3.0")]
    hosts = [AgentInfo("host", f"scan-{i}", "cpu x86_64 x16 threads (torch 2.14.1)", "x86_64",
                       details={"cpu": "Xeon", "device": "cpu", "threads": "16"}) for i in range(3)]
    hosts.append(AgentInfo("host", "gpu-1", "cuda NVIDIA H100 (torch 2.14.1, CUDA 13.0)", "x86_64",
                           details={"gpu": "NVIDIA H100", "gpu_driver": "580.65", "device": "cuda:0"}))
    models = [AgentInfo("model", "realesr-general-x4v3", "", "SRVGGNetCompact", _hex(rng), {"licence": "BSD-3-Clause"})
              for _ in range(3)]
    models += [AgentInfo("model", "RealESRGAN_x4plus", "", "RRDBNet", _hex(rng), {"licence": "BSD-3-Clause"})
               for _ in range(2)]
    models.append(AgentInfo("model", "ffdnet_color", "", "FFDNet", _hex(rng), {"licence": "research"}))
    return software + hosts + models


class Plan:
    """The synthetic catalog: every id fixed up front, rows generated chunk by chunk."""

    def __init__(self, events: int, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.masters = events // EVENTS_PER_MASTER
        self.agents = _agents(self.rng)
        self.recipes = [_hex(self.rng) for _ in range(N_RECIPES)]
        starts = sorted(NOW - SPAN + dt.timedelta(seconds=self.rng.uniform(0, SPAN.total_seconds()))
                        for _ in range(N_RUNS))
        self.runs = [(i + 1, _uuid(self.rng), t, self.rng.randrange(N_RECIPES), self.rng.randrange(3),
                      self.rng.randrange(4), self.rng.choice((0, 1, 2, 0, 0, 3, 4)))
                     for i, t in enumerate(starts)]  # id, uuid, start, recipe, software, host, upscaler
        self.sample_shas: list[str] = []
        self.upscalers = [a for a in self.agents if a.kind == "model" and a.name != "ffdnet_color"]

    def agent_rows(self) -> list[tuple]:
        return [(i + 1, agent_key(a), a.kind, a.name, a.version, a.architecture, a.weights_sha256,
                 json.dumps(a.details)) for i, a in enumerate(self.agents)]

    def run_rows(self) -> list[tuple]:
        rows = []
        for rid, ruuid, start, recipe, software, _host, _up in self.runs:
            rows.append((rid, ruuid, start, start + dt.timedelta(hours=8), "finished", "/scans/batch", "archival",
                         self.recipes[recipe], json.dumps({"name": "archival"}), json.dumps({"workers": 4}),
                         json.dumps({"mastered": 1}), json.dumps({"wall_seconds": 1.0}),
                         self.agents[software].version, "scan-host"))
        return rows

    def chunks(self, size: int = 5000) -> Iterator[dict[str, list[tuple]]]:
        """Rows of items, files, events, event_files, event_agents, file_models per chunk."""
        rng = self.rng
        n_sw = 3
        host0 = n_sw
        ffdnet_id = len(self.agents)  # last agent
        upscaler_ids = {i: self.agents.index(a) + 1 for i, a in enumerate(self.upscalers)}
        event_id = 0
        for first in range(0, self.masters, size):
            out: dict[str, list[tuple]] = {k: [] for k in ("items", "files", "events", "event_files",
                                                           "event_agents", "file_models")}
            for m in range(first, min(first + size, self.masters)):
                rid, _ruuid, start, recipe, software, host, up = self.runs[m * N_RUNS // self.masters]
                when = start + dt.timedelta(seconds=(m % 997) * 20)
                item_id = m + 1
                out["items"].append((item_id, _uuid(rng), f"scan-{m:07}", None, when))
                sha_o, sha_m, sha_a = _hex(rng), _hex(rng), _hex(rng)
                dk = _hex(rng)
                if len(self.sample_shas) < 20000 and rng.random() < 0.2:
                    self.sample_shas.append(sha_m)
                fo, fm, fa = 3 * m + 1, 3 * m + 2, 3 * m + 3
                recipe_hash = self.recipes[recipe]
                resolved = json.dumps({"name": "archival", "hash": recipe_hash, "upscale": {"width": 2400}})
                out["files"] += [
                    (fo, _uuid(rng), f"original/{sha_o}", item_id, "original", f"/scans/batch/scan-{m:07}.tif",
                     sha_o, 24_000_000, "TIFF", 1200, 800, 3, 16, True, 600.0, 1, when, None, None, None, None,
                     None, None, None, None),
                    (fm, _uuid(rng), f"master/{dk}", item_id, "master", f"/archive/masters/scan-{m:07}.{dk[:12]}.tif",
                     sha_m, 96_000_000, "TIFF", 2400, 1600, 3, 16, True, None, None, when, rid, fo, dk, "archival",
                     recipe_hash, resolved, json.dumps(["denoise: sigma 2.4"]), _hex(rng)),
                    (fa, _uuid(rng), f"access/{dk}", item_id, "access", f"/archive/access/scan-{m:07}.{dk[:12]}.jpg",
                     sha_a, 900_000, "JPEG", 2048, 1365, 3, 8, True, None, None, when, rid, fo, dk, "archival",
                     recipe_hash, resolved, json.dumps(["denoise: sigma 2.4"]), None),
                ]
                upscaler = upscaler_ids[up]
                for s, (etype, step, slot) in enumerate(STEPS):
                    event_id += 1
                    params = ({"path": f"/scans/batch/scan-{m:07}.tif", "size": 24_000_000} if s == 0 else
                              {"algorithm": "sha256", "value": sha_o} if s == 1 else
                              {"recipe_hash": recipe_hash, "derivation_key": dk, "step": step, "sigma": 2.4})
                    out["events"].append((event_id, _uuid(rng), etype, step, when + dt.timedelta(seconds=s),
                                          "success", f"{step} done", json.dumps(params), item_id,
                                          rid if s >= 2 or m % 3 == 0 else None))
                    out["event_files"].append((event_id, fo, "output" if s == 0 else "input"))
                    if s == len(STEPS) - 1:
                        out["event_files"] += [(event_id, fm, "output"), (event_id, fa, "output")]
                    agents = [software + 1]
                    if slot == "denoiser":
                        agents.append(ffdnet_id)
                    elif slot == "upscaler":
                        agents.append(upscaler)
                    agents.append(host0 + host + 1)
                    out["event_agents"] += [(event_id, a, p) for p, a in enumerate(agents)]
                out["file_models"] += [(ffdnet_id, fm, when), (upscaler, fm, when)]
            yield out


COLUMNS = {
    "agents": "id, key, kind, name, version, architecture, weights_sha256, details",
    "runs": "id, uuid, started_at, finished_at, status, scans_dir, recipe_name, recipe_hash, recipe, settings, "
            "counts, timings, software_version, host",
    "items": "id, uuid, identifier, title, created_at",
    "files": "id, uuid, key, item_id, role, path, sha256, size, format, width, height, channels, bit_depth, "
             "has_icc, ppi, orientation, created_at, run_id, source_file_id, derivation_key, recipe_name, "
             "recipe_hash, resolved_recipe, plan_reasons, pixel_sha256",
    "events": "id, uuid, type, step, occurred_at, outcome, detail, parameters, item_id, run_id",
    "event_files": "event_id, file_id, role",
    "event_agents": "event_id, agent_id, position",
    "file_models": "agent_id, file_id, created_at",
}
ORDER = ("items", "files", "events", "event_files", "event_agents", "file_models")


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, dt.datetime):  # SQLAlchemy's SQLite storage format, UTC without offset
        return v.astimezone(dt.UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return v


def fill_sqlite(path: Path, plan: Plan) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -400000")
    with db:
        for table, rows in (("agents", plan.agent_rows()), ("runs", plan.run_rows())):
            _sqlite_insert(db, table, rows)
    for chunk in plan.chunks():
        with db:
            for table in ORDER:
                _sqlite_insert(db, table, chunk[table])
    db.execute("ANALYZE")
    db.close()


def _sqlite_insert(db: sqlite3.Connection, table: str, rows: list[tuple]) -> None:
    cols = COLUMNS[table]
    marks = ", ".join("?" * len(cols.split(",")))
    db.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})",
                   [tuple(_sqlite_value(v) for v in row) for row in rows])


def fill_postgres(url: str, plan: Plan) -> None:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        with conn.cursor() as cur:
            for table, rows in (("agents", plan.agent_rows()), ("runs", plan.run_rows())):
                _copy(cur, table, rows)
            conn.commit()
            for chunk in plan.chunks(20000):
                for table in ORDER:
                    _copy(cur, table, chunk[table])
                conn.commit()
            for table in ("agents", "runs", "items", "files", "events"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")


def _copy(cur: Any, table: str, rows: list[tuple]) -> None:
    with cur.copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _timed(fn: Callable[[Any], Any], params: list[Any], repeat: int = 3) -> dict[str, float]:
    """Each query instance runs `repeat` times: the first run's latency (what a user sees, noise
    of this shared machine included) and the best of the runs (the query's own cost)."""
    first, best, sizes = [], [], []
    for p in params:
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            result = fn(p)
            runs.append((time.perf_counter() - start) * 1000)
        first.append(runs[0])
        best.append(min(runs))
        sizes.append(len(result) if isinstance(result, list) else 1)
    p95 = lambda xs: statistics.quantiles(xs, n=20)[18]
    return {"median_ms": statistics.median(first), "p95_ms": p95(first), "max_ms": max(first),
            "best_median_ms": statistics.median(best), "best_p95_ms": p95(best),
            "median_rows": statistics.median(sizes), "p95_rows": p95(sizes)}


def measure(url: str, plan: Plan, queries: int) -> dict[str, Any]:
    rng = random.Random(11)
    names = ["realesr-general-x4v3", "RealESRGAN_x4plus"]
    a_params = [dict(model=rng.choice(names), recipe_hash=rng.choice(plan.recipes), since=NOW - dt.timedelta(days=180))
                for _ in range(queries)]
    b_params = []
    for _ in range(queries):
        faulty = rng.choice(plan.upscalers)
        b_params.append(dict(model=faulty.name, weights=faulty.weights_sha256[:12],
                             since=NOW - dt.timedelta(days=90), limit=1000))
    audit_params = [rng.choice(plan.sample_shas) for _ in range(queries)]
    results: dict[str, Any] = {}
    with Catalog.open(url) as catalog:
        def audit(sha256: str) -> Any:
            record = catalog.audit(sha256=sha256)
            assert record is not None and len(record.steps) == EVENTS_PER_MASTER
            return record

        for name, fn, params in (
            ("find A (model+recipe+since 180 d)", lambda p: catalog.search_masters(**p), a_params),
            ("find B (model+weights+since 90 d, limit 1000)", lambda p: catalog.search_masters(**p), b_params),
            ("audit (AuditRecord by sha256)", audit, audit_params),
        ):
            fn(params[0])  # warm the caches once
            results[name] = _timed(fn, params)
        results["_rows"] = catalog.count_rows()
    return results


def _report(backend: str, fill_s: float, results: dict[str, Any]) -> None:
    rows = results.pop("_rows")
    print(f"\n{backend}: {rows['events']:,} events, {rows['files']:,} files, {rows['event_agents']:,} "
          f"event-agent links, filled in {fill_s:.0f} s")
    print(f"  {'query':46} {'median':>8} {'p95':>8} {'max':>8} | best of 3: {'median':>7} {'p95':>7} | "
          f"rows (median/p95) | target {TARGET_MS:.0f} ms")
    for name, r in results.items():
        verdict = "ok" if r["p95_ms"] < TARGET_MS else ("ok (best of 3)" if r["best_p95_ms"] < TARGET_MS else "OVER")
        print(f"  {name:46} {r['median_ms']:6.1f}ms {r['p95_ms']:6.1f}ms {r['max_ms']:6.1f}ms |"
              f"            {r['best_median_ms']:5.1f}ms {r['best_p95_ms']:5.1f}ms | {r['median_rows']:6.0f} /"
              f" {r['p95_rows']:5.0f}    | {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    backends = args.backends.split(",")
    print(f"catalog benchmark: {args.events:,} events ({args.events // EVENTS_PER_MASTER:,} masters), "
          f"{args.queries} queries each")
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory(prefix="restorium-bench-") as tmp:
            path = Path(tmp) / "catalog.sqlite"
            Catalog.open(f"sqlite:///{path}").close()  # the real migrations: the real schema and indexes
            plan = Plan(args.events)
            start = time.perf_counter()
            fill_sqlite(path, plan)
            fill_s = time.perf_counter() - start
            _report("SQLite", fill_s, measure(f"sqlite:///{path}", plan, args.queries))
    if "postgresql" in backends:
        import psycopg
        from psycopg import sql

        name = f"restorium_bench_{secrets.token_hex(4)}"
        with psycopg.connect(args.pg_admin, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = args.pg_admin.rsplit("/", 1)[0] + f"/{name}"
        try:
            Catalog.open(url).close()
            plan = Plan(args.events)
            start = time.perf_counter()
            fill_postgres(url, plan)
            fill_s = time.perf_counter() - start
            _report("PostgreSQL", fill_s, measure(url, plan, args.queries))
        finally:
            with psycopg.connect(args.pg_admin, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
