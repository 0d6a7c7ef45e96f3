"""Sample scans for `restorium demo`: scikit-image's bundled photographs, degraded as old scans.

One of each kind a scanning station produces: a 16-bit TIFF with an ICC profile and ppi, an
8-bit TIFF, a JPEG with camera EXIF, a colour PNG and a grayscale PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, ImageCms

from tasks.demo.samples import Degradation, degrade_with_mask, demo_photographs


def _srgb_icc() -> bytes:
    """An sRGB profile with a fixed creation date: the same demo scans, byte for byte, every time
    (so a second `make demo` finds them all unchanged)."""
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    icc[24:36] = bytes([0x07, 0xEA, 0, 11, 0, 21, 0, 9, 0, 0, 0, 0])  # 2026-11-21 09:00:00
    icc[84:100] = bytes(16)  # profile ID: zero means "not computed", valid after the date change
    return bytes(icc)


def _tiff16(path: Path, scan: np.ndarray, icc: bytes) -> None:
    tifffile.imwrite(path, scan.astype(np.uint16) * 257, photometric="rgb", compression="deflate",
                     resolution=(600, 600), resolutionunit="INCH", extratags=[(34675, "B", len(icc), icc, True)])


def _tiff8(path: Path, scan: np.ndarray, icc: bytes) -> None:
    tifffile.imwrite(path, scan, photometric="rgb", resolution=(300, 300), resolutionunit="INCH")


def _jpeg(path: Path, scan: np.ndarray, icc: bytes) -> None:
    exif = Image.Exif()
    exif[0x010F] = "Demo Scanner Co."  # Make
    exif[0x0110] = "FlatBed 9000"  # Model
    exif[0x0132] = "2026:11:21 09:00:00"  # DateTime
    Image.fromarray(scan).save(path, quality=88, exif=exif, icc_profile=icc, dpi=(400, 400))


def _png(path: Path, scan: np.ndarray, icc: bytes) -> None:
    Image.fromarray(scan).save(path)


# Each photograph's degradation seed, offset from the demo's seed.
DEMO_SEEDS = {"astronaut": 0, "rocket": 1, "coffee": 2, "chelsea": 3, "camera": 4}
# Each scan's file name → its photograph and writer, in the order they are written.
DEMO_FILES = {"astronaut_16bit.tif": ("astronaut", _tiff16), "rocket.tif": ("rocket", _tiff8),
              "coffee.jpg": ("coffee", _jpeg), "chelsea.png": ("chelsea", _png),
              "cameraman_gray.png": ("camera", _png)}
# Grain survives in lossless scans; only the JPEG sample is compressed (by its own save).
DEMO_DEGRADATION = Degradation(jpeg_quality=None)


def demo_scans(seed: int = 0, spec: Degradation = DEMO_DEGRADATION) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The sample scans before they are written: (file name, scan, the true mask of its drawn scratches
    and dust). Another `spec` (e.g. no scratches, no dust) gives the same scans otherwise: the noise is
    drawn first, then the damage."""
    photos = demo_photographs()
    return [(file, *degrade_with_mask(photos[name], spec, seed + DEMO_SEEDS[name]))
            for file, (name, _) in DEMO_FILES.items()]


def write_scan(folder: Path, file: str, scan: np.ndarray) -> Path:
    """Write one of `demo_scans` as the demo does (its format, bit depth, profile, ppi, EXIF)."""
    path = folder / file
    DEMO_FILES[file][1](path, scan, _srgb_icc())
    return path


def write_demo_scans(folder: Path, seed: int = 0) -> list[Path]:
    """Write the sample scans (overwriting earlier demo scans: same seed, same bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    return [write_scan(folder, file, scan) for file, scan, _ in demo_scans(seed)]
