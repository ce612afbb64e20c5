"""The face detectors by name (`make_detector`): BlazeFace, the default (blazeface.py), and OpenCV's Haar cascades
(`--detector haar`, here); cropping and converting faces as the training images were, and detection recall.
"""
from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import pandas as pd

from ferlib.data.decode import DecodeError, read_image, resize_rgb
from ferlib.photos.blazeface import BlazeFaceDetector
from ferlib.photos.boxes import Box, match_boxes, suppress_duplicates

FRONTAL_CASCADE = "haarcascade_frontalface_default.xml"
CONFIRM_CASCADE = "haarcascade_frontalface_alt2.xml"
# FER-2013 faces span about 1.04 times the Haar box (median over 552 training images, centred), so a
# 5% margin on each side frames a detected face the way the training images were framed.
CROP_MARGIN = 0.05
DETECTORS = ("blazeface", "haar")  # the first is the default


@dataclass(frozen=True)
class HaarDetector:
    """OpenCV's Haar cascades (frontal default, confirmed by alt2): 41 of 43 dlib-annotated faces as set here."""

    name: ClassVar[str] = "haar"
    scale_factor: float = 1.1
    min_neighbors: int = 3  # frontal cascade: neighbouring windows needed for a candidate
    confirm_neighbors: int = 1  # second cascade on the candidate's surroundings; 0 switches it off
    min_face: int = 24  # pixels, at detection scale (the cascades' own window)
    max_side: int = 1024  # larger photos are detected on a copy downscaled to this
    min_side: int = 256  # smaller images are detected on a copy upscaled to this
    pad: float = 0.2  # when nothing is found: retry with this replicated border (share of the longer side)
    overlap: float = 0.6  # a box mostly inside a better-scored one is a duplicate
    # Candidates whose last cascade stage scores below this are dropped. On the dlib photos every matched
    # face scores above 0.3 and the two unmatched detections -0.43 and 1.27: 0 drops one, and no face.
    min_score: float = 0.0

    def detect(self, rgb: np.ndarray) -> list[Box]:
        """Return every face box in an RGB photo, in photo pixels, left to right (empty when none)."""
        height, width = rgb.shape[:2]
        if height < 2 or width < 2:
            return []
        gray = to_gray(rgb)
        longest = max(height, width)  # detection pixels per photo pixel: <1 for huge, >1 for tiny images
        scale = self.max_side / longest if longest > self.max_side else max(1.0, self.min_side / longest)
        if scale != 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        gray = cv2.equalizeHist(gray)
        found = _candidates(gray, 0, self)
        if not found and self.pad:
            # A face filling the frame leaves the cascade no room: retry on a copy with replicated borders.
            # Only as a retry, because the border shifts the sliding-window grid and changes what a scene yields.
            found = _candidates(gray, int(round(self.pad * max(gray.shape))), self)
        boxes = []
        for x, y, w, h, weight in found:
            x0, y0 = max(0.0, x / scale), max(0.0, y / scale)
            x1, y1 = min(float(width), (x + w) / scale), min(float(height), (y + h) / scale)
            if x1 - x0 >= 1 and y1 - y0 >= 1:
                boxes.append(Box(int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0)), weight))
        return sorted(suppress_duplicates(boxes, self.overlap), key=lambda b: (b.x, b.y))


def make_detector(name: str = DETECTORS[0]) -> Any:
    """Return a face detector by name: "blazeface" (default; 43 of 43 annotated faces on the shared dlib photos) or
    "haar" (41 of 43). Each has `name` and `detect(rgb) -> list[Box]` (photo pixels, left to right)."""
    if name == "haar":
        require_haar_cascades()
        return HaarDetector()
    if name == "blazeface":
        try:
            return BlazeFaceDetector()
        except ImportError as exc:
            raise RuntimeError(f"the BlazeFace detector needs LiteRT ({exc}): pip install ai-edge-litert, or use "
                               "the Haar cascades (--detector haar, EmotionClassifier(detector='haar'))") from None
    raise ValueError(f"unknown face detector {name!r}: choose one of {', '.join(DETECTORS)}")


def require_haar_cascades() -> None:
    """Raise RuntimeError, saying what to do, when OpenCV has no Haar cascades (OpenCV 5 dropped them)."""
    folder = Path(getattr(getattr(cv2, "data", None), "haarcascades", "") or ".")
    if not hasattr(cv2, "CascadeClassifier") or not (folder / FRONTAL_CASCADE).is_file():
        raise RuntimeError(f"the Haar detector needs OpenCV 4's cascades, which OpenCV {cv2.__version__} does not "
                           "have (OpenCV 5 dropped them): use the default detector (--detector blazeface), or "
                           "install OpenCV 4 beside this project: pip install 'opencv-python-headless<5'")


@functools.lru_cache(maxsize=4)
def load_cascade(name: str) -> cv2.CascadeClassifier:
    """Return one of OpenCV's bundled Haar cascades, loaded once (RuntimeError under OpenCV 5, which has none)."""
    require_haar_cascades()
    path = Path(cv2.data.haarcascades) / name
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise RuntimeError(f"OpenCV could not load its Haar cascade {path}; reinstall opencv-python-headless<5")
    return cascade


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """Return the uint8 luma (ITU-R 601, as PIL's "L") of an HxWx3 RGB image."""
    return cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2GRAY)


def _candidates(gray: np.ndarray, pad: int, config: HaarDetector) -> list[tuple[int, int, int, int, float]]:
    """Return confirmed (x, y, w, h, score) windows on an equalised gray image bordered by `pad` pixels."""
    gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else gray
    found, _, weights = load_cascade(FRONTAL_CASCADE).detectMultiScale3(
        gray, scaleFactor=config.scale_factor, minNeighbors=config.min_neighbors,
        minSize=(config.min_face, config.min_face), outputRejectLevels=True)
    confirm = load_cascade(CONFIRM_CASCADE)
    out = []
    for (x, y, w, h), weight in zip(found, np.ravel(weights)):
        if weight < config.min_score:
            continue
        if config.confirm_neighbors:
            m = w // 4
            around = gray[max(0, y - m): y + h + m, max(0, x - m): x + w + m]
            if len(confirm.detectMultiScale(around, scaleFactor=1.05, minNeighbors=config.confirm_neighbors,
                                            minSize=(int(w * 0.6), int(h * 0.6)))) == 0:
                continue
        out.append((int(x) - pad, int(y) - pad, int(w), int(h), float(weight)))
    return out


def eye_angle(box: Box) -> float:
    """Return the angle (degrees) from the face's right eye to its left (0 when unknown): rotating by it levels them."""
    if box.eyes is None:
        return 0.0
    rx, ry, lx, ly = box.eyes
    return float(np.degrees(np.arctan2(ly - ry, lx - rx)))


def crop_face(rgb: np.ndarray, box: Box, margin: float = CROP_MARGIN, level: bool = False) -> np.ndarray:
    """Return the square RGB crop around a box enlarged by `margin` per side (edges replicated outside); with
    `level` and known eyes, the photo is rotated about the face's centre so that the eyes are level first."""
    angle = eye_angle(box) if level else 0.0
    side = max(box.w, box.h) * (1 + 2 * margin)
    s = max(1, int(round(side)))
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    if abs(angle) >= 1.0:
        matrix = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
        matrix[:, 2] += s / 2 - np.array([cx, cy])  # the centre to the crop's
        return cv2.warpAffine(np.ascontiguousarray(rgb), matrix, (s, s), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    height, width = rgb.shape[:2]
    left, top = max(0, -x0), max(0, -y0)
    right, bottom = max(0, x0 + s - width), max(0, y0 + s - height)
    crop = rgb[max(0, y0): min(height, y0 + s), max(0, x0): min(width, x0 + s)]
    return cv2.copyMakeBorder(np.ascontiguousarray(crop), top, bottom, left, right, cv2.BORDER_REPLICATE)


def training_conversion(rgb: np.ndarray, size: int) -> np.ndarray:
    """Return a face the way the training images were: grayscale replicated to RGB, size x size, uint8."""
    return resize_rgb(np.repeat(to_gray(rgb)[:, :, None], 3, axis=2), size)


# ---- detection recall against dlib imglab annotations -------------------------------------------

def read_dlib_annotations(annotations_dir: Path, prefix: str = "") -> dict[str, list[Box]]:
    """Return {photo file name: face boxes} from dlib imglab XML files (boxes marked ignore are left out)."""
    out: dict[str, list[Box]] = {}
    files = sorted(Path(annotations_dir).glob("*.xml"))
    if not files:
        raise FileNotFoundError(f"no dlib annotation XML files in {annotations_dir}")
    for xml in files:
        for image in ET.parse(xml).getroot().iter("image"):
            boxes = [Box(*(int(b.get(k)) for k in ("left", "top", "width", "height")))
                     for b in image.iter("box") if b.get("ignore", "0") != "1"]
            out.setdefault(prefix + Path(image.get("file", "")).name, []).extend(boxes)
    return out


def detection_recall(photos_dir: Path, annotations: dict[str, list[Box]], iou_threshold: float = 0.3,
                     detector: Any = None) -> dict[str, Any]:
    """Return how many annotated faces a detector (default: the Haar cascades) finds, one-to-one at IoU >= threshold:
    totals (faces, found, recall, detections, unmatched detections) and one row per photo."""
    detector = detector or HaarDetector()
    rows = []
    for name, truth in sorted(annotations.items()):
        path = Path(photos_dir) / name
        try:
            rgb, _ = read_image(path)
        except DecodeError as exc:
            raise FileNotFoundError(f"annotated photo {path} cannot be read: {exc.reason}") from None
        found = detector.detect(rgb)
        matches = match_boxes(truth, found, iou_threshold)
        rows.append({"photo": name, "faces": len(truth), "detections": len(found), "matched": len(matches),
                     "unmatched_detections": len(found) - len(matches),
                     "mean_iou": float(np.mean([m[2] for m in matches])) if matches else float("nan")})
    per_photo = pd.DataFrame(rows)
    n_faces, n_found = int(per_photo["faces"].sum()), int(per_photo["matched"].sum())
    return {"iou_threshold": iou_threshold, "faces": n_faces, "found": n_found,
            "recall": n_found / n_faces if n_faces else float("nan"), "detections": int(per_photo["detections"].sum()),
            "unmatched_detections": int(per_photo["unmatched_detections"].sum()),
            "per_photo": per_photo.to_dict(orient="records")}
