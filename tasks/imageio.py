"""Reading scans: header facts for ingest, and a full decode that refuses damaged files.

Each format goes through the library that keeps its depth and profile: tifffile for TIFF
(8/16-bit, alpha, planar), OpenCV for PNG (16-bit colour, which Pillow reduces to 8-bit),
Pillow for JPEG (EXIF and ICC). Every decode reads all pixels: a header-only check trusts
truncated files (JHOVE's bytestream fallback does).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from tasks.types import TechnicalMetadata

SUFFIXES = {".tif": "TIFF", ".tiff": "TIFF", ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}

# OpenCV's own logging would print libpng/libtiff complaints for every bad file; we report them.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

_TIFF_ORIENTATION = 274
_TIFF_ICC = 34675


class ScanError(ValueError):
    """A file that cannot be a scan: the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass
class DecodedImage:
    """Pixels upright (EXIF orientation applied), colour separate from alpha."""

    pixels: np.ndarray  # H x W x 3 RGB, or H x W grayscale; uint8 or uint16
    alpha: np.ndarray | None  # H x W, same dtype, or None
    bit_depth: int  # 8 or 16
    icc: bytes | None
    ppi: float | None

    @property
    def is_gray(self) -> bool:
        return self.pixels.ndim == 2

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


def sniff_format(path: Path) -> str:
    """The format from the file's magic bytes; the extension only has to agree."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if not head:
        raise ScanError(path, "zero-byte file")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        found = "PNG"
    elif head[:3] == b"\xff\xd8\xff":
        found = "JPEG"
    elif head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        found = "TIFF"
    else:
        raise ScanError(path, "not a TIFF, PNG or JPEG image (unrecognised file signature)")
    expected = SUFFIXES.get(path.suffix.lower())
    if expected and expected != found:
        raise ScanError(path, f"extension says {expected} but the content is {found}")
    return found


def inspect(path: Path) -> TechnicalMetadata:
    """Header facts for the catalog, without decoding the pixels."""
    fmt = sniff_format(path)
    try:
        if fmt == "TIFF":
            return _inspect_tiff(path)
        if fmt == "PNG":
            return _inspect_png(path)
        return _inspect_jpeg(path)
    except ScanError:
        raise
    except (OSError, ValueError, KeyError, IndexError, struct.error, UnidentifiedImageError) as exc:
        raise ScanError(path, f"unreadable {fmt} header ({exc})") from exc


def _inspect_tiff(path: Path) -> TechnicalMetadata:
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        tags = page.tags
        channels = int(page.samplesperpixel)
        ppi = _tiff_ppi(page)
        orientation = int(tags[_TIFF_ORIENTATION].value) if _TIFF_ORIENTATION in tags else None
        return TechnicalMetadata(
            format="TIFF", width=int(page.imagewidth), height=int(page.imagelength),
            channels=channels, bit_depth=int(page.bitspersample),
            mode=f"{page.photometric.name.lower()}/{page.dtype}", has_icc=_TIFF_ICC in tags,
            ppi=ppi, orientation=orientation,
        )


def _tiff_ppi(page: tifffile.TiffPage) -> float | None:
    tags = page.tags
    if "XResolution" not in tags:
        return None
    num, den = tags["XResolution"].value
    if not den or not num:
        return None
    value = num / den
    unit = tags["ResolutionUnit"].value if "ResolutionUnit" in tags else 2
    if unit == 3:  # centimetre
        value *= 2.54
    elif unit != 2:  # no absolute unit
        return None
    return round(float(value), 3)


_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # colour type → samples (palette expands to RGB)


def _inspect_png(path: Path) -> TechnicalMetadata:
    with open(path, "rb") as fh:
        head = fh.read(33)
    if len(head) < 33 or head[12:16] != b"IHDR":
        raise ScanError(path, "PNG without an IHDR header")
    width, height, bit_depth, colour_type = struct.unpack(">IIBB", head[16:26])
    with Image.open(path) as im:
        has_icc = bool(im.info.get("icc_profile"))
        ppi = _pillow_ppi(im)
        orientation = _exif_orientation(im)
        mode = im.mode
    return TechnicalMetadata(
        format="PNG", width=width, height=height, channels=_PNG_CHANNELS.get(colour_type, 3),
        bit_depth=8 if colour_type == 3 else bit_depth, mode=mode, has_icc=has_icc, ppi=ppi,
        orientation=orientation,
    )


def _inspect_jpeg(path: Path) -> TechnicalMetadata:
    with Image.open(path) as im:
        return TechnicalMetadata(
            format="JPEG", width=im.width, height=im.height, channels=len(im.getbands()),
            bit_depth=8, mode=im.mode, has_icc=bool(im.info.get("icc_profile")),
            ppi=_pillow_ppi(im), orientation=_exif_orientation(im),
        )


def _pillow_ppi(im: Image.Image) -> float | None:
    dpi = im.info.get("dpi")
    if not dpi or not dpi[0]:
        return None
    return round(float(dpi[0]), 3)


def _exif_orientation(im: Image.Image) -> int | None:
    value = im.getexif().get(274)
    return int(value) if value else None


def decode(path: Path, *, max_pixels: int) -> DecodedImage:
    """Every pixel of the scan, or a ScanError saying precisely why not."""
    meta = inspect(path)
    if meta.width * meta.height > max_pixels:
        raise ScanError(
            path, f"{meta.width}x{meta.height} is {meta.width * meta.height:,} pixels, over the "
            f"limit of {max_pixels:,} (possible decompression bomb; raise RESTORIUM_MAX_PIXELS if genuine)",
        )
    try:
        if meta.format == "TIFF":
            pixels, icc = _decode_tiff(path)
        elif meta.format == "PNG":
            pixels, icc = _decode_png(path)
        else:
            pixels, icc = _decode_jpeg(path, max_pixels)
    except ScanError:
        raise
    except Exception as exc:  # decoders raise anything from OSError to zlib.error on damaged data
        raise ScanError(path, f"damaged {meta.format} data: {exc}") from exc
    image = _split(path, pixels, icc, meta.ppi)
    return _upright(image, meta.orientation)


def _orient(values: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (2-8) to H x W (x C) pixels, as viewers display them."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, k=-1),
        7: lambda a: np.rot90(a, k=2).swapaxes(0, 1),
        8: lambda a: np.rot90(a, k=1),
    }
    return np.ascontiguousarray(ops[orientation](values))


def _upright(image: DecodedImage, orientation: int | None) -> DecodedImage:
    """Masters are written upright (Orientation 1): many archival TIFF readers ignore the tag."""
    if not orientation or orientation == 1 or orientation not in range(2, 9):
        return image
    image.pixels = _orient(image.pixels, orientation)
    if image.alpha is not None:
        image.alpha = _orient(image.alpha, orientation)
    return image


def _decode_tiff(path: Path) -> tuple[np.ndarray, bytes | None]:
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        if page.sampleformat != 1:  # 1 = unsigned integer
            raise ScanError(path, f"unsupported TIFF sample format {page.sampleformat} (only unsigned integers)")
        pixels = page.asarray()
        if page.planarconfig == 2 and pixels.ndim == 3:  # separate planes: (S, Y, X) → (Y, X, S)
            pixels = np.moveaxis(pixels, 0, -1)
        if page.photometric == tifffile.PHOTOMETRIC.MINISWHITE:
            pixels = np.iinfo(pixels.dtype).max - pixels
        icc = page.tags[_TIFF_ICC].value if _TIFF_ICC in page.tags else None
        if page.photometric not in (
            tifffile.PHOTOMETRIC.RGB, tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.MINISWHITE,
        ) and not (page.photometric == tifffile.PHOTOMETRIC.YCBCR and pixels.ndim == 3):
            raise ScanError(path, f"unsupported TIFF photometric interpretation {page.photometric.name}")
    return pixels, (bytes(icc) if icc else None)


def _decode_png(path: Path) -> tuple[np.ndarray, bytes | None]:
    data = np.fromfile(path, dtype=np.uint8)
    pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise ScanError(path, "damaged PNG data (truncated or corrupt; the decoder gave no image)")
    if pixels.ndim == 3:
        code = cv2.COLOR_BGRA2RGBA if pixels.shape[2] == 4 else cv2.COLOR_BGR2RGB
        pixels = cv2.cvtColor(pixels, code)
    with Image.open(path) as im:
        icc = im.info.get("icc_profile")
    return pixels, icc


def _decode_jpeg(path: Path, max_pixels: int) -> tuple[np.ndarray, bytes | None]:
    Image.MAX_IMAGE_PIXELS = max_pixels  # our own limit was checked; keep Pillow's consistent
    with Image.open(path) as im:
        im.load()  # raises on truncation: Pillow does not pad truncated JPEGs unless told to
        icc = im.info.get("icc_profile")
        if im.mode not in ("L", "RGB"):
            raise ScanError(path, f"unsupported JPEG colour mode {im.mode} (only grayscale and RGB)")
        return np.asarray(im), icc


def _split(path: Path, pixels: np.ndarray, icc: bytes | None, ppi: float | None) -> DecodedImage:
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ScanError(path, f"unsupported sample type {pixels.dtype} (only 8- and 16-bit)")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    alpha = None
    if pixels.ndim == 3:
        channels = pixels.shape[2]
        if channels == 2:  # gray + alpha
            pixels, alpha = pixels[:, :, 0], pixels[:, :, 1]
        elif channels == 4:
            pixels, alpha = pixels[:, :, :3], pixels[:, :, 3]
        elif channels != 3:
            raise ScanError(path, f"unsupported channel count {channels}")
    elif pixels.ndim != 2:
        raise ScanError(path, f"unsupported image shape {pixels.shape}")
    if min(pixels.shape[:2]) < 1:
        raise ScanError(path, "image has no pixels")
    bit_depth = 16 if pixels.dtype == np.uint16 else 8
    return DecodedImage(
        pixels=np.ascontiguousarray(pixels), alpha=None if alpha is None else np.ascontiguousarray(alpha),
        bit_depth=bit_depth, icc=icc, ppi=ppi,
    )


def to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8/uint16 → float32 in [0, 1]."""
    return pixels.astype(np.float32) / float(np.iinfo(pixels.dtype).max)


def from_float(values: np.ndarray, bit_depth: int) -> np.ndarray:
    """float in [0, 1] → uint8/uint16 with rounding (not truncation)."""
    dtype = np.uint16 if bit_depth == 16 else np.uint8
    peak = float(np.iinfo(dtype).max)
    return np.clip(np.rint(values * peak), 0, peak).astype(dtype)
