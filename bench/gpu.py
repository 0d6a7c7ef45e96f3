"""The GPU check: restorium's upscale stage against the plain RealESRGANer loop, on one CUDA device.

Prepared to run in a few minutes on a lent GPU machine (one H100 here), and on a CPU as a smoke
run (`--device cpu --input 96x54`), so its first GPU run is not its first run. For each model
(realesr-general-x4v3, RealESRGAN_x4plus) on a real photograph brought to --input (default
960x540, so x4 gives a 4K 3840x2160 output), in one process:

  reference   realesrgan.RealESRGANer(tile=256, tile_pad=10, half=True on CUDA): what the CLI does
  restorium   models.upscaler.Upscaler at fp32, bf16 and fp16 (CUDA), tile and batch from free memory

and prints seconds (best of --repeats after a warm-up), output MP/s, the GPU memory peak, the
largest difference to restorium's fp32 output (1/255 units, and PSNR), and the windows fp16
overflowed in and redid in fp32. Weights from RESTORIUM_MODELS_DIR (default ../shared/models).

Usage: python bench/gpu.py [--device cuda] [--input 960x540] [--repeats 3] [--models a,b]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PHOTO = REPO.parent / "shared/data/sr_gt/McMaster/1.tif"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--input", default="960x540", help="input size WxH (x4: the output)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default="realesr-general-x4v3,RealESRGAN_x4plus")
    args = ap.parse_args()
    models_dir = Path(os.environ.get("RESTORIUM_MODELS_DIR") or REPO.parent / "shared/models")

    import cv2
    import numpy as np
    import torch

    from models.loading import build_network, select_device
    from models.torch_compat import ensure_basicsr_importable
    from models.upscaler import Upscaler
    from models.weights import resolve

    device = select_device(args.device)
    cuda = device.type == "cuda"
    w, h = (int(v) for v in args.input.split("x"))
    photo = cv2.cvtColor(cv2.imread(str(PHOTO), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    rgb = np.ascontiguousarray(cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255)
    name = torch.cuda.get_device_name(device) if cuda else "CPU"
    print(f"{name}; torch {torch.__version__}; CUDA {torch.version.cuda}; input {w}x{h} -> x4 "
          f"{4 * w}x{4 * h} ({16 * w * h / 1e6:.1f} MP)\n", flush=True)

    ensure_basicsr_importable()
    from realesrgan import RealESRGANer

    def timed(fn):
        fn()  # warm-up: cuDNN picks its kernels, memory pools fill
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        best, out = float("inf"), None
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = fn()
            if cuda:
                torch.cuda.synchronize(device)
            best = min(best, time.perf_counter() - start)
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else float("nan")
        return best, peak, out

    mp = 16 * w * h / 1e6
    print(f"{'model':<22}{'path':<28}{'s':>8}{'out MP/s':>10}{'GPU GiB':>9}{'max diff':>10}{'PSNR':>8}  notes")
    for model_name in args.models.split(","):
        weights = resolve(model_name, models_dir)
        rows = []
        ours = {}
        for precision in ("fp32", "bf16", "fp16"):
            if precision == "fp16" and not cuda:
                continue
            up = Upscaler(weights, device, precision=precision)
            seconds, peak, out = timed(lambda up=up: up.upscale(rgb, 256, 16))
            ours[precision] = out
            ex = up.last_execution
            note = f"tile {ex['tile']} batch {ex['batch']}" + (
                f", {ex['fp32_redone_windows']} windows redone in fp32" if ex["fp32_redone_windows"] else "")
            rows.append((f"restorium {precision}", seconds, peak, out, note))
            del up
            if cuda:
                torch.cuda.empty_cache()
        net = build_network(weights.card, weights.path, "cpu")  # RealESRGANer loads its own copy of the weights
        reference = RealESRGANer(scale=4, model_path=str(weights.path), model=net, tile=256, tile_pad=10,
                                 pre_pad=0, half=cuda, device=device)
        bgr8 = cv2.cvtColor((rgb * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR)

        def ref_run(reference=reference):
            with contextlib.redirect_stdout(io.StringIO()):  # it prints a line per tile
                out, _ = reference.enhance(bgr8, outscale=4)
            return cv2.cvtColor(out, cv2.COLOR_BGR2RGB).astype(np.float32) / 255

        seconds, peak, out = timed(ref_run)
        rows.insert(0, (f"RealESRGANer {'fp16' if cuda else 'fp32'} t256", seconds, peak, out, "8-bit output"))
        del reference, ref_run  # free its network before the next model
        if cuda:
            torch.cuda.empty_cache()
        base = ours["fp32"]
        for label, seconds, peak, out, note in rows:
            diff = np.abs(out.astype(np.float64) - base)
            finite = np.isfinite(out).all()
            mse = float(np.mean(diff**2)) if finite else float("nan")
            psnr = 10 * np.log10(1 / mse) if mse > 0 else float("inf")
            print(f"{model_name:<22}{label:<28}{seconds:>8.3f}{mp / seconds:>10.1f}{peak:>9.2f}"
                  f"{diff.max() * 255 if finite else float('nan'):>10.2f}{psnr:>8.1f}  {note}"
                  + ("" if finite else " NaN/Inf in the output"), flush=True)
        ref_s, best = rows[0][1], min(r[1] for r in rows[1:])
        print(f"{model_name}: fastest restorium path {ref_s / best:.2f}x the RealESRGANer loop\n", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
