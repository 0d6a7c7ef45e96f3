"""The reviewer's actions on a master, posted from its item page: approve or reject
(POST /items/<uuid>/decision), or queue it for reprocessing (POST /items/<uuid>/reprocess).
Every form carries the CSRF token (flows/review/security.py); without it: 403."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from flows.review import actions
from flows.review.context import REVIEWER_COOKIE, AppContext, Ctx, plain
from flows.review.routes_pages import item_view

router = APIRouter()


class CsrfRefused(Exception):
    """A form posted without the page's CSRF token (answered by `csrf_refused`)."""


async def csrf_refused(request: Request, exc: Exception) -> Response:
    """The app's handler of CsrfRefused."""
    return plain("missing or wrong CSRF token: reload the page\n", 403)


@router.post("/items/{master_uuid}/decision")
async def decision(request: Request, ctx: Ctx, master_uuid: str) -> Response:
    form = await _form_of(ctx, request)
    by, choice = str(form.get("reviewer", "")), str(form.get("decision", ""))
    try:
        await asyncio.to_thread(actions.decide, ctx.catalog, master_uuid, choice, by=by,
                                comment=str(form.get("comment", "")))
    except actions.Refused as exc:
        return item_view(ctx, request, master_uuid, error=str(exc), status=400)
    return _back(f"/items/{master_uuid}?notice={choice}", by)


@router.post("/items/{master_uuid}/reprocess")
async def reprocess(request: Request, ctx: Ctx, master_uuid: str) -> Response:
    form = await _form_of(ctx, request)
    by = str(form.get("reviewer", ""))
    try:
        strengths = actions.parse_strengths(form)
        await asyncio.to_thread(actions.request_reprocess, ctx.catalog, master_uuid,
                                preset=str(form.get("preset", "")), strengths=strengths, by=by,
                                comment=str(form.get("comment", "")))
    except actions.Refused as exc:
        return item_view(ctx, request, master_uuid, error=str(exc), status=400)
    if ctx.launcher is not None:
        ctx.launcher.kick()
    return _back(f"/items/{master_uuid}?notice=queued", by)


async def _form_of(ctx: AppContext, request: Request) -> dict[str, Any]:
    """The posted form, once its CSRF token is checked (CsrfRefused otherwise)."""
    form = dict(await request.form())
    token = form.get("csrf")  # a str, unless someone posts a file under that name
    if not ctx.guard.csrf_ok(token if isinstance(token, str) else None):
        raise CsrfRefused()
    return form


def _back(url: str, reviewer: str) -> Response:
    """Back to the item page, remembering the reviewer's name for the next form."""
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(REVIEWER_COOKIE, " ".join(reviewer.split())[:100], samesite="strict", path="/")
    return response
