"""Model cards read without Keras (so predicting with LiteRT never imports TensorFlow), and the models that ship
inside the package, so `predict` works right after install.

Two models ship in ``ferlib/assets/``, each C1 trained on FER-2013's training split and named by its classes:
``fer2013-7`` (seven emotions, Neutral included: the default for people's photos) and ``fer2013-5`` (the study's
five); each as ``<name>.keras`` (no optimizer state), its card ``<name>.json`` and ``<name>.tflite`` for LiteRT.
``python -m ferlib ship MODEL.keras`` puts a new one here (`ferlib.models.shipping.ship_model`).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ferlib.classes import LEGACY_PREPROCESSING, PREPROCESSINGS, STUDY
from ferlib.evaluation.stats import p_value_text

CARD_VERSION = 1
ASSETS = Path(__file__).resolve().parents[1] / "assets"
SHIPPED_MODELS = {"fer2013-7": "fer2013-7.keras", "fer2013-5": "fer2013-5.keras"}  # name: file in ASSETS
SHIPPED_FOR_CLASSES = {"fer2013-7": "fer2013-7", "study-5": "fer2013-5"}  # a card's class set: the name it ships as
DEFAULT_MODEL = "fer2013-7"
REQUIRED = ("classes", "input", "tta", "calibration", "test")  # what a shipped card must say
SHIP_ALPHA = 0.05  # a candidate ships only when McNemar finds it better than the shipped model at this level


class WithCard:
    """What a model's card tells about its inputs and outputs (for classes holding a `card`)."""

    card: dict[str, Any]

    @property
    def image_size(self) -> int:
        """Return the square input size the model expects."""
        return int(self.card["input"]["size"])

    @property
    def classes(self) -> list[str]:
        """Return the class names in the model's output order."""
        return list(self.card["classes"])

    @property
    def preprocessing(self) -> str:
        """Return the face preprocessing the model learned with (`card_preprocessing`)."""
        return card_preprocessing(self.card)


def card_path(model_path: Path) -> Path:
    """Return the card file that belongs to a saved model."""
    return Path(model_path).with_suffix(".json")


def read_card(model_path: str | Path) -> dict[str, Any] | None:
    """Return the card beside a saved model, or None when it has none."""
    path = card_path(Path(model_path))
    return json.loads(path.read_text()) if path.is_file() else None


def card_preprocessing(card: dict[str, Any]) -> str:
    """Return the name of the face preprocessing a card gives (LEGACY_PREPROCESSING for a card naming none)."""
    entry = card.get("preprocessing")
    name = entry.get("name") if isinstance(entry, dict) else LEGACY_PREPROCESSING
    if name not in PREPROCESSINGS:
        raise ValueError(f"the card of {card.get('name')} names an unknown preprocessing {name!r}; known: "
                         f"{', '.join(PREPROCESSINGS)}")
    return name


def learned_preprocessing(card: dict[str, Any]) -> str:
    """Return the face preprocessing a model was trained with (its card's inference one may differ)."""
    entry = card.get("preprocessing")
    return (entry.get("learned_with") if isinstance(entry, dict) else None) or card_preprocessing(card)


def assumed_card(model_path: Path, size: int, n_classes: int = len(STUDY)) -> dict[str, Any]:
    """Return the card assumed for a model saved without one: the study's classes and 0-255 RGB input."""
    if n_classes != len(STUDY):
        raise ValueError(f"{model_path} has no model card and {n_classes} outputs: save it with its card (classes)")
    return {"card_version": 0, "name": Path(model_path).stem, "classes": list(STUDY.names),
            "preprocessing": {"name": "none"},
            "input": {"size": size, "shape": [size, size, 3], "value_range": [0, 255]},
            "note": "no model card found; classes and input range assumed to be this project's"}


def tta_settings(card: dict[str, Any]) -> tuple[bool, int]:
    """Return (flip, shift): a card's test-time averaging (its "tta" entry, else the experiment's tta_flip)."""
    tta = card.get("tta")
    if tta:
        return bool(tta.get("flip", False)), int(tta.get("shift", 0))
    return bool((card.get("experiment") or {}).get("tta_flip", False)), 0


def partner_path(model_path: str | Path, entry: dict[str, Any]) -> Path:
    """Return where the partner a card's ``pooled_with`` `entry` names is: its own ``file`` beside the model, else the
    shipped model of that name."""
    return Path(model_path).with_name(entry["file"]) if entry.get("file") else shipped_model_path(entry["model"])


def partner_entries(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the partners a ``pooled_with`` `entry` names (model, sha256, file when its own): first the one its own
    fields name, then the further members of the group under ``also``."""
    return [entry, *entry.get("also", [])]


def partner_paths(model_path: str | Path, entry: dict[str, Any]) -> list[Path]:
    """Return where each partner a ``pooled_with`` `entry` names is (`partner_path`)."""
    return [partner_path(model_path, e) for e in partner_entries(entry)]


def replaced_partner(entry: dict[str, Any], partner_cards: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Return the first partner a ``pooled_with`` `entry` names whose network (its card's shipped sha256, in
    `partner_entries` order) is no longer the one the weight was chosen with; None when all still are."""
    return next((named for named, card in zip(partner_entries(entry), partner_cards)
                 if (card.get("shipped") or {}).get("sha256") != named["sha256"]), None)


def pooled_precision(card: dict[str, Any] | None) -> str | None:
    """Return the LiteRT precision a pooled model's networks run at, chosen for the pool on validation
    (``pooled_with.litert``, `ferlib.models.pool_choice.choose_pooled_precision`); None when none was chosen."""
    return (((card or {}).get("pooled_with") or {}).get("litert") or {}).get("default")


def sha256_of(path: Path) -> str:
    """Return a file's sha256 (hex), as cards record it."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def shipped_model_path(name: str = DEFAULT_MODEL) -> Path:
    """Return a shipped model's path; FileNotFoundError (saying how to make one) when it is missing."""
    if name not in SHIPPED_MODELS:
        raise FileNotFoundError(f"no shipped model {name!r}; shipped: {', '.join(SHIPPED_MODELS)}")
    path = ASSETS / SHIPPED_MODELS[name]
    if not path.is_file() or not card_path(path).is_file():
        raise FileNotFoundError(
            f"the shipped model {name} is missing ({path}); pass --model, or train one with `python -m ferlib "
            "champion --data FER2013_DIR --external FER2013_DIR` and ship it with `python -m ferlib ship MODEL.keras`")
    return path


def resolve_model(which: str | Path | None, option: str = "--model") -> Path:
    """Return the model file `which` names: None (the default), a shipped model's name, or a saved model's path
    (FileNotFoundError naming the command-line `option` that gave it when it is neither)."""
    if which is None or str(which) in SHIPPED_MODELS:
        return shipped_model_path(DEFAULT_MODEL if which is None else str(which))
    path = Path(which)
    if not path.is_file():
        raise FileNotFoundError(f"{option} {which}: neither a shipped model ({', '.join(SHIPPED_MODELS)}) nor a "
                                "model file")
    return path


def ship_verdict(comparison: dict[str, Any], alpha: float = SHIP_ALPHA) -> tuple[bool, str]:
    """Return (ship?, why) for a `compare_on_validation` result: a candidate ships only when it is more accurate
    on validation with McNemar's p below `alpha` (noise never replaces a model users rely on)."""
    diff, p = comparison["difference"], comparison["mcnemar"]["p_value"]
    said = f"{100 * diff:+.1f} points, McNemar {p_value_text(p)}"
    if diff <= 0:
        return False, f"not better on validation ({said})"
    if p >= alpha:
        return False, f"not significantly better on validation ({said}; shipping needs p < {alpha:g})"
    return True, f"better on validation ({said})"


def shipped_card(name: str = DEFAULT_MODEL) -> dict[str, Any]:
    """Return a shipped model's card (FileNotFoundError, saying how to make one, when it is missing)."""
    return json.loads(card_path(shipped_model_path(name)).read_text())


def shipped_label(name: str = DEFAULT_MODEL) -> str:
    """Return how reports name a shipped model: "the shipped fer2013-7 (C1 trained on FER-2013, 7 emotions)"."""
    return f"the shipped {name} (C1 trained on FER-2013, {len(shipped_card(name)['classes'])} emotions)"


def training_data_text(card: dict[str, Any]) -> str:
    """Return what a card's model was trained on, without the folder it was read from on the machine that trained
    it (a shipped card's is the developers'): "fer-folder layout, 22,942 training and 5,767 validation images"."""
    data = card.get("data") or {}
    if data.get("embedded"):
        return "the embedded synthetic dataset (generated faces)"
    if "n_train" not in data:
        return "unknown (the card does not say)"
    return (f"{data.get('layout', 'unknown')} layout, {data['n_train']:,} training and {data.get('n_val', 0):,} "
            f"validation images (data fingerprint {data.get('fingerprint', 'unknown')})")


def pooling_text(card: dict[str, Any]) -> str:
    """Return how a card's model is pooled with a partner (`ferlib.models.pooling`), or "" when it is not: "pooled
    with fer2013-7's network (weight 0.5; on 2,476 validation faces neither trained on 71.8% alone, 73.7% pooled,
    McNemar p < 0.001)"."""
    if not (entry := card.get("pooled_with")):
        return ""
    accuracy, test = entry["chosen_on"]["accuracy"], entry["chosen_on"]["mcnemar_vs_alone"]
    pooled = accuracy[f"{entry['weight']:.1f}"]
    names = [e["model"] for e in partner_entries(entry)]
    partner = (f"{len(names)} more networks of its own, {' and '.join(names)}" if len(names) > 1 else
               f"a second network of its own, {entry['model']}" if entry.get("file") else f"{entry['model']}'s network")
    both, neither = ("both", "neither") if len(names) == 1 else ("all", "none of them")
    precision = f"; with LiteRT {both} at {chosen}" if (chosen := pooled_precision(card)) else ""
    return (f"pooled with {partner} (weight {entry['weight']:.1f}; on {test['n']:,} validation faces "
            f"{neither} trained on {accuracy['0.0']:.1%} alone, {pooled:.1%} pooled, McNemar "
            f"{p_value_text(test['p_value'])}{precision})")


def describe_shipped(card: dict[str, Any]) -> str:
    """Return one line about a shipped model: what it is and its test accuracy with its interval, as last measured
    (`tools/score_shipped.py` writes `tests`, the first on the pixels users have), else as scored when trained."""
    latest = (card.get("tests") or {}).get("on") or []
    test, where = (latest[0], f"{latest[0]['data']} (measured {card['tests']['measured']['date']})") if latest else (
        card["test"], "FER-2013 test")
    lo, hi = test["accuracy_ci"]
    pooled = f" {text}," if (text := pooling_text(card)) else ""
    return (f"{card['name']}: {card.get('experiment', {}).get('title', 'model')},{pooled} {where} "
            f"{test['accuracy']:.1%} [{lo:.1%}, {hi:.1%}] on {test.get('n', test.get('images')):,} images, "
            f"{card['shipped']['size_bytes'] / 1e6:.1f} MB")
