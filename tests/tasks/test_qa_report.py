"""The per-run QA summary from synthetic per-scan QA dicts (the shape `restorium qa --json` prints)."""

from __future__ import annotations

import io
import json
import re

import pytest
from PIL import Image

from tasks.reports.qa_report import reason_kind, severity_key, summarize


def _findings(i: int) -> dict:
    return {
        "blur": {"type": "motion" if i % 5 == 0 else "none", "score": 0.1 * i, "sigma_px": None,
                 "angle_deg": 30.0 if i % 5 == 0 else None, "length_px": 12.0 if i % 5 == 0 else None},
        "sharpness": 1000.0 + 50 * i,
        "noise_sigma": 1.5 + i,
        "scratches": {"count": i % 3, "coverage": 0.001 * (i % 3), "dust_count": i},
        "jpeg_blockiness": 0.02 * i,
        "clipping": {"black": [0.0, 0.0, 0.0], "white": [0.01, 0.0, 0.0]},
        "contrast": 0.3 + 0.02 * i,
        "color_cast": {"a": 1.0, "b": -2.0, "magnitude": 2.2 + i * 0.1},
        "skew_deg": -1.0 + 0.1 * i,
        "phash": "8f3c0a1b2c3d4e5f",
    }


def _capture(verdicts: dict[str, str]) -> dict:
    return {"profile": "fadgi-3star-photo", "verdict": max(verdicts.values(), key=["pass", "warn", "fail"].index),
            "results": [{"rule": r, "verdict": v, "measured": None, "limit": None, "message": ""} for r, v in verdicts.items()]}


@pytest.fixture(scope="module")
def entries() -> list[dict]:
    items = []
    for i in range(14):  # passing scans with findings
        items.append({"path": f"/scans/box1/ok-{i:02d}.tif", "verdict": "pass", "reasons": [], "findings": _findings(i),
                      "capture": _capture({"ppi": "pass", "bit_depth": "pass"})})
    items += [
        {"path": "/scans/box2/noisy.tif", "verdict": "warn", "reasons": ["noisy (sigma 14.2 > 10)"], "findings": _findings(14)},
        {"path": "/scans/box2/streak.tif", "verdict": "warn", "findings": _findings(15),
         "reasons": ["motion blur: 14 px at 30°", "noisy (sigma 11.0 > 10)"]},
        {"path": "/scans/box2/<script>alert(1)</script>.tif", "verdict": "warn", "reasons": ["scratches: 0.4% of the image"],
         "findings": _findings(16)},
        {"path": "/scans/box3/lowres.tif", "verdict": "fail", "findings": _findings(17),
         "reasons": ["ppi 300 < 400 required by fadgi-3star-photo", "bit depth 8 per channel < 16 required by fadgi-3star-photo"],
         "capture": _capture({"ppi": "fail", "bit_depth": "fail"})},
        {"path": "/scans/box3/lowres-noisy.tif", "verdict": "fail", "findings": _findings(18),
         "reasons": ["ppi 240 < 400 required by fadgi-3star-photo", "noisy (sigma 20.0 > 10)", "motion blur: 30 px at 5°"],
         "capture": _capture({"ppi": "fail", "bit_depth": "warn"})},
        {"path": "/scans/box3/truncated.tif", "verdict": "fail", "reasons": ["damaged TIFF data: unexpected end of file"]},
    ]
    return items


def test_counts_by_verdict_and_reason(entries):
    summary = summarize(entries, run="run-1", thresholds={"noise_sigma": 10, "skew_deg": [-0.5, 0.5]})
    assert summary.total == 20
    assert summary.counts_by_verdict == {"fail": 3, "warn": 3, "pass": 14}
    assert summary.counts_by_reason == {
        "noisy": 3, "motion blur": 2, "ppi": 2, "bit depth": 1, "damaged TIFF data": 1, "scratches": 1,
    }
    assert summary.counts_by_capture_rule == {"bit_depth": {"pass": 14, "fail": 1, "warn": 1}, "ppi": {"pass": 14, "fail": 2}}
    assert summary.thresholds == {"noise_sigma": [10.0], "skew_deg": [-0.5, 0.5]}
    json.dumps(summary.to_dict())  # JSON-ready


def test_worst_items_are_ordered_fail_first_then_by_reasons(entries):
    summary = summarize(entries, run="run-1", worst_n=4)
    assert [w.path.rsplit("/", 1)[-1] for w in summary.worst] == [
        "lowres-noisy.tif",  # fail, 3 reasons
        "lowres.tif",  # fail, 2 reasons, 2 capture rules failed
        "truncated.tif",  # fail, 1 reason
        "streak.tif",  # warn, 2 reasons
    ]
    assert summary.worst[3].key_findings == "motion blur 12 px at 30°; noise 16.5; skew +0.5°"
    noisy = next(w for w in summarize(entries, run="r").worst if w.path.endswith("/noisy.tif"))
    assert noisy.key_findings == "noise 15.5; 2 scratches (0.20%); skew +0.4°"
    assert sorted(entries, key=severity_key)[-1]["verdict"] == "pass"
    assert len(summarize(entries, run="r").worst) == 6  # passing scans are never "worst"


def test_histograms_png_is_a_real_image(entries):
    png = summarize(entries, run="run-1", thresholds={"noise_sigma": 10}).histograms_png
    with Image.open(io.BytesIO(png)) as im:
        im.load()
        assert im.format == "PNG" and im.width > 600 and im.height > 200
    with pytest.raises(ValueError, match="unknown findings \\['noise'\\]"):
        summarize(entries, run="r", thresholds={"noise": 10})
    # no decoded scans at all: still a valid (empty) figure
    with Image.open(io.BytesIO(summarize([entries[-1]], run="x").histograms_png)) as im:
        assert im.format == "PNG"


def test_html_is_self_contained_and_escapes_file_names(entries, tmp_path):
    summary = summarize(entries, run="2024-05-01/night")
    page = summary.to_html()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.tif" in page
    for heading in ("Verdicts", "Reasons", "Capture rules", "Worst 6 scans", "Findings"):
        assert f"<h2>{heading}</h2>" in page
    assert page.count("<table>") == 4 and '<td class="n">14</td>' in page
    assert re.search(r'src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', page)
    assert "http" not in page  # nothing fetched from elsewhere
    path = summary.write(tmp_path / "reports")
    assert path.name == "qa-2024-05-01_night.html" and path.read_text(encoding="utf-8") == page
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left behind


def test_markdown_tables(entries):
    md = summarize(entries, run="run-1").to_markdown()
    assert "| verdict | scans |\n| --- | ---: |\n| fail | 3 |\n| warn | 3 |\n| pass | 14 |" in md
    assert "| noisy | 3 |" in md
    assert "| rule | pass | warn | fail | skipped |" in md and "| ppi | 14 | 0 | 2 | 0 |" in md
    assert "| 1 | /scans/box3/lowres-noisy.tif | fail | ppi 240 &lt; 400 required by fadgi-3star-photo;" in md
    assert "<script>" not in md
    every_scan_passed = summarize(entries[:3], run="r").to_markdown()
    assert "None: every scan passed." in every_scan_passed


def test_reason_kinds():
    assert reason_kind("noisy (sigma 12.1 > 10)") == "noisy"
    assert reason_kind("motion blur: 14 px at 30°") == "motion blur"
    assert reason_kind("ppi 300 < 400 required by fadgi-3star-photo") == "ppi"
    assert reason_kind("effective ppi 300 (3000 px over a 254 mm long edge) < 400") == "effective ppi"
    assert reason_kind("no ICC profile embedded; one is required by fadgi-3star-photo") == "no ICC profile embedded"
    assert reason_kind("42") == "42"


def test_missing_and_odd_values_are_tolerated():
    summary = summarize([
        {"path": "a.tif"},  # no verdict: counted as fail, not dropped
        {"path": "b.tif", "verdict": "WARN", "reasons": "faded", "findings": {"noise_sigma": float("nan"), "blur": "?"}},
        {"verdict": "pass", "findings": None},
    ], run="r")
    assert summary.counts_by_verdict == {"fail": 1, "warn": 1, "pass": 1}
    assert summary.counts_by_reason == {"faded": 1}
    assert [w.path for w in summary.worst] == ["a.tif", "b.tif"]
