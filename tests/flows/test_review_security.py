"""The review app's doors, tried over HTTP against the real app: the real `restorium review`
command in a subprocess on a non-loopback bind (0.0.0.0, password file), raw requests with
crafted paths (http.client sends them as written), and the app in-process on loopback.

The archive is a real catalog with real scans ingested (no model run needed: the doors do not
depend on how a master was made); the scans live outside the archive home, as in production.
"""

from __future__ import annotations

import http.client
import os
import time
import warnings
from pathlib import Path
from urllib.parse import quote

import pytest
from PIL import Image
from review_server import review_server
from typer.testing import CliRunner

from catalog import Catalog
from config.settings import Settings
from flows.actors import software_agent
from flows.cli import app as cli
from tasks.files.ingest import identifier_for, ingest_file, ingest_steps

with warnings.catch_warnings():  # starlette suggests httpx2; httpx is what is installed
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

PASSWORD = "correct horse battery staple"
SECRET_TEXT = "TOP-SECRET-OUTSIDE-THE-ARCHIVE"


@pytest.fixture(scope="module")
def archive(tmp_path_factory, shared_data) -> dict:
    """A catalog with two real scans ingested; documents, a secret and a symlink laid out to attack."""
    root = tmp_path_factory.mktemp("review-security")
    scans, home = root / "scans", root / "archive"
    scans.mkdir()
    Image.open(shared_data / "old_photos/old/h.png").convert("RGB").crop((0, 0, 300, 200)).save(scans / "a.png")
    Image.open(shared_data / "old_photos/old/f.png").convert("RGB").crop((0, 0, 120, 90)).save(scans / "b.png")
    (root / "secret.txt").write_text(SECRET_TEXT)
    (home / "reports").mkdir(parents=True)
    (home / "reviews").mkdir()
    (home / "reports" / "run-1.html").write_text("<p>run report</p>")
    (home / "reports" / "leak.html").symlink_to(root / "secret.txt")
    (home / "reviews" / "up").symlink_to(root, target_is_directory=True)
    password_file = root / "password.txt"
    password_file.write_text(PASSWORD + "\n")
    cfg = Settings(home=home)
    originals = {}
    with Catalog.open(cfg.resolved_catalog_url) as catalog:
        for name in ("a.png", "b.png"):
            facts = ingest_file(scans / name)
            done = catalog.record_ingest(None, [(facts, identifier_for(scans / name),
                                                 ingest_steps(facts, [software_agent()]))])
            originals[name] = done[facts.sha256].original_uuid
    return {"root": root, "home": home, "scans": scans, "cfg": cfg, "password_file": password_file,
            "originals": originals}


@pytest.fixture(scope="module")
def exposed(archive, free_port):
    """`restorium review --host 0.0.0.0 --password-file F`, the real command, reached via loopback."""
    port = free_port()
    with review_server(archive["home"], port, archive["root"] / "server.log", "--host", "0.0.0.0",
                       "--password-file", str(archive["password_file"]), "--queue-only"):
        yield port


def _raw(port: int, method: str, path: str, headers: dict[str, str] | None = None,
         body: str | None = None) -> tuple[int, str, dict[str, str]]:
    """One request with the path exactly as written (no client-side normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        data = body.encode() if body is not None else None
        if data is not None:
            conn.putheader("Content-Type", "application/x-www-form-urlencoded")
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace"), dict(response.getheaders())
    finally:
        conn.close()


BEARER = {"Authorization": f"Bearer {PASSWORD}"}


def _events(archive) -> int:
    with Catalog.open(archive["cfg"].resolved_catalog_url) as catalog:
        return catalog.count_rows()["events"]


# --- binding ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.10.5", "::", "reviews.example.org"])
def test_a_non_loopback_bind_without_a_secret_does_not_start(host, archive) -> None:
    result = CliRunner().invoke(cli, ["review", "--host", host, "--home", str(archive["home"])])
    assert result.exit_code == 2
    assert "not a loopback address" in result.output and "--password-file" in result.output


def test_weak_or_doubled_secrets_are_refused(archive) -> None:
    result = CliRunner().invoke(cli, ["review", "--host", "0.0.0.0", "--token", "short"])
    assert result.exit_code == 2 and "at least 12 characters" in result.output
    result = CliRunner().invoke(cli, ["review", "--token", "x" * 20, "--password-file", str(archive["password_file"])])
    assert result.exit_code == 2 and "not both" in result.output


# --- authentication on the exposed server ------------------------------------------------------------------

def test_every_route_refuses_a_request_without_the_secret(exposed, archive) -> None:
    original = archive["originals"]["a.png"]
    paths = ["/", "/items", f"/items/{original}", f"/img/{original}/manifest.json",
             f"/img/{original}/preview-320.jpg", f"/img/{original}/tile-0-0.jpg", "/archive/reports/run-1.html",
             "/static/review.js", "/nowhere"]
    for path in paths:
        for headers in ({}, {"Authorization": "Bearer not-the-password"}, {"Cookie": "restorium_session=forged"},
                        {"Authorization": f"Basic {PASSWORD}"}):
            status, body, _ = _raw(exposed, "GET", path, headers)
            assert status == 401, (path, headers, status)
            assert SECRET_TEXT not in body and "run report" not in body
    # a browser is shown the sign-in form, still with 401
    status, body, _ = _raw(exposed, "GET", "/items", {"Accept": "text/html"})
    assert status == 401 and 'name="secret"' in body
    before = _events(archive)
    status, _, _ = _raw(exposed, "POST", f"/items/{original}/decision", {},
                        "decision=approved&reviewer=Mallory&comment=x&csrf=x")
    assert status == 401
    assert _events(archive) == before


def test_the_secret_opens_the_app_by_header_or_by_signing_in(exposed, archive) -> None:
    assert _raw(exposed, "GET", "/items", BEARER)[0] == 200
    assert _raw(exposed, "GET", "/archive/reports/run-1.html", BEARER)[:2] == (200, "<p>run report</p>")
    status, _, _ = _raw(exposed, "POST", "/login", {}, "secret=wrong-password-here&next=/items")
    assert status == 401
    status, _, headers = _raw(exposed, "POST", "/login", {}, f"secret={PASSWORD.replace(' ', '+')}&next=/items")
    assert status == 303 and headers["location"] == "/items"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    session = cookie.split(";")[0]
    assert _raw(exposed, "GET", "/items", {"Cookie": session})[0] == 200
    # the redirect after signing in stays on this server
    status, _, headers = _raw(exposed, "POST", "/login", {},
                              f"secret={PASSWORD.replace(' ', '+')}&next=//evil.example/x")
    assert status == 303 and headers["location"] == "/"


def test_a_sign_in_link_with_the_token_sets_the_session(exposed) -> None:
    status, _, headers = _raw(exposed, "GET", f"/login?token={quote(PASSWORD)}&next=/items")
    assert status == 303 and headers["location"] == "/items"
    assert _raw(exposed, "GET", "/items", {"Cookie": headers["set-cookie"].split(";")[0]})[0] == 200
    assert _raw(exposed, "GET", f"/login?token={quote('not the password')}")[0] == 401


# --- paths from the URL never leave the archive home --------------------------------------------------------

CRAFTED = [
    "/archive/reports/../catalog.sqlite",
    "/archive/../catalog.sqlite",
    "/archive/reports/../../secret.txt",
    "/archive/%2e%2e/secret.txt",
    "/archive/reports/%2e%2e/%2e%2e/secret.txt",
    "/archive/reports/%2E%2E%2F%2E%2E%2Fsecret.txt",
    "/archive/reports/%252e%252e/%252e%252e/secret.txt",
    "/archive/reports/..%5c..%5csecret.txt",
    "/archive//etc/passwd",
    "/archive/%2Fetc%2Fpasswd",
    "/archive/reports//etc/passwd",
    "/archive/reports/leak.html",  # a symlink out of the home
    "/archive/reviews/up/secret.txt",  # a symlinked folder out of the home
    "/archive/catalog.sqlite",  # inside the home, but not a document
    "/archive/reports/%00/../../secret.txt",
    "/static/../../secret.txt",
    "/static/%2e%2e/%2e%2e/%2e%2e/secret.txt",
    "/static/%2e%2e/app.py",
    "/img/..%2f..%2fsecret.txt/manifest.json",
    "/img/%2e%2e/preview-320.jpg",
    "/items/..%2f..%2fsecret.txt",
]


@pytest.mark.parametrize("path", CRAFTED)
def test_a_crafted_path_is_refused(path, exposed) -> None:
    status, body, _ = _raw(exposed, "GET", path, BEARER)
    assert status in (400, 403, 404), (path, status, body[:200])
    assert SECRET_TEXT not in body and "SQLite format" not in body and "root:" not in body
    assert "def create_app" not in body


def test_the_document_helper_refuses_what_the_url_cannot_express(archive) -> None:
    from flows.review.security import safe_document

    home = archive["home"]
    assert safe_document(home, "reports/run-1.html") == (home / "reports/run-1.html").resolve()
    for rel in ["/etc/passwd", str(archive["root"] / "secret.txt"), "reports/../../secret.txt", "reports/leak.html",
                "reviews/up/secret.txt", "catalog.sqlite", "reports\\..\\..\\secret.txt", "reports/.hidden",
                "reports/a\x00b", ""]:
        assert safe_document(home, rel) is None, rel


# --- loopback without a secret: no DNS rebinding, no cross-site forms --------------------------------------

@pytest.fixture(scope="module")
def loopback(archive):
    from flows.review.app import create_app

    with TestClient(create_app(archive["cfg"], autorun=False), base_url="http://127.0.0.1:8765") as client:
        yield client


def test_a_loopback_server_answers_only_to_loopback_names(loopback) -> None:
    assert loopback.get("/items").status_code == 200
    assert loopback.get("/items", headers={"Host": "localhost:8765"}).status_code == 200
    assert loopback.get("/items", headers={"Host": "[::1]:8765"}).status_code == 200
    for host in ("evil.example", "evil.example:8765", "127.0.0.1.evil.example", "10.0.0.7:8765"):
        assert loopback.get("/items", headers={"Host": host}).status_code == 403, host


def test_a_form_without_the_csrf_token_records_nothing(loopback, archive) -> None:
    original = archive["originals"]["a.png"]
    before = _events(archive)
    response = loopback.post(f"/items/{original}/decision",
                             data={"decision": "approved", "reviewer": "Mallory", "comment": ""},
                             headers={"Origin": "http://evil.example"})
    assert response.status_code == 403
    response = loopback.post(f"/items/{original}/reprocess",
                             data={"preset": "portrait", "reviewer": "Mallory", "csrf": "guessed"})
    assert response.status_code == 403
    assert _events(archive) == before


# --- images go out as cached previews and tiles, by catalogue uuid -------------------------------------------

def test_previews_and_tiles_are_made_once_from_the_catalogued_bytes(loopback, archive) -> None:
    original = archive["originals"]["a.png"]
    manifest = loopback.get(f"/img/{original}/manifest.json").json()
    assert (manifest["width"], manifest["height"], manifest["cols"], manifest["rows"]) == (300, 200, 2, 1)
    thumb = loopback.get(f"/img/{original}/preview-320.jpg")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    tile = loopback.get(f"/img/{original}/tile-1-0.jpg")
    assert tile.status_code == 200 and tile.content[:2] == b"\xff\xd8"
    from io import BytesIO

    assert Image.open(BytesIO(tile.content)).size == (300 - 256, 200)
    cached = archive["home"] / "cache/previews" / manifest["sha256"][:2] / manifest["sha256"]
    assert (cached / "manifest.json").is_file()
    stamp = (cached / "manifest.json").stat().st_mtime_ns
    assert loopback.get(f"/img/{original}/preview-1600.jpg").status_code == 200
    assert (cached / "manifest.json").stat().st_mtime_ns == stamp  # not made again
    assert loopback.get(f"/img/{original}/tile-5-0.jpg").status_code == 404
    assert loopback.get(f"/img/{original}/preview-999.jpg").status_code == 404
    assert loopback.get("/img/00000000-0000-4000-8000-000000000000/manifest.json").status_code == 404


def test_a_file_changed_since_it_was_catalogued_is_not_shown(loopback, archive) -> None:
    original = archive["originals"]["b.png"]
    scan = archive["scans"] / "b.png"
    Image.open(scan).rotate(90).save(scan)  # someone edits the scan in place
    response = loopback.get(f"/img/{original}/manifest.json")
    assert response.status_code == 409 and "fixity" in response.text


# --- the preview cache keeps to its budget (RESTORIUM_REVIEW_CACHE_MB) ------------------------------------------

CACHE_MB = 2  # the eight scans below make about 3 MiB of previews and tiles; any two fit in 2 MiB


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory, shared_data) -> dict:
    """An archive of eight real scans (whole, 0.1-0.8 MiB of previews and tiles each) whose review
    app may keep 2 MiB of previews."""
    root = tmp_path_factory.mktemp("review-cache")
    scans, home = root / "scans", root / "archive"
    scans.mkdir()
    names = [f"{n}.png" for n in "abcdefgh"]
    for name in names:
        Image.open(shared_data / "old_photos/old" / name).convert("RGB").save(scans / name)
    cfg = Settings(home=home, review_cache_mb=CACHE_MB)
    originals = {}
    with Catalog.open(cfg.resolved_catalog_url) as catalog:
        for name in names:
            facts = ingest_file(scans / name)
            done = catalog.record_ingest(None, [(facts, identifier_for(scans / name),
                                                 ingest_steps(facts, [software_agent()]))])
            originals[name] = (done[facts.sha256].original_uuid, facts.sha256)
    return {"cfg": cfg, "scans": scans, "originals": originals, "cache": home / "cache/previews"}


def _cache_bytes(cache: Path) -> int:
    return sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())


def _view(client, uuid: str) -> dict[str, bytes]:
    """Everything the item page would fetch of one file: its manifest, both previews, every tile."""
    manifest = client.get(f"/img/{uuid}/manifest.json")
    assert manifest.status_code == 200
    grid = manifest.json()
    paths = [f"preview-{edge}.jpg" for edge in (320, 1600)]
    paths += [f"tile-{c}-{r}.jpg" for r in range(grid["rows"]) for c in range(grid["cols"])]
    got = {}
    for path in paths:
        response = client.get(f"/img/{uuid}/{path}")
        assert response.status_code == 200 and response.content[:2] == b"\xff\xd8", (path, response.status_code)
        got[path] = response.content
    return got


def test_the_app_prunes_what_earlier_sessions_left_over_budget_at_start(budgeted) -> None:
    from flows.review import previews
    from flows.review.app import create_app

    for i, (name, (_, sha)) in enumerate(sorted(budgeted["originals"].items())):
        previews.build(budgeted["scans"] / name, sha, budgeted["cache"], max_pixels=10**9)
        stamp = time.time() - 3600 + i  # a.png used longest ago
        os.utime(previews.cache_dir(budgeted["cache"], sha), (stamp, stamp))
    assert _cache_bytes(budgeted["cache"]) > CACHE_MB * 2**20
    app = create_app(budgeted["cfg"], autorun=False)
    with TestClient(app, base_url="http://127.0.0.1:8765") as client:
        assert app.state.preview_cache.wait(30)
        assert _cache_bytes(budgeted["cache"]) <= CACHE_MB * 2**20
        result = app.state.preview_cache.last
        assert result["removed"] >= 1 and not result["over_budget"]
        left = {name for name, (_, sha) in budgeted["originals"].items()
                if previews.cache_dir(budgeted["cache"], sha).is_dir()}
        assert "h.png" in left and "a.png" not in left  # the oldest went first
        assert client.get("/items").status_code == 200


def test_viewing_many_files_keeps_the_cache_under_budget_and_every_image_serves(budgeted) -> None:
    from flows.review import previews
    from flows.review.app import create_app

    app = create_app(budgeted["cfg"], autorun=False)
    first = {}
    with TestClient(app, base_url="http://127.0.0.1:8765") as client:
        for name, (uuid, _) in sorted(budgeted["originals"].items()):
            first[name] = _view(client, uuid)
            assert app.state.preview_cache.wait(30)
            assert _cache_bytes(budgeted["cache"]) <= CACHE_MB * 2**20, name
        assert not list(budgeted["cache"].rglob(".*"))  # nothing half-built or half-deleted left behind
        # the first files were pruned long ago: viewing them again builds them again, the same bytes
        for name in ("a.png", "b.png"):
            uuid, sha = budgeted["originals"][name]
            assert not previews.cache_dir(budgeted["cache"], sha).exists()
            assert _view(client, uuid) == first[name]
            assert app.state.preview_cache.wait(30)
            assert _cache_bytes(budgeted["cache"]) <= CACHE_MB * 2**20
        assert client.get("/").status_code == 200 and client.get("/items").status_code == 200


def test_the_preview_cache_can_be_pruned_from_the_command_line(budgeted) -> None:
    home = str(budgeted["cfg"].home)
    assert _cache_bytes(budgeted["cache"]) > 0
    result = CliRunner().invoke(cli, ["review", "--prune-cache", "--home", home])  # within budget: nothing to do
    assert result.exit_code == 0 and "removed 0 entries" in result.output, result.output
    result = CliRunner().invoke(cli, ["review", "--prune-cache", "--cache-mb", "0", "--home", home])
    assert result.exit_code == 0 and "kept 0 (0.0 MiB of 0 MiB)" in result.output, result.output
    assert _cache_bytes(budgeted["cache"]) == 0
    result = CliRunner().invoke(cli, ["review", "--prune-cache", "--cache-mb", "-1", "--home", home])
    assert result.exit_code == 2
