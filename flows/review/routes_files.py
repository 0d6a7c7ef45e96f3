"""Images of catalogued files, by uuid, as cached JPEGs: previews and 256 px tiles with their
manifest (/img/<uuid>/..., flows.review.previews) and IIIF level-0 tiles with their info.json
(/iiif/<uuid>/<sha256[:16]>/..., flows.review.deepzoom). A file's bytes are checked against the
catalog's sha256 before they are first cached; a new cache entry kicks the cache's prune."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from catalog import review
from flows.review import deepzoom, previews
from flows.review.context import IMMUTABLE, UUID, AppContext, Ctx, plain
from tasks.files.atomic import sha256_file
from tasks.files.imageio import ScanError

router = APIRouter()


# --- previews and tiles: /img/<uuid>/... ------------------------------------------------------------


@router.get("/img/{file_uuid}/manifest.json")
async def manifest(ctx: Ctx, file_uuid: str) -> Response:
    data = await _cached(ctx, file_uuid)
    return data if isinstance(data, Response) else JSONResponse(data, headers=IMMUTABLE)


@router.get("/img/{file_uuid}/preview-{edge}.jpg")
async def preview(ctx: Ctx, file_uuid: str, edge: int) -> Response:
    if edge not in previews.PREVIEW_EDGES:
        return plain("no such preview size\n", 404)
    return await _jpeg(ctx, file_uuid, lambda data: previews.preview_path(ctx.cache_root, data["sha256"], edge))


@router.get("/img/{file_uuid}/tile-{col}-{row}.jpg")
async def tile(ctx: Ctx, file_uuid: str, col: int, row: int) -> Response:
    return await _jpeg(ctx, file_uuid, lambda data: previews.tile_path(ctx.cache_root, data["sha256"], data, col, row))


async def _cached(ctx: AppContext, file_uuid: str) -> dict[str, Any] | Response:
    """The manifest of the file's cache entry, built on its first view; or the error answer."""
    facts = review.file_facts(ctx.catalog, file_uuid) if UUID.match(file_uuid) else None
    if facts is None:
        return plain("no such file\n", 404)
    sha256 = facts["sha256"]
    data = await asyncio.to_thread(previews.load, ctx.cache_root, sha256)
    if data is None:  # first view (or pruned since): the bytes must be the catalogued ones
        path = Path(facts["path"])
        if not path.is_file() or await asyncio.to_thread(sha256_file, path) != sha256:
            return _changed(facts)
        try:
            data = await asyncio.to_thread(previews.build, path, sha256, ctx.cache_root,
                                           max_pixels=ctx.cfg.max_pixels)
        except ScanError as exc:
            return _unreadable(exc)
        ctx.cache.used(sha256)
        ctx.cache.kick()  # a new entry: back to the budget, in the background
        return data
    ctx.cache.used(sha256)
    return data


async def _jpeg(ctx: AppContext, file_uuid: str, pick: Callable[[dict[str, Any]], Path]) -> Response:
    """One cached JPEG, read whole (small): an entry pruned between its manifest and the file is
    built again once, never half served."""
    for _ in range(2):
        data = await _cached(ctx, file_uuid)
        if isinstance(data, Response):
            return data
        try:
            path = pick(data)
        except ValueError:
            return plain("no such tile\n", 404)
        try:
            body = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            continue
        return Response(body, media_type="image/jpeg", headers=IMMUTABLE)
    return _pruning()


# --- deep zoom: /iiif/<uuid>/<sha256[:16]>/... ----------------------------------------------------------


@router.get("/iiif/{file_uuid}/{version}/{rest:path}")
async def iiif(request: Request, ctx: Ctx, file_uuid: str, version: str, rest: str) -> Response:
    """info.json and JPEG tiles only; `version` is the file's sha256[:16], so a URL names one content."""
    facts = review.file_facts(ctx.catalog, file_uuid) if UUID.match(file_uuid) else None
    if facts is None or version != facts["sha256"][:16] or not deepzoom.is_request(rest):
        return plain("no such image or tile\n", 404)
    base_url = str(request.base_url)
    for _ in range(2):  # a folder pruned between finding it and reading from it is made again, once
        folder = await _tiles_of(ctx, facts, base_url)
        if isinstance(folder, Response):
            return folder
        ctx.cache.used(facts["sha256"])
        path = deepzoom.request_path(folder, rest)
        if path is None:  # not reached: is_request above
            return plain("no such tile\n", 404)
        try:
            if rest == "info.json":
                service = deepzoom.service_id(base_url, file_uuid, facts["sha256"])
                return JSONResponse(await asyncio.to_thread(deepzoom.info, folder, service), headers=IMMUTABLE)
            body = await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, NotADirectoryError):
            if (folder / "info.json").is_file():  # the folder is there: no such tile in its pyramid
                return plain("no such tile\n", 404)
            continue
        return Response(body, media_type="image/jpeg", headers=IMMUTABLE)
    return _pruning()


async def _tiles_of(ctx: AppContext, facts: dict[str, Any], base_url: str) -> Path | Response:
    """The file's IIIF folder, built on its first view (one build per folder, however many
    requests wait for it); or the error answer."""
    file_uuid, sha256 = facts["uuid"], facts["sha256"]
    folder = await asyncio.to_thread(deepzoom.ready, ctx.cache_root, file_uuid, sha256)
    if folder is not None:
        return folder
    key = previews.iiif_key(file_uuid, sha256)
    task = ctx.building.get(key)
    if task is None:
        task = _start_build(ctx, facts, key, base_url)
    try:
        return await asyncio.shield(task)  # a client that goes away does not stop the build
    except deepzoom.Changed:
        return _changed(facts)
    except ScanError as exc:
        return _unreadable(exc)


def _start_build(ctx: AppContext, facts: dict[str, Any], key: str, base_url: str) -> asyncio.Future:
    """Build the IIIF folder `key` in a thread; once built, it counts as on screen and the cache is pruned."""
    file_uuid, sha256 = facts["uuid"], facts["sha256"]
    task = asyncio.ensure_future(asyncio.to_thread(
        deepzoom.build, Path(facts["path"]), ctx.cache_root, file_uuid, sha256, base_url=base_url,
        max_pixels=ctx.cfg.max_pixels))
    ctx.building[key] = task

    def done(finished: asyncio.Future) -> None:
        ctx.building.pop(key, None)
        if not finished.cancelled() and finished.exception() is None:
            ctx.cache.used(sha256)  # on screen: the prune this starts keeps it
            ctx.cache.kick()  # a new folder: back to the budget, in the background

    task.add_done_callback(done)
    return task


# --- answers shared by both ------------------------------------------------------------------------------


def _changed(facts: dict[str, Any]) -> Response:
    return plain(f"the {facts['role']} changed or went missing since it was catalogued; "
                 "run `restorium fixity`\n", 409)


def _unreadable(exc: ScanError) -> Response:
    return plain(f"cannot show it: {exc.reason}\n", 422)


def _pruning() -> Response:
    return plain("the preview cache is being pruned; try again\n", 503, headers={"Retry-After": "1"})
