"""Deep zoom on the review page in a real browser: OpenSeadragon (the vendored npm build) over the
app's IIIF tiles, the original and the master side by side, pan and zoom kept in step.

A real run (Prefect test harness, local Ray, real weights) masters one real photograph scanned
as a 16-bit TIFF, 360x520, into a 720x1040 master TIFF: big enough that the whole picture is shown
from a lower level of the pyramid and 200 % needs tiles of the full-resolution level, which
nothing else on the page asks for. The real `restorium review`
command serves it; Debian's Chromium, driven by Selenium through the system chromedriver, opens
the item page. Chromium's own network log says what the app sent (never a TIFF).

Screenshots go to $RESTORIUM_TEST_ARTIFACTS/review-deepzoom (default: the test's tmp folder);
the path is printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from review_server import chromium, review_server

from catalog import Catalog, review
from tasks.files.iiif_tiles import validate_iiif

pytestmark = pytest.mark.slow

OSD_VERSION = "6.1.1"  # flows/review/static/openseadragon/README.md
SCAN = (360, 520)  # width, height


@pytest.fixture(scope="module")
def archive(tmp_path_factory, shared_data, shared_models) -> dict:
    from prefect.testing.utilities import prefect_test_harness

    from flows.restore_batch import restore_batch
    from flows.workers import shutdown

    root = tmp_path_factory.mktemp("review-deepzoom")
    scans = root / "scans"
    scans.mkdir()
    photo = np.asarray(Image.open(shared_data / "old_photos/old/b.png").convert("RGB"))
    crop = photo[200:200 + SCAN[1], 140:140 + SCAN[0]]
    tifffile.imwrite(scans / "portrait16.tif", crop.astype(np.uint16) * 257, photometric="rgb")
    home = root / "archive"
    with prefect_test_harness(server_startup_timeout=120):  # 30 s is overrun on a busy 2-core machine
        run = restore_batch(str(scans), settings={"home": str(home), "models_dir": str(shared_models)})
    shutdown()
    assert run["counts"]["mastered"] == 1, run
    from config.settings import Settings

    cfg = Settings(home=home)
    with Catalog.open(cfg.resolved_catalog_url) as catalog:
        (facts,) = review.masters(catalog)
    assert (facts.original["width"], facts.original["height"]) == SCAN
    assert (facts.width, facts.height) == (2 * SCAN[0], 2 * SCAN[1])
    assert facts.path.endswith(".tif") and facts.original["path"].endswith(".tif")
    return {"root": root, "home": home, "models": shared_models, "master": facts}


@pytest.fixture(scope="module")
def server(archive, free_port):
    """The real command, on loopback (no secret)."""
    env = {"RESTORIUM_MODELS_DIR": str(archive["models"]), "PREFECT_HOME": str(archive["root"] / "prefect-home")}
    with review_server(archive["home"], free_port(), archive["root"] / "review-server.log", "--queue-only",
                       env=env) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-profile"), network_log=True) as driver:  # what the app sent
        yield driver


@pytest.fixture(scope="module")
def shots(tmp_path_factory, request):
    folder = Path(os.environ.get("RESTORIUM_TEST_ARTIFACTS") or tmp_path_factory.mktemp("artifacts")) / "review-deepzoom"
    folder.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []

    def take(driver, name: str) -> Path:
        driver.execute_script("document.querySelector('.zoom-section').scrollIntoView()")
        path = folder / f"{name}.png"
        assert driver.save_screenshot(str(path)), path
        saved.append(path)
        return path

    yield take
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\ndeep-zoom review screenshots in {folder}: {', '.join(p.name for p in saved)}")


# --- helpers ------------------------------------------------------------------------------------------------

_SETTLED = """
    const z = window.restoriumDeepZoom;
    if (!z || !z.state.ready) return false;
    return Object.values(z.viewers).every(v => {
        const vp = v.viewport;
        return v.isOpen() && !v.isAnimating() && vp.getZoom(true) === vp.getZoom(false)
            && vp.getCenter(true).equals(vp.getCenter(false)) && v.world.getItemAt(0).getFullyLoaded();
    });"""

_RECORD = """
    // what each viewer loads and draws, from OpenSeadragon's own events
    const z = window.restoriumDeepZoom;
    window.seen = {};
    for (const [name, v] of Object.entries(z.viewers)) {
        const seen = window.seen[name] = {loaded: [], failed: [], drawn: [], zooms: 0, pans: 0};
        v.addHandler('tile-loaded', e => seen.loaded.push({url: e.tile.getUrl(), level: e.tile.level}));
        v.addHandler('tile-load-failed', e => seen.failed.push(e.tile.getUrl() + ': ' + e.message));
        v.addHandler('zoom', () => { seen.zooms++; });
        v.addHandler('pan', () => { seen.pans++; });
        v.addHandler('tiled-image-drawn', e => {
            const width = e.tiledImage.source.dimensions.x;
            seen.drawn = e.tiles.map(t => ({url: t.getUrl(), level: t.level,
                                            cssPerPixel: t.size.x / (t.bounds.width * width)}));
        });
    }"""

_VIEWS = """
    // where each viewer looks, in its own image's pixels
    const z = window.restoriumDeepZoom;
    return Object.fromEntries(Object.entries(z.viewers).map(([name, v]) => {
        const vp = v.viewport, item = v.world.getItemAt(0), dims = item.source.dimensions;
        const c = vp.viewportToImageCoordinates(vp.getCenter(true));
        const r = vp.viewportToImageRectangle(vp.getBounds(true));
        return [name, {width: dims.x, height: dims.y, cx: c.x, cy: c.y, x: r.x, y: r.y, w: r.width, h: r.height,
                       zoom: vp.viewportToImageZoom(vp.getZoom(true)), maxLevel: item.source.maxLevel,
                       id: item.source._id || item.source.id}];
    }));"""


def _wait(driver, condition, timeout: float = 60, what: str = ""):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, what)


def _settle(driver, what: str) -> None:
    """Both viewers still, at their targets, every tile of the view loaded: twice, a moment apart
    (OpenSeadragon updates what it needs on its next frame)."""
    for _ in range(2):
        _wait(driver, lambda d: d.execute_script(_SETTLED), what=what)
        time.sleep(0.3)


def _in_step(views: dict, scale: float) -> None:
    """The original and the master show the same place: centres and visible rectangles equal once
    the master's pixels are mapped to the original's (master = `scale` x original)."""
    m, o = views["master"], views["original"]
    assert m["width"] == pytest.approx(scale * o["width"]) and m["height"] == pytest.approx(scale * o["height"])
    for key in ("cx", "cy", "x", "y", "w", "h"):
        assert m[key] / scale == pytest.approx(o[key], abs=0.01), (key, m, o)
    assert m["zoom"] * scale == pytest.approx(o["zoom"], rel=1e-6)


def _network(driver, base: str) -> list[dict]:
    """The app's responses since the last call, from Chromium's performance log."""
    found = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.responseReceived":
            response = message["params"]["response"]
            if response["url"].startswith(base):
                headers = {k.lower(): v for k, v in response["headers"].items()}
                found.append({"url": response["url"], "status": response["status"], "mime": response["mimeType"],
                              "type": headers.get("content-type", "")})
    return found


# --- the tests ----------------------------------------------------------------------------------------------

def test_openseadragon_opens_the_item_page_zooms_to_200_and_loads_tiles_from_the_app(
        archive, server, browser, shots) -> None:
    master = archive["master"]
    original = master.original
    browser.get_log("performance")  # start the network log here
    browser.get(f"{server}/items/{master.uuid}")
    _wait(browser, lambda d: d.execute_script("return !!(window.restoriumDeepZoom && restoriumDeepZoom.state.ready)"),
          what="both viewers open")
    assert browser.execute_script("return OpenSeadragon.version.versionStr") == OSD_VERSION
    browser.execute_script(_RECORD)
    _settle(browser, "the whole picture")
    views = browser.execute_script(_VIEWS)
    # each viewer is the app's IIIF service of one catalogued file, by uuid and content
    assert views["master"]["id"] == f"{server}/iiif/{master.uuid}/{master.sha256[:16]}"
    assert views["original"]["id"] == f"{server}/iiif/{original['uuid']}/{original['sha256'][:16]}"
    assert (views["original"]["width"], views["original"]["height"]) == SCAN
    _in_step(views, 2)
    assert views["master"]["zoom"] < 1  # opened on the whole picture
    shots(browser, "deepzoom-whole")

    # 200 %, as a script would ask OpenSeadragon for it: the master's image zoom 2
    browser.execute_script("""const v = restoriumDeepZoom.viewers.master;
        v.viewport.zoomTo(v.viewport.imageToViewportZoom(2));""")
    _settle(browser, "200 %")
    views = browser.execute_script(_VIEWS)
    assert views["master"]["zoom"] == pytest.approx(2) and views["original"]["zoom"] == pytest.approx(4)
    _in_step(views, 2)
    assert views["master"]["w"] < master.width / 2  # a detail, not the whole picture
    assert browser.execute_script("return window.restoriumZoom.scale") == pytest.approx(2)
    seen = browser.execute_script("return window.seen")
    # the master's zoom and its replay on the original, at most one more each when an animation ends
    # (the other viewer set exactly where the first stopped); nothing bounced back and forth
    assert 1 <= seen["master"]["zooms"] <= 2 and 1 <= seen["original"]["zooms"] <= 2, seen
    # what crossed the wire: JPEG tiles and info.json from /iiif/, never a TIFF
    responses = _network(browser, server)
    iiif = {r["url"]: r for r in responses if "/iiif/" in r["url"]}
    assert any(url.endswith("/info.json") for url in iiif)
    for r in iiif.values():
        assert r["status"] == 200 and r["type"] in ("image/jpeg", "application/json"), r
    assert not [r for r in responses if "tif" in r["type"] or re.search(r"\.tiff?($|\?)", r["url"], re.I)]
    sources = browser.execute_script("return [...document.images].map(i => i.src)")
    assert sources and not any(re.search(r"\.tiff?$", s, re.I) for s in sources)
    # the master's full-resolution tiles were loaded for 200 %: region tiles, from the app
    top = {name: views[name]["maxLevel"] for name in views}
    zoomed = [t["url"] for t in seen["master"]["loaded"] if t["level"] == top["master"]]
    assert zoomed and all(re.search(r"/\d+,\d+,\d+,\d+/\d+,\d+/0/default\.jpg$", url) for url in zoomed), seen
    # each viewer draws tiles of its full-resolution level (the reviewer sees real pixels, not an
    # enlarged lower level) at 200 % of the master's pixels, 400 % of the original's; every tile
    # drawn came from the app's /iiif/ route, as JPEG
    for name, scale in (("master", 2), ("original", 4)):
        assert seen[name]["failed"] == []
        drawn = seen[name]["drawn"]
        assert drawn and all(t["level"] == top[name] for t in drawn), (name, drawn)
        for tile in drawn:  # canvas tiles are drawn a pixel wider, to hide seams
            assert tile["cssPerPixel"] == pytest.approx(scale, rel=0.01), (name, tile)
            assert tile["url"].startswith(views[name]["id"] + "/") and iiif[tile["url"]]["type"] == "image/jpeg"
    shots(browser, "deepzoom-200")

    # the tiles are the app's cached IIIF folders, valid level-0 services, served byte for byte
    cache = archive["home"] / "cache/previews/iiif"
    for uuid, sha in ((master.uuid, master.sha256), (original["uuid"], original["sha256"])):
        assert validate_iiif(cache / uuid / sha[:16]) == []
    url = zoomed[0]
    with urllib.request.urlopen(url) as response:
        body = response.read()
    rel = url.split(f"/{master.sha256[:16]}/", 1)[1]
    assert body == (cache / master.uuid / master.sha256[:16] / rel).read_bytes() and body[:3] == b"\xff\xd8\xff"


def test_pan_and_zoom_either_viewer_and_the_other_follows(archive, server, browser, shots) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin

    master = archive["master"]
    browser.get(f"{server}/items/{master.uuid}")
    _wait(browser, lambda d: d.execute_script("return !!(window.restoriumDeepZoom && restoriumDeepZoom.state.ready)"),
          what="both viewers open")
    browser.find_element("id", "zoom-200").click()
    _settle(browser, "200 % by the button")
    before = browser.execute_script(_VIEWS)
    assert before["master"]["zoom"] == pytest.approx(2)
    _in_step(before, 2)

    # drag the original (at 400 %): 100 CSS px left and 60 up are 25 and 15 of its pixels
    panel = browser.find_element("id", "zoom-original")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", panel)
    ActionChains(browser).move_to_element(panel).click_and_hold().move_by_offset(-100, -60).release().perform()
    _settle(browser, "after the drag")
    after = browser.execute_script(_VIEWS)
    _in_step(after, 2)
    assert after["original"]["cx"] - before["original"]["cx"] == pytest.approx(25, abs=1)
    assert after["original"]["cy"] - before["original"]["cy"] == pytest.approx(15, abs=1)
    assert after["master"]["zoom"] == pytest.approx(2)

    # the wheel over the master's upper left quarter: zoomed about that point, in both
    target = browser.find_element("id", "zoom-master")
    origin = ScrollOrigin.from_element(target, -target.size["width"] // 4, -target.size["height"] // 4)
    ActionChains(browser).scroll_from_origin(origin, 0, -300).perform()
    _settle(browser, "after the wheel")
    wheeled = browser.execute_script(_VIEWS)
    assert wheeled["master"]["zoom"] > 2.2
    _in_step(wheeled, 2)
    assert wheeled["master"]["cx"] < after["master"]["cx"] and wheeled["master"]["cy"] < after["master"]["cy"]
    shots(browser, "deepzoom-panned-and-wheeled")

    # still: nothing moves by itself afterwards (no replay loop)
    browser.execute_script(_RECORD)
    time.sleep(1.5)
    seen = browser.execute_script("return window.seen")
    assert all(seen[n]["zooms"] == 0 and seen[n]["pans"] == 0 for n in seen), seen
    assert browser.execute_script(_VIEWS) == wheeled

    # the whole picture again, from the button
    browser.find_element("id", "zoom-fit").click()
    _settle(browser, "whole picture")
    home = browser.execute_script(_VIEWS)
    _in_step(home, 2)
    assert home["master"]["zoom"] < 1
