"""What an archive knows about the object a scan shows: identifier, title, date, creator, rights,
its physical size and free Dublin Core fields (one row of the item spreadsheet, `run --metadata`).

Stored on the item in the catalog (JSON), written into masters' XMP/IPTC and into exports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Unit = Literal["mm", "cm", "in"]
MM_PER_UNIT: dict[str, float] = {"mm": 1.0, "cm": 10.0, "in": 25.4}
# The Dublin Core elements (dc.* columns, Archivematica's metadata.csv, XMP dc:).
DC_ELEMENTS = ("title", "creator", "subject", "description", "publisher", "contributor", "date", "type",
               "format", "identifier", "source", "language", "relation", "coverage", "rights")


@dataclass(frozen=True)
class PhysicalSize:
    """The photograph's own size (the print, not the scan), as the cataloguer measured it."""

    width: float
    height: float
    unit: Unit

    def long_edge_mm(self) -> float:
        return max(self.width, self.height) * MM_PER_UNIT[self.unit]

    def to_dict(self) -> dict[str, Any]:
        return {"width": self.width, "height": self.height, "unit": self.unit}


@dataclass(frozen=True)
class ItemMetadata:
    file: str  # the sheet's file cell: a file name, or a path relative to the scans folder
    row: int  # its line in the sheet (the header is line 1), for messages
    identifier: str | None = None
    title: str | None = None
    date: str | None = None
    creator: str | None = None
    rights: str | None = None
    physical: PhysicalSize | None = None
    dc: dict[str, str] = field(default_factory=dict)  # further dc.* columns, key with its prefix: "dc.subject"

    def dublin_core(self) -> list[tuple[str, str]]:
        """Every Dublin Core value, as (dc.element, value): the named ones first, then the sheet's own."""
        named = [(f"dc.{k}", v) for k in ("identifier", "title", "date", "creator", "rights")
                 if (v := getattr(self, k))]
        return named + [(k, v) for k, v in self.dc.items() if v and k not in dict(named)]

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "row": self.row, "identifier": self.identifier, "title": self.title,
                "date": self.date, "creator": self.creator, "rights": self.rights,
                "physical": self.physical.to_dict() if self.physical else None, "dc": dict(self.dc)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemMetadata:
        physical = data.get("physical")
        return cls(
            file=data["file"], row=int(data["row"]), identifier=data.get("identifier"), title=data.get("title"),
            date=data.get("date"), creator=data.get("creator"), rights=data.get("rights"),
            physical=PhysicalSize(float(physical["width"]), float(physical["height"]), physical["unit"])
            if physical else None,
            dc=dict(data.get("dc") or {}),
        )
