"""The embedded dataset: generated faces written as a small stand-in for the Human Face Emotions dataset (internal
set) and for FER-2013 (external set), with altered copies of some external images planted in the internal set
for the leakage audit to find.

When no real data is available, the project builds it in seconds. Nothing here is ever committed: the images are
drawn from a seed on demand and cached under a folder named after the generator version and the parameters.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageEnhance

from ferlib.classes import STUDY
from ferlib.data.synthetic import EXPRESSIONS, class_counts, draw_faces, generate_faces

INTERNAL_FOLDERS: dict[str, str] = {"Angry": "Angry", "Fear": "Fear", "Happy": "Happy", "Sad": "Sad",
                                    "Surprise": "Suprise"}
EXTERNAL_FOLDERS: dict[str, str] = {**{c: c.lower() for c in STUDY.names}, "neutral": "neutral"}
NEUTRAL_FRACTION: float = 0.08  # extra neutral images in the external set, as a share of n_external
GENERATOR_VERSION: int = 2  # 2: transformed copies of external images planted in the internal set

# Like the real Human Face Emotions set, which very probably holds FER-2013's test images, the embedded
# internal set holds copies of PLANTED_FRACTION x n_external external images, each altered in one of
# these ways (all stay 48x48 grayscale), so that the leakage audit (notebook 07) has something to find.
PLANTED_FRACTION: float = 0.05
PLANTED_TRANSFORMS: tuple[str, ...] = ("identical", "brightness +10%", "contrast -10%", "JPEG q60", "mirrored")


def plant_copies(internal: np.ndarray, in_labels: np.ndarray, external: np.ndarray, ex_labels: np.ndarray,
                 n: int, rng: np.random.Generator) -> list[tuple[int, int, str]]:
    """Replace n internal images in place, each by an altered copy (PLANTED_TRANSFORMS in turn) of an external
    image of the same class; return (internal index, external index, alteration) of each.

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
            copy = Image.fromarray(external[e])
            if kind == "brightness +10%":
                copy = ImageEnhance.Brightness(copy).enhance(1.1)
            elif kind == "contrast -10%":
                copy = ImageEnhance.Contrast(copy).enhance(0.9)
            elif kind == "JPEG q60":
                buffer = io.BytesIO()
                copy.save(buffer, "JPEG", quality=60)
                copy = Image.open(buffer)
            elif kind == "mirrored":
                copy = copy.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            internal[i] = np.asarray(copy.convert("L"), dtype=np.uint8)
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


@dataclass(frozen=True)
class EmbeddedDataset:
    """Where the generated internal (Human Face Emotions layout) and external (FER-2013) sets lie."""

    root: Path
    internal_dir: Path
    external_dir: Path
    n_internal: int
    n_external: int
    seed: int
    n_external_neutral: int = 0
    n_planted: int = 0  # internal images that are transformed copies of external ones (planted.json)


def _write_pngs(images: np.ndarray, labels: np.ndarray, names: tuple[str, ...],
                folders: dict[str, str], base: Path, root: Path) -> list[str]:
    """Write each image as <base>/<folder of its label>/<folder>_<k>.png, k counting within a folder;
    return the paths relative to root, in image order."""
    seen = dict.fromkeys(names, 0)
    for name in names:
        (base / folders[name]).mkdir(parents=True, exist_ok=True)
    written = []
    for img, label in zip(images, labels):
        folder = folders[names[label]]
        path = base / folder / f"{folder.lower()}_{seen[names[label]]:05d}.png"
        Image.fromarray(img).save(path)
        written.append(str(path.relative_to(root)))
        seen[names[label]] += 1
    return written


def write_embedded_dataset(cache_dir: Path, n_internal: int, n_external: int,
                           seed: int = 0) -> EmbeddedDataset:
    """Return the embedded dataset under cache_dir, generating it first unless a complete copy exists.

    The external set holds n_external five-class images plus about 8% extra "neutral" ones; the internal
    set holds PLANTED_FRACTION x n_external altered copies of external images, listed in planted.json.
    """
    cache_dir = Path(cache_dir)
    root = cache_dir / f"embedded-v{GENERATOR_VERSION}-n{n_internal}-e{n_external}-s{seed}"
    n_neutral = max(1, int(round(NEUTRAL_FRACTION * n_external))) if n_external > 0 else 0
    n_planted = int(PLANTED_FRACTION * n_external)
    params = {"generator_version": GENERATOR_VERSION, "n_internal": n_internal,
              "n_external": n_external, "n_external_neutral": n_neutral, "n_planted": n_planted, "seed": seed}
    result = EmbeddedDataset(root, root / "internal", root / "external", n_internal, n_external, seed, n_neutral,
                             n_planted)
    if _is_complete(root, params):
        return result

    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=cache_dir))
    try:
        images, labels = generate_faces(n_internal, seed)  # == generate_faces(n, seed) but the planted copies
        ext_rng = np.random.default_rng([seed, 1])  # an independent stream: other identities
        ext_counts = {**class_counts(n_external), "neutral": n_neutral}
        ext_images, ext_labels = draw_faces(ext_counts, EXPRESSIONS, ext_rng, 48)
        planted = plant_copies(images, labels, ext_images, ext_labels, n_planted, np.random.default_rng([seed, 2]))
        internal = _write_pngs(images, labels, STUDY.names, INTERNAL_FOLDERS, tmp / "internal" / "Data", tmp)
        external = _write_pngs(ext_images, ext_labels, EXPRESSIONS, EXTERNAL_FOLDERS, tmp / "external" / "test", tmp)
        (tmp / "planted.json").write_text(json.dumps(
            [{"internal": internal[i], "external": external[e], "transform": kind} for i, e, kind in planted],
            indent=1))
        (tmp / ".complete").write_text(json.dumps(params, sort_keys=True))
        tmp.chmod(0o755)  # mkdtemp makes it private
        if _is_complete(root, params):  # another process finished first
            return result
        if root.exists():  # a leftover without a valid marker: never trust it
            shutil.rmtree(root)
        try:
            os.replace(tmp, root)
        except OSError:
            if not _is_complete(root, params):  # a concurrent writer won the race: use theirs
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def _is_complete(root: Path, params: dict[str, int]) -> bool:
    """Return True when root holds a completion marker written for exactly these parameters."""
    try:
        return json.loads((root / ".complete").read_text()) == params
    except (OSError, ValueError):
        return False
