"""The before/after review sheet: layout, crops from the right places, an atomic PNG."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from models.faces import FaceDetector
from tasks.files.imageio import decode, to_float
from tasks.reports.review import review_sheet, sharpest_window, write_review_sheet
from tasks.steps.restore import resize


def _rgb(shared_data: Path, name: str) -> np.ndarray:
    return to_float(decode(shared_data / name, max_pixels=10**9).pixels)


def _contains(sheet: np.ndarray, patch: np.ndarray) -> bool:
    """Whether `patch` appears in `sheet` pixel for pixel (found by template matching, then
    compared exactly: float32 SQDIFF has rounding noise of tens on 8-bit sums)."""
    scores = cv2.matchTemplate(sheet.astype(np.float32), patch.astype(np.float32), cv2.TM_SQDIFF)
    y, x = np.unravel_index(int(np.argmin(scores)), scores.shape)
    return np.array_equal(sheet[y : y + patch.shape[0], x : x + patch.shape[1]], patch)


def _smooth_with_sharp_patch(shared_data: Path) -> tuple[np.ndarray, tuple[int, int]]:
    """A real photo blurred smooth, with one sharp real patch pasted at a known place."""
    photo = _rgb(shared_data, "sr_gt/McMaster/5.tif")[:240, :320]
    smooth = cv2.GaussianBlur(photo, (0, 0), 6)
    x, y = 200, 40
    smooth[y : y + 40, x : x + 40] = _rgb(shared_data, "sr_gt/CBSD68/102061.png")[100:140, 100:140]
    return smooth, (x, y)


def test_sharpest_region_is_the_sharp_patch(shared_data):
    original, (px, py) = _smooth_with_sharp_patch(shared_data)
    master = resize(original, 640, 480)  # 2x
    x, y, w, h = sharpest_window(master, 64)
    assert (w, h) == (64, 64)
    # the window lies on the patch (80x80 in the master at 400,80)
    assert 2 * px - 8 <= x and x + w <= 2 * px + 80 + 8
    assert 2 * py - 8 <= y and y + h <= 2 * py + 80 + 8


def test_sharpest_region_of_a_large_master_is_found_on_its_block_grid(shared_data, monkeypatch):
    """Above a few MP the search runs on block averages of the Laplacian (no master-sized float
    maps): the window still lands on the sharp patch."""
    import tasks.reports.review as review

    original, (px, py) = _smooth_with_sharp_patch(shared_data)
    master = resize(original, 1280, 960)  # 4x: the patch is 160x160 at (4px, 4py)
    monkeypatch.setattr(review, "_SEARCH_PIXELS", 100_000)  # k = 4 on this 1.2 MP master
    x, y, w, h = sharpest_window(master, 128)
    assert (w, h) == (128, 128)
    assert 4 * px - 16 <= x and x + w <= 4 * px + 160 + 16
    assert 4 * py - 16 <= y and y + h <= 4 * py + 160 + 16


def test_sheet_layout_and_crops_come_from_the_right_place(shared_data):
    original, _ = _smooth_with_sharp_patch(shared_data)
    master = resize(original, 640, 480)
    before_o, before_m = original.copy(), master.copy()
    face = (40, 60, 50, 60)  # any box, in the original's pixels
    sheet = review_sheet(original, master, faces=[face], title="test scan: review", max_width=1200)
    assert np.array_equal(original, before_o) and np.array_equal(master, before_m)
    assert sheet.dtype == np.uint8 and sheet.ndim == 3 and sheet.shape[2] == 3
    assert sheet.shape[1] <= 1200

    master8 = (np.clip(master, 0, 1) * 255 + 0.5).astype(np.uint8)
    window = 256  # min(_MAX_CROP, (1200 - 24) // 4)
    x, y, w, h = sharpest_window(master, window)
    crop2x = cv2.resize(master8[y : y + h, x : x + w], (2 * w, 2 * h), interpolation=cv2.INTER_NEAREST)
    assert _contains(sheet, crop2x[h - 32 : h + 32, w - 32 : w + 32])  # its centre, on the patch
    # the face crop: a window of the master centred on the face (x2 coordinates), doubled
    cx, cy = 2 * (40 + 25), 2 * (60 + 30)
    left, top = max(0, min(cx - window // 2, 640 - window)), max(0, min(cy - window // 2, 480 - window))
    face2x = cv2.resize(master8[top : top + window, left : left + window], (2 * window, 2 * window),
                        interpolation=cv2.INTER_NEAREST)
    assert _contains(sheet, face2x[100:160, 100:160])
    # the original beside it shows the same region, enlarged with nearest-neighbour (x4 here)
    orig8 = (np.clip(original, 0, 1) * 255 + 0.5).astype(np.uint8)
    region = orig8[top // 2 : (top + window) // 2, left // 2 : (left + window) // 2]
    region4x = cv2.resize(region, (2 * window, 2 * window), interpolation=cv2.INTER_NEAREST)
    assert _contains(sheet, region4x[100:160, 100:160])

    no_faces = review_sheet(original, master, title="no faces", max_width=1200)
    assert no_faces.shape[0] < sheet.shape[0] or no_faces.shape[1] < sheet.shape[1]


def test_real_portrait_with_detected_faces_writes_a_png(shared_data, shared_models, tmp_path):
    scan = _rgb(shared_data, "real_lowquality/Lincoln.png")  # 160 px
    gray = np.repeat(cv2.cvtColor(scan, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
    master = resize(gray, 640, 640)
    faces = FaceDetector(shared_models / "face_detection_yunet.onnx").detect(gray)
    assert faces
    sheet = review_sheet(gray, master, faces=[f.box for f in faces], title="Lincoln.png x4", max_width=2400)
    assert sheet.shape[1] <= 2400
    path = tmp_path / "Lincoln.review.png"
    write_review_sheet(path, sheet)
    decoded = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(decoded, sheet)
    assert [p.name for p in tmp_path.iterdir()] == ["Lincoln.review.png"]  # no temporary left


def test_large_master_and_narrow_sheet(shared_data):
    """A 16-bit scan upscaled 8x into a sheet narrower than the master: everything shrinks to fit."""
    pixels = decode(shared_data / "edge_cases/tree_alpha_16bit.png", max_pixels=10**9).pixels
    original = to_float(pixels)
    h, w = original.shape[:2]
    master = resize(original, 8 * w, 8 * h)
    sheet = review_sheet(pixels, master, title="tree x8", max_width=600)
    assert sheet.shape[1] <= 600 and sheet.dtype == np.uint8


def test_titles_keep_the_letters_of_non_ascii_file_names(shared_data):
    # Archive file names carry accents; OpenCV's fonts drew every such letter (and the arrow) as "?",
    # so "Ødegård" and "Ådegørd" came out the same.
    original = _rgb(shared_data, "sr_gt/McMaster/5.tif")[:60, :80]
    master = resize(original, 160, 120)
    sheets = [review_sheet(original, master, title=t) for t in ("Ødegård.tif → m.tif", "Ådegørd.tif → m.tif",
                                                                "Ødegård.tif ← m.tif")]
    titles = [sheet[:34] for sheet in sheets]
    assert not np.array_equal(titles[0], titles[1]) and not np.array_equal(titles[0], titles[2])
    assert all(np.array_equal(sheets[0][34:], sheet[34:]) for sheet in sheets)  # only the title differs
