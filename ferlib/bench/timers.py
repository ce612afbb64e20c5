"""Speed measurements: feature-cached versus through-backbone head training, and training throughput.

Results are plain dicts (written as JSON by the command line), never asserted in tests.
"""
from __future__ import annotations

import dataclasses
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ferlib.config import PROFILES
from ferlib.data.arrays import load_images
from ferlib.data.augment import build_augmentation
from ferlib.data.manifest import build_manifest, usable
from ferlib.data.pipeline import make_dataset
from ferlib.data.sources import detect_source
from ferlib.evaluation.results import cpu_model
from ferlib.experiments import Phase, get_experiment
from ferlib.models.builders import build_model, is_transfer, set_trainable_from
from ferlib.training.train import precision_policy, train_experiment


def _machine() -> dict[str, Any]:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    details = [tf.config.experimental.get_device_details(g).get("device_name", "GPU") for g in gpus]
    return {"cpu": cpu_model(), "platform": platform.platform(), "processor": platform.machine(),
            "cpus": _cpu_count(), "gpus": details, "tensorflow": tf.__version__}


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _synthetic_batch(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), np.arange(n) % 5


def feature_cache_speedup(backbone: str = "resnet50v2", n_images: int = 512, image_size: int = 96,
                          epochs: int = 30, measured_direct_epochs: int = 3, runs_dir: Path | None = None,
                          seed: int = 0) -> dict[str, Any]:
    """Return the wall time of `epochs` head-training epochs with cached features versus through the
    frozen backbone (the latter measured over `measured_direct_epochs` and scaled per epoch)."""
    import tempfile

    x, y = _synthetic_batch(n_images, image_size, seed)
    base = dataclasses.replace(get_experiment("V12", "full"), backbone=backbone, image_size=image_size,
                               class_weights=False)
    cached_exp = dataclasses.replace(base, phases=(Phase(epochs=epochs, learning_rate=1e-4),))
    direct_exp = dataclasses.replace(base, phases=(Phase(epochs=measured_direct_epochs, learning_rate=1e-4),))
    with tempfile.TemporaryDirectory(dir=runs_dir) as tmp:
        start = time.perf_counter()
        cached = train_experiment(cached_exp, x, y, x[:64], y[:64], Path(tmp) / "cached", "bench", seed=seed,
                                  cache_features=True, verbose=0)
        cached_s = time.perf_counter() - start
        start = time.perf_counter()
        train_experiment(direct_exp, x, y, x[:64], y[:64], Path(tmp) / "direct", "bench", seed=seed,
                         cache_features=False, verbose=0)
        direct_measured_s = time.perf_counter() - start
    direct_s = direct_measured_s / measured_direct_epochs * epochs
    return {
        "what": f"{epochs} phase-1 epochs of the head on {n_images} images at {image_size}px, {backbone} frozen",
        "cached_total_s": round(cached_s, 1),
        "cached_feature_extraction_s": round(cached.timings["phase1"]["feature_extraction_s"], 1),
        "direct_measured_s": round(direct_measured_s, 1),
        "direct_measured_epochs": measured_direct_epochs,
        "direct_estimated_s": round(direct_s, 1),
        "speedup": round(direct_s / cached_s, 1),
        "machine": _machine(),
    }


def training_throughput(key: str = "V13", profile: str = "full", steps: int = 20, batch_size: int = 64,
                        weights: str | None = None, mixed_precision: bool | None = None) -> dict[str, Any]:
    """Return images/second of each phase of an experiment's network on random images (no data needed)."""
    import keras

    experiment = get_experiment(key, profile)
    mixed = PROFILES[profile].mixed_precision if mixed_precision is None else mixed_precision
    x, y = _synthetic_batch(batch_size, experiment.image_size)
    out: dict[str, Any] = {"experiment": key, "profile": profile, "image_size": experiment.image_size,
                           "batch_size": batch_size, "weights": weights or "random", "phases": []}
    with precision_policy(mixed) as used_mixed:
        model = build_model(experiment, weights, seed=0)
        out["mixed_precision"] = used_mixed
        for phase in experiment.phases:
            if is_transfer(experiment.backbone):
                set_trainable_from(model, phase.trainable_from)
            model.compile(optimizer=keras.optimizers.Adam(phase.learning_rate), loss="sparse_categorical_crossentropy")
            model.train_on_batch(x, y)  # build and trace
            start = time.perf_counter()
            for _ in range(steps):
                model.train_on_batch(x, y)
            train_s = time.perf_counter() - start
            model.predict(x, verbose=0)
            start = time.perf_counter()
            for _ in range(steps):
                model.predict_on_batch(x)
            infer_s = time.perf_counter() - start
            out["phases"].append({"trainable_from": phase.trainable_from,
                                  "train_images_per_s": round(steps * batch_size / train_s, 1),
                                  "infer_images_per_s": round(steps * batch_size / infer_s, 1)})
    out["machine"] = _machine()
    return out


def image_loading(data_dir: Path, size: int = 48, cache_root: Path | None = None) -> dict[str, Any]:
    """Return images/s for listing, decoding and resizing a training folder into arrays: cold (empty cache:
    every file decoded) and warm (manifest and arrays read back from the cache)."""
    import tempfile

    source = detect_source(Path(data_dir), "internal")
    out: dict[str, Any] = {"data": source.describe(), "size": size}
    Path(cache_root).mkdir(parents=True, exist_ok=True)  # a fresh clone has no outputs/cache yet
    with tempfile.TemporaryDirectory(dir=cache_root) as tmp:
        for run in ("cold", "warm"):
            start = time.perf_counter()
            rows = usable(build_manifest(source, Path(tmp), progress=False))
            images = load_images(rows, size, Path(tmp), progress=False)
            seconds = time.perf_counter() - start
            out[run] = {"images": int(len(images)), "seconds": round(seconds, 2),
                        "images_per_s": round(len(images) / seconds, 1)}
    out["machine"] = _machine()
    return out


def best_time(run: Callable[[], Any], min_total_s: float = 5.0, max_repeats: int = 5) -> tuple[float, int]:
    """Return (shortest time of `run`, repeats): it runs again until `min_total_s` have passed or `max_repeats`
    runs are done, so a short measurement is not one scheduler hiccup, and a long one runs once."""
    times: list[float] = []
    while len(times) < max_repeats and sum(times) < min_total_s:
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times), len(times)


def pipeline_overhead(key: str, profile: str = "cpu", steps: int = 15, batch_size: int = 64,
                      seed: int = 0, min_total_s: float = 5.0) -> dict[str, Any]:
    """Return training images/s of an experiment's network (its last phase) fed by the project's tf.data
    pipeline (augmentation included) versus `train_on_batch` on in-memory tensors, and the overhead in %.
    Each path is timed over the same `steps` batches, best of as many repeats as fit in `min_total_s`."""
    import keras

    experiment = get_experiment(key, profile)
    phase = experiment.phases[-1]
    n = steps * batch_size
    x, y = _synthetic_batch(n, experiment.image_size, seed)
    model = build_model(experiment, "random", seed=seed)
    if is_transfer(experiment.backbone):  # networks trained from scratch (V1, C1) train every layer
        set_trainable_from(model, phase.trainable_from if phase.trainable_from is not None else 10**6)
    model.compile(optimizer=keras.optimizers.Adam(phase.learning_rate), loss="sparse_categorical_crossentropy",
                  jit_compile="auto")
    augmentation = build_augmentation(experiment.augmentation, seed)
    ds = make_dataset(x, y, batch_size, training=True, seed=seed, augmentation=augmentation)
    model.fit(ds, epochs=1, verbose=0)  # compile and warm both paths before timing
    model.train_on_batch(x[:batch_size], y[:batch_size])

    def raw() -> None:
        for i in range(steps):
            model.train_on_batch(x[i * batch_size:(i + 1) * batch_size], y[i * batch_size:(i + 1) * batch_size])

    pipeline_s, repeats = best_time(lambda: model.fit(ds, epochs=1, verbose=0), min_total_s)
    raw_s, raw_repeats = best_time(raw, min_total_s)
    return {"experiment": key, "backbone": experiment.backbone, "image_size": experiment.image_size,
            "augmentation": experiment.augmentation, "trainable_from": phase.trainable_from,
            "batch_size": batch_size, "images": n, "repeats": {"pipeline": repeats, "raw": raw_repeats},
            "pipeline_images_per_s": round(n / pipeline_s, 1), "raw_images_per_s": round(n / raw_s, 1),
            "pipeline_overhead_percent": round(100 * (pipeline_s - raw_s) / raw_s, 1)}
