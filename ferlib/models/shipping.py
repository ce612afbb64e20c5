"""Shipping a champion: copying it into ``ferlib/assets/`` with its card, converting it for LiteRT, and deciding
on the validation split whether a candidate replaces the shipped model.

``python -m ferlib ship MODEL.keras`` and ``python -m ferlib convert`` (a new LiteRT file for a saved model)
run these. They need TensorFlow; predicting with what they write does not (`ferlib.models.shipped`).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from ferlib.evaluation.results import write_result
from ferlib.evaluation.views import average_over_views
from ferlib.models import shipped
from ferlib.models.card import card_path, sha256_of, tta_settings
from ferlib.models.inference import KerasNetwork
from ferlib.models.litert import LiteRTNetwork, agreement, convert_keras, litert_path
from ferlib.models.modelcard import load_with_card, update_card
from ferlib.runtime import files
from ferlib.runtime.quiet import captured_fd2


def ship_model(model_path: str | Path, assets: Path | None = None, comparison: dict[str, Any] | None = None,
               data_dir: str | Path | None = None) -> dict[str, Any]:
    """Copy a saved champion into `assets` as the shipped model: the network without optimizer state, the same
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
    target = assets / shipped.SHIPPED_NAME
    slim = keras.models.load_model(model_path, compile=False)
    files.save_model(slim, target)
    data = target.read_bytes()
    card = card | {"name": target.stem, "shipped": {
        "from": model_path.name, "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        "optimizer_state": "none (weights only; train again to fine-tune)",
        **({"chosen_over_previous": comparison} if comparison else {})}}
    card.pop("litert", None)  # the source's LiteRT file, if any, is not the one shipped
    write_result(card_path(target), card)
    return card | {"litert": convert_for_litert(target, data_dir)}


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

    loaded = {"candidate": load_with_card(candidate),
              "shipped": load_with_card(incumbent or shipped.shipped_model_path())}
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


AGREEMENT_LABELS = 0.999  # the share of images on which LiteRT must give the label Keras gives
AGREEMENT_PROBABILITY = 1e-3  # and the largest difference allowed between their probabilities
GENERATED_IMAGES = 512  # images compared when no validation data is given


def validation_split(card: dict[str, Any], data_dir: str | Path, cache_dir: str | Path | None = None
                     ) -> tuple[np.ndarray, np.ndarray, str]:
    """Return (images at the card's input size, labels, description) of the validation split a model was chosen
    on, drawn again from `data_dir` with the seed and profile its card names; ValueError when `data_dir` is not
    the data the card names (fingerprint)."""
    from ferlib.config import run_settings
    from ferlib.data.manifest import label_indices
    from ferlib.data.run_data import prepare_internal

    provenance, data = card.get("provenance") or {}, card.get("data") or {}
    seed, profile, expected = provenance.get("seed"), provenance.get("profile"), data.get("fingerprint")
    if seed is None or profile is None or expected is None:
        raise ValueError("the model card does not name its validation split (provenance seed and profile, data "
                         "fingerprint)")
    internal = prepare_internal(run_settings(profile, seed=seed, cache_dir=cache_dir), data_dir, progress=False)
    if internal.fingerprint != expected:
        raise ValueError(f"{data_dir} is not the data the model was trained on (fingerprint {internal.fingerprint}, "
                         f"its card says {expected})")
    images = internal.images(internal.val, int(card["input"]["size"]))
    return images, label_indices(internal.val), (f"validation split (seed {seed}, profile {profile}, data "
                                                 f"{expected}), {len(images):,} images")


def generated_faces(size: int, n: int = GENERATED_IMAGES, seed: int = 0) -> np.ndarray:
    """Return n seeded uint8 images (n, size, size, 3): smooth blobs and noise, for comparing backends where no
    real data is at hand."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (n, 6, 6, 1)).astype(np.float32)
    smooth = np.repeat(np.repeat(coarse, -(-size // 6), axis=1), -(-size // 6), axis=2)[:, :size, :size]
    noisy = smooth + rng.normal(0, 24, (n, size, size, 1))
    return np.repeat(np.clip(noisy, 0, 255).astype(np.uint8), 3, axis=3)


def convert_for_litert(model_path: str | Path, data_dir: str | Path | None = None, quantization: str = "float32",
                       cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Convert a saved model for LiteRT, write ``<name>.tflite`` beside it and record it in its card.

    Both networks predict the validation split the card names (drawn from `data_dir`), or generated images when
    `data_dir` is None, in the card's test-time views; the file is written only when they give the same label on
    at least AGREEMENT_LABELS of the images and probabilities within AGREEMENT_PROBABILITY (ValueError
    otherwise). Return the card's new ``litert`` entry."""
    model_path = Path(model_path)
    loaded = load_with_card(model_path)
    if not card_path(model_path).is_file():
        raise ValueError(f"{model_path} has no card: save it with its card first (`ferlib.models.modelcard`)")
    with contextlib.redirect_stdout(io.StringIO()), captured_fd2():  # the converter prints its graph
        flatbuffer = convert_keras(loaded.model, quantization)
    target = litert_path(model_path)
    candidate = target.with_name(target.name + ".candidate")
    candidate.write_bytes(flatbuffer)
    try:
        if data_dir is not None:
            images, labels, described = validation_split(loaded.card, data_dir, cache_dir)
        else:
            images, labels = generated_faces(loaded.image_size), None
            described = f"{len(images)} generated images (no validation data given)"
        flip, shift = tta_settings(loaded.card)
        keras_probs = average_over_views(KerasNetwork(loaded.model), images, flip, shift)
        litert_probs = average_over_views(LiteRTNetwork(candidate), images, flip, shift)
        agreed = agreement(keras_probs, litert_probs)
        if (agreed["same_label"] < AGREEMENT_LABELS or
                agreed["max_probability_difference"] > AGREEMENT_PROBABILITY):
            raise ValueError(f"the LiteRT conversion ({quantization}) disagrees with Keras on the {described}: same "
                             f"label on {agreed['same_label']:.2%} (at least {AGREEMENT_LABELS:.1%} needed), "
                             f"probabilities up to {agreed['max_probability_difference']:.2g} apart (at most "
                             f"{AGREEMENT_PROBABILITY:g}); not written")
        candidate.replace(target)
    finally:
        candidate.unlink(missing_ok=True)
    entry = {"file": target.name, "size_bytes": len(flatbuffer), "sha256": sha256_of(target),
             "from": model_path.name, "from_sha256": sha256_of(model_path), "quantization": quantization,
             "converter": f"TensorFlow {tf.__version__} LiteRT converter (tf.lite.TFLiteConverter.from_keras_model)",
             "agreement_with_keras": {"data": described, "views": {"flip": flip, "shift": shift}, **agreed,
                                      "bounds": {"same_label": AGREEMENT_LABELS,
                                                 "max_probability_difference": AGREEMENT_PROBABILITY}}}
    if labels is not None:
        entry["agreement_with_keras"]["accuracy"] = {
            "keras": float((keras_probs.argmax(axis=1) == labels).mean()),
            "litert": float((litert_probs.argmax(axis=1) == labels).mean())}
    update_card(model_path, litert=entry)
    return entry
