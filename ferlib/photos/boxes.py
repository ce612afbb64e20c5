"""Face boxes, shared by both detectors, tracking and recall: overlap, duplicate suppression, one-to-one matching."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Box:
    """A face box in photo pixels: top-left corner, width, height, and the detector's score."""

    x: int
    y: int
    w: int
    h: int
    score: float = 0.0
    eyes: tuple[float, float, float, float] | None = None  # right eye x, y, left eye x, y (the person's), if known

    def as_list(self) -> list[int]:
        """Return [x, y, w, h]."""
        return [int(self.x), int(self.y), int(self.w), int(self.h)]

    @property
    def area(self) -> int:
        """Return the box area in pixels."""
        return int(self.w) * int(self.h)

    def intersection(self, other: Box) -> int:
        """Return the overlapping area with another box in pixels."""
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        return ix * iy

    def iou(self, other: Box) -> float:
        """Return intersection over union with another box."""
        inter = self.intersection(other)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0



def suppress_duplicates(items: list[Any], overlap: float = 0.6, iou: float = 0.3,
                        box_of: Callable[[Any], Box] | None = None) -> list[Any]:
    """Return the items (boxes, or detections whose box `box_of` gives) without those lying mostly inside a better
    one: IoU above `iou`, or more than `overlap` of the smaller box covered. Better: higher score, then larger."""
    box_of = box_of or (lambda item: item)
    kept: list[Any] = []
    for item in sorted(items, key=lambda it: (-box_of(it).score, -box_of(it).area)):
        box = box_of(item)
        if all(box.iou(box_of(k)) <= iou and
               box.intersection(box_of(k)) <= overlap * max(1, min(box.area, box_of(k).area)) for k in kept):
            kept.append(item)
    return kept


def match_boxes(truth: list[Box], found: list[Box], iou_threshold: float = 0.3) -> list[tuple[int, int, float]]:
    """Return one-to-one (truth index, found index, IoU) matches at or above the threshold, best IoU first."""
    pairs = sorted(((t.iou(f), i, j) for i, t in enumerate(truth) for j, f in enumerate(found)), reverse=True)
    used_t, used_f, matches = set(), set(), []
    for iou, i, j in pairs:
        if iou < iou_threshold:
            break
        if i not in used_t and j not in used_f:
            used_t.add(i)
            used_f.add(j)
            matches.append((i, j, iou))
    return matches
