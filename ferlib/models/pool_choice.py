"""Choosing how a model is pooled with a partner network (``python -m ferlib pool``): the partner's weight, on the
model's validation faces that the partner did not train on, kept only when McNemar finds the pooling better than the
model alone; a saved partner is shipped beside the model as its own (``<model>.partner.keras``); the LiteRT precision
both networks run at, chosen for the pool as users run it. These need TensorFlow; predicting pooled does not
(`ferlib.models.pooling`, `ferlib.models.inference`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ferlib.evaluation.calibration import fit_calibration
from ferlib.evaluation.results import cpu_model
from ferlib.evaluation.stats import mcnemar
from ferlib.evaluation.views import average_over_views, probabilities_per_view
from ferlib.models import shipped
from ferlib.models.inference import PRECISION_CHOICES, KerasNetwork, LiteRTNetwork, litert_path, stale_reason
from ferlib.models.modelcard import load_with_card, update_card
from ferlib.models.pooling import POOL_WEIGHTS, PooledNetwork, class_positions, pooled_over_views
from ferlib.models.shipped import (
    card_preprocessing,
    learned_preprocessing,
    partner_path,
    read_card,
    sha256_of,
    tta_settings,
)
from ferlib.models.shipping import (
    PARTNER_SUFFIX,
    TIMED_BATCH,
    choose_precision,
    chosen_on,
    convert_for_litert,
    copy_slim,
    median_call_ms,
    remove_partner_copy,
    scored_beside_float32,
    timed_batch,
)


def pooling_faces(card: dict[str, Any], partner_card: dict[str, Any], data_dir: str | Path, partner_name: str,
                  cache_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (images, labels) of the faces a pooling is chosen on: the model's validation faces that its partner
    did not train on, as the model is given them; ValueError when no such face is left."""
    internal = chosen_on(card, data_dir, cache_dir)
    partner_train = set(chosen_on(partner_card, data_dir, cache_dir).train["pixel_hash"])
    rows = internal.val[~internal.val["pixel_hash"].isin(partner_train)].reset_index(drop=True)
    if rows.empty:
        raise ValueError(f"{partner_name} trained on every face of this model's validation split: nothing to choose "
                         "on")
    return internal.images(rows, int(card["input"]["size"]), card_preprocessing(card)), internal.labels(rows)


def fit_pooling(model_path: str | Path, partner: str | Path, data_dir: str | Path, alpha: float = shipped.SHIP_ALPHA,
                cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Choose the weight of a `partner` network (a shipped model's name, or a saved model: a network of its own,
    e.g. `champion --train-seed`) in a model's answers (`ferlib.models.pooling`, POOL_WEIGHTS) on the faces of its
    validation split that the partner did not train on, both networks in the model's test-time views and faces;
    when the most accurate weight beats the model alone there (McNemar p < alpha), refit the calibration on the
    pooled probabilities and record both in the card, a saved partner copied beside the model (`ship_partner`).
    Return the ``pooled_with`` entry and ``"pooled"`` (False: nothing is written); ValueError when the two learned
    other face preprocessings or no such face is left."""
    by_name = str(partner) in shipped.SHIPPED_MODELS
    own, other = load_with_card(model_path), load_with_card(shipped.resolve_model(str(partner), "--with"))
    name = str(partner) if by_name else other.path.stem
    if own.path.resolve() == other.path.resolve():
        raise ValueError(f"{name} cannot be its own partner")
    if learned_preprocessing(own.card) != learned_preprocessing(other.card):
        raise ValueError(f"{name} learned other faces (preprocessing {learned_preprocessing(other.card)}; this "
                         f"model: {learned_preprocessing(own.card)})")
    positions = class_positions(own.classes, other.classes)
    images, labels = pooling_faces(own.card, other.card, data_dir, name, cache_dir)
    views = [probabilities_per_view(KerasNetwork(m.model), images, *tta_settings(own.card)) for m in (own, other)]
    probs = {w: pooled_over_views(*views, positions, w) for w in POOL_WEIGHTS}
    right = {w: int((p.argmax(axis=1) == labels).sum()) for w, p in probs.items()}
    weight = max(POOL_WEIGHTS[1:], key=right.get)  # the smallest of the most accurate on a tie
    test = mcnemar(labels, probs[0.0].argmax(axis=1), probs[weight].argmax(axis=1))
    entry = {"model": name, "sha256": other.card["shipped"]["sha256"] if by_name else sha256_of(other.path),
             "weight": weight,
             "how": f"over the classes both know, this model's share of them split as own^{1 - weight:.1f} x "
                    f"{name}^{weight:.1f} (each normalized over them); view by view, then averaged",
             "chosen_on": {"split": f"the {len(labels):,} faces of the validation split that {name} did not train "
                                    "on, in the card's test-time views",
                           "accuracy": {f"{w:.1f}": n / len(labels) for w, n in right.items()},
                           "mcnemar_vs_alone": test.to_dict()}}
    better = right[weight] > right[0.0] and test.p_value < alpha
    if better:
        if by_name:  # a copy of an earlier partner of its own is no longer used
            remove_partner_copy(Path(model_path))
        else:  # the model's own partner: shipped beside it, found by file name
            copy = ship_partner(model_path, other.path, data_dir)
            entry |= {"file": copy.name, "sha256": read_card(copy)["shipped"]["sha256"]}
        update_card(model_path, pooled_with=entry, calibration=fit_calibration(probs[weight], labels))
        if (litert := choose_pooled_precision(model_path, data_dir, cache_dir)) is not None:
            entry |= {"litert": litert}
    return entry | {"pooled": better}


def choose_pooled_precision(model_path: str | Path, data_dir: str | Path | None, cache_dir: str | Path | None = None
                            ) -> dict[str, Any] | None:
    """Choose the LiteRT precision both networks of a pooled model run at, by `choose_precision`'s rule applied to
    the pool as users run it (as accurate as both at float32 on the faces its weight was chosen on, and faster on
    TIMED_BATCH faces), and record it as the card's ``pooled_with.litert``; return that entry. None, an earlier
    choice removed, without `data_dir` or when the two have no checked float32 LiteRT files; ValueError when the
    model is not pooled."""
    model_path = Path(model_path)
    card = read_card(model_path) or {}
    if not (entry := card.get("pooled_with")):
        raise ValueError(f"{model_path.name} is not pooled with another network")
    where = partner_path(model_path, entry)
    partner_card = read_card(where) or {}
    runnable = [p for p in PRECISION_CHOICES if p != "card" and stale_reason(card, model_path, p) is None
                and stale_reason(partner_card, where, p) is None]
    if data_dir is None or "float32" not in runnable:  # nothing to choose on: an earlier choice no longer holds
        update_card(model_path, pooled_with={k: v for k, v in entry.items() if k != "litert"})
        return None
    images, labels = pooling_faces(card, partner_card, data_dir, entry["model"], cache_dir)
    positions, views, timed = class_positions(card["classes"], partner_card["classes"]), tta_settings(card), \
        timed_batch(images)
    entries, predicted = {}, {}
    for precision in runnable:  # float32 first
        network = PooledNetwork(*(LiteRTNetwork(litert_path(path, precision)) for path in (model_path, where)),
                                positions, float(entry["weight"]))
        predicted[precision] = average_over_views(network, images, *views).argmax(axis=1)
        entries[precision] = scored_beside_float32(labels, predicted, precision) | {
            "median_ms": round(median_call_ms(network, timed), 2)}
    default, why = choose_precision(entries, labelled=True)
    litert = {"default": default, "why": why,
              "compared_on": f"the {len(labels):,} validation faces the pooling was chosen on, in the card's "
                             "test-time views, both networks at each precision",
              "timed_on": cpu_model(), "timed": f"both networks and the pooling, {TIMED_BATCH} faces a call",
              "precisions": entries}
    update_card(model_path, pooled_with=entry | {"litert": litert})
    return litert


def ship_partner(model_path: str | Path, partner_path: str | Path, data_dir: str | Path | None = None) -> Path:
    """Copy a saved network beside a model as its own pooling partner, ``<model>.partner.keras`` (without optimizer
    state), with its card (a `shipped` entry) and LiteRT files (`convert_for_litert`, checked on `data_dir`'s
    validation split when given); return the copy's path."""
    target = Path(model_path).with_name(f"{Path(model_path).stem}{PARTNER_SUFFIX}.keras")
    copy_slim(partner_path, target, drop=("pooled_with",))  # a partner answers alone
    convert_for_litert(target, data_dir)
    return target
