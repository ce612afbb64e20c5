"""The software stacks this project is tested on, read from the files that pin them (standard library only): the
main lane (requirements.txt) and the Kaggle-stack lane (`tools/kaggle_stack.sh`, requirements/stacks/kaggle.txt).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from ferlib.config import PROJECT_ROOT

MAIN_PYTHON = "3.11"  # run_all.sh's first choice of interpreter, and CI's
# The oldest Keras the shipped model is loaded with (the Kaggle-stack lane checks it) and TensorFlow 2.20's own
# minimum; C1's augmentation (RandomErasing) needs 3.9.
OLDEST_KERAS = "3.10.0"


def normalise(name: str) -> str:
    """Return a package name as the index compares them (case, '-', '_' and '.' ignored)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_lines(requirements: Path) -> list[tuple[str, str | None, str, str]]:
    """Return (name, pin or None, line, file stem) for each requirement in a requirements file and the files it
    includes (-r)."""
    out = []
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            out += pinned_lines(requirements.parent / line[3:].strip())
        elif line and not line.startswith("-"):
            name, _, pin = line.partition("==")
            out.append((normalise(name.split("[")[0].strip()), pin.strip() or None, line, requirements.stem))
    return out


def read_pins(path: Path) -> dict[str, str]:
    """Return a requirements file's `name==version` pins (includes too) and a stack file's python/image lines."""
    headers = re.findall(r"^#\s*(python|image):\s*(.+?)\s*$", path.read_text(), re.M)
    pins = {name: pin for name, pin, _, _ in pinned_lines(path) if pin}
    return dict(headers) | pins


def stack_pins(name: str) -> dict[str, str]:
    """Return a Kaggle-stack file's pins (requirements/stacks/<name>.txt), as tools/kaggle_stack.sh builds it."""
    return read_pins(PROJECT_ROOT / "requirements" / "stacks" / f"{name}.txt")


def main_pins() -> dict[str, str]:
    """Return the main lane's pins: requirements.txt (TensorFlow's CPU build) and what it includes."""
    pins = read_pins(PROJECT_ROOT / "requirements.txt")
    return pins | {"python": MAIN_PYTHON, "tensorflow": pins["tensorflow-cpu"]}


PROTECTED = ("tensorflow", "keras", "numpy", "pandas")  # never replaced in Kaggle's image


class PlanError(ValueError):
    """The run asked for cannot go ahead on this machine (the message says why and what to do)."""


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
    """Return (requirements to install into .venv over Kaggle's image, constraints that keep its PROTECTED packages,
    which are never replaced: PlanError when one is missing or too old). The notebook runner's requirements are
    installed at their pins; any other only when it is missing or older than its pin."""
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
    for name, pinned, line, source in pinned_lines(common):
        if name in PROTECTED or name in KAGGLE_SKIPPED:
            continue
        have = installed.get(name)
        runner = source == "notebooks"
        if have is None or (pinned and (version_tuple(have) != version_tuple(pinned) if runner
                                        else version_tuple(have) < version_tuple(pinned))):
            missing.append(line)
    constraints = [f"{name}=={installed[name]}" for name in PROTECTED if name in installed]
    return missing, constraints
