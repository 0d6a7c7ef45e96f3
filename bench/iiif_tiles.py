"""IIIF level-0 tiles of a large 16-bit master: tiling time and peak memory beside the master's writing time.

A 16-bit RGB master-like image of --megapixels (default 100; --quick: 12) is made from real
photographs (McMaster, each enlarged x4 as an upscaled scan is, tiled, with a little grain so
JPEG tiles are not trivially flat), then two child processes run one after the other:
1. tasks.files.tag.write_master writes it (Deflate, as every preset does; provenance embedded);
2. tasks.files.iiif_tiles.write_iiif tiles that master (512 px, Q90), then validate_iiif checks it.
Each child reports its wall time and its own peak RSS (getrusage), so the tiler's memory is
measured apart from the master writer's, which must hold the whole image in RAM.

Usage: python bench/iiif_tiles.py [--megapixels N | --quick] [--tile-size 512] [--quality 90]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def _master_child(path: Path, megapixels: float) -> dict[str, object]:
    import resource

    import numpy as np
    from PIL import Image

    from tasks.files.tag import write_master
    from tasks.files.xmp import SourceMetadata
    from tasks.records.types import AuditRecord

    began = time.perf_counter()
    width = round(math.sqrt(megapixels * 1e6 * 3 / 2))  # 3:2, a film frame
    height = round(megapixels * 1e6 / width)
    photos = sorted((SHARED / "data/sr_gt/McMaster").glob("*.tif"))
    blocks = [np.asarray(Image.open(p).convert("RGB").resize((2000, 2000), Image.Resampling.BICUBIC)) for p in photos]
    pixels = np.empty((height, width, 3), np.uint16)
    rng = np.random.default_rng(0)
    for n, y in enumerate(range(0, height, 2000)):  # a block row at a time: float copies stay small
        row = np.concatenate([blocks[(n * 7 + k) % len(blocks)] for k in range(math.ceil(width / 2000))], axis=1)
        band = row[: min(2000, height - y), :width].astype(np.float32) * 257
        band += rng.normal(0, 300, band.shape).astype(np.float32)  # grain, 16-bit scale
        pixels[y : y + band.shape[0]] = np.clip(band, 0, 65535).astype(np.uint16)
    made = time.perf_counter() - began
    record = AuditRecord(
        master={"uuid": "00000000-0000-4000-8000-00000000b001"},
        original={"uuid": "00000000-0000-4000-8000-00000000b002", "path": str(path), "sha256": "0" * 64,
                  "item_uuid": "00000000-0000-4000-8000-00000000b003", "identifier": "BENCH-1"},
        derivation_key="b" * 64, recipe={"name": "bench", "hash": "c" * 64, "resolved": {}, "plan_reasons": []},
        run={"uuid": "00000000-0000-4000-8000-00000000b004"}, software={"name": "restorium", "version": "bench"},
        models=[], steps=[],
    )
    began = time.perf_counter()
    written = write_master(path, pixels, None, icc=None, ppi=600.0, compression="deflate", record=record,
                           source=SourceMetadata(), uuid=record.master["uuid"])
    return {"seconds": time.perf_counter() - began, "make_seconds": made, "width": width, "height": height,
            "bytes": written.size, "sha256": written.sha256,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _tiles_child(master: Path, dest: Path, tile_size: int, quality: int) -> dict[str, object]:
    import resource

    import pyvips

    from tasks.files.iiif_tiles import validate_iiif, write_iiif

    threads = getattr(pyvips, "concurrency_get")()  # not in pyvips' stubs
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # interpreter + libvips loaded
    began = time.perf_counter()
    made = write_iiif(master, dest, f"item/{'0' * 16}", base_url="https://iiif.example.org/iiif",
                      tile_size=tile_size, quality=quality)
    seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    began = time.perf_counter()
    problems = validate_iiif(made.path)
    return {"seconds": seconds, "peak_rss_mib": peak, "baseline_rss_mib": baseline,
            "validate_seconds": time.perf_counter() - began, "problems": problems[:5],
            "tiles": made.tile_count, "files": made.file_count, "bytes": made.total_bytes,
            "vips_threads": threads, "libvips": ".".join(str(pyvips.version(i)) for i in range(3))}


def _child(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        print(done.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"the {args[0]} process failed (exit {done.returncode}; -9 is the kernel's OOM killer)")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--megapixels", type=float, default=100.0)
    ap.add_argument("--quick", action="store_true", help="12 MP")
    ap.add_argument("--tile-size", type=int, default=512)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    if args.child:
        kind, *rest = args.child
        result = (_master_child(Path(rest[0]), float(rest[1])) if kind == "master"
                  else _tiles_child(Path(rest[0]), Path(rest[1]), int(rest[2]), int(rest[3])))
        print(json.dumps(result))
        return
    megapixels = 12.0 if args.quick else args.megapixels
    with tempfile.TemporaryDirectory(prefix="restorium-iiif-") as tmp:
        master = Path(tmp) / "master.tif"
        print(f"making and writing a {megapixels:g} MP 16-bit RGB master ...", flush=True)
        m = _child("master", str(master), str(megapixels))
        print(f"tiling it ({args.tile_size} px, Q{args.quality}) ...", flush=True)
        t = _child("tiles", str(master), str(Path(tmp) / "iiif"), str(args.tile_size), str(args.quality))
    mp = int(m["width"]) * int(m["height"]) / 1e6
    print(f"\nmaster {m['width']}x{m['height']} ({mp:.1f} MP, 16-bit RGB, Deflate, {int(m['bytes']) / 2**20:.0f} MiB)"
          f"; pixels made in {float(m['make_seconds']):.1f} s (not counted)")
    print(f"libvips {t['libvips']}, {t['vips_threads']} threads")
    print(f"{'':24}{'wall s':>8}{'peak RSS MiB':>14}{'MP/s':>8}")
    for label, r in (("write master TIFF", m), ("write IIIF tiles", t)):
        s = float(r["seconds"])
        print(f"{label:24}{s:8.1f}{float(r['peak_rss_mib']):14.0f}{mp / s:8.1f}")
    print(f"tiler's RSS before tiling (Python + libvips): {float(t['baseline_rss_mib']):.0f} MiB; "
          f"the master's pixels alone: {mp * 6:.0f} MB")
    print(f"{t['tiles']} tiles, {t['files']} files, {int(t['bytes']) / 2**20:.1f} MiB; "
          f"validate_iiif {float(t['validate_seconds']):.1f} s: "
          f"{'valid' if not t['problems'] else t['problems']}")


if __name__ == "__main__":
    main()
