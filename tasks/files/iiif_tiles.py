"""IIIF Image API 3.0 level-0 derivatives: static tiles and info.json for a master or a scan.

libvips' dzsave (layout "iiif3") streams the image: it reads the source top to bottom once and keeps
one strip of tiles per pyramid level, so a 100 MP master tiles in bounded memory. The folder is
filled under a hidden '.partial' sibling and renamed into place only when complete, so a folder at
its final name is always whole; the identifier names the file content (the caller passes
`<item uuid>/<file sha256[:16]>`), so an existing folder is reused, never re-tiled.

Layout under `dest_root/<identifier>/`, every path an Image API 3.0 request a static web server
can answer as it stands:
- `info.json`: ImageService3, profile level0, tiles, sizes, maxWidth/maxHeight when "max" is
  smaller than the image;
- `{x},{y},{w},{h}/{sw},{sh}/0/default.jpg`: every tile at every scale factor, named by the
  spec's tile recipe (Image API 3.0 implementation notes); dzsave names the one tile that covers
  the whole image `full/...` instead (as OpenSeadragon asks for it), so that tile is there under
  both names;
- `full/{w},{h}/0/default.jpg` for each entry of `sizes` (the pyramid levels whose long edge is at
  most `max_full_size`) and `full/max/0/default.jpg` (level 0 requires "max");
- `manifest-sha256.txt`: BagIt-style "sha256  path" for every other file (see IiifDerivative.sha256).

Pixels are made viewable the way access copies are (tasks.files.tag.access_pixels): alpha
composited over white, 16-bit rounded to 8-bit (round(v / 257), no clipping), an embedded ICC
profile converted to sRGB (tiles carry no metadata, so a profile cannot travel with them).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyvips

from tasks.files.atomic import atomic_write, sha256_file

CONTEXT = "http://iiif.io/api/image/3/context.json"
PROTOCOL = "http://iiif.io/api/image"
MANIFEST = "manifest-sha256.txt"
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass(frozen=True)
class IiifDerivative:
    path: Path  # dest_root/<identifier>: the folder a static server publishes at `id`
    info_json: Path
    id: str  # the image service's id (base URL + identifier), as in info.json
    width: int
    height: int
    tile_count: int  # tile images the info.json's "tiles" promise, all scale factors
    file_count: int  # every file in the folder (tiles, full/ sizes, info.json, manifest)
    total_bytes: int
    info_sha256: str
    # The digest to record as the access file's sha256: that of manifest-sha256.txt, which lists
    # the sha256 of every other file. info.json's own digest is no fixity value for the
    # derivative: it depends only on the id, the dimensions and the tile size (two different
    # masters of one size share it), and it cannot notice a damaged tile. The manifest's digest
    # changes with any byte of any tile, and check_fixity() re-verifies file by file.
    sha256: str
    created: bool  # False when an existing folder was reused


def write_iiif(
    source: Path,
    dest_root: Path,
    identifier: str,
    *,
    base_url: str,
    tile_size: int = 512,
    quality: int = 90,
    max_full_size: int = 2048,
) -> IiifDerivative:
    """Tiles and info.json for `source` at `dest_root/<identifier>`, made once per identifier.

    An existing folder with a valid info.json for this image is returned as it is (created False);
    when only `base_url` changed, its info.json (and that line of the manifest) is rewritten, the
    tiles are kept. `max_full_size`: long edge of the largest untiled full/ image (and of "max").
    """
    source, dest_root = Path(source), Path(dest_root)
    _check_identifier(identifier)
    if not 64 <= tile_size <= 4096:
        raise ValueError(f"tile_size must be 64-4096 px, got {tile_size}")
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be 1-100, got {quality}")
    if not base_url.startswith(("https://", "http://")):
        raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
    service_id = f"{base_url.rstrip('/')}/{identifier}"
    dest = dest_root / identifier
    image = viewable(source)
    if dest.exists():
        return _reuse(dest, image, service_id, tile_size)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.{secrets.token_hex(4)}.partial"
    staging.mkdir()
    try:
        work = staging / "iiif"  # dzsave creates it; renamed as a whole to `dest`
        image.dzsave(str(work), layout="iiif3", tile_size=tile_size, overlap=0, suffix=f".jpg[Q={quality}]",
                     depth="onetile", id=base_url.rstrip("/"))
        _complete(work, image.width, image.height, service_id, tile_size, max_full_size, quality)
        _fsync_tree(work)
        try:
            work.rename(dest)
        except OSError:
            if not (dest / "info.json").is_file():
                raise
            # Another writer finished the same identifier first: its folder is as good as ours.
            return _reuse(dest, image, service_id, tile_size)
        _fsync_dir(dest.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _describe(dest, created=True)


def viewable(source: Path) -> pyvips.Image:
    """The source as 8-bit sRGB (or 8-bit gray), upright, flattened on white; a lazy pipeline
    read once, top to bottom, unless the file's EXIF orientation asks for a rotation."""
    # revalidate: never a cached decode of an earlier file at this path (a rewritten master)
    image = pyvips.Image.new_from_file(str(source), revalidate=True)  # header only: the sink reads pixels
    orientation = image.get("orientation") if image.get_typeof("orientation") else 1
    upright = orientation in (0, 1)
    image = pyvips.Image.new_from_file(str(source), access="sequential" if upright else "random", revalidate=True)
    if not upright:
        image = image.autorot()
    if image.format not in ("uchar", "ushort"):
        raise ValueError(f"{source}: {image.format} samples cannot be tiled (8- or 16-bit only)")
    top = 65535.0 if image.format == "ushort" else 255.0
    if image.hasalpha():
        image = image.flatten(background=[top] * (image.bands - 1), max_alpha=top)
    if image.bands >= 3 and (image.get_typeof("icc-profile-data") or image.interpretation == "cmyk"):
        # relative colorimetric, to sRGB; vips carries 16 bits through when asked
        image = image.icc_transform("srgb", embedded=True, intent="relative", depth=16 if top > 255 else 8)
    if image.bands not in (1, 3):
        raise ValueError(f"{source}: {image.bands} colour bands cannot be tiled (gray or RGB only)")
    if image.format == "ushort":
        # round(v / 257) as the access copies do: vips' own 16->8 shift (v >> 8) truncates
        image = image.linear([1 / 257], [0.5]).cast("uchar")
    return image.copy(interpretation="b-w" if image.bands == 1 else "srgb")


def tile_requests(info: dict[str, Any]) -> Iterator[tuple[str, int, int]]:
    """(path, width, height) of every tile info.json promises, by the spec's tile recipe
    (Image API 3.0 implementation notes: region xr,yr,wr,hr; size ws,hs; integer arithmetic)."""
    width, height = int(info["width"]), int(info["height"])
    for tiles in info["tiles"]:
        tw = int(tiles["width"])
        th = int(tiles.get("height", tw))
        for s in tiles["scaleFactors"]:
            for m in range(math.ceil(height / (th * s))):
                for n in range(math.ceil(width / (tw * s))):
                    xr, yr = n * tw * s, m * th * s
                    wr, hr = min(tw * s, width - xr), min(th * s, height - yr)
                    ws = tw if xr + tw * s <= width else (width - xr + s - 1) // s
                    hs = th if yr + th * s <= height else (height - yr + s - 1) // s
                    yield f"{xr},{yr},{wr},{hr}/{ws},{hs}/0/default.jpg", ws, hs


def validate_iiif(folder: Path) -> list[str]:
    """Problems of a level-0 folder (empty when valid): info.json's required IIIF 3 properties,
    every tile it promises at every scale factor and every listed size, each a JPEG of the
    promised pixel size, and full/max."""
    folder = Path(folder)
    info, problems = _read_info(folder)
    if info is None:
        return problems
    for relative, w, h in tile_requests(info):
        problems += _check_jpeg(folder, relative, w, h)
    largest = (0, 0)
    for size in info.get("sizes", []):
        w, h = size["width"], size["height"]
        largest = max(largest, (w, h))
        problems += _check_jpeg(folder, f"full/{w},{h}/0/default.jpg", w, h)
    max_path = folder / "full/max/0/default.jpg"
    if not max_path.is_file():
        problems.append("full/max/0/default.jpg: missing (level 0 requires the max size)")
    elif largest != (0, 0):
        problems += _check_jpeg(folder, "full/max/0/default.jpg", *largest)
    return problems


def check_fixity(folder: Path, sha256: str) -> list[str]:
    """Problems of the folder against its recorded digest (IiifDerivative.sha256): the manifest's
    digest, then every listed file's, then files the manifest does not list."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return [f"{MANIFEST}: missing"]
    if sha256_file(manifest) != sha256:
        return [f"{MANIFEST}: sha256 differs from the recorded {sha256}"]
    listed = _read_manifest(manifest)
    problems = [f"{rel}: {'missing' if not (folder / rel).is_file() else 'sha256 differs from the manifest'}"
                for rel, digest in sorted(listed.items())
                if not (folder / rel).is_file() or sha256_file(folder / rel) != digest]
    problems += [f"{rel}: not in the manifest" for rel in _files(folder) if rel != MANIFEST and rel not in listed]
    return problems


def _check_identifier(identifier: str) -> None:
    # Each segment a plain, visible name: no '..', no hidden or '.partial' names a sweep would delete.
    if not identifier or not all(_SEGMENT.fullmatch(part) for part in identifier.split("/")):
        raise ValueError(f"identifier {identifier!r} is not path-safe (segments of letters, digits, '.', '_', '-')")


def _complete(work: Path, width: int, height: int, service_id: str, tile_size: int, max_full_size: int,
              quality: int) -> None:
    """Turn dzsave's output into the full level-0 layout: recipe names, sizes, max, our info.json."""
    made = json.loads((work / "info.json").read_text())
    factors = [int(s) for s in made["tiles"][0]["scaleFactors"]]
    if (made["width"], made["height"], made["tiles"][0]["width"]) != (width, height, tile_size):
        raise RuntimeError(f"dzsave wrote an unexpected info.json: {made}")  # a libvips layout change
    info: dict[str, Any] = {
        "@context": CONTEXT, "id": service_id, "type": "ImageService3", "protocol": PROTOCOL,
        "profile": "level0", "width": width, "height": height,
        "tiles": [{"width": tile_size, "height": tile_size, "scaleFactors": factors}],
    }
    # The tile covering the whole image: dzsave wrote it as full/w,h; add the recipe's name.
    for relative, w, h in tile_requests(info):
        if relative.startswith(f"0,0,{width},{height}/"):
            _link(work / f"full/{w},{h}/0/default.jpg", work / relative)
    levels = [(math.ceil(width / s), math.ceil(height / s)) for s in factors]
    sizes = [size for size in levels if max(size) <= max_full_size] or [levels[-1]]
    for s, (w, h) in zip(factors, levels, strict=True):
        if (w, h) in sizes and not (work / f"full/{w},{h}/0/default.jpg").is_file():
            _join_level(work, info, s, w, h, quality)
    biggest = max(sizes)
    _link(work / f"full/{biggest[0]},{biggest[1]}/0/default.jpg", work / "full/max/0/default.jpg")
    if biggest != (width, height):
        info["maxWidth"], info["maxHeight"] = biggest  # so that "max" means the file we have
    info["sizes"] = [{"width": w, "height": h} for w, h in sorted(sizes)]
    (work / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    _write_manifest(work)


def _join_level(work: Path, info: dict[str, Any], s: int, w: int, h: int, quality: int) -> None:
    """full/w,h at scale factor s from that level's tiles: no second pass over a 100 MP source."""
    tile = info["tiles"][0]["width"]
    across = math.ceil(w / tile)
    paths = [work / rel for rel, *_ in tile_requests({**info, "tiles": [{"width": tile, "scaleFactors": [s]}]})]
    parts = [pyvips.Image.new_from_file(str(p)) for p in paths]
    joined = pyvips.Image.arrayjoin(parts, across=across)  # cells of the first (a whole) tile's size
    if (joined.width, joined.height) != (across * parts[0].width, len(parts) // across * parts[0].height):
        raise RuntimeError(f"scale factor {s}: tiles join to {joined.width}x{joined.height}, expected {w}x{h}")
    out = work / f"full/{w},{h}/0/default.jpg"
    out.parent.mkdir(parents=True)
    joined.crop(0, 0, w, h).jpegsave(str(out), Q=quality, keep=pyvips.enums.ForeignKeep.NONE)


def _link(existing: Path, new: Path) -> None:
    new.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(existing, new)  # one file's bytes under two request paths
    except OSError:
        shutil.copyfile(existing, new)  # file systems without hard links


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _write_manifest(folder: Path) -> None:
    lines = [f"{sha256_file(folder / rel)}  {rel}\n" for rel in _files(folder) if rel != MANIFEST]
    (folder / MANIFEST).write_text("".join(lines))


def _read_manifest(path: Path) -> dict[str, str]:
    entries = (line.split("  ", 1) for line in path.read_text().splitlines() if line.strip())
    return {rel: digest for digest, rel in entries}


def _reuse(dest: Path, image: pyvips.Image, service_id: str, tile_size: int) -> IiifDerivative:
    info, problems = _read_info(dest)
    if info is None:
        raise ValueError(f"{dest}: exists but is no valid IIIF folder ({'; '.join(problems)}); remove it to re-tile")
    if (info["width"], info["height"], info["tiles"][0]["width"]) != (image.width, image.height, tile_size):
        raise ValueError(f"{dest}: holds a {info['width']}x{info['height']} image in {info['tiles'][0]['width']} px "
                         f"tiles, not this {image.width}x{image.height} source in {tile_size} px tiles")
    if info["id"] != service_id:  # the base URL moved: the tiles stay, info.json names the new id
        info["id"] = service_id
        atomic_write(dest / "info.json", lambda temp: temp.write_text(json.dumps(info, indent=2) + "\n"))
        listed = _read_manifest(dest / MANIFEST)
        listed["info.json"] = sha256_file(dest / "info.json")
        text = "".join(f"{digest}  {rel}\n" for rel, digest in sorted(listed.items()))
        atomic_write(dest / MANIFEST, lambda temp: temp.write_text(text))
    return _describe(dest, created=False)


def _describe(dest: Path, *, created: bool) -> IiifDerivative:
    info = json.loads((dest / "info.json").read_text())
    files = [dest / rel for rel in _files(dest)]
    return IiifDerivative(
        path=dest, info_json=dest / "info.json", id=info["id"], width=info["width"], height=info["height"],
        tile_count=sum(1 for _ in tile_requests(info)), file_count=len(files),
        total_bytes=sum(p.stat().st_size for p in files), info_sha256=sha256_file(dest / "info.json"),
        sha256=sha256_file(dest / MANIFEST), created=created,
    )


def _read_info(folder: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """info.json when its required level-0 properties are there and well-typed, else the problems."""
    try:
        info = json.loads((folder / "info.json").read_text())
    except FileNotFoundError:
        return None, ["info.json: missing"]
    except (OSError, ValueError) as exc:
        return None, [f"info.json: not JSON ({exc})"]
    if not isinstance(info, dict):
        return None, ["info.json: not a JSON object"]
    context = info.get("@context")
    expected = {"type": "ImageService3", "protocol": PROTOCOL, "profile": "level0"}
    problems = [f"info.json: {key} is {info.get(key)!r}, expected {value!r}"
                for key, value in expected.items() if info.get(key) != value]
    if context != CONTEXT and not (isinstance(context, list) and context and context[-1] == CONTEXT):
        problems.append(f"info.json: @context is {context!r}, expected {CONTEXT!r} (last, if a list)")
    if not (isinstance(info.get("id"), str) and info["id"].startswith(("https://", "http://"))):
        problems.append(f"info.json: id {info.get('id')!r} is not an http(s) URI")
    problems += [f"info.json: {key} must be a positive integer, got {info.get(key)!r}"
                 for key in ("width", "height") if not _positive(info.get(key))]
    tiles = info.get("tiles")
    if not (isinstance(tiles, list) and tiles):
        problems.append("info.json: tiles must be a non-empty list (a level-0 tile service)")
    else:
        for entry in tiles:
            if not (isinstance(entry, dict) and _positive(entry.get("width"))
                    and _positive(entry.get("height", entry.get("width")))
                    and isinstance(entry.get("scaleFactors"), list) and entry["scaleFactors"]
                    and all(_positive(s) for s in entry["scaleFactors"])):
                problems.append(f"info.json: tiles entry {entry!r} needs width (height) and scaleFactors, "
                                "positive integers")
    sizes = info.get("sizes", [])
    if not (isinstance(sizes, list) and all(isinstance(s, dict) and _positive(s.get("width"))
                                            and _positive(s.get("height")) for s in sizes)):
        problems.append(f"info.json: sizes {sizes!r} must be a list of {{width, height}}, positive integers")
    return (None, problems) if problems else (info, [])


def _positive(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_jpeg(folder: Path, relative: str, width: int, height: int) -> list[str]:
    path = folder / relative
    try:
        with open(path, "rb") as f:
            magic = f.read(3)
    except FileNotFoundError:
        return [f"{relative}: missing"]
    if magic != _JPEG_MAGIC:
        return [f"{relative}: not a JPEG"]
    try:
        header = pyvips.Image.new_from_file(str(path))  # reads the header, not the pixels
    except pyvips.Error as exc:
        return [f"{relative}: unreadable ({str(exc).strip()})"]
    if (header.width, header.height) != (width, height):
        return [f"{relative}: {header.width}x{header.height} px, info.json promises {width}x{height}"]
    return []


def _fsync_tree(folder: Path) -> None:
    """Every file and folder on disk before the rename publishes them (as atomic_write does for one file)."""
    for root, _dirs, names in os.walk(folder):
        for name in names:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(root))


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

