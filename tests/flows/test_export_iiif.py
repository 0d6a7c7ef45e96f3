"""`restorium export iiif` end to end: a real run (Prefect test harness, local Ray, real weights,
real images, an item sheet) exported as a static IIIF site, which a plain web server then serves:
every manifest and the collection are fetched over HTTP, read back by iiif-prezi3, and every canvas's
image and image service answer with the sizes the manifest promises."""

from __future__ import annotations

import io
import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from flows.cli import iiif as cli_iiif
from flows.restore_batch import restore_batch
from tasks.preservation.iiif_manifest import MASTER_LABEL, SCAN_LABEL, manifest_problems, parse_back

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_and_ray")]

SHEET = """file,identifier,title,date,creator,rights,width,height,unit,dc.subject
wedding.jpg,ph-1931.07,Wedding party,1931,J. Doe,CC BY 4.0,9,6,cm,weddings
harbour.png,ph-1948.02,Harbour at dawn,1948,A. Smith,Courtesy of the Smith family,,,,harbours
"""


def _app() -> typer.Typer:
    # `export iiif` as flows.cli wires it (cli_preservation.register adds cli_iiif to its export group)
    app, export = typer.Typer(), typer.Typer()
    cli_iiif.register(export)
    app.add_typer(export, name="export")
    return app


def _cli(*args: str) -> Any:
    return CliRunner().invoke(_app(), list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, shared_data: Path, shared_models: Path) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("iiif")
    scans = root / "scans"
    scans.mkdir()
    Image.open(shared_data / "old_photos/old/h.png").convert("RGB").crop((100, 100, 196, 172)).save(
        scans / "wedding.jpg", quality=95)
    Image.open(shared_data / "old_photos/old_w_scratch/c.png").convert("RGB").crop((0, 0, 80, 64)).save(
        scans / "harbour.png")
    (root / "items.csv").write_text(SHEET)
    run = restore_batch(str(scans), metadata=str(root / "items.csv"),
                        settings={"home": str(root / "archive"), "models_dir": str(shared_models)})
    assert run["counts"]["mastered"] == 2, run
    return {"root": root, "home": root / "archive", "run": run}


@pytest.fixture
def served(tmp_path: Path, free_port: Callable[[], int]) -> Iterator[tuple[Path, str]]:
    """A folder and the URL a plain static web server serves it at."""
    site = tmp_path / "site"
    site.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), partial(SimpleHTTPRequestHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield site, f"http://127.0.0.1:{server.server_address[1]}/pub"
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        return response.read()


def test_a_run_as_a_static_iiif_site_that_a_web_server_serves(archive: dict[str, Any], served: tuple[Path, str]) -> None:
    site, base = served
    dest = site / "pub"
    run_uuid = archive["run"]["run_uuid"]
    result = _cli("export", "iiif", "--run", run_uuid[:8], str(dest), "--base-url", base, "--json",
                  "--home", str(archive["home"]))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["failed"] == 0 and report["collection"]["manifests"] == 2
    assert {r["identifier"] for r in report["items"]} == {"ph-1931.07", "ph-1948.02"}
    assert all(f["created"] for r in report["items"] for f in r["files"])

    collection = json.loads(_get(f"{base}/collections/run-{run_uuid}.json"))
    assert collection["id"] == f"{base}/collections/run-{run_uuid}.json" == report["collection"]["id"]
    assert parse_back(collection).type == "Collection"
    labels = {}
    for ref in collection["items"]:
        manifest = json.loads(_get(ref["id"]))  # the id is where the manifest is served
        assert manifest["id"] == ref["id"] and manifest_problems(manifest) == []
        labels[manifest["label"]["none"][0]] = manifest
        assert [c["label"]["en"][0] for c in manifest["items"]] == [SCAN_LABEL, MASTER_LABEL]
        scan, master = manifest["items"]
        assert master["width"] > scan["width"] and master["height"] > scan["height"]  # the master is upscaled
        for canvas in manifest["items"]:
            body = canvas["items"][0]["items"][0]["body"]
            [service] = body["service"]
            info = json.loads(_get(f"{service['id']}/info.json"))
            assert (info["id"], info["type"], info["profile"]) == (service["id"], "ImageService3", "level0")
            assert (info["width"], info["height"]) == (canvas["width"], canvas["height"])
            with Image.open(io.BytesIO(_get(body["id"]))) as image:
                assert (image.format, image.size) == ("JPEG", (body["width"], body["height"]))
        audit = json.loads(_get(manifest["seeAlso"][0]["id"]))
        assert audit["item_uuid"] in manifest["id"] and audit["audits"]
    assert set(labels) == {"Wedding party", "Harbour at dawn"}
    assert labels["Wedding party"]["rights"] == "http://creativecommons.org/licenses/by/4.0/"
    harbour = labels["Harbour at dawn"]
    assert "rights" not in harbour
    assert harbour["requiredStatement"]["value"] == {"none": ["Courtesy of the Smith family"]}
    assert "Wedding party" in _get(f"{base}/index.html").decode()

    # again, the first item named by identifier: its tiles are reused, its manifest rewritten the same
    before = (dest / "manifests").joinpath(Path(labels["Wedding party"]["id"]).name).read_bytes()
    again = _cli("export", "iiif", "ph-1931.07", str(dest), "--base-url", base, "--json", "--home", str(archive["home"]))
    assert again.exit_code == 0, again.output
    [item] = json.loads(again.stdout)["items"]
    assert [f["created"] for f in item["files"]] == [False, False]
    assert (dest / "manifests").joinpath(Path(labels["Wedding party"]["id"]).name).read_bytes() == before
    assert not list(dest.rglob("*.partial"))
    text = _cli("export", "iiif", "--run", run_uuid, str(dest), "--base-url", base, "--home", str(archive["home"]))
    assert text.exit_code == 0, text.output
    assert text.stdout.count("2 canvases, 0 tiled, 2 reused") == 2 and f"run-{run_uuid}.json: 2 manifests" in text.stdout

    # a master changed on disk since the catalog recorded it: that item fails (exit 1), the other is done
    master = next(Path(s["master"]) for s in archive["run"]["scans"] if Path(s["path"]).name == "harbour.png")
    master.write_bytes(master.read_bytes() + b"\0")
    broken = _cli("export", "iiif", "ph-1948.02", "ph-1931.07", str(site / "other"), "--base-url", base, "--json",
                  "--home", str(archive["home"]))
    assert broken.exit_code == 1, broken.output
    failed, done = json.loads(broken.stdout)["items"]
    assert failed["status"] == "failed" and "sha256 differs from the catalog's" in failed["problems"][0]
    assert done["status"] == "exported"
    assert sorted(p.name for p in (site / "other" / "manifests").iterdir()) == [Path(done["manifest"]).name]

    # refusals: a folder that is someone else's, a base URL that is no http URL, an unknown item
    (site / "mine").mkdir()
    (site / "mine" / "notes.txt").write_text("mine")
    refused = _cli("export", "iiif", "ph-1931.07", str(site / "mine"), "--home", str(archive["home"]))
    assert refused.exit_code == 2 and "not a site written by" in refused.output
    assert [p.name for p in (site / "mine").iterdir()] == ["notes.txt"]
    assert _cli("export", "iiif", "ph-1931.07", str(site / "x"), "--base-url", "file:///srv",
                "--home", str(archive["home"])).exit_code == 2
    assert _cli("export", "iiif", "no-such-item", str(site / "y"), "--home", str(archive["home"])).exit_code == 2
