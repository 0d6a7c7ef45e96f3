"""What every route of the review app shares: one AppContext per app (`app.state.review`), made by
flows.review.app.create_app and handed to a route as a parameter annotated `Ctx`; plus the small
helpers the route modules (flows/review/routes_*.py) have in common."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from catalog.repository import Catalog
from config.settings import Settings
from flows.review.queue import Launcher
from flows.review.security import Guard

if TYPE_CHECKING:  # flows.review.app builds the context, and imports the route modules that use it
    from flows.review.app import PreviewCache

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
REVIEWER_COOKIE = "restorium_reviewer"
IMMUTABLE = {"Cache-Control": "private, max-age=31536000, immutable"}  # keyed by uuid, content-checked


@dataclass
class AppContext:
    """The archive's settings and catalog, the preview cache (and its folder), the reprocessing
    launcher (None: no autorun), the page templates and the guard of one app."""

    cfg: Settings
    catalog: Catalog
    guard: Guard
    cache: PreviewCache
    cache_root: Path
    launcher: Launcher | None
    templates: Jinja2Templates
    preset_values: dict[str, dict[str, Any]]  # each preset's strengths, for the reprocess form
    building: dict[str, asyncio.Future] = field(default_factory=dict)  # deep-zoom builds running, by folder key

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """A page, with what every page shows: the CSRF token, the reviewer's name, the lock, the queue."""
        context.update(csrf=self.guard.csrf_token(), reviewer=request.cookies.get(REVIEWER_COOKIE, ""),
                       secured=self.guard.required, busy=bool(self.launcher and self.launcher.busy))
        return self.templates.TemplateResponse(request, name, context, status_code=status)


async def app_context(request: Request) -> AppContext:
    return request.app.state.review


Ctx = Annotated[AppContext, Depends(app_context)]


def plain(body: str, status: int, headers: dict[str, str] | None = None) -> Response:
    """A text/plain answer: errors and refusals."""
    return Response(body, status_code=status, media_type="text/plain", headers=headers)
