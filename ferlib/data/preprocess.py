"""Face preprocessing, the pixel work behind the names in `ferlib.classes.PREPROCESSINGS`.

A model is trained on faces that went through its preprocessing and is given faces that go through the same one,
whatever their source (a dataset folder, a photo's crop, a video frame): `preprocess_faces` is the one function
both sides call, on uint8 faces already at the model's input size.
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ferlib.classes import PREPROCESSINGS, SMOOTH_SIGMA

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as OpenCV's RGB2GRAY


def grey(faces: np.ndarray) -> np.ndarray:
    """Return the uint8 luma (n, h, w) of uint8 RGB faces (n, h, w, 3); grey faces give their own pixels back."""
    if faces.ndim != 4 or faces.shape[-1] != 3:
        raise ValueError(f"faces must be (n, h, w, 3) uint8, got shape {faces.shape}")
    if np.array_equal(faces[..., 0], faces[..., 1]) and np.array_equal(faces[..., 0], faces[..., 2]):
        return np.ascontiguousarray(faces[..., 0])
    return np.clip(faces.astype(np.float32) @ _LUMA + 0.5, 0, 255).astype(np.uint8)


def equalize_grey(image: np.ndarray) -> np.ndarray:
    """Return a uint8 grey image (h, w) histogram-equalized on its own histogram (OpenCV's equalizeHist, the
    transformation behind the equalized copy of FER-2013)."""
    return cv2.equalizeHist(np.ascontiguousarray(image, dtype=np.uint8))


def _grey_faces(faces: np.ndarray, work: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Return uint8 RGB faces whose grey values went through `work` (one grey face in, one out), each on its own."""
    out = np.stack([work(face) for face in grey(faces)])
    return np.repeat(out[..., None], 3, axis=-1)


def equalize(faces: np.ndarray) -> np.ndarray:
    """Return uint8 RGB faces whose grey values are histogram-equalized (each face on its own histogram)."""
    return _grey_faces(faces, equalize_grey)


def equalize_smooth(faces: np.ndarray) -> np.ndarray:
    """Return uint8 RGB faces equalized (`equalize`), then smoothed by a Gaussian of SMOOTH_SIGMA px: JPEG noise and
    the sharpness that differs between copies of one face (a rescaled copy is softer) mostly go, the face stays."""
    return _grey_faces(faces, lambda face: cv2.GaussianBlur(equalize_grey(face), (0, 0), SMOOTH_SIGMA))


FLAT = 0.1  # a grey histogram whose CDF stays this close to the uniform one is flat, as equalization leaves it


def equalized_share(faces: np.ndarray) -> float:
    """Return the share of uint8 faces (n, h, w, 3) whose grey histogram is flat (the CDF within FLAT of the
    uniform one): about 0.7 for FER-2013's histogram-equalized public copy, about 0.02 for its original pixels."""
    if not len(faces):
        return float("nan")
    uniform = np.arange(1, 257) / 256
    flat = [np.abs(np.cumsum(np.bincount(g.ravel(), minlength=256)) / g.size - uniform).max() < FLAT
            for g in grey(faces)]
    return float(np.mean(flat))


def describe_pixels(faces: np.ndarray) -> str:
    """Return which copy of FER-2013 a set of faces looks like: "histogram-equalized copy" when most of their
    histograms are flat (`equalized_share`), else "original pixels"."""
    return "histogram-equalized copy" if equalized_share(faces) > 0.5 else "original pixels"


_FUNCTIONS = {"none": lambda faces: faces, "equalize": equalize,  # the keys of PREPROCESSINGS (a test checks)
              "equalize-smooth": equalize_smooth}


def preprocess_faces(faces: np.ndarray, name: str) -> np.ndarray:
    """Return uint8 (n, h, w, 3) faces after preprocessing `name` (one of PREPROCESSINGS); raise KeyError else."""
    if name not in _FUNCTIONS:
        raise KeyError(f"unknown preprocessing {name!r}; known: {', '.join(PREPROCESSINGS)}")
    faces = np.asarray(faces)
    if faces.dtype != np.uint8:
        raise ValueError(f"faces must be uint8, got {faces.dtype}")
    return _FUNCTIONS[name](faces) if len(faces) else faces
