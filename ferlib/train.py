"""Training an experiment: seeded, checkpointed every epoch, resumable, skipped when already done.

Each run lives in ``<output_dir>/runs/<experiment>-<key>/`` where the key hashes the experiment's
settings, the data fingerprint, the seed and the weights. Rerunning resumes an interrupted run
(Keras ``BackupAndRestore``) and reuses a finished one unless ``force=True``.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from ferlib.config import Experiment, Phase
from ferlib.data import class_weights, make_dataset
from ferlib.models import build_model

DONE_FILE = "done.json"


@dataclass
class TrainedRun:
    """A trained model with its per-epoch history and where its files are."""

    model: keras.Model
    history: pd.DataFrame  # one row per epoch: epoch, phase, accuracy, loss, val_accuracy, val_loss
    run_dir: Path
    reused: bool  # True when a finished run was loaded instead of trained
    wall_time_s: float  # training time (of the original run when reused)
    best_epoch: int


def run_key(experiment: Experiment, data_fingerprint: str, seed: int) -> str:
    """Return the key that names a run: it changes with any setting, the data or the seed."""
    text = json.dumps({"settings": experiment.settings(), "data": data_fingerprint, "seed": seed}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def _best_so_far(log: Path, monitor: str) -> float | None:
    """Return the best monitored value logged by an interrupted run, so resuming keeps the true best."""
    if not log.exists() or log.stat().st_size == 0:
        return None
    values = pd.read_csv(log)[monitor]
    return float(values.max() if "acc" in monitor else values.min()) if len(values) else None


def _callbacks(phase_dir: Path, phase: Phase) -> list[keras.callbacks.Callback]:
    """Return the checkpointing, logging, resuming and early-stopping callbacks of one phase."""
    mode = "max" if "acc" in phase.monitor else "min"
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.BackupAndRestore(str(phase_dir / "backup")),
        keras.callbacks.ModelCheckpoint(str(phase_dir / "last.keras")),
        keras.callbacks.ModelCheckpoint(
            str(phase_dir / "best.keras"), monitor=phase.monitor, mode=mode, save_best_only=True,
            initial_value_threshold=_best_so_far(phase_dir / "history.csv", phase.monitor),
        ),
        keras.callbacks.CSVLogger(str(phase_dir / "history.csv"), append=True),
    ]
    if phase.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=phase.monitor, mode=mode,
                                                       patience=phase.early_stopping_patience))
    return callbacks


def _read_history(run_dir: Path, n_phases: int) -> pd.DataFrame:
    """Return the joined per-epoch history of all phases, numbered from 1."""
    frames = []
    for i in range(n_phases):
        log = run_dir / f"phase{i + 1}" / "history.csv"
        if log.exists() and log.stat().st_size:
            frame = pd.read_csv(log)
            frame["phase"] = i + 1
            frames.append(frame)
    history = pd.concat(frames, ignore_index=True)
    history["epoch"] = np.arange(1, len(history) + 1)
    return history


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
    force: bool = False,
    verbose: int = 2,
) -> TrainedRun:
    """Train (or resume, or reuse) an experiment and return the best model by the phase's monitor."""
    run_dir = Path(runs_dir) / f"{experiment.key}-{run_key(experiment, data_fingerprint, seed)}"
    done = run_dir / DONE_FILE
    if force and run_dir.exists():
        shutil.rmtree(run_dir)
    if done.exists():
        info = json.loads(done.read_text())
        model = keras.models.load_model(run_dir / info["model"])
        return TrainedRun(model, _read_history(run_dir, len(experiment.phases)), run_dir, True,
                          info["wall_time_s"], info["best_epoch"])

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "settings.json").write_text(json.dumps(
        {"settings": experiment.settings(), "data": data_fingerprint, "seed": seed}, indent=2))
    keras.utils.set_random_seed(seed)
    train_ds = make_dataset(x_train, y_train, batch_size, training=True, seed=seed)
    val_ds = make_dataset(x_val, y_val, batch_size, training=False)
    weights = class_weights(y_train) if experiment.class_weights else None
    model = build_model(experiment)
    start = time.perf_counter()
    for i, phase in enumerate(experiment.phases):
        phase_dir = run_dir / f"phase{i + 1}"
        phase_dir.mkdir(exist_ok=True)
        model.compile(optimizer=keras.optimizers.Adam(phase.learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(train_ds, validation_data=val_ds, epochs=phase.epochs, class_weight=weights,
                  callbacks=_callbacks(phase_dir, phase), verbose=verbose, shuffle=False)
        model = keras.models.load_model(phase_dir / "best.keras")
    wall = time.perf_counter() - start
    history = _read_history(run_dir, len(experiment.phases))
    monitor = experiment.phases[-1].monitor
    best_epoch = int(history.loc[history[monitor].idxmax() if "acc" in monitor else history[monitor].idxmin(), "epoch"])
    last_phase = f"phase{len(experiment.phases)}/best.keras"
    done.write_text(json.dumps({"model": last_phase, "wall_time_s": wall, "best_epoch": best_epoch}))
    return TrainedRun(model, history, run_dir, False, wall, best_epoch)
