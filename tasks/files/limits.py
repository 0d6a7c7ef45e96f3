"""Size limits, checked from headers before any decoder allocates: the one place they live.

A header can claim anything: a 200-byte PNG may say 60000 x 60000 (3.6 Gpx, 10.8 GB of RGB),
a TIFF may claim one strip of a million rows. Every reader (Pillow, tifffile, OpenCV) goes
through `check_image` (the whole decoded image) and, for TIFF, `check_chunk` (each strip or
tile a decoder fills at once) before it decodes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tasks.records.failures import TOO_LARGE, ScanError

DEFAULT_MAX_PIXELS = 400_000_000
# 16-bit RGBA at the pixel limit: any real scan under the pixel limit fits; what is over it is
# a header claiming more samples or wider samples than a scan has.
DEFAULT_MAX_BYTES = DEFAULT_MAX_PIXELS * 4 * 2
MAX_PAGES = 1024  # TIFF pages whose headers are read (a file of a million empty IFDs is a bomb too)
_HINT = "raise RESTORIUM_MAX_PIXELS / RESTORIUM_MAX_DECODED_BYTES if the scan is genuine"


@dataclass(frozen=True)
class Limits:
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT = Limits()


def check_image(path: str | Path, width: int, height: int, samples: int, bytes_per_sample: float,
                limits: Limits, what: str = "image") -> None:
    """Refuse a decode whose header promises more pixels or bytes than the limits allow."""
    if width < 1 or height < 1:
        raise ScanError(path, f"header says the {what} is {width}x{height}: no pixels")
    pixels = width * height
    if pixels > limits.max_pixels:
        raise ScanError(path, f"{what} {width}x{height} is {pixels:,} pixels, over the pixel limit of "
                        f"{limits.max_pixels:,} (possible decompression bomb; {_HINT})", TOO_LARGE)
    decoded = int(pixels * samples * bytes_per_sample)
    if decoded > limits.max_bytes:
        raise ScanError(path, f"{what} {width}x{height} x {samples} samples would decode to {decoded:,} bytes, "
                        f"over the decoded-bytes limit of {limits.max_bytes:,} ({_HINT})", TOO_LARGE)


def check_chunk(path: str | Path, shape: tuple[int, ...], itemsize: int, limits: Limits, what: str) -> None:
    """Refuse a strip or tile whose decoding buffer alone would exceed the limits."""
    count = 1
    for n in shape:
        count *= int(n)
    if count * itemsize > limits.max_bytes or count > limits.max_pixels * 4:
        raise ScanError(path, f"{what} of shape {tuple(int(n) for n in shape)} would decode to "
                        f"{count * itemsize:,} bytes, over the decoded-bytes limit of {limits.max_bytes:,}",
                        TOO_LARGE)
