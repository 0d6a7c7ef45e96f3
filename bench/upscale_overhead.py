"""Upscale stage speed against a plain RealESRGANer loop, and the pipeline's time beyond inference.

Same images, same weights (realesr-general-x4v3), same threads, same output size (x2), in one run:

  reference   realesrgan.RealESRGANer(tile=256, tile_pad=10).enhance(img, outscale=2) in a loop
  restorium   models.upscaler.Upscaler (overlapping feathered tiles) + exact resize to x2
  pipeline    the whole `restore_batch` flow (ingest, QA, denoise, upscale, finish, tag, catalog)
              on the same scans: wall time per scan split into model inference and the rest

Usage: python bench/upscale_overhead.py [--images DIR] [--limit N] [--threads N]
Weights from RESTORIUM_MODELS_DIR (default ../shared/models).
"""

from __future__ import annotations

import argparse
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
    args = ap.parse_args()
    models_dir = Path(os.environ.get("RESTORIUM_MODELS_DIR") or REPO.parent / "shared/models")

    import cv2
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from models.torch_compat import ensure_basicsr_importable
    from models.upscaler import Upscaler
    from models.weights import resolve
    from tasks.imageio import decode, to_float
    from tasks.restore import resize

    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in {".png", ".jpg", ".tif", ".tiff"})
    if args.limit:
        paths = paths[: args.limit]
    weights = resolve(MODEL, models_dir)
    print(f"{len(paths)} images from {args.images}; {MODEL} sha256 {weights.sha256[:16]}; "
          f"{args.threads} threads; torch {torch.__version__}; x2 output\n")

    ensure_basicsr_importable()
    from realesrgan import RealESRGANer
    from realesrgan.archs.srvgg_arch import SRVGGNetCompact

    net = SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=32, upscale=4, act_type="prelu")
    reference = RealESRGANer(scale=4, model_path=str(weights.path), model=net, tile=256, tile_pad=10,
                             pre_pad=0, half=False, device=torch.device("cpu"))
    ours = Upscaler(weights, device="cpu")

    rows = []
    for path in paths:
        image = decode(path, max_pixels=10**9)
        rgb = to_float(image.pixels if not image.is_gray else np.repeat(image.pixels[:, :, None], 3, 2))
        h, w = rgb.shape[:2]
        bgr8 = cv2.cvtColor((rgb * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR)
        t = time.perf_counter()
        ref_out, _ = reference.enhance(bgr8, outscale=2)
        t_ref = time.perf_counter() - t
        t = time.perf_counter()
        out = resize(ours.upscale(rgb, 256, 16), 2 * w, 2 * h)
        t_ours = time.perf_counter() - t
        assert out.shape[:2] == ref_out.shape[:2], (out.shape, ref_out.shape)
        rows.append((path.name, w, h, 16 * w * h / 1e6, t_ref, t_ours))  # MP of the x4 model output

    pipeline = _pipeline(paths, models_dir)

    print(f"{'image':<10}{'input':>11}{'out MP':>8} | {'RealESRGANer s':>14}{'s/MP':>7} | {'restorium s':>12}{'s/MP':>7}")
    for name, w, h, mp, t_ref, t_ours in rows:
        print(f"{name:<10}{f'{w}x{h}':>11}{mp:>8.2f} | {t_ref:>14.2f}{t_ref / mp:>7.2f} | {t_ours:>12.2f}{t_ours / mp:>7.2f}")
    mp = sum(r[3] for r in rows)
    t_ref, t_ours = sum(r[4] for r in rows), sum(r[5] for r in rows)
    print(f"{'total':<10}{'':>11}{mp:>8.2f} | {t_ref:>14.2f}{t_ref / mp:>7.2f} | {t_ours:>12.2f}{t_ours / mp:>7.2f}")
    print(f"restorium upscale stage vs RealESRGANer: {t_ours / t_ref:.2f}x the time "
          "(MP counted at the model's x4 output, which both compute before resizing to x2)\n")

    n = len(paths)
    timings = pipeline["timings"]
    per_scan_wall = (timings["wall_seconds"] - timings["startup_seconds"]) / n
    model = timings.get("model", 0.0) / n
    print("pipeline (restore_batch flow, archival recipe at x2, 1 worker):")
    print(f"  startup (Ray + model load, once per run): {timings['startup_seconds']:.2f} s; "
          f"Prefect start is outside the flow's clock")
    stages = {k: v / n for k, v in timings.items() if k not in ("wall_seconds", "startup_seconds", "model")}
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
