"""Running a registered experiment end to end: train (or reuse), evaluate, write the result file."""
from __future__ import annotations

import dataclasses
import gc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import pandas as pd

from ferlib.config import RunSettings
from ferlib.data.manifest import stratified_subset
from ferlib.data.run_data import InternalData, prepare_internal
from ferlib.evaluation.evaluate import Evaluation, evaluate_model
from ferlib.evaluation.results import RESULT_SCHEMA, provenance, result_path, write_result
from ferlib.experiments import Experiment, get_experiment
from ferlib.runtime.progress import say
from ferlib.training.teachers import Teachers
from ferlib.training.train import TrainedRun, train_experiment
from ferlib.weights import choose_weights


@dataclass
class ExperimentOutcome:
    """What one experiment produced: its settings, trained run, evaluation, result and result file."""

    experiment: Experiment
    run: TrainedRun
    evaluation: Evaluation
    result: dict[str, Any]
    result_file: Path


def overfitting(history: pd.DataFrame) -> dict[str, float]:
    """Return how far validation loss rose after its minimum (the study's sign of overfitting in V1)."""
    best = int(history["val_loss"].idxmin())
    return {
        "min_val_loss": float(history.loc[best, "val_loss"]),
        "min_val_loss_epoch": int(history.loc[best, "epoch"]),
        "final_val_loss": float(history["val_loss"].iloc[-1]),
        "val_loss_rise": float(history["val_loss"].iloc[-1] - history.loc[best, "val_loss"]),
        "final_train_minus_val_accuracy": float(history["accuracy"].iloc[-1] - history["val_accuracy"].iloc[-1]),
    }


def overfitting_sentence(result: dict[str, Any]) -> str:
    """Return the overfitting entry of a result in words: where validation loss was lowest and how far it
    rose by the last epoch (or that it never rose)."""
    o, epochs = result["overfitting"], len(result["history"]["epoch"])
    if o["min_val_loss_epoch"] >= epochs or o["val_loss_rise"] <= 0:
        return f"validation loss lowest at the last epoch ({o['final_val_loss']:.3f}): no sign of overfitting yet"
    return (f"validation loss lowest at epoch {o['min_val_loss_epoch']} of {epochs} ({o['min_val_loss']:.3f}), "
            f"then rose {o['val_loss_rise']:.3f} by the last")


def run_experiment(key: str | Experiment, settings: RunSettings, internal: InternalData, weights: str | None = None,
                   force: bool = False, verbose: int = 2, result_name: str | None = None,
                   train_seed: int | None = None, teachers: Teachers | None = None) -> ExperimentOutcome:
    """Train (or resume, or reuse) experiment `key` (a registry key or an Experiment) on the internal data,
    evaluate on validation and write the result (named `result_name`, default the key). `train_seed` seeds
    initialisation, epoch order and augmentation (default: the run's seed, which always draws the split);
    `teachers` give a distilling experiment its targets."""
    weights = choose_weights(weights, settings.profile.weights)[0]
    experiment = key if isinstance(key, Experiment) else get_experiment(key, settings.profile, weights)
    key = experiment.key
    if internal.classes.name != experiment.classes:
        raise ValueError(f"{key} learns the classes {experiment.classes}, the data was prepared for "
                         f"{internal.classes.name}")
    train_rows = stratified_subset(internal.train, experiment.max_train, settings.seed)
    size, preprocessing = experiment.image_size, experiment.preprocessing
    x_train, y_train = internal.images(train_rows, size, preprocessing), internal.labels(train_rows)
    x_val, y_val = internal.images(internal.val, size, preprocessing), internal.labels(internal.val)
    checked = stratified_subset(internal.val, experiment.max_val, settings.seed)  # validated on while training
    x_check, y_check = (x_val, y_val) if experiment.max_val is None else (
        internal.images(checked, size, preprocessing), internal.labels(checked))
    targets, fingerprint = y_train, internal.fingerprint
    if experiment.distill:
        if teachers is None or len(teachers.models) != experiment.teachers:
            raise ValueError(f"{key} distils from {experiment.teachers} teachers; pass them (got "
                             f"{0 if teachers is None else len(teachers.models)})")
        targets = teachers.targets(x_train, y_train, experiment.distill)
        fingerprint = f"{fingerprint}+teachers-{teachers.key}"  # other teachers: another run
    seed = settings.seed if train_seed is None else int(train_seed)
    run = train_experiment(experiment, x_train, targets, x_check, y_check, settings.output_dir / "runs",
                           fingerprint, seed=seed, batch_size=settings.profile.batch_size,
                           weights=weights, mixed_precision=settings.profile.mixed_precision,
                           jit_compile=settings.profile.jit_compile, force=force,
                           verbose=verbose)
    evaluation = evaluate_model(run.model, x_val, y_val, internal.classes.names, batch_size=settings.profile.batch_size,
                                tta_flip=experiment.tta_flip)
    result = {"schema": RESULT_SCHEMA, "experiment": key, "title": experiment.title, "settings": experiment.settings(),
              "validation": evaluation.to_dict(), "history": run.history.to_dict(orient="list"),
              "best_epoch": run.best_epoch, "kept_phase": run.kept_phase, "phase_starts": run.phase_starts,
              "timings": run.timings, "overfitting": overfitting(run.history), "n_train": int(len(train_rows)),
              "train_seed": seed, "run_dir": str(run.run_dir), "reused_finished_run": run.reused,
              "provenance": provenance(settings, {"internal": internal.describe()}, run.weights, run.wall_time_s,
                                       **({"trained": run.trained_by} if run.trained_by else {}))}
    path = write_result(result_path(settings, result_name or key), result)
    return ExperimentOutcome(experiment, run, evaluation, result, path)


def release_memory() -> None:
    """Free what one experiment held (Keras' global state and graphs, unreferenced arrays) before the next."""
    keras.backend.clear_session()
    gc.collect()


def run_over_seeds(keys: list[str], settings: RunSettings, data_dir: str | Path | None = None,
                   weights: str | None = None, force: bool = False, verbose: int = 2
                   ) -> dict[str, list[dict[str, Any]]]:
    """Run each experiment with every seed of the profile (seed, seed + 1, ...); return result dicts per key.
    Each seed draws its own split, subsets and initialisation; within one seed the validation images are shared."""
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in keys}
    seeds = settings.profile.seeds(settings.seed)
    for i, seed in enumerate(seeds, 1):
        seed_settings = dataclasses.replace(settings, seed=seed)
        internal = prepare_internal(seed_settings, data_dir, progress=False)
        for key in keys:
            say(f"--- seed {seed} ({i}/{len(seeds)}) {key}: {get_experiment(key, settings.profile).title}")
            outcome = run_experiment(key, seed_settings, internal, weights=weights, force=force, verbose=verbose)
            say(f"{key} seed {seed}: validation accuracy {outcome.evaluation.accuracy:.3f}"
                f"{' (reused)' if outcome.run.reused else ''}")
            runs[key].append(outcome.result)
            del outcome
            release_memory()  # the model, its arrays and TensorFlow's graphs go before the next experiment
    return runs
