"""Fine-tuning speed: seconds per step of `restorium models finetune`, today's path beside this code.

The same photographs (the CBSD68 photographs `make weights` trains on), settings and seed,
--steps steps each, in separate processes, the three interleaved --rounds times and the best round
of each kept (a 2-core machine shared with other work slows OpenMP's barriers by whole time slices;
interleaving and the minimum keep that out of the comparison):

  today's path   the code at --baseline (a git revision, run from a temporary worktree with this
                 same environment): fp32, NCHW
  this code      fp32 (channels_last), and its default precision (auto: bf16 where the CPU has it)

and the time `make weights` (FinetuneSettings.steps) would take at each rate.

Usage: python bench/finetune.py [--steps 40] [--rounds 3] [--baseline REV]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASELINE = "3a84862"  # the last commit before the precision work (issue 17)

_CHILD = """
import json, sys, time
from dataclasses import replace
from pathlib import Path
import numpy as np
from PIL import Image
from models.finetune import FinetuneSettings, finetune
from models.weights import resolve
steps, precision, out, files = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4:]
photos = [np.asarray(Image.open(f).convert("RGB")) for f in files]
s = replace(FinetuneSettings(), steps=steps)
if precision != "-":
    s = replace(s, precision=precision)
parent = resolve("realesr-general-x4v3", __import__("os").environ["RESTORIUM_MODELS_DIR"])
record = finetune(parent, photos, out, s, device="cpu")
print(json.dumps({"seconds": record["seconds"], "final_l1": record["final_l1"],
                  "precision": record.get("precision", "fp32")}))
"""


def _held_out() -> list[str]:
    out = subprocess.run([sys.executable, str(REPO / "bench/quality.py"), "--held-out"], capture_output=True,
                         text=True, check=True, cwd=REPO)
    return out.stdout.split()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline", default=BASELINE)
    args = ap.parse_args()
    env = {**os.environ, "RESTORIUM_MODELS_DIR": os.environ.get("RESTORIUM_MODELS_DIR")
           or str(REPO.parent / "shared/models")}
    files = _held_out()
    print(f"{len(files)} photographs, {args.steps} steps each, batch 8 of 128 px crops, {os.cpu_count()} CPUs",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="restorium-finetune-bench-") as tmp:
        tree = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), args.baseline],
                       check=True, capture_output=True)
        try:
            runs = [(f"today's path ({args.baseline[:10]})", tree, "-"), ("this code, fp32", REPO, "fp32"),
                    ("this code, auto", REPO, "auto")]
            results: dict[str, list[dict]] = {name: [] for name, _, _ in runs}
            for _ in range(args.rounds):
                for name, code, precision in runs:
                    out = subprocess.run([sys.executable, "-c", _CHILD, str(args.steps), precision,
                                          str(Path(tmp) / "w.pth"), *files], capture_output=True, text=True,
                                         cwd=code, env={**env, "PYTHONPATH": str(code)}, check=False)
                    if out.returncode:
                        raise RuntimeError(f"{name}: {out.stderr[-2000:]}")
                    results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
            rates = []
            for name, tries in results.items():
                per_step = min(r["seconds"] for r in tries) / args.steps
                rates.append(per_step)
                every = ", ".join(f"{r['seconds'] / args.steps:.3f}" for r in tries)
                print(f"  {name:<28} {tries[0]['precision']:>5}: {per_step:.3f} s/step (rounds: {every}) → "
                      f"3,000 steps in {per_step * 3000 / 60:.1f} min (L1 after {args.steps} steps "
                      f"{tries[0]['final_l1']:.4f})", flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True)
    print(f"this code at its default precision: {rates[0] / rates[2]:.2f}x today's speed "
          f"(fp32 alone {rates[0] / rates[1]:.2f}x; target ≥ 2x)")


if __name__ == "__main__":
    main()
