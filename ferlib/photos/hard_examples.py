"""Hard examples (the study's future work): the faces a model gets wrong or abstains on, as training data.

Each face is written cropped and in grayscale like the training images, in the Human Face Emotions layout
(`Data/<Class>/`, with the dataset's own spelling `Suprise`), ready to be added to the internal data.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ferlib.data.decode import read_image
from ferlib.data.embedded import INTERNAL_FOLDERS
from ferlib.photos.boxes import Box
from ferlib.photos.faces import crop_face, to_gray
from ferlib.photos.ood import FolderPredictions, folder_predictions
from ferlib.photos.predict import EmotionClassifier
from ferlib.runtime.files import save_image

REASONS = ("misclassified", "abstained")


def collect_hard_examples(classifier: EmotionClassifier, labelled_dir: str | Path, out_dir: str | Path,
                          include: tuple[str, ...] = REASONS, progress: bool = True,
                          predictions: FolderPredictions | None = None) -> pd.DataFrame:
    """Write a labelled folder's faces that are misclassified or abstained on (`include`) to <out_dir>/Data/<Class>/;
    return the rows written (path, label, faces found, box, predicted, confidence, reason, file)."""
    if unknown := set(include) - set(REASONS):
        raise ValueError(f"unknown reason(s) {sorted(unknown)}; choose from {REASONS}")
    preds = predictions or folder_predictions(classifier, labelled_dir, progress)
    probs = preds.probs("face crop + temperature", classifier.temperature)
    table = preds.frame[["path", "label", "faces_found", "box"]].copy()
    table["predicted"] = [classifier.classes[i] for i in probs.argmax(axis=1)]
    table["confidence"] = probs.max(axis=1)
    wrong, unsure = probs.argmax(axis=1) != preds.labels, probs.max(axis=1) < classifier.abstain_below
    table["reason"] = np.where(wrong & unsure, "misclassified+abstained",
                               np.where(wrong, "misclassified", np.where(unsure, "abstained", "")))
    chosen = table[(wrong & ("misclassified" in include)) | (unsure & ("abstained" in include))]
    data_dir = Path(out_dir) / "Data"
    for name in classifier.classes:
        (data_dir / INTERNAL_FOLDERS.get(name, name)).mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    for row in chosen.itertuples():
        rgb, _ = read_image(row.path)  # the label is the image's: its largest face is the labelled one, if any
        face = crop_face(rgb, Box(*row.box), classifier.margin) if row.box is not None else rgb
        target = data_dir / INTERNAL_FOLDERS.get(row.label, row.label) / f"{Path(row.path).stem}.png"
        k = 1
        while str(target) in files:  # same name from two sub-folders; a rerun overwrites its own files
            k += 1
            target = target.with_name(f"{Path(row.path).stem}_{k}.png")
        save_image(Image.fromarray(to_gray(face), mode="L"), target)
        files.append(str(target))
    return chosen.assign(file=files).reset_index(drop=True)
