"""The review web app (FastAPI, server-rendered Jinja2 pages, plain JS): runs, masters filtered
for review, and one master beside its original with the reviewer's actions.

Images reach the browser only as cached JPEGs, named by the catalogued file's uuid: previews and
256 px tiles (flows.review.previews, /img/...) and, for the item page's deep zoom, IIIF level-0
tiles with their info.json (flows.review.deepzoom, /iiif/<uuid>/<sha256[:16]>/...), shown by
OpenSeadragon (static/openseadragon/, shipped as the npm package builds it). The bytes are
checked against the catalog's sha256 before they are first cached. The cache keeps to its budget
(`review_cache_mb`, see PreviewCache): pruned at start and after each new entry, in a background
thread. See flows/review/security.py for who may use it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from catalog import review
from catalog.repository import Catalog
from config.recipe import list_presets, load_recipe
from config.settings import Settings
from flows.review import actions, deepzoom, previews
from flows.review.queue import Launcher
from flows.review.security import SESSION_COOKIE, Guard, host_header_is_loopback, safe_document, safe_next
from tasks.files.atomic import sha256_file
from tasks.files.imageio import ScanError
from tasks.preservation.reprocess import STRENGTHS

HERE = Path(__file__).resolve().parent
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PAGE_SIZE = 100
NOTICES = {"approved": "Approved.", "rejected": "Rejected.", "queued": "Reprocessing queued."}
REVIEWER_COOKIE = "restorium_reviewer"
ON_SCREEN = 2  # files last served, never pruned: an item page shows a master beside its original
log = logging.getLogger(__name__)


def preview_cache_root(cfg: Settings) -> Path:
    return cfg.home / "cache" / "previews"


def prune_previews(cfg: Settings, keep: tuple[str, ...] = (), sizes: dict | None = None) -> dict[str, Any]:
    """Prune the preview cache of `cfg.home` to `cfg.review_cache_mb` (flows.review.previews.prune)."""
    return previews.prune(preview_cache_root(cfg), cfg.review_cache_mb * 2**20, keep=keep, sizes=sizes)


def describe_prune(result: dict[str, Any]) -> str:
    mb = 2**20
    text = (f"preview cache: removed {result['removed']} entr{'y' if result['removed'] == 1 else 'ies'} "
            f"({result['removed_bytes'] / mb:.1f} MiB), kept {result['kept']} ({result['kept_bytes'] / mb:.1f} MiB "
            f"of {result['max_bytes'] / mb:.0f} MiB) in {result['seconds']:.2f} s")
    if result["stale_removed"] or result["stale_bytes"]:
        text += f"; {result['stale_removed']} half-built or half-deleted folder(s) cleaned up"
    return text


class PreviewCache:
    """Keeps the preview cache to its budget: `kick()` prunes in a background thread (one at a
    time; a kick while one runs makes it run once more), keeping the ON_SCREEN files last served."""

    def __init__(self, cfg: Settings) -> None:
        self.cfg = cfg
        self.last: dict[str, Any] | None = None
        self._recent: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._guard = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._again = False
        self._sizes: dict = {}  # bytes of complete entries, remembered between prunes

    def used(self, sha256: str) -> None:
        with self._guard:
            self._recent[sha256] = None
            self._recent.move_to_end(sha256)
            while len(self._recent) > ON_SCREEN:
                self._recent.popitem(last=False)

    def kick(self) -> None:
        with self._guard:
            if not self._idle.is_set():
                self._again = True
                return
            self._idle.clear()
        threading.Thread(target=self._run, name="restorium-preview-prune", daemon=True).start()

    def wait(self, timeout: float | None = None) -> bool:
        """True once no prune runs or is due (for tests and shutdown)."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            with self._guard:
                keep, self._again = tuple(self._recent), False
            try:
                self.last = prune_previews(self.cfg, keep, self._sizes)
                if self.last["removed"] or self.last["stale_bytes"]:
                    log.info(describe_prune(self.last))
            except Exception:  # a full or read-only disk must not take the app down
                log.exception("preview cache: pruning failed")
            with self._guard:
                if not self._again:
                    self._idle.set()
                    return


def create_app(cfg: Settings, *, secret: str | None = None, loopback: bool = True, autorun: bool = True) -> FastAPI:
    """The app on the archive `cfg.home` and its catalog. `secret` (token or password) is
    required from every client when given; `autorun` starts queued reprocessing at once."""
    guard = Guard(secret=secret, loopback=loopback)
    catalog = Catalog.open(cfg.resolved_catalog_url)
    cache = PreviewCache(cfg)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        cache.kick()  # what earlier sessions left over budget (or a lowered budget)
        yield
        cache.wait(10)
        catalog.close()

    app = FastAPI(title="restorium review", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    cache_root = preview_cache_root(cfg)
    launcher = Launcher(cfg, cfg.home / "cache" / "reprocess-logs") if autorun else None
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    preset_values = {name: _preset_values(load_recipe(name)) for name in list_presets()}
    templates.env.filters["home_rel"] = lambda path: (
        str(Path(path).relative_to(cfg.home)) if Path(path).is_relative_to(cfg.home) else "")
    templates.env.filters["json"] = lambda value: json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True)
    app.state.catalog, app.state.guard, app.state.launcher, app.state.preview_cache = catalog, guard, launcher, cache
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def gate(request: Request, call_next):
        # A loopback bind without a secret trusts whoever reaches it, so only loopback names
        # may address it (no DNS rebinding); with a secret, the secret decides.
        if not guard.required and not host_header_is_loopback(request.headers.get("host", "")):
            return Response("this server answers to loopback names only\n", status_code=403, media_type="text/plain")
        if request.url.path == "/login" or guard.authenticated(request.headers.get("authorization"),
                                                               request.cookies.get(SESSION_COOKIE)):
            return await call_next(request)
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            page = templates.get_template("login.html").render(
                next=safe_next(str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")),
                error=None)
            return HTMLResponse(page, status_code=401)
        return Response("authentication required\n", status_code=401, media_type="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="restorium review"'})

    def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.update(csrf=guard.csrf_token(), reviewer=request.cookies.get(REVIEWER_COOKIE, ""),
                       secured=guard.required, busy=bool(launcher and launcher.busy))
        return templates.TemplateResponse(request, name, context, status_code=status)

    async def form_of(request: Request) -> dict[str, Any]:
        form = dict(await request.form())
        token = form.get("csrf")  # a str, unless someone posts a file under that name
        if not guard.csrf_ok(token if isinstance(token, str) else None):
            raise _Forbidden()
        return form

    @app.exception_handler(_Forbidden)
    async def forbidden(request: Request, exc: Exception) -> Response:
        return Response("missing or wrong CSRF token: reload the page\n", status_code=403, media_type="text/plain")

    # --- login -----------------------------------------------------------------------------------

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/", token: str | None = None) -> Response:
        if token is not None:  # the link the command prints: one click, then a cookie
            return _login(guard, token, next)
        return HTMLResponse(templates.get_template("login.html").render(next=safe_next(next), error=None))

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = dict(await request.form())
        return _login(guard, str(form.get("secret", "")), str(form.get("next", "/")), templates)

    # --- pages -------------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def runs_page(request: Request) -> Response:
        rows = review.runs(catalog)
        for run in rows:
            run["report"] = _report(cfg.home, run["uuid"])
        return render(request, "runs.html", runs=rows)

    @app.get("/items", response_class=HTMLResponse)
    def items_page(request: Request, verdict: str = "", guard_flag: str = "", preset: str = "", run: str = "",
                   decision: str = "", superseded: str = "", page: int = 1) -> Response:
        found = review.masters(catalog, run=run or None, preset=preset or None)
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
        return render(request, "items.html", masters=shown, total=len(found), filters=filters, next_page=more,
                      presets=review.recipe_names(catalog), runs=[r["uuid"] for r in review.runs(catalog)])

    @app.get("/items/{master_uuid}", response_class=HTMLResponse)
    def item_page(request: Request, master_uuid: str, notice: str = "") -> Response:
        return _item(request, master_uuid, notice=NOTICES.get(notice))

    def _item(request: Request, master_uuid: str, notice: str | None = None, error: str | None = None,
              status: int = 200) -> Response:
        facts = review.master(catalog, master_uuid) if _UUID.match(master_uuid) else None
        if facts is None:
            return render(request, "missing.html", status=404, what=f"master {master_uuid}")
        audit = catalog.audit(master_path=facts.path, sha256=facts.sha256)
        since = catalog.later_events(facts.uuid)
        return render(request, "item.html", status=status, m=facts, audit=audit.to_dict() if audit else None,
                      since=since, versions=review.item_masters(catalog, facts.item_uuid), notice=notice,
                      error=error, presets=list_presets(), strengths=STRENGTHS,
                      preset_values=preset_values, view_width=_view_width(facts))

    # --- actions -----------------------------------------------------------------------------------

    @app.post("/items/{master_uuid}/decision")
    async def decision(request: Request, master_uuid: str) -> Response:
        form = await form_of(request)
        by, choice = str(form.get("reviewer", "")), str(form.get("decision", ""))
        try:
            await asyncio.to_thread(actions.decide, catalog, master_uuid, choice, by=by,
                                    comment=str(form.get("comment", "")))
        except actions.Refused as exc:
            return _item(request, master_uuid, error=str(exc), status=400)
        return _back(f"/items/{master_uuid}?notice={choice}", by)

    @app.post("/items/{master_uuid}/reprocess")
    async def reprocess(request: Request, master_uuid: str) -> Response:
        form = await form_of(request)
        by = str(form.get("reviewer", ""))
        try:
            strengths = actions.parse_strengths(form)
            await asyncio.to_thread(actions.request_reprocess, catalog, master_uuid,
                                    preset=str(form.get("preset", "")), strengths=strengths, by=by,
                                    comment=str(form.get("comment", "")))
        except actions.Refused as exc:
            return _item(request, master_uuid, error=str(exc), status=400)
        if launcher is not None:
            launcher.kick()
        return _back(f"/items/{master_uuid}?notice=queued", by)

    # --- images: previews and tiles of catalogued files, by uuid ------------------------------------------

    async def cached(file_uuid: str) -> dict[str, Any] | Response:
        facts = review.file_facts(catalog, file_uuid) if _UUID.match(file_uuid) else None
        if facts is None:
            return Response("no such file\n", status_code=404, media_type="text/plain")
        sha256 = facts["sha256"]
        data = await asyncio.to_thread(previews.load, cache_root, sha256)
        if data is None:  # first view (or pruned since): the bytes must be the catalogued ones
            path = Path(facts["path"])
            if not path.is_file() or await asyncio.to_thread(sha256_file, path) != sha256:
                return Response(f"the {facts['role']} changed or went missing since it was catalogued; "
                                "run `restorium fixity`\n", status_code=409, media_type="text/plain")
            try:
                data = await asyncio.to_thread(previews.build, path, sha256, cache_root, max_pixels=cfg.max_pixels)
            except ScanError as exc:
                return Response(f"cannot show it: {exc.reason}\n", status_code=422, media_type="text/plain")
            cache.used(sha256)
            cache.kick()  # a new entry: back to the budget, in the background
            return data
        cache.used(sha256)
        return data

    async def jpeg(file_uuid: str, pick) -> Response:
        """One cached JPEG, read whole (small): an entry pruned between its manifest and the file is
        built again once, never half served."""
        for _ in range(2):
            data = await cached(file_uuid)
            if isinstance(data, Response):
                return data
            try:
                path = pick(data)
            except ValueError:
                return Response("no such tile\n", status_code=404, media_type="text/plain")
            try:
                body = await asyncio.to_thread(path.read_bytes)
            except FileNotFoundError:
                continue
            return Response(body, media_type="image/jpeg", headers=_IMMUTABLE)
        return Response("the preview cache is being pruned; try again\n", status_code=503, media_type="text/plain",
                        headers={"Retry-After": "1"})

    @app.get("/img/{file_uuid}/manifest.json")
    async def manifest(file_uuid: str) -> Response:
        data = await cached(file_uuid)
        return data if isinstance(data, Response) else JSONResponse(data, headers=_IMMUTABLE)

    @app.get("/img/{file_uuid}/preview-{edge}.jpg")
    async def preview(file_uuid: str, edge: int) -> Response:
        if edge not in previews.PREVIEW_EDGES:
            return Response("no such preview size\n", status_code=404, media_type="text/plain")
        return await jpeg(file_uuid, lambda data: previews.preview_path(cache_root, data["sha256"], edge))

    @app.get("/img/{file_uuid}/tile-{col}-{row}.jpg")
    async def tile(file_uuid: str, col: int, row: int) -> Response:
        return await jpeg(file_uuid, lambda data: previews.tile_path(cache_root, data["sha256"], data, col, row))

    # --- deep zoom: IIIF level-0 tiles of catalogued files, by uuid and content ------------------------------

    building: dict[str, asyncio.Future] = {}  # one build per folder, however many requests wait for it

    async def tiles_of(facts: dict[str, Any], base_url: str) -> Path | Response:
        file_uuid, sha256 = facts["uuid"], facts["sha256"]
        folder = await asyncio.to_thread(deepzoom.ready, cache_root, file_uuid, sha256)
        if folder is not None:
            return folder
        key = previews.iiif_key(file_uuid, sha256)
        task = building.get(key)
        if task is None:
            task = asyncio.ensure_future(asyncio.to_thread(
                deepzoom.build, Path(facts["path"]), cache_root, file_uuid, sha256, base_url=base_url,
                max_pixels=cfg.max_pixels))
            building[key] = task

            def done(finished: asyncio.Future, key: str = key) -> None:
                building.pop(key, None)
                if not finished.cancelled() and finished.exception() is None:
                    cache.used(sha256)  # on screen: the prune this starts keeps it
                    cache.kick()  # a new folder: back to the budget, in the background

            task.add_done_callback(done)
        try:
            return await asyncio.shield(task)  # a client that goes away does not stop the build
        except deepzoom.Changed:
            return Response(f"the {facts['role']} changed or went missing since it was catalogued; "
                            "run `restorium fixity`\n", status_code=409, media_type="text/plain")
        except ScanError as exc:
            return Response(f"cannot show it: {exc.reason}\n", status_code=422, media_type="text/plain")

    @app.get("/iiif/{file_uuid}/{version}/{rest:path}")
    async def iiif(request: Request, file_uuid: str, version: str, rest: str) -> Response:
        """info.json and JPEG tiles only; `version` is the file's sha256[:16], so a URL names one content."""
        facts = review.file_facts(catalog, file_uuid) if _UUID.match(file_uuid) else None
        if facts is None or version != facts["sha256"][:16] or not deepzoom.is_request(rest):
            return Response("no such image or tile\n", status_code=404, media_type="text/plain")
        base_url = str(request.base_url)
        for _ in range(2):  # a folder pruned between finding it and reading from it is made again, once
            folder = await tiles_of(facts, base_url)
            if isinstance(folder, Response):
                return folder
            cache.used(facts["sha256"])
            path = deepzoom.request_path(folder, rest)
            if path is None:  # not reached: is_request above
                return Response("no such tile\n", status_code=404, media_type="text/plain")
            try:
                if rest == "info.json":
                    service = deepzoom.service_id(base_url, file_uuid, facts["sha256"])
                    return JSONResponse(await asyncio.to_thread(deepzoom.info, folder, service), headers=_IMMUTABLE)
                body = await asyncio.to_thread(path.read_bytes)
            except (FileNotFoundError, NotADirectoryError):
                if (folder / "info.json").is_file():  # the folder is there: no such tile in its pyramid
                    return Response("no such tile\n", status_code=404, media_type="text/plain")
                continue
            return Response(body, media_type="image/jpeg", headers=_IMMUTABLE)
        return Response("the preview cache is being pruned; try again\n", status_code=503, media_type="text/plain",
                        headers={"Retry-After": "1"})

    # --- documents under the archive home: run reports, QA summaries, review sheets ----------------------

    @app.get("/archive/{rel:path}")
    def document(rel: str) -> Response:
        path = safe_document(cfg.home, rel)
        if path is None or path.suffix.lower() not in _DOCUMENT_TYPES:
            return Response("not found\n", status_code=404, media_type="text/plain")
        return FileResponse(path, media_type=_DOCUMENT_TYPES[path.suffix.lower()])

    return app


class _Forbidden(Exception):
    pass


_IMMUTABLE = {"Cache-Control": "private, max-age=31536000, immutable"}  # keyed by uuid, content-checked
_DOCUMENT_TYPES = {".html": "text/html; charset=utf-8", ".json": "application/json", ".png": "image/png",
                   ".jpg": "image/jpeg", ".md": "text/markdown; charset=utf-8"}


def _login(guard: Guard, secret: str, next_path: str, templates: Jinja2Templates | None = None) -> Response:
    if guard.required and not guard.secret_matches(secret):
        body = "wrong token or password\n"
        if templates is not None:
            body = templates.get_template("login.html").render(next=safe_next(next_path),
                                                               error="Wrong token or password.")
        return HTMLResponse(body, status_code=401)
    response = RedirectResponse(safe_next(next_path), status_code=303)
    if guard.required:
        response.set_cookie(SESSION_COOKIE, guard.session_value(), httponly=True, samesite="strict", path="/")
    return response


def _back(url: str, reviewer: str) -> Response:
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(REVIEWER_COOKIE, " ".join(reviewer.split())[:100], samesite="strict", path="/")
    return response


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


def _preset_values(recipe: Any) -> dict[str, Any]:
    data = recipe.model_dump(mode="json")
    return {name: data[name.split(".")[0]][name.split(".")[1]] for name in STRENGTHS}
