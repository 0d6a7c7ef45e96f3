"""Descriptive metadata for masters and access copies: the item sheet's Dublin Core as XMP, IPTC IIM
and EXIF, and the sampling rate told truthfully. Plain dicts of pyexiv2 keys; `tasks.files.xmp`
writes them.

The sheet is the cataloguer's description of the object, so every element it gives replaces what
the scan's own metadata said about it (a scanner operator's title, artist or copyright).

Where each value goes (the IPTC Photo Metadata Standard and the MWG guidelines map these onto each
other): title -> dc:title, IIM 2:05 ObjectName; creator -> dc:creator, IIM 2:80 By-line, EXIF
Artist; rights -> dc:rights, IIM 2:116 CopyrightNotice, EXIF Copyright; description ->
dc:description, IIM 2:120 Caption-Abstract, EXIF ImageDescription; subject -> dc:subject, IIM 2:25
Keywords; every other element -> dc:<element> in the array kind XMP gives it.

The identifier goes to dc:identifier and to the IPTC Extension's "Artwork or Object in the Image"
(Iptc4xmpExt:ArtworkOrObject, Source Inventory Number, with the object's title, creator and
copyright notice): that is the IPTC field for "the inventory number issued by the organisation
holding the object", which a scan of an archive's photograph is a reproduction of. IPTC Core has
no identifier, and IIM's only candidate, 2:103 OriginalTransmissionReference, is a job id of one
transmission, not the object's identifier, so IIM does not carry it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tasks.records.item_metadata import ItemMetadata

_DEFAULT_LANG = 'lang="x-default"'
# XMP's kind for each dc element (XMP Specification part 2, 8.4). dc:format is absent: XMP defines
# it as this file's MIME type, so the sheet's dc.format (the physical object's) stays in the catalog.
_DC_KIND = {
    "title": "alt", "description": "alt", "rights": "alt",
    "creator": "seq", "date": "seq",
    "contributor": "bag", "language": "bag", "publisher": "bag", "relation": "bag", "subject": "bag",
    "type": "bag",
    "coverage": "text", "identifier": "text", "source": "text",
}
# IIM datasets and their maximum length in bytes (IIM 4.2); longer values are cut there, the
# whole value is in the XMP (which MWG readers prefer).
_IIM = {"title": ("Iptc.Application2.ObjectName", 64), "creator": ("Iptc.Application2.Byline", 32),
        "rights": ("Iptc.Application2.Copyright", 128), "description": ("Iptc.Application2.Caption", 2000),
        "subject": ("Iptc.Application2.Keywords", 64)}
_IIM_REPEATABLE = {"Iptc.Application2.Byline", "Iptc.Application2.Keywords"}
_EXIF = {"creator": "Exif.Image.Artist", "rights": "Exif.Image.Copyright",
         "description": "Exif.Image.ImageDescription"}
# The scan's EXIF tags that would contradict the sheet's element (Windows' own copies).
_EXIF_SUPERSEDED = {"title": ("Exif.Image.XPTitle",), "creator": ("Exif.Image.XPAuthor",),
                    "subject": ("Exif.Image.XPKeywords",), "description": ("Exif.Image.XPSubject",)}
_AO = "Xmp.iptcExt.ArtworkOrObject"
_AO_ITEM = _AO + "[1]/iptcExt:"  # exiv2 names struct fields with its own prefix, not Iptc4xmpExt

# restorium namespace properties (bare names; tasks.files.xmp adds the prefix).
CAPTURE_PPI = "capturePPI"  # the scan's sampling rate, as captured
MASTER_PPI = "masterPPI"  # the master's resolution tag
PPI_INTERPOLATED = "ppiInterpolated"  # "True" when the master's ppi is not a captured one


def elements(item: ItemMetadata) -> dict[str, str]:
    """The sheet's Dublin Core values the files can carry, by bare element name."""
    return {key[3:]: value for key, value in item.dublin_core() if key[3:] in _DC_KIND}


def item_xmp(item: ItemMetadata) -> dict[str, Any]:
    """pyexiv2 XMP keys for the sheet's values."""
    dc = elements(item)
    x: dict[str, Any] = {}
    for name, value in dc.items():
        key, kind = f"Xmp.dc.{name}", _DC_KIND[name]
        if kind == "alt":
            x[key] = {_DEFAULT_LANG: value}
        elif kind == "seq":
            x[key] = [value]  # pyexiv2 writes a list as a Seq
        elif kind == "bag":
            x[key] = 'type="Bag"'
            x[f"{key}[1]"] = value
        else:
            x[key] = value
    if "identifier" in dc:
        x[_AO] = 'type="Bag"'
        x[_AO_ITEM + "AOSourceInvNo"] = dc["identifier"]
        if "title" in dc:
            x[_AO_ITEM + "AOTitle"] = {_DEFAULT_LANG: dc["title"]}
        if "creator" in dc:
            x[_AO_ITEM + "AOCreator"] = [dc["creator"]]
        if "rights" in dc:
            x[_AO_ITEM + "AOCopyrightNotice"] = dc["rights"]
    return x


def superseded_xmp(item: ItemMetadata) -> set[str]:
    """Top-level XMP properties of the scan that the sheet's values replace (dropped whole, so a
    scanner's title in another language does not survive beside the cataloguer's)."""
    props = {f"Xmp.dc.{name}" for name in elements(item)}
    if "identifier" in elements(item):
        props.add(_AO)
    return props


def item_iptc(item: ItemMetadata) -> dict[str, Any]:
    dc = elements(item)
    iptc: dict[str, Any] = {}
    for name, (key, limit) in _IIM.items():
        if name in dc:
            value = _cut(dc[name], limit)
            iptc[key] = [value] if key in _IIM_REPEATABLE else value
    return iptc


def item_exif(item: ItemMetadata) -> dict[str, str]:
    dc = elements(item)
    return {key: dc[name] for name, key in _EXIF.items() if name in dc}


def superseded_exif(item: ItemMetadata) -> set[str]:
    dc = elements(item)
    return {key for name, keys in _EXIF_SUPERSEDED.items() if name in dc for key in keys}


def _cut(text: str, limit: int) -> str:
    # at a character boundary: a cut UTF-8 sequence is dropped whole
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


# --- the sampling rate --------------------------------------------------------------------------


def ppi_text(ppi: float) -> str:
    """600.0 -> '600', 299.9999 -> '299.9999': an XMP Real without float noise."""
    return f"{ppi:.4f}".rstrip("0").rstrip(".")


def interpolated(ppi: float | None, capture_ppi: float | None) -> bool:
    """Whether a file's ppi claims a sampling rate the scan was not captured at."""
    return ppi is not None and capture_ppi is not None and not math.isclose(ppi, capture_ppi, rel_tol=1e-6)


def sampling_properties(ppi: float | None, capture_ppi: float | None) -> dict[str, str]:
    """restorium properties for the sampling rate: the scan's ppi, this file's ppi, and the marker
    that the latter is interpolated (only when it differs). Nothing when the scan's is unknown."""
    if capture_ppi is None:
        return {}
    props = {CAPTURE_PPI: ppi_text(capture_ppi)}
    if ppi is not None:
        props[MASTER_PPI] = ppi_text(ppi)
    if interpolated(ppi, capture_ppi):
        props[PPI_INTERPOLATED] = "True"  # an XMP Boolean
    return props


@dataclass(frozen=True)
class SamplingRate:
    """What a file's XMP says of its sampling rate (`tasks.files.xmp.read_sampling_rate`)."""

    capture_ppi: float | None
    master_ppi: float | None
    interpolated: bool

    @classmethod
    def from_properties(cls, props: dict[str, Any]) -> SamplingRate:
        def number(name: str) -> float | None:
            value = props.get(name)
            return float(value) if isinstance(value, str) and value else None

        return cls(number(CAPTURE_PPI), number(MASTER_PPI), props.get(PPI_INTERPOLATED) == "True")
