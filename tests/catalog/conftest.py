"""Fixtures for the catalog tests: each test runs on SQLite and on a real PostgreSQL server.

The PostgreSQL cases (marked `postgres`) need the server on 127.0.0.1:5432 (trust auth, user
postgres). They fail, not skip, when it is unreachable: CI has the server.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog import Catalog
from tasks.records.keys import derivation_key, stable_uuid
from tasks.records.types import (
    DIGEST,
    INGESTION,
    METADATA_TAGGING,
    QUALITY_ASSESSMENT,
    RESTORATION,
    UPSCALING,
    VALIDATION,
    AgentInfo,
    OriginalFacts,
    ScanOutcome,
    StepRecord,
    TechnicalMetadata,
    WrittenFile,
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'archive' / 'catalog.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def catalog(db_url: str) -> Iterator[Catalog]:
    with Catalog.open(db_url) as cat:
        yield cat


SOFTWARE = AgentInfo(kind="software", name="restorium", version="0.1.0")
HOST = AgentInfo(kind="host", name="scanner-host", version="linux")
MODEL = AgentInfo(kind="model", name="realesr-general-x4v3", version="", architecture="SRVGGNetCompact",
                  weights_sha256="8dc7edb9ac80ccdc30c3a5dca6616509367f05fbc184ad95b731f05bece96292")
DENOISER = AgentInfo(kind="model", name="ffdnet_color", architecture="FFDNet", weights_sha256="ab" * 32)
RECIPE_HASH = "5" * 64
RECIPE = {"name": "archival", "seed": 0, "upscale": {"model": MODEL.name, "scale": 2.0}}


def records_start_run(cat: Catalog, run_uuid: str | None = None) -> str:
    run_uuid = run_uuid or stable_uuid("run", secrets.token_hex(4))
    cat.start_run(run_uuid=run_uuid, scans_dir="/scans", recipe_name="archival", recipe_hash=RECIPE_HASH,
                  recipe=RECIPE, settings={"workers": 1, "shard_size": 32}, software_version=SOFTWARE.version,
                  host="scanner-host")
    return run_uuid


class Records:
    """Builds the records the driver would: real dataclasses, deterministic ids."""

    SOFTWARE, HOST, MODEL, DENOISER = SOFTWARE, HOST, MODEL, DENOISER
    RECIPE, RECIPE_HASH = RECIPE, RECIPE_HASH

    def __init__(self, root: Path) -> None:
        self.root = root

    start_run = staticmethod(records_start_run)

    def facts(self, name: str, content: bytes | None = None, *, readable: bool = True) -> OriginalFacts:
        content = content if content is not None else name.encode()
        tech = TechnicalMetadata(format="TIFF", width=1200, height=800, channels=3, bit_depth=16, mode="RGB",
                                 has_icc=True, ppi=600.0, orientation=1) if readable else None
        return OriginalFacts(path=str(self.root / "scans" / name), sha256=hashlib.sha256(content).hexdigest(),
                             size=len(content), tech=tech, error=None if readable else "not a TIFF header")

    def ingest_steps(self, facts: OriginalFacts, when: str = "2026-11-21T22:05:30Z") -> list[StepRecord]:
        agents = [SOFTWARE, HOST]
        return [
            StepRecord(stable_uuid("ingestion", facts.sha256), INGESTION, "ingest", when, "success",
                       f"registered {facts.path}", agents, {"path": facts.path, "size": facts.size, "ppi": 600.0}),
            StepRecord(stable_uuid("digest", facts.sha256), DIGEST, "digest", when, "success",
                       "sha256 computed while streaming the original", agents,
                       {"algorithm": "sha256", "value": facts.sha256}),
        ]

    def entry(self, facts: OriginalFacts, when: str = "2026-11-21T22:05:30Z") -> tuple[OriginalFacts, str, list[StepRecord]]:
        return facts, Path(facts.path).stem, self.ingest_steps(facts, when)

    def derivation(self, facts: OriginalFacts, software_version: str = SOFTWARE.version) -> str:
        return derivation_key(facts.sha256, RECIPE_HASH, {MODEL.name: MODEL.weights_sha256}, software_version)

    def _params(self, dk: str, **extra: object) -> dict[str, object]:
        return {"recipe_hash": RECIPE_HASH, "derivation_key": dk, **extra}

    def mastered(self, facts: OriginalFacts, run_uuid: str, when: str = "2026-11-21T22:06:00Z") -> ScanOutcome:
        dk = self.derivation(facts)
        step = lambda kind, name, agents, **p: StepRecord(
            stable_uuid(dk, name), kind, name, when, "success", f"{name} done", agents, self._params(dk, **p))
        steps = [
            step(QUALITY_ASSESSMENT, "qa", [SOFTWARE], verdict="ok", noise_sigma=3.25, findings=["mild noise"]),
            step(RESTORATION, "restore", [SOFTWARE, DENOISER], denoise={"method": "ffdnet", "sigma": 2.6}),
            step(UPSCALING, "upscale", [SOFTWARE, MODEL], scale=2.0, tile=256, tile_overlap=16),
            step(RESTORATION, "finish", [SOFTWARE, MODEL], fidelity_blend=0.2),
            step(METADATA_TAGGING, "tag", [SOFTWARE, HOST], xmp=True, nested={"a": [1, 2, {"b": None}]}),
        ]
        stem = Path(facts.path).stem
        master = WrittenFile(stable_uuid("master", dk), "master", str(self.root / "masters" / f"{stem}.tif"),
                             hashlib.sha256(b"master" + dk.encode()).hexdigest(), 10_000_000_000,
                             "TIFF", 2400, 1600, 3, 16, True)
        access = WrittenFile(stable_uuid("access", dk), "access", str(self.root / "access" / f"{stem}.jpg"),
                             hashlib.sha256(b"access" + dk.encode()).hexdigest(), 400_000, "JPEG", 2048, 1365, 3, 8, True)
        return ScanOutcome(derivation_key=dk, original_sha256=facts.sha256, status="mastered",
                           resolved_recipe={**RECIPE, "denoise": {"sigma": 2.6}},
                           plan_reasons=["noise sigma 3.25 > 2: denoise"], steps=steps, master=master, access=access,
                           timings={"model": 1.5})

    def failed(self, facts: OriginalFacts, run_uuid: str, *, invalid: bool = True,
               software_version: str = SOFTWARE.version) -> ScanOutcome:
        dk = self.derivation(facts, software_version)
        software = AgentInfo(kind="software", name="restorium", version=software_version)
        reason = "not a TIFF header" if invalid else "CUDA out of memory"
        kind, name = (VALIDATION, "validate") if invalid else (UPSCALING, "upscale")
        params = self._params(dk, software_version=software_version) if invalid else self._params(dk)
        event_uuid = stable_uuid("invalid", facts.sha256, software_version) if invalid else stable_uuid("error", run_uuid, dk)
        steps = [StepRecord(event_uuid, kind, name, "2026-11-21T22:06:00Z", "failure",
                            reason, [software], params)]
        return ScanOutcome(derivation_key=dk, original_sha256=facts.sha256, status="failed", reason=reason,
                           failure_kind="invalid" if invalid else "error", steps=steps)


@pytest.fixture
def records(tmp_path: Path) -> Records:
    return Records(tmp_path)


@pytest.fixture
def run_uuid(catalog: Catalog) -> str:
    return records_start_run(catalog)
