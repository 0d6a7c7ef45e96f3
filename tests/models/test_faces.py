"""YuNet faces on real photographs, box mapping on large scans, and the soft face masks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from models.faces import Face, FaceDetector
from tasks.files.imageio import decode, to_float
from tasks.steps.faces import blend_by_mask, face_mask
from tasks.steps.restore import resize

YUNET_SHA256 = "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0"  # ../shared/models/MODELS.md

PEOPLE = [  # (image, at least this many faces)
    ("real_lowquality/Lincoln.png", 1), ("real_lowquality/oldphoto2.png", 1), ("real_lowquality/oldphoto6.png", 1),
    ("real_noisy/RNI15/Audrey_Hepburn.jpg", 1), ("real_noisy/RNI15/Singer.png", 1),
    ("old_photos/old/a.png", 1), ("old_photos/old/h.png", 1), ("edge_cases/children-alpha.png", 4),
]
# No people: trees against the sky, a painted wall, a rocky landscape, a sign with text, a building.
NO_PEOPLE = ["real_lowquality/00003.png", "sr_gt/McMaster/1.tif", "sr_gt/McMaster/11.tif",
             "sr_gt/CBSD68/102061.png", "real_lowquality/oldphoto3.png", "real_lowquality/building.png"]


def _rgb(shared_data: Path, name: str) -> np.ndarray:
    return to_float(decode(shared_data / name, max_pixels=10**9).pixels)


@pytest.fixture(scope="module")
def detector(shared_models: Path) -> FaceDetector:
    return FaceDetector(shared_models / "face_detection_yunet.onnx", score_threshold=0.8)


@pytest.mark.parametrize(("name", "at_least"), PEOPLE, ids=[p[0] for p in PEOPLE])
def test_faces_found_where_people_are(shared_data, detector, name, at_least):
    rgb = _rgb(shared_data, name)
    faces = detector.detect(rgb)
    print(name, [(f.box, round(f.score, 3)) for f in faces])
    assert len(faces) >= at_least
    h, w = rgb.shape[:2]
    for f in faces:
        x, y, bw, bh = f.box
        assert 0 <= x and 0 <= y and x + bw <= w and y + bh <= h and f.score >= 0.8
        assert len(f.landmarks) == 5
        nose_x, nose_y = f.landmarks[2]
        assert x <= nose_x <= x + bw and y <= nose_y <= y + bh
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)


@pytest.mark.parametrize("name", NO_PEOPLE)
def test_no_faces_without_people(shared_data, detector, name):
    assert detector.detect(_rgb(shared_data, name)) == []


def test_large_scan_is_detected_small_and_mapped_back(shared_data, shared_models, detector):
    """A scan 4x the size, detected at most 400 px wide: the box is 4x the native one."""
    rgb = _rgb(shared_data, "real_noisy/RNI15/Singer.png")  # 300 x 480
    native = detector.detect(rgb)[0]
    big = resize(rgb, 4 * rgb.shape[1], 4 * rgb.shape[0])
    small_net = FaceDetector(shared_models / "face_detection_yunet.onnx", max_side=400)
    mapped = small_net.detect(big)[0]
    for a, b in zip(mapped.box, native.box):
        assert abs(a - 4 * b) <= 0.1 * 4 * max(native.box[2:])
    assert abs(mapped.landmarks[2][0] - 4 * native.landmarks[2][0]) < 20


def test_input_kinds_agree(shared_data, detector):
    """float RGB, 8-bit, 16-bit and grayscale find the same face."""
    pixels = decode(shared_data / "real_lowquality/Lincoln.png", max_pixels=10**9).pixels
    rgb = to_float(pixels)
    boxes = [detector.detect(x)[0].box for x in (rgb, pixels, (pixels.astype(np.uint16) * 257),
                                                   cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))]
    for box in boxes[1:]:
        assert max(abs(a - b) for a, b in zip(box, boxes[0])) <= 4
    assert detector.agent.weights_sha256 == YUNET_SHA256 and detector.agent.kind == "model"


def test_face_mask_is_soft_and_blend_keeps_faces_gentle():
    faces = [Face(box=(40, 30, 60, 80), score=0.9, landmarks=((0.0, 0.0),) * 5), (150, 100, 30, 40)]
    mask = face_mask((200, 240, 3), faces, feather=0.15)
    assert mask.shape == (200, 240) and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    assert mask[70, 70] == pytest.approx(1.0, abs=1e-3) and mask[115, 165] == pytest.approx(1.0, abs=1e-3)
    assert mask[190, 10] == 0.0 and mask[5, 230] == 0.0
    # feathered: no hard step anywhere (a hard ellipse edge would jump by ~1 between neighbours)
    assert max(np.abs(np.diff(mask, axis=0)).max(), np.abs(np.diff(mask, axis=1)).max()) < 0.2
    assert np.array_equal(face_mask((50, 50), []), np.zeros((50, 50), np.float32))
    # a face cut by the image edge is still fully covered at the edge
    assert face_mask((100, 100), [(-20, 20, 60, 60)], feather=0.15)[50, 0] == pytest.approx(1.0, abs=1e-3)

    strong, gentle = np.full((200, 240, 3), 0.8, np.float32), np.full((200, 240, 3), 0.2, np.float32)
    out = blend_by_mask(strong, gentle, mask)
    assert out[70, 70] == pytest.approx(gentle[70, 70], abs=1e-3)
    assert np.array_equal(out[190, 10], strong[190, 10])
    with pytest.raises(ValueError):
        blend_by_mask(strong, gentle, mask[:10])


def test_missing_weights_say_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="face_detection_yunet"):
        FaceDetector(tmp_path / "face_detection_yunet.onnx")
