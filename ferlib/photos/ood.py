"""A model on labelled out-of-distribution faces: plain resize vs face crop, with and without temperature.

`ood_report(classifier, folder)` gives accuracy and calibration per setting and how accuracy rises as the
classifier abstains on more faces, for any saved model and labelled folder (class sub-folders).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ferlib.classes import class_set
from ferlib.data.decode import DecodeError, read_image, resize_rgb
from ferlib.data.manifest import fingerprint, label_indices
from ferlib.data.sources import DataError, detect_source, list_files
from ferlib.evaluation.calibration import apply_temperature, coverage_curve, reliability_bins, summarize
from ferlib.photos.boxes import Box
from ferlib.photos.predict import EmotionClassifier
from ferlib.runtime.progress import bar as progress_bar

SETTINGS = ("plain resize", "plain resize + temperature", "face crop", "face crop + temperature")


@dataclass
class FolderPredictions:
    """Per image of a labelled folder: label, the face used, and raw probabilities for both inputs."""

    frame: pd.DataFrame  # path, label, faces found, box of the face used (None: whole image)
    labels: np.ndarray  # class indices
    plain: np.ndarray  # raw probabilities, whole image resized
    crop: np.ndarray  # raw probabilities, largest detected face cropped (whole image when none)
    not_used: pd.DataFrame  # files left out, with status and reason
    source: str
    fingerprint: str

    def probs(self, setting: str, temperature: float) -> np.ndarray:
        """Return the probabilities of one of SETTINGS."""
        raw = self.plain if setting.startswith("plain") else self.crop
        return apply_temperature(raw, temperature) if setting.endswith("temperature") else raw


def folder_predictions(classifier: EmotionClassifier, labelled_dir: str | Path,
                       progress: bool = True) -> FolderPredictions:
    """Return raw probabilities of every usable image of a labelled folder, resized whole and face-cropped."""
    source = detect_source(labelled_dir, "external", classes=class_set(classifier.classes))
    if source.layout == "fer-csv":
        raise DataError("face detection needs image files; a FER-2013 CSV holds 48x48 crops (use `evaluate`)")
    rows, plain, crop, records = [], [], [], []
    for item in progress_bar(list_files(source).to_dict("records"), desc="faces", disable=not progress):
        record = {key: item[key] for key in ("path", "label", "status", "reason")} | {"pixel_hash": None}
        if item["status"] == "pending":
            try:
                rgb, info = read_image(item["path"])
            except DecodeError as exc:
                record |= {"status": "skipped", "reason": exc.reason}
            else:
                record |= {"status": "ok", "pixel_hash": info.pixel_hash}
                boxes = classifier.find_faces(rgb)
                face: Box | None = max(boxes, key=lambda b: b.area) if boxes else None
                plain.append(resize_rgb(rgb, classifier.image_size))
                crop.append(classifier.inputs(rgb, [face], detect=face is not None)[0])
                rows.append({"path": item["path"], "label": item["label"], "faces_found": len(boxes),
                             "box": face.as_list() if face else None})
        records.append(record)
    manifest = pd.DataFrame(records)
    if not rows:
        raise DataError(f"no usable images of {source.classes.description} in {labelled_dir}")
    frame = pd.DataFrame(rows)
    not_used = manifest[manifest["status"] != "ok"].groupby(["status", "reason"]).size().rename("files").reset_index()
    return FolderPredictions(frame, label_indices(frame, source.classes), classifier.raw_probabilities(np.stack(plain)),
                             classifier.raw_probabilities(np.stack(crop)), not_used, source.describe(),
                             fingerprint(manifest))


def ood_report(classifier: EmotionClassifier, labelled_dir: str | Path, n_bins: int = 10,
               progress: bool = True, predictions: FolderPredictions | None = None) -> dict[str, Any]:
    """Return accuracy and calibration per setting, the abstention curve and the default threshold's effect."""
    preds = predictions or folder_predictions(classifier, labelled_dir, progress)
    t = classifier.temperature
    final = preds.probs("face crop + temperature", t)
    kept = final.max(axis=1) >= classifier.abstain_below
    correct = final.argmax(axis=1) == preds.labels
    counts = pd.Series(preds.labels).map(dict(enumerate(classifier.classes))).value_counts()
    return {
        "settings": {s: summarize(preds.probs(s, t), preds.labels, n_bins) for s in SETTINGS},
        "abstention": {
            "threshold": classifier.abstain_below, "on": "face crop + temperature",
            "coverage": float(kept.mean()), "accuracy_kept": float(correct[kept].mean()) if kept.any() else None,
            "accuracy_abstained": float(correct[~kept].mean()) if (~kept).any() else None,
            "curve": coverage_curve(final, preds.labels).to_dict(orient="records"),
        },
        "reliability": {s: reliability_bins(preds.probs(s, t), preds.labels, n_bins).to_dict(orient="records")
                        for s in SETTINGS},
        "detection": {"images": int(len(preds.frame)), "face_found": int((preds.frame["faces_found"] > 0).sum()),
                      "several_faces": int((preds.frame["faces_found"] > 1).sum()),
                      "fallback": "the whole image, converted like a face, when no face is found"},
        "data": {"source": preds.source, "fingerprint": preds.fingerprint, "n": int(len(preds.labels)),
                 "per_class": {c: int(counts.get(c, 0)) for c in classifier.classes},
                 "not_used": preds.not_used.to_dict(orient="records")},
        "model": {"path": str(classifier.path), "name": classifier.card.get("name"),
                  "weights": classifier.card.get("weights"), "input_size": classifier.image_size,
                  "temperature": t, "calibrated": classifier.calibrated,
                  "calibration": classifier.card.get("calibration")},
    }


def ood_table(report: dict[str, Any]) -> pd.DataFrame:
    """Return one row per setting (accuracy, ECE, NLL, mean confidence) plus the abstention row."""
    table = pd.DataFrame(report["settings"]).T[["n", "accuracy", "ece", "nll", "mean_confidence"]]
    ab = report["abstention"]
    table.loc[f"face crop + temperature, abstain below {ab['threshold']:.2f}"] = {
        "n": round(ab["coverage"] * report["data"]["n"]), "accuracy": ab["accuracy_kept"], "ece": np.nan,
        "nll": np.nan, "mean_confidence": np.nan}
    table["n"] = table["n"].astype(int)
    return table
