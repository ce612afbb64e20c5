"""Choosing how a model is pooled with a partner network (``python -m ferlib pool``), or with several of the same
classes answering as one: the partner's weight, on the model's validation faces that no partner trained on, kept
only when McNemar finds the pooling better than the model alone; saved partners are shipped beside the model as its
own (``<model>.partner.keras``, ``<model>.partner2.keras``, ...); the LiteRT precision all its networks run at,
chosen for the pool as users run it. These need TensorFlow; predicting pooled does not (`ferlib.models.pooling`,
`ferlib.models.inference`).
"""
from __future__ import annotations

from collections.abc import Sequence
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
from ferlib.models.pooling import (
    POOL_WEIGHTS,
    NetworkGroup,
    PooledNetwork,
    class_positions,
    geometric_mean,
    pooled_over_views,
)
from ferlib.models.shipped import (
    card_preprocessing,
    learned_preprocessing,
    partner_paths,
    read_card,
    replaced_partner,
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


def pooling_faces(card: dict[str, Any], partner_cards: Sequence[dict[str, Any]], data_dir: str | Path,
                  partner_name: str, cache_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (images, labels) of the faces a pooling is chosen on: the model's validation faces that none of its
    partners trained on, as the model is given them; ValueError when no such face is left."""
    internal = chosen_on(card, data_dir, cache_dir)
    partner_train = set().union(*(chosen_on(c, data_dir, cache_dir).train["pixel_hash"] for c in partner_cards))
    rows = internal.val[~internal.val["pixel_hash"].isin(partner_train)].reset_index(drop=True)
    if rows.empty:
        raise ValueError(f"{partner_name} trained on every face of this model's validation split: nothing to choose "
                         "on")
    return internal.images(rows, int(card["input"]["size"]), card_preprocessing(card)), internal.labels(rows)


def fit_pooling(model_path: str | Path, partner: str | Path | Sequence[str | Path], data_dir: str | Path,
                alpha: float = shipped.SHIP_ALPHA, cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Choose the weight of a `partner` network (a shipped model's name, or a saved model: a network of its own,
    e.g. `champion --train-seed`), or of several of the same classes answering as one (`NetworkGroup`), in a
    model's answers (`ferlib.models.pooling`, POOL_WEIGHTS) on the faces of its validation split that no partner
    trained on, all networks in the model's test-time views and faces; when the most accurate weight beats the model
    alone there (McNemar p < alpha), and a pooled model's pooling until now as well (`current_pooling`), refit the
    calibration on the pooled probabilities and record both in the card, saved partners copied beside the model
    (`ship_partners`). Return the ``pooled_with`` entry and ``"pooled"``
    (False: nothing is written); ValueError when a partner learned other face preprocessing or other classes than
    the others, is the model itself or named twice, or no such face is left."""
    partners = [partner] if isinstance(partner, (str, Path)) else list(partner)
    own = load_with_card(model_path)
    others = [load_with_card(shipped.resolve_model(str(p), "--with")) for p in partners]
    by_name = [str(p) in shipped.SHIPPED_MODELS for p in partners]
    names = [str(p) if named else Path((o.card.get("shipped") or {}).get("from", o.path.name)).stem  # as trained
             for p, named, o in zip(partners, by_name, others)]
    name = " and ".join(names)
    for n, o in zip(names, others):
        if own.path.resolve() == o.path.resolve():
            raise ValueError(f"{n} cannot be its own partner")
        if learned_preprocessing(own.card) != learned_preprocessing(o.card):
            raise ValueError(f"{n} learned other faces (preprocessing {learned_preprocessing(o.card)}; this "
                             f"model: {learned_preprocessing(own.card)})")
        if o.classes != others[0].classes:
            raise ValueError(f"partners answer as one only over the same classes: {n} knows {', '.join(o.classes)}")
    if len({o.path.resolve() for o in others}) < len(others):
        raise ValueError(f"a partner is named twice: {name}")
    positions = class_positions(own.classes, others[0].classes)
    images, labels = pooling_faces(own.card, [o.card for o in others], data_dir, name, cache_dir)
    own_views, *partner_views = (probabilities_per_view(KerasNetwork(m.model), images, *tta_settings(own.card))
                                 for m in (own, *others))
    group_views = geometric_mean(partner_views)
    probs = {w: pooled_over_views(own_views, group_views, positions, w) for w in POOL_WEIGHTS}
    right = {w: int((p.argmax(axis=1) == labels).sum()) for w, p in probs.items()}
    weight = max(POOL_WEIGHTS[1:], key=right.get)  # the smallest of the most accurate on a tie
    test = mcnemar(labels, probs[0.0].argmax(axis=1), probs[weight].argmax(axis=1))
    now = current_pooling(model_path, own_views, images, tta_settings(own.card))
    against_now = None if now is None else mcnemar(labels, now.argmax(axis=1), probs[weight].argmax(axis=1))
    named = [{"model": n, "sha256": o.card["shipped"]["sha256"] if shipped_name else sha256_of(o.path)}
             for n, shipped_name, o in zip(names, by_name, others)]
    group = (f"{name}^{weight:.1f}" if len(names) == 1 else
             " x ".join(f"{n}^{weight / len(names):.2f}" for n in names))
    entry = {**named[0], "weight": weight,
             "how": f"over the classes both know, this model's share of them split as own^{1 - weight:.1f} x "
                    f"{group} (each normalized over them); view by view, then averaged",
             "chosen_on": {"split": f"the {len(labels):,} faces of the validation split that {name} did not train "
                                    "on, in the card's test-time views",
                           "accuracy": {f"{w:.1f}": n / len(labels) for w, n in right.items()},
                           "mcnemar_vs_alone": test.to_dict(),
                           **({} if now is None else {"pooled_before": float((now.argmax(axis=1) == labels).mean()),
                                                      "mcnemar_vs_before": against_now.to_dict()})},
             **({"also": named[1:]} if len(named) > 1 else {})}
    better = right[weight] > right[0.0] and test.p_value < alpha and (  # and better than its pooling until now
        against_now is None or (against_now.only_b > against_now.only_a and against_now.p_value < alpha))
    if better:
        own_files = {i: o.path for i, (o, shipped_name) in enumerate(zip(others, by_name)) if not shipped_name}
        copies = ship_partners(model_path, own_files, data_dir)  # earlier copies no longer used are removed
        for i, copy in copies.items():
            named[i] |= {"file": copy.name, "sha256": read_card(copy)["shipped"]["sha256"]}
        entry |= named[0]  # the further partners' entries under "also" were updated in place
        update_card(model_path, pooled_with=entry, calibration=fit_calibration(probs[weight], labels))
        if (litert := choose_pooled_precision(model_path, data_dir, cache_dir)) is not None:
            entry |= {"litert": litert}
    return entry | {"pooled": better}


def current_pooling(model_path: str | Path, own_views: np.ndarray, images: np.ndarray, views: tuple[bool, int]
                    ) -> np.ndarray | None:
    """Return the pooled probabilities a model's card gives now on these faces, its network's per-view outputs
    `own_views` pooled with its partners in Keras (None when it is not pooled, or a partner is no longer the network
    its weight was chosen with: that pooling cannot answer any more, e.g. after `ship` replaced it)."""
    if not (entry := (read_card(model_path) or {}).get("pooled_with")):
        return None
    members = [load_with_card(path) for path in partner_paths(model_path, entry)]
    if replaced_partner(entry, [m.card for m in members]):
        return None
    group = geometric_mean([probabilities_per_view(KerasNetwork(m.model), images, *views) for m in members])
    return pooled_over_views(own_views, group, class_positions((read_card(model_path) or {})["classes"],
                                                               members[0].classes), float(entry["weight"]))


def choose_pooled_precision(model_path: str | Path, data_dir: str | Path | None, cache_dir: str | Path | None = None
                            ) -> dict[str, Any] | None:
    """Choose the LiteRT precision all networks of a pooled model run at, by `choose_precision`'s rule applied to
    the pool as users run it (as accurate as all at float32 on the faces its weight was chosen on, and faster on
    TIMED_BATCH faces), and record it as the card's ``pooled_with.litert``; return that entry. None, an earlier
    choice removed, without `data_dir` or when they have no checked float32 LiteRT files; ValueError when the
    model is not pooled."""
    model_path = Path(model_path)
    card = read_card(model_path) or {}
    if not (entry := card.get("pooled_with")):
        raise ValueError(f"{model_path.name} is not pooled with another network")
    where = partner_paths(model_path, entry)
    partner_cards = [read_card(w) or {} for w in where]
    runnable = [p for p in PRECISION_CHOICES if p != "card" and stale_reason(card, model_path, p) is None
                and all(stale_reason(c, w, p) is None for c, w in zip(partner_cards, where))]
    if data_dir is None or "float32" not in runnable:  # nothing to choose on: an earlier choice no longer holds
        update_card(model_path, pooled_with={k: v for k, v in entry.items() if k != "litert"})
        return None
    images, labels = pooling_faces(card, partner_cards, data_dir, entry["model"], cache_dir)
    positions, views, timed = class_positions(card["classes"], partner_cards[0]["classes"]), tta_settings(card), \
        timed_batch(images)
    entries, predicted = {}, {}
    for precision in runnable:  # float32 first
        own, *partners = (LiteRTNetwork(litert_path(path, precision)) for path in (model_path, *where))
        network = PooledNetwork(own, partners[0] if len(partners) == 1 else NetworkGroup(partners), positions,
                                float(entry["weight"]))
        predicted[precision] = average_over_views(network, images, *views).argmax(axis=1)
        entries[precision] = scored_beside_float32(labels, predicted, precision) | {
            "median_ms": round(median_call_ms(network, timed), 2)}
    default, why = choose_precision(entries, labelled=True)
    litert = {"default": default, "why": why,
              "compared_on": f"the {len(labels):,} validation faces the pooling was chosen on, in the card's "
                             "test-time views, all its networks at each precision",
              "timed_on": cpu_model(), "timed": f"all its networks and the pooling, {TIMED_BATCH} faces a call",
              "precisions": entries}
    update_card(model_path, pooled_with=entry | {"litert": litert})
    return litert


def partner_copy_path(model_path: str | Path, index: int = 0) -> Path:
    """Return where a model's own partner number `index` is shipped: ``<model>.partner.keras``, then
    ``<model>.partner2.keras``, ..."""
    return Path(model_path).with_name(f"{Path(model_path).stem}{PARTNER_SUFFIX}{index + 1 if index else ''}.keras")


def ship_partner(model_path: str | Path, partner_path: str | Path, data_dir: str | Path | None = None,
                 index: int = 0) -> Path:
    """Copy a saved network beside a model as its own pooling partner (`partner_copy_path`; without optimizer
    state), with its card (a `shipped` entry) and LiteRT files (`convert_for_litert`, checked on `data_dir`'s
    validation split when given); return the copy's path. A partner already in its place stays as it is."""
    target = partner_copy_path(model_path, index)
    if Path(partner_path).resolve() != target.resolve():
        copy_slim(partner_path, target, drop=("pooled_with",))  # a partner answers alone
        convert_for_litert(target, data_dir)
    return target


def ship_partners(model_path: str | Path, sources: dict[int, Path], data_dir: str | Path | None = None
                  ) -> dict[int, Path]:
    """Ship each saved partner (`sources`: partner number, file) beside a model (`ship_partner`) and remove the
    copies no longer used; return the copies by partner number. ValueError, nothing changed, when a source is
    another of the model's partner copies (it would be overwritten: copy it elsewhere first)."""
    targets = {i: partner_copy_path(model_path, i) for i in sources}
    copies = {p.resolve() for p in Path(model_path).parent.glob(f"{Path(model_path).stem}{PARTNER_SUFFIX}*.keras")}
    for i, source in sources.items():
        if source.resolve() in copies and source.resolve() != targets[i].resolve():
            raise ValueError(f"{source.name} is one of the model's partner copies and would be overwritten: give "
                             "it first, or copy it elsewhere")
    remove_partner_copy(Path(model_path), keep=tuple(targets.values()))
    return {i: ship_partner(model_path, source, data_dir, i) for i, source in sources.items()}
