"""What `run_all.sh` will do on this machine, decided before anything is installed (standard library only).

    python -m ferlib.plan --profile auto --data DIR --external DIR [--allow-cpu] [--json]

It reads the machine (an NVIDIA GPU listed by ``nvidia-smi -L``, Kaggle's environment variables, the
TensorFlow Kaggle preinstalled), chooses where TensorFlow comes from and which profile runs, refuses the
`full` profile without a GPU or without real data (unless asked for), and estimates each notebook's wall
time from the profile's settings. run_all.sh uses it for its install, its checks and ``--dry-run``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ferlib.config import PROJECT_ROOT, Profile, capped, resolve_profile
from ferlib.data.sources import EMBEDDED, KAGGLE_DIRS, DataError, detect_source, real_data_given
from ferlib.experiments import Experiment, get_experiment
from ferlib.reports.catalog import CATALOG
from ferlib.runtime.files import write_text
from ferlib.stacks import OLDEST_KERAS, normalise, pinned_lines

TENSORFLOW_PIN = "2.21.0"
KAGGLE_ENV = ("KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE", "KAGGLE_DATA_PROXY_TOKEN")
PROTECTED = ("tensorflow", "keras", "numpy", "pandas")  # never replaced in Kaggle's image
KAGGLE_DATASETS = ("'Human Face Emotions' (the study's training data, mounted at /kaggle/input/human-face-emotions) "
                   "and 'FER-2013' (msambare/fer2013, mounted at /kaggle/input/fer2013)")

# Training throughput (images/s) at 48 px per backbone and phase kind, measured on the development CPU
# (CPU_REFERENCE) with `python -m ferlib bench gpu-check --profile cpu --check-size 48 --images 2048
# --check-epochs 2 --check-experiments V1,C1,V4,V8,V7,V13` (the same tool that measures a GPU); other sizes
# scale with the pixel count. mobilenetv2's "train" was not measured (scaled from the measured backbones by
# the tool). A GPU's own figures come from tools/gpu_check.sh (outputs/bench/gpu_check.json) when it has run.
CPU_REFERENCE = ("Intel Xeon (AVX-512 and AMX; its model number was not recorded), 2 cores, TensorFlow 2.21 CPU, "
                 "2026-11-29")
CPU_IMAGES_PER_S: dict[str, dict[str, float]] = {
    # kind: "train" (every layer the phase trains, backbone included), "frozen" (forward through a frozen
    # backbone, head trained: augmented head phases), "infer" (forward only: validation, feature caching)
    "custom_cnn": {"train": 868.0, "infer": 3856.0},
    "fer_cnn": {"train": 138.0, "infer": 591.0},
    "mobilenetv2": {"train": 145.0, "frozen": 783.0, "infer": 274.0},
    "efficientnetb0": {"train": 132.0, "frozen": 273.0, "infer": 141.0},
    "resnet50v2": {"train": 105.0, "frozen": 206.0, "infer": 94.0},
}
# Building, compiling, saving and reloading one experiment, per backbone: set so that the estimate of a
# `demo` run (where these dominate) matches its measured per-notebook times on the same CPU.
# Calibrated on 2026-12-02 (AMD EPYC family 26 model 2, no XLA in the demo) against the measured demo run.
EXPERIMENT_OVERHEAD_S = {"custom_cnn": 4.0, "fer_cnn": 10.0, "mobilenetv2": 8.0, "efficientnetb0": 20.0,
                         "resnet50v2": 20.0}
NOTEBOOK_OVERHEAD_S = 12.0  # kernel start, imports, rendering the reports
NOTEBOOK_EXPERIMENTS = {"02_baseline_cnn": ("V1",), "03_augmentation_ablations": ("V4", "V8", "V9", "V10", "V11"),
                        "04_architecture_comparison": ("V5", "V7", "V12", "V13"), "10_cpu_champion": ("C1",)}
PER_IMAGE_S = {"01_eda": 0.002, "06_external_fer2013": 0.02, "07_leakage_audit": 0.005}  # decode, score, hash
FIXED_S = {"05_champion_v13": 5.0, "09_real_photos": 6.0}
# A CPU runs the same work faster or slower than the one measured above; a short pure-Python probe (run by the
# base Python, before anything is installed) scales the estimate by how long it takes here against there.
# The probe's time where the overheads below were last calibrated against a measured `demo` run: AMD EPYC,
# family 26 model 2, 2 cores, Python 3.11.7 (0.093-0.13 s over six runs, most near 0.095; 2026-12-02).
PROBE_REFERENCE_S = 0.095
PROBE_FACTOR_RANGE = (0.5, 5.0)  # a probe far outside this range is noise, not a machine
PROBE_SAME_MACHINE = (0.75, 1.33)  # the probe varies this much from run to run on one (shared) machine: no scaling


def cpu_probe_s(repeats: int = 9) -> float:
    """Return twice the best of `repeats` timings of a fixed pure-Python workload (about 0.1 s on a fast core)."""
    import time

    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += (i * i) % 7
        best = min(best, time.perf_counter() - start)
    return 2 * best


def cpu_speed_factor() -> tuple[float, float]:
    """Return (factor, probe seconds): how many times longer this CPU takes than the reference one, clamped to
    PROBE_FACTOR_RANGE."""
    probe = cpu_probe_s()
    factor = probe / PROBE_REFERENCE_S
    if PROBE_SAME_MACHINE[0] <= factor <= PROBE_SAME_MACHINE[1]:
        return 1.0, probe
    low, high = PROBE_FACTOR_RANGE
    return min(high, max(low, factor)), probe


class PlanError(ValueError):
    """The run asked for cannot go ahead on this machine (the message says why and what to do)."""


@dataclass
class Machine:
    """What run_all.sh found: Python, GPUs, Kaggle, a preinstalled TensorFlow."""

    python: str
    gpus: list[str] = field(default_factory=list)
    kaggle: bool = False
    preinstalled_tensorflow: str | None = None

    @property
    def kind(self) -> str:
        """Return "kaggle", "gpu" or "cpu": how .venv is built."""
        return "kaggle" if self.kaggle else ("gpu" if self.gpus else "cpu")


def nvidia_gpus() -> list[str]:
    """Return the GPUs `nvidia-smi -L` lists (empty without the tool or a GPU)."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return []
    try:
        out = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split(":", 1)[1].split("(")[0].strip() for line in out.splitlines() if line.startswith("GPU ")]


def detect_machine(env: Mapping[str, str] | None = None) -> Machine:
    """Return the machine run_all.sh runs on."""
    env = os.environ if env is None else env
    tf = None
    for name in ("tensorflow", "tensorflow-cpu"):
        try:
            tf = f"{name} {metadata.version(name)}"
            break
        except metadata.PackageNotFoundError:
            continue
    return Machine(python=f"{sys.executable} ({sys.version.split()[0]})", gpus=nvidia_gpus(),
                   kaggle=any(env.get(k) for k in KAGGLE_ENV), preinstalled_tensorflow=tf)


def tensorflow_source(machine: Machine) -> str:
    """Return where .venv's TensorFlow comes from, in words."""
    if machine.kind == "kaggle":
        found = machine.preinstalled_tensorflow or "none found"
        return (f"preinstalled {found} (Kaggle's image, used as is: .venv sees the system packages and "
                f"{', '.join(PROTECTED)} are never replaced)")
    if machine.kind == "gpu":
        return f"tensorflow[and-cuda]=={TENSORFLOW_PIN} (GPU build, requirements/gpu.txt)"
    return f"tensorflow-cpu=={TENSORFLOW_PIN} (CPU build, requirements.txt)"


# The oldest versions of the libraries Kaggle's image brings that this project runs with, checked before anything is
# installed there: keras, the oldest the shipped model is loaded with (ferlib/stacks.py); tensorflow 2.20, the
# oldest the Kaggle-stack lane runs; numpy 2.0 brought np.bitwise_count (the leakage audit).
PROTECTED_MINIMUM = {"tensorflow": (2, 20), "keras": tuple(int(n) for n in OLDEST_KERAS.split(".")[:2]),
                     "numpy": (2, 0), "pandas": (2, 1)}
KAGGLE_SKIPPED = ("jupyterlab",)  # Kaggle's own notebook editor replaces it; .venv needs only the headless runner


def version_tuple(version: str) -> tuple[int, ...]:
    """Return the leading numbers of a version ("2.21.0rc1" -> (2, 21, 0))."""
    return tuple(int(p) for p in re.findall(r"\d+", version.split("+")[0])[:3])


def kaggle_requirements(common: Path,
                        env_python_versions: Mapping[str, str] | None = None) -> tuple[list[str], list[str]]:
    """Return (requirements to install into .venv over Kaggle's image, constraints that keep its protected packages).

    Kaggle's image already holds TensorFlow, keras, numpy, pandas and most of the rest. The notebook runner
    (requirements/notebooks.txt, included by `common`) is installed at its pinned versions, so papermill runs with
    the set it is tested with; any other requirement only when it is missing or older than its pin. TensorFlow,
    keras, numpy and pandas are never replaced, and PlanError says so when one of them is missing or too old for
    this project.
    """
    installed = {normalise(k): v for k, v in (dict(env_python_versions) if env_python_versions is not None else {
        d.metadata["Name"]: d.version for d in metadata.distributions() if d.metadata["Name"]}).items()}
    if "tensorflow" not in installed and "tensorflow-cpu" in installed:
        installed["tensorflow"] = installed["tensorflow-cpu"]
    for name, minimum in PROTECTED_MINIMUM.items():
        found = installed.get(name)
        if found is None or version_tuple(found) < minimum:
            raise PlanError(f"Kaggle's image has {name} {found or 'missing'}; this project needs {name} >= "
                            f"{'.'.join(map(str, minimum))} and never replaces it there. Pick a newer Kaggle image "
                            "(Settings > Environment: latest), or run without Kaggle's packages.")
    missing = []
    for line, source in pinned_lines(common):
        name = normalise(line.split("==")[0].split("[")[0].strip())
        if name in PROTECTED or name in KAGGLE_SKIPPED:
            continue
        pinned = line.split("==", 1)[1] if "==" in line else None
        have = installed.get(name)
        runner = source == "notebooks"
        if have is None or (pinned and (version_tuple(have) != version_tuple(pinned) if runner
                                        else version_tuple(have) < version_tuple(pinned))):
            missing.append(line)
    constraints = [f"{name}=={installed[name]}" for name in PROTECTED if name in installed]
    return missing, constraints


def requirements_file(machine: Machine) -> str:
    """Return the requirements file .venv is built from (relative to the project)."""
    return {"kaggle": "requirements/common.txt", "gpu": "requirements/gpu.txt", "cpu": "requirements.txt"}[machine.kind]


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


def describe_data(role: str, given: str | None, profile: Profile) -> dict[str, Any]:
    """Return where a role's data comes from (without generating or decoding anything) and about how many images."""
    if real_data_given(role, given):
        if given not in (None, "") and not Path(given).expanduser().exists():
            raise PlanError(f"data path not found: {given}")
        try:
            source = detect_source(given, role) if given not in (None, "") else None
        except DataError as exc:
            raise PlanError(str(exc)) from exc
        if source is None:
            env_var = {"internal": "FERLIB_DATA_DIR", "external": "FERLIB_EXTERNAL_DIR"}[role]
            path = os.environ.get(env_var) or str(KAGGLE_DIRS[role])
            source = detect_source(path, role, "environment" if os.environ.get(env_var) else "kaggle")
        return {"role": role, "origin": source.origin, "layout": source.layout, "root": str(source.root),
                "images": count_images(source.class_dir), "embedded": False}
    n = profile.embedded_internal if role == "internal" else profile.embedded_external
    return {"role": role, "origin": "embedded", "layout": "generated", "root": "(generated into the cache)",
            "images": n, "embedded": True}


def _phase_seconds(experiment: Experiment, speeds: dict[str, float], n_train: int, n_val: int) -> float:
    scale = (experiment.image_size / 48) ** 2
    if experiment.backbone == "fer_cnn" and experiment.filters:  # measured with C1's widths, (32, 64, 128, 256)
        scale *= (experiment.filters[0] / 32) ** 2
    total = 0.0
    transfer = "frozen" in speeds
    for i, phase in enumerate(experiment.phases):
        head_only = transfer and phase.trainable_from is None
        if head_only and experiment.augmentation == "none":  # cached features: one forward pass, then seconds
            total += (n_train + n_val) * scale / speeds["infer"] if i == 0 else 0.0
            continue
        kind = "frozen" if head_only else "train"
        total += phase.epochs * (n_train * scale / speeds[kind] + n_val * scale / speeds["infer"])
    return total


def estimate_seconds(profile: Profile, n_internal: int, n_external: int,
                     images_per_s: dict[str, dict[str, float]] = CPU_IMAGES_PER_S) -> dict[str, float]:
    """Return an estimated wall time per notebook: epochs x images / measured throughput per backbone and phase
    kind (scaled by input pixels), plus fixed overheads; early stopping only shortens it."""
    n_train = int(n_internal * 0.8) if profile.max_train is None else min(int(n_internal * 0.8), profile.max_train)
    n_val = int(n_internal * 0.2) if profile.max_val is None else min(int(n_internal * 0.2), profile.max_val)
    n_ext = n_external if profile.max_external is None else min(n_external, profile.max_external)
    out: dict[str, float] = {}
    for name in CATALOG:
        seconds = NOTEBOOK_OVERHEAD_S + FIXED_S.get(name, 0.0)
        if name in PER_IMAGE_S:
            seconds += PER_IMAGE_S[name] * (n_internal + n_external if name != "06_external_fer2013" else n_ext)
        for key in NOTEBOOK_EXPERIMENTS.get(name, ()):
            experiment = get_experiment(key, profile)
            train = n_train if experiment.max_train is None else min(n_train, experiment.max_train)
            runs = profile.ablation_seeds if name in ("03_augmentation_ablations", "04_architecture_comparison") else 1
            per_run = (EXPERIMENT_OVERHEAD_S[experiment.backbone]
                       + _phase_seconds(experiment, images_per_s[experiment.backbone], train, n_val))
            seconds += runs * per_run
        out[name] = round(seconds)
    return out


def make_plan(profile: str = "auto", data: str | None = None, external: str | None = None, weights: str | None = None,
              notebooks: list[str] | None = None, allow_cpu: bool = False, machine: Machine | None = None,
              max_epochs: int | None = None, seeds: int | None = None,
              gpu_measurements: Path = PROJECT_ROOT / "outputs" / "bench" / "gpu_check.json",
              cpu_factor: float | None = None) -> dict[str, Any]:
    """Return the run's plan as data, or raise PlanError when it should not start (`gpu_measurements`: the
    report of tools/gpu_check.sh, whose throughputs estimate a GPU run; `cpu_factor`: how much slower this CPU
    is than the reference one, measured with `cpu_speed_factor` when None)."""
    machine = machine or detect_machine()
    gpu = bool(machine.gpus)
    chosen = capped(resolve_profile(profile, gpu=gpu, real_data=real_data_given("internal", data)), max_epochs, seeds)
    if chosen.name == "full" and not gpu and not allow_cpu:
        raise PlanError("the full profile trains ResNet50V2 at 96 px on every image for 30 head epochs "
                        "and up to 20 fine-tuning epochs, "
                        "which takes days on a CPU, and no NVIDIA GPU is visible (nvidia-smi -L lists none). Run "
                        "the cpu profile (--profile cpu), or add --allow-cpu to run full on this CPU anyway.")
    if chosen.name == "full" and not real_data_given("internal", data) and data != EMBEDDED:
        raise PlanError(f"the full profile reproduces the study on real data, and none is given: attach the Kaggle "
                        f"datasets {KAGGLE_DATASETS}, or pass --data DIR (and --external DIR). To run full on the "
                        f"generated data anyway, pass --data {EMBEDDED} --external {EMBEDDED}.")
    internal = describe_data("internal", data, chosen)
    external_data = describe_data("external", external, chosen)
    weights = weights or chosen.weights
    selected = [name for name in CATALOG
                if not notebooks or any(name == n or name.startswith(f"{n}_") for n in notebooks)]
    selected.sort(key=lambda name: name.startswith("08_"))  # as run_all.sh runs them: the summary last
    if gpu:
        speeds, how = None, "unknown until tools/gpu_check.sh has measured this GPU"
        if gpu_measurements.is_file():
            try:
                measured = json.loads(gpu_measurements.read_text())
                speeds = dict(measured["images_per_s_48px"])
                how = f"from the throughput tools/gpu_check.sh measured on {measured.get('device', 'a GPU')}"
            except (OSError, ValueError, KeyError, TypeError) as exc:  # a damaged file: no estimate, never a crash
                how = (f"unknown: {gpu_measurements.name} is unreadable ({type(exc).__name__}); "
                       "run tools/gpu_check.sh again")
    else:
        speeds, how = CPU_IMAGES_PER_S, f"from throughput measured on the development CPU ({CPU_REFERENCE})"
        factor, probe = cpu_speed_factor() if cpu_factor is None else (cpu_factor, None)
        if probe is not None:
            how += (f", times {factor:.2f} for this CPU (a pure-Python probe took {1000 * probe:.0f} ms here, "
                    f"{1000 * PROBE_REFERENCE_S:.0f} ms there)")
    estimate = estimate_seconds(chosen, internal["images"], external_data["images"], speeds) if speeds else {}
    if not gpu:
        estimate = {name: round(seconds * factor) for name, seconds in estimate.items()}
    return {
        "python": machine.python, "machine": machine.kind, "gpus": machine.gpus,
        "tensorflow": tensorflow_source(machine), "requirements": requirements_file(machine),
        "profile": chosen.name, "asked_profile": profile,
        "profile_description": chosen.description + (f" (epochs capped at {chosen.max_epochs}, "
                                                     f"{chosen.ablation_seeds} seed(s) per ablation)"
                                                     if chosen.max_epochs else ""),
        "data": {"internal": internal, "external": external_data}, "weights": weights,
        "notebooks": selected,
        "estimate_s": {n: estimate[n] for n in selected if n in estimate},
        "estimate_how": how + "; an estimate: epochs x images / images per second per backbone and phase, "
                              "plus overheads per experiment and notebook (early stopping and reused runs make it "
                              "shorter, other work on the machine longer)",
    }


def plan_text(plan: dict[str, Any]) -> str:
    """Return the plan as the lines run_all.sh --dry-run prints."""
    lines = [f"python:      {plan['python']}",
             f"machine:     {plan['machine']}"
             + (f" ({', '.join(plan['gpus'])})" if plan["gpus"] else " (no NVIDIA GPU)"),
             f"tensorflow:  {plan['tensorflow']}",
             f"install:     {plan['requirements']}",
             f"profile:     {plan['profile']}"
             + (f" (asked: {plan['asked_profile']})" if plan['asked_profile'] != plan['profile'] else "")
             + f": {plan['profile_description']}"]
    for role, d in plan["data"].items():
        lines.append(f"{role + ' data:':<15}{d['layout']} at {d['root']} (chosen by {d['origin']}), "
                     f"about {d['images']:,} images")
    lines.append(f"weights:     {plan['weights']}")
    lines.append(f"notebooks:   {' '.join(plan['notebooks'])}")
    if plan["estimate_s"]:
        total = sum(plan["estimate_s"].values())
        lines.append(f"expected wall time: {total / 60:.0f} min in all (an estimate)")
        lines += [f"  {name:<28} {s / 60:6.1f} min" for name, s in plan["estimate_s"].items()]
    lines.append(f"  ({plan['estimate_how']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the plan (or, with --check, only refuse what should not start); return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m ferlib.plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="auto")
    parser.add_argument("--data", default=None)
    parser.add_argument("--external", default=None)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--notebooks", default="", help="comma-separated numbers or names (default: all)")
    parser.add_argument("--allow-cpu", action="store_true")
    parser.add_argument("--max-epochs", type=int, default=None, help="cap on every phase's epochs")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per ablation")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument("--field", default=None, help="print one field of the plan (for run_all.sh)")
    parser.add_argument("--kaggle-files", type=Path, default=None,
                        help="write missing.txt and constraints.txt for installing into Kaggle's image, then stop")
    args = parser.parse_args(argv)
    if sys.version_info < (3, 11):  # noqa: UP036 (the plan runs before .venv, on whatever python3 is found)
        print(f"run_all.sh: Python 3.11 or newer is needed, this is {sys.version.split()[0]} ({sys.executable}); "
              "set PYTHON=/path/to/python3.11", file=sys.stderr)
        return 2
    if args.field == "machine":  # what .venv is built for: no profile or data checks (--tests, --setup-only)
        print(detect_machine().kind)
        return 0
    if args.kaggle_files:
        try:
            missing, constraints = kaggle_requirements(PROJECT_ROOT / "requirements" / "common.txt")
        except PlanError as exc:
            print(f"run_all.sh: {exc}", file=sys.stderr)
            return 2
        args.kaggle_files.mkdir(parents=True, exist_ok=True)
        write_text(args.kaggle_files / "missing.txt", "".join(f"{m}\n" for m in missing))
        write_text(args.kaggle_files / "constraints.txt", "".join(f"{c}\n" for c in constraints))
        print(f"{len(missing)} requirement(s) to install; kept as found: {', '.join(constraints) or 'none'}")
        return 0
    try:
        plan = make_plan(args.profile, args.data or None, args.external or None, args.weights or None,
                         [n for n in args.notebooks.split(",") if n], args.allow_cpu, max_epochs=args.max_epochs,
                         seeds=args.seeds,
                         cpu_factor=1.0 if args.field and not args.field.startswith("estimate") else None)
    except (PlanError, KeyError, ValueError) as exc:
        print(f"run_all.sh: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    if args.field:
        print(plan[args.field])
    elif args.json:
        print(json.dumps(plan, indent=2))
    else:
        print(plan_text(plan))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
