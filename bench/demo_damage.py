"""Does any drawn scratch or dust speck survive into the demo's masters? (issue 22)

`restorium demo`'s five scans (flows.demo_scans.demo_scans, written as the demo writes them: the 16-bit
TIFF, the JPEG at quality 88, ...) are mastered with the real pipeline in-process (bench/quality.py's
`_Restorium`: recipe archival at its own scale, models from bench.quality.default_models_dir()), and so
are the same five scans with no scratches and no dust (same seeds: each scan's noise is drawn before
its damage, so the two differ only where the damage was drawn; tests/flows/test_demo_scans.py checks it).

The true mask of the drawn damage (tasks.demo.samples.degrade_with_mask, every pixel a line or speck
touches) is split into 8-connected components at the scan's size, a component longer than
SPECK_SIZE px being a scratch (crossing scratches, and specks on a scratch, make one component), and
brought to the master's size (nearest). A component REMAINS when more than 25 % of its pixels differ
by more than 20 levels (0-255, any channel) between the damaged scan's master and the undamaged scan's
master. `outside` is the share of the pixels more than NEAR px from the mask that differ so: what the
pair's masters differ by where nothing was drawn (a tone or deblur step that ran for one and not the other,
say), the floor of the test. `visible` counts the components that meet the same test in the scans themselves (before
mastering: a dark speck on a dark area, or a scratch on a bright one, is not). PSNR (dB) of the damaged
master against the undamaged one, inside the mask and over the whole image. `steps` names the pipeline
steps that ran for one master of the pair and not the other.

--classical masters with QA's classical damage mask even where the learned detector's weights
(the recipe's cleanup.detector) are in the models folder. --save DIR writes a crop around each remaining
component: damaged master | undamaged master.

Usage: python bench/demo_damage.py [--classical] [--save DIR] [--recipe NAME|FILE] [--precision P]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from quality import _Restorium, default_models_dir  # bench/quality.py

from flows.demo_scans import DEMO_DEGRADATION, demo_scans, write_scan

SPECK_SIZE = 12  # px at the scan's size: dust is drawn with a radius of 1-2 px, scratches span a third of it
LEVELS, SHARE = 20, 0.25  # a component remains when > SHARE of its pixels differ by > LEVELS
MARGIN = 24  # px around a saved crop
NEAR = 4  # px at the master's size: `outside` leaves out the pixels this close to the mask


class _DemoMaster(_Restorium):
    """bench/quality.py's pipeline on a scan file as the demo wrote it, at the recipe's own scale."""

    def __init__(self, models_dir: Path, recipe: str, workdir: Path, precision: str, classical: bool):
        from config.recipe import load_recipe

        super().__init__(models_dir, recipe, workdir, precision)
        self.recipe = load_recipe(recipe)  # not bench/quality.py's x4: the demo's masters
        if classical and self.kit.damage is not None:
            self.kit.damage = None
            self.model += " (not used: --classical)"

    def master(self, path: Path) -> tuple[np.ndarray, set[str]]:
        """The master's pixels (uint8, H x W x C) and the steps that ran."""
        from tasks.files.imageio import decode

        outcome = self.process(path)
        pixels = decode(Path(outcome.master.path), max_pixels=10**9).pixels
        if pixels.dtype == np.uint16:
            pixels = np.rint(pixels / 257.0).astype(np.uint8)
        return (pixels if pixels.ndim == 3 else pixels[..., None]), {s.step for s in outcome.steps}


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-connected labels of the mask (0: background) and, per label, whether it is a scratch."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    extent = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    return labels, extent > SPECK_SIZE


def resized(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour resize of a label image."""
    h, w = labels.shape
    return labels[(np.arange(shape[0]) * h // shape[0])[:, None], np.arange(shape[1]) * w // shape[1]]


def differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where two images differ by more than LEVELS in some channel."""
    a, b = (x if x.ndim == 3 else x[..., None] for x in (a, b))
    return np.abs(a.astype(np.int16) - b).max(axis=2) > LEVELS


def remaining(a: np.ndarray, b: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per label, whether more than SHARE of its pixels differ by more than LEVELS in some channel."""
    differs = differ(a, b).ravel()
    sizes = np.bincount(labels.ravel())
    return np.bincount(labels.ravel(), weights=differs, minlength=len(sizes)) > SHARE * np.maximum(sizes, 1)


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    diff = (a.astype(np.float64) - b)[where] if where is not None else a.astype(np.float64) - b
    mse = float(np.mean(diff**2))
    return 10 * np.log10(255.0**2 / mse) if mse else float("inf")


def save_crops(folder: Path, stem: str, damaged: np.ndarray, clean: np.ndarray, labels: np.ndarray,
               which: list[int], scratch: np.ndarray) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for label in which:
        ys, xs = np.nonzero(labels == label)
        y0, y1 = max(0, ys.min() - MARGIN), min(labels.shape[0], ys.max() + MARGIN + 1)
        x0, x1 = max(0, xs.min() - MARGIN), min(labels.shape[1], xs.max() + MARGIN + 1)
        gap = np.full((y1 - y0, 4, damaged.shape[2]), 255, np.uint8)
        pair = np.hstack([damaged[y0:y1, x0:x1], gap, clean[y0:y1, x0:x1]])
        kind = "scratch" if scratch[label] else "speck"
        Image.fromarray(pair.squeeze(2) if pair.shape[2] == 1 else pair).save(folder / f"{stem}_{kind}{label}.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classical", action="store_true", help="QA's classical damage mask, not the learned detector")
    ap.add_argument("--save", type=Path, help="write crops around the remaining components here")
    ap.add_argument("--recipe", default="archival", help="a preset name or a recipe .yaml file")
    ap.add_argument("--precision", default="auto", help="the models' precision (as RESTORIUM_PRECISION)")
    args = ap.parse_args()

    started = time.perf_counter()
    damaged_scans = demo_scans()
    clean_scans = demo_scans(spec=replace(DEMO_DEGRADATION, scratches=0, dust=0))
    rows = []
    with tempfile.TemporaryDirectory(prefix="restorium-demo-damage-") as tmp:
        work = Path(tmp)
        pipeline = _DemoMaster(default_models_dir(), args.recipe, work, args.precision, args.classical)
        for (file, scan, mask), (_, clean, _) in zip(damaged_scans, clean_scans, strict=True):
            masters = []
            for sub, pixels in (("damaged", scan), ("clean", clean)):
                (work / sub).mkdir(exist_ok=True)
                masters.append(pipeline.master(write_scan(work / sub, file, pixels)))
            (dm, dm_steps), (cm, cm_steps) = masters
            labels, scratch = components(mask)
            up = resized(labels, dm.shape[:2])
            left = remaining(dm, cm, up)
            visible = remaining(scan, clean, labels)
            ids = np.arange(len(scratch)) > 0
            inside = up > 0
            far = cv2.dilate(inside.astype(np.uint8), np.ones((2 * NEAR + 1,) * 2, np.uint8)) == 0
            outside = 100 * float(differ(dm, cm)[far].mean())
            counts = [int((ids & kind & sel).sum()) for sel in (ids, visible, left) for kind in (scratch, ~scratch)]
            steps = sorted(f"+{s}" for s in dm_steps - cm_steps) + sorted(f"-{s}" for s in cm_steps - dm_steps)
            rows.append((file, *counts, psnr(dm, cm, inside), psnr(dm, cm), outside, " ".join(steps)))
            if args.save:
                save_crops(args.save, Path(file).stem, dm, cm, up, list(np.nonzero(left & ids)[0]), scratch)
            print(f"  {file} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)

    print(f"recipe {args.recipe!r} at its own scale, models {default_models_dir()}")
    print(f"models: {pipeline.model}")
    print("damage mask: " + ("the learned detector" if pipeline.kit.damage is not None else "QA's classical detector"))
    print(f"remaining: > {SHARE:.0%} of a component's pixels differ by > {LEVELS} levels between the masters\n")
    header = (f"{'scan':<20}{'drawn scr/spk':>14}{'visible scr/spk':>16}{'remaining scr/spk':>18}"
              f"{'PSNR mask':>11}{'PSNR all':>10}{'outside':>9}  steps (+ damaged only, - clean only)")
    print(header)
    print("-" * len(header))
    for file, ds, dk, vs, vk, rs, rk, p_mask, p_all, out, steps in rows:
        print(f"{file:<20}{f'{ds} / {dk}':>14}{f'{vs} / {vk}':>16}{f'{rs} / {rk}':>18}{p_mask:>11.2f}{p_all:>10.2f}"
              f"{out:>8.2f}%  {steps}")
    sums = [sum(r[i] for r in rows) for i in range(1, 7)]
    means = [float(np.mean([r[i] for r in rows])) for i in (7, 8, 9)]
    print(f"{'total (mean PSNR)':<20}{f'{sums[0]} / {sums[1]}':>14}{f'{sums[2]} / {sums[3]}':>16}"
          f"{f'{sums[4]} / {sums[5]}':>18}{means[0]:>11.2f}{means[1]:>10.2f}{means[2]:>8.2f}%")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
