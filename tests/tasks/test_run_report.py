from tasks.reports import run_report

SUMMARY = {
    "run_uuid": "r-1", "scans_dir": "/scans", "home": "/archive", "recipe": "archival", "recipe_hash": "ab" * 32,
    "counts": {"scans": 4, "ingested": 4, "mastered": 2, "unchanged": 0, "failed": 2, "flagged": 1},
    "timings": {"wall_seconds": 40.0, "startup_seconds": 4.0, "model": 18.0, "upscale": 19.0, "tag": 1.0,
                "output_megapixels": 7.2, "worker_cpus": 2.0},
    "workers": [
        {"host": "gpu-a", "node_id": "n1" * 10, "device": "cpu", "processed": 1, "busy_seconds": 18.0, "cpu_seconds": 30.0},
        {"host": "gpu-b", "node_id": "n2" * 10, "device": "cpu", "processed": 1, "busy_seconds": 9.0, "cpu_seconds": 30.0},
    ],
    "stopped": None, "qa_report": "/archive/reports/qa-r-1.html",
    "scans": [
        {"path": "/scans/a.tif", "outcome": "mastered", "reason": None, "flags": ["fidelity guard: SSIM 0.8"]},
        {"path": "/scans/b.tif", "outcome": "mastered", "reason": None, "flags": []},
        {"path": "/scans/<c>.tif", "outcome": "failed", "reason": "zero-byte file", "flags": []},
        {"path": "/scans/d|e.jpg", "outcome": "failed", "reason": "zero-byte file", "flags": []},
    ],
}


def test_throughput_counts_working_time_only():
    rate = run_report.throughput(SUMMARY)
    assert rate["scans_per_hour"] == 200.0  # 2 mastered in 36 s of working time
    assert rate["output_megapixels_per_second"] == 0.2
    assert rate["cpu_utilisation"] == round(60 / (36 * 2), 3)
    assert rate["worker_busy_share"] == round(27 / (36 * 2), 3)
    assert rate["model_share_of_wall"] == 0.5


def test_markdown_and_html_carry_counts_failures_and_escape_names(tmp_path):
    markdown = run_report.to_markdown(SUMMARY)
    assert "| 4 | 4 | 2 | 0 | 2 | 0 | 1 |" in markdown and "| zero-byte file | 2 |" in markdown
    html = run_report.to_html(SUMMARY)
    assert "&lt;c&gt;.tif" in html and "<c>.tif" not in html
    assert "fidelity guard: SSIM 0.8" in html and "qa-r-1.html" in html
    assert "gpu-b" in html and "| gpu-a | n1n1n1n1n1n1 | cpu | 1 | 18.0 | 30.0 |" in markdown
    path = run_report.write_html(SUMMARY, tmp_path / "reports")
    assert path.name == "run-r-1.html" and path.read_text().startswith("<!doctype html>")
    stopped = run_report.to_markdown({**SUMMARY, "stopped": "disk full"})
    assert "Stopped early:** disk full" in stopped
