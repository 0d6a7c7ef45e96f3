"""Browser-sized views of scans and masters: downscaled previews and a grid of 1:1 tiles.

A 100 MP TIFF never goes to a browser: the review app shows JPEG previews (long edge at most
PREVIEW_EDGES[-1]) and, for 100 %/200 % zoom, TILE x TILE JPEG crops of the full-resolution
pixels. Everything is made in one decode, the first time a file is asked for, and cached under
`cache_root/<sha256[:2]>/<sha256>/` keyed by the file's content: a changed file is a new key,
and the same bytes are never decoded twice. `manifest.json` is written last and marks a
complete cache entry.
"""

from __future__ import annotations

import io
import json
import re
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from tasks.atomic import atomic_write
from tasks.diagnosis.views import resize_long_side  # area-averaged, never enlarged
from tasks.imageio import decode

PREVIEW_EDGES = (320, 1600)  # thumbnail in the item list, the before/after view
TILE = 256  # pixels of the full-resolution image per tile side
_PREVIEW_QUALITY = 88
# Tiles are what a reviewer inspects for invented detail: near-lossless, no chroma subsampling.
_TILE_QUALITY = 95
_SHA = re.compile(r"^[0-9a-f]{64}$")
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def cache_dir(cache_root: Path, sha256: str) -> Path:
    if not _SHA.match(sha256):  # the only name that reaches the file system here
        raise ValueError(f"{sha256!r} is not a sha256")
    return Path(cache_root) / sha256[:2] / sha256


def to_display(pixels: np.ndarray) -> np.ndarray:
    """uint8 RGB or grayscale for a browser (16-bit scaled, not clipped)."""
    if pixels.dtype == np.uint8:
        return pixels
    if np.issubdtype(pixels.dtype, np.integer):
        return (pixels.astype(np.float32) * (255.0 / np.iinfo(pixels.dtype).max) + 0.5).astype(np.uint8)
    return (np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def jpeg_bytes(pixels: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality, subsampling=0 if quality >= 95 else 2)
    return buffer.getvalue()


def tile_grid(width: int, height: int, tile: int = TILE) -> tuple[int, int]:
    return -(-width // tile), -(-height // tile)


def build(source: Path, sha256: str, cache_root: Path, *, max_pixels: int) -> dict[str, Any]:
    """The cache entry of `source` (whose content is `sha256`): made once, then read back.

    Returns the manifest: width and height of the full image (upright), the tile size, the
    grid, and the preview sizes. Raises tasks.imageio.ScanError for a file that cannot be read."""
    folder = cache_dir(cache_root, sha256)
    manifest = folder / "manifest.json"
    if manifest.is_file():
        return json.loads(manifest.read_text())
    with _lock(sha256):  # two browser requests for a new file decode it once
        if manifest.is_file():
            return json.loads(manifest.read_text())
        pixels = to_display(decode(Path(source), max_pixels=max_pixels).pixels)
        h, w = pixels.shape[:2]
        folder.mkdir(parents=True, exist_ok=True)
        previews = {}
        for edge in PREVIEW_EDGES:
            small = resize_long_side(pixels, edge)
            _write(folder / f"preview-{edge}.jpg", jpeg_bytes(small, _PREVIEW_QUALITY))
            previews[str(edge)] = [int(small.shape[1]), int(small.shape[0])]
        cols, rows = tile_grid(w, h)
        for row in range(rows):
            for col in range(cols):
                crop = pixels[row * TILE:(row + 1) * TILE, col * TILE:(col + 1) * TILE]
                _write(folder / f"tile-{col}-{row}.jpg", jpeg_bytes(np.ascontiguousarray(crop), _TILE_QUALITY))
        data = {"sha256": sha256, "width": int(w), "height": int(h), "tile": TILE, "cols": cols, "rows": rows,
                "previews": previews}
        _write(manifest, json.dumps(data).encode())
        return data


def preview_path(cache_root: Path, sha256: str, edge: int) -> Path:
    if edge not in PREVIEW_EDGES:
        raise ValueError(f"preview edge {edge}: expected one of {PREVIEW_EDGES}")
    return cache_dir(cache_root, sha256) / f"preview-{edge}.jpg"


def tile_path(cache_root: Path, sha256: str, manifest: dict[str, Any], col: int, row: int) -> Path:
    if not (0 <= col < manifest["cols"] and 0 <= row < manifest["rows"]):
        raise ValueError(f"tile {col},{row} is outside the {manifest['cols']}x{manifest['rows']} grid")
    return cache_dir(cache_root, sha256) / f"tile-{col}-{row}.jpg"


def _write(path: Path, data: bytes) -> None:
    atomic_write(path, lambda temp: temp.write_bytes(data))


def _lock(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())
