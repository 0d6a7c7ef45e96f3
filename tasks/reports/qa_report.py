"""The per-run QA summary a person reads: counts, the worst scans, histograms of the findings.

Pure: per-scan QA dicts in, a QASummary out, rendered as markdown (for a Prefect artifact) or as
one self-contained HTML file (tables + the histogram PNG inlined). Only `QASummary.write` touches
the disk, atomically.

Per-scan input (missing keys are tolerated; `findings` is empty for a scan that did not decode):
    {"path": str, "verdict": "pass"|"warn"|"fail", "reasons": [str], "findings": {...},
     "capture": CaptureCheck.to_dict()  # optional}

Worst-first ordering (`severity_key`): verdict (fail, then warn; passing scans are never
listed), then the number of reasons, then the number of capture rules failed, then warned,
then the path so the order is stable.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from tasks.files.atomic import atomic_write

VERDICTS = ("fail", "warn", "pass")
_RANK = {"pass": 0, "warn": 1, "fail": 2}  # anything else ranks as fail: unknown is not fine

# One histogram panel per numeric finding: (key for thresholds, path in findings, axis label).
PANELS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("noise_sigma", ("noise_sigma",), "noise sigma (0-255)"),
    ("blur.score", ("blur", "score"), "blur score"),
    ("sharpness", ("sharpness",), "sharpness"),
    ("scratches.coverage", ("scratches", "coverage"), "scratch coverage"),
    ("contrast", ("contrast",), "contrast"),
    ("color_cast.magnitude", ("color_cast", "magnitude"), "colour cast magnitude"),
    ("skew_deg", ("skew_deg",), "skew (degrees)"),
    ("jpeg_blockiness", ("jpeg_blockiness",), "JPEG blockiness"),
)

Thresholds = Mapping[str, float | Sequence[float]]


@dataclass(frozen=True)
class WorstItem:
    path: str
    verdict: str
    reasons: list[str]
    key_findings: str  # the few numbers a person checks first, e.g. "motion blur; noise 12.3"


@dataclass
class QASummary:
    run: str
    total: int
    counts_by_verdict: dict[str, int]
    counts_by_reason: dict[str, int]  # scans per reason kind, most frequent first
    counts_by_capture_rule: dict[str, dict[str, int]]  # rule → {pass, warn, fail, skipped}
    worst: list[WorstItem]
    finding_values: dict[str, list[float]] = field(repr=False)  # panel key → the scans' values
    thresholds: dict[str, list[float]] = field(default_factory=dict)

    @cached_property
    def histograms_png(self) -> bytes:
        # Rendered on first use (~0.5 s of matplotlib): the markdown artifact does not need it.
        return histograms_png(self.finding_values, self.thresholds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, without the PNG (it lives in the HTML file)."""
        return {
            "run": self.run, "total": self.total, "counts_by_verdict": self.counts_by_verdict,
            "counts_by_reason": self.counts_by_reason, "counts_by_capture_rule": self.counts_by_capture_rule,
            "worst": [asdict(w) for w in self.worst], "thresholds": self.thresholds,
        }

    def worst_rows(self) -> list[dict[str, str]]:
        """The worst items as rows (e.g. for a Prefect table artifact)."""
        return [
            {"scan": w.path, "verdict": w.verdict, "reasons": "; ".join(w.reasons), "findings": w.key_findings}
            for w in self.worst
        ]

    def _sections(self) -> list[tuple[str, list[str], list[tuple[Any, ...]], str]]:
        """(heading, column names, rows, text when empty): the tables both renderings show."""
        sections: list[tuple[str, list[str], list[tuple[Any, ...]], str]] = [
            ("Verdicts", ["verdict", "scans"], list(self.counts_by_verdict.items()), ""),
            ("Reasons", ["reason", "scans"], list(self.counts_by_reason.items()), "No reasons given."),
        ]
        if self.counts_by_capture_rule:
            rule_counts = self.counts_by_capture_rule.items()
            rows = [(rule, *(c.get(col, 0) for col in _CAPTURE_COLS)) for rule, c in rule_counts]
            sections.append(("Capture rules", ["rule", *_CAPTURE_COLS], rows, ""))
        worst = [(i, w.path, w.verdict, "; ".join(w.reasons), w.key_findings) for i, w in enumerate(self.worst, 1)]
        sections.append((f"Worst {len(self.worst)} scans", ["#", "scan", "verdict", "reasons", "findings"], worst,
                         "None: every scan passed."))
        return sections

    def _headline(self) -> list[tuple[int, str]]:
        return [(self.counts_by_verdict.get(v, 0), v) for v in VERDICTS]

    def to_markdown(self) -> str:
        counts = ", ".join(f"{n} {v}" for n, v in self._headline())
        out = [f"# QA summary, run {_md(self.run)}", "", f"**{self.total} scans**: {counts}.", ""]
        for heading, headers, rows, empty in self._sections():
            out += [f"## {heading}", "", *(_md_table(headers, rows) if rows else [empty]), ""]
        return "\n".join(out)

    def to_html(self) -> str:
        """One self-contained page: the same tables, and the histograms inlined as a PNG."""
        title = _h(f"QA summary, run {self.run}")
        counts = ", ".join(f'<span class="{_h(v)}">{n} {_h(v)}</span>' for n, v in self._headline())
        parts = [
            "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{title}</title>", f"<style>{_CSS}</style></head><body>",
            f"<h1>{title}</h1>", f"<p><strong>{self.total} scans</strong>: {counts}.</p>",
        ]
        for heading, headers, rows, empty in self._sections():
            parts += [f"<h2>{_h(heading)}</h2>", _html_table(headers, rows) if rows else f"<p>{_h(empty)}</p>"]
        data = base64.b64encode(self.histograms_png).decode("ascii")
        parts += ["<h2>Findings</h2>", f'<img alt="histograms of the QA findings" src="data:image/png;base64,{data}">']
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"

    def write(self, folder: str | Path) -> Path:
        """Write qa-<run>.html into `folder` (created if needed) atomically; return its path."""
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        path = target / f"qa-{re.sub(r'[^A-Za-z0-9._-]', '_', self.run) or 'run'}.html"
        text = self.to_html()
        atomic_write(path, lambda temp: temp.write_text(text, encoding="utf-8"))
        return path


def summarize(
    entries: Iterable[Mapping[str, Any]],
    *,
    run: str,
    worst_n: int = 10,
    thresholds: Thresholds | None = None,
) -> QASummary:
    """Counts, the `worst_n` worst scans (see severity_key) and the findings' histograms."""
    items = list(entries)
    limits = {k: _as_list(v) for k, v in (thresholds or {}).items()}
    unknown = sorted(set(limits) - {key for key, _, _ in PANELS})
    if unknown:  # a misspelt key would silently draw no line
        raise ValueError(f"thresholds for unknown findings {unknown}; known: {[key for key, _, _ in PANELS]}")
    verdicts: Counter[str] = Counter(_verdict(e) for e in items)
    by_verdict = {v: verdicts.get(v, 0) for v in VERDICTS} | {v: n for v, n in verdicts.items() if v not in VERDICTS}
    reasons: Counter[str] = Counter()
    for entry in items:
        reasons.update({reason_kind(r) for r in _reasons(entry)})  # scans, not mentions
    capture: dict[str, Counter[str]] = {}
    for entry in items:
        for result in _capture_results(entry):
            capture.setdefault(str(result.get("rule", "?")), Counter())[str(result.get("verdict", "?"))] += 1
    flagged = sorted((e for e in items if _verdict(e) != "pass"), key=severity_key)
    worst = [
        WorstItem(str(e.get("path") or "(unnamed)"), _verdict(e), _reasons(e), key_findings(_findings(e)))
        for e in flagged[: max(0, worst_n)]
    ]
    return QASummary(
        run=run, total=len(items), counts_by_verdict=by_verdict,
        counts_by_reason=dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        counts_by_capture_rule={rule: dict(c) for rule, c in sorted(capture.items())},
        worst=worst, finding_values=finding_values(items), thresholds=limits,
    )


def severity_key(entry: Mapping[str, Any]) -> tuple:
    """Sort key, worst first (see the module docstring)."""
    results = _capture_results(entry)
    failed = sum(1 for r in results if r.get("verdict") == "fail")
    warned = sum(1 for r in results if r.get("verdict") == "warn")
    return (-_RANK.get(_verdict(entry), 2), -len(_reasons(entry)), -failed, -warned, str(entry.get("path") or ""))


# A reason's kind is its leading words, up to the first number, bracket, colon or comparison,
# at most four words: "noisy (sigma 12.1 > 10)" → "noisy"; "motion blur: 14 px at 30°" →
# "motion blur"; "ppi 300 < 400 required by …" → "ppi".
_KIND_END = re.compile(r"[\d(\[:;,=<>≥≤]|\s[-–—]\s")


def reason_kind(reason: str) -> str:
    text = " ".join(str(reason).split())
    match = _KIND_END.search(text)
    head = (text[: match.start()] if match else text).strip(" .-–—")
    words = head.split()[:4] or text.split()[:1]
    return " ".join(words) or "unspecified"


def key_findings(findings: Mapping[str, Any]) -> str:
    """The numbers a person looks at first, in a few words (empty when nothing stands out)."""
    parts = []
    blur = findings.get("blur")
    if isinstance(blur, Mapping) and blur.get("type") not in (None, "none"):
        text = f"{blur['type']} blur"
        if blur.get("type") == "motion" and _num(blur.get("length_px")) is not None:
            text += f" {_num(blur['length_px']):.0f} px"
            if _num(blur.get("angle_deg")) is not None:
                text += f" at {_num(blur['angle_deg']):.0f}°"
        parts.append(text)
    noise = _num(findings.get("noise_sigma"))
    if noise is not None:
        parts.append(f"noise {noise:.1f}")
    scratches = findings.get("scratches")
    if isinstance(scratches, Mapping) and (_num(scratches.get("count")) or 0) > 0:
        coverage = _num(scratches.get("coverage"))
        count = int(_num(scratches["count"]) or 0)
        share = f" ({coverage:.2%})" if coverage is not None else ""
        parts.append(f"{count} scratch{'' if count == 1 else 'es'}{share}")
    skew = _num(findings.get("skew_deg"))
    if skew is not None and abs(skew) >= 0.05:
        parts.append(f"skew {skew:+.1f}°")
    return "; ".join(parts)


def finding_values(entries: Iterable[Mapping[str, Any]]) -> dict[str, list[float]]:
    """Per histogram panel, the finite values the scans reported (missing ones left out)."""
    items = list(entries)
    return {
        key: [v for v in (_num(_dig(_findings(e), path)) for e in items) if v is not None]
        for key, path, _ in PANELS
    }


def histograms_png(values: Mapping[str, Sequence[float]], thresholds: Mapping[str, list[float]] | None = None) -> bytes:
    """One small histogram per numeric finding (see finding_values), thresholds as dashed lines."""
    # Imported here: matplotlib costs ~0.5 s to import and only the report needs it. The
    # object API with the Agg canvas avoids pyplot's global state (safe in worker threads).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    thresholds = thresholds or {}
    cols = 4
    rows = math.ceil(len(PANELS) / cols)
    fig = Figure(figsize=(3.2 * cols, 2.4 * rows), dpi=100)
    FigureCanvasAgg(fig)
    # Fixed margins: matplotlib's layout engines double the rendering time.
    fig.subplots_adjust(left=0.04, right=0.99, top=0.92, bottom=0.08, wspace=0.25, hspace=0.5)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (key, _, label) in zip(axes, PANELS, strict=False):
        data = list(values.get(key, []))
        ax.set_title(f"{label} (n={len(data)})", fontsize=9)
        ax.tick_params(labelsize=7)
        if data:
            ax.hist(data, bins=min(20, max(5, len(data) // 2)), color="#4a7ab5", edgecolor="white")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
        for limit in thresholds.get(key, []):
            ax.axvline(limit, color="#c0392b", linestyle="--", linewidth=1.2)
    for ax in axes[len(PANELS):]:
        ax.set_visible(False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


# -- helpers ----------------------------------------------------------------------------------

_CAPTURE_COLS = ["pass", "warn", "fail", "skipped"]
_CSS = (
    "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}"
    "td.n{text-align:right}th{background:#f3f3f3}.fail{color:#b00020}.warn{color:#a15c00}"
    ".pass{color:#1b7a2e}img{max-width:100%}td.path{font-family:monospace;word-break:break-all}"
)


def _verdict(entry: Mapping[str, Any]) -> str:
    return str(entry.get("verdict") or "fail").strip().lower()


def _reasons(entry: Mapping[str, Any]) -> list[str]:
    value = entry.get("reasons") or []
    return [str(value)] if isinstance(value, str) else [str(r) for r in value]


def _findings(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    value = entry.get("findings")
    return value if isinstance(value, Mapping) else {}


def _capture_results(entry: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    capture = entry.get("capture")
    results = capture.get("results") if isinstance(capture, Mapping) else None
    return [r for r in results or [] if isinstance(r, Mapping)]


def _dig(mapping: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = mapping
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _num(value: Any) -> float | None:
    """A finite number, or None (bools, strings, NaN and missing values are not data)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _as_list(value: float | Sequence[float]) -> list[float]:
    return [float(v) for v in value] if isinstance(value, Sequence) and not isinstance(value, str) else [float(value)]


def _md(value: Any) -> str:
    # Markdown table cells: no pipes or newlines; HTML-escaped because Prefect renders raw HTML.
    return html.escape(str(value)).replace("|", "\\|").replace("\n", " ")


def _md_table(headers: list[str], rows: list[tuple]) -> list[str]:
    align = ["---:" if h in ("#", "scans", *_CAPTURE_COLS) else "---" for h in headers]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines


def _h(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _html_table(headers: list[str], rows: list[tuple]) -> str:
    def cell(header: str, value: Any) -> str:
        cls = {"scan": "path", "verdict": _h(value)}.get(header, "n" if isinstance(value, int) else "")
        return f'<td class="{cls}">{_h(value)}</td>' if cls else f"<td>{_h(value)}</td>"

    head = "".join(f"<th>{_h(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(h, v) for h, v in zip(headers, row, strict=True)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
