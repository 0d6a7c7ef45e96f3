"""Who gets in (flows/review/security.py): the gate every request passes, and the login page
(GET /login, POST /login) that sets the session cookie."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from flows.review.context import AppContext, Ctx, plain
from flows.review.security import SESSION_COOKIE, Guard, host_header_is_loopback, safe_next

router = APIRouter()


async def gate(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """The app's HTTP middleware: lets a request through only when it may be answered."""
    ctx: AppContext = request.app.state.review
    guard = ctx.guard
    # A loopback bind without a secret trusts whoever reaches it, so only loopback names
    # may address it (no DNS rebinding); with a secret, the secret decides.
    if not guard.required and not host_header_is_loopback(request.headers.get("host", "")):
        return plain("this server answers to loopback names only\n", 403)
    if request.url.path == "/login" or guard.authenticated(request.headers.get("authorization"),
                                                           request.cookies.get(SESSION_COOKIE)):
        return await call_next(request)
    if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
        here = str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
        return HTMLResponse(_login_form(ctx.templates, here), status_code=401)
    return plain("authentication required\n", 401, headers={"WWW-Authenticate": 'Bearer realm="restorium review"'})


@router.get("/login", response_class=HTMLResponse)
def login_page(ctx: Ctx, next: str = "/", token: str | None = None) -> Response:
    if token is not None:  # the link the command prints: one click, then a cookie
        return _login(ctx.guard, token, next)
    return HTMLResponse(_login_form(ctx.templates, next))


@router.post("/login")
async def login(request: Request, ctx: Ctx) -> Response:
    form = dict(await request.form())
    return _login(ctx.guard, str(form.get("secret", "")), str(form.get("next", "/")), ctx.templates)


def _login_form(templates: Jinja2Templates, next_path: str, error: str | None = None) -> str:
    return templates.get_template("login.html").render(next=safe_next(next_path), error=error)


def _login(guard: Guard, secret: str, next_path: str, templates: Jinja2Templates | None = None) -> Response:
    if guard.required and not guard.secret_matches(secret):
        body = "wrong token or password\n"
        if templates is not None:
            body = _login_form(templates, next_path, error="Wrong token or password.")
        return HTMLResponse(body, status_code=401)
    response = RedirectResponse(safe_next(next_path), status_code=303)
    if guard.required:
        response.set_cookie(SESSION_COOKIE, guard.session_value(), httponly=True, samesite="strict", path="/")
    return response
