"""Master TIFF and access JPEG writing (tasks.files.tag) and atomic writes (tasks.files.atomic)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import cv2
import numpy as np
import pyexiv2
import pytest
import tifffile
from PIL import Image, ImageCms

import tasks.files.tag
from tasks.files.atomic import atomic_write, sha256_file
from tasks.files.digest import file_pixel_digest
from tasks.files.tag import access_pixels, write_access, write_master
from tasks.files.xmp import DST_WITH_TRAINED_MODEL, read_provenance, read_source_metadata
from tasks.records.types import INGESTION, UPSCALING, AgentInfo, AuditRecord, StepRecord

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
MASTER_UUID = "7d0e1c62-5f0a-4b8e-9a51-3c2d1e0f9a8b"
ACCESS_UUID = "8e1f2d73-6a1b-4c9f-8b62-4d3e2f1a0b9c"


def gray_icc() -> bytes:
    """A minimal valid grayscale ICC profile (Pillow cannot create one)."""
    header = bytearray(128)
    header[0:4] = (128 + 4).to_bytes(4, "big")
    header[12:16], header[16:20], header[20:24], header[36:40] = b"mntr", b"GRAY", b"XYZ ", b"acsp"
    return bytes(header) + (0).to_bytes(4, "big")


def make_original(path: Path) -> Path:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Epson", "Perfection V850 Pro"
    exif.get_ifd(0x8769)[0x9003] = "1931:05:02 10:11:12"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(
        path, "JPEG", exif=exif, icc_profile=SRGB, quality=90)
    return path


def make_record(original: Path) -> AuditRecord:
    sw = AgentInfo("software", "restorium", "0.1.0")
    model = AgentInfo("model", "realesr-general-x4v3", "", "SRVGGNetCompact", "ab" * 32)
    return AuditRecord(
        master={"uuid": MASTER_UUID},
        original={"uuid": "1c2d3e4f-0000-4000-8000-000000000001", "path": str(original),
                  "sha256": sha256_file(original), "item_uuid": "1c2d3e4f-0000-4000-8000-000000000002",
                  "identifier": "ACC-17"},
        derivation_key="f" * 64,
        recipe={"name": "default", "hash": "a" * 64, "resolved": {"seed": 0, "upscale": {"scale": 2.0}},
                "plan_reasons": []},
        run={"uuid": "1c2d3e4f-0000-4000-8000-000000000003"},
        software={"name": "restorium", "version": "0.1.0"},
        models=[model],
        steps=[
            StepRecord("1c2d3e4f-0000-4000-8000-0000000000a1", INGESTION, "ingest", "2024-05-01T10:00:00Z",
                       "success", "", [sw], {}),
            StepRecord("1c2d3e4f-0000-4000-8000-0000000000a2", UPSCALING, "upscale", "2024-05-01T10:05:00Z",
                       "success", "Größe ×2", [sw, model], {"scale": 2.0, "tiles": {"size": 256, "overlap": 16}}),
        ],
    )


@pytest.fixture
def scan(tmp_path: Path) -> tuple[Path, AuditRecord]:
    original = make_original(tmp_path / "scan.jpg")
    return original, make_record(original)


def ramp16(h: int = 60, w: int = 80, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(2)
    shape = (h, w, channels) if channels > 1 else (h, w)
    return rng.integers(0, 65536, shape, dtype=np.uint16)


def master(tmp_path: Path, scan: tuple[Path, AuditRecord], pixels: np.ndarray, alpha=None, **kw):
    original, record = scan
    args = {"icc": SRGB, "ppi": 600.0, "compression": "deflate"} | kw
    return write_master(tmp_path / "out" / "master.tif", pixels, alpha, record=record,
                        source=read_source_metadata(original), uuid=MASTER_UUID, **args)


def access(tmp_path: Path, scan: tuple[Path, AuditRecord], pixels: np.ndarray, alpha=None, **kw):
    original, record = scan
    args = {"icc": SRGB, "quality": 90, "long_edge": 2048} | kw
    return write_access(tmp_path / "out" / "access.jpg", pixels, alpha, record=record,
                        source=read_source_metadata(original), uuid=ACCESS_UUID, **args)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".partial"))


# --- master -------------------------------------------------------------------------------------


def test_master_16bit_rgb_stays_16bit(tmp_path: Path, scan) -> None:
    px = ramp16()
    wf = master(tmp_path, scan, px)

    with tifffile.TiffFile(wf.path) as tif:
        page = tif.pages[0]
        assert page.dtype == np.uint16 and page.photometric == tifffile.PHOTOMETRIC.RGB
        assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        assert page.predictor == tifffile.PREDICTOR.HORIZONTAL
        assert page.tags["InterColorProfile"].value == SRGB
        assert page.tags["XResolution"].value == (600, 1)
        assert page.tags["ResolutionUnit"].value == tifffile.RESUNIT.INCH
        assert not tif.is_bigtiff
        np.testing.assert_array_equal(page.asarray(), px)
    assert (wf.role, wf.format, wf.width, wf.height, wf.channels, wf.bit_depth, wf.has_icc) == (
        "master", "TIFF", 80, 60, 3, 16, True)
    assert wf.uuid == MASTER_UUID and wf.path == str((tmp_path / "out" / "master.tif").resolve())
    assert wf.sha256 == sha256_file(wf.path) and wf.size == os.path.getsize(wf.path)
    assert leftovers(tmp_path / "out") == []


def test_master_rgba_keeps_alpha_as_unassociated_extra_sample(tmp_path: Path, scan) -> None:
    px, alpha = ramp16(), ramp16(channels=1)
    wf = master(tmp_path, scan, px, alpha)

    with tifffile.TiffFile(wf.path) as tif:
        page = tif.pages[0]
        assert page.samplesperpixel == 4
        assert page.extrasamples == (tifffile.EXTRASAMPLE.UNASSALPHA,)
        data = page.asarray()
    np.testing.assert_array_equal(data[..., :3], px)
    np.testing.assert_array_equal(data[..., 3], alpha)
    assert wf.channels == 4


def test_master_grayscale_stays_one_channel(tmp_path: Path, scan) -> None:
    px8 = np.random.default_rng(3).integers(0, 256, (40, 30, 1), dtype=np.uint8)
    wf = master(tmp_path, scan, px8, icc=gray_icc(), compression="none")
    with tifffile.TiffFile(wf.path) as tif:
        page = tif.pages[0]
        assert page.photometric == tifffile.PHOTOMETRIC.MINISBLACK and page.samplesperpixel == 1
        assert page.compression == tifffile.COMPRESSION.NONE
        np.testing.assert_array_equal(page.asarray(), px8[..., 0])
    assert (wf.channels, wf.bit_depth) == (1, 8)

    alpha = np.full((40, 30), 255, np.uint8)
    wf2 = master(tmp_path, scan, px8[..., 0], alpha, icc=None)
    assert tifffile.imread(wf2.path).shape == (40, 30, 2) and wf2.channels == 2 and not wf2.has_icc


@pytest.mark.skipif(not (DATA / "edge_cases" / "tree_alpha_16bit.png").is_file(), reason="shared test data not present")
def test_master_of_a_real_16bit_rgba_png(tmp_path: Path, scan) -> None:
    bgra = cv2.imread(str(DATA / "edge_cases" / "tree_alpha_16bit.png"), cv2.IMREAD_UNCHANGED)
    assert bgra.dtype == np.uint16 and bgra.shape[2] == 4
    rgb, alpha = cv2.cvtColor(bgra[..., :3], cv2.COLOR_BGR2RGB), bgra[..., 3]
    wf = master(tmp_path, scan, rgb, alpha)
    back = tifffile.imread(wf.path)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, np.dstack([rgb, alpha]))


def test_master_embeds_provenance_and_the_originals_metadata(tmp_path: Path, scan) -> None:
    original, record = scan
    wf = master(tmp_path, scan, ramp16())

    img = pyexiv2.Image(wf.path)
    exif, xmp = img.read_exif(), img.read_xmp()
    img.close()
    assert exif["Exif.Image.Make"] == "Epson" and exif["Exif.Image.Model"] == "Perfection V850 Pro"
    assert exif["Exif.Photo.DateTimeOriginal"] == "1931:05:02 10:11:12"
    assert xmp["Xmp.xmpMM.DocumentID"] == f"xmp.did:{MASTER_UUID}"
    assert xmp["Xmp.xmpMM.DerivedFrom/stRef:documentID"] == f"xmp.did:{record.original['uuid']}"
    assert xmp["Xmp.xmpMM.History[1]/stEvt:action"] == "managed"
    assert xmp["Xmp.xmpMM.History[2]/stEvt:action"] == "resized"
    assert xmp["Xmp.iptcExt.DigitalSourceType"] == DST_WITH_TRAINED_MODEL
    assert xmp["Xmp.restorium.documentRole"] == "master"
    assert xmp["Xmp.restorium.derivationKey"] == record.derivation_key
    # the ICC profile read back is the original's
    assert tifffile.TiffFile(wf.path).pages[0].tags["InterColorProfile"].value == read_source_metadata(original).icc

    back = read_provenance(wf.path)
    assert back.steps == record.steps and back.original == record.original
    # the pixel digest recorded at writing is that of the decoded file (metadata edits aside)
    assert back.master == {"uuid": MASTER_UUID, "path": wf.path, "sha256": wf.sha256,
                           "pixel_sha256": wf.pixel_sha256}
    assert wf.pixel_sha256 == file_pixel_digest(wf.path)


def test_original_is_unchanged_by_mastering(tmp_path: Path, scan) -> None:
    original, _ = scan
    before = hashlib.sha256(original.read_bytes()).hexdigest()
    master(tmp_path, scan, ramp16())
    access(tmp_path, scan, ramp16())
    assert hashlib.sha256(original.read_bytes()).hexdigest() == before


def test_lzw_is_written_or_refused_clearly(tmp_path: Path, scan) -> None:
    if importlib.util.find_spec("imagecodecs") is None:
        with pytest.raises(ValueError, match=r"master\.tif.*imagecodecs"):
            master(tmp_path, scan, ramp16(), compression="lzw")
        assert not (tmp_path / "out" / "master.tif").exists()
    else:
        wf = master(tmp_path, scan, ramp16(), compression="lzw")
        assert tifffile.TiffFile(wf.path).pages[0].compression == tifffile.COMPRESSION.LZW


def test_bad_inputs_are_refused_naming_the_file(tmp_path: Path, scan) -> None:
    with pytest.raises(ValueError, match=r"master\.tif.*uint8 or uint16"):
        master(tmp_path, scan, np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match=r"master\.tif.*alpha"):
        master(tmp_path, scan, ramp16(), np.zeros((60, 80), np.uint8))
    with pytest.raises(ValueError, match=r"master\.tif.*ICC.*grayscale"):
        master(tmp_path, scan, ramp16(channels=1), icc=SRGB)
    with pytest.raises(ValueError, match=r"master\.tif.*shape"):
        master(tmp_path, scan, np.zeros((4, 4, 2), np.uint8))
    assert not (tmp_path / "out" / "master.tif").exists()


# --- access copy --------------------------------------------------------------------------------


def test_access_is_8bit_rounded_with_icc_and_provenance(tmp_path: Path, scan) -> None:
    yy, xx = np.mgrid[0:30, 0:40]
    px = np.dstack([xx * 1600 + 7, yy * 2100 + 130, (xx + yy) * 900 + 64]).astype(np.uint16)  # smooth
    wf = access(tmp_path, scan, px, quality=100)

    with Image.open(wf.path) as im:
        assert im.mode == "RGB" and im.size == (40, 30)
        assert im.info["icc_profile"] == SRGB
        got = np.asarray(im)
    expected = np.rint(px / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(access_pixels(px, None, 2048), expected)
    assert np.abs(got.astype(int) - expected).mean() < 2  # JPEG loss only
    assert (wf.role, wf.format, wf.channels, wf.bit_depth, wf.has_icc) == ("access", "JPEG", 3, 8, True)
    assert wf.sha256 == sha256_file(wf.path)

    img = pyexiv2.Image(wf.path)
    exif, xmp = img.read_exif(), img.read_xmp()
    img.close()
    assert exif["Exif.Image.Make"] == "Epson"
    assert exif["Exif.Photo.DateTimeOriginal"] == "1931:05:02 10:11:12"
    assert xmp["Xmp.restorium.documentRole"] == "access"
    assert xmp["Xmp.xmpMM.DocumentID"] == f"xmp.did:{ACCESS_UUID}"
    assert xmp["Xmp.xmpMM.DerivedFrom/stRef:documentID"].startswith("xmp.did:")
    assert xmp["Xmp.xmpMM.History[2]/stEvt:action"] == "resized"
    assert xmp["Xmp.iptcExt.DigitalSourceType"] == DST_WITH_TRAINED_MODEL
    _, record = scan
    assert read_provenance(wf.path).steps == record.steps


def test_access_downscales_the_long_edge_with_area_interpolation(tmp_path: Path, scan) -> None:
    px = np.zeros((300, 500, 3), np.uint8)
    px[:, ::2] = 200  # a 1-px stripe pattern: area averaging gives a flat 100
    wf = access(tmp_path, scan, px, long_edge=250)
    assert (wf.width, wf.height) == (250, 150)
    small = access_pixels(px, None, 250)
    assert small.shape == (150, 250, 3) and np.all(small == 100)


def test_access_composites_alpha_over_white(tmp_path: Path, scan) -> None:
    px = np.zeros((20, 20, 3), np.uint16)  # black
    alpha = np.zeros((20, 20), np.uint16)
    alpha[:, 10:] = 65535  # left half transparent, right half opaque
    out = access_pixels(px, alpha, 2048)
    assert np.all(out[:, :10] == 255) and np.all(out[:, 10:] == 0)
    wf = access(tmp_path, scan, px, alpha)
    assert wf.channels == 3


def test_access_grayscale_stays_grayscale(tmp_path: Path, scan) -> None:
    px = np.random.default_rng(4).integers(0, 65536, (50, 70), dtype=np.uint16)
    wf = access(tmp_path, scan, px, icc=gray_icc(), long_edge=35)
    with Image.open(wf.path) as im:
        assert im.mode == "L" and im.size == (35, 25)
        assert im.info["icc_profile"] == gray_icc()
    assert wf.channels == 1


# --- atomicity ----------------------------------------------------------------------------------


def test_writer_failing_midway_leaves_nothing(tmp_path: Path) -> None:
    final = tmp_path / "master.tif"

    def half_then_fail(temp: Path) -> None:
        temp.write_bytes(b"II*\x00half a master")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(final, half_then_fail)
    assert list(tmp_path.iterdir()) == []


def test_embed_failing_leaves_no_master(tmp_path: Path, scan, monkeypatch) -> None:
    def broken_embed(*args, **kwargs):
        raise RuntimeError("exiv2 exploded")

    monkeypatch.setattr(tasks.files.tag, "embed", broken_embed)
    with pytest.raises(RuntimeError, match="exiv2 exploded"):
        master(tmp_path, scan, ramp16())
    with pytest.raises(RuntimeError, match="exiv2 exploded"):
        access(tmp_path, scan, ramp16())
    assert list((tmp_path / "out").iterdir()) == []


def test_failed_rewrite_keeps_the_previous_file(tmp_path: Path, scan, monkeypatch) -> None:
    first = master(tmp_path, scan, ramp16())
    monkeypatch.setattr(tasks.files.tag, "embed", lambda *a, **k: (_ for _ in ()).throw(OSError("full")))
    with pytest.raises(OSError):
        master(tmp_path, scan, ramp16(channels=1), icc=None)
    assert sha256_file(first.path) == first.sha256
    assert leftovers(tmp_path / "out") == []


def test_atomic_write_temp_name_and_permissions(tmp_path: Path) -> None:
    seen: list[Path] = []

    def fill(temp: Path) -> None:
        seen.append(temp)
        temp.write_text("ok")

    atomic_write(tmp_path / "a.txt", fill)
    assert (tmp_path / "a.txt").read_text() == "ok"
    assert seen[0].parent == tmp_path and seen[0].name.startswith(".a.txt.") and seen[0].name.endswith(".partial")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic_write(tmp_path / "no" / "such" / "dir.txt", fill)
