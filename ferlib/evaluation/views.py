"""Test-time views: a face, shifted copies of it and their mirror images, and the mean prediction over them.

NumPy only, so that predicting with LiteRT needs neither TensorFlow nor scikit-learn for it.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


def tta_views(images: np.ndarray, flip: bool = False, shift: int = 0) -> list[np.ndarray]:
    """Return the test-time views of a batch: the images, with `shift` the four diagonal moves by `shift`
    pixels, and with `flip` each of those mirrored (left-right).

    For a network that sees only its central crop (C1), rolling by at most the crop's margin is exactly
    a corner crop: the pixels that wrap around land outside the window the network looks at.
    """
    images = np.asarray(images)
    moves = [(0, 0)] + ([(shift, shift), (shift, -shift), (-shift, shift), (-shift, -shift)] if shift else [])
    views = [np.roll(images, move, axis=(1, 2)) if move != (0, 0) else images for move in moves]
    if flip:
        views += [np.ascontiguousarray(v[:, :, ::-1]) for v in views]
    return views


def average_over_views(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, flip: bool = False,
                       shift: int = 0) -> np.ndarray:
    """Return the mean of `predict` over the `tta_views` of the images, all views in one call (a call
    costs more than a view when batches are small)."""
    views = tta_views(images, flip, shift)
    if len(views) == 1:
        return predict(views[0])
    return predict(np.concatenate(views)).reshape(len(views), len(images), -1).mean(axis=0)
