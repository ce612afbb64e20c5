"""The callbacks of a training phase: checkpoints (last and best), resuming, the training clock, logs, early stop."""
from __future__ import annotations

import json
import re
import shutil
import time
import warnings
from pathlib import Path

import keras
import pandas as pd

from ferlib.experiments import Phase
from ferlib.runtime.files import CacheRebuilt, atomic_path, save_model, write_text

EPOCH_CLOCK_FILE = "epoch_seconds.txt"


def _best_so_far(log: Path, phase: Phase) -> float | None:
    """Return the best monitored value logged by an interrupted phase, so resuming keeps the true best."""
    if not log.exists() or log.stat().st_size == 0:
        return None
    values = pd.read_csv(log)[phase.monitor]
    return float(values.max() if phase.maximizes else values.min()) if len(values) else None


class EpochLog(keras.callbacks.Callback):
    """Log each epoch's learning rate and wall time, and keep the phase's training time in `clock`."""

    def __init__(self, clock: Path):
        super().__init__()
        self.clock = Path(clock)
        self.before = self.start = self.epoch_start = 0.0

    def on_train_begin(self, logs=None):
        self.before = float(self.clock.read_text()) if self.clock.exists() else 0.0
        self.start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            logs["epoch_seconds"] = round(time.perf_counter() - self.epoch_start, 3)
        write_text(self.clock, f"{self.before + time.perf_counter() - self.start:.2f}")


class AtomicCheckpoint(keras.callbacks.Callback):
    """Save the model every epoch (or when `monitor` improves) to a temporary file renamed into place."""

    def __init__(self, path: Path, monitor: str | None = None, maximize: bool = True, best: float | None = None):
        super().__init__()
        self.path, self.monitor, self.maximize, self.best = Path(path), monitor, maximize, best

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor is not None:
            value = (logs or {}).get(self.monitor)
            if value is None:
                return
            if self.best is not None and (value <= self.best if self.maximize else value >= self.best):
                return
            self.best = float(value)
        save_model(self.model, self.path)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore with each backup written whole or not at all (a temporary folder renamed to
    ``epoch-NNNN``); restoring takes the newest backup that loads, removing a damaged one with a warning."""

    def _backups(self) -> list[Path]:
        """Return the backups, newest first (a backup Keras' own BackupAndRestore wrote in the folder itself too)."""
        folder = Path(self.backup_dir)
        found = [p for p in folder.iterdir() if re.fullmatch(r"epoch-\d{4}", p.name)] if folder.is_dir() else []
        legacy = [folder] if (folder / "latest.weights.h5").is_file() and not found else []
        return sorted(found, reverse=True) + legacy

    def _save_model(self):
        folder = Path(self.backup_dir)
        final = folder / f"epoch-{self._current_epoch:04d}"
        with atomic_path(final, what="a training backup") as tmp:  # a folder: removed on any error
            tmp.mkdir()
            self.model.save_weights(str(tmp / "latest.weights.h5"))
            (tmp / "training_metadata.json").write_text(
                json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen}))
            shutil.rmtree(final, ignore_errors=True)
        for older in self._backups()[1:]:
            shutil.rmtree(older, ignore_errors=True)
        for name in ("latest.weights.h5", "training_metadata.json"):  # a Keras-written backup, now superseded
            (folder / name).unlink(missing_ok=True)

    def _load_model(self):
        if not self.model.built:
            raise ValueError("BackupAndRestore needs a built model")
        for backup in self._backups():
            try:
                metadata = json.loads((backup / "training_metadata.json").read_text())
                if self.model.optimizer is not None and not self.model.optimizer.built:
                    self.model.optimizer.build(self.model.trainable_variables)
                self.model.load_weights(str(backup / "latest.weights.h5"))
                self.model._initial_epoch = int(metadata["epoch"])
                return
            except Exception as exc:  # noqa: BLE001 (a damaged backup of any kind: fall back to an older one)
                warnings.warn(f"training backup {backup.name} is unusable ({type(exc).__name__}): "
                              "resuming from the one before", CacheRebuilt, stacklevel=2)
                if backup == Path(self.backup_dir):
                    (backup / "latest.weights.h5").unlink(missing_ok=True)
                else:
                    shutil.rmtree(backup, ignore_errors=True)

    def __init__(self, backup_dir: str, history: Path | None = None):
        super().__init__(backup_dir)
        self.history = Path(history) if history else None

    def on_train_begin(self, logs=None):
        self._load_model()
        self._trim_history(int(getattr(self.model, "_initial_epoch", None) or 0))

    def on_epoch_end(self, epoch, logs=None):
        self._log_epoch(epoch, logs or {})  # the line first, the backup after: a kill between them redoes the epoch
        super().on_epoch_end(epoch, logs)

    def _log_epoch(self, epoch: int, logs: dict) -> None:
        """Add the epoch's line to the history (CSV, as Keras' CSVLogger writes it), rewriting the file atomically."""
        if self.history is None:
            return
        text = self.history.read_text() if self.history.exists() else ""
        header = text.splitlines()[0].split(",") if text else ["epoch", *sorted(logs)]
        values = {"epoch": epoch, **logs}
        line = ",".join(str(float(values[k]) if k != "epoch" else int(values[k])) if k in values else ""
                        for k in header)
        write_text(self.history, (text or ",".join(header) + "\n") + line + "\n")

    def _trim_history(self, epochs: int) -> None:
        """Keep the history's lines of the epochs the restored backup holds (a later epoch is trained again)."""
        if self.history is None or not self.history.exists():
            return
        lines = self.history.read_text().splitlines(keepends=True)
        if len(lines) > 1 + epochs:
            write_text(self.history, "".join(lines[:1 + epochs]) if epochs else "")


class PolyakAverage(keras.callbacks.Callback):
    """Validate and checkpoint the optimizer's moving average of the weights (`use_ema=True`), train on the weights:
    the average is swapped in when validation starts, and `restorer` (after the checkpoints, before the backup)
    swaps the weights back."""

    def __init__(self) -> None:
        super().__init__()
        self.average_in_model = False
        self.restorer = keras.callbacks.LambdaCallback(  # the end-of-epoch half: the weights back into the model
            on_epoch_end=lambda epoch, logs: self.swap() if self.average_in_model else None)

    def swap(self) -> None:
        """Exchange the model's trainable weights and the optimizer's moving averages of them."""
        optimizer = self.model.optimizer
        for var, average in zip(optimizer._trainable_variables, optimizer._model_variables_moving_average):
            if average is not None:
                held = keras.ops.convert_to_numpy(var)
                var.assign(keras.ops.convert_to_numpy(average))
                average.assign(held)
        self.average_in_model = not self.average_in_model

    def on_test_begin(self, logs=None):
        if not self.average_in_model:
            self.swap()

    def on_train_batch_begin(self, batch, logs=None):
        if self.average_in_model:  # validation without an epoch end (should not happen): train on the weights
            self.swap()


def phase_callbacks(phase_dir: Path, phase: Phase, weight_average: bool = False) -> list[keras.callbacks.Callback]:
    """Return the checkpointing, logging, resuming and early-stopping callbacks of one phase."""
    average = PolyakAverage() if weight_average else None
    callbacks: list[keras.callbacks.Callback] = [
        *([average] if average else []),
        EpochLog(phase_dir / EPOCH_CLOCK_FILE),
        # at the end of an epoch: checkpoints, then the history line and the backup, so that a kill before the
        # backup trains the epoch again (and logs it once) and a kill after it finds everything written
        AtomicCheckpoint(phase_dir / "last.keras"),
        AtomicCheckpoint(phase_dir / "best.keras", monitor=phase.monitor, maximize=phase.maximizes,
                         best=_best_so_far(phase_dir / "history.csv", phase)),
        *([average.restorer] if average else []),
        AtomicBackupAndRestore(str(phase_dir / "backup"), history=phase_dir / "history.csv"),
    ]
    if phase.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=phase.monitor, mode="max" if phase.maximizes else "min",
                                                       patience=phase.early_stopping_patience))
    return callbacks
