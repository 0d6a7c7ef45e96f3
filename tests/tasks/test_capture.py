"""Capture-spec checks on real header facts and real ICC profiles (built with LittleCMS)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import ImageCms

from config.capture import CaptureProfile, load_capture_profile
from tasks.files.imageio import decode, inspect
from tasks.qa.capture import check_capture, description_matches, read_icc
from tasks.records.types import TechnicalMetadata


def _icc(space: str = "sRGB") -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile(space)).tobytes()


def _tech(**changes) -> TechnicalMetadata:
    base = dict(format="TIFF", width=4800, height=3600, channels=3, bit_depth=16, mode="rgb/uint16",
                has_icc=True, ppi=400.0, orientation=None)
    return TechnicalMetadata(**(base | changes))


def _by_rule(check):
    return {r.rule: r for r in check.results}


@pytest.fixture(scope="module")
def fadgi3() -> CaptureProfile:
    return load_capture_profile("fadgi-3star-photo")


def test_fadgi_3star_fails_an_8bit_300ppi_scan_with_the_numbers(fadgi3):
    check = check_capture(_tech(bit_depth=8, ppi=300.0, mode="rgb/uint8"), _icc(), fadgi3)
    results = _by_rule(check)
    assert check.verdict == "fail"
    assert results["ppi"].verdict == "fail" and results["ppi"].measured == 300.0
    assert results["ppi"].limit["min"] == 400
    assert results["ppi"].message.startswith("ppi 300 < 400 required by fadgi-3star-photo")
    assert results["bit_depth"].verdict == "fail"
    assert (results["bit_depth"].measured, results["bit_depth"].limit) == (8, 16)
    assert "bit depth 8 per channel < 16 required by fadgi-3star-photo" in results["bit_depth"].message
    assert {r.rule for r in check.problems} == {"ppi", "bit_depth"}


def test_fadgi_3star_passes_a_conforming_16bit_tiff_read_from_disk(tmp_path, fadgi3):
    path = tmp_path / "print.tif"
    pixels = np.random.default_rng(0).integers(0, 65535, (48, 64, 3), dtype=np.uint16)
    tifffile.imwrite(path, pixels, photometric="rgb", resolution=(400, 400), resolutionunit="INCH",
                     extratags=[(34675, 7, None, _icc(), True)])
    tech = inspect(path)
    icc = decode(path, max_pixels=10**7).icc
    check = check_capture(tech, icc, fadgi3, physical_long_edge_mm=64 / 400 * 25.4)
    assert check.verdict == "pass", [r.message for r in check.problems]
    results = _by_rule(check)
    assert results["icc_color_space"].measured == "RGB"
    assert results["icc_description"].measured == "sRGB built-in"
    assert results["effective_ppi"].measured == pytest.approx(400, abs=0.1)
    # JSON-ready: one entry per configured rule, each with the measured value and the limit
    data = json.loads(json.dumps(check.to_dict()))
    configured = [name for name, rule in fadgi3.rules if rule is not None]
    assert data["verdict"] == "pass" and [r["rule"] for r in data["results"]] == configured
    assert all({"rule", "verdict", "measured", "limit", "message"} <= set(r) for r in data["results"])


def test_icc_colour_space_must_be_allowed_and_fit_the_image(fadgi3):
    lab = check_capture(_tech(), _icc("LAB"), fadgi3)
    result = _by_rule(lab)["icc_color_space"]
    assert lab.verdict == "fail" and result.measured == "LAB"
    assert "ICC colour space LAB is not allowed by fadgi-3star-photo" in result.message

    srgb = _icc()
    gray = srgb[:16] + b"GRAY" + srgb[20:]  # a grey profile (per its header) on an RGB scan
    assert read_icc(gray).color_space == "GRAY"
    mismatch = _by_rule(check_capture(_tech(), gray, fadgi3))["icc_color_space"]
    assert mismatch.verdict == "fail" and "does not fit a 3-channel RGB image" in mismatch.message
    # the same header on a grayscale scan is right
    ok = _by_rule(check_capture(_tech(channels=1, mode="minisblack/uint16"), gray, fadgi3))["icc_color_space"]
    assert ok.verdict == "pass"


def test_missing_or_broken_icc_is_reported_once(fadgi3):
    check = check_capture(_tech(has_icc=False), None, fadgi3)
    results = _by_rule(check)
    assert results["icc_present"].verdict == "fail"
    assert "no ICC profile embedded" in results["icc_present"].message
    assert results["icc_color_space"].verdict == "skipped"  # absence is icc_present's finding
    assert [r.rule for r in check.problems] == ["icc_present"]
    broken = _by_rule(check_capture(_tech(), b"not a profile" * 20, fadgi3))["icc_color_space"]
    assert broken.verdict == "fail" and "not an ICC profile" in broken.message


def test_missing_ppi_is_reported_not_a_crash(fadgi3):
    check = check_capture(_tech(ppi=None), _icc(), fadgi3)
    result = _by_rule(check)["ppi"]
    assert result.measured is None and result.verdict == "warn"  # the profile's if_missing
    assert "no resolution (ppi) recorded" in result.message and "≥ 400" in result.message
    assert check.verdict == "warn"
    effective = _by_rule(check)["effective_ppi"]
    assert effective.verdict == "skipped" and "no catalogued physical size" in effective.message


def test_effective_ppi_from_the_catalogued_physical_size(fadgi3):
    # 3000 px over a 10-inch (254 mm) print is 300 ppi, whatever the file's ppi tag claims
    check = check_capture(_tech(width=3000, height=2000, ppi=600.0), _icc(), fadgi3, physical_long_edge_mm=254)
    result = _by_rule(check)["effective_ppi"]
    assert result.verdict == "fail" and result.measured == pytest.approx(300)
    assert "effective ppi 300 (3000 px over a 254 mm long edge) < 400" in result.message
    assert _by_rule(check)["ppi"].verdict == "pass"
    # within FADGI's 2% sampling tolerance at 3 stars: 393 ppi is accepted, 391 is not
    near = check_capture(_tech(width=3930, height=2000), _icc(), fadgi3, physical_long_edge_mm=254)
    assert _by_rule(near)["effective_ppi"].verdict == "pass"
    short = check_capture(_tech(width=3910, height=2000), _icc(), fadgi3, physical_long_edge_mm=254)
    assert "392 accepted with its 2% tolerance" in _by_rule(short)["effective_ppi"].message


def test_access_only_passes_almost_anything():
    access = load_capture_profile("access-only")
    jpeg = _tech(format="JPEG", bit_depth=8, width=1600, height=1200, has_icc=False, ppi=None, mode="L", channels=1)
    assert check_capture(jpeg, None, access).verdict == "pass"
    tiny = check_capture(_tech(width=640, height=480), None, access)
    assert tiny.verdict == "warn"
    assert _by_rule(tiny)["long_edge"].message == "long edge 640 px < 1000 px recommended by access-only"


def test_format_and_max_ppi_rules():
    profile = CaptureProfile.model_validate({
        "name": "strict", "source": "test",
        "rules": {"format": {"allowed": ["tif"]}, "ppi": {"min": 300, "max": 600, "severity": "warn"}},
    })
    check = check_capture(_tech(format="PNG", ppi=1200.0), None, profile)
    results = _by_rule(check)
    assert results["format"].verdict == "fail" and results["format"].limit == ["TIFF"]
    assert "format PNG is not allowed by strict" in results["format"].message
    assert results["ppi"].verdict == "warn" and "ppi 1200 > 600, the most strict allows" in results["ppi"].message


def test_metamorfoze_light_wants_its_named_rgb_spaces():
    light = load_capture_profile("metamorfoze-light")
    check = check_capture(_tech(bit_depth=8, ppi=300.0), _icc(), light)
    result = _by_rule(check)["icc_description"]
    assert check.verdict == "fail" and result.verdict == "fail"
    assert "'sRGB built-in' is not one metamorfoze-light names" in result.message
    assert description_matches("eciRGB_v2 ICCv4", ["eciRGB v2"]) == "eciRGB v2"
    assert description_matches("Adobe RGB (1998)", ["eciRGB v2", "Adobe RGB (1998)"]) == "Adobe RGB (1998)"
    assert description_matches("sRGB IEC61966-2.1", ["Adobe RGB (1998)"]) is None
