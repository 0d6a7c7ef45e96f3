"""The review app in a real browser (Debian's Chromium driven by Selenium through the system
chromedriver) on a real archive: two real runs (Prefect test harness, local Ray, real weights,
real scans), the real `restorium review` command serving it.

Open the item list and filter it, move the before/after slider, zoom to 100 % and 200 % and pan
(both panels must show the same place), approve one master and reject another (the catalog
must hold the same events `restorium approve/reject` record), and reprocess a third with
changed strengths: the app starts `restorium reprocess --pending` in the background, a new
master appears, and the old one stays, superseded. Screenshots of the item page are saved in
the test's tmp folder and copied to $RESTORIUM_SCREENSHOTS (default build/screenshots).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml
from PIL import Image
from review_server import chromium, review_server
from typer.testing import CliRunner

from catalog import Catalog, review
from config.recipe import load_recipe
from config.settings import Settings
from tasks.files.atomic import sha256_file

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
REVIEWER = "Ada Reviewer"


# --- a real archive: two runs, three masters --------------------------------------------------------------

@pytest.fixture(scope="module")
def archive(tmp_path_factory, shared_data, shared_models) -> dict:
    """Run 1 (archival): a JPEG in a sub-folder and a 16-bit TIFF. Run 2: a scratched photo with a
    portrait recipe whose fidelity guard is strict enough to flag it."""
    from prefect.testing.utilities import prefect_test_harness

    from flows.restore_batch import restore_batch
    from flows.workers import shutdown

    root = tmp_path_factory.mktemp("review-app")
    first, second = root / "scans-1", root / "scans-2"
    (first / "box1").mkdir(parents=True)
    second.mkdir()
    old = shared_data / "old_photos"
    Image.open(old / "old/h.png").convert("RGB").crop((60, 80, 300, 260)).save(first / "box1/wedding.jpg", quality=92)
    rgb = np.asarray(Image.open(old / "old/f.png").convert("RGB"))[300:480, 200:440]
    tifffile.imwrite(first / "print16.tif", rgb.astype(np.uint16) * 257, photometric="rgb")
    Image.open(old / "old_w_scratch/c.png").convert("RGB").crop((0, 40, 240, 220)).save(second / "scratched.png")
    strict = load_recipe("portrait").model_dump(mode="json")
    strict["name"], strict["guard"]["ssim_threshold"] = "portrait-strict", 0.9999
    (root / "portrait-strict.yaml").write_text(yaml.safe_dump(strict))

    home = root / "archive"
    settings = {"home": str(home), "models_dir": str(shared_models)}
    with prefect_test_harness(server_startup_timeout=120):  # 30 s is overrun on a busy 2-core machine
        one = restore_batch(str(first), settings=settings)
        two = restore_batch(str(second), recipe=str(root / "portrait-strict.yaml"), settings=settings)
    shutdown()  # the reprocessing run later starts its own Ray
    assert one["counts"]["mastered"] == 2 and two["counts"]["mastered"] == 1, (one, two)
    assert two["counts"]["flagged"] == 1, two
    masters = {Path(s["path"]).stem: Path(s["master"]) for s in one["scans"] + two["scans"]}
    return {"root": root, "home": home, "cfg": Settings(home=home), "masters": masters, "models": shared_models,
            "runs": [one["run_uuid"], two["run_uuid"]]}


@pytest.fixture(scope="module")
def server(archive, free_port):
    """The real command, on loopback (the default), starting reprocessing runs itself."""
    env = {"RESTORIUM_MODELS_DIR": str(archive["models"]), "PREFECT_HOME": str(archive["root"] / "prefect-home")}
    with review_server(archive["home"], free_port(), archive["root"] / "review-server.log", env=env) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as driver:
        yield driver


@pytest.fixture(scope="module")
def shots(tmp_path_factory, request):
    """Screenshots: saved in a tmp folder, copied to $RESTORIUM_SCREENSHOTS or build/screenshots."""
    folder = tmp_path_factory.mktemp("screenshots")
    saved: list[Path] = []

    def take(driver, name: str, full_page: bool = True) -> Path:
        if full_page:  # the whole item page, not just the window
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(1400, min(max(height + 120, 1000), 6000))
            time.sleep(0.3)
        path = folder / f"{name}.png"
        assert driver.save_screenshot(str(path)), path
        driver.set_window_size(1400, 1000)
        saved.append(path)
        return path

    yield take
    dest = Path(os.environ.get("RESTORIUM_SCREENSHOTS") or REPO / "build" / "screenshots")
    dest.mkdir(parents=True, exist_ok=True)
    for path in saved:
        shutil.copy2(path, dest / path.name)
    message = f"review app screenshots: {folder} (copied to {dest}: {', '.join(p.name for p in saved)})"
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\n{message}")  # shown even when the tests pass


# --- helpers ------------------------------------------------------------------------------------------------

def _wait(driver, condition, timeout: float = 30, what: str = ""):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, what)


def _rows(driver) -> list:
    return driver.find_elements("css selector", "tr.item-row")


def _filter(driver, base: str, **values: str) -> list:
    """Set the filter form's selects as a person would, then submit it."""
    from selenium.webdriver.support.ui import Select

    driver.get(f"{base}/items")
    for name, value in values.items():
        Select(driver.find_element("name", name)).select_by_value(value)
    driver.find_element("css selector", "#filters button[type=submit]").click()
    _wait(driver, lambda d: "/items?" in d.current_url, what="filtered list")
    return _rows(driver)


def _open_item(driver, base: str, identifier: str) -> str:
    driver.get(f"{base}/items")
    driver.find_element("link text", identifier).click()
    _wait(driver, lambda d: re.search(r"/items/[0-9a-f-]{36}", d.current_url), what="item page")
    return driver.current_url.split("/items/")[1].split("?")[0]


def _tiles_loaded(driver) -> bool:
    """Both zoom panels (OpenSeadragon viewers, flows/review/static/deepzoom.js) open, still, at
    their targets, every tile of the view loaded and drawn, for 300 ms on end."""
    return driver.execute_script("""
        const z = window.restoriumDeepZoom;
        if (!z || !z.state.ready) return false;
        const viewers = Object.values(z.viewers);
        for (const v of viewers) {
            if (v.drawnTiles) continue;
            v.drawnTiles = [];  // what the last frame drew: level, CSS px per image pixel
            v.addHandler('tiled-image-drawn', e => {
                const width = e.tiledImage.source.dimensions.x;
                v.drawnTiles = e.tiles.map(t => ({level: t.level, css: t.size.x / (t.bounds.width * width)}));
            });
            v.forceRedraw();
        }
        const still = viewers.every(v => {
            const vp = v.viewport;
            return !v.isAnimating() && vp.getZoom(true) === vp.getZoom(false)
                && vp.getCenter(true).equals(vp.getCenter(false)) && v.world.getItemAt(0).getFullyLoaded()
                && v.drawnTiles.length > 0;
        });
        if (!still) { window.stillSince = null; return false; }
        window.stillSince = window.stillSince || performance.now();
        return performance.now() - window.stillSince > 300;""")


def _panel_centres(driver) -> list[dict]:
    """Where each zoom panel looks (fractions of its image), its scale (CSS px per image pixel)
    and the scale its tiles were last drawn at, read back from its OpenSeadragon viewer."""
    return driver.execute_script("""
        const z = window.restoriumDeepZoom;
        return Object.values(z.viewers).map(v => {
            const vp = v.viewport, dims = v.world.getItemAt(0).source.dimensions;
            const c = vp.viewportToImageCoordinates(vp.getCenter(true));
            return {id: v.element.id, scale: vp.viewportToImageZoom(vp.getZoom(true)), width: dims.x,
                    tileCss: v.drawnTiles[0].css, cx: c.x / dims.x, cy: c.y / dims.y};
        });""")


def _catalog(archive) -> Catalog:
    return Catalog.open(archive["cfg"].resolved_catalog_url)


# --- the tests (in order: they share the archive) ----------------------------------------------------------

def test_the_run_list_and_the_item_list_with_its_filters(archive, server, browser, shots) -> None:
    browser.get(server + "/")
    runs = browser.find_elements("css selector", "#runs tbody tr")
    assert {r.get_attribute("data-run") for r in runs} == set(archive["runs"])
    assert browser.find_elements("link text", "run report")

    browser.get(server + "/items")
    rows = _rows(browser)
    assert sorted(r.find_element("css selector", "a.item-link").text for r in rows) == \
        ["print16", "scratched", "wedding"]
    assert all(r.find_element("css selector", "img").get_attribute("src").endswith("/preview-320.jpg") for r in rows)
    _wait(browser, lambda d: d.execute_script(
        "return [...document.querySelectorAll('td.thumb img')].every(i => i.complete && i.naturalWidth > 0)"),
        what="thumbnails")
    shots(browser, "item-list", full_page=False)
    verdicts = {r.get_attribute("data-master"): r.get_attribute("data-verdict") for r in rows}

    strict = _filter(browser, server, preset="portrait-strict")
    assert [r.find_element("css selector", "a.item-link").text for r in strict] == ["scratched"]
    assert len(_filter(browser, server, preset="archival")) == 2
    assert len(_filter(browser, server, run=archive["runs"][0])) == 2
    assert [r.find_element("css selector", "a.item-link").text
            for r in _filter(browser, server, guard_flag="flagged")] == ["scratched"]
    assert len(_filter(browser, server, guard_flag="passed")) == 2
    verdict = verdicts[next(iter(verdicts))]
    shown = _filter(browser, server, verdict=verdict)
    assert {r.get_attribute("data-master") for r in shown} == {m for m, v in verdicts.items() if v == verdict}
    assert len(_filter(browser, server, run=archive["runs"][0], preset="portrait-strict")) == 0


def test_the_item_page_slider_zoom_and_facts(archive, server, browser, shots) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    master_uuid = _open_item(browser, server, "scratched")
    with _catalog(archive) as catalog:
        facts = review.master(catalog, master_uuid)
        audit = catalog.audit(master_path=facts.path, sha256=facts.sha256)
    # the facts: QA findings, the planner's reasons, the provenance chain of `restorium audit`
    page = browser.find_element("tag name", "main").text
    assert facts.qa and f"verdict {facts.qa['verdict']}" in page
    assert "noise_sigma" in browser.find_element("id", "qa-findings").text
    assert [li.text for li in browser.find_elements("css selector", "#plan-reasons li")] == facts.plan_reasons
    assert [tr.get_attribute("data-event") for tr in browser.find_elements("css selector", "#steps tr.step")] == \
        [s.event_uuid for s in audit.steps]
    assert audit.recipe["hash"] in browser.find_element("id", "provenance").text
    assert "flagged" in browser.find_element("id", "guard").text

    # the images are previews and tiles, never the TIFF
    sources = browser.execute_script("return [...document.images].map(i => i.src)")
    assert not any(s.endswith((".tif", ".tiff")) for s in sources)
    _wait(browser, lambda d: _tiles_loaded(d), what="zoom tiles")

    # the slider cuts the master over the original where it is moved
    slider = browser.find_element("id", "slider")
    assert browser.find_element("id", "after").value_of_css_property("clip-path") == "inset(0px 0px 0px 50%)"
    ActionChains(browser).click_and_hold(slider).move_by_offset(-slider.size["width"] // 4, 0).release().perform()
    value = int(slider.get_attribute("value"))
    assert 15 <= value <= 35, value
    assert browser.find_element("id", "after").value_of_css_property("clip-path") == f"inset(0px 0px 0px {value}%)"
    assert browser.find_element("id", "ba-line").value_of_css_property("left") != ""

    # 100 %: one master pixel per CSS pixel; the original's pixels enlarged to the master's scale
    browser.find_element("id", "zoom-100").click()  # the page opens on the whole picture
    _wait(browser, lambda d: _tiles_loaded(d), what="100 % tiles")
    centres = _panel_centres(browser)
    by_id = {c["id"]: c for c in centres}
    ratio = by_id["zoom-master"]["width"] / by_id["zoom-original"]["width"]
    assert by_id["zoom-master"]["scale"] == pytest.approx(1) and by_id["zoom-original"]["scale"] == pytest.approx(ratio)
    shots(browser, "item-slider-100")

    # 200 %, then drag the master panel: both panels follow and keep showing the same place
    browser.find_element("id", "zoom-200").click()
    _wait(browser, lambda d: _tiles_loaded(d), what="200 % tiles")
    by_id = {c["id"]: c for c in _panel_centres(browser)}
    assert by_id["zoom-master"]["scale"] == pytest.approx(2)
    # (OpenSeadragon's canvas draws each tile one CSS pixel wider, to hide seams: 1 % tolerance)
    assert by_id["zoom-master"]["tileCss"] == pytest.approx(2, rel=0.01)
    assert by_id["zoom-original"]["tileCss"] == pytest.approx(2 * ratio, rel=0.01)
    panel = browser.find_element("id", "zoom-master")
    ActionChains(browser).move_to_element(panel).click_and_hold().move_by_offset(120, 70).release().perform()
    _wait(browser, lambda d: _tiles_loaded(d), what="tiles after panning")
    state = browser.execute_script("return window.restoriumZoom")
    assert state["cx"] == pytest.approx(0.5 - 120 / (2 * facts.width), abs=2e-3)
    assert state["cy"] == pytest.approx(0.5 - 70 / (2 * facts.height), abs=2e-3)
    one, two = _panel_centres(browser)
    assert one["cx"] == pytest.approx(two["cx"], abs=1e-3) == pytest.approx(state["cx"], abs=1e-3)
    assert one["cy"] == pytest.approx(two["cy"], abs=1e-3) == pytest.approx(state["cy"], abs=1e-3)
    # clicking the comparison picks the place to look at
    ba = browser.find_element("id", "ba")
    ActionChains(browser).move_to_element_with_offset(ba, ba.size["width"] // 4, 0).click().perform()
    assert browser.execute_script("return window.restoriumZoom.cx") == pytest.approx(0.75, abs=0.02)
    # the guard's least-alike block, one click away
    browser.find_element("id", "zoom-worst").click()
    box = facts.guard["parameters"]["worst_region"]["box"]
    assert browser.execute_script("return window.restoriumZoom.cx") == \
        pytest.approx((box[0] + box[2] / 2) / facts.original["width"], abs=1e-3)
    _wait(browser, lambda d: _tiles_loaded(d), what="tiles at the guard's region")
    shots(browser, "item-zoom-200")


def test_approve_one_master_and_reject_another(archive, server, browser, shots) -> None:
    approved = _open_item(browser, server, "wedding")
    browser.find_element("id", "reviewer").send_keys(REVIEWER)
    browser.find_element("id", "comment").send_keys("faces and text hold up at 200 %")
    browser.find_element("id", "approve").click()
    _wait(browser, lambda d: d.find_elements("id", "notice"), what="approval notice")
    assert browser.find_element("id", "notice").text == "Approved."
    assert f"approved by {REVIEWER}" in browser.find_element("id", "status").text
    shots(browser, "item-approved")

    rejected = _open_item(browser, server, "print16")
    # the reviewer's name is remembered; a rejection without a reason is refused
    assert browser.find_element("id", "reviewer").get_attribute("value") == REVIEWER
    browser.find_element("id", "reject").click()
    _wait(browser, lambda d: d.find_elements("id", "error"), what="refusal")
    assert "needs a comment" in browser.find_element("id", "error").text
    browser.find_element("id", "comment").send_keys("invented texture in the sky")
    browser.find_element("id", "reject").click()
    _wait(browser, lambda d: d.find_elements("id", "notice"), what="rejection notice")
    assert browser.find_element("id", "notice").text == "Rejected."

    with _catalog(archive) as catalog:
        events = {u: catalog.later_events(u) for u in (approved, rejected)}
        files = {u: review.master(catalog, u) for u in (approved, rejected)}
    (approval,), (rejection,) = events[approved], events[rejected]
    for step, uuid, kind in ((approval, approved, "approval"), (rejection, rejected, "rejection")):
        assert step.type == kind and step.outcome == "success"
        assert [a.name for a in step.agents if a.kind == "person"] == [REVIEWER]
        assert [a.name for a in step.agents if a.kind == "software"] == ["restorium"]
        assert step.parameters["by"] == REVIEWER
        assert step.parameters["master_sha256"] == files[uuid].sha256 == sha256_file(files[uuid].path)
    assert approval.parameters["decision"] == "approved"
    assert approval.parameters["comment"] == "faces and text hold up at 200 %"
    assert rejection.parameters == {**rejection.parameters, "decision": "rejected",
                                    "comment": "invented texture in the sky"}
    # `restorium audit` shows the web decisions like its own
    from flows.cli import app

    out = CliRunner().invoke(app, ["audit", files[approved].path, "--home", str(archive["home"])]).output
    assert f"approval by {REVIEWER}" in out
    assert [r.find_element("css selector", "a.item-link").text
            for r in _filter(browser, server, decision="approved")] == ["wedding"]
    assert [r.find_element("css selector", "a.item-link").text
            for r in _filter(browser, server, decision="rejected")] == ["print16"]


def test_reprocess_with_changed_strengths_makes_a_new_master_and_keeps_the_old(archive, server, browser, shots) -> None:
    from selenium.webdriver.support.ui import Select

    old_uuid = _open_item(browser, server, "scratched")
    old_path = archive["masters"]["scratched"]
    old_sha = sha256_file(old_path)
    Select(browser.find_element("id", "preset")).select_by_value("archival")
    field = browser.find_element("name", "finish.fidelity_blend")
    assert field.get_attribute("placeholder") == str(load_recipe("archival").finish.fidelity_blend)
    field.send_keys("7")  # out of the recipe's range: refused, nothing queued
    browser.find_element("id", "reprocess").click()
    _wait(browser, lambda d: d.find_elements("id", "error"), what="refusal")
    assert "finish.fidelity_blend" in browser.find_element("id", "error").text
    with _catalog(archive) as catalog:
        assert review.master(catalog, old_uuid).requests == []
    Select(browser.find_element("id", "preset")).select_by_value("archival")
    field = browser.find_element("name", "finish.fidelity_blend")
    field.send_keys("0.6")
    browser.find_element("css selector", "#reprocess-form textarea[name=comment]").send_keys("too smooth")
    browser.find_element("id", "reprocess").click()
    _wait(browser, lambda d: d.find_elements("id", "notice"), what="queued notice")
    assert browser.find_element("id", "notice").text == "Reprocessing queued."
    with _catalog(archive) as catalog:
        (request,) = review.master(catalog, old_uuid).requests
    assert request["by"] == REVIEWER and request["preset"] == "archival"
    assert request["strengths"] == {"finish.fidelity_blend": 0.6}
    assert request["recipe"]["finish"]["fidelity_blend"] == 0.6

    # the app started `restorium reprocess --pending`: wait for the new master and the request's end
    deadline = time.monotonic() + 420
    while not browser.find_elements("css selector", "#requests li[data-status=done]"):
        if time.monotonic() > deadline:
            logs = sorted((archive["home"] / "cache/reprocess-logs").glob("*.log"))
            raise AssertionError("no new master: " + (logs[-1].read_text()[-4000:] if logs else "no log"))
        time.sleep(3)
        browser.refresh()
    assert browser.find_elements("id", "superseded")
    shots(browser, "item-superseded")

    with _catalog(archive) as catalog:
        old = review.master(catalog, old_uuid)
        new = review.master(catalog, old.superseded_by)
        new_audit = catalog.audit(master_path=new.path, sha256=new.sha256)
        pending = review.pending_requests(catalog)
    assert pending == []
    assert old_path.is_file() and sha256_file(old_path) == old_sha  # the old master is kept, untouched
    assert Path(new.path).is_file() and new.path != str(old_path)
    assert new.item_uuid == old.item_uuid and new.original["sha256"] == old.original["sha256"]
    assert new.recipe_name == "archival" and new.recipe_hash == request["recipe_hash"]
    assert new_audit.recipe["resolved"]["finish"]["fidelity_blend"] == 0.6
    assert (new.width, new.height) == (old.width, old.height)  # same size as the master it replaces
    result = old.requests[0]["result"]
    assert result["new_master"]["uuid"] == new.uuid and result["run_uuid"] == new.run_uuid

    # the new master is the one to review now; the old one shows only with superseded masters
    browser.find_element("css selector", "#requests a").click()
    _wait(browser, lambda d: d.current_url.endswith(new.uuid), what="new master page")
    assert len(browser.find_elements("css selector", "#versions li")) == 2
    _wait(browser, lambda d: _tiles_loaded(d), what="tiles of the new master")
    shots(browser, "item-reprocessed")
    current = {r.get_attribute("data-master") for r in _filter(browser, server)}
    assert new.uuid in current and old_uuid not in current
    browser.get(f"{server}/items?superseded=1")
    assert old_uuid in {r.get_attribute("data-master") for r in _rows(browser)}
    # a second request on the superseded master is refused
    browser.get(f"{server}/items/{old_uuid}")
    assert not browser.find_elements("id", "reprocess-form")
    from flows.cli import app

    runs = json.loads(CliRunner().invoke(app, ["reprocess", "--pending", "--json", "--home",
                                               str(archive["home"])]).stdout)
    assert runs == []  # nothing left in the queue
