"""An item's whole preservation record: every file, every event (with the files it read and
wrote and its agents) and every agent. Built by the catalog (catalog.items), turned into PREMIS
by tasks.preservation.premis and into JSON by `to_dict`; plain data, no database here."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FileFacts:
    uuid: str
    role: str  # original | master | access | review
    path: str
    sha256: str
    size: int
    format: str | None
    width: int | None
    height: int | None
    channels: int | None
    bit_depth: int | None
    has_icc: bool | None
    ppi: float | None
    created_at: str  # ISO 8601 UTC: when the catalog recorded the file
    pixel_sha256: str | None = None  # masters
    # Derived files: the original they were made from and how.
    source_uuid: str | None = None
    derivation_key: str | None = None
    recipe_name: str | None = None
    recipe_hash: str | None = None
    run_uuid: str | None = None
    derivation_events: list[str] = field(default_factory=list)  # event uuids that made it, in order


@dataclass
class EventFacts:
    uuid: str
    type: str
    step: str
    when: str  # ISO 8601 UTC
    outcome: str  # success | warning | failure
    detail: str
    parameters: dict[str, Any]
    agents: list[str]  # agent uuids, in the order the step named them
    files: list[tuple[str, str]]  # (file uuid, "input" | "output")
    run_uuid: str | None = None


@dataclass
class AgentFacts:
    uuid: str  # stable uuid of the catalog's agent key
    kind: str  # software | model | host | person
    name: str
    version: str = ""
    architecture: str = ""
    weights_sha256: str = ""
    details: dict[str, str] = field(default_factory=dict)


@dataclass
class ItemRecord:
    uuid: str
    identifier: str
    title: str | None
    created_at: str
    files: list[FileFacts]
    events: list[EventFacts]  # in time order
    agents: list[AgentFacts]
    # The cataloguer's description (tasks.records.item_metadata.ItemMetadata.to_dict()): from the
    # item spreadsheet of `run --metadata`; None when no sheet named the item.
    metadata: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for event in data["events"]:
            event["files"] = [{"uuid": u, "role": r} for u, r in event["files"]]
        return data

    def file(self, uuid: str) -> FileFacts:
        return next(f for f in self.files if f.uuid == uuid)

    def by_role(self, role: str) -> list[FileFacts]:
        return [f for f in self.files if f.role == role]

    def current_master(self) -> FileFacts | None:
        """The newest master: later masters supersede earlier ones (nothing is ever deleted);
        ties in catalog order. What every export hands over as the service copy."""
        masters = self.by_role("master")
        return max(enumerate(masters), key=lambda im: (_when(im[1]), im[0]))[1] if masters else None

    def scan_of(self, master: FileFacts | None) -> FileFacts | None:
        """The scan a master was made from; without a master, the item's first scan."""
        originals = self.by_role("original")
        if master is None:
            return originals[0] if originals else None
        return next((f for f in originals if f.uuid == master.source_uuid), None)

    def access_of(self, master: FileFacts) -> FileFacts | None:
        """The newest access copy made with a master (same derivation)."""
        copies = [f for f in self.by_role("access") if f.derivation_key == master.derivation_key]
        return max(copies, key=_when) if copies else None


def _when(f: FileFacts) -> dt.datetime:
    # Parsed, not compared as text: "…:26Z" sorts after "…:26.5Z".
    try:
        when = dt.datetime.fromisoformat(f.created_at)
    except ValueError:
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
