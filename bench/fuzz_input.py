"""Fuzz ingest + decode + QA with mutated TIFF/PNG/JPEG files; print what escaped the boundary.

    nice -n 19 python bench/fuzz_input.py --count 10000 [--seed 18] [--keep DIR]

Each file is a seeded mutation (bit flips, truncation, header fields set to extremes, spliced
blocks, or two of these) of a small valid scan (tests/hostile_corpus.seeds). Every piece of
per-scan work must end in a result or a ScanError: anything else is an escape, printed with
its traceback and (with --keep) the file that caused it. Exit status 1 when anything escaped.
"""

from __future__ import annotations

import argparse
import collections
import logging
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import hostile_corpus

from tasks.files.imageio import decode
from tasks.files.ingest import ingest_file
from tasks.files.limits import Limits
from tasks.qa import assessment as qa
from tasks.records.failures import ScanError, scan_boundary

DATA = ROOT.parent / "shared/data"


def photo() -> np.ndarray:
    """A 40 x 48 crop of a real old photograph (small: tens of thousands of files must be quick)."""
    image = Image.open(DATA / "old_photos/old/h.png").convert("RGB")
    return np.asarray(image)[100:140, 60:108].copy()


def fuzz_one(path: Path, limits: Limits) -> str:
    """Ingest, decode and assess one file → 'ok', or the failure kind. Raises only on an escape."""
    facts = ingest_file(path, limits)  # must never raise
    if not facts.sha256:
        return f"ingest:{facts.error_kind}"
    try:
        with scan_boundary(path):
            image = decode(path, max_pixels=limits.max_pixels, max_bytes=limits.max_bytes)
            qa.assess(image)
    except ScanError as exc:
        return exc.kind
    return "ok"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--keep", type=Path, help="copy every file that escaped here")
    parser.add_argument("--max-pixels", type=int, default=20_000_000,
                        help="pixel limit for the run (mutated headers claim sizes up to 2^32 a side)")
    args = parser.parse_args()
    # tifffile logs every malformed tag it meets (thousands here); the outcomes are what count
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)
    seeds = hostile_corpus.seeds(photo())
    names = sorted(seeds)
    rng = np.random.default_rng(args.seed)
    limits = Limits(args.max_pixels, args.max_pixels * 8)
    results: collections.Counter[str] = collections.Counter()
    escapes: list[tuple[str, str, str]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fuzz-input-") as tmp:
        for i in range(args.count):
            seed_name = names[int(rng.integers(0, len(names)))]
            mutation, data = hostile_corpus.mutate(seeds[seed_name], rng)
            path = Path(tmp) / f"f{i:06d}{hostile_corpus.SUFFIX[seed_name]}"
            path.write_bytes(data)
            try:
                results[fuzz_one(path, limits)] += 1
            except Exception:  # noqa: BLE001 - an escape: exactly what this bench looks for
                trace = traceback.format_exc()
                escapes.append((f"{i} {seed_name} {mutation}", path.name, trace))
                results["ESCAPED"] += 1
                if args.keep:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    shutil.copy(path, args.keep / path.name)
            path.unlink()
            if (i + 1) % 1000 == 0:
                print(f"{i + 1} files, {time.perf_counter() - started:.0f} s: {dict(results)}", flush=True)
    seconds = time.perf_counter() - started
    failed = sum(v for k, v in results.items() if k not in ("ok", "ESCAPED"))
    print(f"files tried: {args.count} (seed {args.seed}) in {seconds:.0f} s")
    print(f"outcomes: {dict(sorted(results.items()))}")
    print(f"failures found (refused with a reason): {failed}; mastered-able: {results['ok']}; "
          f"escapes: {len(escapes)}")
    for where, name, trace in escapes[:20]:
        print(f"--- escape: file {where} ({name})\n{trace}")
    return 1 if escapes else 0


if __name__ == "__main__":
    sys.exit(main())
