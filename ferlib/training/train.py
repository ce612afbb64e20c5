"""Training an experiment: seeded, checkpointed every epoch, resumable, skipped when already done.

Each run lives in ``<runs_dir>/<experiment>-<key>/`` (`run_folders`), each phase in ``phaseN/`` (checkpoints,
history.csv, a backup while it runs). A phase that trains only the head of a frozen backbone without augmentation
runs on cached pooled features, which gives the same result as training through the frozen backbone.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ferlib.classes import class_set
from ferlib.config import deterministic_run
from ferlib.data.augment import build_augmentation
from ferlib.data.manifest import class_weights
from ferlib.data.pipeline import EpochOrder, ReseedEachEpoch, make_dataset
from ferlib.evaluation.evaluate import predict_probs
from ferlib.experiments import FROM_SCRATCH, Experiment, Phase
from ferlib.models.builders import build_model, feature_extractor, head_of, is_transfer, set_trainable_from
from ferlib.models.shipped import sha256_of, shipped_model_path
from ferlib.runtime import files
from ferlib.runtime.progress import epoch_logger
from ferlib.training.callbacks import EPOCH_CLOCK_FILE
from ferlib.training.callbacks import phase_callbacks as _callbacks
from ferlib.training.objective import (
    build_mixup,
    compile_options,
    hard_labels,
    mix_batches,
    one_hot_labels,
    soft_targets,
)
from ferlib.training.run_folders import (
    DONE_FILE,
    adopt_reworded_run,
    compact_run,
    copy_first_phase,
    fit_finished_unmarked,
    read_history,
    record_training_session,
    run_key,
    trained_by_record,
)

MULTI_GPU_ENV = "FERLIB_MULTI_GPU"  # run_all.sh --multi-gpu: one replica per visible GPU (MirroredStrategy)


@dataclass
class TrainedRun:
    """A trained model with its per-epoch history and where its files are."""

    model: keras.Model
    history: pd.DataFrame  # one row per epoch: epoch, phase, accuracy, loss, val_accuracy, val_loss
    run_dir: Path
    reused: bool  # True when a finished run was loaded instead of trained
    wall_time_s: float  # training time (of the original run when reused)
    best_epoch: int  # epoch (1-based, over all phases) of the kept model
    kept_phase: int  # the phase whose best model was kept (1-based)
    weights: str  # "imagenet", "random", "none (trained from scratch)" or a file
    timings: dict  # seconds per phase, and for cached features the extraction time
    trained_by: dict | None = None  # commit, start time and machine of the run's first training start
    precision: str = "float32"  # the Keras dtype policy it trained under

    def summary(self) -> str:
        """Return the run in one line: epochs per phase, the kept epoch and its validation accuracy, wall time."""
        per_phase = self.history.groupby("phase")["epoch"].count()
        epochs = " + ".join(str(int(n)) for n in per_phase) + (" (head + fine-tuning)" if len(per_phase) == 2 else "")
        epochs += " epoch" if int(per_phase.sum()) == 1 else " epochs"
        kept = self.history.loc[self.history["epoch"] == self.best_epoch, "val_accuracy"]
        accuracy = f", validation accuracy {float(kept.iloc[0]):.1%}" if len(kept) else ""
        time_text = f"{self.wall_time_s:.0f} s" if self.wall_time_s < 120 else f"{self.wall_time_s / 60:.1f} min"
        how = "reused a finished run, trained" if self.reused else "trained"
        return (f"{how} {epochs} in {time_text}; kept epoch {self.best_epoch} (phase {self.kept_phase})"
                f"{accuracy}")

    @property
    def phase_starts(self) -> list[int]:
        """Return the first epoch of every phase after the first (for marking fine-tuning)."""
        firsts = self.history.groupby("phase")["epoch"].min()
        return [int(e) for p, e in firsts.items() if p > 1]


def weights_label(experiment: Experiment, weights: str | None) -> str:
    """Return how a run's network was initialised, as reports state it (a shipped model by its file's sha256, so
    fine-tuning another version of it is another run)."""
    if experiment.init_from:
        return f"the shipped {experiment.init_from} (sha256 {sha256_of(shipped_model_path(experiment.init_from))[:12]})"
    if not is_transfer(experiment.backbone):
        return "none (trained from scratch)"
    if experiment.from_scratch:
        return f"none ({FROM_SCRATCH})"
    return "random" if weights in (None, "random", "none") else str(weights)


def cached_predictions(path: Path, predict: Callable[[], np.ndarray], rows: int, what: str,
                       columns: int | None = None) -> np.ndarray:
    """Return the float32 predictions for `rows` images stored at `path`, else `predict()`'s, stored there (a file
    of another shape, or with values not finite, is predicted again)."""
    def read(file: Path) -> np.ndarray:
        values = np.load(file)
        if values.ndim != 2 or len(values) != rows or columns not in (None, values.shape[1]) \
                or not np.isfinite(values).all():
            raise ValueError(f"shape {values.shape} for {rows} images, or values not finite")
        return values

    cached = files.read_cache(path, read, what)
    if cached is None:
        cached = predict().astype(np.float32)
        files.save_npy(path, cached)
    return cached


def _cached_features(model: keras.Model, images: np.ndarray, path: Path, batch_size: int) -> np.ndarray:
    """Return pooled backbone features of the images, computed once and stored in the phase folder."""
    return cached_predictions(path, lambda: predict_probs(feature_extractor(model), images, batch_size), len(images),
                              "backbone features")


@dataclass
class FitJob:
    """What every phase of one training run shares: data, experiment, and how to train."""

    experiment: Experiment
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x_train, y_train, x_val, y_val
    seed: int
    batch_size: int  # global: per-replica batch x replicas
    class_weight: dict | None
    augmentation: Any  # a Keras model built outside any strategy scope, or None
    mixup: Any = None  # Keras' MixUp layer, or None
    cache_features: bool = True
    jit_compile: bool | str = "auto"
    verbose: int = 2
    deterministic: bool = False  # augmentation on one thread, so its random draws reach batches in order


def _fit_phase(model: keras.Model, phase: Phase, phase_dir: Path, job: FitJob) -> dict:
    """Train one phase (on cached features when possible); leave phaseN/best.keras; return timings."""
    x_train, y_train, x_val, y_val = job.data
    experiment, batch_size = job.experiment, job.batch_size
    transfer = is_transfer(experiment.backbone)
    if transfer:
        set_trainable_from(model, phase.trainable_from)
    head_only = transfer and phase.trainable_from is None
    timings: dict[str, float] = {}
    if head_only and job.cache_features and experiment.augmentation == "none":
        start = time.perf_counter()
        f_train = _cached_features(model, x_train, phase_dir / "features_train.npy", batch_size)
        f_val = _cached_features(model, x_val, phase_dir / "features_val.npy", batch_size)
        timings["feature_extraction_s"] = time.perf_counter() - start
        trainee, order = head_of(model), EpochOrder(len(f_train), batch_size, job.seed)
        train_ds = make_dataset(f_train, y_train, batch_size, training=True, order=order)
        val_ds = make_dataset(f_val, y_val, batch_size, training=False)
    else:
        trainee, order = model, EpochOrder(len(x_train), batch_size, job.seed, [job.augmentation, job.mixup])
        train_ds = make_dataset(x_train, y_train, batch_size, training=True, augmentation=job.augmentation,
                                deterministic=job.deterministic, order=order)
        val_ds = make_dataset(x_val, y_val, batch_size, training=False)
    if soft_targets(experiment):
        n = len(class_set(experiment.classes))
        train_ds, val_ds = one_hot_labels(train_ds, n), one_hot_labels(val_ds, n)
    if job.mixup is not None and trainee is model:
        train_ds = mix_batches(train_ds, job.mixup, job.deterministic)
    trainee.compile(**compile_options(experiment, phase, math.ceil(len(y_train) / batch_size)),
                    jit_compile=job.jit_compile)
    clock = phase_dir / EPOCH_CLOCK_FILE
    before = float(clock.read_text()) if clock.exists() else 0.0  # epochs trained before an interruption
    start = time.perf_counter()
    # order, augmentation and dropout of epoch e come from (seed, e), so a resumed epoch is the uninterrupted one
    callbacks = [ReseedEachEpoch(order, job.seed), *_callbacks(phase_dir, phase, bool(experiment.weight_average))]
    if job.verbose:  # one line per epoch on the progress stream (the terminal under run_all.sh), not in the notebook
        callbacks.append(epoch_logger(f"{experiment.key} {phase_dir.name}", phase.epochs))
    trainee.fit(train_ds, validation_data=val_ds, epochs=phase.epochs, class_weight=job.class_weight,
                callbacks=callbacks, verbose=0, shuffle=False)
    timings["fit_s"] = time.perf_counter() - start + before
    if before:
        timings["fit_s_before_resuming"] = before
    _full_model_checkpoint(model, phase_dir)
    return timings


def _full_model_checkpoint(model: keras.Model, phase_dir: Path) -> None:
    """Turn a head-only best checkpoint (trained on cached features) into the full model's checkpoint."""
    best = keras.models.load_model(phase_dir / "best.keras")
    if len(best.input_shape) == 2:  # (batch, features): the head alone
        head_of(model).set_weights(best.get_weights())
        files.save_model(model, phase_dir / "best.keras")


def _write_json(path: Path, payload: Any) -> None:
    files.write_json(path, payload, indent=None)


def distribution_strategy() -> Any:
    """Return MirroredStrategy over every GPU when several are visible and FERLIB_MULTI_GPU asks for it, else the
    default strategy: these models are small, a second replica mostly waits."""
    multi_gpu = os.environ.get(MULTI_GPU_ENV, "").strip().lower() in ("1", "true", "yes")
    gpus = tf.config.list_physical_devices("GPU")
    return tf.distribute.MirroredStrategy() if multi_gpu and len(gpus) > 1 else tf.distribute.get_strategy()


def resolve_precision(requested: str) -> str:
    """Return the Keras policy a recipe's `precision` means here ("auto": mixed_bfloat16 on a GPU-less bf16 CPU)."""
    if requested != "auto":
        return requested
    try:  # native bfloat16: AVX512_BF16 or AMX_BF16 in /proc/cpuinfo
        with open("/proc/cpuinfo") as f:
            native = bool(set(f.read().split()) & {"avx512_bf16", "amx_bf16"})
    except OSError:
        native = False
    return "mixed_bfloat16" if native and not tf.config.list_physical_devices("GPU") else "float32"


def initial_model(experiment: Experiment, weights: str | None = None, seed: int = 0) -> keras.Model:
    """Return the network an experiment starts from: `build_model`'s, with a shipped model's weights when the
    experiment fine-tunes one (`init_from`)."""
    model = build_model(experiment, weights, seed=seed)
    if experiment.init_from:
        model.load_weights(shipped_model_path(experiment.init_from))
    return model


def _train_phases(model: keras.Model, run_dir: Path, job: FitJob) -> tuple[keras.Model, dict, float]:
    """Train the phases not yet finished; return the best model, timings and earlier sessions' training time."""
    timings: dict[str, dict] = {}
    earlier = 0.0
    for i, phase in enumerate(job.experiment.phases):
        phase_dir = run_dir / f"phase{i + 1}"
        phase_dir.mkdir(exist_ok=True)
        if (phase_dir / DONE_FILE).exists():  # finished before an interruption: continue from its best
            timings[phase_dir.name] = json.loads((phase_dir / DONE_FILE).read_text())
            earlier += sum(timings[phase_dir.name].values()) - timings[phase_dir.name].get("fit_s_before_resuming", 0)
        elif fit_finished_unmarked(phase_dir):  # killed between the end of fit and the mark: finish the mark
            _full_model_checkpoint(model, phase_dir)
            clock = phase_dir / EPOCH_CLOCK_FILE
            timings[phase_dir.name] = {"fit_s": float(clock.read_text()) if clock.exists() else 0.0}
            _write_json(phase_dir / DONE_FILE, timings[phase_dir.name])
            earlier += timings[phase_dir.name]["fit_s"]
        else:
            timings[phase_dir.name] = _fit_phase(model, phase, phase_dir, job)
            _write_json(phase_dir / DONE_FILE, timings[phase_dir.name])
            earlier += timings[phase_dir.name].get("fit_s_before_resuming", 0.0)
        model = keras.models.load_model(phase_dir / "best.keras")
    return model, timings, earlier


def train_experiment(
    experiment: Experiment,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    runs_dir: Path,
    data_fingerprint: str,
    seed: int = 42,
    batch_size: int = 64,
    weights: str | None = None,
    mixed_precision: bool = False,
    cache_features: bool = True,
    jit_compile: bool | str = "auto",
    force: bool = False,
    verbose: int = 2,
    *,
    strategy: Any = None,
    mixed_precision_without_gpu: bool = False,
    deterministic: bool | None = None,
) -> TrainedRun:
    """Train (or resume, or reuse) an experiment; return the best model over its phases. `batch_size` is per
    replica of `strategy`; `mixed_precision` applies on a GPU (anywhere with `mixed_precision_without_gpu`);
    `deterministic` (default: FERLIB_DETERMINISTIC) turns on op determinism and one augmentation thread."""
    label = weights_label(experiment, weights)
    run_dir = Path(runs_dir) / f"{experiment.key}-{run_key(experiment, data_fingerprint, seed, label)}"
    done = run_dir / DONE_FILE
    if force and run_dir.exists():
        shutil.rmtree(run_dir)
    elif not force:
        adopt_reworded_run(run_dir, experiment, data_fingerprint, seed, label)
    if done.exists():
        info = json.loads(done.read_text())
        model = keras.models.load_model(run_dir / info["model"])
        return TrainedRun(model, read_history(run_dir, len(experiment.phases)), run_dir, True, info["wall_time_s"],
                          info["best_epoch"], info["kept_phase"], label, info["timings"], trained_by_record(run_dir),
                          info.get("precision", "float32"))

    run_dir.mkdir(parents=True, exist_ok=True)
    trained_by = record_training_session(run_dir, trained_by_record(run_dir), len(experiment.phases))
    files.write_json(run_dir / "settings.json", {"settings": experiment.settings(), "data": data_fingerprint,
                                                 "seed": seed, "weights": label, "trained_by": trained_by})
    copy_first_phase(run_dir)
    deterministic = deterministic_run() if deterministic is None else deterministic
    if deterministic:  # process-wide and irreversible
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(seed)
    strategy = strategy or distribution_strategy()
    # built before the strategy scope and in float32: it runs in the input pipeline, not on the replicas
    augmentation = build_augmentation(experiment.augmentation, seed)
    weighting = class_weights(hard_labels(y_train), class_set(experiment.classes)) if experiment.class_weights else None
    job = FitJob(experiment, (x_train, y_train, x_val, y_val), seed, batch_size * strategy.num_replicas_in_sync,
                 weighting, augmentation, build_mixup(experiment.mixup, seed), cache_features, jit_compile, verbose,
                 deterministic)
    precision = resolve_precision(experiment.precision)  # the recipe's applies on any device (bfloat16 on a CPU)
    if precision == "float32" and mixed_precision and (mixed_precision_without_gpu
                                                       or tf.config.list_physical_devices("GPU")):
        precision = "mixed_float16"  # the profile's: on a GPU (anywhere with mixed_precision_without_gpu)
    previous = keras.config.dtype_policy()
    if precision != "float32":
        keras.config.set_dtype_policy(precision)
    start = time.perf_counter()
    try:
        with strategy.scope():
            model, timings, earlier = _train_phases(initial_model(experiment, weights, seed), run_dir, job)
    finally:
        keras.config.set_dtype_policy(previous)
    wall = time.perf_counter() - start + earlier
    history = read_history(run_dir, len(experiment.phases))
    best_epoch, kept_phase = _best_epoch(history, experiment)
    kept = f"phase{kept_phase}/best.keras"
    if kept_phase != len(experiment.phases):
        model = keras.models.load_model(run_dir / kept)
    _write_json(done, {"model": kept, "wall_time_s": wall, "best_epoch": best_epoch, "kept_phase": kept_phase,
                       "timings": timings, "precision": precision})
    compact_run(run_dir, kept)  # after done.json: an interrupted clean-up still leaves a reusable run
    return TrainedRun(model, history, run_dir, False, wall, best_epoch, kept_phase, label, timings, trained_by,
                      precision)


def _best_epoch(history: pd.DataFrame, experiment: Experiment) -> tuple[int, int]:
    """Return (epoch, phase) of the kept model: each phase's best by its monitor, the phase best on accuracy."""
    bests = []  # each phase's best row
    for p, phase in enumerate(experiment.phases, start=1):
        rows = history.loc[history["phase"] == p, phase.monitor]
        if len(rows):
            bests.append(rows.idxmax() if phase.maximizes else rows.idxmin())
    if not bests:
        raise RuntimeError("no epochs were logged: the run's history.csv files are empty")
    kept = max(bests, key=lambda i: float(history.loc[i, "val_accuracy"]))  # the earlier phase on a tie
    return int(history.loc[kept, "epoch"]), int(history.loc[kept, "phase"])
