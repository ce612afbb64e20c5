"""How to crop a detected face: the margin around the box and whether to level the eyes first, measured.

On a labelled folder of face photos (e.g. ``ood-dev/muxspace``: larger crops with some background), each
image is decoded and its largest face detected once; the face is then cropped in every setting of the grid
(margin per side x eyes levelled or not), converted like the training images and classified with the
model card's test-time views. Each setting gets its accuracy with a 95% interval and McNemar's test against
the classifier's current setting. Used to choose `EmotionClassifier`'s defaults (on a development split,
never on a test set).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ferlib.classes import class_set
from ferlib.data.decode import DecodeError, read_image
from ferlib.data.manifest import label_indices
from ferlib.data.sources import detect_source, list_files
from ferlib.evaluation.stats import confusion_intervals, mcnemar
from ferlib.photos.faces import face_inputs, largest, training_conversion
from ferlib.runtime.progress import bar as progress_bar

MARGINS = (0.0, 0.05, 0.1, 0.2, 0.3)


def crop_grid(classifier: Any, labelled_dir: str | Path, margins: tuple[float, ...] = MARGINS,
              levels: tuple[bool, ...] = (False, True), progress: bool = True) -> pd.DataFrame:
    """Return one row per (margin, level): accuracy [95% CI], and McNemar against the classifier's own setting
    (`classifier.margin`, `classifier.level`, added to the grid when missing). Images without a detected face
    are classified whole in every setting, so they count alike everywhere."""
    settings = sorted({(m, lv) for m in margins for lv in levels} | {(classifier.margin, classifier.level)})
    classes = class_set(classifier.classes)
    listing = list_files(detect_source(labelled_dir, "external", classes=classes))
    listing = listing[listing["status"] == "pending"]
    size = classifier.image_size
    inputs: dict[tuple[float, bool], list[np.ndarray]] = {s: [] for s in settings}
    labels, faces_found, skipped = [], 0, 0
    for item in progress_bar(listing.to_dict("records"), desc="crops", disable=not progress):
        try:
            rgb, _ = read_image(item["path"])
        except DecodeError:
            skipped += 1
            continue
        face = largest(classifier.find_faces(rgb))
        faces_found += face is not None
        labels.append(item["label"])
        for margin, level in settings:
            inputs[(margin, level)].append(face_inputs(rgb, [face], size, margin, level)[0] if face
                                           else training_conversion(rgb, size))
    y = label_indices(pd.DataFrame({"label": labels}), classes)
    preds = {s: classifier.probabilities(np.stack(x)).argmax(axis=1) for s, x in inputs.items()}
    reference = preds[(classifier.margin, classifier.level)]
    rows = []
    for (margin, level), pred in preds.items():
        confusion = np.zeros((len(classes),) * 2, dtype=np.int64)
        np.add.at(confusion, (y, pred), 1)
        ci = confusion_intervals(confusion, classes.names)["accuracy"]
        test = mcnemar(y, pred, reference)
        rows.append({"margin": margin, "eyes levelled": level, "accuracy": float((pred == y).mean()),
                     "ci_low": ci[0], "ci_high": ci[1], "right only here": test.only_a,
                     "right only in current": test.only_b, "mcnemar_p": test.p_value,
                     "current": (margin, level) == (classifier.margin, classifier.level)})
    frame = pd.DataFrame(rows).sort_values(["margin", "eyes levelled"]).reset_index(drop=True)
    frame.attrs.update(images=len(y), faces_found=faces_found, unreadable=skipped, data=str(labelled_dir))
    return frame
