"""BlazeFace, MediaPipe's neural face detector (full-range sparse model), run with LiteRT.

The model file ships in ``ferlib/assets/`` (Apache License 2.0; see ``assets/NOTICE.md``). It takes a
192x192 RGB image scaled to [-1, 1] and gives, for each of 2,304 anchors (a 48x48 grid), a face score (a logit)
and 16 numbers: the box centre, width and height, and six keypoints (KEYPOINTS), in input pixels relative to the
anchor. Overlapping detections are merged by weighted non-maximum suppression, as MediaPipe does.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ferlib.photos.boxes import Box, suppress_duplicates
from ferlib.runtime.quiet import captured_fd2

MODEL_FILE = Path(__file__).resolve().parents[1] / "assets" / "face_detection_full_range_sparse.tflite"
INPUT_SIZE = 192
GRID = 48  # one anchor per cell of a 48x48 grid (stride 4)
KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")  # the person's right/left
MIN_SCORE = 0.5
NMS_IOU = 0.3
RAW_SCORE_CLIP = 80.0  # logits beyond this overflow float32 in the sigmoid
# Photos with a longer side of this many pixels or more are also searched in tiles. On the 20 shared photos
# 768 and 1,536 find the same 81 faces (the 24-face group photo, 1,986 px, needs its tiles), 1,536 in 10 ms
# per photo at the median against 27 ms.
TILE_FROM = 1536
TILE_SHARE = 0.6  # each of the four tiles covers this share of the photo's width and height
RETRY_PAD = 0.5  # when nothing is found: retry with a black border of this share of the longer side, per side


@dataclass(frozen=True)
class Detection:
    """One face: its box (photo pixels, with the detector's score) and six keypoints (x, y in photo pixels)."""

    box: Box
    keypoints: np.ndarray  # (6, 2), in KEYPOINTS order


def anchor_centres(grid: int = GRID) -> np.ndarray:
    """Return the (grid*grid, 2) anchor centres (x, y) in [0, 1], row by row, each at the middle of its cell."""
    centres = (np.arange(grid, dtype=np.float32) + 0.5) / grid
    ys, xs = np.meshgrid(centres, centres, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def letterbox(rgb: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Return (input (size, size, 3) float32 in [-1, 1], scale, (pad_x, pad_y)): the photo fitted inside the square,
    centred, the rest black. A point p of the input maps to the photo as (p - pad) / scale."""
    height, width = rgb.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = np.asarray(Image.fromarray(rgb).resize((new_w, new_h), Image.Resampling.BILINEAR), dtype=np.float32)
    canvas = np.full((size, size, 3), -1.0, dtype=np.float32)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    canvas[pad_y: pad_y + new_h, pad_x: pad_x + new_w] = resized / 127.5 - 1.0
    return canvas, scale, (float(pad_x), float(pad_y))


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, size: int = INPUT_SIZE,
           min_score: float = MIN_SCORE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (boxes (n, 4) as x0, y0, x1, y1, keypoints (n, 6, 2), scores (n,)) in input pixels for the anchors
    scoring above `min_score` and with a positive size. raw_boxes: (anchors, 16); raw_scores: (anchors,) logits."""
    raw_boxes = np.asarray(raw_boxes, dtype=np.float32).reshape(len(anchors), -1)
    logits = np.clip(np.asarray(raw_scores, dtype=np.float32).reshape(-1), -RAW_SCORE_CLIP, RAW_SCORE_CLIP)
    scores = 1.0 / (1.0 + np.exp(-logits))
    centre_px = anchors * size
    cx, cy = centre_px[:, 0] + raw_boxes[:, 0], centre_px[:, 1] + raw_boxes[:, 1]
    w, h = raw_boxes[:, 2], raw_boxes[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    keypoints = raw_boxes[:, 4:16].reshape(-1, 6, 2) + centre_px[:, None, :]
    keep = (scores > min_score) & (w > 0) & (h > 0)
    return boxes[keep], keypoints[keep], scores[keep]


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 iou: float = NMS_IOU) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Merge overlapping detections, as MediaPipe does: the best one averaged with every one overlapping it by more
    than `iou` (weighted by score), keeping the best score; return (box, keypoints, score) per face, best first."""
    order = np.argsort(-scores, kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    remaining = np.ones(len(scores), dtype=bool)
    merged = []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        overlap = np.clip(np.minimum(boxes[i, 2:], boxes[:, 2:]) - np.maximum(boxes[i, :2], boxes[:, :2]), 0, None)
        inter = overlap[:, 0] * overlap[:, 1]
        group = remaining & (inter / np.maximum(areas[i] + areas - inter, 1e-9) > iou)
        group[i] = True
        weights = scores[group][:, None]
        box = (boxes[group] * weights).sum(axis=0) / weights.sum()
        points = (keypoints[group] * weights[:, :, None]).sum(axis=0) / weights.sum()
        merged.append((box, points, float(scores[i])))
        remaining &= ~group
    return merged


def _clipped(x0: float, y0: float, x1: float, y1: float, score: float, points: np.ndarray, width: int,
             height: int) -> Detection | None:
    """Return a detection (eyes: its first two keypoints) clipped to a width x height photo; None if nothing is left."""
    x0, x1 = np.clip([x0, x1], 0, width)
    y0, y1 = np.clip([y0, y1], 0, height)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    eyes = tuple(float(v) for v in points[:2].ravel())
    return Detection(Box(int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0)), score, eyes),
                     points)


def _shifted(d: Detection, dx: int, dy: int, width: int, height: int) -> Detection | None:
    """Return a detection moved by (dx, dy) and clipped to a width x height photo (None when nothing is left)."""
    b = d.box
    return _clipped(b.x + dx, b.y + dy, b.x + b.w + dx, b.y + b.h + dy, b.score,
                    d.keypoints + np.array([dx, dy], dtype=np.float32), width, height)


class BlazeFaceDetector:
    """Find faces with BlazeFace (full range, sparse): boxes (`detect`), or with their keypoints."""

    name = "blazeface"

    def __init__(self, pad: float = RETRY_PAD):
        if not MODEL_FILE.is_file():
            raise FileNotFoundError(f"BlazeFace model file not found: {MODEL_FILE} (reinstall ferlib, or pass "
                                    "--detector haar)")
        with captured_fd2():  # LiteRT prints "Created TensorFlow Lite XNNPACK delegate" on stderr
            from ai_edge_litert.interpreter import Interpreter

            self.interpreter = Interpreter(model_path=str(MODEL_FILE), num_threads=1)
            self.interpreter.allocate_tensors()
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        outputs = sorted(self.interpreter.get_output_details(), key=lambda d: -int(d["shape"][-1]))
        self.boxes_index, self.scores_index = outputs[0]["index"], outputs[1]["index"]
        self.anchors = anchor_centres()
        self.pad = pad

    def detect_with_keypoints(self, rgb: np.ndarray) -> list[Detection]:
        """Return every face with its keypoints, in photo pixels, left to right. A photo from TILE_FROM px is also
        searched in four overlapping tiles (a face cut by a tile's inner edge is left to the pass seeing it whole)."""
        height, width = rgb.shape[:2]
        if height < 2 or width < 2:
            return []
        found = self._detect_view(rgb)
        if not found and self.pad:
            # A face filling the frame is larger than any the full-range model expects: retry on a copy with a
            # black border (on ood-dev/muxspace's close crops this finds 158 of 163 faces, against 37 without)
            p = int(round(self.pad * max(height, width)))
            padded = cv2.copyMakeBorder(np.ascontiguousarray(rgb), p, p, p, p, cv2.BORDER_CONSTANT, value=(0, 0, 0))
            found = [_shifted(d, -p, -p, width, height) for d in self._detect_view(padded)]
            found = [d for d in found if d is not None]
        if max(height, width) >= TILE_FROM:
            th, tw = int(height * TILE_SHARE), int(width * TILE_SHARE)
            for y0 in (0, height - th):
                for x0 in (0, width - tw):
                    for d in self._detect_view(rgb[y0: y0 + th, x0: x0 + tw]):
                        b = d.box
                        cut = ((x0 > 0 and b.x <= 1) or (y0 > 0 and b.y <= 1) or
                               (x0 + tw < width and b.x + b.w >= tw - 1) or (y0 + th < height and b.y + b.h >= th - 1))
                        if not cut and (moved := _shifted(d, x0, y0, width, height)) is not None:
                            found.append(moved)
        kept = suppress_duplicates(found, overlap=0.6, iou=NMS_IOU, box_of=lambda d: d.box)
        return sorted(kept, key=lambda d: (d.box.x, d.box.y))

    def _detect_view(self, rgb: np.ndarray) -> list[Detection]:
        """Return the faces the model finds in one view of the photo (the whole of it, or a tile)."""
        height, width = rgb.shape[:2]
        tensor, scale, (pad_x, pad_y) = letterbox(rgb)
        self.interpreter.set_tensor(self.input_index, tensor[None])
        self.interpreter.invoke()
        raw_boxes = self.interpreter.get_tensor(self.boxes_index)[0]
        raw_scores = self.interpreter.get_tensor(self.scores_index)[0]
        boxes, keypoints, scores = decode(raw_boxes, raw_scores, self.anchors, INPUT_SIZE, MIN_SCORE)
        pad = np.array([pad_x, pad_y], dtype=np.float32)
        found = [_clipped(*(box - np.tile(pad, 2)) / scale, score, (points - pad) / scale, width, height)
                 for box, points, score in weighted_nms(boxes, keypoints, scores, NMS_IOU)]
        return [d for d in found if d is not None]

    def detect(self, rgb: np.ndarray) -> list[Box]:
        """Return every face box in an RGB photo, in photo pixels, left to right (empty when none)."""
        return [d.box for d in self.detect_with_keypoints(rgb)]
