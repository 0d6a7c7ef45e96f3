"""The tag stage: write the master (TIFF; a derivative of the preserved scan) and the access copy (JPEG).

Each file is written atomically (tasks.files.atomic) with its provenance embedded (tasks.files.xmp) before the
rename, so a file under its final name is always complete and self-describing.

Pixels are RGB (HxWx3) or grayscale (HxW or HxWx1), uint8 or uint16, already upright; alpha, when
present, is HxW of the same dtype.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import tifffile
from PIL import Image

from tasks.files.atomic import atomic_write, sha256_file
from tasks.files.digest import pixel_digest
from tasks.files.xmp import PIXEL_DIGEST_KEY, SourceMetadata, embed, software_label
from tasks.records.item_metadata import ItemMetadata
from tasks.records.types import AuditRecord, WrittenFile

Compression = Literal["deflate", "lzw", "none"]

_TIFF_COMPRESSION = {"deflate": "adobe_deflate", "lzw": "lzw", "none": None}
_EXTRASAMPLE_UNASSOCIATED_ALPHA = 2


def write_master(
    path: str | os.PathLike[str],
    pixels: np.ndarray,
    alpha: np.ndarray | None,
    *,
    icc: bytes | None,
    ppi: float | None,
    compression: Compression,
    record: AuditRecord,
    source: SourceMetadata,
    uuid: str,
    capture_ppi: float | None = None,
    item: ItemMetadata | None = None,
) -> WrittenFile:
    """Write the master TIFF at full bit depth (16-bit stays 16-bit), alpha as an unassociated
    extra sample, the ICC profile in tag 34675, then embed provenance; all before the rename.

    `ppi` goes into the resolution tags, so the master keeps the print's physical size; when the
    scan's `capture_ppi` differs (an upscaled master), the XMP says the ppi is interpolated and
    records both. `item` is the cataloguer's description of the object (tasks.files.descriptive).
    """
    path = Path(os.path.abspath(path))
    img = _checked(path, pixels, alpha)
    _check_icc(path, icc, img.gray)
    if record.master.get("uuid", uuid) != uuid:
        raise ValueError(f"{path}: master uuid {uuid} differs from record.master uuid {record.master['uuid']}")
    if compression not in _TIFF_COMPRESSION:
        raise ValueError(f"{path}: unknown TIFF compression {compression!r} (deflate, lzw or none)")
    if compression == "lzw" and importlib.util.find_spec("imagecodecs") is None:
        raise ValueError(f"{path}: LZW compression needs the 'imagecodecs' package, which is not installed")
    _check_ppi(path, ppi=ppi, capture_ppi=capture_ppi)
    data = img.pixels if img.alpha is None else np.dstack([img.pixels, img.alpha])
    codec = _TIFF_COMPRESSION[compression]
    # The pixels' identity, recorded in the XMP and the catalog: a TIFF stores them losslessly, so
    # decoding the file gives this digest back whatever its metadata later becomes.
    pixels_sha256 = pixel_digest(data)
    facts: dict[str, str | int] = {}  # sha256, size: of the file `fill` wrote

    def fill(temp: Path) -> None:
        try:
            tifffile.imwrite(
                temp, data,
                photometric="minisblack" if img.gray else "rgb",
                planarconfig="contig",
                extrasamples=None if img.alpha is None else [_EXTRASAMPLE_UNASSOCIATED_ALPHA],
                compression=codec,
                # horizontal differencing: 16-bit scans shrink markedly more with it
                predictor=2 if codec else None,
                resolution=None if ppi is None else (ppi, ppi),
                resolutionunit="INCH" if ppi is not None else None,
                iccprofile=icc,
                metadata=None,  # no tifffile shape JSON in ImageDescription
                software=software_label(record),
                bigtiff=False,  # pyexiv2 cannot edit BigTIFF
            )
        except ValueError as exc:
            if "BigTIFF" in str(exc):
                raise ValueError(f"{path}: {data.nbytes} bytes of pixels need a BigTIFF, whose "
                                 "provenance would need an XMP sidecar (not implemented)") from exc
            raise
        embed(temp, record, source, role="master", document_uuid=uuid, extra={PIXEL_DIGEST_KEY: pixels_sha256},
              item=item, ppi=ppi, capture_ppi=capture_ppi)
        facts["sha256"], facts["size"] = sha256_file(temp), temp.stat().st_size

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, fill)
    h, w = img.pixels.shape[:2]
    return WrittenFile(
        uuid=uuid, role="master", path=str(path), sha256=str(facts["sha256"]), size=int(facts["size"]),
        format="TIFF", width=w, height=h, channels=data.shape[2] if data.ndim == 3 else 1,
        bit_depth=img.pixels.dtype.itemsize * 8, has_icc=icc is not None, pixel_sha256=pixels_sha256, ppi=ppi,
    )


def write_access(
    path: str | os.PathLike[str],
    pixels: np.ndarray,
    alpha: np.ndarray | None,
    *,
    icc: bytes | None,
    quality: int,
    long_edge: int,
    record: AuditRecord,
    source: SourceMetadata,
    uuid: str,
    capture_ppi: float | None = None,
    item: ItemMetadata | None = None,
) -> WrittenFile:
    """Write the 8-bit access JPEG: alpha composited over white, long edge at most `long_edge`
    (area interpolation), grayscale kept grayscale, the ICC profile and provenance embedded, with
    the item's description and the scan's `capture_ppi` (the copy claims no ppi of its own)."""
    path = Path(os.path.abspath(path))
    img = _checked(path, pixels, alpha)
    _check_icc(path, icc, img.gray)
    if not 1 <= quality <= 100:
        raise ValueError(f"{path}: JPEG quality must be 1-100, got {quality}")
    if long_edge < 1:
        raise ValueError(f"{path}: long_edge must be positive, got {long_edge}")
    _check_ppi(path, ppi=None, capture_ppi=capture_ppi)
    out = access_pixels(img.pixels, img.alpha, long_edge)
    facts: dict[str, str | int] = {}  # sha256, size: of the file `fill` wrote

    def fill(temp: Path) -> None:
        Image.fromarray(out).save(temp, "JPEG", quality=quality, icc_profile=icc, optimize=True)
        embed(temp, record, source, role="access", document_uuid=uuid, item=item, capture_ppi=capture_ppi)
        facts["sha256"], facts["size"] = sha256_file(temp), temp.stat().st_size

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, fill)
    h, w = out.shape[:2]
    return WrittenFile(
        uuid=uuid, role="access", path=str(path), sha256=str(facts["sha256"]), size=int(facts["size"]),
        format="JPEG", width=w, height=h, channels=1 if out.ndim == 2 else 3, bit_depth=8,
        has_icc=bool(icc),
    )


def access_pixels(pixels: np.ndarray, alpha: np.ndarray | None, long_edge: int) -> np.ndarray:
    """8-bit viewing pixels: composited over white, area-downscaled to `long_edge`, rounded."""
    h, w = pixels.shape[:2]
    scale = min(1.0, long_edge / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # cv2 wants (width, height)
    if alpha is None:
        if scale < 1:
            pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        return _to_uint8(pixels)
    # Composite before resizing, in float, so edges average as they would look on white.
    top = float(np.iinfo(pixels.dtype).max)
    a = alpha.astype(np.float32) / top
    color = pixels.astype(np.float32) / top
    if color.ndim == 3:
        a = a[..., None]
    over_white = color * a + (1.0 - a)
    if scale < 1:
        over_white = cv2.resize(over_white, size, interpolation=cv2.INTER_AREA)
    return np.rint(np.clip(over_white, 0.0, 1.0) * 255.0).astype(np.uint8)


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    # round(x / 257): 65535 -> 255 exactly, and no ties since 257 is odd
    return ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)


@dataclass(frozen=True)
class _Checked:
    pixels: np.ndarray  # HxW (gray) or HxWx3
    alpha: np.ndarray | None  # HxW
    gray: bool


def _checked(path: Path, pixels: np.ndarray, alpha: np.ndarray | None) -> _Checked:
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{path}: pixels must be uint8 or uint16, got {pixels.dtype}")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ValueError(f"{path}: pixels must be HxW, HxWx1 or HxWx3, got shape {pixels.shape}")
    if min(pixels.shape[:2]) < 1:
        raise ValueError(f"{path}: empty image {pixels.shape}")
    if alpha is not None:
        if alpha.ndim == 3 and alpha.shape[2] == 1:
            alpha = alpha[..., 0]
        if alpha.shape != pixels.shape[:2] or alpha.dtype != pixels.dtype:
            raise ValueError(f"{path}: alpha must be {pixels.shape[:2]} {pixels.dtype}, "
                             f"got {alpha.shape} {alpha.dtype}")
    return _Checked(np.ascontiguousarray(pixels), alpha, pixels.ndim == 2)


def icc_problem(icc: bytes | None, gray: bool) -> str | None:
    """Why this ICC profile cannot describe these pixels, or None when it can (or is absent)."""
    if icc is None:
        return None
    if len(icc) < 128 or icc[36:40] != b"acsp":
        return f"the ICC profile is not a valid ICC profile ({len(icc)} bytes)"
    space = icc[16:20]
    if space != (b"GRAY" if gray else b"RGB "):
        return (f"ICC profile colour space {space.decode('latin-1').strip()!r} "
                f"does not match {'grayscale' if gray else 'RGB'} pixels")
    return None


def _check_ppi(path: Path, *, ppi: float | None, capture_ppi: float | None) -> None:
    for name, value in (("ppi", ppi), ("capture_ppi", capture_ppi)):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{path}: {name} must be positive, got {value}")


def _check_icc(path: Path, icc: bytes | None, gray: bool) -> None:
    """An ICC profile whose colour space does not match the pixels would lie: refuse it."""
    problem = icc_problem(icc, gray)
    if problem:
        raise ValueError(f"{path}: {problem}")
