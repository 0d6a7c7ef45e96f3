"""One large 16-bit scan mastered x2 (or --scale): peak memory, time per stage, and a seam check.

A 16-bit RGB TIFF of --size (default 6000x4000, 24 MP) is made from a real photograph (enlarged,
with a little grain so it is not flat), then mastered by the worker's own path (models loaded as
a worker loads them, tasks.steps.pipeline.process_scan, archival recipe at x2, precision auto) in a
child process whose peak RSS is printed beside the target (≤ 4 GB).

Seam check: the mean absolute step between neighbouring columns (and rows) of the master at the
model's tile boundaries, against the same statistic over all columns (rows): a seam shows as a
ratio well above 1.

Usage: python bench/large_scan.py [--size 6000x4000] [--precision auto] [--scale 2]
(--size 12000x10000 --scale 1: a 120 MP scan cleaned up at its own size, no model pass.)
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

_CHILD = r"""
import json, os, resource, sys, threading, time
from contextlib import contextmanager
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import tasks.steps.pipeline as pipeline

# Peak resident memory per stage: a sampler thread reads /proc every 10 ms and charges the stage
# the pipeline last entered (its own timing context says which).
stage_peaks, stage_entry, current = {}, {}, ["load"]
_page = os.sysconf("SC_PAGE_SIZE")
def _sample():
    while True:
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * _page / 2**20
        stage_peaks[current[0]] = max(stage_peaks.get(current[0], 0.0), rss)
        time.sleep(0.01)
threading.Thread(target=_sample, daemon=True).start()
_timed = pipeline.StepContext.timed
@contextmanager
def _charged(self, stage):
    with open("/proc/self/statm") as f:
        stage_entry.setdefault(stage, int(f.read().split()[1]) * _page / 2**20)
    current[0] = stage
    with _timed(self, stage):
        yield
pipeline.StepContext.timed = _charged
from config.recipe import load_recipe
from config.version import software_version
from flows.models_setup import resolve_recipe_models
from config.settings import Settings
from flows.actors import build_toolkit
from tasks.files.ingest import ingest_file, ingest_steps
from tasks.records.keys import derivation_key, stable_uuid
from tasks.steps.pipeline import process_scan
from tasks.records.types import ScanJob

scan, out, precision, scale = Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], float(sys.argv[5])
cfg = Settings(precision=precision)
recipe = load_recipe("archival").with_target(scale=scale)
models = resolve_recipe_models(recipe, cfg)
kit, _ = build_toolkit(cfg.models_dir, "cpu", models.upscale_models, models.denoiser, None, None,
                       models.precision, cfg.tile)
facts = ingest_file(scan)
key = derivation_key(facts.sha256, recipe.hash, models.weights, software_version(), models.precision)
job = ScanJob(
    original_path=str(scan), original_sha256=facts.sha256, item_uuid=stable_uuid("item", facts.sha256),
    item_identifier=scan.stem, original_uuid=stable_uuid("original", facts.sha256),
    master_uuid=stable_uuid("master", key), access_uuid=stable_uuid("access", key), derivation_key=key,
    run_uuid="bench", recipe=recipe.model_dump(mode="json"), recipe_hash=recipe.hash,
    master_path=str(out / "master.tif"), access_path=str(out / "access.jpg"), review_path=str(out / "review.png"),
    prior_steps=ingest_steps(facts, [kit.software]), max_pixels=10**9,
)
began = time.perf_counter()
outcome = process_scan(job, kit)
upscale = next((s.parameters for s in outcome.steps if s.step == "upscale"), {})
print(json.dumps({"status": outcome.status, "reason": outcome.reason, "seconds": time.perf_counter() - began,
                  "timings": outcome.timings, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "master": outcome.master.path if outcome.master else None, "precision": models.precision,
                  "tile": upscale.get("tile"), "input_size": upscale.get("input_size"), "stage_peaks_mb": stage_peaks, "stage_entry_mb": stage_entry}))
"""


def _make_scan(path: Path, width: int, height: int) -> None:
    import numpy as np
    import tifffile
    from PIL import Image

    photo = Image.open(SHARED / "data/sr_gt/McMaster/1.tif").convert("RGB")
    big = np.asarray(photo.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32) * 257
    big += np.random.default_rng(0).normal(0, 300, big.shape).astype(np.float32)  # grain, 16-bit scale
    tifffile.imwrite(path, np.clip(big, 0, 65535).astype(np.uint16), photometric="rgb",
                     resolution=(600, 600), resolutionunit="INCH")


def _seam_ratio(master: Path, tile_in: int, scale: float) -> tuple[float, float]:
    """(columns, rows): boundary step / all-steps mean, from the master's 16-bit pixels."""
    import numpy as np
    import tifffile

    from models.tiling import tile_spans

    img = tifffile.imread(master).astype(np.float32)
    h, w = img.shape[:2]
    ratios = []
    for axis, length in ((1, w), (0, h)):
        steps = np.abs(np.diff(img, axis=axis)).mean(axis=tuple(a for a in range(img.ndim) if a != axis))
        cuts = [round(a * scale) for a, _ in tile_spans(round(length / scale), tile_in, 0)[1:]]
        ratios.append(float(np.mean([steps[c - 1] for c in cuts]) / steps.mean()) if cuts else 1.0)
    return ratios[0], ratios[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="6000x4000")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--scale", type=float, default=2.0)
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    env = {**os.environ, "RESTORIUM_MODELS_DIR": os.environ.get("RESTORIUM_MODELS_DIR") or str(SHARED / "models")}
    with tempfile.TemporaryDirectory(prefix="restorium-large-") as tmp:
        scan, out = Path(tmp) / "scan16.tif", Path(tmp) / "out"
        t = time.perf_counter()
        _make_scan(scan, width, height)
        print(f"16-bit RGB scan {width}x{height} ({width * height / 1e6:.0f} MP, "
              f"{scan.stat().st_size / 2**20:.0f} MiB) made in {time.perf_counter() - t:.0f} s; mastering x{args.scale:g} ...",
              flush=True)
        child = subprocess.run([sys.executable, "-c", _CHILD, str(REPO), str(scan), str(out), args.precision, str(args.scale)],
                               capture_output=True, text=True, env=env, cwd=REPO)
        if child.returncode:
            print(child.stderr[-3000:])
            raise SystemExit(f"the worker process failed (exit {child.returncode}; -9 is the kernel's OOM killer)")
        result = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"status {result['status']} {result['reason'] or ''}; precision {result['precision']}; "
              f"model tile {result['tile']}")
        print(f"peak RSS of the worker process: {result['peak_rss_mb'] / 1024:.2f} GiB (target ≤ 4 GB)")
        entry = result["stage_entry_mb"]
        print("RSS by stage, on entry → peak inside: "
              + ", ".join(f"{k} {entry[k] / 1024:.2f} → {v / 1024:.2f} GiB" if k in entry else f"{k} {v / 1024:.2f} GiB"
                          for k, v in result["stage_peaks_mb"].items()))
        print(f"wall {result['seconds']:.0f} s; stages: "
              + ", ".join(f"{k} {v:.1f} s" for k, v in result["timings"].items()))
        if result["master"]:
            cols, rows = _seam_ratio(Path(result["master"]), result["tile"] or 0, args.scale)
            print(f"seam check: step at tile boundaries / mean step = {cols:.3f} (columns), {rows:.3f} (rows); "
                  "1.0 = no seam")


if __name__ == "__main__":
    main()
