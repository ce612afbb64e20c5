"""Shipping a champion: converting it for LiteRT (``python -m ferlib convert``), comparing it with the shipped
model on validation, choosing the face preprocessing it gets at inference and refitting its calibration there
(``python -m ferlib calibrate``), and copying it into ``ferlib/assets/`` (``python -m ferlib ship``); pooling it with
another network is `ferlib.models.pool_choice`'s. These need
TensorFlow; predicting with what they write does not (`ferlib.models.shipped`).

`convert_for_litert` writes ``<name>.tflite`` (float32, written only when it agrees with Keras within
AGREEMENT_LABELS and AGREEMENT_PROBABILITY: a check of the converter) and ``<name>.int8.tflite`` (dynamic-range
int8, the default only when as accurate on validation and MIN_SPEEDUP times faster), and records both in the
card's ``litert`` entry (sha256, size, source ``.keras``, agreement, default precision and why).
"""
from __future__ import annotations

import contextlib
import io
import json
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from ferlib.classes import INFERENCE_VARIANTS, PREPROCESSINGS, class_set
from ferlib.config import run_settings
from ferlib.data.run_data import prepare_internal
from ferlib.evaluation.calibration import fit_calibration
from ferlib.evaluation.evaluate import evaluate_model
from ferlib.evaluation.results import cpu_model, write_result
from ferlib.evaluation.stats import mcnemar
from ferlib.evaluation.views import average_over_views
from ferlib.models import shipped
from ferlib.models.inference import PRECISIONS, KerasNetwork, LiteRTNetwork, litert_path
from ferlib.models.modelcard import load_with_card, update_card
from ferlib.models.shipped import (
    card_path,
    card_preprocessing,
    learned_preprocessing,
    read_card,
    sha256_of,
    tta_settings,
)
from ferlib.runtime import files
from ferlib.runtime.quiet import captured_fd2

AGREEMENT_LABELS = 0.999  # the share of images on which the float32 conversion must give Keras's label
AGREEMENT_PROBABILITY = 1e-3  # and the largest difference allowed between their probabilities
MIN_SPEEDUP = 1.2  # a quantized model must be at least this much faster to become the default
SIGNIFICANCE = 0.05  # ... and not significantly different in accuracy (McNemar) on the validation split
GENERATED_IMAGES = 512  # images compared when no validation data is given
TIMED_BATCH, TIMED_REPEATS = 40, 20  # four faces of ten views, as a photo sends them
PARTNER_SUFFIX = ".partner"  # a model's own pooling partner: <model>.partner.keras beside it


def convert_keras(model: Any, precision: str = "float32") -> bytes:
    """Return a Keras model converted by TensorFlow's LiteRT converter at `precision`, with a dynamic batch."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if precision != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if precision == "float16":
            converter.target_spec.supported_types = [tf.float16]
    return bytes(converter.convert())


def agreement(reference: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    """Return how far two backends' probabilities (n, classes) agree: same labels and largest difference."""
    reference, other = np.asarray(reference, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if reference.shape != other.shape:
        raise ValueError(f"shapes differ: {reference.shape} and {other.shape}")
    same = reference.argmax(axis=1) == other.argmax(axis=1)
    return {"n": int(len(same)), "same_label": float(same.mean()) if len(same) else 1.0,
            "labels_differ": int((~same).sum()),
            "max_probability_difference": float(np.abs(reference - other).max()) if len(same) else 0.0}


def chosen_on(card: dict[str, Any], data_dir: str | Path, cache_dir: str | Path | None = None) -> Any:
    """Return the internal data (and split) a model was chosen on, drawn again from `data_dir` with its card's seed
    and profile; ValueError when the card does not name them or `data_dir` is not its data (fingerprint)."""
    provenance, data = card.get("provenance") or {}, card.get("data") or {}
    seed, profile, expected = provenance.get("seed"), provenance.get("profile"), data.get("fingerprint")
    if seed is None or profile is None or expected is None:
        raise ValueError("the model card does not name its validation split (provenance seed and profile, data "
                         "fingerprint)")
    internal = prepare_internal(run_settings(profile, seed=seed, cache_dir=cache_dir), data_dir, progress=False,
                                classes=class_set(card["classes"]))
    if internal.fingerprint != expected:
        raise ValueError(f"{data_dir} is not the data the model was trained on (fingerprint {internal.fingerprint}, "
                         f"its card says {expected})")
    return internal


def validation_split(card: dict[str, Any], data_dir: str | Path, cache_dir: str | Path | None = None
                     ) -> tuple[np.ndarray, np.ndarray, str]:
    """Return (images, labels, description) of the validation split a model was chosen on (`chosen_on`)."""
    internal = chosen_on(card, data_dir, cache_dir)
    provenance = card["provenance"]
    images = internal.images(internal.val, int(card["input"]["size"]), card_preprocessing(card))
    return images, internal.labels(internal.val), (f"validation split (seed {provenance['seed']}, profile "
                                                 f"{provenance['profile']}, data {internal.fingerprint}), "
                                                 f"{len(images):,} images")


def choose_preprocessing(model_path: str | Path, data_dir: str | Path, cache_dir: str | Path | None = None
                         ) -> dict[str, Any]:
    """Score a saved model on the validation split it was chosen on with the preprocessing it learned and each of
    its INFERENCE_VARIANTS, keep the most accurate (the learned one on a tie), refit its temperature and abstention
    threshold in that mode and record both in its card; return the card's new ``preprocessing`` entry."""
    loaded = load_with_card(model_path)
    if pooled := loaded.card.get("pooled_with"):
        raise ValueError(f"it is pooled with {pooled['model']}: its calibration is the pooled one's; calibrate a copy "
                         "that is not pooled, then pool it again (`python -m ferlib pool`)")
    learned = learned_preprocessing(loaded.card)
    internal = chosen_on(loaded.card, data_dir, cache_dir)
    labels, network, views = internal.labels(internal.val), KerasNetwork(loaded.model), tta_settings(loaded.card)
    probs = {name: average_over_views(network, internal.images(internal.val, loaded.image_size, name), *views)
             for name in (learned, *INFERENCE_VARIANTS.get(learned, ()))}
    right = {name: int((p.argmax(axis=1) == labels).sum()) for name, p in probs.items()}
    chosen = max(right, key=right.get)  # the first, the learned one, on a tie
    entry = {"name": chosen, "description": PREPROCESSINGS[chosen],
             "applied": ("to every face before the network, in training and at inference" if chosen == learned else
                         f"to every face at inference; the network learned {learned!r} faces, and {chosen!r} is more "
                         "accurate on its validation split"),
             "learned_with": learned,
             "chosen_on": {"split": f"validation split, {len(labels):,} images, in the card's test-time views",
                           "accuracy": {name: n / len(labels) for name, n in right.items()},
                           **({"mcnemar_vs_learned": mcnemar(labels, probs[learned].argmax(axis=1),
                                                              probs[chosen].argmax(axis=1)).to_dict()}
                              if chosen != learned else {})}}
    update_card(model_path, preprocessing=entry, calibration=fit_calibration(probs[chosen], labels))
    return entry


def remove_partner_copy(model_path: Path, keep: tuple[Path, ...] = ()) -> None:
    """Delete the files of a model's own partners (`ferlib.models.pool_choice.ship_partner`), if any, but those of
    the copies `keep` names."""
    def copy_of(path: Path) -> str:  # the copy a file belongs to: "partner", "partner2", ...
        return path.name[len(model_path.stem) + 1:].split(".")[0]

    kept = {copy_of(k) for k in keep}
    for stale in model_path.parent.glob(f"{model_path.stem}{PARTNER_SUFFIX}*.*"):
        if copy_of(stale) not in kept:
            stale.unlink()


def generated_faces(size: int, n: int = GENERATED_IMAGES, seed: int = 0) -> np.ndarray:
    """Return n seeded uint8 face-like images (n, size, size, 3) for comparing backends without real data."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (n, 6, 6, 1)).astype(np.float32)
    smooth = np.repeat(np.repeat(coarse, -(-size // 6), axis=1), -(-size // 6), axis=2)[:, :size, :size]
    noisy = smooth + rng.normal(0, 24, (n, size, size, 1))
    return np.repeat(np.clip(noisy, 0, 255).astype(np.uint8), 3, axis=3)


def timed_batch(images: np.ndarray) -> np.ndarray:
    """Return the TIMED_BATCH images (seeded draw) a conversion's precisions are timed on."""
    return images[np.random.default_rng(0).choice(len(images), TIMED_BATCH, replace=len(images) < TIMED_BATCH)]


def median_call_ms(network: Callable[[np.ndarray], np.ndarray], batch: np.ndarray) -> float:
    """Return the median milliseconds of one call of `network` on `batch` (TIMED_REPEATS calls, after a warm-up)."""
    network(batch)  # warm-up
    return 1000 * float(np.median(timeit.repeat(lambda: network(batch), number=1, repeat=TIMED_REPEATS)))


def scored_beside_float32(labels: np.ndarray, predicted: dict[str, np.ndarray], precision: str) -> dict[str, Any]:
    """Return a precision's accuracy on labelled faces and, for a quantized one, McNemar's comparison with float32's
    labels (`predicted`: the labels each precision gave), as `choose_precision` reads them."""
    entry: dict[str, Any] = {"accuracy": float((predicted[precision] == labels).mean())}
    if precision != "float32":
        entry["mcnemar_vs_float32"] = mcnemar(labels, predicted["float32"], predicted[precision]).to_dict()
    return entry


def choose_precision(entries: dict[str, dict[str, Any]], labelled: bool) -> tuple[str, str]:
    """Return (precision, why): the fastest quantized precision as accurate as float32 on validation (no fewer
    right answers, McNemar p >= SIGNIFICANCE) and MIN_SPEEDUP times faster; else, or without labels, float32."""
    if not labelled:
        return "float32", "no validation data given: a quantized model is never chosen untested"
    reference = entries["float32"]
    best, why = "float32", "no quantized model was as accurate on the validation split and faster"
    for precision, entry in entries.items():
        if precision == "float32":
            continue
        speedup = reference["median_ms"] / entry["median_ms"]
        accurate = entry["accuracy"] >= reference["accuracy"] and entry["mcnemar_vs_float32"]["p_value"] >= SIGNIFICANCE
        fastest = best == "float32" or entry["median_ms"] < entries[best]["median_ms"]
        if accurate and speedup >= MIN_SPEEDUP and fastest:
            best = precision
            why = (f"as accurate on the validation split ({entry['accuracy']:.2%} against float32's "
                   f"{reference['accuracy']:.2%}, McNemar p = {entry['mcnemar_vs_float32']['p_value']:.2f}) and "
                   f"{speedup:.1f} times faster ({entry['median_ms']:.1f} against {reference['median_ms']:.1f} ms "
                   f"for {TIMED_BATCH} images)")
    return best, why


def convert_for_litert(model_path: str | Path, data_dir: str | Path | None = None,
                       precisions: tuple[str, ...] = ("float32", "int8"), cache_dir: str | Path | None = None
                       ) -> dict[str, Any]:
    """Convert a saved model for LiteRT at each precision, write the files beside it and record them in its card;
    return the card's new ``litert`` entry (ValueError, nothing written, when float32 disagrees with Keras)."""
    model_path = Path(model_path)
    if "float32" not in precisions or not set(precisions) <= set(PRECISIONS):
        raise ValueError(f"precisions must include float32 and be among {', '.join(PRECISIONS)}, got {precisions}")
    if not card_path(model_path).is_file():
        raise ValueError(f"{model_path} has no card: save it with its card first (`ferlib.models.modelcard`)")
    loaded = load_with_card(model_path)
    if data_dir is not None:
        images, labels, described = validation_split(loaded.card, data_dir, cache_dir)
    else:
        images, labels = generated_faces(loaded.image_size), None
        described = f"{len(images)} generated images (no validation data given)"
    flip, shift = tta_settings(loaded.card)
    keras_probs = average_over_views(KerasNetwork(loaded.model), images, flip, shift)
    timed = timed_batch(images)
    candidates, entries, probs = {}, {}, {}
    try:
        for precision in precisions:
            with contextlib.redirect_stdout(io.StringIO()), captured_fd2():  # the converter prints its graph
                flatbuffer = convert_keras(loaded.model, precision)
            target = litert_path(model_path, precision)
            candidates[precision] = target.with_name(target.name + ".candidate")
            candidates[precision].write_bytes(flatbuffer)
            network = LiteRTNetwork(candidates[precision])
            probs[precision] = average_over_views(network, images, flip, shift)
            entries[precision] = {"file": target.name, "size_bytes": len(flatbuffer),
                                  "agreement_with_keras": agreement(keras_probs, probs[precision]),
                                  "median_ms": round(median_call_ms(network, timed), 2)}
            if labels is not None:
                entries[precision] |= scored_beside_float32(labels, {p: v.argmax(axis=1) for p, v in probs.items()},
                                                            precision)
        agreed = entries["float32"]["agreement_with_keras"]
        if agreed["same_label"] < AGREEMENT_LABELS or agreed["max_probability_difference"] > AGREEMENT_PROBABILITY:
            raise ValueError(f"the float32 LiteRT conversion disagrees with Keras on the {described}: same label on "
                             f"{agreed['same_label']:.2%} (at least {AGREEMENT_LABELS:.1%} needed), probabilities up "
                             f"to {agreed['max_probability_difference']:.2g} apart (at most "
                             f"{AGREEMENT_PROBABILITY:g}); nothing written")
        default, why = choose_precision(entries, labels is not None)
        for precision, candidate in candidates.items():
            candidate.replace(litert_path(model_path, precision))
    finally:
        for candidate in candidates.values():
            candidate.unlink(missing_ok=True)
    keras_sha = sha256_of(model_path)
    for precision, entry in entries.items():
        entry |= {"sha256": sha256_of(litert_path(model_path, precision)), "from_sha256": keras_sha}
    entry = {"default": default, "why": why, "compared_on": described, "views": {"flip": flip, "shift": shift},
             "from": model_path.name, "timed_on": cpu_model(),
             "converter": f"TensorFlow {tf.__version__} LiteRT converter (tf.lite.TFLiteConverter.from_keras_model)",
             "bounds": {"float32_same_label": AGREEMENT_LABELS, "float32_max_probability_difference":
                        AGREEMENT_PROBABILITY, "min_speedup": MIN_SPEEDUP, "significance": SIGNIFICANCE},
             **({"keras_accuracy": float((keras_probs.argmax(axis=1) == labels).mean())} if labels is not None else {}),
             "precisions": entries}
    update_card(model_path, litert=entry)
    return entry


def ship_model(model_path: str | Path, assets: Path | None = None, comparison: dict[str, Any] | None = None,
               data_dir: str | Path | None = None) -> dict[str, Any]:
    """Copy a saved champion into `assets` as the shipped model of its class set (without optimizer state), write
    its card with a `shipped` entry (source, size, sha256, the `comparison` when given), with `data_dir` choose its
    inference preprocessing on its validation split (`choose_preprocessing`), convert it (`convert_for_litert`, on
    that split when given) and return the card. ValueError when the card lacks what `python -m ferlib champion`
    writes (test-time views, calibration, test scores)."""
    model_path, assets = Path(model_path), Path(assets or shipped.ASSETS)  # read when called (tests move it)
    card = json.loads(card_path(model_path).read_text())
    missing = [key for key in shipped.REQUIRED if not card.get(key)]
    if missing:
        raise ValueError(f"{card_path(model_path)} lacks {', '.join(missing)}: save the champion with "
                         "`python -m ferlib champion` (it scores, calibrates and writes them)")
    if pooled := card.get("pooled_with"):
        raise ValueError(f"it is pooled with {pooled['model']}: a network ships alone; ship the copy that is not "
                         "pooled, then pool the shipped model (`python -m ferlib pool`)")
    target = assets / shipped.SHIPPED_MODELS[shipped_name(card)]
    copy_slim(model_path, target, comparison)
    remove_partner_copy(target)  # the replaced network's own partner
    if data_dir is not None:
        choose_preprocessing(target, data_dir)
    convert_for_litert(target, data_dir)
    return json.loads(card_path(target).read_text())


def copy_slim(model_path: Path, target: Path, comparison: dict[str, Any] | None = None,
              drop: tuple[str, ...] = ()) -> None:
    """Save a saved model's network at `target` without optimizer state, with its card (less the entries `drop`
    names) and a `shipped` entry (source, size, sha256, the `comparison` when given; the source's LiteRT files are
    not copied)."""
    card = json.loads(card_path(model_path).read_text())
    files.save_model(keras.models.load_model(model_path, compile=False), target)
    card = card | {"name": target.stem, "shipped": {
        "from": Path(model_path).name, "size_bytes": target.stat().st_size, "sha256": sha256_of(target),
        "optimizer_state": "none (weights only; train again to fine-tune)",
        **({"chosen_over_previous": comparison} if comparison else {})}}
    for entry in ("litert", *drop):
        card.pop(entry, None)
    write_result(card_path(target), card)


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
    on (drawn again from `data_dir`), each in its card's test-time views, and test the difference with McNemar;
    ValueError when their cards do not name the same split (seed, profile, data fingerprint)."""
    loaded = {"candidate": load_with_card(candidate),
              "shipped": load_with_card(incumbent or shipped.shipped_model_path(shipped_name(read_card(candidate))))}
    splits = {name: ((m.card.get("provenance") or {}).get("seed"), (m.card.get("data") or {}).get("fingerprint"),
                     (m.card.get("provenance") or {}).get("profile")) for name, m in loaded.items()}
    if splits["candidate"] != splits["shipped"] or None in splits["candidate"]:
        raise ValueError(f"the two models were not chosen on the same validation split (seed, data fingerprint, "
                         f"profile: candidate {splits['candidate']}, shipped {splits['shipped']}); compare them "
                         "on a test set instead")
    internal = chosen_on(loaded["candidate"].card, data_dir, cache_dir)  # the same split as the shipped one's
    evaluations = {}
    for name, m in loaded.items():
        x_val, y_val = internal.images(internal.val, m.image_size, m.preprocessing), internal.labels(internal.val)
        flip, shift = tta_settings(m.card)
        evaluations[name] = evaluate_model(m.model, x_val, y_val, m.classes, tta_flip=flip, tta_shift=shift)
    y_val = evaluations["candidate"].y_true
    test = mcnemar(y_val, evaluations["shipped"].y_pred, evaluations["candidate"].y_pred)
    accuracy = {name: float(e.accuracy) for name, e in evaluations.items()}
    return {"split": {"seed": splits["candidate"][0], "data_fingerprint": internal.fingerprint, "n": int(len(y_val))},
            "candidate": {"model": Path(candidate).name, "accuracy": accuracy["candidate"],
                          "views": loaded["candidate"].card["tta"]["mode"]},
            "shipped": {"model": loaded["shipped"].card.get("shipped", {}).get("from", loaded["shipped"].path.name),
                        "accuracy": accuracy["shipped"], "views": loaded["shipped"].card["tta"]["mode"]},
            "difference": accuracy["candidate"] - accuracy["shipped"], "mcnemar": test.to_dict()}
