"""What `run_all.sh` will do on this machine, decided before anything is installed (standard library only):
where TensorFlow comes from, which profile runs (`full` refused without a GPU or real data unless asked for),
and each notebook's estimated wall time. run_all.sh uses it for its install, its checks and ``--dry-run``.

    python -m ferlib.plan --profile auto --data DIR --external DIR [--allow-cpu] [--json]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ferlib.config import PROJECT_ROOT, Profile, capped, resolve_profile
from ferlib.data.sources import EMBEDDED, DataError, real_data_given, resolve_source
from ferlib.estimate import (
    CPU_IMAGES_PER_S,
    CPU_REFERENCE,
    PROBE_REFERENCE_S,
    count_images,
    cpu_speed_factor,
    estimate_seconds,
)
from ferlib.experiments import weights_in_use
from ferlib.reports.catalog import CATALOG
from ferlib.runtime.files import write_text
from ferlib.stacks import PROTECTED, PlanError, kaggle_requirements

TENSORFLOW_PIN = "2.21.0"
KAGGLE_ENV = ("KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE", "KAGGLE_DATA_PROXY_TOKEN")
KAGGLE_DATASETS = ("'Human Face Emotions' (the study's training data, mounted at /kaggle/input/human-face-emotions) "
                   "and 'FER-2013' (msambare/fer2013, mounted at /kaggle/input/fer2013)")


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
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):  # no such tool (FileNotFoundError), or it hung
        return []
    return [line.split(":", 1)[1].split("(")[0].strip() for line in out.splitlines() if line.startswith("GPU ")]


def detect_machine(env: Mapping[str, str] | None = None) -> Machine:
    """Return the machine run_all.sh runs on."""
    env = os.environ if env is None else env
    tf = None
    for name in ("tensorflow-cpu", "tensorflow"):  # tensorflow when both are installed
        with contextlib.suppress(metadata.PackageNotFoundError):
            tf = f"{name} {metadata.version(name)}"
    return Machine(python=f"{sys.executable} ({sys.version.split()[0]})", gpus=nvidia_gpus(),
                   kaggle=any(env.get(k) for k in KAGGLE_ENV), preinstalled_tensorflow=tf)


def tensorflow_source(machine: Machine) -> tuple[str, str]:
    """Return where .venv's TensorFlow comes from, in words, and the requirements file .venv is built from."""
    if machine.kind == "kaggle":
        return (f"preinstalled {machine.preinstalled_tensorflow or 'none found'} (Kaggle's image, used as is: .venv "
                f"sees the system packages and {', '.join(PROTECTED)} are never replaced)"), "requirements/common.txt"
    if machine.kind == "gpu":
        return f"tensorflow[and-cuda]=={TENSORFLOW_PIN} (GPU build, requirements/gpu.txt)", "requirements/gpu.txt"
    return f"tensorflow-cpu=={TENSORFLOW_PIN} (CPU build, requirements.txt)", "requirements.txt"


def describe_data(role: str, given: str | None, profile: Profile) -> dict[str, Any]:
    """Return where a role's data comes from (without generating or decoding anything) and about how many images."""
    if real_data_given(role, given):
        if given not in (None, "") and not Path(given).expanduser().exists():
            raise PlanError(f"data path not found: {given}")
        try:
            source = resolve_source(role, given, embedded=None)  # the path given, the environment, or Kaggle's
        except DataError as exc:
            raise PlanError(str(exc)) from exc
        return {"role": role, "origin": source.origin, "layout": source.layout, "root": str(source.root),
                "images": count_images(source.class_dir), "embedded": False}
    n = profile.embedded_internal if role == "internal" else profile.embedded_external
    return {"role": role, "origin": "embedded", "layout": "generated", "root": "(generated into the cache)",
            "images": n, "embedded": True}


def make_plan(profile: str = "auto", data: str | None = None, external: str | None = None, weights: str | None = None,
              notebooks: list[str] | None = None, allow_cpu: bool = False, machine: Machine | None = None,
              max_epochs: int | None = None, seeds: int | None = None,
              gpu_measurements: Path = PROJECT_ROOT / "outputs" / "bench" / "gpu_check.json",
              cpu_factor: float | None = None) -> dict[str, Any]:
    """Return the run's plan as data, or raise PlanError when it should not start (`gpu_measurements`:
    tools/gpu_check.sh's report, for a GPU's estimate; `cpu_factor`: this CPU against the reference one)."""
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
    asked_weights, weights = weights, weights_in_use(weights, chosen)
    selected = [name for name in CATALOG
                if not notebooks or any(name == n or name.startswith(f"{n}_") for n in notebooks)]
    if not selected:
        raise PlanError(f"no notebook matches '{','.join(notebooks or [])}'; notebooks: {', '.join(CATALOG)}")
    selected.sort(key=lambda name: name.startswith("08_"))  # the summary judges the others' results: it runs last
    factor = 1.0
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
    estimate = {name: round(seconds * factor) for name, seconds in
                estimate_seconds(chosen, internal["images"], external_data["images"], speeds,
                                 asked_weights).items()} if speeds else {}
    return {
        "python": machine.python, "machine": machine.kind, "gpus": machine.gpus,
        "tensorflow": tensorflow_source(machine)[0], "requirements": tensorflow_source(machine)[1],
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


USAGE = """Reproduce every notebook headlessly: set up .venv for this machine when needed, run notebooks/NN_*.ipynb
with papermill, render each to HTML (with code, and code-free) and build outputs/reports/index.html.

  bash run_all.sh                         auto: full with a GPU, cpu with real data, demo on the embedded data
  bash run_all.sh --dry-run               what would run here: TensorFlow build, profile, data, time per notebook
  bash run_all.sh --data DIR --external DIR --notebooks 01,02
  bash run_all.sh --tests [PYTEST ARGS]   set up, check the code with ruff, then run pytest with ARGS (-m "not slow"
                                          is the fast lane)
  bash run_all.sh --bench [BENCH ARGS]    set up, install the benchmark-only `fer` package (its side-by-side rows),
                                          then run `python -m ferlib bench` with ARGS
  bash run_all.sh --setup-only            create or refresh .venv and its Jupyter kernel, then stop

Environment: PYTHON (the interpreter .venv is made with, default python3.11), FERLIB_DATA_DIR, FERLIB_EXTERNAL_DIR,
FERLIB_CACHE_DIR. Relative paths are the caller's."""


def run_parser(prog: str = "bash run_all.sh") -> argparse.ArgumentParser:
    """Return the parser of run_all.sh's options (the plan's and the notebook runner's)."""
    parser = argparse.ArgumentParser(prog=prog, description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="auto", help="auto (default), smoke, demo, cpu or full")
    parser.add_argument("--data", default=None, help="internal data: a Human Face Emotions folder, a FER-2013 "
                        "folder or CSV; 'embedded': the generated set even where real data is set")
    parser.add_argument("--external", default=None,
                        help="external test data (default: FER-2013's test split, or the embedded external set)")
    parser.add_argument("--notebooks", default="", help="comma-separated notebook numbers or names, e.g. 01,02 "
                        "(default: all)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--weights", default=None,
                        help="backbone weights: imagenet, random or a weights file (default: the profile's)")
    parser.add_argument("--deterministic", action="store_true",
                        help="op determinism and seeded everything: the same seed gives the same numbers (slower)")
    parser.add_argument("--allow-cpu", action="store_true", help="let the full profile run without a GPU (days)")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="cap every training phase at N epochs (a check of a profile's code path)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per ablation")
    parser.add_argument("--multi-gpu", action="store_true", help="train on every visible GPU (MirroredStrategy)")
    parser.add_argument("--force", action="store_true", help="retrain finished experiments instead of reusing them")
    parser.add_argument("--output", default=None, help="where notebooks, reports, results and figures go "
                                                       "(default: outputs)")
    return parser


def _absolute(path: str | None) -> str | None:
    """Return a path option as the caller meant it: relative to where run_all.sh was started."""
    if path in (None, "", EMBEDDED, "imagenet", "random"):
        return path or None
    return os.path.abspath(os.path.join(os.environ.get("FERLIB_CALLER_PWD", os.getcwd()), os.path.expanduser(path)))


def run_options(args: argparse.Namespace) -> argparse.Namespace:
    """Return run_all.sh's parsed options with paths made absolute (`_absolute`) and the notebooks as a list."""
    args.data, args.external, args.weights = (_absolute(p) for p in (args.data, args.external, args.weights))
    args.notebooks = [n for n in args.notebooks.split(",") if n]
    args.output = Path(_absolute(args.output) or PROJECT_ROOT / "outputs")
    return args


def plan_run(run: argparse.Namespace, cpu_factor: float | None = None) -> dict[str, Any] | None:
    """Return the plan of run_all.sh's options, or None after saying on stderr why the run cannot start."""
    try:
        return make_plan(run.profile, run.data, run.external, run.weights, run.notebooks, run.allow_cpu,
                         max_epochs=run.max_epochs, seeds=run.seeds, cpu_factor=cpu_factor)
    except (PlanError, KeyError, ValueError) as exc:
        print(f"run_all.sh: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    """Print the plan (or one of its fields for run_all.sh); return the exit status."""
    parser = run_parser()
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # the plan as JSON
    parser.add_argument("--field", default=None, help=argparse.SUPPRESS)  # one field of the plan, for run_all.sh
    parser.add_argument("--kaggle-files", type=Path, default=None, help=argparse.SUPPRESS)  # Kaggle's install lists
    args = parser.parse_args(argv)
    if sys.version_info < (3, 11):  # noqa: UP036 (the plan runs before .venv, on whatever python3 is found)
        print(f"run_all.sh: Python 3.11 or newer is needed, this is {sys.version.split()[0]} ({sys.executable}); "
              "set PYTHON=/path/to/python3.11", file=sys.stderr)
        return 2
    run = run_options(args)
    if args.field in ("machine", "output"):  # what .venv is built for, where outputs go: no profile or data checks
        print(detect_machine().kind if args.field == "machine" else run.output)
        return 0
    if args.kaggle_files:
        try:
            missing, constraints = kaggle_requirements(PROJECT_ROOT / "requirements" / "common.txt")
        except PlanError as exc:
            print(f"run_all.sh: {exc}", file=sys.stderr)
            return 2
        write_text(args.kaggle_files / "missing.txt", "".join(f"{m}\n" for m in missing))
        write_text(args.kaggle_files / "constraints.txt", "".join(f"{c}\n" for c in constraints))
        print(f"{len(missing)} requirement(s) to install; kept as found: {', '.join(constraints) or 'none'}")
        return 0
    plan = plan_run(run, cpu_factor=1.0 if args.field and not args.field.startswith("estimate") else None)
    if plan is None:
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
