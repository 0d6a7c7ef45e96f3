"""Faces (opt-in): find them with YuNet, and make soft masks so restoration can go gentler there.

YuNet runs through OpenCV's `cv2.FaceDetectorYN` (no torch). The weights have a model card
(`face_detection_yunet`) and are resolved like the others; the detector takes the resolved path
and keeps the file's sha256 for provenance (`agent`).

A scan larger than `max_side` is shrunk (area) for detection and the boxes mapped back: faces
on a scan are large, and the detector's cost grows with the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np

from tasks.files.atomic import sha256_file
from tasks.records.types import AgentInfo

DEFAULT_MAX_SIDE = 1600


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x, y, w, h in the image's pixels, clipped to it
    score: float
    # right eye, left eye, nose tip, right and left mouth corners (x, y), as YuNet gives them
    landmarks: tuple[tuple[float, float], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"box": list(self.box), "score": round(self.score, 4),
                "landmarks": [[round(x, 1), round(y, 1)] for x, y in self.landmarks]}


def _to_bgr8(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    if rgb.dtype != np.uint8:
        if np.issubdtype(rgb.dtype, np.integer):
            rgb = rgb.astype(np.float32) / np.iinfo(rgb.dtype).max
        rgb = (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(rgb[:, :, :3]), cv2.COLOR_RGB2BGR)


class FaceDetector:
    """YuNet via cv2.FaceDetectorYN. Build once, detect many times (not thread-safe: one per worker)."""

    def __init__(self, weights_path: str | Path, score_threshold: float = 0.8, *,
                 nms_threshold: float = 0.3, max_side: int = DEFAULT_MAX_SIDE,
                 name: str = "face_detection_yunet") -> None:
        self.name = name  # the model card's name, as provenance records it
        path = Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(f"face detector weights not found: {path} (YuNet face_detection_yunet.onnx)")
        self.weights_path = path
        self.weights_sha256 = sha256_file(path)
        self.score_threshold = float(score_threshold)
        self.max_side = int(max_side)
        self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), self.score_threshold, nms_threshold)

    @property
    def agent(self) -> AgentInfo:
        return AgentInfo(kind="model", name=self.name, architecture="YuNet",
                         weights_sha256=self.weights_sha256)

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Faces in an RGB (or grayscale) image, float in [0, 1] or 8/16-bit; best score first."""
        bgr = _to_bgr8(rgb)
        h, w = bgr.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        if scale < 1.0:
            bgr = cv2.resize(bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        self._net.setInputSize((bgr.shape[1], bgr.shape[0]))
        # None when no face is found, which OpenCV's stubs leave out of the return type
        rows = cast("np.ndarray | None", self._net.detect(bgr)[1])
        faces = []
        for row in [] if rows is None else rows:
            x, y, bw, bh = (float(v) / scale for v in row[:4])
            x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
            x1, y1 = min(w, int(round(x + bw))), min(h, int(round(y + bh)))
            if x1 <= x0 or y1 <= y0:
                continue
            marks = tuple((float(row[4 + 2 * i]) / scale, float(row[5 + 2 * i]) / scale) for i in range(5))
            faces.append(Face(box=(x0, y0, x1 - x0, y1 - y0), score=float(row[14]), landmarks=marks))
        return sorted(faces, key=lambda f: -f.score)
