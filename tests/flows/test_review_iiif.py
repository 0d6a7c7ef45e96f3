"""The review app's deep-zoom tiles (/iiif/<file uuid>/<sha256[:16]>/..., flows.review.deepzoom)
over HTTP against the real app in-process, and their place in the preview cache's budget.

A real catalog with real scans ingested (an 8-bit PNG and a 16-bit TIFF, whole photographs from
../shared/data, no model run needed: the route serves any catalogued file); real libvips tiling;
a real file system. What the browser does with the tiles is tests/flows/test_review_app.py.
"""

from __future__ import annotations

import io
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from catalog import Catalog
from config.settings import Settings
from flows.actors import software_agent
from flows.review import deepzoom, previews
from tasks.files.atomic import sha256_file
from tasks.files.iiif_tiles import tile_requests, validate_iiif
from tasks.files.ingest import identifier_for, ingest_file, ingest_steps

with warnings.catch_warnings():  # starlette suggests httpx2; httpx is what is installed
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

BASE = "http://127.0.0.1:8765"
PASSWORD = "correct horse battery staple"
HOUR = 3600.0


def _ingest(cfg: Settings, scans: Path, names: list[str]) -> dict[str, tuple[str, str]]:
    """name -> (file uuid, sha256) of each scan, catalogued as `restorium ingest` would."""
    out = {}
    with Catalog.open(cfg.resolved_catalog_url) as catalog:
        for name in names:
            facts = ingest_file(scans / name)
            done = catalog.record_ingest(None, [(facts, identifier_for(scans / name),
                                                 ingest_steps(facts, [software_agent()]))])
            out[name] = (done[facts.sha256].original_uuid, facts.sha256)
    return out


@pytest.fixture(scope="module")
def archive(tmp_path_factory, shared_data) -> dict:
    """Scans outside the home: a 700x700 PNG (two tiles a side at full size), a 16-bit TIFF, one
    that will be edited in place after it was catalogued, and a small one."""
    root = tmp_path_factory.mktemp("review-iiif")
    scans, home = root / "scans", root / "archive"
    scans.mkdir()
    Image.open(shared_data / "old_photos/old/g.png").convert("RGB").save(scans / "g.png")
    rgb = np.asarray(Image.open(shared_data / "old_photos/old/f.png").convert("RGB"))[:600, :520]
    tifffile.imwrite(scans / "print16.tif", rgb.astype(np.uint16) * 257, photometric="rgb")
    Image.open(shared_data / "old_photos/old/h.png").convert("RGB").save(scans / "edited.png")
    Image.open(shared_data / "old_photos/old/a.png").convert("RGB").save(scans / "a.png")
    cfg = Settings(home=home)
    files = _ingest(cfg, scans, ["g.png", "print16.tif", "edited.png", "a.png"])
    return {"root": root, "home": home, "scans": scans, "cfg": cfg, "files": files,
            "cache": home / "cache/previews"}


@pytest.fixture(scope="module")
def client(archive):
    from flows.review.app import create_app

    with TestClient(create_app(archive["cfg"], autorun=False), base_url=BASE) as c:
        yield c


def _url(files, name: str, rest: str = "info.json") -> str:
    uuid, sha = files[name]
    return f"/iiif/{uuid}/{sha[:16]}/{rest}"


def test_info_json_and_every_tile_it_promises_are_served_as_jpeg(client, archive) -> None:
    files = archive["files"]
    for name, (width, height) in {"g.png": (700, 700), "print16.tif": (520, 600)}.items():
        uuid, sha = files[name]
        response = client.get(_url(files, name))
        assert response.status_code == 200 and response.headers["content-type"] == "application/json"
        info = response.json()
        # the id leads back to this app, so OpenSeadragon asks it for the tiles
        assert info["id"] == f"{BASE}/iiif/{uuid}/{sha[:16]}"
        assert (info["width"], info["height"], info["profile"]) == (width, height, "level0")
        assert info["tiles"][0]["width"] == deepzoom.TILE_SIZE
        requests = [(rel, w, h) for rel, w, h in tile_requests(info)]
        requests += [(f"full/{s['width']},{s['height']}/0/default.jpg", s["width"], s["height"]) for s in info["sizes"]]
        requests.append(("full/max/0/default.jpg", info["sizes"][-1]["width"], info["sizes"][-1]["height"]))
        assert len(requests) > 3
        for rel, w, h in requests:
            tile = client.get(_url(files, name, rel))
            assert tile.status_code == 200 and tile.headers["content-type"] == "image/jpeg", (rel, tile.status_code)
            assert tile.content[:3] == b"\xff\xd8\xff" and Image.open(io.BytesIO(tile.content)).size == (w, h), rel
            assert "immutable" in tile.headers["cache-control"]
        # made once, where the preview cache keeps it, and a valid level-0 service
        folder = archive["cache"] / "iiif" / uuid / sha[:16]
        assert folder == previews.iiif_dir(archive["cache"], uuid, sha) and validate_iiif(folder) == []
        assert not list(folder.parent.glob(".*"))  # no staging folder left
    # full-resolution tiles of the 16-bit TIFF are its pixels rounded to 8 bits (JPEG: within a few levels)
    first = client.get(_url(files, "print16.tif", "0,0,512,512/512,512/0/default.jpg")).content
    scan = tifffile.imread(archive["scans"] / "print16.tif")[:512, :512]
    shown = np.asarray(Image.open(io.BytesIO(first)).convert("RGB")).astype(int)
    assert np.abs(shown - np.round(scan / 257).astype(int)).mean() < 2.0


def test_tiles_are_made_once_and_info_json_names_the_host_asked(client, archive) -> None:
    files = archive["files"]
    uuid, sha = files["g.png"]
    client.get(_url(files, "g.png"))
    folder = previews.iiif_dir(archive["cache"], uuid, sha)
    stamps = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    other = client.get(_url(files, "g.png"), headers={"Host": "localhost:8765"}).json()
    assert other["id"] == f"http://localhost:8765/iiif/{uuid}/{sha[:16]}"
    assert client.get(_url(files, "g.png", "0,0,512,512/512,512/0/default.jpg")).status_code == 200
    # nothing rewritten, nothing made again
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()} == stamps


@pytest.mark.parametrize("rest", [
    "manifest-sha256.txt",  # in the folder, but no image request
    "full/max/0/default.png", "full/max/0/default.tif", "full/max/90/default.jpg", "full/max/0/gray.jpg",
    "info.json/../manifest-sha256.txt", "../../../../catalog.sqlite", "%2e%2e/%2e%2e/%2e%2e/%2e%2e/catalog.sqlite",
    "..%2f..%2f..%2f..%2fcatalog.sqlite", "full/max/0/default.jpg%00.tif", "full/max/0//default.jpg", "",
    "0,0,7,7/7,7/0/default.jpg",  # well-formed, but no tile of this pyramid
])
def test_only_info_json_and_jpeg_tiles_are_served(client, archive, rest) -> None:
    files = archive["files"]
    client.get(_url(files, "print16.tif"))  # the folder exists: a miss is a miss, not a build
    response = client.get(_url(files, "print16.tif", rest))
    assert response.status_code == 404, (rest, response.status_code)
    assert b"II*\x00" not in response.content and b"SQLite format" not in response.content


def test_only_catalogued_files_by_their_current_content(client, archive) -> None:
    files = archive["files"]
    uuid, sha = files["g.png"]
    for path in (f"/iiif/00000000-0000-4000-8000-000000000000/{sha[:16]}/info.json",  # not catalogued
                 f"/iiif/{uuid.upper()}/{sha[:16]}/info.json", f"/iiif/..%2f{uuid}/{sha[:16]}/info.json",
                 f"/iiif/{uuid}/{'0' * 16}/info.json",  # another content than the catalogued one
                 f"/iiif/{uuid}/{files['print16.tif'][1][:16]}/info.json", f"/iiif/{uuid}/{sha}/info.json",
                 f"/iiif/{uuid}/info.json"):
        assert client.get(path).status_code == 404, path


def test_a_file_changed_since_it_was_catalogued_is_not_tiled(client, archive) -> None:
    uuid, sha = archive["files"]["edited.png"]
    scan = archive["scans"] / "edited.png"
    Image.open(scan).rotate(90, expand=True).save(scan)  # someone edits the scan in place
    assert sha256_file(scan) != sha
    response = client.get(_url(archive["files"], "edited.png", "full/max/0/default.jpg"))
    assert response.status_code == 409 and "fixity" in response.text
    assert not previews.iiif_dir(archive["cache"], uuid, sha).exists()


def test_an_image_over_the_pixel_limit_is_refused_before_it_is_decoded(archive) -> None:
    from flows.review.app import create_app

    cfg = Settings(home=archive["home"], max_pixels=100_000)  # the 700x700 scan is 490,000 px
    uuid, sha = archive["files"]["g.png"]
    folder = previews.iiif_dir(archive["cache"], uuid, sha)
    previews.prune(archive["cache"], 0)  # nothing on screen: every folder goes
    assert not folder.exists()
    with TestClient(create_app(cfg, autorun=False), base_url=BASE) as client:
        response = client.get(_url(archive["files"], "g.png"))
    assert response.status_code == 422 and "cannot show it" in response.text
    assert not folder.exists() and not list(folder.parent.glob(".*"))


def test_the_tiles_need_the_secret_like_every_other_route(archive) -> None:
    from flows.review.app import create_app

    url = _url(archive["files"], "print16.tif", "full/max/0/default.jpg")
    with TestClient(create_app(archive["cfg"], secret=PASSWORD, loopback=False, autorun=False),
                    base_url="http://review.example.org") as client:
        for headers in ({}, {"Authorization": "Bearer not-the-password"}, {"Cookie": "restorium_session=forged"}):
            response = client.get(url, headers=headers)
            assert response.status_code == 401 and response.content[:2] != b"\xff\xd8", headers
        response = client.get(url, headers={"Authorization": f"Bearer {PASSWORD}"})
        assert response.status_code == 200 and response.content[:3] == b"\xff\xd8\xff"
        info = client.get(_url(archive["files"], "print16.tif"), headers={"Authorization": f"Bearer {PASSWORD}"})
        assert info.json()["id"].startswith("http://review.example.org/iiif/")


# --- the preview cache's budget counts the IIIF folders -------------------------------------------------------

@pytest.fixture(scope="module")
def scans(tmp_path_factory, shared_data) -> dict[str, tuple[Path, str, str]]:
    """Four small real scans: name -> (path, file uuid, sha256); the uuids are made up (no catalog here)."""
    folder = tmp_path_factory.mktemp("iiif-scans")
    crops = {"a": ("old_photos/old/h.png", (0, 0, 300, 200)), "b": ("old_photos/old/f.png", (0, 0, 520, 400)),
             "c": ("old_photos/old/b.png", (0, 0, 600, 600)), "d": ("old_photos/old/g.png", (0, 0, 560, 420))}
    out = {}
    for i, (name, (rel, box)) in enumerate(crops.items()):
        path = folder / f"{name}.png"
        Image.open(shared_data / rel).convert("RGB").crop(box).save(path)
        out[name] = (path, f"{i:08x}-0000-4000-8000-{i:012x}", sha256_file(path))
    return out


def _tiles(scans, root: Path, name: str) -> Path:
    path, uuid, sha = scans[name]
    return deepzoom.build(path, root, uuid, sha, base_url=BASE)


def _preview(scans, root: Path, name: str) -> Path:
    path, _, sha = scans[name]
    previews.build(path, sha, root, max_pixels=10**9)
    return previews.cache_dir(root, sha)


def _bytes(folder: Path) -> int:
    """Bytes of the files under `folder`, a hard-linked file once (as du counts them)."""
    seen, size = set(), 0
    for p in folder.rglob("*"):
        if p.is_file() and (st := p.stat()).st_ino not in seen:
            seen.add(st.st_ino)
            size += st.st_size
    return size


def _age(folder: Path, seconds_ago: float) -> None:
    stamp = time.time() - seconds_ago
    os.utime(folder, (stamp, stamp))


def test_prune_evicts_iiif_folders_and_preview_entries_least_recently_used_first(scans, tmp_path) -> None:
    folders = {("tiles", n): _tiles(scans, tmp_path, n) for n in "abcd"}
    folders |= {("preview", n): _preview(scans, tmp_path, n) for n in "ab"}
    sizes = {k: _bytes(f) for k, f in folders.items()}
    assert sum(sizes.values()) == _bytes(tmp_path)  # all of the cache, each linked tile counted once
    # last used, oldest first: tiles a, preview a, tiles b, preview b, tiles c, tiles d
    order = [("tiles", "a"), ("preview", "a"), ("tiles", "b"), ("preview", "b"), ("tiles", "c"), ("tiles", "d")]
    for hours, key in enumerate(reversed(order), start=1):
        _age(folders[key], hours * HOUR)
    # serving tiles a (deepzoom.ready) makes them the most recently used
    assert deepzoom.ready(tmp_path, scans["a"][1], scans["a"][2]) == folders[("tiles", "a")]
    order = order[1:] + [("tiles", "a")]
    # room for the last three used, not for a fourth
    budget = sum(sizes[k] for k in order[-3:]) + min(sizes[k] for k in order[:-3]) - 1
    remembered: dict = {}
    result = previews.prune(tmp_path, budget, sizes=remembered)
    assert {k for k, f in folders.items() if f.exists()} == set(order[-3:])
    assert result["removed"] == 3 and result["removed_bytes"] == sum(sizes[k] for k in order[:-3])
    assert result["kept"] == 3 and result["kept_bytes"] == sum(sizes[k] for k in order[-3:]) == _bytes(tmp_path)
    assert not result["over_budget"] and len(remembered) == 3
    # evicted folders renamed away then deleted; an emptied uuid folder goes too
    assert not list(tmp_path.rglob(".*"))
    assert not (tmp_path / "iiif" / scans["b"][1]).exists()
    # a file being shown keeps its tiles and its preview even over budget
    result = previews.prune(tmp_path, 0, keep=[scans["c"][2]], sizes=remembered)
    assert folders[("tiles", "c")].is_dir() and not folders[("tiles", "d")].exists()
    assert result["over_budget"] and result["kept"] == 1 and result["kept_bytes"] == sizes[("tiles", "c")]
    # evicted tiles are made again on the next request, the same bytes
    again = _tiles(scans, tmp_path, "d")
    assert again == folders[("tiles", "d")] and _bytes(again) == sizes[("tiles", "d")]


def test_half_written_and_half_deleted_iiif_folders_are_cleaned_up(scans, tmp_path) -> None:
    done = _tiles(scans, tmp_path, "a")
    parent = done.parent
    dead = parent / ".0123456789abcdef.deadbeef.partial"  # a build that died 2 hours ago
    (dead / "iiif/full/100,100/0").mkdir(parents=True)
    (dead / "iiif/full/100,100/0/default.jpg").write_bytes(b"\xff\xd8\xff half")
    _age(dead, 2 * HOUR)
    busy = parent / ".fedcba9876543210.cafebabe.partial"  # a build going on now
    (busy / "iiif").mkdir(parents=True)
    (busy / "iiif/info.json").write_text("{}")
    leftover = parent / ".1111111111111111.0badf00d.pruning"  # an interrupted prune
    (leftover / "full").mkdir(parents=True)
    (leftover / "full/x.jpg").write_bytes(b"\xff\xd8\xff")
    strangers = [tmp_path / "iiif" / "notes.txt", tmp_path / "iiif" / "not-a-uuid" / "0123456789abcdef" / "x.jpg",
                 parent / "README"]
    for path in strangers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("not the cache's")
    result = previews.prune(tmp_path, 10**9)
    assert not dead.exists() and not leftover.exists() and busy.is_dir() and done.is_dir()
    assert all(p.is_file() for p in strangers)
    assert result["stale_removed"] == 2 and result["in_progress"] == 1 and result["kept"] == 1 and result["removed"] == 0
    # at a zero budget the build in progress and the files that are not the cache's stay
    result = previews.prune(tmp_path, 0)
    assert not done.exists() and busy.is_dir() and all(p.is_file() for p in strangers)
    assert result["in_progress"] == 1 and result["over_budget"]


def test_the_app_keeps_the_tiles_to_budget_and_makes_pruned_ones_again(archive, tmp_path) -> None:
    """A zero budget: only the files on screen (the last two served) keep their tiles."""
    from flows.review.app import create_app

    names = ["g.png", "print16.tif"]
    cfg = Settings(home=archive["home"], review_cache_mb=0)
    app = create_app(cfg, autorun=False)
    files = archive["files"]
    with TestClient(app, base_url=BASE) as client:
        assert app.state.preview_cache.wait(30)
        first = {}
        for name in names:  # each file viewed: info.json, then its tiles
            info = client.get(_url(files, name)).json()
            first[name] = {rel: client.get(_url(files, name, rel)).content for rel, _, _ in tile_requests(info)}
            assert app.state.preview_cache.wait(30)
        kept = {name for name in files if previews.iiif_dir(archive["cache"], *files[name]).is_dir()}
        assert kept == set(names)  # both on screen: kept at a zero budget
        # a third file on screen pushes the least recently served one out
        assert client.get(_url(files, "g.png", "full/max/0/default.jpg")).status_code == 200  # g served again
        assert client.get(_url(files, "a.png")).status_code == 200
        assert app.state.preview_cache.wait(30)
        assert not previews.iiif_dir(archive["cache"], *files["print16.tif"]).exists()
        assert previews.iiif_dir(archive["cache"], *files["g.png"]).is_dir()
        assert app.state.preview_cache.last is not None and app.state.preview_cache.last["removed"] >= 1
        # viewing it again makes the same tiles again
        info = client.get(_url(files, "print16.tif")).json()
        assert {rel: client.get(_url(files, "print16.tif", rel)).content
                for rel, _, _ in tile_requests(info)} == first["print16.tif"]
