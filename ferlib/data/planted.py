"""Altered copies of external images planted in the embedded internal set (for the leakage audit)."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageEnhance

from ferlib.classes import STUDY

# Like the real Human Face Emotions set, which very probably holds FER-2013's test images, the embedded
# internal set holds copies of PLANTED_FRACTION x n_external external images, each altered in one of
# these ways (all stay 48x48 grayscale), so that the leakage audit (notebook 07) has something to find.
PLANTED_FRACTION: float = 0.05
PLANTED_TRANSFORMS: tuple[str, ...] = ("identical", "brightness +10%", "contrast -10%", "JPEG q60", "mirrored")


def altered_copy(img: np.ndarray, kind: str) -> np.ndarray:
    """Return an external image altered as the internal set's copy of it."""
    pil = Image.fromarray(img)
    if kind == "brightness +10%":
        pil = ImageEnhance.Brightness(pil).enhance(1.1)
    elif kind == "contrast -10%":
        pil = ImageEnhance.Contrast(pil).enhance(0.9)
    elif kind == "JPEG q60":
        buffer = io.BytesIO()
        pil.save(buffer, "JPEG", quality=60)
        pil = Image.open(buffer)
    elif kind == "mirrored":
        pil = pil.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(pil.convert("L"), dtype=np.uint8)


def plant_copies(internal: np.ndarray, in_labels: np.ndarray, external: np.ndarray, ex_labels: np.ndarray,
                 n: int, rng: np.random.Generator) -> list[tuple[int, int, str]]:
    """Replace n internal images in place, each by an altered copy of an external image of the same class;
    return (internal index, external index, alteration) of each.

    Labels index the five classes first (external "neutral" images are never copied); the replaced
    images are the last of their class, so class counts stay the same and each class keeps its first.
    """
    candidates = rng.permutation(np.flatnonzero(ex_labels < len(STUDY)))
    free = {k: list(np.flatnonzero(in_labels == k)[1:]) for k in range(len(STUDY))}  # keep each first
    planted = []
    for e in candidates:
        if len(planted) == n:
            break
        if free[int(ex_labels[e])]:
            i = int(free[int(ex_labels[e])].pop())
            kind = PLANTED_TRANSFORMS[len(planted) % len(PLANTED_TRANSFORMS)]
            internal[i] = altered_copy(external[e], kind)
            planted.append((i, int(e), kind))
    return planted


def read_planted(dataset_root: Path) -> pd.DataFrame:
    """Return the copies planted in an embedded dataset (absolute internal and external paths, alteration)."""
    entries = json.loads((Path(dataset_root) / "planted.json").read_text())
    frame = pd.DataFrame(entries, columns=["internal", "external", "transform"])
    for side in ("internal", "external"):
        frame[side] = [str(Path(dataset_root) / p) for p in frame[side]]
    return frame


def recovered(planted: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Return the planted copies with the kind and distance the audit flagged them with (NaN: missed)."""
    flagged = pairs.rename(columns={"left_path": "internal", "right_path": "external"})
    return planted.merge(flagged[["internal", "external", "kind", "distance"]], on=["internal", "external"], how="left")
