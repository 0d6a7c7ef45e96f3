"""Typed records passed between stages, the model actors and the driver.

They are plain dataclasses (cheap to pickle through Ray) and JSON-friendly via `asdict`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from tasks.records.results import FailureKind, ScanStatus, StepOutcome

# PREMIS-style event types (the catalog's Event.type and each XMP history entry).
INGESTION = "ingestion"
DIGEST = "message digest calculation"
VALIDATION = "validation"
QUALITY_ASSESSMENT = "quality assessment"
RESTORATION = "restoration"
UPSCALING = "upscaling"
METADATA_TAGGING = "metadata tagging"
# Events on files already made (never part of how a master was made, so never in its XMP).
FIXITY_CHECK = "fixity check"
APPROVAL = "approval"
REJECTION = "rejection"
REPROCESSING = "reprocessing"  # a reviewer's request to remake a master, and its completion
REPRODUCTION = "reproduction"  # a re-run of the recorded recipe compared with the master

# A StepOutcome, or the plain string it equals (records read back from the catalog or the XMP).
Outcome = StepOutcome | Literal["success", "warning", "failure"]


def utc_now() -> str:
    """Event time as recorded everywhere (catalog and XMP): UTC, whole seconds, ISO 8601."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class AgentInfo:
    """Who or what performed an event: software, a model (with its weights), a host or a person.

    `details` carries facts that describe the agent without naming it (software: git_commit;
    model: licence; host: cpu, gpu, driver ...). They are part of its identity in the catalog only
    when present (catalog.sql.agent_key), so agents stored before details existed keep their key,
    and they travel in the XMP with the rest of the agent, so catalog and file still agree.
    """

    kind: Literal["software", "model", "host", "person"]
    name: str
    version: str = ""
    architecture: str = ""
    weights_sha256: str = ""
    # Not hashed (a dict cannot be): equal agents still hash alike, which is all hashing needs.
    details: dict[str, str] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {k: getattr(self, k) for k in _AGENT_FIELDS}
        if self.details:  # absent when empty: older masters' XMP and JSON stay byte-identical
            data["details"] = dict(self.details)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentInfo:
        return cls(**{k: data.get(k, "") for k in _AGENT_FIELDS},
                   details={str(k): str(v) for k, v in (data.get("details") or {}).items()})

    def label(self) -> str:
        if self.kind == "model":
            return f"{self.name} ({self.architecture}, sha256 {self.weights_sha256[:12]})"
        return f"{self.name} {self.version}".strip()


_AGENT_FIELDS = ("kind", "name", "version", "architecture", "weights_sha256")


@dataclass
class StepRecord:
    """One step applied to a scan: becomes a catalog Event and an xmpMM:History entry."""

    event_uuid: str
    type: str
    step: str
    when: str
    outcome: Outcome
    detail: str
    agents: list[AgentInfo]
    parameters: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["agents"] = [a.to_dict() for a in self.agents]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepRecord:
        return cls(
            event_uuid=data["event_uuid"], type=data["type"], step=data["step"], when=data["when"],
            outcome=data["outcome"], detail=data.get("detail", ""),
            agents=[AgentInfo.from_dict(a) for a in data.get("agents", [])],
            parameters=dict(data.get("parameters", {})),
        )


@dataclass(frozen=True)
class TechnicalMetadata:
    """What the file itself says about its pixels (read from the header at ingest)."""

    format: str  # TIFF | PNG | JPEG
    width: int
    height: int
    channels: int
    bit_depth: int
    mode: str
    has_icc: bool
    ppi: float | None
    orientation: int | None  # EXIF orientation (1-8) when present


@dataclass(frozen=True)
class OriginalFacts:
    """Ingest's findings for one file: identity by content, plus header facts or why none."""

    path: str  # absolute
    sha256: str
    size: int
    tech: TechnicalMetadata | None
    error: str | None = None  # header unreadable: the scan fails validation with this reason
    error_kind: str | None = None  # tasks.records.failures kind of `error`; sha256 is "" when unreadable


@dataclass(frozen=True)
class WrittenFile:
    """A derived file written atomically (master TIFF, access JPEG, review sheet, IIIF tiles)."""

    uuid: str
    role: Literal["master", "access", "review", "iiif"]
    path: str  # absolute
    sha256: str
    size: int
    format: str
    width: int
    height: int
    channels: int
    bit_depth: int
    has_icc: bool
    # Masters only: sha256 of the decoded pixels (tasks.files.digest.pixel_digest), which survives
    # metadata edits; "" where not computed.
    pixel_sha256: str = ""
    ppi: float | None = None  # masters: the resolution tags (interpolated when upscaled: see the XMP)
    # IIIF tiles: which file they show ("original" or "master"); path is their manifest-sha256.txt.
    of: str | None = None


@dataclass
class ScanJob:
    """Everything a worker needs to master one scan; decided by the driver from the catalog."""

    original_path: str
    original_sha256: str
    item_uuid: str
    item_identifier: str
    original_uuid: str
    master_uuid: str
    access_uuid: str
    derivation_key: str
    run_uuid: str
    recipe: dict[str, Any]  # the requested recipe (config.recipe.Recipe dump)
    recipe_hash: str
    master_path: str
    access_path: str
    prior_steps: list[StepRecord] = field(default_factory=list)  # ingestion + digest, for XMP
    # Where the catalog first saw this content (may differ from original_path for a moved or
    # duplicated file); provenance names this path so catalog and XMP agree.
    catalogued_path: str = ""
    review_path: str = ""  # before/after review sheet (PNG); "" for none
    capture_profile: dict[str, Any] | None = None  # config.capture.CaptureProfile dump: the QA gate
    max_pixels: int = 400_000_000
    max_bytes: int = 3_200_000_000  # decoded bytes (tasks.files.limits)
    # The item spreadsheet's row for this scan (ItemMetadata.to_dict()): its title, creator, rights
    # and identifier go into the master's XMP/IPTC, its physical size into the capture check.
    item_metadata: dict[str, Any] | None = None
    # Content credentials (`run --sign`): where the worker finds the signing identity (paths, never
    # key bytes: they do not travel through Ray); None: the master is not signed.
    signing: dict[str, str | None] | None = None
    # IIIF level-0 tiles of the master and the scan: {"root": ARCHIVE/iiif, "base_url": where it is
    # published} (RESTORIUM_IIIF_BASE_URL); None: not made.
    iiif: dict[str, str] | None = None


@dataclass
class ScanOutcome:
    """What a worker reports back for one job. Only the driver records it in the catalog."""

    derivation_key: str
    original_sha256: str
    status: ScanStatus  # mastered or failed (unchanged and skipped are decided on the driver)
    reason: str | None = None
    failure_kind: FailureKind | None = None  # why it failed: decides whether the next run retries
    qa: dict[str, Any] | None = None
    resolved_recipe: dict[str, Any] | None = None
    plan_reasons: list[str] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    master: WrittenFile | None = None
    access: WrittenFile | None = None
    review: WrittenFile | None = None
    iiif: list[WrittenFile] = field(default_factory=list)  # tiles of the master and of the scan
    flags: list[str] = field(default_factory=list)  # reasons a person should review the master
    notes: list[str] = field(default_factory=list)  # what reading the scan changed or noticed (CMYK → RGB…)
    kind: str | None = None  # tasks.records.failures kind of a failure found reading the file
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage; "model" = inference


@dataclass
class AuditRecord:
    """How a master was made. Built from the catalog (catalog.provenance) or from the master's
    embedded XMP alone (tasks.files.xmp.read_provenance); the two must agree field by field."""

    master: dict[str, Any]  # uuid, path, sha256; pixel_sha256 for a master that recorded one
    original: dict[str, Any]  # uuid, path, sha256, item_uuid, identifier
    derivation_key: str
    recipe: dict[str, Any]  # name, hash, resolved (the recipe as applied to this scan), plan_reasons
    run: dict[str, Any]  # uuid
    software: dict[str, Any]  # name, version
    models: list[AgentInfo]  # the models that touched the pixels, in order of first use
    steps: list[StepRecord]  # ingestion and digest first, then every step to the tagged master

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["models"] = [m.to_dict() for m in self.models]
        data["steps"] = [s.to_dict() for s in self.steps]
        return data
