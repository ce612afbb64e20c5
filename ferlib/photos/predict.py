"""Predicting emotions on photos: one record per face, calibrated, with abstention.

    clf = EmotionClassifier.load()                  # the shipped seven-class model; "fer2013-5" or a path
    for face in clf.predict("group.jpg"):
        print(face.box, face.label, face.confidence, face.abstained)

Probabilities are temperature-scaled with the card's calibration; a face whose calibrated confidence falls below
the card's threshold is marked `abstained` (its label is still given, but should not be trusted).
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ferlib.data.decode import DecodeError, ImageInput, image_to_rgb, read_photo
from ferlib.data.preprocess import preprocess_faces
from ferlib.evaluation.calibration import apply_temperature
from ferlib.evaluation.views import average_over_views
from ferlib.models.inference import KerasNetwork, load_for_inference, load_keras
from ferlib.models.shipped import WithCard, resolve_model, tta_settings
from ferlib.photos.boxes import Box
from ferlib.photos.faces import CROP_MARGIN, DETECTORS, crop_face, make_detector, training_conversion
from ferlib.runtime.progress import bar as progress_bar

VIEWS = ("card", "flip", "single")  # test-time views per face: the card's (e.g. 5 crops x mirror), 2, or 1
FACES_PER_CALL = 512  # faces whose views are made at once (a folder of faces is scored in parts of this size)


@dataclass(frozen=True)
class FacePrediction:
    """One face of a photo: where it is, what the model says, and whether it abstains."""

    box: tuple[int, int, int, int]  # x, y, w, h in the photo's pixels
    label: str
    confidence: float  # calibrated probability of `label`
    scores: tuple[tuple[str, float], ...]  # every class with its calibrated probability, highest first
    abstained: bool  # confidence below the model's abstention threshold
    detected: bool = True  # False: the whole image was classified as one face

    def flat(self, classes: list[str]) -> dict[str, Any]:
        """Return the record as a table row: x, y, w, h, label, confidence, abstained, a column per class."""
        scores = dict(self.scores)
        return {**dict(zip("xywh", self.box)), "label": self.label, "confidence": round(self.confidence, 6),
                "abstained": self.abstained, **{c: round(scores[c], 6) for c in classes}}

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON record: box [x, y, w, h], label, confidence, scores (class: probability), abstained."""
        return {"box": list(self.box), "label": self.label, "confidence": round(self.confidence, 6),
                "scores": {c: round(p, 6) for c, p in self.scores}, "abstained": self.abstained}


@dataclass
class PhotoResult:
    """What one input file gave: its faces, or the reason it could not be used."""

    path: str
    error: str | None = None
    faces: list[FacePrediction] = field(default_factory=list)
    size: tuple[int, int] | None = None  # width, height

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON entry: path, error (None or a message), faces."""
        return {"path": self.path, "error": self.error, "faces": [f.to_dict() for f in self.faces]}


class EmotionClassifier(WithCard):
    """A saved emotion model with its card, ready to predict on photos. `network`: a LiteRT or Keras network of
    `ferlib.models.inference`, a Keras model, or any callable from (n, size, size, 3) 0-255 images to probabilities."""

    def __init__(self, network: Any, card: dict[str, Any], path: Path | None = None, *,
                 abstain_below: float | None = None,
                 detector: str | Any = DETECTORS[0], margin: float = CROP_MARGIN, level: bool = False,
                 views: str = "card", batch_size: int = 64, backend_note: str | None = None,
                 precision: str = "float32"):
        calibration = card.get("calibration") or {}
        if hasattr(network, "predict_on_batch"):  # a Keras model
            network = KerasNetwork(network, batch_size)
        self.network = network
        self.backend = getattr(network, "name", type(network).__name__)  # "litert" or "keras"
        self.precision = precision  # of the LiteRT file that runs (float32 or int8); Keras runs float32
        self.backend_note = backend_note  # why the Keras backend runs although a LiteRT file was there
        self._keras: KerasNetwork | None = None  # the Keras model, loaded when asked for beside LiteRT
        self.card = card
        self.path = path
        self.temperature = float(calibration.get("temperature", 1.0))
        self.abstain_below = float(calibration.get("abstain_below", 0.0) if abstain_below is None else abstain_below)
        self._detector = detector  # a name (built on first use) or anything with detect(rgb) -> list[Box]
        self.margin = margin
        self.level = level  # rotate each face so that its eyes are level before cropping (needs eye keypoints)
        if views not in VIEWS:
            raise ValueError(f"views must be one of {', '.join(VIEWS)}, got {views!r}")
        self.views = views  # "card": the test-time views the card names (as scored); fewer are faster
        self.batch_size = batch_size

    @classmethod
    def load(cls, path: str | Path | None = None, backend: str = "auto", precision: str = "card",
             **options: Any) -> EmotionClassifier:
        """Return the classifier for a model saved with a card (`path`), a shipped model by name ("fer2013-7",
        "fer2013-5"), or the default shipped model (None); FileNotFoundError when missing.

        backend: "auto" (LiteRT when the model has a checked ``.tflite`` beside it and LiteRT runs here, else Keras),
        "litert" or "keras". precision: the LiteRT file's, "card", "float32" or "int8" (`ferlib.models.inference`)."""
        loaded = load_for_inference(resolve_model(path), backend, precision,
                                    batch_size=options.get("batch_size", 64))
        return cls(loaded.network, loaded.card, loaded.path, backend_note=loaded.note, precision=loaded.precision,
                   **options)

    @property
    def model(self) -> Any:
        """Return the Keras model (loaded on first use when predicting with LiteRT: Grad-CAM needs it)."""
        if isinstance(self.network, KerasNetwork):
            return self.network.model
        if self.path is None:
            raise ValueError("this classifier was built from a network without a path: no Keras model to load")
        self._keras = self._keras or load_keras(self.path, self.batch_size)[0]
        return self._keras.model

    @property
    def calibrated(self) -> bool:
        """Return True when the card holds a fitted calibration."""
        return bool(self.card.get("calibration"))

    @property
    def tta(self) -> tuple[bool, int]:
        """Return (flip, shift): the test-time averaging the card asks for (as in the reported scores), or the
        fewer views asked for with `views` ("flip": the face and its mirror image; "single": the face alone)."""
        return {"flip": (True, 0), "single": (False, 0)}.get(self.views) or tta_settings(self.card)

    @property
    def detector(self) -> Any:
        """Return the face detector, built on first use (a classifier that never detects needs none)."""
        if isinstance(self._detector, str):
            self._detector = make_detector(self._detector)
        return self._detector

    def warm_up(self) -> None:
        """Run the network once before timing (Keras traces every padded batch size, LiteRT allocates its tensors)."""
        if hasattr(self.network, "warm_up"):  # Keras, and a pooled network
            self.network.warm_up(self.image_size)
        else:
            self.raw_probabilities(np.zeros((1, self.image_size, self.image_size, 3), np.uint8))

    def raw_probabilities(self, faces: np.ndarray) -> np.ndarray:
        """Return the model's uncalibrated probabilities for uint8 faces (n, size, size, 3), through the card's
        preprocessing, averaged over its test-time views (`ferlib.evaluation.views`)."""
        if len(faces) == 0:
            return np.zeros((0, len(self.classes)))
        faces = preprocess_faces(faces, self.preprocessing)
        return np.concatenate([average_over_views(self.network, faces[i: i + FACES_PER_CALL], *self.tta)
                               for i in range(0, len(faces), FACES_PER_CALL)])

    def probabilities(self, faces: np.ndarray) -> np.ndarray:
        """Return calibrated probabilities (n, classes) for uint8 inputs (n, size, size, 3)."""
        raw = self.raw_probabilities(faces)
        return apply_temperature(raw, self.temperature) if len(raw) and self.temperature != 1.0 else raw

    def find_faces(self, rgb: np.ndarray, detect: bool = True) -> list[Box]:
        """Return the face boxes to classify: detected ones, or the whole image when detect is False."""
        return self.detector.detect(rgb) if detect else [Box(0, 0, int(rgb.shape[1]), int(rgb.shape[0]))]

    def inputs(self, rgb: np.ndarray, boxes: list[Box], detect: bool = True) -> np.ndarray:
        """Return model inputs for the boxes: cropped with the margin, or the whole image resized (detect=False)."""
        if not detect:  # as the training images were read: the whole image, resized
            return training_conversion(rgb, self.image_size)[None]
        out = np.empty((len(boxes), self.image_size, self.image_size, 3), dtype=np.uint8)
        for i, box in enumerate(boxes):  # eyes levelled first with `level`
            out[i] = training_conversion(crop_face(rgb, box, self.margin, self.level), self.image_size)
        return out

    def records(self, probs: np.ndarray, boxes: list[Box], detected: bool = True) -> list[FacePrediction]:
        """Return one FacePrediction per row of calibrated probabilities."""
        out = []
        for p, box in zip(probs, boxes):
            scores = tuple((self.classes[i], float(p[i])) for i in np.argsort(-p, kind="stable"))
            out.append(FacePrediction(tuple(box.as_list()), *scores[0], scores,
                                      bool(scores[0][1] < self.abstain_below), detected))
        return out

    def predict(self, image: ImageInput, detect: bool = True) -> list[FacePrediction]:
        """Return one record per face found (empty list: no face); detect=False treats the image as one face.
        A path is read as `predict_file` reads it (a large JPEG at a reduced scale, boxes in its own pixels)."""
        rgb, scale, _ = self.decode_for_faces(image, detect)
        return self._predict_rgb(rgb, scale, detect)

    def predict_file(self, path: str | Path, detect: bool = True) -> PhotoResult:
        """Return the PhotoResult of one file; a file that cannot be used gives its reason in `error`."""
        try:
            rgb, scale, size = self.decode_for_faces(Path(path), detect)
        except DecodeError as exc:
            return PhotoResult(str(path), error=exc.reason)
        return PhotoResult(str(path), None, self._predict_rgb(rgb, scale, detect), size)

    @staticmethod
    def decode_for_faces(image: ImageInput, detect: bool) -> tuple[np.ndarray, float, tuple[int, int]]:
        """Return (RGB array, full-size pixels per array pixel, full size): a large JPEG file to detect on is decoded at
        a reduced scale (sides still >= 2,048 px), anything else at full size."""
        if detect and isinstance(image, (str, Path)):
            return read_photo(Path(image))
        rgb = image_to_rgb(image)
        return rgb, 1.0, (rgb.shape[1], rgb.shape[0])

    def _predict_rgb(self, rgb: np.ndarray, scale: float, detect: bool) -> list[FacePrediction]:
        boxes = self.find_faces(rgb, detect)
        records = self.records(self.probabilities(self.inputs(rgb, boxes, detect)), boxes, detected=detect)
        if scale != 1.0:  # boxes in the full-size photo's pixels
            records = [dataclasses.replace(r, box=tuple(int(round(v * scale)) for v in r.box)) for r in records]
        return records

    def predict_paths(self, paths: Iterable[str | Path], detect: bool = True,
                      progress: bool = False) -> list[PhotoResult]:
        """Return one PhotoResult per file (folders expanded to the files in them, sorted)."""
        return [self.predict_file(p, detect)
                for p in progress_bar(expand_inputs(paths), desc="photos", disable=not progress)]


def _folder_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """Return (image files, other files) under a folder, sorted, hidden ones left out; images by their extension."""
    image_suffixes = {ext.lower() for ext in Image.registered_extensions()}
    files = sorted(f for f in folder.rglob("*")
                   if f.is_file() and not any(part.startswith(".") for part in f.relative_to(folder).parts))
    return ([f for f in files if f.suffix.lower() in image_suffixes],
            [f for f in files if f.suffix.lower() not in image_suffixes])


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Return the files to predict on: each file as given, a folder replaced by the image files in it and in its
    sub-folders, sorted (`describe_inputs` says what a folder gave and left out)."""
    # a missing file stays: it gets "file not found" as its error
    return [f for p in map(Path, paths) for f in (_folder_files(p)[0] if p.is_dir() else [p])]


def describe_inputs(paths: Iterable[str | Path]) -> list[str]:
    """Return one line per folder given: how many files it gave and from where (sub-folders counted), or why
    it gave none. Files given by name are not described (each gets its own row)."""
    lines = []
    for p in filter(Path.is_dir, map(Path, paths)):
        files, others = _folder_files(p)
        left_out = ""
        if others:
            names = ", ".join(f.relative_to(p).as_posix() for f in others[:3]) + (", ..." if len(others) > 3 else "")
            s = "s" if len(others) != 1 else ""
            left_out = f"; {len(others)} other file{s} left out (not images by name: {names})"
        if not files:
            hidden = sum(1 for f in p.rglob("*") if f.is_file()) - len(others)
            why = left_out[2:] if others else (f"only {hidden} hidden" if hidden else "the folder is empty")
            lines.append(f"{p}: no image files ({why})")
            continue
        by_folder = Counter(f.parent.relative_to(p).as_posix() for f in files)
        parts = [f"{n} in {'the folder itself' if k == '.' else k + '/'}" for k, n in sorted(by_folder.items())]
        more = f", and {len(parts) - 8} more folders" if len(parts) > 8 else ""
        where = "" if list(by_folder) == ["."] else f": {', '.join(parts[:8])}{more}"
        lines.append(f"{p}: {len(files)} image file{'s' if len(files) != 1 else ''}{where}{left_out}")
    return lines
