"""The model that ships inside the package, so `predict` works right after install.

It is C1, this project's from-scratch CNN, trained on FER-2013's training split (five classes) on 2 CPU
cores: ``ferlib/assets/c1_fer2013.keras`` (weights only, no optimizer state) with its card beside it. The
card says what it was trained on, at which commit, its test-time views, its FER-2013 test accuracy with a
95% interval and the temperature and abstention threshold fitted on the validation split.

The same network ships as ``c1_fer2013.tflite`` for LiteRT, which `predict` and `evaluate` run by default.

``python -m ferlib champion`` trains a new C1; ``python -m ferlib ship MODEL.keras`` puts it here
(`ferlib.models.shipping`). This module only finds and describes it, so it needs no TensorFlow.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ferlib.evaluation.stats import p_value_text
from ferlib.models.card import card_path

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


SHIP_ALPHA = 0.05  # a candidate ships only when McNemar finds it better than the shipped model at this level


def ship_verdict(comparison: dict[str, Any], alpha: float = SHIP_ALPHA) -> tuple[bool, str]:
    """Return (ship?, why) for a `compare_on_validation` result: a candidate ships only when it is more accurate
    on the validation split and McNemar's p is below `alpha`, so a difference within noise does not replace a
    model users already rely on."""
    diff, p = comparison["difference"], comparison["mcnemar"]["p_value"]
    said = f"{100 * diff:+.1f} points, McNemar {p_value_text(p)}"
    if diff <= 0:
        return False, f"not better on validation ({said})"
    if p >= alpha:
        return False, f"not significantly better on validation ({said}; shipping needs p < {alpha:g})"
    return True, f"better on validation ({said})"


def shipped_card() -> dict[str, Any]:
    """Return the shipped model's card (FileNotFoundError, saying how to make one, when it is missing)."""
    return json.loads(card_path(shipped_model_path()).read_text())


def describe_shipped(card: dict[str, Any]) -> str:
    """Return one line about a shipped model: what it is and its test accuracy with its interval."""
    test = card["test"]
    lo, hi = test["accuracy_ci"]
    return (f"{card['name']}: {card.get('experiment', {}).get('title', 'model')}, FER-2013 test "
            f"{test['accuracy']:.1%} [{lo:.1%}, {hi:.1%}] on {test['n']:,} images, "
            f"{card['shipped']['size_bytes'] / 1e6:.1f} MB")


def shipped_test_line(card: dict[str, Any]) -> str:
    """Return the shipped model's test score for a headline: "the shipped C1 (its card): FER-2013 test 73.7%
    [72.0%, 75.2%]"."""
    test = card["test"]
    lo, hi = test["accuracy_ci"]
    name = card.get("experiment", {}).get("key", "model").split("_")[0]  # C1_112epochs -> C1
    return f"the shipped {name} (its card): FER-2013 test {test['accuracy']:.1%} [{lo:.1%}, {hi:.1%}]"
