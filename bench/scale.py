"""Batch-scale behaviour of the whole pipeline, each number beside its reference, in one run.

  throughput whole-flow scans per hour at --size (default 768x576 → x2, 0.44 MP) for today's
             path (the code at --baseline, a git revision run from a temporary worktree with this
             same environment), this code forced to fp32, and this code at its default precision
             (auto); and per-scan time beyond model inference against the model time (target ≤ 15 %)
  memory     peak RSS of the driver for a batch of 500 and of 2,000 small scans (target: flat
             within 10 %: per-scan state lives in the catalog, not in the driver)
  scaling    model-stage throughput with 1 and with 2 Ray CPU workers of one thread each
             (target: near 2x on this 2-core machine)

Every batch is a real `restorium run --json` process (Prefect, local Ray, the compact weights,
SQLite catalog) on synthetic scans cut from the real photographs in ../shared/data.

Usage: python bench/scale.py [--small N] [--large N] [--size WxH] [--baseline REV]
       [--parts throughput,memory,scaling] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
# The last commit before the precision and tiling work (issue 17): "today's path" of the throughput.
BASELINE = "3a84862"


def _scans(folder: Path, count: int, size: tuple[int, int]) -> Path:
    from PIL import Image

    sources = sorted((SHARED / "data/sr_gt/CBSD68").glob("*.png")) + sorted((SHARED / "data/sr_gt/McMaster").glob("*.tif"))
    images = [Image.open(p).convert("RGB") for p in sources]
    w, h = size
    # Larger scans than the sources (at most 500 px): enlarge the photograph first, as a scanner
    # at a higher ppi would see it (smooth, no black borders).
    grow = max(w / min(i.width for i in images), h / min(i.height for i in images), 1.0)
    if grow > 1:
        images = [i.resize((round(i.width * grow) + 1, round(i.height * grow) + 1), Image.Resampling.BICUBIC)
                  for i in images]
    folder.mkdir(parents=True)
    for i in range(count):
        image = images[i % len(images)]
        step = i // len(images)
        x = (step * 17) % max(1, image.width - w)
        y = (step * 13) % max(1, image.height - h)
        box = folder / f"box{i // 250:02d}"
        box.mkdir(exist_ok=True)
        image.crop((x, y, x + w, y + h)).save(box / f"scan{i:05d}.png")
    return folder


def _run(scans: Path, home: Path, env: dict, code: Path = REPO, **settings: str) -> dict:
    """One `restorium run --json` of the code in `code` (run from there: `-m` puts the working
    folder first on the path)."""
    env = {**env, **{f"RESTORIUM_{k.upper()}": v for k, v in settings.items()}, "PYTHONPATH": str(code)}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "flows.cli", "run", str(scans), "--home", str(home), "--json"],
                         env=env, capture_output=True, text=True, timeout=7200, cwd=code)
    if out.returncode not in (0, 1):
        raise RuntimeError(f"restorium run failed ({out.returncode}): {out.stderr[-3000:]}")
    summary = json.loads(out.stdout)
    summary["process_seconds"] = time.perf_counter() - started
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=2000, help="scans in the large batch (memory)")
    ap.add_argument("--large", type=int, default=12, help="realistic-size scans (throughput)")
    ap.add_argument("--quick", action="store_true", help="smaller batches, for a smoke run")
    ap.add_argument("--size", default="768x576", help="size of the throughput scans, WxH")
    ap.add_argument("--baseline", default=BASELINE, help="git revision of today's path (throughput)")
    ap.add_argument("--parts", default="throughput,memory,scaling", help="which measurements to run")
    args = ap.parse_args()
    small, large, scaling = (args.small, args.large, 200) if not args.quick else (400, 4, 40)
    env = {**os.environ, "RESTORIUM_MODELS_DIR": os.environ.get("RESTORIUM_MODELS_DIR", str(SHARED / "models")),
           "PYTHONPATH": str(REPO)}

    with tempfile.TemporaryDirectory(prefix="restorium-scale-") as tmp:
        root = Path(tmp)
        env["PREFECT_HOME"] = str(root / "prefect")  # one Prefect home: its first start is the slow one
        print(f"synthetic scans from ../shared/data; {os.cpu_count()} CPUs; realesr-general-x4v3; x2", flush=True)

        parts = set(args.parts.split(","))
        if "throughput" in parts:
            _throughput(root, large, tuple(int(v) for v in args.size.split("x")), env, args.baseline)
        if "memory" in parts:
            _memory(root, small, env)
        if "scaling" in parts:
            _scaling(root, scaling, env)


def _throughput(root: Path, count: int, size: tuple[int, int], env: dict, baseline: str) -> None:
    scans = _scans(root / "large", count, size)
    tree = root / "baseline"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), baseline],
                   check=True, capture_output=True)
    try:
        runs = {
            f"today's path ({baseline[:10]})": _run(scans, root / "h-base", env, code=tree),
            "this code, fp32": _run(scans, root / "h-fp32", env, precision="fp32"),
            "this code, auto": _run(scans, root / "h-auto", env, precision="auto"),
        }
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True)
    print(f"\nthroughput ({count} scans of {size[0]}x{size[1]} → {2 * size[0]}x{2 * size[1]}, one worker):")
    rates = {}
    for name, summary in runs.items():
        t, n = summary["timings"], summary["counts"]["mastered"]
        assert n == count, (name, summary["counts"])
        per_scan = (t["wall_seconds"] - t["startup_seconds"]) / n
        model = t["model"] / n
        rates[name] = 3600 / per_scan
        stages = {k: round(v / n, 3) for k, v in t.items()
                  if k not in ("wall_seconds", "startup_seconds", "model", "driver_peak_rss_mb", "worker_cpus",
                               "output_megapixels", "cpu")}
        print(f"  {name:<28} {rates[name]:7.0f} scans/h: wall {per_scan:.2f} s/scan = model {model:.2f} s + "
              f"everything else {per_scan - model:.2f} s ({(per_scan - model) / model:.1%} of model time); "
              f"start-up once {t['startup_seconds']:.1f} s")
        print(f"  {'':<28} inside the worker per scan: {stages}")
    base = next(iter(rates.values()))
    for name, rate in list(rates.items())[1:]:
        print(f"  {name}: {rate / base:.2f}x today's scans per hour (target ≥ 2.5x at the default precision)")


def _memory(root: Path, small: int, env: dict) -> None:
    rss = {}
    for count in (small // 4, small):  # separate folders: the scan walker does not follow symlinks
        summary = _run(_scans(root / f"small-{count}", count, (48, 40)), root / f"h-small-{count}", env)
        rss[count] = (summary["timings"]["driver_peak_rss_mb"], summary["counts"]["scans"],
                      summary["timings"]["wall_seconds"])
    (a, na, wa), (b, nb, wb) = rss[small // 4], rss[small]
    print(f"\ndriver peak RSS: {na} scans {a:.0f} MB ({wa:.0f} s), {nb} scans {b:.0f} MB ({wb:.0f} s) → "
          f"{(b - a) / a:+.1%} (target flat within 10 %)")


def _scaling(root: Path, scaling: int, env: dict) -> None:
    folder = _scans(root / "scaling", scaling, (128, 96))
    rates = {}
    for workers in (1, 2):
        summary = _run(folder, root / f"h-w{workers}", env, workers=str(workers), worker_threads="1")
        t = summary["timings"]
        rates[workers] = summary["counts"]["mastered"] / (t["wall_seconds"] - t["startup_seconds"])
        print(f"\n{workers} worker(s) x 1 thread: {summary['counts']['mastered']} scans of 128x96 in "
              f"{t['wall_seconds'] - t['startup_seconds']:.1f} s → {rates[workers]:.2f} scans/s")
    print(f"scaling 1 → 2 workers: {rates[2] / rates[1]:.2f}x (target near 2x)")


if __name__ == "__main__":
    main()
