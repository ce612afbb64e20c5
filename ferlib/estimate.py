"""What a run will cost: each notebook's wall time estimated from the profile's settings and throughput measured
on a development CPU (scaled to this one by a pure-Python probe), before anything is installed (standard library).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ferlib.config import Profile
from ferlib.experiments import Experiment, first_phase_settings, get_experiment
from ferlib.reports.catalog import CATALOG

# Training throughput (images/s) at 48 px per backbone and phase kind, measured on the development CPU
# (CPU_REFERENCE) with the GPU check's tool at 48 px (other sizes scale with the pixel count); mobilenetv2's
# "train" from notebook 03 trained from scratch on FER-2013 (2026-12-06, 78 s an epoch of 18,646 images).
# A GPU's own figures come from tools/gpu_check.sh (outputs/bench/gpu_check.json) when it has run.
CPU_REFERENCE = ("Intel Xeon (AVX-512 and AMX; its model number was not recorded), 2 cores, TensorFlow 2.21 CPU, "
                 "2026-11-29")
CPU_IMAGES_PER_S: dict[str, dict[str, float]] = {
    # kind: "train" (every layer the phase trains, backbone included), "frozen" (forward through a frozen
    # backbone, head trained: augmented head phases), "infer" (forward only: validation, feature caching)
    "custom_cnn": {"train": 868.0, "infer": 3856.0},
    "fer_cnn": {"train": 138.0, "infer": 591.0},
    "mobilenetv2": {"train": 250.0, "frozen": 783.0, "infer": 274.0},
    "efficientnetb0": {"train": 132.0, "frozen": 273.0, "infer": 141.0},
    "resnet50v2": {"train": 105.0, "frozen": 206.0, "infer": 94.0},
}
# Building, compiling, saving and reloading one experiment, per backbone: calibrated so that a `demo` run's
# estimate matches its measured per-notebook times (2026-12-02, AMD EPYC family 26 model 2, no XLA).
EXPERIMENT_OVERHEAD_S = {"custom_cnn": 4.0, "fer_cnn": 10.0, "mobilenetv2": 8.0, "efficientnetb0": 20.0,
                         "resnet50v2": 20.0}
NOTEBOOK_OVERHEAD_S = 12.0  # kernel start, imports, rendering the reports
NOTEBOOK_EXPERIMENTS = {"02_baseline_cnn": ("V1",), "03_augmentation_ablations": ("V4", "V8", "V9", "V10", "V11"),
                        "04_architecture_comparison": ("V5", "V7", "V12", "V13"), "10_cpu_champion": ("C1",)}
PER_IMAGE_S = {"01_eda": 0.002, "06_external_fer2013": 0.02, "07_leakage_audit": 0.005}  # decode, score, hash
FIXED_S = {"05_champion_v13": 5.0, "09_real_photos": 6.0}
# A short pure-Python probe scales the estimate to this CPU: its time here against PROBE_REFERENCE_S, measured
# where the overheads were calibrated (AMD EPYC family 26 model 2, Python 3.11.7: 0.093-0.13 s over six runs).
PROBE_REFERENCE_S = 0.095
PROBE_FACTOR_RANGE = (0.5, 5.0)  # a probe far outside this range is noise, not a machine
PROBE_SAME_MACHINE = (0.75, 1.33)  # the probe varies this much from run to run on one (shared) machine: no scaling


def cpu_probe_s(repeats: int = 9) -> float:
    """Return twice the best of `repeats` timings of a fixed pure-Python workload (about 0.1 s on a fast core)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += (i * i) % 7
        best = min(best, time.perf_counter() - start)
    return 2 * best


def cpu_speed_factor() -> tuple[float, float]:
    """Return (factor, probe seconds): how many times longer this CPU takes than the reference one."""
    probe = cpu_probe_s()
    factor = probe / PROBE_REFERENCE_S
    if PROBE_SAME_MACHINE[0] <= factor <= PROBE_SAME_MACHINE[1]:
        return 1.0, probe
    low, high = PROBE_FACTOR_RANGE
    return min(high, max(low, factor)), probe


def count_images(root: Path, limit: int = 500_000) -> int:
    """Return how many files lie under `root` (a quick count for estimates; rows for a CSV)."""
    if root.is_file():
        with root.open("rb") as fh:
            return max(sum(1 for _ in fh) - 1, 0)
    n = 0
    for _, _, files in os.walk(root):
        n += len(files)
        if n > limit:
            break
    return n


def _phase_seconds(experiment: Experiment, speeds: dict[str, float], n_train: int, n_val: int,
                   first_copied: bool = False) -> float:
    scale = (experiment.image_size / 48) ** 2
    if experiment.backbone == "fer_cnn" and experiment.filters:  # measured with C1's widths, (32, 64, 128, 256)
        scale *= (experiment.filters[0] / 32) ** 2
    total = 0.0
    transfer = "frozen" in speeds
    for i, phase in enumerate(experiment.phases):
        if i == 0 and first_copied:  # another experiment's run trained it alike (ferlib.training.copy_first_phase)
            continue
        head_only = transfer and phase.trainable_from is None
        if head_only and experiment.augmentation == "none":  # cached features: one forward pass, then seconds
            total += (n_train + n_val) * scale / speeds["infer"] if i == 0 else 0.0
            continue
        kind = "frozen" if head_only else "train"
        total += phase.epochs * (n_train * scale / speeds[kind] + n_val * scale / speeds["infer"])
    return total


def estimate_seconds(profile: Profile, n_internal: int, n_external: int,
                     images_per_s: dict[str, dict[str, float]] = CPU_IMAGES_PER_S,
                     weights: str | None = None) -> dict[str, float]:
    """Return each notebook's estimated wall time with backbone `weights` (default: the profile's): epochs x
    images / measured throughput, plus overheads."""
    n_train = int(n_internal * 0.8) if profile.max_train is None else min(int(n_internal * 0.8), profile.max_train)
    n_val = int(n_internal * 0.2) if profile.max_val is None else min(int(n_internal * 0.2), profile.max_val)
    n_ext = n_external if profile.max_external is None else min(n_external, profile.max_external)
    out: dict[str, float] = {}
    trained: set[str] = set()  # first phases trained so far (a later experiment's alike is copied)
    for name in CATALOG:
        seconds = NOTEBOOK_OVERHEAD_S + FIXED_S.get(name, 0.0)
        if name in PER_IMAGE_S:
            seconds += PER_IMAGE_S[name] * (n_internal + n_external if name != "06_external_fer2013" else n_ext)
        for key in NOTEBOOK_EXPERIMENTS.get(name, ()):
            experiment = get_experiment(key, profile, weights)
            train = n_train if experiment.max_train is None else min(n_train, experiment.max_train)
            val = n_val if experiment.max_val is None else min(n_val, experiment.max_val)
            runs = profile.ablation_seeds if name in ("03_augmentation_ablations", "04_architecture_comparison") else 1
            first = json.dumps(first_phase_settings(experiment.settings()), sort_keys=True)
            per_run = (EXPERIMENT_OVERHEAD_S[experiment.backbone]
                       + _phase_seconds(experiment, images_per_s[experiment.backbone], train, val, first in trained))
            trained.add(first)
            seconds += runs * per_run
        out[name] = round(seconds)
    return out
