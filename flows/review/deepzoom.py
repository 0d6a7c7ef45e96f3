"""Deep zoom for the review page: IIIF Image API 3 level-0 tiles of a catalogued file, made once
into the preview cache and served by the app to OpenSeadragon (static/openseadragon/).

A file's tiles live at `cache_root/iiif/<file uuid>/<sha256[:16]>/` (flows.review.previews.iiif_dir),
made by tasks.files.iiif_tiles.write_iiif with the identifier `<file uuid>/<sha256[:16]>`: a new
content is a new folder and a new URL, so tiles can be cached by the browser for good. The
folder is written whole under a hidden name and renamed into place, so a folder at its final
name is complete; it shares the preview cache's budget (previews.prune evicts whole folders,
least recently used first).

What the app serves from a folder is named by `request_path`: info.json and the JPEG tile and
size paths of the Image API, nothing else (not the fixity manifest, never a path that leaves the
folder). info.json's id is set per request to the URL the browser used (`service_id`), so a
server reached by another name or behind a prefix still sends OpenSeadragon back to itself.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from flows.review import previews
from tasks.files.atomic import sha256_file
from tasks.files.iiif_tiles import write_iiif
from tasks.files.imageio import inspect
from tasks.files.limits import DEFAULT, Limits
from tasks.records.failures import ScanError, scan_boundary

TILE_SIZE = 512  # OpenSeadragon's usual tile: few requests, small enough to arrive while panning
QUALITY = 95  # tiles are what a reviewer inspects for invented detail: near-lossless (no chroma subsampling)
MAX_FULL = 2048  # long edge of the largest untiled image ("full/max"): the before/after slider's picture
# info.json, or a level-0 request: region full or x,y,w,h; size max or w,h; rotation 0; default.jpg
_REQUEST = re.compile(r"info\.json|(?:full|\d{1,9},\d{1,9},\d{1,9},\d{1,9})/(?:max|\d{1,9},\d{1,9})/0/default\.jpg")


class Changed(Exception):
    """The file's bytes are not the catalogued ones (or it is gone): nothing is made of it."""


def identifier(file_uuid: str, sha256: str) -> str:
    return f"{file_uuid}/{sha256[:16]}"


def is_request(rest: str) -> bool:
    """Whether `rest` (the request path after the identifier) is info.json or a JPEG tile or size
    request: digits, commas and fixed words only, so no '..' and no other file of the folder."""
    return _REQUEST.fullmatch(rest) is not None


def request_path(folder: Path, rest: str) -> Path | None:
    """The file under `folder` that `rest` names, or None when it is no request (`is_request`)."""
    return folder / rest if is_request(rest) else None


def service_id(base_url: str, file_uuid: str, sha256: str) -> str:
    """The image service's id: the app's own URL for the folder (`base_url` ends before /iiif)."""
    return f"{base_url.rstrip('/')}/{previews.IIIF}/{identifier(file_uuid, sha256)}"


def info(folder: Path, service: str) -> dict[str, Any]:
    """info.json of a complete folder, its id the URL this request came by."""
    data = json.loads((folder / "info.json").read_text())
    data["id"] = service
    return data


def ready(cache_root: Path, file_uuid: str, sha256: str) -> Path | None:
    """The complete folder of this content, its use recorded; None when it is not there (never
    made, or pruned): the caller checks the file and calls `build`."""
    folder = previews.iiif_dir(cache_root, file_uuid, sha256)
    if not (folder / "info.json").is_file():
        return None
    previews.record_use(folder)
    return folder


def build(source: Path, cache_root: Path, file_uuid: str, sha256: str, *, base_url: str,
          max_pixels: int = DEFAULT.max_pixels) -> Path:
    """The tiles of `source` (whose content is `sha256`): made once, then read back. Raises Changed
    when the file's bytes are not `sha256` (checked before they are first tiled), and
    tasks.files.imageio.ScanError for a file that cannot be read, tiled (a full disk included) or
    is over `max_pixels` (checked from its header, before libvips decodes)."""
    with previews.lock(previews.iiif_key(file_uuid, sha256)):  # one build per folder; prune leaves it be
        if (folder := ready(cache_root, file_uuid, sha256)) is not None:
            return folder
        if not source.is_file() or sha256_file(source) != sha256:
            raise Changed(f"{source} changed or went missing since it was catalogued")
        inspect(source, Limits(max_pixels, max(DEFAULT.max_bytes, max_pixels * 8)))
        folder = previews.iiif_dir(cache_root, file_uuid, sha256)
        if folder.exists():  # at its final name without info.json: damaged by hand; write_iiif would refuse it
            shutil.rmtree(folder)
        for attempt in range(2):
            try:
                with scan_boundary(source, what="cannot be tiled"):  # libvips' errors too: this file's failure
                    write_iiif(source, previews.iiif_root(cache_root), identifier(file_uuid, sha256),
                               base_url=f"{base_url.rstrip('/')}/{previews.IIIF}", tile_size=TILE_SIZE,
                               quality=QUALITY, max_full_size=MAX_FULL)
                break
            except ScanError as exc:
                # a prune removed the (then empty) uuid folder between write_iiif's mkdir and its staging
                if attempt or not isinstance(exc.__cause__, FileNotFoundError) or not source.is_file():
                    raise
        previews.record_use(folder)
        return folder
