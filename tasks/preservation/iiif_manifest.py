"""IIIF Presentation 3.0 for a static site: a Manifest per item, a Collection per run.

Built with iiif-prezi3 (the IIIF community's model of the Presentation 3.0 schema) and read back
with it: `parse_back` loads the JSON into its pydantic classes and fails on anything they reject
or do not know; `manifest_problems` then checks every canvas and image service.

An item's manifest has one canvas per image, the scan first:

    Scan (preserved original)                   the unaltered scan: the preservation object
    Master (restored derivative of the scan)    restorium's newest master, made from that scan

Each canvas is painted by one Image whose `service` is the file's IIIF Image API 3 level-0
service (static tiles) and whose `id` is a full-region image that service lists in `sizes` (a
level-0 service need not answer any other size). The images themselves, their URLs and sizes come
in as `ImageRef`s: this module writes no file and reads only a site it is asked to check.

Layout below the base URL (the export writes the same paths under its folder):

    manifests/<item uuid>.json        manifest_path()
    collections/run-<run uuid>.json   collection_path()
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iiif_prezi3 import (
    Annotation,
    AnnotationBody,
    AnnotationPage,
    Canvas,
    Collection,
    KeyValueString,
    Manifest,
    ManifestRef,
    ServiceV3,
)
from pydantic import AnyUrl, ValidationError

from tasks.records.item_record import FileFacts, ItemRecord

SCAN_LABEL = "Scan (preserved original)"
MASTER_LABEL = "Master (restored derivative of the scan)"
IMAGE_SERVICE = "ImageService3"
LEVEL0 = "level0"
_EXT = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/tiff": "tif"}
# What the IIIF presentation validator accepts as `rights` (its schema, iiif_3_0.json): only these
# two vocabularies, and Creative Commons with http (IIIF api#1874: the canonical URIs are http).
RIGHTS_URI = re.compile(r"http://creativecommons\.org/(licenses|publicdomain)/\S+/|http://rightsstatements\.org/vocab/\S+/")


class IiifError(ValueError):
    """The manifest cannot be made (no scan, no image for a file, a bad base URL) or does not validate."""


@dataclass(frozen=True)
class ImageRef:
    """A file's level-0 image service as its info.json describes it."""

    service_id: str  # the service's id: base URL + path of the folder holding info.json
    width: int
    height: int
    sizes: tuple[tuple[int, int], ...] = ()  # full-region sizes the service lists (static images exist)
    format: str = "image/jpeg"

    @classmethod
    def from_info_json(cls, info: Mapping[str, Any]) -> ImageRef:
        return cls(str(info["id"]), int(info["width"]), int(info["height"]), available_sizes(info))

    def image_url(self, size: tuple[int, int]) -> str:
        return f"{self.service_id.rstrip('/')}/full/{size[0]},{size[1]}/0/default.{_EXT.get(self.format, 'jpg')}"

    def full_size(self) -> tuple[int, int]:
        """The full image if the service lists it, otherwise the largest size it lists."""
        if not self.sizes:
            raise IiifError(f"image service {self.service_id} lists no sizes: a level-0 service has no "
                            "full image to point a canvas at")
        if (self.width, self.height) in self.sizes:
            return self.width, self.height
        return max(self.sizes, key=lambda s: s[0] * s[1])

    def thumbnail_size(self, edge: int = 256) -> tuple[int, int]:
        """The smallest listed size whose long side reaches `edge` (else the largest)."""
        big = [s for s in self.sizes if max(s) >= edge]
        return min(big, key=lambda s: s[0] * s[1]) if big else self.full_size()


def available_sizes(info: Mapping[str, Any]) -> tuple[tuple[int, int], ...]:
    """The full-region sizes a level-0 service must deliver (Image API 3.0, compliance): those in
    `sizes`, and those its `tiles` imply where one tile holds the whole image (libvips writes
    these as full/w,h/0/default.jpg and lists none of them in `sizes`)."""
    width, height = int(info["width"]), int(info["height"])
    found = {(int(s["width"]), int(s["height"])) for s in info.get("sizes") or ()}
    for tile in info.get("tiles") or ():
        tw = int(tile["width"])
        th = int(tile.get("height") or tw)
        found |= {(-(-width // f), -(-height // f)) for f in map(int, tile.get("scaleFactors") or ())
                  if width <= tw * f and height <= th * f}
    return tuple(sorted(found))


@dataclass
class RightsInfo:
    uri: str | None  # a Creative Commons or RightsStatements.org URI, or None when the text is no known licence
    text: str | None  # the cataloguer's words, as written


# --- rights: the sheet's free text to a URI ------------------------------------------------------

_RS = {  # RightsStatements.org: code -> title (http://rightsstatements.org/vocab/<code>/1.0/)
    "InC": "in copyright", "InC-OW-EU": "in copyright eu orphan work",
    "InC-EDU": "in copyright educational use permitted",
    "InC-NC": "in copyright non commercial use permitted",
    "InC-RUU": "in copyright rights holder s unlocatable or unidentifiable",
    "NoC-CR": "no copyright contractual restrictions", "NoC-NC": "no copyright non commercial use only",
    "NoC-OKLR": "no copyright other known legal restrictions", "NoC-US": "no copyright united states",
    "CNE": "copyright not evaluated", "UND": "copyright undetermined", "NKC": "no known copyright",
}
_RS_BY_NAME = {name: code for code, name in _RS.items()} | {code.lower().replace("-", " "): code for code in _RS}
_CC_WORDS = {"attribution": "by", "noncommercial": "nc", "non commercial": "nc", "noderivatives": "nd",
             "noderivs": "nd", "no derivatives": "nd", "sharealike": "sa", "share alike": "sa"}
_CC_VERSIONS = ("2.0", "2.5", "3.0", "4.0")  # 1.0 spells its URIs differently (by-nd-nc); none seen in practice
_CC0 = "http://creativecommons.org/publicdomain/zero/1.0/"
_PDM = "http://creativecommons.org/publicdomain/mark/1.0/"


def rights_uri(text: str | None) -> str | None:
    """The IIIF `rights` URI for a licence name or URI as a cataloguer writes it ("CC BY 4.0",
    "CC0", "Public domain", "In Copyright", "https://creativecommons.org/licenses/by/4.0/deed.de"),
    or None when the text names no licence we know for certain (a licence without its version is
    not guessed: the version changes the terms)."""
    if not text or not text.strip():
        return None
    uri = _from_uri(text.strip())
    if uri is not None:
        return uri
    words = re.sub(r"[\s_\-–—/,()]+", " ", text.lower()).strip(" .")
    words = " ".join(re.sub(r"\b(licen[cs]e|deed|statement)\b", "", words).split())
    if words in ("cc0", "cc0 1.0", "cc0 1.0 universal", "cc zero", "creative commons zero",
                 "public domain dedication cc0", "cc0 public domain dedication"):
        return _CC0
    if words in ("public domain", "public domain mark", "public domain mark 1.0", "pdm", "pdm 1.0"):
        return _PDM
    if words.removesuffix(" 1.0") in _RS_BY_NAME:
        return f"http://rightsstatements.org/vocab/{_RS_BY_NAME[words.removesuffix(' 1.0')]}/1.0/"
    return _cc_licence(words)


def _from_uri(text: str) -> str | None:
    m = re.fullmatch(r"https?://(?:www\.)?creativecommons\.org/(licenses/by(?:-nc)?(?:-nd|-sa)?/(?:2\.0|2\.5|3\.0|4\.0)"
                     r"|publicdomain/(?:zero|mark)/1\.0)(?:/(?:deed\.[A-Za-z_-]+|legalcode(?:\.[A-Za-z_-]+)?)?)?/?", text)
    if m:
        return f"http://creativecommons.org/{m[1]}/"
    m = re.fullmatch(r"https?://rightsstatements\.org/(?:vocab|page)/([A-Za-z-]+)/1\.0/?(?:\?.*)?", text)
    if m and m[1] in _RS:
        return f"http://rightsstatements.org/vocab/{m[1]}/1.0/"
    return None


def _cc_licence(words: str) -> str | None:
    m = re.fullmatch(r"(?:cc|creative commons) (.+?) (\d\.\d)(?: international| unported| generic)?", words)
    if not m or m[2] not in _CC_VERSIONS:
        return None
    body = m[1]
    for long, short in _CC_WORDS.items():
        body = re.sub(rf"\b{long}\b", short, body)
    parts = body.split()
    if not parts or parts[0] != "by" or len(set(parts)) != len(parts) or not set(parts) <= {"by", "nc", "nd", "sa"} \
            or {"nd", "sa"} <= set(parts):
        return None
    code = "-".join(p for p in ("by", "nc", "nd", "sa") if p in parts)
    return f"http://creativecommons.org/licenses/{code}/{m[2]}/"


# --- building ------------------------------------------------------------------------------------

def manifest_path(record: ItemRecord) -> str:
    return f"manifests/{record.uuid}.json"  # the uuid: stable, unique and URL-safe (identifiers are not)


def collection_path(run_uuid: str) -> str:
    return f"collections/run-{run_uuid}.json"


def base(url: str) -> str:
    """The base URL as the model writes URLs (host lower-cased ...), without a trailing slash."""
    try:
        if re.match(r"https?://[^/\s]+", url) and not any(c.isspace() for c in url):
            return str(AnyUrl(url)).rstrip("/")
    except ValidationError:
        pass
    raise IiifError(f"base URL {url!r}: expected http(s)://host[/path] (IIIF ids are http URIs)")


def scan_and_master(record: ItemRecord) -> tuple[FileFacts, FileFacts | None]:
    """The newest master (later masters supersede earlier ones, as in the OCFL and Archivematica
    exports) and the scan it was made from; the first scan when there is no master yet."""
    master = record.current_master()
    scan = record.scan_of(master)
    if scan is None:
        raise IiifError(f"item {record.uuid} ({record.identifier}): the catalog has no scan"
                        + (f" for master {master.uuid}" if master else ""))
    return scan, master


def item_manifest(record: ItemRecord, images: Mapping[str, ImageRef], *, base_url: str,
                  audit_url: str | None = None) -> dict[str, Any]:
    """The item's IIIF Presentation 3.0 manifest (JSON-LD, as a dict). `images`: an ImageRef per
    file uuid, for the scan and (when there is one) the newest master."""
    root = base(base_url)
    scan, master = scan_and_master(record)
    shown = [(scan, SCAN_LABEL, "scan")] + ([(master, MASTER_LABEL, "master")] if master else [])
    for f, _, _ in shown:
        if f.uuid not in images:
            raise IiifError(f"item {record.uuid}: no image service for its {f.role} {f.uuid}")
    manifest_id = f"{root}/{manifest_path(record)}"
    item_base = manifest_id.removesuffix(".json")
    meta = record.metadata or {}
    title = meta.get("title") or record.title or record.identifier
    rights = RightsInfo(rights_uri(meta.get("rights")), meta.get("rights"))
    ref = images[master.uuid] if master else images[scan.uuid]
    manifest = Manifest(
        id=manifest_id, label=_none(title), summary=_en(
            "The scan as preserved and restorium's master: a restored, upscaled derivative of the scan, "
            "not a replacement. The scan is the preservation object." if master else
            "The scan as preserved; restorium has not made a master of it yet."),
        metadata=_item_metadata(record, meta), items=[_canvas(f, label, images[f.uuid], f"{item_base}/canvas/{slug}")
                                                      for f, label, slug in shown],
        thumbnail=[_image(ref, ref.thumbnail_size())],
    )
    if rights.uri:
        manifest.rights = rights.uri
    elif rights.text:
        # No known licence in the cataloguer's words: IIIF's `rights` must be a Creative Commons or
        # RightsStatements.org URI, so the words go where a viewer must show them, and `rights` stays out.
        manifest.requiredStatement = KeyValueString(label=_en("Rights"), value=_none(rights.text))
    if audit_url:
        manifest.seeAlso = [{"id": audit_url, "type": "Dataset", "format": "application/json",
                             "label": _en("Audit record: how the master was made from the scan "
                                          "(inputs, steps, models, software, checksums)")}]
    return json.loads(manifest.jsonld())


def run_collection(run_uuid: str, manifests: Sequence[tuple[str, str]], *, base_url: str,
                   label: str | None = None) -> dict[str, Any]:
    """A Collection listing the manifests (id, label) of a run's items, in the given order."""
    collection = Collection(
        id=f"{base(base_url)}/{collection_path(run_uuid)}", label=_en(label or f"restorium run {run_uuid}"),
        summary=_en("Items restored in one restorium run: each manifest shows the scan and its master."),
        items=[ManifestRef(id=mid, type="Manifest", label=_none(mlabel)) for mid, mlabel in manifests],
    )
    return json.loads(collection.jsonld())


def _canvas(f: FileFacts, label: str, ref: ImageRef, canvas_id: str) -> Canvas:
    annotation = Annotation(id=f"{canvas_id}/page/1/image", motivation="painting",
                            body=_image(ref, ref.full_size()), target=canvas_id)
    facts = [("File", f.uuid), ("SHA-256", f.sha256), ("Format", f.format or "")]
    if f.role == "master":
        facts += [("Derived from", f"scan {f.source_uuid}" if f.source_uuid else ""),
                  ("Recipe", f"{f.recipe_name} ({f.recipe_hash})" if f.recipe_name else "")]
    return Canvas(id=canvas_id, label=_en(label), width=ref.width, height=ref.height,
                  metadata=[KeyValueString(label=_en(k), value=_none(v)) for k, v in facts if v],
                  items=[AnnotationPage(id=f"{canvas_id}/page/1", items=[annotation])])


def _image(ref: ImageRef, size: tuple[int, int]) -> AnnotationBody:
    return AnnotationBody(id=ref.image_url(size), type="Image", format=ref.format, width=size[0], height=size[1],
                          service=[ServiceV3(id=ref.service_id, type=IMAGE_SERVICE, profile=LEVEL0)])


def _item_metadata(record: ItemRecord, meta: Mapping[str, Any]) -> list[KeyValueString]:
    pairs = [("Identifier", meta.get("identifier") or record.identifier), ("Title", meta.get("title") or record.title),
             ("Creator", meta.get("creator")), ("Date", meta.get("date")), ("Rights", meta.get("rights"))]
    physical = meta.get("physical")
    if physical:
        pairs.append(("Physical size", f"{physical['width']:g} × {physical['height']:g} {physical['unit']}"))
    named = {k.lower() for k, _ in pairs}
    pairs += [(k.removeprefix("dc.").capitalize(), v) for k, v in (meta.get("dc") or {}).items()
              if k.removeprefix("dc.") not in named]
    pairs.append(("Catalog item", record.uuid))
    return [KeyValueString(label=_en(k), value=_none(str(v))) for k, v in pairs if v]


def _en(text: str) -> dict[str, list[str]]:
    return {"en": [text]}


def _none(text: str) -> dict[str, list[str]]:
    return {"none": [text]}  # the cataloguer's words: their language is not recorded


# --- reading back and checking -------------------------------------------------------------------

def parse_back(data: Mapping[str, Any]) -> Manifest | Collection:
    """Load a manifest or collection into iiif-prezi3's classes. Raises IiifError when they reject
    it, or when writing it out again loses or changes anything (a property the model does not
    know is dropped silently by pydantic, so the round trip is the check)."""
    kind = data.get("type")
    cls: type[Manifest] | type[Collection]
    if kind == "Manifest":
        cls = Manifest
    elif kind == "Collection":
        cls = Collection
    else:
        raise IiifError(f"type {kind!r}: expected Manifest or Collection")
    try:
        obj = cls.model_validate(dict(data))
    except ValidationError as exc:
        raise IiifError(f"{kind} {data.get('id')} does not validate: {exc}") from exc
    again = json.loads(obj.jsonld())
    if again != dict(data):
        raise IiifError(f"{kind} {data.get('id')}: not kept by the IIIF model: {', '.join(_diff(data, again)[:5])}")
    return obj


@dataclass
class _Problems:
    found: list[str] = field(default_factory=list)

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.found.append(message)


def manifest_problems(data: Mapping[str, Any]) -> list[str]:
    """What is wrong with a manifest: it must parse back (above), its `rights` must be a CC or
    RightsStatements.org URI, and every canvas must have a size and exactly one painting
    annotation targeting it, whose body is an Image with a level-0 ImageService3."""
    try:
        manifest = parse_back(data)
    except IiifError as exc:
        return [str(exc)]
    p = _Problems()
    if manifest.rights is not None:
        p.check(bool(RIGHTS_URI.fullmatch(str(manifest.rights))), f"rights {manifest.rights}: not a CC or "
                "RightsStatements.org URI")
    p.check(bool(manifest.items), "no canvas")
    for canvas in manifest.items:
        where = f"canvas {canvas.id}"
        p.check(bool(canvas.width and canvas.height), f"{where}: no width/height")
        painting = [a for page in canvas.items for a in page.items if a.motivation == "painting"]
        p.check(len(painting) == 1, f"{where}: {len(painting)} painting annotations, expected 1")
        for a in painting:
            p.check(str(a.target) == str(canvas.id), f"{where}: its image targets {a.target}")
            body = a.body
            p.check(isinstance(body, AnnotationBody) and body.type == "Image", f"{where}: the body is not an Image")
            if not isinstance(body, AnnotationBody):
                continue
            p.check(bool(body.width and body.height and body.format), f"{where}: the image has no size or format")
            services = [s for s in body.service or [] if isinstance(s, ServiceV3)]
            p.check(len(services) == 1 and services[0].type == IMAGE_SERVICE and services[0].profile == LEVEL0,
                    f"{where}: expected one {IMAGE_SERVICE} {LEVEL0} service, got {body.service}")
            if services:
                p.check(str(body.id).startswith(f"{str(services[0].id).rstrip('/')}/full/"),
                        f"{where}: the image {body.id} is not a full-region image of its service")
    return p.found


def site_problems(data: Mapping[str, Any], *, base_url: str, root: str | Path) -> list[str]:
    """What a static site at `root` (served at `base_url`) lacks for this manifest: each image
    service's info.json (with the same id and the canvas's size) and each painted image."""
    prefix, root = base(base_url) + "/", Path(root)
    p = _Problems()
    for canvas in data.get("items", []):
        for page in canvas.get("items", []):
            for a in page.get("items", []):
                body = a.get("body", {})
                for service in body.get("service", []):
                    info_path = _local(service["id"] + "/info.json", prefix, root)
                    if info_path is None or not info_path.is_file():
                        p.found.append(f"canvas {canvas['id']}: {service['id']}/info.json is not in {root}")
                        continue
                    info = json.loads(info_path.read_text())
                    p.check(info.get("id") == service["id"], f"{info_path}: id {info.get('id')} != {service['id']}")
                    p.check((info.get("width"), info.get("height")) == (canvas.get("width"), canvas.get("height")),
                            f"{info_path}: size differs from canvas {canvas['id']}")
                    p.check((body.get("width"), body.get("height")) in available_sizes(info),
                            f"{info_path}: does not offer the painted size {body.get('width')},{body.get('height')}")
                image = _local(body.get("id", ""), prefix, root)
                p.check(image is not None and image.is_file(), f"canvas {canvas['id']}: {body.get('id')} is not in {root}")
    return p.found


def _local(url: str, prefix: str, root: Path) -> Path | None:
    if not url.startswith(prefix):
        return None
    rel = url[len(prefix):]
    return None if ".." in rel.split("/") else root / rel


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in (_diff(a[k], b[k], f"{path}/{k}") if k in a and k in b else [f"{path}/{k}"])]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _diff(x, y, f"{path}/{i}")]
    return [] if a == b else [path or "/"]
