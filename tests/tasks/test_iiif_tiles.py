"""IIIF Image API 3.0 level-0 derivatives (tasks.files.iiif_tiles) on real photographs.

Small images (≤ 566 px) in 128 px tiles give three pyramid levels with partial edge tiles; the
100 MP case is bench/iiif_tiles.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import pyvips
import tifffile
from PIL import Image, ImageOps

from tasks.files import iiif_tiles
from tasks.files.iiif_tiles import check_fixity, tile_requests, validate_iiif, viewable, write_iiif
from tasks.files.tag import access_pixels

BASE = "https://iiif.example.org/iiif/"
PORTRAIT = "sr_gt/CBSD68/101085.png"  # 321x481 RGB
RGBA = "edge_cases/children-alpha.png"  # 566x350 RGBA
BATCH = [PORTRAIT, RGBA, "edge_cases/00017_gray.png", "edge_cases/0014.jpg", "sr_gt/McMaster/1.tif"]


def tiles(source: Path, root: Path, identifier: str, **kw: object) -> iiif_tiles.IiifDerivative:
    return write_iiif(source, root, identifier, base_url=BASE, tile_size=128, **kw)  # type: ignore[arg-type]


def decoded(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def manifest(folder: Path) -> dict[str, str]:
    lines = (line.split("  ", 1) for line in (folder / "manifest-sha256.txt").read_text().splitlines())
    return {rel: digest for digest, rel in lines}


def test_a_batch_is_tiled_and_every_promised_tile_is_there(shared_data: Path, tmp_path: Path) -> None:
    for n, name in enumerate(BATCH):
        source = shared_data / name
        made = tiles(source, tmp_path / "iiif", f"item-{n}/{n:016x}")
        with Image.open(source) as im:
            size = im.size
        info = json.loads(made.info_json.read_text())
        assert (made.width, made.height) == size == (info["width"], info["height"])
        assert made.created and made.path == tmp_path / "iiif" / f"item-{n}/{n:016x}"
        assert info["@context"] == "http://iiif.io/api/image/3/context.json"
        assert (info["type"], info["profile"]) == ("ImageService3", "level0")
        assert info["id"] == made.id == f"https://iiif.example.org/iiif/item-{n}/{n:016x}"
        assert validate_iiif(made.path) == [], name
        assert check_fixity(made.path, made.sha256) == [], name
        # Exactly the promised tiles (no strays in region folders), and nothing half-written beside.
        regions = {p.relative_to(made.path).as_posix() for p in made.path.glob("*,*/*/0/default.jpg")}
        assert regions == {rel for rel, *_ in tile_requests(info)} and made.tile_count == len(regions)
    assert [p.name for p in (tmp_path / "iiif").rglob("*.partial")] == []


def test_tiles_follow_the_spec_recipe_with_partial_edge_tiles(shared_data: Path, tmp_path: Path) -> None:
    made = tiles(shared_data / PORTRAIT, tmp_path, "item/portrait")
    info = json.loads(made.info_json.read_text())
    assert info["tiles"] == [{"width": 128, "height": 128, "scaleFactors": [1, 2, 4]}]
    # Worked by hand from the implementation notes for 321x481 in 128 px tiles:
    expected = {
        "256,384,65,97/65,97/0/default.jpg": (65, 97),  # s=1, bottom-right corner
        "256,256,65,225/33,113/0/default.jpg": (33, 113),  # s=2: ws = (321-256+2-1)//2, hs = (481-256+1)//2
        "0,0,321,481/81,121/0/default.jpg": (81, 121),  # s=4: one tile covers the image...
        "full/81,121/0/default.jpg": (81, 121),  # ...and is also where OpenSeadragon asks for it
    }
    for rel, size in expected.items():
        with Image.open(made.path / rel) as im:
            assert (im.format, im.size) == ("JPEG", size), rel
    assert info["sizes"] == [{"width": 81, "height": 121}, {"width": 161, "height": 241},
                             {"width": 321, "height": 481}]
    assert "maxWidth" not in info  # "max" is the whole image
    with Image.open(made.path / "full/max/0/default.jpg") as im:
        assert im.size == (321, 481)
    # A tile shows its region: the s=1 tile at (128, 256) against the photograph's pixels.
    with Image.open(shared_data / PORTRAIT) as im:
        photo = np.asarray(im.convert("RGB"), dtype=np.int16)
    tile = decoded(made.path / "128,256,128,128/128,128/0/default.jpg")
    error = {(dy, dx): np.abs(tile - photo[256 + dy:384 + dy, 128 + dx:256 + dx]).mean()
             for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
    assert error[0, 0] < 5.0  # JPEG at Q90 on a textured photograph
    assert min(error, key=error.__getitem__) == (0, 0) and sorted(error.values())[1] > 3 * error[0, 0]


def test_large_images_advertise_a_bounded_max(shared_data: Path, tmp_path: Path) -> None:
    made = tiles(shared_data / PORTRAIT, tmp_path, "item/portrait", max_full_size=250)
    info = json.loads(made.info_json.read_text())
    assert info["sizes"] == [{"width": 81, "height": 121}, {"width": 161, "height": 241}]
    assert (info["maxWidth"], info["maxHeight"]) == (161, 241)
    assert not (made.path / "full/321,481").exists()
    assert validate_iiif(made.path) == []


def test_a_deleted_or_wrong_size_tile_is_reported(shared_data: Path, tmp_path: Path) -> None:
    made = tiles(shared_data / PORTRAIT, tmp_path, "item/portrait")
    (made.path / "128,0,128,128/128,128/0/default.jpg").unlink()
    Image.new("RGB", (64, 64), "gray").save(made.path / "0,256,256,225/128,113/0/default.jpg", "JPEG")
    (made.path / "full/161,241/0/default.jpg").write_bytes(b"not a jpeg")
    assert validate_iiif(made.path) == [
        "128,0,128,128/128,128/0/default.jpg: missing",
        "0,256,256,225/128,113/0/default.jpg: 64x64 px, info.json promises 128x113",
        "full/161,241/0/default.jpg: not a JPEG",
    ]
    problems = check_fixity(made.path, made.sha256)
    assert "128,0,128,128/128,128/0/default.jpg: missing" in problems
    assert "0,256,256,225/128,113/0/default.jpg: sha256 differs from the manifest" in problems


def test_a_broken_info_json_is_reported(shared_data: Path, tmp_path: Path) -> None:
    made = tiles(shared_data / PORTRAIT, tmp_path, "item/portrait")
    info = json.loads(made.info_json.read_text())
    made.info_json.write_text(json.dumps(info | {"profile": "level2", "tiles": [{"width": 128}]}))
    assert validate_iiif(made.path) == [
        "info.json: profile is 'level2', expected 'level0'",
        "info.json: tiles entry {'width': 128} needs width (height) and scaleFactors, positive integers",
    ]
    made.info_json.unlink()
    assert validate_iiif(made.path) == ["info.json: missing"]


def test_a_second_call_reuses_the_folder(shared_data: Path, tmp_path: Path) -> None:
    first = tiles(shared_data / PORTRAIT, tmp_path, "item/portrait")
    tile = first.path / "0,0,128,128/128,128/0/default.jpg"
    before = {p: p.stat().st_mtime_ns for p in (tile, first.info_json, first.path / "manifest-sha256.txt")}
    again = tiles(shared_data / PORTRAIT, tmp_path, "item/portrait")
    assert not again.created
    assert (again.sha256, again.info_sha256, again.total_bytes) == (first.sha256, first.info_sha256, first.total_bytes)
    assert {p: p.stat().st_mtime_ns for p in before} == before
    # A moved base URL rewrites info.json (and its manifest line), never the tiles.
    moved = write_iiif(shared_data / PORTRAIT, tmp_path, "item/portrait", base_url="https://new.example.org/i",
                       tile_size=128)
    assert moved.id == "https://new.example.org/i/item/portrait" and not moved.created
    assert tile.stat().st_mtime_ns == before[tile] and moved.sha256 != first.sha256
    assert validate_iiif(moved.path) == [] and check_fixity(moved.path, moved.sha256) == []
    # Another image under the same identifier is refused, not mixed in.
    with pytest.raises(ValueError, match="not this 566x350 source"):
        tiles(shared_data / RGBA, tmp_path, "item/portrait")


def test_a_failure_midway_leaves_no_folder(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(*args: object, **kw: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(iiif_tiles, "_join_level", disk_full)  # after dzsave wrote every tile
    with pytest.raises(OSError, match="No space left"):
        tiles(shared_data / PORTRAIT, tmp_path / "iiif", "item/portrait")
    assert list((tmp_path / "iiif" / "item").iterdir()) == []  # no folder, no .partial left
    monkeypatch.undo()
    assert validate_iiif(tiles(shared_data / PORTRAIT, tmp_path / "iiif", "item/portrait").path) == []


def test_identifiers_must_be_path_safe(shared_data: Path, tmp_path: Path) -> None:
    for bad in ("../escape", "item/.hidden", "", "item//x", "a b"):
        with pytest.raises(ValueError, match="path-safe"):
            tiles(shared_data / PORTRAIT, tmp_path, bad)


def test_16_bit_tiles_are_rounded_not_clipped_or_truncated(shared_data: Path, tmp_path: Path) -> None:
    with Image.open(shared_data / PORTRAIT) as im:
        photo = np.asarray(im.convert("RGB"))
    # 16-bit samples whose round(v / 257) is the photograph again; v >> 8 would not be (v = 200*257+100
    # gives 201), and a cast without scaling would clip nearly everything to 255.
    low_bits = np.random.default_rng(7).integers(-128, 129, photo.shape)
    deep = np.clip(photo.astype(np.int64) * 257 + low_bits, 0, 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "deep.tif", deep, photometric="rgb", compression="adobe_deflate")
    assert np.array_equal(viewable(tmp_path / "deep.tif").numpy(), ((deep.astype(np.uint32) + 128) // 257))
    deep_tiles = tiles(tmp_path / "deep.tif", tmp_path / "iiif", "item/deep")
    flat_tiles = tiles(shared_data / PORTRAIT, tmp_path / "iiif", "item/flat")
    assert validate_iiif(deep_tiles.path) == []
    deep_files, flat_files = manifest(deep_tiles.path), manifest(flat_tiles.path)
    assert deep_files.keys() == flat_files.keys()
    for rel in deep_files:
        if rel.endswith(".jpg"):  # same 8-bit pixels in, so the same JPEG out: within 1 level
            assert np.abs(decoded(deep_tiles.path / rel) - decoded(flat_tiles.path / rel)).max() <= 1, rel


def test_alpha_is_flattened_on_white_as_access_copies_are(shared_data: Path, tmp_path: Path) -> None:
    with Image.open(shared_data / RGBA) as im:
        rgba = np.asarray(im)
    assert rgba.shape[2] == 4 and (rgba[..., 3] == 0).any()
    flat = viewable(shared_data / RGBA).numpy()
    access = access_pixels(rgba[..., :3], rgba[..., 3], long_edge=10_000)
    assert flat.shape == access.shape and np.abs(flat.astype(int) - access.astype(int)).max() <= 1
    assert (flat[rgba[..., 3] == 0] == 255).all()
    made = tiles(shared_data / RGBA, tmp_path, "item/rgba")
    assert validate_iiif(made.path) == []
    tile = decoded(made.path / "0,0,128,128/128,128/0/default.jpg")
    transparent = rgba[:128, :128, 3] == 0
    assert transparent.mean() > 0.5 and tile[transparent].mean() > 253  # white, not black (JPEG rings a little)


def test_a_16_bit_png_with_alpha_and_an_adobe_rgb_profile(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "edge_cases/tree_alpha_16bit.png"
    image = pyvips.Image.new_from_file(str(source))
    profile = image.get("icc-profile-data")
    assert (image.format, image.bands) == ("ushort", 4) and isinstance(profile, bytes) and b"Adobe RGB" in profile
    made = tiles(source, tmp_path, "item/tree")
    assert validate_iiif(made.path) == []
    # Converted to sRGB: Adobe RGB's greens are more saturated, so the raw values would differ.
    converted = viewable(source).numpy().astype(int)
    raw = image.flatten(background=[65535.0] * 3, max_alpha=65535).numpy().astype(int)
    rounded = (raw + 128) // 257
    assert np.abs(converted - rounded).max() > 10


def test_the_derivative_copies_as_a_folder(shared_data: Path, tmp_path: Path) -> None:
    made = tiles(shared_data / PORTRAIT, tmp_path / "a", "item/portrait")
    copy = Path(shutil.copytree(made.path, tmp_path / "b" / "portrait"))  # hard links become copies
    assert validate_iiif(copy) == [] and check_fixity(copy, made.sha256) == []


def test_a_scan_with_exif_orientation_is_tiled_upright(shared_data: Path, tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90° clockwise to view
    with Image.open(shared_data / PORTRAIT) as im:
        im.convert("RGB").save(tmp_path / "sideways.jpg", "JPEG", quality=95, exif=exif)
    with Image.open(tmp_path / "sideways.jpg") as im:
        upright = np.asarray(ImageOps.exif_transpose(im), dtype=np.int16)
    assert upright.shape[:2] == (321, 481)  # was 481 high, 321 wide
    assert np.abs(viewable(tmp_path / "sideways.jpg").numpy().astype(np.int16) - upright).max() <= 1
    made = tiles(tmp_path / "sideways.jpg", tmp_path / "iiif", "item/sideways")
    assert (made.width, made.height) == (481, 321) and validate_iiif(made.path) == []
