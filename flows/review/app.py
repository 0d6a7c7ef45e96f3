"""The review web app (FastAPI, server-rendered Jinja2 pages, plain JS): runs, masters filtered
for review, and one master beside its original with the reviewer's actions.

Images reach the browser only as cached JPEGs, named by the catalogued file's uuid: previews and
256 px tiles (flows.review.previews, /img/...) and, for the item page's deep zoom, IIIF level-0
tiles with their info.json (flows.review.deepzoom, /iiif/<uuid>/<sha256[:16]>/...), shown by
OpenSeadragon (static/openseadragon/, shipped as the npm package builds it). The bytes are
checked against the catalog's sha256 before they are first cached. The cache keeps to its budget
(`review_cache_mb`, see PreviewCache): pruned at start and after each new entry, in a background
thread. See flows/review/security.py for who may use it.

This module builds the app (create_app) and keeps its preview cache; the routes are in
flows/review/routes_*.py by concern (routes_auth: the gate and login; routes_pages: runs, items,
one master, archive documents; routes_decisions: approve, reject, reprocess; routes_files: /img
and /iiif), sharing one AppContext (flows/review/context.py).
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import threading
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from catalog.repository import Catalog
from config.recipe import list_presets, load_recipe
from config.settings import Settings
from flows.review import previews, routes_auth, routes_decisions, routes_files, routes_pages
from flows.review.context import AppContext
from flows.review.queue import Launcher
from flows.review.security import Guard
from tasks.preservation.reprocess import STRENGTHS

HERE = Path(__file__).resolve().parent
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
    required from every client when given; `autorun` starts queued reprocessing at once.

    Its routes are in flows/review/routes_*.py, by concern; what they share is the app's
    AppContext (flows.review.context), `app.state.review`."""
    guard = Guard(secret=secret, loopback=loopback)
    ctx = AppContext(cfg=cfg, catalog=Catalog.open(cfg.resolved_catalog_url), guard=guard,
                     cache=PreviewCache(cfg), cache_root=preview_cache_root(cfg),
                     launcher=Launcher(cfg, cfg.home / "cache" / "reprocess-logs") if autorun else None,
                     templates=_templates(cfg),
                     preset_values={name: _preset_values(load_recipe(name)) for name in list_presets()})

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        ctx.cache.kick()  # what earlier sessions left over budget (or a lowered budget)
        yield
        ctx.cache.wait(10)
        ctx.catalog.close()

    app = FastAPI(title="restorium review", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.review = ctx
    app.state.catalog, app.state.guard, app.state.launcher, app.state.preview_cache = \
        ctx.catalog, ctx.guard, ctx.launcher, ctx.cache
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.middleware("http")(routes_auth.gate)
    app.add_exception_handler(routes_decisions.CsrfRefused, routes_decisions.csrf_refused)
    for routes in (routes_auth, routes_pages, routes_decisions, routes_files):
        app.include_router(routes.router)
    return app


def _templates(cfg: Settings) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["home_rel"] = lambda path: (
        str(Path(path).relative_to(cfg.home)) if Path(path).is_relative_to(cfg.home) else "")
    templates.env.filters["json"] = lambda value: json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True)
    return templates


def _preset_values(recipe: Any) -> dict[str, Any]:
    data = recipe.model_dump(mode="json")
    return {name: data[name.split(".")[0]][name.split(".")[1]] for name in STRENGTHS}
