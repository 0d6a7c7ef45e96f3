"""fetch: fails fast and clearly offline, verifies what it downloads, leaves no partial file."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import models.cards as cards
from models.weights import FetchError, fetch, resolve

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Talk to the local test servers directly, whatever proxy this machine has."""
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers: a dead network path."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/realesr-general-x4v3.pth"
    sock.close()


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):  # keep pytest output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_fails_fast_with_url_and_reason(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/realesr-general-x4v3.pth"
    start = time.monotonic()
    with pytest.raises(FetchError) as err:
        fetch("realesr-general-x4v3", tmp_path, timeout=5, url=url)
    assert time.monotonic() - start < 5
    message = str(err.value)
    assert url in message and "refused" in message.lower()
    assert "restorium models import PATH --name realesr-general-x4v3" in message
    assert list(tmp_path.iterdir()) == [], "a failed fetch leaves nothing behind"


def test_unknown_host_fails_fast(tmp_path: Path) -> None:
    url = "http://restorium-no-such-host.invalid/realesr-general-x4v3.pth"  # .invalid never resolves
    start = time.monotonic()
    with pytest.raises(FetchError, match="restorium-no-such-host.invalid"):
        fetch("realesr-general-x4v3", tmp_path, timeout=3, url=url)
    assert time.monotonic() - start < 5


def test_silent_server_is_bounded_by_timeout(tmp_path: Path, silent_server: str) -> None:
    start = time.monotonic()
    with pytest.raises(FetchError) as err:
        fetch("realesr-general-x4v3", tmp_path, timeout=1, url=silent_server)
    assert time.monotonic() - start < 4
    assert silent_server in str(err.value) and "timed out" in str(err.value).lower()
    assert list(tmp_path.iterdir()) == []


def test_model_without_url_says_import(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="no official download URL.*models import PATH --name ffdnet_color"):
        fetch("ffdnet_color", tmp_path)


def _serve_card(monkeypatch, root: Path, shared_models: Path, sha256: str) -> str:
    src = shared_models / "realesr-animevideov3.pth"
    (root / "anime.pth").write_bytes(src.read_bytes())
    card = dataclasses.replace(cards.get_card("realesr-animevideov3"), sha256=sha256)
    monkeypatch.setitem(cards.CARDS, card.name, card)
    return card.name


def test_fetch_downloads_and_verifies(tmp_path: Path, shared_models: Path, file_server, monkeypatch) -> None:
    base, root = file_server
    expected = hashlib.sha256((shared_models / "realesr-animevideov3.pth").read_bytes()).hexdigest()
    name = _serve_card(monkeypatch, root, shared_models, expected)
    dest = tmp_path / "models"
    resolved = fetch(name, dest, timeout=5, url=f"{base}/anime.pth")
    assert resolved.sha256 == expected and resolved.matches_published
    assert sorted(p.name for p in dest.iterdir() if not p.name.startswith("registry.json")) == [
        "realesr-animevideov3.pth"
    ]
    assert resolve(name, dest).sha256 == expected
    # Already there and verified: nothing is downloaded again (the server is not even asked).
    assert fetch(name, dest, timeout=5, url=f"{base}/gone.pth").sha256 == expected


def test_fetch_rejects_a_file_that_does_not_verify(tmp_path: Path, shared_models: Path, file_server, monkeypatch) -> None:
    base, root = file_server
    name = _serve_card(monkeypatch, root, shared_models, "0" * 64)
    dest = tmp_path / "models"
    with pytest.raises(FetchError, match="does not verify"):
        fetch(name, dest, timeout=5, url=f"{base}/anime.pth")
    assert list(dest.iterdir()) == []


def test_fetch_without_published_hash_checks_the_file_loads(tmp_path: Path, file_server, monkeypatch) -> None:
    base, root = file_server
    (root / "junk.pth").write_bytes(b"<html>rate limited</html>")
    card = dataclasses.replace(cards.get_card("realesr-general-x4v3"), sha256=None)
    monkeypatch.setitem(cards.CARDS, card.name, card)
    dest = tmp_path / "models"
    with pytest.raises(FetchError, match="not usable"):
        fetch(card.name, dest, timeout=5, url=f"{base}/junk.pth")
    assert list(dest.iterdir()) == []


def test_http_error_is_reported(tmp_path: Path, file_server) -> None:
    base, _ = file_server
    with pytest.raises(FetchError, match="404"):
        fetch("realesr-general-x4v3", tmp_path, timeout=5, url=f"{base}/missing.pth")


def test_fetch_force_replaces_an_imported_copy(tmp_path: Path, shared_models: Path, file_server, monkeypatch) -> None:
    from models.weights import import_weights

    base, root = file_server
    published = hashlib.sha256((shared_models / "realesr-animevideov3.pth").read_bytes()).hexdigest()
    name = _serve_card(monkeypatch, root, shared_models, published)
    dest = tmp_path / "models"
    # A local file under the model's name that is not the published one (here: a retrained copy).
    other = tmp_path / "retrained.pth"
    import torch

    state = torch.load(shared_models / "realesr-animevideov3.pth", map_location="cpu", weights_only=True)
    state["params"]["body.0.bias"] += 0.01
    torch.save(state, other)
    import_weights(other, name, dest)
    with pytest.raises(FetchError, match="--force"):
        fetch(name, dest, timeout=5, url=f"{base}/anime.pth")
    assert fetch(name, dest, timeout=5, url=f"{base}/anime.pth", force=True).sha256 == published
    assert resolve(name, dest).matches_published
