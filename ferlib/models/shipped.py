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


def ship_model(model_path: str | Path, assets: Path | None = None, comparison: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    """Copy a saved champion into `assets` as the shipped model: the network without optimizer state and its
    card with a `shipped` entry (source, size, sha256, and the validation `comparison` with the model it
    replaces when given). The card must hold its test-time views, calibration and test scores (as
    `python -m ferlib champion` writes them); ValueError names what is missing. Return the shipped card."""
    model_path, assets = Path(model_path), Path(assets or ASSETS)
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
        "optimizer_state": "none (weights only; train again to fine-tune)",
        **({"chosen_over_previous": comparison} if comparison else {})}}
    write_result(card_path(target), card)
    return card


def compare_on_validation(candidate: str | Path, data_dir: str | Path, incumbent: str | Path | None = None,
                          cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Score a candidate model and the shipped one (or `incumbent`) on the validation split both were chosen
    on, each in its card's test-time views, and test the difference with McNemar on the paired predictions.

    Both cards must name the same internal data (fingerprint) and split seed; the split is drawn again from
    `data_dir` and must match that fingerprint. Return both scores, the difference and the test; ValueError
    when the models were not chosen on the same validation images."""
    from ferlib.config import run_settings
    from ferlib.data.manifest import label_indices
    from ferlib.data.run_data import prepare_internal
    from ferlib.evaluation.evaluate import evaluate_model
    from ferlib.evaluation.stats import mcnemar
    from ferlib.models.modelcard import load_with_card, tta_settings

    loaded = {"candidate": load_with_card(candidate), "shipped": load_with_card(incumbent or shipped_model_path())}
    splits = {name: (m.card.get("provenance", {}).get("seed"),
                     m.card.get("data", {}).get("fingerprint"), m.card.get("provenance", {}).get("profile"))
              for name, m in loaded.items()}
    if splits["candidate"] != splits["shipped"] or None in splits["candidate"]:
        raise ValueError(f"the two models were not chosen on the same validation split (seed, data fingerprint, "
                         f"profile: candidate {splits['candidate']}, shipped {splits['shipped']}); compare them "
                         "on a test set instead")
    seed, fingerprint, profile = splits["candidate"]
    settings = run_settings(profile, seed=seed, cache_dir=cache_dir)
    internal = prepare_internal(settings, data_dir, progress=False)
    if internal.fingerprint != fingerprint:
        raise ValueError(f"{data_dir} is not the data the models were trained on (fingerprint "
                         f"{internal.fingerprint}, the cards say {fingerprint})")
    evaluations = {}
    for name, m in loaded.items():
        x_val, y_val = internal.images(internal.val, m.card["input"]["size"]), label_indices(internal.val)
        flip, shift = tta_settings(m.card)
        evaluations[name] = evaluate_model(m.model, x_val, y_val, tta_flip=flip, tta_shift=shift)
    y_val = evaluations["candidate"].y_true
    test = mcnemar(y_val, evaluations["shipped"].y_pred, evaluations["candidate"].y_pred)
    accuracy = {name: float(e.accuracy) for name, e in evaluations.items()}
    return {"split": {"seed": seed, "data_fingerprint": fingerprint, "n": int(len(y_val))},
            "candidate": {"model": Path(candidate).name, "accuracy": accuracy["candidate"],
                          "views": loaded["candidate"].card["tta"]["mode"]},
            "shipped": {"model": loaded["shipped"].card.get("shipped", {}).get("from", loaded["shipped"].path.name),
                        "accuracy": accuracy["shipped"], "views": loaded["shipped"].card["tta"]["mode"]},
            "difference": accuracy["candidate"] - accuracy["shipped"], "mcnemar": test.to_dict()}


SHIP_ALPHA = 0.05  # a candidate ships only when McNemar finds it better than the shipped model at this level


def ship_verdict(comparison: dict[str, Any], alpha: float = SHIP_ALPHA) -> tuple[bool, str]:
    """Return (ship?, why) for a `compare_on_validation` result: a candidate ships only when it is more accurate
    on the validation split and McNemar's p is below `alpha`, so a difference within noise does not replace a
    model users already rely on."""
    from ferlib.evaluation.stats import p_value_text

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
