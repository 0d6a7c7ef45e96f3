"""Sample scans for `restorium demo`: scikit-image's bundled photographs, degraded as old scans.

One of each kind a scanning station produces: a 16-bit TIFF with an ICC profile and ppi, an
8-bit TIFF, a JPEG with camera EXIF, a colour PNG and a grayscale PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, ImageCms

from tasks.demo.samples import Degradation, degrade, demo_photographs


def _srgb_icc() -> bytes:
    """An sRGB profile with a fixed creation date: the same demo scans, byte for byte, every time
    (so a second `make demo` finds them all unchanged)."""
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    icc[24:36] = bytes([0x07, 0xEA, 0, 11, 0, 21, 0, 9, 0, 0, 0, 0])  # 2026-11-21 09:00:00
    icc[84:100] = bytes(16)  # profile ID: zero means "not computed", valid after the date change
    return bytes(icc)


# Each photograph's degradation seed, offset from the demo's seed.
DEMO_SEEDS = {"astronaut": 0, "rocket": 1, "coffee": 2, "chelsea": 3, "camera": 4}


def write_demo_scans(folder: Path, seed: int = 0) -> list[Path]:
    """Write the sample scans (overwriting earlier demo scans: same seed, same bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = demo_photographs()
    # Grain survives in lossless scans; only the JPEG sample is compressed (by its own save).
    spec = Degradation(jpeg_quality=None)
    icc = _srgb_icc()
    written = []

    scan = degrade(photos["astronaut"], spec, seed + DEMO_SEEDS["astronaut"])
    path = folder / "astronaut_16bit.tif"
    tifffile.imwrite(path, scan.astype(np.uint16) * 257, photometric="rgb", compression="deflate",
                     resolution=(600, 600), resolutionunit="INCH", extratags=[(34675, "B", len(icc), icc, True)])
    written.append(path)

    scan = degrade(photos["rocket"], spec, seed + DEMO_SEEDS["rocket"])
    path = folder / "rocket.tif"
    tifffile.imwrite(path, scan, photometric="rgb", resolution=(300, 300), resolutionunit="INCH")
    written.append(path)

    scan = degrade(photos["coffee"], spec, seed + DEMO_SEEDS["coffee"])
    path = folder / "coffee.jpg"
    exif = Image.Exif()
    exif[0x010F] = "Demo Scanner Co."  # Make
    exif[0x0110] = "FlatBed 9000"  # Model
    exif[0x0132] = "2026:11:21 09:00:00"  # DateTime
    Image.fromarray(scan).save(path, quality=88, exif=exif, icc_profile=icc, dpi=(400, 400))
    written.append(path)

    scan = degrade(photos["chelsea"], spec, seed + DEMO_SEEDS["chelsea"])
    path = folder / "chelsea.png"
    Image.fromarray(scan).save(path)
    written.append(path)

    scan = degrade(photos["camera"], spec, seed + DEMO_SEEDS["camera"])
    path = folder / "cameraman_gray.png"
    Image.fromarray(scan).save(path)
    written.append(path)
    return written
