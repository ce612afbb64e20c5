"""Test-time views: a face, shifted copies and mirror images, and the mean prediction over them (NumPy only, for
LiteRT)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


def tta_views(images: np.ndarray, flip: bool = False, shift: int = 0) -> list[np.ndarray]:
    """Return the test-time views of a batch: the images, with `shift` the four diagonal moves by `shift` pixels
    (for a network that sees its central crop, exactly the corner crops), and with `flip` each of those mirrored."""
    images = np.asarray(images)
    moves = [(0, 0)] + ([(shift, shift), (shift, -shift), (-shift, shift), (-shift, -shift)] if shift else [])
    views = [np.roll(images, move, axis=(1, 2)) if move != (0, 0) else images for move in moves]
    if flip:
        views += [np.ascontiguousarray(v[:, :, ::-1]) for v in views]
    return views


def probabilities_per_view(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, flip: bool = False,
                           shift: int = 0) -> np.ndarray:
    """Return `predict` on each of the `tta_views` of the images, (views, n, classes), all views in one call."""
    views = tta_views(images, flip, shift)
    return predict(np.concatenate(views) if len(views) > 1 else views[0]).reshape(len(views), len(images), -1)


def average_over_views(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, flip: bool = False,
                       shift: int = 0) -> np.ndarray:
    """Return the mean of `predict` over the `tta_views` of the images, all views in one call."""
    return probabilities_per_view(predict, images, flip, shift).mean(axis=0)
