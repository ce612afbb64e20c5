"""C1's training budgets: the same recipe trained for other numbers of epochs, and the learning curve they draw.

`python -m ferlib champion --epochs N` trains the recipe for N epochs as experiment ``C1_<N>epochs`` (its own run
folder, result file ``C1_<N>epochs-seed<seed>.json`` and saved model), beside the profile's own budget (``C1``)
and the ablation's short one. `learning_curve` puts every finished budget on one table, so the budget chosen is
the one that pays: validation accuracy against images seen and training time.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ferlib.config import Experiment, Profile, get_experiment, resolve_profile
from ferlib.runnames import RunName, budget_name, parse_budget

budget_key = budget_name  # the experiment key of C1's recipe (or a variant) at a budget: ferlib.runnames


def budget_variant(key: str) -> str | None:
    """Return the ablation variant of a budget key (``C1_<variant>_<N>epochs``), None for the recipe itself
    (``C1_<N>epochs``) or for a key that is no budget."""
    parsed = parse_budget(key)
    return parsed[0] if parsed else None


def is_budget_key(key: str, variants: bool = True) -> bool:
    """Return True for the key of one of C1's training budgets: ``C1_<N>epochs``, and with `variants` also a
    budget of one of its ablation variants (``C1_<variant>_<N>epochs``, `champion --variant`)."""
    from ferlib.training.ablation import ABLATIONS

    parsed = parse_budget(key)
    return parsed is not None and (parsed[0] is None or (variants and parsed[0] in ABLATIONS))


def budget_experiment(profile: str | Profile, epochs: int | None = None, variant: str | None = None) -> Experiment:
    """Return C1 under `profile` trained for `epochs` epochs: C1 itself for its own budget (or None), else the
    recipe with every phase cut or stretched to `epochs` (warm-up kept a small share) under its own key. With
    `variant` (one of the ablation's, not 'champion') the recipe so changed, under ``C1_<variant>_<N>epochs``:
    a candidate to ship that the ablation of its budget also compares with the recipe. A profile whose epochs
    are capped (`run_all.sh --max-epochs`, a check of the code path) caps `epochs` too."""
    from ferlib.training.ablation import ABLATIONS, ablation_variant
    from ferlib.training.cpu_champion import CHAMPION_KEY

    profile = resolve_profile(profile) if isinstance(profile, str) else profile
    base = get_experiment(CHAMPION_KEY, profile)
    if epochs is not None and epochs < 1:
        raise ValueError(f"a training budget needs at least one epoch, got {epochs}")
    if variant is not None and (variant not in ABLATIONS or variant == "champion"):
        raise KeyError(f"unknown variant {variant!r}; known: {', '.join(n for n in ABLATIONS if n != 'champion')}")
    own = sum(phase.epochs for phase in base.phases)
    if epochs is not None and profile.max_epochs:
        epochs = min(epochs, profile.max_epochs)
    if variant is None and (epochs is None or epochs == own):
        return base
    epochs = epochs or own
    changed = ablation_variant(variant or "champion", profile, epochs)
    title = f"{base.title}{', ' + variant if variant else ''}, {epochs} epochs"
    return dataclasses.replace(changed, key=budget_key(epochs, variant), title=title)


def learning_curve(results: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Return one row per finished training budget: the epochs, the images seen (epochs x training images),
    the training time, the precision, the training accuracy of the last epoch (augmented images: how far the
    network fits what it trains on), and the validation accuracy of the kept model plain and in its best
    test-time mode, from results named {label: result} (`budget_results`), and what the step from the
    previous row bought: points of best-mode validation accuracy per doubling of the images seen.
    Only results on the same validation images are comparable; rows are sorted by images seen."""
    from ferlib.training.cpu_champion import TTA_LABELS

    rows = []
    for label, r in results.items():
        scores = r.get("validation_scores") or {}
        if not scores:
            continue
        best_mode = max(scores, key=lambda mode: scores[mode]["accuracy"])
        history = r.get("history") or {}
        epochs = int(r.get("epochs_run") or len(history.get("epoch", [])))
        fitted = (history.get("accuracy") or [float("nan")])[-1]  # on augmented images, as training sees them
        n_train = int(r.get("n_train") or r.get("max_train") or 0)
        rows.append({"run": label, "epochs": epochs, "training images": n_train,
                     "images seen (millions)": epochs * n_train / 1e6,
                     "training time (min)": r.get("training_time_s", float("nan")) / 60,
                     "precision": r.get("precision", "float32"),
                     "train accuracy (last epoch)": fitted, "val accuracy (plain)": scores["plain"]["accuracy"],
                     "val accuracy (best mode)": scores[best_mode]["accuracy"],
                     "best mode": TTA_LABELS.get(best_mode, best_mode), "n (val)": scores["plain"]["n"]})
    columns = ["run", "epochs", "training images", "images seen (millions)", "training time (min)", "precision",
               "train accuracy (last epoch)", "val accuracy (plain)", "val accuracy (best mode)", "best mode",
               "n (val)"]
    table = pd.DataFrame(rows, columns=columns)
    table = table.sort_values(["images seen (millions)", "epochs"], kind="stable").set_index("run")
    # what the step from the previous budget bought per doubling of the images seen (best mode, points)
    doublings = np.log2(table["images seen (millions)"] / table["images seen (millions)"].shift(1))
    gain = table["val accuracy (best mode)"].diff() * 100 / doublings.where(doublings > 0)
    table["val gain per doubling (points)"] = gain.astype(float)
    return table


def budget_results(results_dir: Path, seed: int, ablation: bool = True) -> dict[str, dict[str, Any]]:
    """Return the results a learning curve is drawn from, found in a profile's results folder, {label: result}:
    the ablation's full recipe at each of its budgets (with `ablation`), C1 itself, and every other budget
    (``C1_<N>epochs``; not the variants' ``C1_<variant>_<N>epochs``)."""
    from ferlib.training.ablation import ABLATION_EPOCHS, ablation_champions
    from ferlib.training.cpu_champion import CHAMPION_KEY

    folder = Path(results_dir)
    found: dict[str, dict[str, Any]] = {}
    if ablation:
        for (epochs, max_train), result in ablation_champions(folder, seed).items():
            short = epochs == ABLATION_EPOCHS and not max_train
            found["ablation budget (full recipe)" if short or not found else
                  f"ablation budget (full recipe, {epochs} epochs" + (f", {max_train} images)" if max_train else ")")
                  ] = result
    names = {"C1": CHAMPION_KEY}
    for path in sorted(folder.glob(RunName.pattern("C1_", seed, "epochs"))):
        key = RunName.parse(path.name).name
        if is_budget_key(key, variants=False):  # the recipe's budgets; a variant is another recipe
            names[key] = key
    for label, name in names.items():
        path = folder / RunName(name, seed).file
        if path.is_file():
            found[label] = json.loads(path.read_text())
    return found
