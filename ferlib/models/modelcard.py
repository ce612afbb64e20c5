"""Saving and loading Keras models with their JSON model card (reading a card alone: `ferlib.models.shipped`).

``<name>.keras`` holds the network (preprocessing included: it takes raw 0-255 RGB images);
``<name>.json`` beside it holds the card: classes, input size, face preprocessing, weights, data, metrics.
"""
from __future__ import annotations

import json
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from ferlib.classes import PREPROCESSINGS, STUDY, class_set
from ferlib.evaluation.calibration import fit_calibration
from ferlib.evaluation.results import write_result
from ferlib.experiments import RECIPE_DEFAULTS
from ferlib.models.builders import build_described
from ferlib.models.shipped import CARD_VERSION, WithCard, assumed_card, card_path, read_card
from ferlib.runtime import files


@dataclass
class LoadedModel(WithCard):
    """A Keras model with its card (a minimal card is inferred when the JSON file is missing)."""

    model: keras.Model
    card: dict[str, Any]
    path: Path


def save_with_card(model: keras.Model, path: Path, *, experiment: dict[str, Any], weights: str,
                   data: dict[str, Any], metrics: dict[str, Any], provenance: dict[str, Any]) -> Path:
    """Save the model as .keras with its JSON card beside it; return the model path. The card's classes and face
    preprocessing are the experiment's (its settings leave them out at their defaults: the study's five, none)."""
    path = Path(path)
    size = int(model.input_shape[1])
    classes = class_set(experiment.get("classes", RECIPE_DEFAULTS["classes"]))
    preprocessing = experiment.get("preprocessing", RECIPE_DEFAULTS["preprocessing"])
    if int(model.output_shape[-1]) != len(classes):
        raise ValueError(f"the model outputs {model.output_shape[-1]} scores, {classes.name} has {len(classes)}")
    files.save_model(model, path)
    card = {
        "card_version": CARD_VERSION,
        "name": path.stem,
        "classes": list(classes.names),
        "class_set": classes.name,
        "input": {"size": size, "shape": [size, size, 3], "dtype": "uint8 or float32",
                  "value_range": [0, 255], "color": "RGB (grayscale faces replicated to 3 channels)",
                  "scaling": "inside the model: raw 0-255 RGB in, the network's own scaling in its first layers"},
        "preprocessing": {"name": preprocessing, "description": PREPROCESSINGS[preprocessing],
                          "applied": "to every face before the network, in training and at inference"},
        "face_crop": "none: trained on pre-cropped faces; crop faces before predicting on photos",
        "weights": weights,
        "experiment": experiment,
        "data": data,
        "metrics": metrics,
        "provenance": provenance,
    }
    write_result(card_path(path), card)
    return path


def save_calibrated(model: keras.Model, path: Path, validation: Any, *, tta: dict[str, Any] | None = None,
                    **card: Any) -> dict[str, Any]:
    """Save a champion (V13 or C1) with its card (`card`: save_with_card's fields), the test-time mode it was
    scored in (`tta`) and a calibration fitted on `validation` (an Evaluation in that mode); return the latter."""
    save_with_card(model, path, **card)
    calibration = fit_calibration(validation.probs, validation.y_true)
    update_card(path, calibration=calibration, **({"tta": tta} if tta else {}))
    return calibration


def update_card(model_path: str | Path, **entries: Any) -> dict[str, Any]:
    """Add or replace top-level entries (e.g. calibration=...) in a saved model's card; return the card."""
    path = card_path(Path(model_path))
    if not path.is_file():
        raise FileNotFoundError(f"model card not found: {path} (save the model with save_with_card first)")
    card = json.loads(path.read_text()) | entries
    write_result(path, card)
    return card


def saved_keras_version(path: Path) -> str:
    """Return the Keras version that wrote a .keras file ("unknown" when it does not say)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return str(json.loads(archive.read("metadata.json")).get("keras_version", "unknown"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return "unknown"


def load_network(path: Path, card: dict[str, Any] | None) -> keras.Model:
    """Return the network saved in `path`, readable by every Keras release ferlib supports: a network the card
    describes is built by ferlib and only its weights are read (layer configurations change between Keras
    releases, weights do not); otherwise, or when the weights do not fit, Keras loads the whole file."""
    card = card or {}
    built = build_described(card.get("experiment") or {}, len(card.get("classes") or STUDY.names))
    mismatch: Exception | str | None = None
    if built is not None:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                built.load_weights(path)
            # a layer Keras skipped keeps its random weights and only warns: not the network the file holds
            skipped = [str(w.message) for w in caught if "saving" in w.filename.replace("\\", "/")]
            if not skipped:
                return built
            mismatch = skipped[0].split(".")[0]
        except (ValueError, KeyError) as exc:  # weights of another network: try the file's own configuration
            mismatch = exc
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:
        why = f"; its weights do not fit the network its card describes ({mismatch})" if mismatch else ""
        raise ValueError(f"cannot load {path}: saved by Keras {saved_keras_version(path)}, this is Keras "
                         f"{keras.__version__}, which cannot read its layer configuration "
                         f"({type(exc).__name__}: {exc}){why}") from exc


def load_with_card(path: str | Path) -> LoadedModel:
    """Load a saved model (see `load_network`) and its card; raise FileNotFoundError with the path when missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    card = read_card(path)
    model = load_network(path, card)
    if card is None:
        card = assumed_card(path, int(model.input_shape[1]), int(model.output_shape[-1]))
    n_out = int(model.output_shape[-1])
    if n_out != len(card["classes"]):
        raise ValueError(f"{path} outputs {n_out} scores but its card lists {len(card['classes'])} classes")
    return LoadedModel(model, card, path)
