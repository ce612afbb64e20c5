"""Results as data: JSON files with provenance (commit, machine) and their schema (`RESULT_FIELDS`, version
`RESULT_SCHEMA`, files without one are schema 1), which `check_result` enforces."""
from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ferlib.config import PROJECT_ROOT, RunSettings
from ferlib.runnames import RunName
from ferlib.runtime.files import write_json


def git_commit() -> str:
    """Return the current git commit (with "+dirty" when the tree has changes), or "unknown"."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# CPU features that change how fast training runs, as /proc/cpuinfo spells them, with the name a result shows
SPEED_FEATURES = {"avx512f": "AVX-512", "avx512_bf16": "AVX512_BF16", "amx_bf16": "AMX"}


def cpu_model(cpuinfo: str | None = None) -> str:
    """Return the CPU's model name, its family and model numbers when the name has none (cloud CPUs), its
    SPEED_FEATURES and cores: "Intel(R) Xeon(R) Processor, family 6 model 207 (AVX-512, AVX512_BF16, AMX), 2 cores"."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    info: dict[str, str] = {}  # the first processor's entries
    for key, value in re.findall(r"^(model name|cpu family|model|flags)\s*:(.*)$", cpuinfo, re.M | re.I):
        info.setdefault(key.lower(), value.strip())
    name = info.get("model name", platform.processor() or platform.machine())
    if not any(c.isdigit() for c in name) and "model" in info:
        name += f", family {info.get('cpu family', '?')} model {info['model']}"
    features = ", ".join(label for flag, label in SPEED_FEATURES.items() if flag in info.get("flags", "").split())
    return f"{name}{f' ({features})' if features else ''}, {os.cpu_count()} cores"


def machine() -> str:
    """Return the machine a run used: CPU model and cores, and the GPUs TensorFlow sees (or "no GPU")."""
    import tensorflow as tf

    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            names.append(tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name))
        except (RuntimeError, ValueError):
            names.append(gpu.name)
    return f"{cpu_model()}; " + (", ".join(f"{n}x {name}" for name, n in Counter(names).items()) or "no GPU")


def provenance(settings: RunSettings, sources: dict[str, Any], weights: str, wall_time_s: float,
               **extra: Any) -> dict[str, Any]:
    """Return the provenance block every result carries: profile, seed, data, commit, weights, time."""
    import tensorflow as tf

    return {
        "profile": settings.profile.name,
        "seed": settings.seed,
        "data": sources,
        "weights": weights,
        "git_commit": git_commit(),
        "wall_time_s": round(float(wall_time_s), 2),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
        "machine": machine(),
        **({"max_epochs": settings.profile.max_epochs} if settings.profile.max_epochs else {}),
        **extra,
    }


def result_path(settings: RunSettings, name: str) -> Path:
    """Return where a named result of this profile, data and seed is written."""
    return settings.results_dir / RunName(name, settings.seed).file


write_result = write_json  # a result as indented JSON, written atomically; returns its path


RESULT_SCHEMA = 1  # raise it when a field is renamed or removed; readers then say what changed
RESULT_FIELDS = ("experiment", "title", "settings", "validation", "history", "best_epoch", "kept_phase",
                 "phase_starts", "timings", "overfitting", "n_train", "train_seed", "run_dir", "reused_finished_run",
                 "provenance")
EVALUATION_FIELDS = ("accuracy", "accuracy_ci", "n", "per_class", "averages", "confusion", "classes", "ci_method",
                     "y_true", "y_pred")  # a scored set, as `Evaluation.to_dict` writes it


class SchemaError(ValueError):
    """A result that does not have the fields its schema promises (or comes from a newer schema, or is not JSON)."""


def _require(data: Any, names: tuple[str, ...], what: str) -> None:
    if not isinstance(data, dict):
        raise SchemaError(f"{what}: expected an object, got {type(data).__name__}")
    if missing := [name for name in names if name not in data]:
        raise SchemaError(f"{what}: missing field(s) {', '.join(missing)}")


def check_result(data: Any, source: str = "a result") -> dict[str, Any]:
    """Return a result (read from `source`) with its schema's fields; SchemaError if one lacks or it is newer."""
    _require(data, (), source)
    version = data.get("schema", 1)  # files from before the version was written are schema 1
    if not isinstance(version, int) or version > RESULT_SCHEMA:
        raise SchemaError(f"{source}: result schema {version!r}, newer than this ferlib reads ({RESULT_SCHEMA}); "
                          "update ferlib or rerun the experiment")
    _require(data, RESULT_FIELDS, source)
    _require(data["validation"], EVALUATION_FIELDS, f"{source}: validation")
    return data


def read_result(path: Path) -> dict[str, Any]:
    """Return a result written by `write_result`; SchemaError naming the file when it is not JSON (a damaged write)."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path}: not JSON ({exc})") from exc
