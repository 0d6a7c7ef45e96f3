"""Embedded provenance: the original's metadata carried over, plus how this file was made.

An auditor holding only a master (or access copy) can rebuild its AuditRecord from the XMP with
`read_provenance`. What goes into the file:

- xmpMM:DocumentID `xmp.did:<file uuid>`, InstanceID, OriginalDocumentID (the original's own
  OriginalDocumentID, else its DocumentID, else `xmp.did:<original uuid>`, as the XMP spec asks);
- xmpMM:DerivedFrom: stRef:documentID `xmp.did:<original uuid>`, stRef:instanceID, stRef:filePath;
- xmpMM:History: the original's entries first, then one entry per `record.steps` item (see
  `_ACTIONS`), whose stEvt:parameters is canonical JSON {type, step, outcome, detail, agents,
  parameters}, so nothing of the StepRecord is lost;
- Iptc4xmpExt:DigitalSourceType (see `digital_source_type`);
- the restorium namespace (`NS_URI`): the record's ids, recipe and models, and the sampling rate:
  the scan's ppi, the file's, and whether the file's is interpolated (tasks.files.descriptive);
- the item sheet's title, creator, rights, identifier ... as XMP dc, IPTC and EXIF
  (tasks.files.descriptive), replacing what the original said of them;
- the original's EXIF/IPTC/XMP, minus what would lie about the new file.

How it is written: pyexiv2 edits a TIFF by rewriting the whole file (~0.5 s per 250 MB) and a
failed edit leaves its bad value in memory, poisoning every later edit of that image. So all
metadata is first built on a tiny in-memory scratch image of the same format (where a foreign tag
pyexiv2 cannot write is found and dropped without harm), then copied onto the file in one write.
exiv2 keeps a TIFF's own structure tags (size, strips, resolution, ICC, ExtraSamples) when EXIF is
replaced, and a JPEG's ICC profile is untouched. History is written as indexed struct fields
(`Xmp.xmpMM.History[n]/stEvt:action`), declaring the array (`type="Seq"`) only when absent:
re-declaring an existing array fails ("Indexing applied to non-array") and a plain value on the
array fails ("Composite nodes can't have values").
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import pyexiv2
import tifffile
from PIL import Image

from config.recipe import canonical_json
from config.version import SOFTWARE_NAME, software_version
from tasks.files import descriptive
from tasks.files.atomic import sha256_file
from tasks.files.descriptive import SamplingRate
from tasks.records.item_metadata import ItemMetadata
from tasks.records.keys import stable_uuid
from tasks.records.types import (
    APPROVAL,
    DIGEST,
    FIXITY_CHECK,
    INGESTION,
    METADATA_TAGGING,
    QUALITY_ASSESSMENT,
    REJECTION,
    RESTORATION,
    UPSCALING,
    VALIDATION,
    AgentInfo,
    AuditRecord,
    StepRecord,
    utc_now,
)

log = logging.getLogger(__name__)

NS_URI = "https://restorium.org/ns/1.0/"
NS_PREFIX = "restorium"
_NS = f"Xmp.{NS_PREFIX}."
# restorium:pixelSha256: a master's pixel digest (tasks.files.digest), passed to `embed` as an extra.
PIXEL_DIGEST = "pixelSha256"
PIXEL_DIGEST_KEY = _NS + PIXEL_DIGEST

# IPTC digital source types. A Real-ESRGAN upscale synthesises texture the scan does not hold:
# trained-model output composited with a captured image ("compositeWithTrainedAlgorithmicMedia",
# the term IPTC gives for inpainting/outpainting), not a mere correction. Only when no model
# touched the pixels (classical filters alone) is the file "algorithmicallyEnhanced".
DST_WITH_TRAINED_MODEL = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
DST_ALGORITHMIC = "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicallyEnhanced"

# stEvt:action per event type, from the XMP vocabulary (converted, created, edited, filtered,
# managed, resized, saved ...). Events that did not change pixels are "managed" (the archive
# handled the file); "created" is avoided because restorium did not create the photograph.
_ACTIONS: dict[str, str] = {
    INGESTION: "managed",
    DIGEST: "managed",
    VALIDATION: "managed",
    QUALITY_ASSESSMENT: "managed",
    RESTORATION: "filtered",
    UPSCALING: "resized",
    METADATA_TAGGING: "saved",
    FIXITY_CHECK: "managed",
    APPROVAL: "managed",
    REJECTION: "managed",
}
_UNKNOWN_ACTION = "edited"  # an event type we do not know may have changed pixels: say so
_CHANGED = {"filtered": "/", "resized": "/", "edited": "/", "saved": "/metadata"}

_EVENT_KEYS = ("type", "step", "outcome", "detail", "agents", "parameters")
_HISTORY_RE = re.compile(r"^Xmp\.xmpMM\.History\[(\d+)\](?:/(\w+):(\w+))?")

# Record sections stored as named properties: (section, key, property, codec). Any other key,
# or a text key whose value is not a str, goes to restorium:extraFields so nothing is lost.
_FIELDS: tuple[tuple[str, str, str, Literal["text", "json"]], ...] = (
    ("original", "uuid", "originalId", "text"),
    ("original", "path", "originalPath", "text"),
    ("original", "sha256", "originalSha256", "text"),
    ("original", "item_uuid", "itemId", "text"),
    ("original", "identifier", "itemIdentifier", "text"),
    ("recipe", "name", "recipeName", "text"),
    ("recipe", "hash", "recipeHash", "text"),
    ("recipe", "resolved", "recipe", "json"),
    ("recipe", "plan_reasons", "planReasons", "json"),
    ("run", "uuid", "runId", "text"),
    ("software", "name", "softwareName", "text"),
    ("software", "version", "softwareVersion", "text"),
)
_SECTIONS = ("original", "recipe", "run", "software")

# --- what of the original's metadata must not be carried over --------------------------------

# IFD0 holds the image structure (size, strips, compression ...): keep only descriptive tags.
_EXIF_IMAGE_KEEP = frozenset({
    "ImageDescription", "Make", "Model", "Artist", "Copyright", "DocumentName", "PageName",
    "HostComputer", "XPTitle", "XPComment", "XPAuthor", "XPKeywords", "XPSubject", "Rating",
    "RatingPercent", "ImageHistory", "DateTimeOriginal", "SecurityClassification", "ImageNumber",
    "ImageID", "CameraSerialNumber",
})
_EXIF_PHOTO_DROP = frozenset({
    "PixelXDimension", "PixelYDimension", "MakerNote", "InteroperabilityTag",
    "ComponentsConfiguration", "CompressedBitsPerPixel", "ImageUniqueID", "OffsetTime",
    "ExifVersion", "FlashpixVersion",
})
_IPTC_DROP = frozenset({"Iptc.Application2.Program", "Iptc.Application2.ProgramVersion"})
# Whole namespaces: thumbnails, Camera Raw develop settings (a raw converter would re-apply them
# to the master), and a previous restorium generation's fields (ours replace them).
_XMP_DROP_NS = frozenset({"xmpGImg", "crs", NS_PREFIX})
_XMP_KEEP_XMPMM = frozenset({"History", "PreservedFileName"})  # the rest identifies the original
_XMP_DROP = frozenset({
    *(f"Xmp.tiff.{t}" for t in (
        "ImageWidth", "ImageLength", "BitsPerSample", "Compression", "PhotometricInterpretation",
        "Orientation", "SamplesPerPixel", "PlanarConfiguration", "YCbCrSubSampling",
        "YCbCrPositioning", "YCbCrCoefficients", "XResolution", "YResolution", "ResolutionUnit",
        "Software", "DateTime", "NativeDigest", "TransferFunction", "WhitePoint",
        "PrimaryChromaticities", "ReferenceBlackWhite")),
    *(f"Xmp.exif.{t}" for t in (
        "PixelXDimension", "PixelYDimension", "NativeDigest", "ComponentsConfiguration",
        "CompressedBitsPerPixel", "ImageUniqueID")),
    "Xmp.exifEX.ImageUniqueID",
    "Xmp.xmp.CreatorTool", "Xmp.xmp.ModifyDate", "Xmp.xmp.MetadataDate", "Xmp.xmp.Thumbnails",
    "Xmp.photoshop.ICCProfile", "Xmp.photoshop.ColorMode",
    "Xmp.dc.format", "Xmp.iptcExt.DigitalSourceType",
})


class ProvenanceError(ValueError):
    """A file carries no (or unreadable) restorium provenance."""


class EmbedError(RuntimeError):
    """Provenance could not be written into a file."""


@dataclass
class SourceMetadata:
    """The original's metadata as pyexiv2 dicts. Simple XMP arrays are stored as a `type="Bag"`
    (Seq, Alt) declaration plus indexed items, so writing them back keeps their array kind."""

    exif: dict[str, Any] = field(default_factory=dict)
    iptc: dict[str, Any] = field(default_factory=dict)
    xmp: dict[str, Any] = field(default_factory=dict)
    icc: bytes | None = None


@functools.cache
def register_namespace() -> None:
    """Register the restorium XMP namespace with exiv2 (once per process, before any use)."""
    pyexiv2.registerNs(NS_URI, NS_PREFIX)


register_namespace()

# exiv2's XMP toolkit keeps process-wide state and is not safe to call from two threads at once
# (a worker masters several scans on threads: flows.actors, settings.scans_in_flight). Its calls
# take milliseconds; serialising them costs nothing measurable.
_EXIV2 = threading.RLock()
T = TypeVar("T")


def _serialised(fn: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(fn)
    def locked(*args: Any, **kwargs: Any) -> T:
        with _EXIV2:
            return fn(*args, **kwargs)

    return locked


# --- reading the original ---------------------------------------------------------------------


@_serialised
def read_source_metadata(original_path: str | os.PathLike[str]) -> SourceMetadata:
    """The original's EXIF/IPTC/XMP/ICC. The original is only ever read: its bytes go to exiv2 as
    a memory buffer, so no code path can open it for writing. Unreadable metadata is logged and
    left empty (a scan without usable metadata is still mastered)."""
    path = Path(original_path)
    data = path.read_bytes()
    if len(data) >= 2**31:  # pyexiv2.ImageData's limit
        log.warning("%s: %d bytes, too large for pyexiv2 in memory; its metadata is not carried over",
                    path, len(data))
        return SourceMetadata()
    try:
        img = pyexiv2.ImageData(data)
    except Exception as exc:  # noqa: BLE001 - any exiv2 failure means "no metadata"
        log.warning("%s: pyexiv2 cannot parse its metadata (%s); none carried over", path, exc)
        return SourceMetadata()
    meta = SourceMetadata()
    try:
        meta.exif = _read_part(path, "EXIF", img.read_exif)
        meta.iptc = _read_part(path, "IPTC", img.read_iptc)
        meta.xmp = _read_part(path, "XMP", lambda enc: _xmp_with_array_kinds(img.read_xmp_detail(enc)))
        try:
            meta.icc = img.read_icc() or None
        except Exception as exc:  # noqa: BLE001 - exiv2 raises untyped errors: carrying metadata over is best-effort
            log.warning("%s: cannot read its ICC profile (%s)", path, exc)
    finally:
        img.close()
    return meta


def _read_part(path: Path, what: str, read: Any) -> dict[str, Any]:
    try:
        try:
            return read("utf-8")
        except UnicodeDecodeError:  # old files carry Latin-1 text in EXIF/IPTC
            log.info("%s: %s text is not UTF-8; read as Latin-1", path, what)
            return read("latin-1")
    except Exception as exc:  # noqa: BLE001 - exiv2 raises untyped errors: carrying metadata over is best-effort
        log.warning("%s: cannot read its %s (%s); not carried over", path, what, exc)
        return {}


def _xmp_with_array_kinds(detail: dict[str, dict[str, Any]]) -> dict[str, Any]:
    # pyexiv2 returns simple arrays as lists but writes every list back as a Seq; keep Bag/Alt.
    out: dict[str, Any] = {}
    for key, info in detail.items():
        value, kind = info["value"], info.get("typeName", "")
        if isinstance(value, list) and kind in ("XmpBag", "XmpSeq", "XmpAlt"):
            out[key] = f'type="{kind[3:]}"'
            for i, item in enumerate(value, 1):
                out[f"{key}[{i}]"] = item
        else:
            out[key] = value
    return out


# --- what to carry over -----------------------------------------------------------------------


def _carried_exif(exif: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in exif.items():
        parts = key.split(".")
        if len(parts) != 3:
            continue
        group, tag = parts[1], parts[2]
        if tag == "ImageDescription" and _structural_description(value):
            continue  # tifffile's / ImageJ's description of the scan's array shape, not of the picture
        if (group == "Image" and tag in _EXIF_IMAGE_KEEP) or group == "GPSInfo" or (
            group == "Photo" and tag not in _EXIF_PHOTO_DROP
        ):
            out[key] = value
    return out


def _structural_description(value: Any) -> bool:
    text = str(value).lstrip()
    return text.startswith('{"shape":') or text.startswith("ImageJ=")


def _xmp_property(key: str) -> str:
    """'Xmp.xmpMM.History[2]/stEvt:when' -> 'Xmp.xmpMM.History' (the top-level property)."""
    return re.split(r"[\[/]", key, maxsplit=1)[0]


def _carried_xmp(xmp: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in xmp.items():
        prop = _xmp_property(key)
        ns, _, name = prop[4:].partition(".")
        if ns in _XMP_DROP_NS or prop in _XMP_DROP or (ns == "xmpMM" and name not in _XMP_KEEP_XMPMM):
            continue
        out[key] = value
    return out


def _history_indices(xmp: dict[str, Any]) -> set[int]:
    return {int(m.group(1)) for k in xmp if (m := _HISTORY_RE.match(k))}


# --- writing ----------------------------------------------------------------------------------


def digital_source_type(record: AuditRecord) -> str:
    return DST_WITH_TRAINED_MODEL if record.models else DST_ALGORITHMIC


def action_for(step: StepRecord) -> str:
    return _ACTIONS.get(step.type, _UNKNOWN_ACTION)


@_serialised
def embed(
    path: str | os.PathLike[str],
    record: AuditRecord,
    source: SourceMetadata,
    *,
    extra: dict[str, Any] | None = None,
    role: Literal["master", "access"] = "master",
    document_uuid: str | None = None,
    item: ItemMetadata | None = None,
    ppi: float | None = None,
    capture_ppi: float | None = None,
) -> None:
    """Write provenance and the original's carried-over metadata into `path`, in place.

    `path` is a freshly written TIFF or JPEG (normally the temporary file inside `atomic_write`);
    its EXIF/IPTC/XMP are replaced, its pixels and ICC profile kept. `document_uuid` is this
    file's uuid (default: `record.master["uuid"]`; an access copy passes its own). `item` is the
    cataloguer's description of the object; `ppi` the file's resolution tag and `capture_ppi`
    the scan's (recorded only when the scan's is known). `extra` maps further pyexiv2 keys
    ('Xmp.…', 'Exif.…', 'Iptc.…') to values, written last.
    """
    path = Path(path)
    doc_uuid = document_uuid or record.master.get("uuid")
    if not doc_uuid:
        raise EmbedError(f"{path}: no document uuid (record.master has no 'uuid')")
    target = _open_target(path)
    try:
        mime = target.get_mime_type()
        if mime not in _SCRATCH_KINDS:
            raise EmbedError(f"{path}: cannot embed provenance in {mime or 'an unknown format'}")
        now = utc_now()
        extra = dict(extra or {})
        described = _describe(item, ppi, capture_ppi)
        exif = _exif_to_write(path, target, mime, record, source, described, extra, now)
        iptc = _iptc_to_write(path, mime, source, described, extra)
        carried_xmp = _xmp_to_carry(path, mime, source, described)
        own_xmp = functools.partial(_provenance_xmp, record, source, described=described, extra=extra,
                                    role=role, doc_uuid=doc_uuid, mime=mime, now=now)
        scratch = _scratch_with_provenance(path, mime, exif, iptc, carried_xmp, own_xmp)
        _write_from_scratch(path, scratch, target)
    finally:
        target.close()


def _open_target(path: Path) -> pyexiv2.Image:
    _refuse_bigtiff(path)
    try:
        return pyexiv2.Image(str(path))
    except Exception as exc:
        raise EmbedError(f"{path}: pyexiv2 cannot open it: {exc}") from exc


@dataclass(frozen=True)
class _Described:
    """What the item sheet and the sampling rate put into the file (`exif`, `iptc`, `xmp`), and
    which of the original's own EXIF keys and XMP properties they replace."""

    exif: dict[str, str]
    iptc: dict[str, Any]
    xmp: dict[str, Any]
    superseded_exif: set[str]
    superseded_xmp: set[str]


def _describe(item: ItemMetadata | None, ppi: float | None, capture_ppi: float | None) -> _Described:
    # The cataloguer's sheet wins: where it gives title, creator, rights ... the scan's own
    # values (a scanner operator's, a photographer's) are dropped, not merged.
    item_exif = descriptive.item_exif(item) if item else {}
    item_iptc = descriptive.item_iptc(item) if item else {}
    described = {**(descriptive.item_xmp(item) if item else {}),
                 **{_NS + k: v for k, v in descriptive.sampling_properties(ppi, capture_ppi).items()}}
    superseded_exif = {*item_exif, *(descriptive.superseded_exif(item) if item else ())}
    superseded_xmp = descriptive.superseded_xmp(item) if item else set()
    return _Described(item_exif, item_iptc, described, superseded_exif, superseded_xmp)


def _exif_to_write(path: Path, target: pyexiv2.Image, mime: str, record: AuditRecord, source: SourceMetadata,
                   described: _Described, extra: dict[str, Any], now: str) -> dict[str, Any]:
    carried_exif = _valid(path, mime, "exif", {k: v for k, v in _carried_exif(source.exif).items()
                                               if k not in described.superseded_exif}, _single_keys)
    if source.icc is None or target.read_icc() != source.icc:
        carried_exif.pop("Exif.Photo.ColorSpace", None)  # it described the original's profile
    own_exif = _own_exif(record, now, mime=mime, gray=_is_gray_jpeg(path, mime),
                         size=(target.get_pixel_width(), target.get_pixel_height()))
    exif = {**carried_exif, **described.exif, **own_exif, **_with_prefix(extra, "Exif.")}
    exif.setdefault("Exif.Photo.ColorSpace", "65535")  # "uncalibrated": the ICC profile says
    return exif


def _iptc_to_write(path: Path, mime: str, source: SourceMetadata, described: _Described,
                   extra: dict[str, Any]) -> dict[str, Any]:
    carried_iptc = _valid(path, mime, "iptc", {k: v for k, v in source.iptc.items()
                                               if k not in _IPTC_DROP and k not in described.iptc}, _single_keys)
    iptc = _own_iptc({**carried_iptc, **described.iptc})
    iptc.update(_with_prefix(extra, "Iptc."))
    return iptc


def _xmp_to_carry(path: Path, mime: str, source: SourceMetadata, described: _Described) -> dict[str, Any]:
    return _valid(path, mime, "xmp", {k: v for k, v in _carried_xmp(source.xmp).items()
                                      if _xmp_property(k) not in described.superseded_xmp}, _xmp_groups)


def _provenance_xmp(record: AuditRecord, source: SourceMetadata, carried: dict[str, Any], *,
                    described: _Described, extra: dict[str, Any], role: str, doc_uuid: str, mime: str,
                    now: str) -> dict[str, Any]:
    """Our XMP, written beside the `carried` part of the original's."""
    own_xmp = _own_xmp(record, source, carried, role=role, doc_uuid=doc_uuid, mime=mime, now=now)
    own_xmp.update(described.xmp)
    own_xmp.update(_with_prefix(extra, "Xmp."))
    return own_xmp


def _scratch_with_provenance(
    path: Path,
    mime: str,
    exif: dict[str, Any],
    iptc: dict[str, Any],
    carried_xmp: dict[str, Any],
    own_xmp: Callable[[dict[str, Any]], dict[str, Any]],
) -> pyexiv2.ImageData:
    """The scratch image holding all the new metadata; `own_xmp(carried)` is our XMP."""
    xmp = own_xmp(carried_xmp)
    try:
        return _scratch(mime, exif, iptc, {**carried_xmp, **xmp})
    except Exception as exc:  # noqa: BLE001 - exiv2 raises untyped errors: carrying metadata over is best-effort
        # All together may not fit where each part did (a JPEG's XMP is limited to 64 KB):
        # keep our provenance, drop the original's XMP.
        log.warning("%s: the original's XMP cannot be carried over with the provenance (%s); "
                    "writing the provenance alone", path, exc)
        xmp = own_xmp({})
        try:
            return _scratch(mime, exif, iptc, xmp)
        except Exception as exc2:
            raise EmbedError(f"{path}: cannot write its provenance metadata: {exc2}") from exc2


def _write_from_scratch(path: Path, scratch: pyexiv2.ImageData, target: pyexiv2.Image) -> None:
    """Copy the scratch image's metadata onto the file in one write (and close the scratch)."""
    try:
        scratch.copy_to_another_image(target, exif=True, iptc=True, xmp=True,
                                      comment=False, icc=False, thumbnail=False)
    except Exception as exc:
        raise EmbedError(f"{path}: pyexiv2 failed to write metadata: {exc}") from exc
    finally:
        scratch.close()


def _refuse_bigtiff(path: Path) -> None:
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic in (b"II+\x00", b"MM\x00+"):
        raise EmbedError(f"{path}: BigTIFF (over 4 GB); pyexiv2 cannot edit it, so its provenance "
                         "would need an XMP sidecar, which is not implemented")


def _with_prefix(items: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k: v for k, v in items.items() if k.startswith(prefix)}


def software_label(record: AuditRecord) -> str:
    name = record.software.get("name") or SOFTWARE_NAME
    version = record.software.get("version") or software_version()
    return f"{name} {version}"


def _own_exif(record: AuditRecord, now: str, *, mime: str, gray: bool, size: tuple[int, int]) -> dict[str, str]:
    exif = {
        "Exif.Image.Software": software_label(record),
        "Exif.Image.DateTime": now[:19].replace("-", ":").replace("T", " "),
        # Stages work on upright pixels (ingest applies the EXIF orientation): say so, or a
        # viewer would rotate the master a second time.
        "Exif.Image.Orientation": "1",
        # The tags an Exif IFD requires (exiftool -validate), describing this file.
        "Exif.Photo.ExifVersion": "48 50 51 50",  # "0232": OffsetTime is an Exif 2.31 tag
        "Exif.Photo.FlashpixVersion": "48 49 48 48",  # "0100"
        "Exif.Photo.OffsetTime": "+00:00",  # DateTime is UTC
    }
    if mime == "image/jpeg":  # (TIFF states its size in IFD0; these are not allowed there)
        exif["Exif.Photo.PixelXDimension"] = str(size[0])
        exif["Exif.Photo.PixelYDimension"] = str(size[1])
        exif["Exif.Image.YCbCrPositioning"] = "1"  # centred, as libjpeg writes
        if not gray:
            exif["Exif.Photo.ComponentsConfiguration"] = "1 2 3 0"  # Y Cb Cr
    return exif


def _is_gray_jpeg(path: Path, mime: str) -> bool:
    # A JPEG's component count is not in its EXIF: read the frame header (Pillow opens lazily).
    if mime != "image/jpeg":
        return False
    with Image.open(path) as im:
        return im.mode == "L"


def _own_iptc(iptc: dict[str, Any]) -> dict[str, Any]:
    # pyexiv2 writes all text as UTF-8 (whatever the original's charset was): declare UTF-8.
    if not iptc:
        return {}
    return {**iptc, "Iptc.Envelope.CharacterSet": "\x1b%G"}


def _own_xmp(
    record: AuditRecord,
    source: SourceMetadata,
    carried: dict[str, Any],
    *,
    role: str,
    doc_uuid: str,
    mime: str,
    now: str,
) -> dict[str, Any]:
    orig = record.original
    src = source.xmp
    orig_uuid = orig.get("uuid", "")
    instance = stable_uuid("xmp-instance", doc_uuid, *(s.event_uuid for s in record.steps))
    x: dict[str, Any] = {
        "Xmp.xmpMM.DocumentID": f"xmp.did:{doc_uuid}",
        "Xmp.xmpMM.InstanceID": f"xmp.iid:{instance}",
        "Xmp.xmpMM.OriginalDocumentID": (src.get("Xmp.xmpMM.OriginalDocumentID")
                                         or src.get("Xmp.xmpMM.DocumentID")
                                         or f"xmp.did:{orig_uuid}"),
        "Xmp.xmpMM.DerivedFrom/stRef:documentID": f"xmp.did:{orig_uuid}",
        "Xmp.xmpMM.DerivedFrom/stRef:instanceID": src.get("Xmp.xmpMM.InstanceID") or f"xmp.iid:{orig_uuid}",
    }
    if isinstance(orig.get("path"), str):
        x["Xmp.xmpMM.DerivedFrom/stRef:filePath"] = orig["path"]
    indices = _history_indices(carried)
    if "Xmp.xmpMM.History" not in carried:
        x["Xmp.xmpMM.History"] = 'type="Seq"'
    first = max(indices, default=0) + 1
    for n, step in enumerate(record.steps, first):
        item = f"Xmp.xmpMM.History[{n}]/stEvt:"
        action = action_for(step)
        x[item + "action"] = action
        x[item + "when"] = step.when
        x[item + "instanceID"] = f"xmp.iid:{step.event_uuid}"
        if step.agents:
            x[item + "softwareAgent"] = "; ".join(a.label() for a in step.agents)
        if action in _CHANGED:
            x[item + "changed"] = _CHANGED[action]
        x[item + "parameters"] = _event_json(step)
    x["Xmp.xmp.CreatorTool"] = software_label(record)
    if "Xmp.xmp.CreateDate" not in carried:
        x["Xmp.xmp.CreateDate"] = now
    x["Xmp.xmp.ModifyDate"] = now
    x["Xmp.xmp.MetadataDate"] = now
    x["Xmp.dc.format"] = mime
    x["Xmp.iptcExt.DigitalSourceType"] = digital_source_type(record)
    x.update(_namespace(record, role=role, history_start=first))
    return x


def _event_json(step: StepRecord) -> str:
    return canonical_json({
        "type": step.type, "step": step.step, "outcome": step.outcome, "detail": step.detail,
        "agents": [a.to_dict() for a in step.agents], "parameters": step.parameters,
    })


def _namespace(record: AuditRecord, *, role: str, history_start: int) -> dict[str, str]:
    ns: dict[str, str] = {_NS + "documentRole": role}
    if role != "master":
        ns[_NS + "masterId"] = str(record.master.get("uuid", ""))
    extras: dict[str, dict[str, Any]] = {}
    named = {(s, k) for s, k, _, _ in _FIELDS}
    for section, key, prop, codec in _FIELDS:
        values = getattr(record, section)
        if key not in values:
            continue
        value = values[key]
        if codec == "json":
            ns[_NS + prop] = canonical_json(value)
        elif isinstance(value, str):
            ns[_NS + prop] = value
        else:
            extras.setdefault(section, {})[key] = value
    for section in _SECTIONS:
        for key, value in getattr(record, section).items():
            if (section, key) not in named:
                extras.setdefault(section, {})[key] = value
    ns[_NS + "derivationKey"] = record.derivation_key
    ns[_NS + "models"] = canonical_json([m.to_dict() for m in record.models])
    ns[_NS + "historyStart"] = str(history_start)
    if extras:
        ns[_NS + "extraFields"] = canonical_json(extras)
    return ns


# --- the scratch image: validate, then copy in one write -------------------------------------


@functools.cache
def _scratch_bytes(mime: str) -> bytes:
    buf = io.BytesIO()
    if mime == "image/tiff":
        tifffile.imwrite(buf, np.zeros((1, 1), np.uint8), metadata=None, software=False)
    else:
        Image.new("L", (1, 1)).save(buf, _SCRATCH_KINDS[mime])
    return buf.getvalue()


_SCRATCH_KINDS = {"image/tiff": "TIFF", "image/jpeg": "JPEG", "image/png": "PNG"}


def _scratch(mime: str, exif: dict[str, Any], iptc: dict[str, Any], xmp: dict[str, Any]) -> pyexiv2.ImageData:
    """A tiny image of the target's format holding exactly this metadata (raises if exiv2 can't)."""
    img = pyexiv2.ImageData(_scratch_bytes(mime))
    try:
        if exif:
            img.modify_exif(exif)
        if iptc:
            img.modify_iptc(iptc)
        if xmp:
            img.modify_xmp(xmp)
    except BaseException:
        img.close()
        raise
    return img


def _single_keys(items: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v} for k, v in items.items()]


def _xmp_groups(items: dict[str, Any]) -> list[dict[str, Any]]:
    # A struct or array must be written with its declaration: group by top-level property.
    groups: dict[str, dict[str, Any]] = {}
    for key, value in items.items():
        groups.setdefault(_xmp_property(key), {})[key] = value
    return list(groups.values())


def _valid(path: Path, mime: str, kind: str, carried: dict[str, Any], split: Any) -> dict[str, Any]:
    """The part of the original's metadata that exiv2 can write; the rest is logged and dropped."""
    if not carried:
        return {}
    probe: dict[str, dict[str, Any]] = {"exif": {}, "iptc": {}, "xmp": {}}
    try:
        _scratch(mime, **{**probe, kind: carried}).close()
        return carried
    except Exception:  # noqa: BLE001 - find the culprits one group at a time
        pass
    good: dict[str, Any] = {}
    for group in split(carried):
        try:
            _scratch(mime, **{**probe, kind: group}).close()
            good.update(group)
        except Exception as exc:  # noqa: BLE001 - exiv2 raises untyped errors: carrying metadata over is best-effort
            log.warning("%s: the original's %s %s cannot be carried over (%s)",
                        path, kind.upper(), ", ".join(list(group)[:3]), str(exc).strip())
    return good


# --- reading provenance back ------------------------------------------------------------------


@_serialised
def read_provenance(master_path: str | os.PathLike[str]) -> AuditRecord:
    """Rebuild the AuditRecord from a file alone (no catalog).

    `master` comes from the file itself: uuid from xmpMM:DocumentID, the absolute path read and
    the sha256 of its bytes, plus the pixel digest recorded when it was written (masters). Steps are our xmpMM:History entries (foreign ones, e.g. the
    original's scanner history, are skipped).
    """
    path = Path(os.path.abspath(master_path))
    xmp = _read_xmp(path)
    ns = {k[len(_NS):]: v for k, v in xmp.items() if k.startswith(_NS)}
    if not ns:
        raise ProvenanceError(f"{path}: no restorium provenance (no {NS_URI} properties in its XMP)")
    doc_id = xmp.get("Xmp.xmpMM.DocumentID", "")
    if not isinstance(doc_id, str) or not doc_id.startswith("xmp.did:"):
        raise ProvenanceError(f"{path}: restorium provenance without an xmp.did: DocumentID")

    def prop(name: str, *, json_value: bool = False) -> Any:
        if name not in ns:
            raise ProvenanceError(f"{path}: restorium provenance lacks {NS_PREFIX}:{name}")
        if not json_value:
            return ns[name]
        try:
            return json.loads(ns[name])
        except json.JSONDecodeError as exc:
            raise ProvenanceError(f"{path}: {NS_PREFIX}:{name} is not valid JSON: {exc}") from exc

    sections: dict[str, dict[str, Any]] = {s: {} for s in _SECTIONS}
    for section, key, name, codec in _FIELDS:
        if name in ns:
            sections[section][key] = prop(name, json_value=codec == "json")
    if "extraFields" in ns:
        for section, values in prop("extraFields", json_value=True).items():
            sections.setdefault(section, {}).update(values)
    try:
        start = int(ns.get("historyStart", "1"))
    except ValueError as exc:
        raise ProvenanceError(f"{path}: {NS_PREFIX}:historyStart is not a number") from exc
    master = {"uuid": doc_id[len("xmp.did:"):], "path": str(path), "sha256": sha256_file(path)}
    if ns.get(PIXEL_DIGEST):
        master["pixel_sha256"] = ns[PIXEL_DIGEST]
    return AuditRecord(
        master=master,
        original=sections["original"],
        derivation_key=prop("derivationKey"),
        recipe=sections["recipe"],
        run=sections["run"],
        software=sections["software"],
        models=[AgentInfo.from_dict(m) for m in prop("models", json_value=True)],
        steps=_steps_from_history(path, xmp, start),
    )


def _read_xmp(path: Path) -> dict[str, Any]:
    """A file's XMP, or a ProvenanceError saying why it cannot be read."""
    try:
        img = pyexiv2.Image(str(path))
    except Exception as exc:  # pyexiv2 raises a bare RuntimeError (and more) for an unreadable file
        raise ProvenanceError(f"{path}: cannot read its metadata: {exc}") from exc
    try:
        return img.read_xmp()
    except Exception as exc:  # the same for malformed XMP
        raise ProvenanceError(f"{path}: cannot read its XMP: {exc}") from exc
    finally:
        img.close()


@_serialised
def read_sampling_rate(path: str | os.PathLike[str]) -> SamplingRate:
    """What a file's XMP says of its sampling rate: the scan's ppi, the file's, and whether the
    file's is interpolated (all None/False for a file written without the scan's ppi)."""
    path = Path(os.path.abspath(path))
    xmp = _read_xmp(path)
    try:
        return SamplingRate.from_properties({k[len(_NS):]: v for k, v in xmp.items() if k.startswith(_NS)})
    except ValueError as exc:
        raise ProvenanceError(f"{path}: its {NS_PREFIX} sampling rate is not a number: {exc}") from exc


def _steps_from_history(path: Path, xmp: dict[str, Any], start: int) -> list[StepRecord]:
    entries: dict[int, dict[str, str]] = {}
    for key, value in xmp.items():
        m = _HISTORY_RE.match(key)
        if m and m.group(3) and m.group(2) == "stEvt" and isinstance(value, str):
            entries.setdefault(int(m.group(1)), {})[m.group(3)] = value
    steps = []
    for n in sorted(i for i in entries if i >= start):
        entry = entries[n]
        try:
            data = json.loads(entry.get("parameters", ""))
        except json.JSONDecodeError:
            continue  # a foreign entry (e.g. an editor's "saved" after ours)
        iid = entry.get("instanceID", "")
        if not (isinstance(data, dict) and set(_EVENT_KEYS) <= data.keys() and iid.startswith("xmp.iid:")):
            continue
        try:
            steps.append(StepRecord.from_dict({**data, "event_uuid": iid[len("xmp.iid:"):],
                                               "when": entry.get("when", "")}))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProvenanceError(f"{path}: history entry {n} is malformed: {exc}") from exc
    return steps
