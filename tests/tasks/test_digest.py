"""Pixel digests: same pixels → same digest, whatever the file's metadata; any change shows."""

from __future__ import annotations

import numpy as np
import pyexiv2
import tifffile

from tasks.files.digest import compare_pixels, file_pixel_digest, pixel_digest, read_pixels


def test_digest_is_of_values_shape_and_type() -> None:
    rgb = np.random.default_rng(0).integers(0, 65535, (5, 7, 3), dtype=np.uint16)
    assert pixel_digest(rgb) == pixel_digest(rgb.copy()) == pixel_digest(rgb.astype(">u2"))  # byte order
    assert pixel_digest(rgb) == pixel_digest(np.asfortranarray(rgb))  # memory layout
    changed = rgb.copy()
    changed[2, 3, 1] ^= 1
    assert pixel_digest(changed) != pixel_digest(rgb)
    assert pixel_digest(rgb.reshape(7, 5, 3)) != pixel_digest(rgb)  # shape
    assert pixel_digest((rgb // 257).astype(np.uint8)) != pixel_digest((rgb // 257).astype(np.uint16))  # type
    gray = rgb[..., 0]
    assert pixel_digest(gray[..., None]) == pixel_digest(gray)


def test_file_digest_survives_metadata_edits(tmp_path) -> None:
    rgba = np.random.default_rng(1).integers(0, 255, (6, 4, 4), dtype=np.uint8)
    path = tmp_path / "m.tif"
    tifffile.imwrite(path, rgba, photometric="rgb", extrasamples=[2], compression="adobe_deflate")
    before_bytes, before = path.read_bytes(), file_pixel_digest(path)
    img = pyexiv2.Image(str(path))
    img.modify_xmp({"Xmp.dc.description": "edited later"})
    img.close()
    assert path.read_bytes() != before_bytes
    assert file_pixel_digest(path) == before == pixel_digest(rgba)  # alpha included
    assert read_pixels(path).shape == (6, 4, 4)


def test_compare_reports_psnr_and_largest_difference() -> None:
    a = np.full((4, 4), 1000, np.uint16)
    assert compare_pixels(a, a.copy()) == {"comparable": True, "identical": True, "max_abs_diff": 0.0,
                                           "mean_abs_diff": 0.0, "peak": 65535.0, "psnr_db": None,
                                           "differing_samples": 0}
    b = a.copy()
    b[0, 0] += 655
    got = compare_pixels(a, b)
    assert not got["identical"] and got["max_abs_diff"] == 655 and got["differing_samples"] == 1
    assert 51.9 < got["psnr_db"] < 52.2  # 20 log10(65535/655) + 10 log10(16)
    assert compare_pixels(a, a[:2])["comparable"] is False
