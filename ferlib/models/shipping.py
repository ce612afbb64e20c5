"""Shipping a champion: copying it into ``ferlib/assets/`` with its card and its LiteRT files
(`ferlib.models.conversion`), and deciding on the validation split whether a candidate replaces the shipped model.

``python -m ferlib ship MODEL.keras`` runs these. They need TensorFlow; predicting with what they write does not
(`ferlib.models.shipped`).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import keras

from ferlib.classes import class_set
from ferlib.evaluation.evaluate import evaluate_model
from ferlib.evaluation.results import write_result
from ferlib.evaluation.stats import mcnemar
from ferlib.models import shipped
from ferlib.models.card import card_path, read_card, tta_settings
from ferlib.models.conversion import chosen_on, convert_for_litert
from ferlib.models.modelcard import load_with_card
from ferlib.runtime import files


def ship_model(model_path: str | Path, assets: Path | None = None, comparison: dict[str, Any] | None = None,
               data_dir: str | Path | None = None) -> dict[str, Any]:
    """Copy a saved champion into `assets` as the shipped model of its class set (`shipped.SHIPPED_FOR_CLASSES`:
    fer2013-7 or fer2013-5): the network without optimizer state, the same
    network for LiteRT (`convert_for_litert`, checked on the validation split drawn from `data_dir` when given)
    and its card with a `shipped` entry (source, size, sha256, and the validation `comparison` with the model
    it replaces when given) and a `litert` entry. The card must hold its test-time views, calibration and test
    scores (as `python -m ferlib champion` writes them); ValueError names what is missing. Return the card."""
    model_path, assets = Path(model_path), Path(assets or shipped.ASSETS)  # read when called (tests move it)
    card = json.loads(card_path(model_path).read_text())
    missing = [key for key in shipped.REQUIRED if not card.get(key)]
    if missing:
        raise ValueError(f"{card_path(model_path)} lacks {', '.join(missing)}: save the champion with "
                         "`python -m ferlib champion` (it scores, calibrates and writes them)")
    assets.mkdir(parents=True, exist_ok=True)
    target = assets / shipped.SHIPPED_MODELS[shipped_name(card)]
    slim = keras.models.load_model(model_path, compile=False)
    files.save_model(slim, target)
    data = target.read_bytes()
    card = card | {"name": target.stem, "shipped": {
        "from": model_path.name, "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        "optimizer_state": "none (weights only; train again to fine-tune)",
        **({"chosen_over_previous": comparison} if comparison else {})}}
    card.pop("litert", None)  # the source's LiteRT files, if any, are not the ones shipped
    write_result(card_path(target), card)
    return card | {"litert": convert_for_litert(target, data_dir)}


def shipped_name(card: dict[str, Any]) -> str:
    """Return the name a model ships as: the shipped model of its class set (ValueError for another set)."""
    classes = class_set(card["classes"]).name
    if classes not in shipped.SHIPPED_FOR_CLASSES:
        raise ValueError(f"no shipped model holds the classes {card['classes']}; shipped class sets: "
                         f"{', '.join(shipped.SHIPPED_FOR_CLASSES)}")
    return shipped.SHIPPED_FOR_CLASSES[classes]


def compare_on_validation(candidate: str | Path, data_dir: str | Path, incumbent: str | Path | None = None,
                          cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Score a candidate model and the shipped one (or `incumbent`) on the validation split both were chosen
    on, each in its card's test-time views, and test the difference with McNemar on the paired predictions.

    Both cards must name the same internal data (fingerprint) and split seed; the split is drawn again from
    `data_dir` and must match that fingerprint. Return both scores, the difference and the test; ValueError
    when the models were not chosen on the same validation images."""
    loaded = {"candidate": load_with_card(candidate),
              "shipped": load_with_card(incumbent or shipped.shipped_model_path(shipped_name(read_card(candidate))))}
    splits = {name: (m.card.get("provenance", {}).get("seed"),
                     m.card.get("data", {}).get("fingerprint"), m.card.get("provenance", {}).get("profile"))
              for name, m in loaded.items()}
    if splits["candidate"] != splits["shipped"] or None in splits["candidate"]:
        raise ValueError(f"the two models were not chosen on the same validation split (seed, data fingerprint, "
                         f"profile: candidate {splits['candidate']}, shipped {splits['shipped']}); compare them "
                         "on a test set instead")
    seed, fingerprint, _ = splits["candidate"]
    internal = chosen_on(loaded["candidate"].card, data_dir, cache_dir)  # the same split as the shipped one's
    evaluations = {}
    for name, m in loaded.items():
        x_val, y_val = internal.images(internal.val, m.image_size, m.preprocessing), internal.labels(internal.val)
        flip, shift = tta_settings(m.card)
        evaluations[name] = evaluate_model(m.model, x_val, y_val, m.classes, tta_flip=flip, tta_shift=shift)
    y_val = evaluations["candidate"].y_true
    test = mcnemar(y_val, evaluations["shipped"].y_pred, evaluations["candidate"].y_pred)
    accuracy = {name: float(e.accuracy) for name, e in evaluations.items()}
    return {"split": {"seed": seed, "data_fingerprint": fingerprint, "n": int(len(y_val))},
            "candidate": {"model": Path(candidate).name, "accuracy": accuracy["candidate"],
                          "views": loaded["candidate"].card["tta"]["mode"]},
            "shipped": {"model": loaded["shipped"].card.get("shipped", {}).get("from", loaded["shipped"].path.name),
                        "accuracy": accuracy["shipped"], "views": loaded["shipped"].card["tta"]["mode"]},
            "difference": accuracy["candidate"] - accuracy["shipped"], "mcnemar": test.to_dict()}
