"""The morning report of a run: counts, time per stage, throughput, utilisation, failures.

Pure: a run summary (flows.summary.RunSummary.to_dict()) in, markdown (for a Prefect
artifact) and a self-contained HTML page out.
"""

from __future__ import annotations

import html
from collections import Counter
from pathlib import Path
from typing import Any

from tasks.files.atomic import atomic_write
from tasks.records.results import ScanStatus

_STAGES = ("decode", "qa", "tone", "cleanup", "denoise", "deblur", "upscale", "finish", "guard", "tag")
_COUNTS = ("scans", "ingested", *(status.value for status in ScanStatus), "flagged")


def throughput(summary: dict[str, Any]) -> dict[str, float]:
    """Scans per hour and output megapixels per second over the run's working time, and how
    busy the workers' CPUs were (worker CPU seconds / (wall seconds x CPUs they had))."""
    t = summary.get("timings", {})
    wall = max(t.get("wall_seconds", 0.0) - t.get("startup_seconds", 0.0), 1e-9)
    done = summary["counts"].get(ScanStatus.MASTERED, 0)
    out = {
        "scans_per_hour": round(done * 3600.0 / wall, 1),
        "output_megapixels_per_second": round(t.get("output_megapixels", 0.0) / wall, 3),
        "model_share_of_wall": round(t.get("model", 0.0) / wall, 3),
    }
    workers = summary.get("workers") or []
    if workers:
        # busy: share of the wall time the workers spent inside a scan (idle = starved by the driver);
        # CPU: their processes' CPU seconds during the run over the CPUs they were given.
        out["worker_busy_share"] = round(sum(w.get("busy_seconds", 0.0) for w in workers) / (wall * len(workers)), 3)
        cpus = t.get("worker_cpus")
        if cpus:
            out["cpu_utilisation"] = round(sum(w.get("cpu_seconds", 0.0) for w in workers) / (wall * cpus), 3)
    return out


def _worker_rows(summary: dict[str, Any]) -> list[list[Any]]:
    return [[w.get("host", ""), (w.get("node_id") or "")[:12], w.get("device", ""), w.get("processed", 0),
             f"{w.get('busy_seconds', 0.0):.1f}", f"{w.get('cpu_seconds', 0.0):.1f}"]
            for w in summary.get("workers") or []]


_WORKER_HEAD = ["host", "node", "device", "scans", "busy s", "CPU s"]


def _failures(summary: dict[str, Any]) -> list[tuple[str, int]]:
    return Counter(s["reason"] for s in summary["scans"] if s["outcome"] == ScanStatus.FAILED).most_common()


def to_markdown(summary: dict[str, Any]) -> str:
    c, t, rate = summary["counts"], summary.get("timings", {}), throughput(summary)
    lines = [
        f"# restorium run {summary['run_uuid']}",
        f"{summary['scans_dir']} → {summary['home']} · recipe {summary['recipe']} ({summary['recipe_hash'][:12]})",
        "",
        "| scans | ingested | mastered | unchanged | failed | skipped | flagged |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        "| " + " | ".join(str(c.get(k, 0)) for k in _COUNTS) + " |",
        "",
    ]
    if summary.get("stopped"):
        lines += [f"**Stopped early:** {_md(summary['stopped'])}", ""]
    lines += ["| throughput | value |", "|---|---:|"]
    lines += [f"| {k.replace('_', ' ')} | {v} |" for k, v in rate.items()]
    lines += ["", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {s} | {t[s]:.1f} |" for s in (*_STAGES, "model") if s in t]
    lines += [f"| wall (start-up {t.get('startup_seconds', 0):.1f}) | {t.get('wall_seconds', 0):.1f} |"]
    if _worker_rows(summary):
        lines += ["", "| " + " | ".join(_WORKER_HEAD) + " |", "|---|---|---|---:|---:|---:|"]
        lines += ["| " + " | ".join(map(str, row)) + " |" for row in _worker_rows(summary)]
    failures = _failures(summary)
    if failures:
        lines += ["", "| failure | scans |", "|---|---:|"] + [f"| {_md(r)} | {n} |" for r, n in failures]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return html.escape(str(text)).replace("|", "\\|")


def to_html(summary: dict[str, Any]) -> str:
    c, t, rate = summary["counts"], summary.get("timings", {}), throughput(summary)
    e = html.escape

    def table(head: list[str], rows: list[list[Any]]) -> str:
        th = "".join(f"<th>{e(h)}</th>" for h in head)
        body = "".join("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>" for row in rows)
        return f"<table><tr>{th}</tr>{body}</table>"

    parts = [
        f"<h1>restorium run {e(summary['run_uuid'])}</h1>",
        f"<p>{e(summary['scans_dir'])} → {e(summary['home'])}; recipe {e(summary['recipe'])} "
        f"<code>{e(summary['recipe_hash'])}</code></p>",
    ]
    if summary.get("stopped"):
        parts.append(f"<p class='stop'>Stopped early: {e(summary['stopped'])}</p>")
    keys = _COUNTS
    parts.append(table(list(keys), [[c.get(k, 0) for k in keys]]))
    parts.append("<h2>Throughput</h2>" + table(["measure", "value"], [[k.replace("_", " "), v] for k, v in rate.items()]))
    stages = [[s, f"{t[s]:.1f}"] for s in (*_STAGES, "model") if s in t]
    stages.append(["wall", f"{t.get('wall_seconds', 0):.1f} (start-up {t.get('startup_seconds', 0):.1f})"])
    parts.append("<h2>Seconds per stage (all scans)</h2>" + table(["stage", "seconds"], stages))
    if _worker_rows(summary):
        parts.append("<h2>Workers</h2>" + table(_WORKER_HEAD, _worker_rows(summary)))
    failures = _failures(summary)
    if failures:
        parts.append("<h2>Failures</h2>" + table(["reason", "scans"], [[r, n] for r, n in failures]))
        failed = [[s["path"], s["reason"]] for s in summary["scans"] if s["outcome"] == ScanStatus.FAILED]
        parts.append(table(["scan", "reason"], failed))
    skipped = [[s["path"], s["reason"]] for s in summary["scans"] if s["outcome"] == "skipped"]
    if skipped:
        parts.append("<h2>Skipped (not scans; never read)</h2>" + table(["entry", "reason"], skipped))
    flagged = [[s["path"], "; ".join(s.get("flags", []))] for s in summary["scans"] if s.get("flags")]
    if flagged:
        parts.append("<h2>Flagged for review</h2>" + table(["scan", "why"], flagged))
    if summary.get("qa_report"):
        parts.append(f"<p>QA summary: <a href='{e(Path(summary['qa_report']).name)}'>"
                     f"{e(Path(summary['qa_report']).name)}</a></p>")
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.stop{color:#b00;font-weight:bold}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>restorium run {e(summary['run_uuid'])}"
            f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>")


def write_html(summary: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"run-{summary['run_uuid']}.html"
    atomic_write(path, lambda temp: Path(temp).write_text(to_html(summary), encoding="utf-8"))
    return path
