"""Generated "photos": synthetic faces (ferlib.data.synthetic) blended onto a coloured background, with known
boxes and labels, standing in for real photos when none are given (notebook 09's default). Never committed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ferlib.classes import STUDY
from ferlib.data.synthetic import render_face
from ferlib.runtime.files import write_csv

# The face proper inside a rendered tile (measured on the renderer: face oval centred slightly low).
_FACE_IN_TILE = (0.1, 0.12, 0.8)  # x offset, y offset, side, as shares of the tile


@dataclass(frozen=True)
class SyntheticPhoto:
    """One generated photo with the boxes ([x, y, w, h]) and classes of the faces placed in it."""

    rgb: np.ndarray
    boxes: list[list[int]]
    labels: list[str]


def render_photo(rng: np.random.Generator, n_faces: int, width: int = 640, height: int = 480,
                 face_px: tuple[int, int] = (96, 200), classes: list[str] | None = None) -> SyntheticPhoto:
    """Return a photo with up to n_faces non-overlapping faces of random size, skin tint and class (or `classes`)."""
    low = np.clip(rng.uniform(60, 200, size=(3, 4, 1)) + rng.uniform(-40, 40, size=(3, 4, 3)), 0, 255).astype(np.uint8)
    canvas = np.asarray(Image.fromarray(low, mode="RGB").resize((width, height), Image.Resampling.BICUBIC), np.float32)
    canvas += rng.normal(0.0, 4.0, (height, width, 3)).astype(np.float32)  # a smooth, muted background, sensor noise
    tiles: list[tuple[int, int, int]] = []
    boxes, labels = [], []
    for _ in range(50 * max(1, n_faces)):
        if len(tiles) >= n_faces:
            break
        side = int(rng.integers(face_px[0], min(face_px[1], width, height) + 1))
        x, y = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        if any(x < tx + ts and tx < x + side and y < ty + ts and ty < y + side for tx, ty, ts in tiles):
            continue
        label = classes[len(tiles)] if classes else STUDY.names[int(rng.integers(len(STUDY.names)))]
        face = render_face(label, rng, side).astype(np.float32)
        tint = np.array([1.0, 0.86, 0.74], np.float32) * rng.uniform(0.9, 1.1)
        yy, xx = (np.mgrid[0:side, 0:side] + 0.5) / side  # a soft oval mask: the Haar cascade misses half of squares
        mask = np.clip((0.5 - np.hypot((xx - 0.5) / 0.95, (yy - 0.5) / 1.05)) * side / 6, 0, 1)[:, :, None]
        region = canvas[y: y + side, x: x + side]
        canvas[y: y + side, x: x + side] = region * (1 - mask) + face[:, :, None] * tint * mask
        tiles.append((x, y, side))
        fx, fy, fs = _FACE_IN_TILE
        boxes.append([int(round(v)) for v in (x + fx * side, y + fy * side, fs * side, fs * side)])
        labels.append(label)
    return SyntheticPhoto(np.clip(np.rint(canvas), 0, 255).astype(np.uint8), boxes, labels)


def write_synthetic_photos(out_dir: str | Path, n_photos: int = 8, seed: int = 0,
                           max_faces: int = 4) -> pd.DataFrame:
    """Write <out_dir>/photos/photo_NN.jpg (the first without a face) and <out_dir>/faces.csv; return the faces."""
    rng = np.random.default_rng([seed, 9])
    photos = Path(out_dir) / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_photos):
        photo = render_photo(rng, 0 if i == 0 else int(rng.integers(1, max_faces + 1)))
        name = f"photo_{i:02d}.jpg"
        Image.fromarray(photo.rgb, mode="RGB").save(photos / name, quality=92)
        rows += [{"file": name, "x": b[0], "y": b[1], "w": b[2], "h": b[3], "label": lab}
                 for b, lab in zip(photo.boxes, photo.labels)]
    table = pd.DataFrame(rows, columns=["file", "x", "y", "w", "h", "label"])
    write_csv(Path(out_dir) / "faces.csv", table, index=False)
    return table


def write_labelled_photos(out_dir: str | Path, per_class: int = 8, seed: int = 0, width: int = 320,
                          height: int = 240, face_px: tuple[int, int] = (70, 130)) -> Path:
    """Write one-face photos into <out_dir>/<class>/ (a labelled folder) and return out_dir. The face covers a
    fraction of a wider scene, so a resized whole photo loses its detail while a cropped face keeps it."""
    rng = np.random.default_rng([seed, 10])
    out_dir = Path(out_dir)
    for name in STUDY.names:
        folder = out_dir / name.lower()
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            photo = render_photo(rng, 1, width, height, face_px, classes=[name])
            Image.fromarray(photo.rgb, mode="RGB").save(folder / f"{name.lower()}_{i:03d}.png")
    return out_dir
