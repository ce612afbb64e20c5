"""Peak memory of one experiment at the study's data size (`python -m ferlib bench memory`).

The arrays are the size of the study's data (Human Face Emotions: 59,099 images, 80/20 split, at the
experiment's input size, uint8; random pixels, since memory does not depend on them). The experiment trains
under its profile through the real path (`train_experiment`: tf.data pipeline, feature cache, both phases,
checkpoints) with each epoch cut to a few steps, so the peak holds everything an epoch allocates without
waiting hours for one on a CPU. The peak resident memory of the process is read from the kernel.
"""
from __future__ import annotations

import dataclasses
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ferlib.config import PROFILES
from ferlib.experiments import get_experiment
from ferlib.training.train import train_experiment

STUDY_IMAGES = 59_099


def peak_rss_mb() -> float:
    """Return the process's peak resident memory in MB (Linux reports kB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def probe(key: str = "V13", profile: str = "full", images: int = STUDY_IMAGES, steps: int = 5,
          runs_dir: Path | None = None) -> dict[str, Any]:
    """Train `key` for one epoch of `steps` steps per phase on arrays of `images` images; return peak memory."""
    before = peak_rss_mb()
    settings = PROFILES[profile]
    experiment = get_experiment(key, settings)
    experiment = dataclasses.replace(experiment,
                                     phases=tuple(dataclasses.replace(p, epochs=1) for p in experiment.phases))
    size = experiment.image_size
    n_train = int(images * 0.8)
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, size=(n_train, size, size, 3), dtype=np.uint8)
    x_val = rng.integers(0, 256, size=(images - n_train, size, size, 3), dtype=np.uint8)
    y_train, y_val = np.arange(n_train) % 5, np.arange(images - n_train) % 5
    arrays_mb = (x_train.nbytes + x_val.nbytes) / 2**20
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run = train_experiment(experiment, x_train, y_train, x_val, y_val, runs_dir or Path(tmp), "memory-probe",
                               batch_size=settings.batch_size, weights="random",
                               mixed_precision=settings.mixed_precision,
                               jit_compile=settings.jit_compile, force=True, verbose=0, steps_per_epoch=steps)
        disk_mb = sum(f.stat().st_size for f in run.run_dir.rglob("*") if f.is_file()) / 2**20
    return {"experiment": key, "profile": profile, "images": images, "image_size": size,
            "arrays_mb": round(arrays_mb), "peak_rss_mb": round(peak_rss_mb()), "peak_before_mb": round(before),
            "run_folder_after_compaction_mb": round(disk_mb, 1), "steps_per_epoch": steps,
            "seconds": round(time.perf_counter() - start)}
