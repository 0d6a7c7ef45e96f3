"""Upscale stage speed against a plain RealESRGANer loop, and the pipeline's time beyond inference.

Same images, same weights (realesr-general-x4v3), same threads, same output size (x2), in one run:

  reference   realesrgan.RealESRGANer(tile=256, tile_pad=10, half=False).enhance(img, outscale=2)
              in a loop: what the Real-ESRGAN CLI does on a CPU
  restorium   models.upscaler.Upscaler at each precision asked for (default: the one `auto` picks
              here, and fp32 as a CPU without bf16 would run), the recipe's tile (256), exact
              context, + the exact resize to x2
  fidelity    PSNR of the reduced-precision result against restorium's fp32 one (target >= 45 dB),
              and the largest difference between tiled and untiled output (a seam would show there)
  pipeline    the whole `restore_batch` flow (ingest, QA, denoise, upscale, finish, tag, catalog)
              on the same scans: wall time per scan split into model inference and the rest

Usage: python bench/upscale_overhead.py [--images DIR] [--limit N] [--threads N] [--precisions auto,fp32]
       [--no-pipeline]
Weights from RESTORIUM_MODELS_DIR (default ../shared/models).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODEL = "realesr-general-x4v3"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=REPO.parent / "shared/data/old_photos/old")
    ap.add_argument("--limit", type=int, default=4, help="how many images (0 = all)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--precisions", default="auto,fp32", help="restorium columns, comma-separated")
    ap.add_argument("--no-pipeline", action="store_true", help="skip the whole-flow part")
    args = ap.parse_args()
    models_dir = Path(os.environ.get("RESTORIUM_MODELS_DIR") or REPO.parent / "shared/models")

    import cv2
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from models.agents import _cpu_model
    from models.precision import cpu_flags, resolve_precision
    from models.torch_compat import ensure_basicsr_importable
    from models.upscaler import Upscaler
    from models.weights import resolve
    from tasks.files.imageio import decode, to_float
    from tasks.steps.restore import resize

    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in {".png", ".jpg", ".tif", ".tiff"})
    if args.limit:
        paths = paths[: args.limit]
    weights = resolve(MODEL, models_dir)
    cpu = torch.device("cpu")
    precisions = list(dict.fromkeys(resolve_precision(p, cpu) for p in args.precisions.split(",")))
    features = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile"})
    print(f"{len(paths)} images from {args.images}; {MODEL} sha256 {weights.sha256[:16]}; "
          f"{args.threads} threads; torch {torch.__version__}; x2 output\n"
          f"CPU: {_cpu_model()}; features: {' '.join(features) or 'unknown'}; "
          f"auto precision here: {resolve_precision('auto', cpu)}\n")

    ensure_basicsr_importable()
    from realesrgan import RealESRGANer
    from realesrgan.archs.srvgg_arch import SRVGGNetCompact

    net = SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=32, upscale=4, act_type="prelu")
    reference = RealESRGANer(scale=4, model_path=str(weights.path), model=net, tile=256, tile_pad=10,
                             pre_pad=0, half=False, device=cpu)
    ours = {p: Upscaler(weights, device="cpu", precision=p) for p in precisions}

    warm = np.random.default_rng(0).random((96, 96, 3), dtype=np.float32)  # kernels chosen before timing
    with contextlib.redirect_stdout(io.StringIO()):
        reference.enhance((warm * 255).astype(np.uint8), outscale=2)
    for model in ours.values():
        model.upscale(warm, 256, 16)

    rows, fidelity = [], []
    for path in paths:
        image = decode(path, max_pixels=10**9)
        rgb = to_float(image.pixels if not image.is_gray else np.repeat(image.pixels[:, :, None], 3, 2))
        rgb = np.ascontiguousarray(rgb[:, :, :3])
        h, w = rgb.shape[:2]
        bgr8 = cv2.cvtColor((rgb * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR)
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # it prints a line per tile
            ref_out, _ = reference.enhance(bgr8, outscale=2)
        times, outs = [time.perf_counter() - t], {}
        for p, model in ours.items():
            t = time.perf_counter()
            outs[p] = resize(model.upscale(rgb, 256, 16), 2 * w, 2 * h)
            times.append(time.perf_counter() - t)
            assert outs[p].shape[:2] == ref_out.shape[:2], (outs[p].shape, ref_out.shape)
        rows.append((path.name, w, h, 16 * w * h / 1e6, times))  # MP of the x4 model output
        low = [p for p in precisions if p != "fp32"]
        if low and "fp32" in outs:
            p = low[0]
            mse = float(np.mean((outs[p].astype(np.float64) - outs["fp32"]) ** 2))
            untiled = resize(ours[p].upscale(rgb, 0, 0), 2 * w, 2 * h)
            fidelity.append((path.name, 10 * np.log10(1 / max(mse, 1e-20)),
                             float(np.abs(outs[p] - outs["fp32"]).max() * 255),
                             float(np.abs(untiled - outs[p]).max() * 255)))

    cols = ["RealESRGANer"] + [f"restorium {p}" for p in precisions]
    print(f"{'image':<10}{'input':>11}{'out MP':>8} | " + " | ".join(f"{c:>15} {'s/MP':>6}" for c in cols))
    for name, w, h, mp, times in rows:
        print(f"{name:<10}{f'{w}x{h}':>11}{mp:>8.2f} | " + " | ".join(f"{t:>15.2f} {t / mp:>6.2f}" for t in times))
    mp = sum(r[3] for r in rows)
    totals = [sum(r[4][i] for r in rows) for i in range(len(cols))]
    print(f"{'total':<10}{'':>11}{mp:>8.2f} | " + " | ".join(f"{t:>15.2f} {t / mp:>6.2f}" for t in totals))
    for p, t in zip(precisions, totals[1:]):
        print(f"restorium {p}: {totals[0] / t:.2f}x the speed of RealESRGANer "
              f"(MP counted at the model's x4 output, which both compute before resizing to x2)")
    for name, db, worst, seam in fidelity:
        print(f"{name}: {low[0]} vs fp32 master {db:.1f} dB (max {worst:.2f}/255); "
              f"tiled vs untiled max {seam:.4f}/255")
    if fidelity:
        print(f"lowest {low[0]} vs fp32 PSNR: {min(f[1] for f in fidelity):.1f} dB (target >= 45); "
              f"largest tiled-untiled difference {max(f[3] for f in fidelity):.4f}/255 (no seam)\n")
    if args.no_pipeline:
        return

    pipeline = _pipeline(paths, models_dir)
    n = len(paths)
    timings = pipeline["timings"]
    per_scan_wall = (timings["wall_seconds"] - timings["startup_seconds"]) / n
    model = timings.get("model", 0.0) / n
    print("pipeline (restore_batch flow, archival recipe at x2, 1 worker, precision auto):")
    print(f"  startup (Ray + model load, once per run): {timings['startup_seconds']:.2f} s; "
          f"Prefect start is outside the flow's clock")
    stages = {k: v / n for k, v in timings.items()
              if k not in ("wall_seconds", "startup_seconds", "model", "driver_peak_rss_mb", "worker_cpus",
                           "output_megapixels")}
    print("  per scan, inside the worker: " + ", ".join(f"{k} {v:.3f} s" for k, v in stages.items()))
    print(f"  per scan: wall {per_scan_wall:.2f} s = model inference {model:.2f} s "
          f"+ everything else {per_scan_wall - model:.2f} s ({(per_scan_wall - model) / model:.1%} of model time)")
    print(f"  counts: {pipeline['counts']}")


def _pipeline(paths: list[Path], models_dir: Path) -> dict:
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from flows.restore_batch import restore_batch
    from flows.workers import shutdown

    with tempfile.TemporaryDirectory(prefix="restorium-bench-") as tmp:
        scans = Path(tmp) / "scans"
        scans.mkdir()
        for p in paths:
            shutil.copy(p, scans / p.name)
        try:
            return restore_batch(str(scans), recipe="archival",
                                 settings={"home": str(Path(tmp) / "home"), "models_dir": str(models_dir)})
        finally:
            shutdown()


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
