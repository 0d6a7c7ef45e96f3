"""Decoding keeps depth, alpha and profile, and refuses damaged files with a precise reason."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from tasks.files.imageio import ScanError, decode, from_float, inspect, to_float

MAX = 10**9


def _truncate(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def test_16bit_tiff_round_trips_exactly(tmp_path, shared_data):
    rgb8 = np.asarray(Image.open(shared_data / "sr_gt/McMaster/1.tif").convert("RGB"))
    rgb16 = rgb8.astype(np.uint16) * 257 + 3
    path = tmp_path / "scan16.tif"
    tifffile.imwrite(path, rgb16, photometric="rgb", compression="deflate", resolution=(600, 600),
                     resolutionunit="INCH")
    meta = inspect(path)
    assert (meta.format, meta.bit_depth, meta.channels, meta.ppi) == ("TIFF", 16, 3, 600.0)
    img = decode(path, max_pixels=MAX)
    assert img.pixels.dtype == np.uint16 and img.bit_depth == 16
    np.testing.assert_array_equal(img.pixels, rgb16)


def test_planar_tiff_is_returned_interleaved(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 255, (40, 30, 3), dtype=np.uint8)
    path = tmp_path / "planar.tif"
    tifffile.imwrite(path, np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(decode(path, max_pixels=MAX).pixels, rgb)


def test_16bit_rgba_png_keeps_depth_and_alpha(shared_data):
    path = shared_data / "edge_cases/tree_alpha_16bit.png"
    meta = inspect(path)
    assert meta.bit_depth == 16 and meta.channels == 4
    img = decode(path, max_pixels=MAX)
    assert img.pixels.dtype == np.uint16 and img.pixels.shape[2] == 3
    assert img.alpha is not None and img.alpha.shape == img.pixels.shape[:2]
    assert img.alpha.min() < img.alpha.max()  # a real, varying alpha


def test_png_colour_order_is_rgb(shared_data):
    path = shared_data / "edge_cases/children-alpha.png"
    img = decode(path, max_pixels=MAX)
    with Image.open(path) as im:
        expected = np.asarray(im.convert("RGBA"))
    np.testing.assert_array_equal(img.pixels, expected[:, :, :3])
    np.testing.assert_array_equal(img.alpha, expected[:, :, 3])


@pytest.mark.parametrize("name", ["00017_gray.png", "wolf_gray.jpg"])
def test_grayscale_stays_one_channel(shared_data, name):
    img = decode(shared_data / "edge_cases" / name, max_pixels=MAX)
    assert img.is_gray and img.pixels.ndim == 2


def test_jpeg_icc_profile_is_read(tmp_path, shared_data):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / "with_icc.jpg"
    Image.open(shared_data / "edge_cases/0014.jpg").save(path, icc_profile=icc, dpi=(300, 300))
    assert inspect(path).has_icc and inspect(path).ppi == 300.0
    assert decode(path, max_pixels=MAX).icc == icc


def test_a_jpeg_with_half_resolution_colour_is_known_as_one(tmp_path, shared_data):
    # QA's colour test for dust specks cannot trust colour at the scale of a few pixels in it.
    photo = Image.open(shared_data / "sr_gt/McMaster/1.tif").convert("RGB")
    for name, kwargs, expected in (("420.jpg", {"subsampling": 2}, True), ("422.jpg", {"subsampling": 1}, True),
                                   ("444.jpg", {"subsampling": 0}, False), ("scan.png", {}, False)):
        photo.save(tmp_path / name, **kwargs)
        assert decode(tmp_path / name, max_pixels=MAX).chroma_subsampled is expected, name
    Image.open(shared_data / "edge_cases/wolf_gray.jpg").save(tmp_path / "gray.jpg")
    assert decode(tmp_path / "gray.jpg", max_pixels=MAX).chroma_subsampled is False


@pytest.mark.parametrize("source", ["edge_cases/0014.jpg", "old_photos/old/a.png"])
def test_truncated_files_fail_with_reason(tmp_path, shared_data, source):
    src = shared_data / source
    bad = _truncate(src, tmp_path / f"cut{src.suffix}")
    with pytest.raises(ScanError) as info:
        decode(bad, max_pixels=MAX)
    assert str(bad) in str(info.value)
    assert info.value.reason.startswith(("damaged", "unreadable")), info.value.reason


def test_truncated_tiff_fails(tmp_path, shared_data):
    rgb = np.asarray(Image.open(shared_data / "sr_gt/McMaster/2.tif").convert("RGB"))
    good = tmp_path / "good.tif"
    tifffile.imwrite(good, rgb, photometric="rgb", compression="deflate")
    with pytest.raises(ScanError, match="damaged TIFF"):
        decode(_truncate(good, tmp_path / "cut.tif"), max_pixels=MAX)


def test_zero_byte_non_image_and_wrong_extension(tmp_path, shared_data):
    empty = tmp_path / "empty.tif"
    empty.touch()
    with pytest.raises(ScanError, match="zero-byte"):
        decode(empty, max_pixels=MAX)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(ScanError, match="not a TIFF, PNG or JPEG"):
        inspect(text)
    renamed = tmp_path / "photo.tif"
    renamed.write_bytes((shared_data / "edge_cases/0014.jpg").read_bytes())
    # the name is not the content: read by content, and say so (a copy named rightly must not
    # inherit a failure that only its name caused: failures are keyed by content)
    assert inspect(renamed).format == "JPEG"
    assert "extension says TIFF but the content is JPEG: read as JPEG" in decode(renamed, max_pixels=MAX).notes


def test_pixel_limit_refuses_decompression_bombs(shared_data):
    path = shared_data / "old_photos/old/a.png"
    with pytest.raises(ScanError, match="over the pixel limit"):
        decode(path, max_pixels=1000)


def test_decode_never_writes_the_original(shared_data):
    path = shared_data / "edge_cases/tree_alpha_16bit.png"
    before = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    decode(path, max_pixels=MAX)
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) == before


def test_float_conversion_rounds_and_keeps_16bit_precision():
    values = np.array([0, 1, 32767, 65535], dtype=np.uint16)
    np.testing.assert_array_equal(from_float(to_float(values), 16), values)
    assert from_float(np.array([0.5]), 8)[0] == 128  # rounds, does not truncate


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_viewers_do(tmp_path, shared_data, orientation):
    from PIL import ImageOps

    src = Image.open(shared_data / "edge_cases/0014.jpg").convert("RGB").crop((0, 0, 60, 40))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.png"  # PNG: lossless, so pixels compare exactly
    src.save(path, exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    np.testing.assert_array_equal(decode(path, max_pixels=MAX).pixels, expected)


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_quantizing_in_place_gives_from_floats_pixels_in_the_floats_memory(bit_depth):
    from tasks.files.imageio import from_float, quantize_in_place

    values = np.random.default_rng(1).uniform(-0.1, 1.1, (700, 33, 3)).astype(np.float32)
    expected = from_float(values, bit_depth)
    out = quantize_in_place(values, bit_depth)
    assert np.shares_memory(out, values)
    assert out.dtype == expected.dtype and np.array_equal(out, expected)
