"""Pixel digests: the identity of an image's pixels, independent of its file's metadata.

A master's file bytes change with every metadata edit (its XMP carries run ids and times), so
"is this the same image?" is answered on the decoded pixels: sha256 over a small header (dtype,
shape) and the raw little-endian samples, alpha included. Two arrays have the same digest exactly
when they have the same shape, the same sample type and the same values.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image


class PixelReadError(ValueError):
    """A file whose pixels cannot be decoded for a digest."""


def pixel_digest(pixels: np.ndarray) -> str:
    """sha256 of (dtype, shape, samples): HxW (gray), HxWxC (C = 2 gray+alpha, 3 RGB, 4 RGBA)."""
    array = pixels[..., 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels  # HxWx1 is HxW
    # Little-endian, C order: the same bytes on any CPU, whatever the array's strides.
    array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    header = f"{array.dtype.name}:{'x'.join(str(n) for n in array.shape)}\n".encode()
    digest = hashlib.sha256(header)
    digest.update(array.data.cast("B"))  # array.data is memoryview(array)
    return digest.hexdigest()


def read_pixels(path: str | os.PathLike[str]) -> np.ndarray:
    """The stored samples of an image file as written (no orientation, no colour conversion):
    tifffile for TIFF (16-bit and extra samples kept), Pillow for the rest."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            return tifffile.imread(path)
        with Image.open(path) as im:
            im.load()
            return np.asarray(im)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise PixelReadError(f"{path}: cannot decode its pixels: {exc}") from exc


def file_pixel_digest(path: str | os.PathLike[str]) -> str:
    return pixel_digest(read_pixels(path))


def compare_pixels(a: np.ndarray, b: np.ndarray) -> dict[str, object]:
    """How far two images differ: identical, max absolute difference and PSNR (dB, peak = the
    sample type's maximum; None when identical). Different shapes or types cannot be compared."""
    a, b = np.squeeze(a), np.squeeze(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return {"comparable": False, "identical": False, "reason":
                f"shape/type {a.shape} {a.dtype} vs {b.shape} {b.dtype}"}
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    peak = float(np.iinfo(a.dtype).max) if np.issubdtype(a.dtype, np.integer) else 1.0
    mse = float(np.mean(diff**2))
    return {
        "comparable": True, "identical": mse == 0.0, "max_abs_diff": float(diff.max(initial=0.0)),
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0, "peak": peak,
        "psnr_db": None if mse == 0.0 else round(float(10.0 * np.log10(peak**2 / mse)), 3),
        "differing_samples": int(np.count_nonzero(diff)),
    }
