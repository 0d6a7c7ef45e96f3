"""Reading scans: header facts for ingest, and a full decode that refuses damaged files.

Each format goes through the library that keeps its depth and profile: tifffile for TIFF
(8/16-bit, alpha, planar, 1-bit, palette, CMYK), OpenCV for PNG (16-bit colour, which Pillow
reduces to 8-bit), Pillow for JPEG (EXIF and ICC; CMYK through its ICC profile). Every decode
reads all pixels: a header-only check trusts truncated files (JHOVE's bytestream fallback does).
Sizes are checked from the headers (tasks.files.limits) before any of those libraries allocates.
"""

from __future__ import annotations

import enum
import io
import struct
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import tifffile
from PIL import Image, ImageCms, JpegImagePlugin

from tasks.files.limits import DEFAULT, MAX_PAGES, Limits, check_chunk, check_image
from tasks.records.failures import INVALID, UNSUPPORTED, ScanError, scan_boundary
from tasks.records.types import TechnicalMetadata

__all__ = ["SUFFIXES", "ScanError", "DecodedImage", "sniff_format", "looks_like_image", "inspect", "decode",
           "to_float", "from_float"]

SUFFIXES = {".tif": "TIFF", ".tiff": "TIFF", ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}

# OpenCV's own logging would print libpng/libtiff complaints for every bad file; we report them.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

MIN_SIDE = 8
_TIFF_ORIENTATION = 274
_TIFF_ICC = 34675

# Signatures of what else turns up in scan folders: named in the reason instead of "unrecognised".
_OTHER_IMAGES = [(b"GIF87a", "GIF"), (b"GIF89a", "GIF"), (b"BM", "BMP"), (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
                 (b"\xff\x4f\xff\x51", "JPEG 2000 codestream"), (b"8BPS", "Photoshop PSD"), (b"II\xbc", "JPEG XR")]
_NOT_IMAGES = [(b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"), (b"\x1f\x8b", "a gzip archive"),
               (b"<!doctype html", "an HTML page"), (b"<html", "an HTML page"), (b"<?xml", "an XML document"),
               (b"{", "JSON or text"), (b"\xd0\xcf\x11\xe0", "an MS Office document")]


@dataclass
class DecodedImage:
    """Pixels upright (EXIF orientation applied), colour separate from alpha."""

    pixels: np.ndarray  # H x W x 3 RGB, or H x W grayscale; uint8 or uint16
    alpha: np.ndarray | None  # H x W, same dtype, or None
    bit_depth: int  # 8 or 16
    icc: bytes | None
    ppi: float | None
    notes: list[str] = field(default_factory=list)  # what reading it changed or noticed (recorded)
    # a JPEG that stored its colour at half resolution (4:2:0 / 4:2:2): colour at the scale of a
    # few pixels is its surroundings', not the scene's (QA's colour test for dust specks needs it)
    chroma_subsampled: bool = False

    @property
    def is_gray(self) -> bool:
        return self.pixels.ndim == 2

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


def _signature(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    return None


def _other_kind(head: bytes) -> tuple[str, str] | None:
    """(what it is, failure kind) for content that is recognisably something else."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image", UNSUPPORTED
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "a HEIF/AVIF image", UNSUPPORTED
    for magic, name in _OTHER_IMAGES:
        if head.startswith(magic):
            return f"a {name} image", UNSUPPORTED
    lowered = head.lstrip().lower()
    for magic, name in _NOT_IMAGES:
        if lowered.startswith(magic.lower()):
            return name, INVALID
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "plain text", INVALID
    return None


def looks_like_image(head: bytes) -> bool:
    """Whether the first bytes are any image's signature (a scan, or an image kind we refuse)."""
    return _signature(head) is not None or (_other_kind(head) or ("", ""))[1] == UNSUPPORTED


def sniff_format(path: Path) -> str:
    """The format from the file's magic bytes (decode notes an extension that disagrees)."""
    with open(path, "rb") as fh:
        head = fh.read(32)
    if not head:
        raise ScanError(path, "zero-byte file")
    found = _signature(head)
    if found is None:
        other = _other_kind(head)
        if other:
            raise ScanError(path, f"not a TIFF, PNG or JPEG image: the content is {other[0]}", other[1])
        raise ScanError(path, "not a TIFF, PNG or JPEG image (unrecognised file signature)")
    return found


def inspect(path: Path, limits: Limits = DEFAULT) -> TechnicalMetadata:
    """Header facts for the catalog, without decoding the pixels; over-limit headers are refused
    here, before any decoder sees the file."""
    with scan_boundary(path):  # an unreadable file is this file's failure too, for every caller
        fmt = sniff_format(path)
    with scan_boundary(path, what=f"unreadable {fmt} header"):
        if fmt == "TIFF":
            return _inspect_tiff(path, limits)
        if fmt == "PNG":
            return _inspect_png(path, limits)
        return _inspect_jpeg(path, limits)


def _tiff_pages(path: Path, tif: tifffile.TiffFile, limits: Limits) -> int:
    """Check every page's size, and each strip or tile, from the IFDs; → the number of full pages."""
    full = 0
    for index, page in enumerate(tif.pages):
        if index >= MAX_PAGES:
            raise ScanError(path, f"TIFF with more than {MAX_PAGES} pages: not a single scan")
        if not isinstance(page, tifffile.TiffPage):
            page = page.aspage()
        what = f"TIFF page {index + 1}"
        itemsize = page.dtype.itemsize if page.dtype is not None else 8
        rows = int(page.imagelength) * max(1, int(page.imagedepth))
        samples = int(np.prod(page.shape)) // max(1, int(page.imagewidth) * rows) if page.shape else 1
        check_image(path, int(page.imagewidth), rows,
                    max(1, samples), itemsize, limits, what)
        check_chunk(path, page.chunks, itemsize, limits, f"{what}: one {'tile' if page.is_tiled else 'strip'}")
        full += not page.is_reduced
    return full


def _inspect_tiff(path: Path, limits: Limits) -> TechnicalMetadata:
    with tifffile.TiffFile(path) as tif:
        _tiff_pages(path, tif, limits)
        page = tif.pages.first
        tags = page.tags
        channels = int(page.samplesperpixel)
        ppi = _tiff_ppi(page)
        orientation = int(tags[_TIFF_ORIENTATION].value) if _TIFF_ORIENTATION in tags else None
        return TechnicalMetadata(
            format="TIFF", width=int(page.imagewidth), height=int(page.imagelength),
            channels=channels, bit_depth=int(page.bitspersample),
            mode=f"{_tag_name(page.photometric).lower()}/{page.dtype}", has_icc=_TIFF_ICC in tags,
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
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}


def _inspect_png(path: Path, limits: Limits) -> TechnicalMetadata:
    with open(path, "rb") as fh:
        head = fh.read(33)
    if len(head) < 33 or head[12:16] != b"IHDR":
        raise ScanError(path, "PNG without an IHDR header")
    width, height, bit_depth, colour_type = struct.unpack(">IIBB", head[16:26])
    if bit_depth not in _PNG_DEPTHS.get(colour_type, ()):
        raise ScanError(path, f"PNG header has an impossible colour type {colour_type} / bit depth {bit_depth}")
    # palette and tRNS may add an alpha channel; 16-bit samples take 2 bytes
    check_image(path, width, height, 4, 2 if bit_depth == 16 else 1, limits, "PNG image")
    with _pillow(path, limits) as im:
        has_icc = bool(im.info.get("icc_profile"))
        ppi = _pillow_ppi(im)
        orientation = _exif_orientation(im)
        mode = im.mode
    return TechnicalMetadata(
        format="PNG", width=width, height=height, channels=_PNG_CHANNELS.get(colour_type, 3),
        bit_depth=8 if colour_type == 3 else bit_depth, mode=mode, has_icc=has_icc, ppi=ppi,
        orientation=orientation,
    )


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_frame(path: Path) -> tuple[int, int, int, int]:
    """(width, height, components, precision) from the JPEG's frame header, read by walking the
    marker segments: nothing is decoded and nothing sized by the header is allocated."""
    with open(path, "rb") as fh:
        if fh.read(2) != b"\xff\xd8":
            raise ScanError(path, "JPEG without a start-of-image marker")
        while True:
            byte = fh.read(1)
            if not byte:
                raise ScanError(path, "JPEG ends before its frame header (truncated)")
            if byte != b"\xff":
                continue  # not at a marker: resynchronise, as decoders do
            marker = fh.read(1)
            while marker == b"\xff":  # fill bytes
                marker = fh.read(1)
            if not marker:
                raise ScanError(path, "JPEG ends before its frame header (truncated)")
            code = marker[0]
            if code in (0x01, 0x00) or 0xD0 <= code <= 0xD8:  # no length
                continue
            if code in (0xD9, 0xDA):
                raise ScanError(path, "JPEG has no frame header before its image data")
            raw = fh.read(2)
            if len(raw) < 2:
                raise ScanError(path, "JPEG ends inside a marker segment (truncated)")
            length = struct.unpack(">H", raw)[0]
            if length < 2:
                raise ScanError(path, f"JPEG marker segment 0x{code:02X} has an impossible length {length}")
            if code in _SOF:
                body = fh.read(6)
                if len(body) < 6:
                    raise ScanError(path, "JPEG ends inside its frame header (truncated)")
                precision, height, width, components = struct.unpack(">BHHB", body)
                return width, height, components, precision
            fh.seek(length - 2, 1)


def _inspect_jpeg(path: Path, limits: Limits) -> TechnicalMetadata:
    width, height, components, precision = jpeg_frame(path)
    check_image(path, width, height, max(components, 3), 2 if precision > 8 else 1, limits, "JPEG image")
    with _pillow(path, limits) as im:
        return TechnicalMetadata(
            format="JPEG", width=im.width, height=im.height, channels=len(im.getbands()),
            bit_depth=8, mode=im.mode, has_icc=bool(im.info.get("icc_profile")),
            ppi=_pillow_ppi(im), orientation=_exif_orientation(im),
        )


def _pillow(path: Path, limits: Limits) -> Image.Image:
    """Image.open once our own limit passed: Pillow's bomb check (warning over the limit, error
    over twice it) is kept to the same limit as a second line, never a lower one."""
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    return Image.open(path)


def _pillow_ppi(im: Image.Image) -> float | None:
    dpi = im.info.get("dpi")
    try:
        return round(float(dpi[0]), 3) if dpi and dpi[0] else None
    except (TypeError, ValueError, IndexError):  # a malformed pHYs/JFIF density is no resolution
        return None


def _exif_orientation(im: Image.Image) -> int | None:
    try:
        value = im.getexif().get(274)
        return int(value) if value else None
    except Exception:  # noqa: BLE001 - a corrupt EXIF block is no orientation, not a bad scan
        return None


def decode(path: Path, *, max_pixels: int = DEFAULT.max_pixels, max_bytes: int | None = None) -> DecodedImage:
    """Every pixel of the scan, or a ScanError saying precisely why not (whatever the decoder raised)."""
    limits = Limits(max_pixels, max_bytes if max_bytes is not None else max(DEFAULT.max_bytes, max_pixels * 8))
    notes: list[str] = []
    meta = inspect(path, limits)
    named = SUFFIXES.get(path.suffix.lower())
    if not path.suffix:
        notes.append(f"no file extension: read as {meta.format} from its content")
    elif named and named != meta.format:
        notes.append(f"extension says {named} but the content is {meta.format}: read as {meta.format}")
    subsampled = False
    with scan_boundary(path, notes, what=f"damaged {meta.format} data"):
        if meta.format == "TIFF":
            pixels, icc = _decode_tiff(path, notes)
        elif meta.format == "PNG":
            pixels, icc = _decode_png(path)
        else:
            pixels, icc, subsampled = _decode_jpeg(path, limits, notes)
        image = _split(path, pixels, icc, meta.ppi)
    image.notes, image.chroma_subsampled = notes, subsampled
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
    image.notes.append(f"EXIF orientation {orientation} applied: the master is stored upright")
    return image


_PHOTOMETRIC = tifffile.PHOTOMETRIC


def _tag_name(value: int) -> str:
    """The name of an enumerated TIFF tag's value. tifffile types these tags as int (they are its
    IntEnum members) and keeps a value it has no member for as a plain int."""
    return value.name if isinstance(value, enum.IntEnum) else str(value)


def _decode_tiff(path: Path, notes: list[str]) -> tuple[np.ndarray, bytes | None]:
    with tifffile.TiffFile(path) as tif:
        pages = len(tif.pages)
        page = tif.pages.first
        if page.sampleformat != 1:  # 1 = unsigned integer
            kind = {2: "signed integer", 3: "floating point"}.get(int(page.sampleformat), str(page.sampleformat))
            raise ScanError(path, f"unsupported TIFF sample format: {kind} (only unsigned integers)", UNSUPPORTED)
        # One thread: a hostile file once crashed imagecodecs (a general protection fault in
        # _imcd, not reproducible alone) while tifffile decoded its tiles on several threads.
        # Workers already run several scans at once; the scan's decode stays on its own thread.
        pixels = page.asarray(maxworkers=1)
        if page.planarconfig == 2 and pixels.ndim == 3:  # separate planes: (S, Y, X) → (Y, X, S)
            pixels = np.moveaxis(pixels, 0, -1)
        icc = page.tags[_TIFF_ICC].value if _TIFF_ICC in page.tags else None
        icc = bytes(icc) if icc else None
        photometric = page.photometric
        if pixels.dtype == np.bool_:  # 1-bit bilevel (CCITT G3/G4 document scans)
            pixels = pixels.astype(np.uint8) * 255
            notes.append(f"1-bit bilevel TIFF ({_tag_name(page.compression)}) expanded to 8-bit grayscale")
        if photometric == _PHOTOMETRIC.MINISWHITE:
            pixels = np.iinfo(pixels.dtype).max - pixels
        elif photometric == _PHOTOMETRIC.PALETTE:
            pixels = _expand_palette(page.colormap, pixels)
            notes.append("palette TIFF expanded to RGB")
        elif photometric == _PHOTOMETRIC.SEPARATED:
            if pixels.ndim != 3 or pixels.shape[2] != 4 or pixels.dtype != np.uint8:
                raise ScanError(path, "unsupported separated (CMYK) TIFF: only 8-bit CMYK", UNSUPPORTED)
            pixels, icc = _cmyk_to_rgb(Image.fromarray(pixels, "CMYK"), icc, notes)
        elif photometric not in (_PHOTOMETRIC.RGB, _PHOTOMETRIC.MINISBLACK) and not (
            photometric == _PHOTOMETRIC.YCBCR and pixels.ndim == 3
        ):
            raise ScanError(path, f"unsupported TIFF photometric interpretation {_tag_name(photometric)}", UNSUPPORTED)
        full = sum(1 for p in tif.pages if not getattr(p, "is_reduced", False)) if pages > 1 else 1
        if full > 1:
            notes.append(f"multi-page TIFF: {full} pages, only the first is mastered")
    return pixels, icc


def _expand_palette(colormap: np.ndarray | None, index: np.ndarray) -> np.ndarray:
    if colormap is None or colormap.ndim != 2 or colormap.shape[0] != 3:
        raise ValueError("palette TIFF without a usable colour map")
    rgb = np.ascontiguousarray(colormap.T)[np.clip(index, 0, colormap.shape[1] - 1)]
    if rgb.dtype == np.uint16 and not np.any(rgb % 257):  # an 8-bit palette stored as 16-bit
        return (rgb // 257).astype(np.uint8)
    return rgb


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


_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None, notes: list[str]) -> tuple[np.ndarray, bytes]:
    """CMYK (prepress scans) to sRGB through the file's own ICC profile, relative colorimetric with
    black-point compensation; without a usable profile Pillow's formula, and the note says so."""
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            rgb = ImageCms.profileToProfile(
                im, source, _SRGB, renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, outputMode="RGB",
                flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
            )
            name = (ImageCms.getProfileDescription(source) or "").strip() or "unnamed"
            notes.append(f"CMYK converted to sRGB through its embedded ICC profile ({name}), "
                         "relative colorimetric with black-point compensation")
            return np.asarray(rgb), _SRGB.tobytes()
        except (ImageCms.PyCMSError, OSError, ValueError) as exc:
            notes.append(f"CMYK with an unusable ICC profile ({exc}): converted to sRGB by formula, "
                         "colours approximate")
    else:
        notes.append("CMYK without an ICC profile: converted to sRGB by formula, colours approximate")
    return np.asarray(im.convert("RGB")), _SRGB.tobytes()


def _decode_jpeg(path: Path, limits: Limits, notes: list[str]) -> tuple[np.ndarray, bytes | None, bool]:
    """Pixels, ICC profile, and whether the colour was stored at less than full resolution (the
    frame's sampling factors, as Pillow reads them: -1 not YCbCr, 0 4:4:4, 1 4:2:2, 2 4:2:0)."""
    with _pillow(path, limits) as im:
        im.load()  # raises on truncation: Pillow does not pad truncated JPEGs unless told to
        icc = im.info.get("icc_profile")
        if im.mode == "CMYK":
            return (*_cmyk_to_rgb(im, icc, notes), False)
        if im.mode not in ("L", "RGB"):
            raise ScanError(path, f"unsupported JPEG colour mode {im.mode} (only grayscale, RGB and CMYK)",
                            UNSUPPORTED)
        return np.asarray(im), icc, JpegImagePlugin.get_sampling(im) > 0


def _split(path: Path, pixels: np.ndarray, icc: bytes | None, ppi: float | None) -> DecodedImage:
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ScanError(path, f"unsupported sample type {pixels.dtype} (only 8- and 16-bit)", UNSUPPORTED)
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
            raise ScanError(path, f"unsupported channel count {channels}", UNSUPPORTED)
    elif pixels.ndim != 2:
        raise ScanError(path, f"unsupported image shape {pixels.shape}", UNSUPPORTED)
    if min(pixels.shape[:2]) < MIN_SIDE:  # QA, restoration and the models need some context
        raise ScanError(path, f"too small to be a scan: {pixels.shape[1]}x{pixels.shape[0]} "
                        f"(at least {MIN_SIDE} px a side)")
    bit_depth = 16 if pixels.dtype == np.uint16 else 8
    return DecodedImage(
        pixels=np.ascontiguousarray(pixels), alpha=None if alpha is None else np.ascontiguousarray(alpha),
        bit_depth=bit_depth, icc=icc, ppi=ppi,
    )


def to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8/uint16 → float32 in [0, 1]."""
    return pixels.astype(np.float32) / float(np.iinfo(pixels.dtype).max)


def _quantize_into(values: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Rounded integer samples of float `values` in [0, 1] written into `out`, a band of rows at a
    time (no master-sized float temporaries); each band is read whole before it is written."""
    peak = float(np.iinfo(out.dtype).max)
    for y in range(0, values.shape[0], 256):
        out[y : y + 256] = np.clip(np.rint(values[y : y + 256] * peak), 0, peak)
    return out


def _integer_dtype(bit_depth: int) -> type:
    return np.uint16 if bit_depth == 16 else np.uint8


def quantize_in_place(values: np.ndarray, bit_depth: int) -> np.ndarray:
    """from_float(values, bit_depth), written over `values`' own memory, which is consumed: a
    master's float pixels and its integer ones are never held at once (1.15 GB + 0.58 GB for a
    24 MP scan's x2 master). Bands go front to back; integer rows are at most half as wide in
    bytes as float32 rows, so a band is written only where rows already read lay."""
    if values.dtype != np.float32 or not values.flags["C_CONTIGUOUS"]:
        raise ValueError(f"expected C-contiguous float32 values, got {values.dtype}")
    dtype = _integer_dtype(bit_depth)
    return _quantize_into(values, values.reshape(-1).view(dtype)[: values.size].reshape(values.shape))


def from_float(values: np.ndarray, bit_depth: int) -> np.ndarray:
    """float in [0, 1] → uint8/uint16 with rounding (not truncation)."""
    return _quantize_into(values, np.empty(values.shape, _integer_dtype(bit_depth)))
