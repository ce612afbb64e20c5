"""Scoring a saved model on a labelled folder (`python -m ferlib evaluate`), predicting as `predict` does.

The faces are used whole (the folder holds pre-cropped faces, as FER-2013 does), in the test-time views the
model's card names, with the backend `predict` would use (LiteRT for the shipped model, no TensorFlow).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ferlib.classes import class_set
from ferlib.data.arrays import load_images
from ferlib.data.manifest import build_manifest, fingerprint, label_indices, skip_summary, usable
from ferlib.data.sources import detect_source
from ferlib.evaluation.evaluate import Evaluation
from ferlib.photos.predict import EmotionClassifier


def evaluate_folder(model: str | Path | None, data_dir: Path, cache_dir: Path, batch_size: int = 64,
                    backend: str = "auto", precision: str = "card") -> dict[str, Any]:
    """Return accuracy, n, per-class metrics, confusion, model, backend and data provenance for a labelled
    folder over the model's classes (folders of other emotions counted as not used), each face through the
    model's preprocessing, with the test-time averaging its card asks for (as its reported scores were measured).
    `model` None: the default shipped model; a shipped model's name or a path."""
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
