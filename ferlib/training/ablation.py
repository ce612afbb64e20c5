"""C1's ablation: variants of the recipe that each drop or change one part, trained with one shared budget.

`run_ablation` trains the named variants (resumable, finished ones reused) and writes one result per variant,
named by its budget (`ablation_result_name`), so a longer budget never overwrites the short one. `read_ablation`
reads one budget's results back (C1's own result of that budget stands in for the full recipe when the ablation
did not train it), `ablation_budgets` lists the budgets found, and `ablation_table` compares every variant with
the full recipe on the validation split (McNemar on paired predictions).
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ferlib.config import Experiment, RunSettings, get_experiment
from ferlib.data.run_data import InternalData
from ferlib.evaluation.results import result_path, write_result
from ferlib.models.builders import float32_copy
from ferlib.runnames import ABLATION_PREFIX, RunName
from ferlib.runtime.files import write_csv
from ferlib.runtime.progress import say
from ferlib.training.cpu_champion import CHAMPION_KEY, crop_margin, evaluate_tta_modes, tta_scores
from ferlib.training.experiments import run_experiment

ABLATION_EPOCHS = 8  # the ablation's short budget: its results carry no budget in their names

# One part of the recipe dropped (or changed) per variant; "champion" is the recipe itself.
# Flip averaging needs no variant: every variant is scored with and without it.
ABLATIONS: dict[str, dict[str, Any]] = {
    "champion": {},
    "no_augmentation": {"augmentation": "none"},
    "no_label_smoothing": {"label_smoothing": 0.0},
    "constant_lr": {"schedule": "constant", "warmup_epochs": 0},
    "peak_lr_1e-3": {"learning_rate": 1e-3},
    "adam_no_weight_decay": {"optimizer": "adam", "weight_decay": 0.0},
    "wider_48_384": {"filters": (48, 96, 192, 384)},
    "narrower_16_128": {"filters": (16, 32, 64, 128)},
    "no_crop_48": {"crop": 0},
    "float32": {"precision": "float32"},
    "sgd_nesterov": {"optimizer": "sgd_nesterov", "learning_rate": 2e-2, "weight_decay": 5e-4},
    "mixup_0.2": {"mixup": 0.2},
    "weight_average_0.999": {"weight_average": 0.999},
}
ABLATION_DESCRIPTIONS = {
    "champion": "the full recipe",
    "no_augmentation": "no augmentation (mirror, affine, brightness/contrast, erasing all off)",
    "no_label_smoothing": "plain cross-entropy instead of label smoothing 0.1",
    "constant_lr": "constant learning rate instead of warm-up + cosine decay",
    "peak_lr_1e-3": "peak learning rate 1e-3 instead of 2e-3",
    "adam_no_weight_decay": "Adam without weight decay instead of AdamW",
    "wider_48_384": "widths 48-96-192-384 instead of 32-64-128-256",
    "narrower_16_128": "widths 16-32-64-128 instead of 32-64-128-256",
    "no_crop_48": "the whole 48 px face instead of its moving central 40 px (1.4x the compute)",
    "float32": "float32 throughout instead of mixed bfloat16 (on a CPU with native bfloat16)",
    "sgd_nesterov": "SGD with Nesterov momentum 0.9, peak rate 2e-2, weight decay 5e-4, instead of AdamW",
    "mixup_0.2": "mixup of each batch with a shuffled copy, weights from Beta(0.2, 0.2)",
    "weight_average_0.999": "validation, checkpoints and the kept model use a moving average of the weights "
                            "(momentum 0.999, Polyak averaging) kept beside them",
}


def ablation_result_name(name: str, epochs: int = ABLATION_EPOCHS, max_train: int | None = None) -> str:
    """Return the result name of variant `name` trained for `epochs` epochs on `max_train` images (None: all):
    ``C1_ablation_<name>`` at the short budget on all images, else with ``_<N>epochs`` and ``_<M>images``."""
    if name not in ABLATIONS:
        raise KeyError(f"unknown ablation {name!r}; known: {', '.join(ABLATIONS)}")
    suffix = "" if epochs == ABLATION_EPOCHS else f"_{int(epochs)}epochs"
    return ABLATION_PREFIX + name + suffix + (f"_{int(max_train)}images" if max_train else "")


def ablation_variant(name: str, profile: str, epochs: int | None = None, key: str = CHAMPION_KEY,
                     max_train: int | None = None) -> Experiment:
    """Return C1 under `profile` with ablation `name` applied, every phase cut to `epochs` and the
    training images capped at `max_train` (each when given)."""
    if name not in ABLATIONS:
        raise KeyError(f"unknown ablation {name!r}; known: {', '.join(ABLATIONS)}")
    base = get_experiment(key, profile)
    changes = dict(ABLATIONS[name])
    phase_changes = {k: changes.pop(k) for k in ("learning_rate",) if k in changes}
    if epochs:
        phase_changes["epochs"] = epochs
    phases = tuple(dataclasses.replace(p, **phase_changes) for p in base.phases)
    warmup = changes.pop("warmup_epochs", base.warmup_epochs)
    if epochs:  # keep the warm-up a small share of a shortened budget
        warmup = min(warmup, max(0, epochs // 8))
    if max_train:
        changes["max_train"] = max_train
    return dataclasses.replace(base, phases=phases, warmup_epochs=warmup, **changes)


def run_ablation(settings: RunSettings, internal: InternalData, names: Iterable[str] = tuple(ABLATIONS),
                 epochs: int | None = None, force: bool = False, verbose: int = 2,
                 progress=None, max_train: int | None = None) -> dict[str, dict[str, Any]]:
    """Train each named variant of C1 with the same epoch budget (None: the profile's) and training images (a
    stratified subset of `max_train` when given; resumable, finished ones reused) and write its result
    (`ablation_result_name`) with validation accuracy in every test-time mode; return {name: result}.
    `progress(name)` is called before each variant."""
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        if progress is not None:
            progress(name)
        variant = ablation_variant(name, settings.profile, epochs, max_train=max_train)
        budget = sum(phase.epochs for phase in variant.phases)
        outcome = run_experiment(variant, settings, internal, force=force, verbose=verbose,
                                 result_name=ablation_result_name(name, budget, max_train))
        x_val, y_val = internal.arrays(variant.image_size)[2:]
        evals = evaluate_tta_modes(float32_copy(outcome.run.model), x_val, y_val, settings.profile.batch_size,
                                   crop_margin(variant))
        result = dict(outcome.result)
        result |= {"ablation": name, "description": ABLATION_DESCRIPTIONS[name], "epochs_budget": budget,
                   "max_train": max_train, "validation_scores": tta_scores(evals),
                   "training_time_s": outcome.run.wall_time_s, "precision": outcome.run.precision,
                   "epochs_run": int(len(outcome.run.history))}
        out[name] = result
        write_result(outcome.result_file, result)
    return out


def result_budget(result: dict[str, Any]) -> tuple[int, int | None]:
    """Return an ablation result's budget: (epochs, training images cap or None)."""
    return int(result.get("epochs_budget") or result.get("epochs_run") or 0), result.get("max_train")


def _budget_order(budget: tuple[int, int | None]) -> tuple:
    """Sort key of budgets: the short budget on all images first, then by epochs and training images."""
    return budget != (ABLATION_EPOCHS, None), budget[0], budget[1] or 0


def _ablation_results(results_dir: Path, seed: int) -> list[dict[str, Any]]:
    """Return every ablation result of `seed` in a results folder, of every budget, and every variant trained
    as a candidate (`champion --variant`, ``C1_<variant>_<N>epochs``) as that variant at its budget, unless
    the ablation trained the same variant and budget itself."""
    from ferlib.training.budgets import budget_variant

    folder = Path(results_dir)
    found = []
    for path in sorted(folder.glob(RunName.pattern(ABLATION_PREFIX, seed))):
        result = json.loads(path.read_text())
        if result.get("ablation") in ABLATIONS and "validation_scores" in result:  # not one still training
            found.append(result)
    trained = {(r["ablation"], result_budget(r)) for r in found}
    for path in sorted(folder.glob(RunName.pattern("C1_", seed, "epochs"))):
        key = RunName.parse(path.name).name
        name = budget_variant(key)
        if name not in ABLATIONS or (result := json.loads(path.read_text())).get("max_train"):
            continue
        if "validation_scores" not in result:  # trained, not yet scored in every test-time mode
            continue
        budget = int(result.get("epochs_run") or 0)
        if (name, (budget, None)) not in trained and not (result.get("provenance") or {}).get("max_epochs"):
            found.append(result | {"ablation": name, "epochs_budget": budget, "max_train": None,
                                   "description": f"{ABLATION_DESCRIPTIONS[name]} (the result of {key})"})
    return found


def ablation_budgets(results_dir: Path, seed: int) -> list[tuple[int, int | None]]:
    """Return the budgets (epochs, training images cap or None) the ablation results in a folder were trained
    with, the short budget on all images first, then by epochs."""
    budgets = {result_budget(r) for r in _ablation_results(results_dir, seed)}
    return sorted(budgets, key=_budget_order)


def ablation_champions(results_dir: Path, seed: int) -> dict[tuple[int, int | None], dict[str, Any]]:
    """Return the full recipe's ablation results (the 'champion' variant), {budget: result}, short budget first."""
    found = {result_budget(r): r for r in _ablation_results(results_dir, seed) if r["ablation"] == "champion"}
    return {b: found[b] for b in sorted(found, key=_budget_order)}


def read_ablation(results_dir: Path, seed: int, epochs: int = ABLATION_EPOCHS,
                  max_train: int | None = None) -> dict[str, dict[str, Any]]:
    """Return the ablation results of one budget found in a results folder, {name: result} in ABLATIONS order.
    When the full recipe ('champion') was not trained as an ablation at this budget but C1 itself was (its own
    budget or ``champion --epochs N``, on all images), that result stands in for it: the same recipe, epochs,
    split and seed."""
    from ferlib.training.budgets import budget_results

    same = {r["ablation"]: r for r in _ablation_results(results_dir, seed) if result_budget(r) == (epochs, max_train)}
    if same and "champion" not in same and max_train is None:
        for label, result in budget_results(results_dir, seed, ablation=False).items():
            capped = (result.get("provenance") or {}).get("max_epochs")
            scored = "validation_scores" in result  # a run still training has written only its history
            if scored and int(result.get("epochs_run") or 0) == epochs and not capped and not result.get("max_train"):
                same["champion"] = result | {"ablation": "champion", "epochs_budget": epochs, "max_train": None,
                                             "description": f"the full recipe (the result of {label})"}
                break
    return {name: same[name] for name in ABLATIONS if name in same}


def ablation_table(results: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Return one row per variant: what changed, epochs, training images, validation accuracy plain
    (with its 95% interval), flip-averaged and five crops x flip (cropping variants), the difference
    to the champion recipe (flip TTA) with McNemar's p-value on the paired validation predictions,
    best epoch and training time."""
    rows = []
    for name, r in results.items():
        scores = r["validation_scores"]
        plain, tta = scores["plain"], scores["flip_tta"]
        crops = scores.get("crops_flip_tta", {}).get("accuracy", float("nan"))
        rows.append({"variant": name, "what changed": r.get("description", ABLATION_DESCRIPTIONS.get(name, "")),
                     "epochs": r.get("epochs_run"), "n (train)": r.get("n_train", r.get("max_train")),
                     "n (val)": plain["n"],
                     "val accuracy": plain["accuracy"], "val ci95 low": plain["ci95"][0],
                     "val ci95 high": plain["ci95"][1], "val accuracy (flip TTA)": tta["accuracy"],
                     "flip TTA gain": tta["accuracy"] - plain["accuracy"],
                     "val accuracy (5 crops x flip TTA)": crops,
                     "best epoch": r.get("best_epoch"),
                     "training time (min)": r.get("training_time_s", float("nan")) / 60})
    table = pd.DataFrame(rows).set_index("variant")
    if "champion" in table.index:
        table["vs champion (flip TTA)"] = (table["val accuracy (flip TTA)"]
                                           - table.loc["champion", "val accuracy (flip TTA)"])
        table["McNemar p vs champion"] = [_mcnemar_vs(results["champion"], r) for r in results.values()]
    return table


def ablation_table_name(epochs: int = ABLATION_EPOCHS, max_train: int | None = None) -> str:
    """Return the name of one budget's ablation table: c1_ablation for the short budget on all images, else
    with the budget appended as in `ablation_result_name`."""
    return "c1_ablation" + ablation_result_name("champion", epochs, max_train)[len(ABLATION_PREFIX + "champion"):]


def ablation_tables(results_dir: Path, seed: int) -> dict[str, tuple[str, pd.DataFrame]]:
    """Return every budget's ablation table found in a results folder, {table name: (title, table)}, the short
    budget first; the title names the budget and what the variants are compared with."""
    tables = {}
    for epochs, max_train in ablation_budgets(results_dir, seed):
        found = read_ablation(results_dir, seed, epochs, max_train)
        reference = found.get("champion", {}).get("description", "no full-recipe run at this budget yet")
        images = f" on {max_train:,} training images" if max_train else ""
        title = f"{epochs} epochs{images}; compared with {reference}"
        tables[ablation_table_name(epochs, max_train)] = (title, ablation_table(found))
    return tables


def _mcnemar_vs(reference: dict[str, Any], other: dict[str, Any]) -> float:
    """Return McNemar's p-value for two variants' flip-averaged validation predictions (same images),
    NaN when a result has no stored predictions."""
    from ferlib.evaluation.stats import decode_labels, mcnemar

    a, b = reference.get("validation", {}), other.get("validation", {})
    if not all(k in d for d in (a, b) for k in ("y_true", "y_pred")):
        return float("nan")
    return mcnemar(decode_labels(a["y_true"]), decode_labels(a["y_pred"]), decode_labels(b["y_pred"])).p_value


def ablation_from_folders(profile: str = "cpu", data_dir: str | Path | None = None,
                          epochs: int = ABLATION_EPOCHS,
                          names: Iterable[str] = tuple(ABLATIONS), seed: int = 42,
                          output_dir: str | Path | None = None, force: bool = False,
                          max_train: int | None = None,
                          external_dir: str | Path | None = None) -> tuple[pd.DataFrame, Path]:
    """Run the ablation on `data_dir`; return its table and the CSV it was written to
    (<output_dir>/tables/<profile>/<data>/c1_ablation.csv, or c1_ablation_<N>epochs.csv for another budget,
    with every variant of this budget found so far). Results go to the folder of the data pair (`data_dir`,
    `external_dir`), where the champion of the same data finds them."""
    from ferlib.config import run_settings
    from ferlib.data.run_data import keyed_settings, prepare_internal

    settings = keyed_settings(run_settings(profile, seed=seed, output_dir=output_dir), data_dir, external_dir)
    names = list(names)
    for name in names:  # an unknown variant fails before any work
        ablation_variant(name, settings.profile)
    internal = prepare_internal(settings, data_dir)
    run_ablation(settings, internal, names, epochs=epochs, force=force, max_train=max_train,
                 progress=lambda name: say(f"--- ablation variant {name}: {ABLATION_DESCRIPTIONS[name]}"))
    table = ablation_table(read_ablation(result_path(settings, "x").parent, seed, epochs, max_train))
    csv = settings.tables_dir / f"{ablation_table_name(epochs, max_train)}.csv"
    write_csv(csv, table)
    return table, csv

