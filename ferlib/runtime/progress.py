"""Where long work reports its progress, so that reports hold results and the terminal holds the rest.

Under `run_all.sh` the environment variable ``FERLIB_PROGRESS_LOG`` names a file: progress bars, one line
per training epoch, Python warnings and TensorFlow's C++ log lines are written there, and run_all.sh shows
that file in the terminal while the notebook runs. The executed notebooks and their HTML reports then
hold results only. Without the variable (JupyterLab, the command line) everything goes to stderr as usual.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

LOG_ENV = "FERLIB_PROGRESS_LOG"
_open_logs: dict[Path, TextIO] = {}


def log_path() -> Path | None:
    """Return the progress log file named by FERLIB_PROGRESS_LOG, or None when progress goes to stderr."""
    value = os.environ.get(LOG_ENV, "").strip()
    return Path(value) if value else None


def stream() -> TextIO:
    """Return where progress is written: the progress log (appended, line-buffered) or stderr."""
    path = log_path()
    if path is None:
        return sys.stderr
    if path not in _open_logs or _open_logs[path].closed:
        path.parent.mkdir(parents=True, exist_ok=True)
        _open_logs[path] = open(path, "a", buffering=1, encoding="utf-8")
    return _open_logs[path]


def say(message: str) -> None:
    """Write one progress line (not a result: results are returned, displayed or written as files)."""
    print(message, file=stream(), flush=True)


def bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", disable: bool = False,
        unit: str = "it") -> Any:
    """Return a tqdm progress bar writing to the progress stream (a plain text bar when that is a file)."""
    to_file = log_path() is not None
    return tqdm(iterable, total=total, desc=desc, disable=disable, unit=unit, file=stream(),
                mininterval=5 if to_file else 0.5, dynamic_ncols=not to_file)


def route_warnings() -> None:
    """Send Python warnings and library log records to the progress log when there is one (so, under run_all.sh,
    to the terminal and the log, not the reports)."""
    if log_path() is None:
        return

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 (warnings' signature)
        stream().write(warnings.formatwarning(message, category, filename, lineno, line))

    warnings.showwarning = show
    logging.basicConfig(stream=stream(), format="%(levelname)s:%(name)s:%(message)s", force=True)
    for name in ("absl", "tensorflow", "keras", "matplotlib", "papermill"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    with contextlib.suppress(ImportError):  # absl keeps its own handler that writes to stderr
        from absl import logging as absl_logging

        absl_logging.get_absl_handler().python_handler.stream = stream()


def epoch_logger(label: str, epochs: int) -> Any:
    """Return a Keras callback that writes one line per epoch (and a batch bar) to the progress stream, where Keras'
    own verbose output would land in the notebook."""
    import keras

    class EpochLogger(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._start = time.perf_counter()  # the epoch's start time and batch bar (Keras begins every epoch)
            self._bar = bar(total=(self.params or {}).get("steps"), desc=f"{label} epoch {epoch + 1}/{epochs}",
                            unit="batch")

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self._bar.update(1)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self._bar.close()
            shown = ", ".join(f"{k} {float(v):.4g}" for k, v in (logs or {}).items()
                              if k not in ("learning_rate", "epoch_seconds"))
            say(f"{label} epoch {epoch + 1}/{epochs}: {shown} ({time.perf_counter() - self._start:.0f} s)")

    return EpochLogger()
