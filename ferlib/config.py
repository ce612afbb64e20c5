"""Profiles (smoke / cpu / full) and the experiment registry (V1 ... V13), all as data.

A profile says how much work a run may do (data size, epochs, weights); an experiment says what
the study trained. `get_experiment(key, profile)` returns the study's settings for ``full`` and
the scaled-down settings for ``cpu`` and ``smoke``. Notebooks never restate these numbers.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Profile:
    """How much work a run may do, and on which data when none is given."""

    name: str
    description: str
    embedded_internal: int  # images in the generated internal set
    embedded_external: int  # images in the generated external set
    max_train: int | None  # stratified cap on training images (None: all)
    max_val: int | None  # stratified cap on validation images (None: all)
    max_external: int | None  # stratified cap on external test images (None: all)
    batch_size: int
    weights: str  # backbone weights: "imagenet" or "random"
    mixed_precision: bool


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke", description="tests and CI: tiny data, one epoch, each notebook well under a minute",
        embedded_internal=400, embedded_external=200, max_train=320, max_val=120, max_external=150,
        batch_size=32, weights="random", mixed_precision=False,
    ),
    "cpu": Profile(
        name="cpu", description="default without a GPU: smaller inputs, subsets and fewer epochs",
        embedded_internal=6000, embedded_external=2000, max_train=None, max_val=None, max_external=None,
        batch_size=64, weights="random", mixed_precision=False,
    ),
    "full": Profile(
        name="full", description="default with a GPU: the study's exact settings",
        embedded_internal=20000, embedded_external=6000, max_train=None, max_val=None, max_external=None,
        batch_size=64, weights="imagenet", mixed_precision=True,
    ),
}


@dataclass(frozen=True)
class Phase:
    """One training phase: how long, how fast, and which backbone layers learn."""

    epochs: int
    learning_rate: float
    trainable_from: int | None = None  # None: backbone frozen; 0: all layers; 140: from layer 140 on
    early_stopping_patience: int | None = None
    monitor: str = "val_loss"


@dataclass(frozen=True)
class Experiment:
    """One of the study's experiments (V1 ... V13) under one profile."""

    key: str
    title: str
    backbone: str  # "custom_cnn" | "mobilenetv2" | "efficientnetb0" | "resnet50v2"
    image_size: int
    class_weights: bool
    augmentation: str  # "none" | "geometric" | "photometric"
    phases: tuple[Phase, ...]
    profile: str = "full"
    notes: str = ""

    def settings(self) -> dict[str, Any]:
        """Return the settings that determine the result, as plain data (for keys and provenance)."""
        return dataclasses.asdict(self)


# The study's settings. Where the study is silent, the value is this project's choice and `notes` says so.
_STUDY_EXPERIMENTS: dict[str, Experiment] = {
    "V1": Experiment(
        key="V1", title="Custom CNN (baseline)", backbone="custom_cnn", image_size=96,
        class_weights=False, augmentation="none",
        phases=(Phase(epochs=30, learning_rate=1e-3, early_stopping_patience=5, monitor="val_accuracy"),),
        notes="The study gives neither V1's layers nor its schedule: three conv blocks, a 128-unit dense "
              "layer and 30 epochs with early stopping on validation accuracy are this project's choice.",
    ),
}

# Scaled-down settings per profile: fields replaced in the study's entry.
_PROFILE_OVERRIDES: dict[str, dict[str, dict[str, Any]]] = {
    "cpu": {
        "V1": dict(image_size=48, phases=(Phase(epochs=15, learning_rate=1e-3, early_stopping_patience=4,
                                                monitor="val_accuracy"),)),
    },
    "smoke": {
        "V1": dict(image_size=48, phases=(Phase(epochs=1, learning_rate=1e-3),)),
    },
}


def experiment_keys() -> list[str]:
    """Return the registered experiment keys in the study's order."""
    return list(_STUDY_EXPERIMENTS)


def get_experiment(key: str, profile: str | Profile) -> Experiment:
    """Return experiment `key` with the settings of `profile` applied."""
    name = profile.name if isinstance(profile, Profile) else profile
    if key not in _STUDY_EXPERIMENTS:
        raise KeyError(f"unknown experiment {key!r}; known: {', '.join(experiment_keys())}")
    if name not in PROFILES:
        raise KeyError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")
    base = _STUDY_EXPERIMENTS[key]
    return dataclasses.replace(base, profile=name, **_PROFILE_OVERRIDES.get(name, {}).get(key, {}))


def gpu_available() -> bool:
    """Return True when TensorFlow sees at least one GPU."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def resolve_profile(name: str | None = "auto") -> Profile:
    """Return the named profile; "auto" (or None) means `full` with a GPU and `cpu` without."""
    if name in (None, "", "auto"):
        name = "full" if gpu_available() else "cpu"
    if name not in PROFILES:
        raise KeyError(f"unknown profile {name!r}; choose one of: auto, {', '.join(PROFILES)}")
    return PROFILES[name]


@dataclass(frozen=True)
class RunSettings:
    """Everything a notebook needs to know about where it runs: profile, seed and folders."""

    profile: Profile
    seed: int
    output_dir: Path
    cache_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def figures_dir(self, notebook: str) -> Path:
        """Return the folder for one notebook's figures."""
        return self.output_dir / "figures" / notebook


def run_settings(profile: str | None = "auto", seed: int = 42, output_dir: str | Path | None = None,
                 cache_dir: str | Path | None = None) -> RunSettings:
    """Return the resolved settings for a run (FERLIB_CACHE_DIR may move the cache)."""
    out = Path(output_dir) if output_dir else PROJECT_ROOT / "outputs"
    cache = Path(cache_dir or os.environ.get("FERLIB_CACHE_DIR") or out / "cache")
    return RunSettings(profile=resolve_profile(profile), seed=int(seed), output_dir=out.resolve(),
                       cache_dir=cache.resolve())
