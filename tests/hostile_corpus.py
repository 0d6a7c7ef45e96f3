"""A hostile corpus, generated (never committed as binaries): what turns up on an archive's drive.

`build(folder, photo)` writes every case under `folder` from one small RGB photograph and
returns the cases, each with what a batch must make of it:

- ("mastered", note): mastered, and when `note` is set, a note or flag containing it;
- ("failed", kind): failed with that kind (tasks.records.failures) — or kind None: failed, any kind,
  with `reason` (a substring) in the reason;
- ("unchanged", reason) / ("skipped", reason): with `reason` in the reason.

Also used by bench/fuzz_input.py (valid seeds) and tests/tasks/test_fuzz_input.py.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import tifffile
from PIL import Image


@dataclass
class Case:
    name: str  # path relative to the corpus folder
    outcome: str  # mastered | failed | unchanged | skipped
    detail: str | None = None  # mastered: a note's substring; failed: the kind; else a reason substring
    reason: str | None = None  # failed: a substring of the reason (optional)
    unreadable: bool = False  # must raise PermissionError when ingest opens it (see the test)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR claims width x height RGB (a decompression bomb by header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + _chunk(b"IEND", b""))


def jpeg_header_bomb(valid_jpeg: bytes, width: int, height: int) -> bytes:
    """A valid JPEG with its frame header's size replaced."""
    data = bytearray(valid_jpeg)
    i = 2
    while i < len(data) - 9:
        if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC1, 0xC2):
            struct.pack_into(">HH", data, i + 5, height, width)
            return bytes(data)
        i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0] if data[i] == 0xFF and data[i + 1] not in (0xD8,) else 1
    raise ValueError("no SOF in the JPEG")


def tiff_bytes(pixels: np.ndarray, **kwargs) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, pixels, **kwargs)
    return buf.getvalue()


def pil_bytes(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def seeds(photo: np.ndarray) -> dict[str, bytes]:
    """Valid files of each format, for the corpus and the fuzzer."""
    rgb = Image.fromarray(photo)
    return {
        "png": pil_bytes(rgb, "PNG"),
        "jpeg": pil_bytes(rgb, "JPEG", quality=85),
        "tiff": tiff_bytes(photo, photometric="rgb"),
        "tiff_lzw_tiled": tiff_bytes(np.ascontiguousarray(np.pad(photo, ((0, 16), (0, 16), (0, 0)))),
                                     photometric="rgb", tile=(16, 16), compression="lzw"),
        "tiff16_strips": tiff_bytes(photo.astype(np.uint16) * 257, photometric="rgb", rowsperstrip=8),
        "png16_gray": _png16_gray(photo),
    }


def _png16_gray(photo: np.ndarray) -> bytes:
    gray = (photo.mean(axis=2) * 257).astype(">u2")
    h, w = gray.shape
    raw = b"".join(b"\0" + gray[y].tobytes() for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


def build(folder: Path, photo: np.ndarray, outside: Path) -> list[Case]:
    """Write the corpus under folder (and one file under `outside`, a sibling folder for the link
    leading out). photo: H x W x 3 uint8, small (tens of pixels) so that mastering stays quick."""
    folder.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    s = seeds(photo)
    rgb = Image.fromarray(photo)
    cases: list[Case] = []

    def put(name: str, data: bytes, outcome: str, detail: str | None = None, reason: str | None = None) -> None:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        cases.append(Case(name, outcome, detail, reason))

    # empty and truncated files, at several points of each format
    put("empty/zero-byte.tif", b"", "failed", "invalid", "zero-byte")
    put("empty/zero-byte.jpg", b"", "failed", "invalid", "zero-byte")  # a copy of a failed file fails too
    png, jpeg, tiff = s["png"], s["jpeg"], s["tiff"]
    put("truncated/png-after-signature.png", png[:8], "failed", "invalid", "IHDR")
    put("truncated/png-in-ihdr.png", png[:20], "failed", "invalid")
    put("truncated/png-mid-idat.png", png[: len(png) // 2], "failed", "invalid")
    put("truncated/jpeg-after-soi.jpg", jpeg[:3], "failed", "invalid")
    put("truncated/jpeg-in-headers.jpg", jpeg[:120], "failed", "invalid")
    put("truncated/jpeg-mid-scan.jpg", jpeg[: len(jpeg) * 2 // 3], "failed", "invalid")
    put("truncated/tiff-in-header.tif", tiff[:6], "failed", "invalid")
    put("truncated/tiff-mid-strips.tif", tiff[: len(tiff) // 2], "failed", "invalid")
    lzw = s["tiff_lzw_tiled"]
    put("truncated/tiff-tiled-lzw-cut.tif", lzw[: len(lzw) // 3], "failed", "invalid")
    # wrong names and things that are not images
    put("named/png-named-jpg.jpg", pil_bytes(Image.fromarray(photo[4:, 4:]), "PNG"), "mastered", "extension says JPEG")
    put("named/text.tif", b"scan list for box 4\nnothing here\n", "failed", "invalid", "plain text")
    put("named/page.jpg", b"<!DOCTYPE html><html><body>404</body></html>", "failed", "invalid", "HTML")
    put("named/document.png", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n", "failed", "invalid", "PDF")
    put("named/archive.tiff", b"PK\x03\x04" + bytes(60), "failed", "invalid", "ZIP")
    put("named/animation.gif", pil_bytes(rgb, "GIF"), "failed", "unsupported", "GIF")
    put("named/photo.webp", pil_bytes(rgb, "WEBP"), "failed", "unsupported", "WebP")
    put("named/scan-without-extension", png, "mastered", "no file extension")
    put("named/README.txt", b"box 4, folder 2: scanned 2025\n", "skipped", "not an image file")
    # corrupt data inside a well-formed container
    bad_crc = bytearray(png)
    idat = bad_crc.index(b"IDAT")
    bad_crc[idat + 4 + 10] ^= 0xFF  # data changed, CRC kept: libpng refuses it
    put("corrupt/png-bad-crc.png", bytes(bad_crc), "failed", "invalid")
    zero_w = bytearray(png)
    zero_w[16:20] = b"\0\0\0\0"
    put("corrupt/png-zero-width.png", bytes(zero_w), "failed", "invalid")
    # libjpeg conceals corrupt entropy-coded data (as every viewer does) and Pillow does not
    # report its warnings: the scan masters, and only QA or a person can tell. Recorded as is.
    put("corrupt/jpeg-entropy.jpg", _corrupt_entropy(jpeg), "mastered")
    # header bombs
    put("bombs/png-60000x60000.png", png_header_bomb(60000, 60000), "failed", "too-large", "pixel limit")
    put("bombs/jpeg-65000x65000.jpg", jpeg_header_bomb(jpeg, 65000, 65000), "failed", "too-large", "pixel limit")
    put("bombs/tiff-100000x100000.tif", _tiff_claiming(tiff, 100_000, 100_000), "failed", "too-large", "pixel limit")
    put("bombs/tiff-huge-tile.tif", _tiff_huge_tile(), "failed", "too-large", "tile")
    put("bombs/tiff-bytes-not-pixels.tif", _tiff_wide_samples(), "failed", "too-large", "decoded-bytes limit")
    # colour models and sample formats a scanner or a prepress shop writes
    cmyk = Image.fromarray(photo).convert("CMYK")
    put("colour/cmyk-no-profile.jpg", pil_bytes(cmyk, "JPEG", quality=90), "mastered", "CMYK without an ICC profile")
    from PIL import ImageCms
    srgb_icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    put("colour/cmyk-wrong-profile.jpg", pil_bytes(cmyk, "JPEG", quality=90, icc_profile=srgb_icc),
        "mastered", "unusable ICC profile")
    put("colour/cmyk.tif", tiff_bytes(np.asarray(cmyk), photometric="separated"), "mastered", "CMYK")
    pal = rgb.quantize(16)
    put("colour/palette-transparent.png", pil_bytes(pal, "PNG", transparency=0), "mastered")
    bilevel = Image.fromarray(photo.mean(axis=2) > 110)
    put("colour/ccitt-g4.tif", pil_bytes(bilevel, "TIFF", compression="group4"), "mastered", "1-bit")
    gray16 = (photo.mean(axis=2) * 257).astype(np.uint16)
    put("colour/gray16-big-endian.tif", tiff_bytes(gray16.astype(">u2"), byteorder=">"), "mastered")
    put("colour/gray16.png", s["png16_gray"], "mastered")
    alpha = np.full(photo.shape[:2], 50000, np.uint16)
    rgba16 = np.dstack([photo.astype(np.uint16) * 257, alpha])
    put("colour/rgba16.tif", tiff_bytes(rgba16, photometric="rgb", extrasamples=[2]), "mastered")
    put("colour/rgba16.png", _png_rgba16(rgba16), "mastered")
    values = photo.astype(np.float32) / 255
    values[0, 0], values[1, 1], values[2, 2] = np.nan, np.inf, -np.inf
    put("colour/float32-nan-inf.tif", tiff_bytes(values, photometric="rgb"), "failed", "unsupported", "floating point")
    put("colour/multi-page.tif", tiff_bytes(np.stack([photo, photo[::-1]]), photometric="rgb"),
        "mastered", "multi-page TIFF: 2 pages")
    put("colour/tiff16-strips.tif", s["tiff16_strips"], "mastered")
    # metadata: orientation, corrupt EXIF and ICC blocks
    exif = Image.Exif()
    exif[0x0112] = 6
    put("meta/exif-orientation-6.jpg", pil_bytes(rgb, "JPEG", exif=exif), "mastered", "orientation 6")
    put("meta/corrupt-exif.jpg", _with_app1(jpeg, b"Exif\0\0MM\0*\0\0\0\x08\xff\xff" + bytes(20)), "mastered")
    put("meta/corrupt-icc.jpg", pil_bytes(rgb, "JPEG", icc_profile=b"\0\0\0\x40" + b"garbage-icc" * 6), "mastered")
    # sizes and contents at the edges
    put("edges/one-pixel.png", pil_bytes(Image.fromarray(photo[:1, :1]), "PNG"), "failed", "invalid", "too small")
    put("edges/one-by-forty.png", pil_bytes(Image.fromarray(photo[:1, :40]), "PNG"), "failed", "invalid", "too small")
    put("edges/all-black.png", pil_bytes(Image.fromarray(np.zeros_like(photo)), "PNG"), "mastered")
    put("edges/all-white.tif", tiff_bytes(np.full_like(photo, 255), photometric="rgb"), "mastered")
    # names
    small = pil_bytes(Image.fromarray(photo[::-1]), "PNG")
    put("names/scan with spaces.png", small, "mastered")
    put("names/line\nbreak.png", pil_bytes(Image.fromarray(photo[:, ::-1]), "PNG"), "mastered")
    put("names/-rf --leading-dash.png", pil_bytes(Image.fromarray(photo[::-1, ::-1]), "PNG"), "mastered")
    put("names/Ærøskøbing 写真 ç.png", pil_bytes(Image.fromarray(np.ascontiguousarray(photo.transpose(1, 0, 2))), "PNG"),
        "mastered")
    # duplicates: exact (same bytes) and near (same picture, other bytes)
    put("dupes/original.png", pil_bytes(Image.fromarray(np.roll(photo, 3, axis=1)), "PNG"), "mastered")
    put("dupes/same-bytes-copy.png", (folder / "dupes/original.png").read_bytes(), "unchanged", "same content as")
    put("dupes/resaved.jpg", pil_bytes(Image.fromarray(np.roll(photo, 3, axis=1)), "JPEG", quality=95),
        "mastered", "near-duplicate")
    # permissions: root reads anything, so the test makes ingest's open raise PermissionError
    put("perm/unreadable.png", pil_bytes(Image.fromarray(photo[2:, 2:]), "PNG"), "failed", "unreadable")
    cases[-1].unreadable = True
    os.chmod(folder / "perm/unreadable.png", 0)
    # links: out of the folder, a loop, a link to a folder named like an image, a pipe
    (outside / "secret.png").write_bytes(png)
    (folder / "links").mkdir()
    (folder / "links/leads-out.png").symlink_to(outside / "secret.png")
    cases.append(Case("links/leads-out.png", "skipped", "outside the scanned folder"))
    (folder / "links/loop.jpg").symlink_to(folder / "links/loop.jpg")
    cases.append(Case("links/loop.jpg", "skipped", "loop"))
    (folder / "links/folder.tif").symlink_to(folder / "names", target_is_directory=True)
    cases.append(Case("links/folder.tif", "skipped", "folder already listed"))
    (folder / "links/gone.png").symlink_to(folder / "links/no-such-file.png")
    cases.append(Case("links/gone.png", "skipped", "broken symlink"))
    os.mkfifo(folder / "links/pipe.tif")
    cases.append(Case("links/pipe.tif", "skipped", "not a regular file"))
    return cases


def _corrupt_entropy(jpeg: bytes) -> bytes:
    """Overwrite the middle of the entropy-coded data with marker-like garbage."""
    data = bytearray(jpeg)
    sos = data.index(b"\xff\xda")
    start = sos + 2 + struct.unpack(">H", data[sos + 2 : sos + 4])[0]
    mid = start + (len(data) - start) // 3
    data[mid : mid + 64] = b"\xff\xd9" + bytes(range(62))  # an early end-of-image, then noise
    return bytes(data)


def _tiff_claiming(tiff: bytes, width: int, height: int) -> bytes:
    """The valid TIFF with ImageWidth/ImageLength rewritten in its first IFD (little-endian)."""
    data = bytearray(tiff)
    ifd = struct.unpack("<I", data[4:8])[0]
    count = struct.unpack("<H", data[ifd : ifd + 2])[0]
    for i in range(count):
        entry = ifd + 2 + 12 * i
        tag, typ = struct.unpack("<HH", data[entry : entry + 4])
        if tag in (256, 257):
            value = width if tag == 256 else height
            struct.pack_into("<HII", data, entry + 2, 4, 1, value)  # LONG, one value
    return bytes(data)


def _tiff_huge_tile() -> bytes:
    """A 64x64 TIFF whose one tile claims 65536x65536 (tile dimensions are LONG in a TIFF)."""
    base = tiff_bytes(np.zeros((64, 64), np.uint8), tile=(64, 64))
    data = bytearray(base)
    ifd = struct.unpack("<I", data[4:8])[0]
    count = struct.unpack("<H", data[ifd : ifd + 2])[0]
    for i in range(count):
        entry = ifd + 2 + 12 * i
        tag = struct.unpack("<H", data[entry : entry + 2])[0]
        if tag in (322, 323):  # TileWidth, TileLength
            struct.pack_into("<HHII", data, entry, tag, 4, 1, 65536)
    return bytes(data)


def _tiff_wide_samples() -> bytes:
    """Under the pixel limit, over the byte limit: 15000 x 15000 x 64 samples of 16 bits (claimed)."""
    base = tiff_bytes(np.zeros((8, 8, 64), np.uint16), planarconfig="contig", photometric="minisblack")
    return _tiff_claiming(base, 15000, 15000)


def _png_rgba16(rgba16: np.ndarray) -> bytes:
    h, w = rgba16.shape[:2]
    raw = b"".join(b"\0" + rgba16[y].astype(">u2").tobytes() for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 6, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


def _with_app1(jpeg: bytes, payload: bytes) -> bytes:
    """Insert an APP1 segment right after SOI."""
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


# mutation operators for the fuzzer: each takes (data, rng) and returns new bytes
def _flip_bits(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 9))):
        i = int(rng.integers(0, len(out)))
        out[i] ^= 1 << int(rng.integers(0, 8))
    return bytes(out)


def _truncate(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: int(rng.integers(0, len(data)))]


def _header_field(data: bytes, rng: np.random.Generator) -> bytes:
    """Overwrite 1-4 bytes in the first 200 (where headers, IFDs and frame sizes live) with extremes."""
    out = bytearray(data)
    i = int(rng.integers(0, min(200, len(out))))
    extremes = [b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff", b"\x80\x00\x00\x01", b"\x01"]
    value = extremes[int(rng.integers(0, len(extremes)))]
    out[i : i + len(value)] = value
    return bytes(out[: len(data)]) if len(out) > len(data) else bytes(out)


def _splice(data: bytes, rng: np.random.Generator) -> bytes:
    """Duplicate or drop a block (chunk/segment boundaries move)."""
    i, j = sorted(int(x) for x in rng.integers(0, len(data), 2))
    return data[:i] + data[j:] if rng.random() < 0.5 else data[:j] + data[i:j] + data[j:]


MUTATIONS: dict[str, Callable[[bytes, np.random.Generator], bytes]] = {
    "flip": _flip_bits, "truncate": _truncate, "header": _header_field, "splice": _splice,
}
SUFFIX = {"png": ".png", "jpeg": ".jpg", "tiff": ".tif", "tiff_lzw_tiled": ".tif", "tiff16_strips": ".tif",
          "png16_gray": ".png"}


def mutate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One random mutation (sometimes two stacked) → (its name, the mutated bytes)."""
    names = list(MUTATIONS)
    name = names[int(rng.integers(0, len(names)))]
    out = MUTATIONS[name](data, rng)
    if rng.random() < 0.25 and out:
        second = names[int(rng.integers(0, len(names)))]
        out, name = MUTATIONS[second](out, rng), f"{name}+{second}"
    return name, out
