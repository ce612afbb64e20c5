"""The face detectors, by name: BlazeFace (the default, run with LiteRT) and OpenCV's Haar cascades."""
from __future__ import annotations

from typing import Protocol

import numpy as np

from ferlib.photos.blazeface import BlazeFaceDetector
from ferlib.photos.boxes import Box
from ferlib.photos.faces import HaarDetector, require_haar_cascades

DETECTORS = ("blazeface", "haar")  # the first is the default


class FaceDetector(Protocol):
    """What predicting needs from a detector: its name and the face boxes of an RGB photo, left to right."""

    name: str

    def detect(self, rgb: np.ndarray) -> list[Box]: ...


def make_detector(name: str = DETECTORS[0]) -> FaceDetector:
    """Return a face detector by name: "blazeface" (default; MediaPipe's neural detector, run with LiteRT,
    43 of 43 annotated faces on the shared dlib photos) or "haar" (OpenCV's cascades, 41 of 43). Each has
    `name` and `detect(rgb) -> list[Box]`."""
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
