"""Scoring a saved model on a labelled folder (`python -m ferlib evaluate`) as `predict` would run it (faces used
whole, the card's preprocessing and test-time views), and the shipped models on a run's external set.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ferlib.audit.findings import scores_by_copy
from ferlib.classes import FER2013, class_set
from ferlib.config import RunSettings
from ferlib.data.arrays import load_images
from ferlib.data.manifest import build_manifest, fingerprint, label_indices, skip_summary, usable
from ferlib.data.preprocess import describe_pixels, equalized_share
from ferlib.data.run_data import prepare_external, prepare_internal
from ferlib.data.sources import detect_source
from ferlib.evaluation.evaluate import Evaluation
from ferlib.models.shipped import SHIPPED_MODELS, partner_entries
from ferlib.photos.predict import EmotionClassifier


def evaluate_folder(model: str | Path | None, data_dir: Path, cache_dir: Path, batch_size: int = 64,
                    backend: str = "auto", precision: str = "card") -> dict[str, Any]:
    """Return accuracy, n, per-class metrics, confusion, model, backend and data provenance on a labelled folder over
    the model's classes (other emotions' folders counted as not used). `model` None: the default shipped model."""
    classifier = EmotionClassifier.load(model, backend, precision, batch_size=batch_size)
    classes = class_set(classifier.classes)
    source = detect_source(data_dir, "external", classes=classes)
    manifest = build_manifest(source, cache_dir)
    rows = usable(manifest)
    probs = classifier.raw_probabilities(load_images(rows, classifier.image_size, cache_dir))
    result = Evaluation(label_indices(rows, classes), probs.argmax(axis=1), probs, classes.names).to_dict()
    flip, shift = classifier.tta
    card = classifier.card
    result["model"] = {"path": str(classifier.path), "name": card.get("name"), "weights": card.get("weights"),
                       "classes": classifier.classes, "preprocessing": classifier.preprocessing,
                       "experiment": (card.get("experiment") or {}).get("key"), "input_size": classifier.image_size,
                       "test_time": {"flip": flip, "shift": shift}, "backend": classifier.backend,
                       "precision": classifier.precision, "backend_note": classifier.backend_note,
                       "provenance": card.get("provenance")}
    result["data"] = {"source": source.describe(), "fingerprint": fingerprint(manifest),
                      "not_used": skip_summary(manifest).to_dict(orient="records")}
    return result


def neutral_answers(classifier: EmotionClassifier, faces: np.ndarray) -> dict[str, Any]:
    """Return how a model answers calm faces: the share it calls Neutral, the share it gives another emotion with
    a confidence at or above its abstention threshold (a confident wrong answer), and the share it abstains on."""
    if not len(faces):
        return {"n": 0}
    probs = classifier.probabilities(faces)
    labels = np.asarray(classifier.classes)[probs.argmax(axis=1)]
    sure = probs.max(axis=1) >= classifier.abstain_below
    return {"n": int(len(faces)), "answered_neutral": float(np.mean(labels == "Neutral")),
            "confident_other_emotion": float(np.mean((labels != "Neutral") & sure)),
            "abstained": float(np.mean(~sure)),
            "most_common_other": pd.Series(labels[labels != "Neutral"]).value_counts().head(3).to_dict()}


def shipped_scores(settings: RunSettings, data_dir: str | Path | None, external_dir: str | Path | None,
                   models: tuple[str, ...] = tuple(SHIPPED_MODELS), progress: bool = False) -> dict[str, Any]:
    """Return, per shipped model, `evaluate`'s scores on the run's external set, abstentions, scores split by copies in
    the internal data, answers on Neutral faces; and which copy of FER-2013 the external pixels look like."""
    out: dict[str, Any] = {"models": {}}
    calm = prepare_external(settings, external_dir, progress, classes=FER2013)
    calm_rows = calm.test[calm.test["label"] == "Neutral"]
    for name in models:
        classifier = EmotionClassifier.load(name)
        classes = class_set(classifier.classes)
        internal = prepare_internal(settings, data_dir, progress, classes=classes)
        external = prepare_external(settings, external_dir, progress, classes=classes)
        images, labels = external.arrays(classifier.image_size)
        probs = classifier.probabilities(images)
        evaluation = Evaluation(labels, probs.argmax(axis=1), probs, classes.names)
        out["models"][name] = {
            "card": {key: classifier.card.get(key) for key in ("name", "class_set", "classes")},
            "pooled_with": " and ".join(e["model"] for e in partner_entries(pool))
            if (pool := classifier.card.get("pooled_with")) else None,
            "preprocessing": classifier.preprocessing, "views": classifier.card.get("tta", {}).get("mode"),
            "backend": f"{classifier.backend} {classifier.precision}",
            "external": evaluation.to_dict(),
            "abstained": float(np.mean(probs.max(axis=1) < classifier.abstain_below)),
            "by_copy": scores_by_copy(evaluation, internal, external, settings),
            "neutral_faces": neutral_answers(classifier, load_images(calm_rows, classifier.image_size,
                                                                       settings.cache_dir))}
        out |= {"external_data": external.describe(), "pixels": describe_pixels(images),
                "equalized_share": equalized_share(images)}
    return out
