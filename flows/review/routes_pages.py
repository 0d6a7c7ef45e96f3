"""The pages: runs (/), masters filtered for review (/items), one master beside its original
(/items/<uuid>), and the documents under the archive home they link to (/archive/...)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from catalog import review
from config.recipe import list_presets
from flows.review import deepzoom
from flows.review.context import UUID, AppContext, Ctx, plain
from flows.review.security import safe_document
from tasks.preservation.reprocess import STRENGTHS

PAGE_SIZE = 100
NOTICES = {"approved": "Approved.", "rejected": "Rejected.", "queued": "Reprocessing queued."}
_DOCUMENT_TYPES = {".html": "text/html; charset=utf-8", ".json": "application/json", ".png": "image/png",
                   ".jpg": "image/jpeg", ".md": "text/markdown; charset=utf-8"}

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def runs_page(request: Request, ctx: Ctx) -> Response:
    rows = review.runs(ctx.catalog)
    for run in rows:
        run["report"] = _report(ctx.cfg.home, run["uuid"])
    return ctx.render(request, "runs.html", runs=rows)


@router.get("/items", response_class=HTMLResponse)
def items_page(request: Request, ctx: Ctx, verdict: str = "", guard_flag: str = "", preset: str = "", run: str = "",
               decision: str = "", superseded: str = "", page: int = 1) -> Response:
    found = review.masters(ctx.catalog, run=run or None, preset=preset or None)
    if verdict:
        found = [m for m in found if (m.verdict or "none") == verdict]
    if guard_flag:
        found = [m for m in found if m.guard_flagged == (guard_flag == "flagged")]
    if decision:
        found = [m for m in found if m.status == decision]
    if superseded != "1":
        found = [m for m in found if not m.superseded_by]
    page = max(page, 1)
    shown = found[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    filters = {"verdict": verdict, "guard_flag": guard_flag, "preset": preset, "run": run, "decision": decision,
               "superseded": superseded}
    more = urlencode({**{k: v for k, v in filters.items() if v}, "page": page + 1}) \
        if len(found) > page * PAGE_SIZE else None
    return ctx.render(request, "items.html", masters=shown, total=len(found), filters=filters, next_page=more,
                      presets=review.recipe_names(ctx.catalog), runs=[r["uuid"] for r in review.runs(ctx.catalog)])


@router.get("/items/{master_uuid}", response_class=HTMLResponse)
def item_page(request: Request, ctx: Ctx, master_uuid: str, notice: str = "") -> Response:
    return item_view(ctx, request, master_uuid, notice=NOTICES.get(notice))


def item_view(ctx: AppContext, request: Request, master_uuid: str, notice: str | None = None,
              error: str | None = None, status: int = 200) -> Response:
    """The item page of a master (404 for an unknown one); also what a refused action shows, with its error."""
    facts = review.master(ctx.catalog, master_uuid) if UUID.match(master_uuid) else None
    if facts is None:
        return ctx.render(request, "missing.html", status=404, what=f"master {master_uuid}")
    audit = ctx.catalog.audit(master_path=facts.path, sha256=facts.sha256)
    since = ctx.catalog.later_events(facts.uuid)
    return ctx.render(request, "item.html", status=status, m=facts, audit=audit.to_dict() if audit else None,
                      since=since, versions=review.item_masters(ctx.catalog, facts.item_uuid), notice=notice,
                      error=error, presets=list_presets(), strengths=STRENGTHS,
                      preset_values=ctx.preset_values, view_width=_view_width(facts))


@router.get("/archive/{rel:path}")
def document(ctx: Ctx, rel: str) -> Response:
    """Documents under the archive home: run reports, QA summaries, review sheets."""
    path = safe_document(ctx.cfg.home, rel)
    if path is None or path.suffix.lower() not in _DOCUMENT_TYPES:
        return plain("not found\n", 404)
    return FileResponse(path, media_type=_DOCUMENT_TYPES[path.suffix.lower()])


def _report(home: Path, run_uuid: str) -> dict[str, Any] | None:
    """The run's report JSON (tasks.reports.run_report), with links to its HTML pages."""
    path = home / "reports" / f"run-{run_uuid}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    html_name = f"run-{run_uuid}.html"
    data["html"] = f"reports/{html_name}" if (home / "reports" / html_name).is_file() else None
    qa = Path(data["qa_report"]) if data.get("qa_report") else None
    data["qa_html"] = f"reports/{qa.name}" if qa and qa.parent == home / "reports" and qa.is_file() else None
    return data


def _view_width(facts: review.MasterFacts) -> int:
    """CSS width of the before/after view: the master's largest untiled image (IIIF full/max) at
    about 1:1, small masters enlarged to a usable size (their pixels shown as blocks, see review.js)."""
    w, h = facts.width or 800, facts.height or 600
    preview_w = w * min(1.0, deepzoom.MAX_FULL / max(w, h))
    return round(max(preview_w, min(800 * w / max(w, h), 800)))
