"""The model that ships inside the package, so `predict` works right after install.

It is C1, this project's from-scratch CNN, trained on FER-2013's training split (five classes) on 2 CPU
cores: ``ferlib/assets/c1_fer2013.keras`` (weights only, no optimizer state) with its card beside it. The
card says what it was trained on, at which commit, its test-time views, its FER-2013 test accuracy with a
95% interval and the temperature and abstention threshold fitted on the validation split.

``python -m ferlib champion`` trains a new C1; ``python -m ferlib ship MODEL.keras`` puts it here.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import keras

from ferlib.evaluation.results import write_result
from ferlib.models.modelcard import card_path
from ferlib.runtime import files

ASSETS = Path(__file__).resolve().parents[1] / "assets"
SHIPPED_NAME = "c1_fer2013.keras"
REQUIRED = ("classes", "input", "tta", "calibration", "test")  # what a shipped card must say


def shipped_model_path() -> Path:
    """Return the shipped model's path; FileNotFoundError (saying how to make one) when it is missing."""
    path = ASSETS / SHIPPED_NAME
    if not path.is_file() or not card_path(path).is_file():
        raise FileNotFoundError(
            f"the shipped model is missing ({path}); pass --model, or train one with `python -m ferlib champion "
            "--data FER2013_DIR --external FER2013_DIR` and ship it with `python -m ferlib ship MODEL.keras`")
    return path


def ship_model(model_path: str | Path, assets: Path = ASSETS) -> dict[str, Any]:
    """Copy a saved champion into `assets` as the shipped model: the network without optimizer state and its
    card with a `shipped` entry (source, size, sha256). The card must hold its test-time views, calibration
    and test scores (as `python -m ferlib champion` writes them); ValueError names what is missing.
    Return the shipped card."""
    model_path = Path(model_path)
    card = json.loads(card_path(model_path).read_text())
    missing = [key for key in REQUIRED if not card.get(key)]
    if missing:
        raise ValueError(f"{card_path(model_path)} lacks {', '.join(missing)}: save the champion with "
                         "`python -m ferlib champion` (it scores, calibrates and writes them)")
    assets.mkdir(parents=True, exist_ok=True)
    target = assets / SHIPPED_NAME
    slim = keras.models.load_model(model_path, compile=False)
    files.save_model(slim, target)
    data = target.read_bytes()
    card = card | {"name": target.stem, "shipped": {
        "from": model_path.name, "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        "optimizer_state": "none (weights only; train again to fine-tune)"}}
    write_result(card_path(target), card)
    return card


def describe_shipped(card: dict[str, Any]) -> str:
    """Return one line about a shipped model: what it is and its test accuracy with its interval."""
    test = card["test"]
    lo, hi = test["accuracy_ci"]
    return (f"{card['name']}: {card.get('experiment', {}).get('title', 'model')}, FER-2013 test "
            f"{test['accuracy']:.1%} [{lo:.1%}, {hi:.1%}] on {test['n']:,} images, "
            f"{card['shipped']['size_bytes'] / 1e6:.1f} MB")
