"""The callbacks of a training phase: checkpoints (last and best), resuming, the training clock, logs, early stop."""
from __future__ import annotations

import time
from pathlib import Path

import keras
import pandas as pd

from ferlib.config import Phase
from ferlib.runtime.files import write_text

EPOCH_CLOCK_FILE = "epoch_seconds.txt"


def _best_so_far(log: Path, phase: Phase) -> float | None:
    """Return the best monitored value logged by an interrupted phase, so resuming keeps the true best."""
    if not log.exists() or log.stat().st_size == 0:
        return None
    values = pd.read_csv(log)[phase.monitor]
    return float(values.max() if phase.maximizes else values.min()) if len(values) else None


class LogLearningRate(keras.callbacks.Callback):
    """Add the optimizer's learning rate and the epoch's wall time (training and validation) to the logs at the
    end of each epoch, and so to history.csv."""

    def __init__(self) -> None:
        super().__init__()
        self.start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            logs["epoch_seconds"] = round(time.perf_counter() - self.start, 3)


class EpochClock(keras.callbacks.Callback):
    """Keep the training time of a phase's finished epochs in a file, summed over interrupted sessions."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)
        self.before, self.start = 0.0, 0.0

    def on_train_begin(self, logs=None):
        self.before = float(self.path.read_text()) if self.path.exists() else 0.0
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        write_text(self.path, f"{self.before + time.perf_counter() - self.start:.2f}")


def phase_callbacks(phase_dir: Path, phase: Phase) -> list[keras.callbacks.Callback]:
    """Return the checkpointing, logging, resuming and early-stopping callbacks of one phase."""
    mode = "max" if phase.maximizes else "min"
    callbacks: list[keras.callbacks.Callback] = [
        LogLearningRate(),
        EpochClock(phase_dir / EPOCH_CLOCK_FILE),
        keras.callbacks.BackupAndRestore(str(phase_dir / "backup")),
        keras.callbacks.ModelCheckpoint(str(phase_dir / "last.keras")),
        keras.callbacks.ModelCheckpoint(
            str(phase_dir / "best.keras"), monitor=phase.monitor, mode=mode, save_best_only=True,
            initial_value_threshold=_best_so_far(phase_dir / "history.csv", phase),
        ),
        keras.callbacks.CSVLogger(str(phase_dir / "history.csv"), append=True),
    ]
    if phase.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=phase.monitor, mode=mode,
                                                       patience=phase.early_stopping_patience))
    return callbacks
