"""Profiles (smoke / demo / cpu / full: how much work a run may do) and a run's settings (`run_settings`), as data."""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from ferlib.runnames import BUDGET, FINE_TUNED, RETRAINED

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Where a run looks for data when none is given: environment variables, then Kaggle's input folders.
EMBEDDED = "embedded"  # a data parameter that asks for the generated dataset by name
ENV_VARS: dict[str, str] = {"internal": "FERLIB_DATA_DIR", "external": "FERLIB_EXTERNAL_DIR"}
KAGGLE_DIRS: dict[str, Path] = {
    "internal": Path("/kaggle/input/human-face-emotions"),
    "external": Path("/kaggle/input/fer2013"),
}


def real_data_given(role: str, explicit: str | Path | None = None) -> bool:
    """Return True when a run would use real data for `role` (a path, the environment or a Kaggle input)."""
    if str(explicit) == EMBEDDED:
        return False
    return explicit not in (None, "") or bool(os.environ.get(ENV_VARS[role])) or KAGGLE_DIRS[role].exists()


def check_choice(owner: str, field_name: str, value: Any, allowed: Any) -> None:
    """Raise ValueError naming the allowed values when `value` is not one of the Literal (or mapping) `allowed`."""
    choices = tuple(allowed) if isinstance(allowed, Mapping) else get_args(allowed)
    if value not in choices:
        raise ValueError(f"{owner}: {field_name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def check_positive(owner: str, **values: int | float | None) -> None:
    """Raise ValueError for any given value that is set but not above zero."""
    for name, value in values.items():
        if value is not None and not value > 0:
            raise ValueError(f"{owner}: {name} must be above 0, got {value!r}")


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
    weights: str  # backbone weights: "imagenet", "random", or "auto" (ImageNet where Keras can load it: ferlib.weights)
    mixed_precision: bool
    jit_compile: bool | str = "auto"  # XLA; on this CPU it fine-tunes ResNet50V2 about 4x faster than without
    ablation_seeds: int = 3  # seeds per ablation (Table 1, architecture comparison): seed, seed + 1, ...
    max_epochs: int | None = None  # a cap on every phase's epochs (run_all.sh --max-epochs: checks of the code path)

    def __post_init__(self) -> None:
        owner = f"profile {self.name!r}"
        check_positive(owner, embedded_internal=self.embedded_internal, embedded_external=self.embedded_external,
                       max_train=self.max_train, max_val=self.max_val, max_external=self.max_external,
                       batch_size=self.batch_size, ablation_seeds=self.ablation_seeds, max_epochs=self.max_epochs)
        if self.weights not in ("imagenet", "random", "auto"):
            raise ValueError(f"{owner}: weights must be 'imagenet', 'random' or 'auto', got {self.weights!r}")
        if self.jit_compile not in (True, False, "auto"):
            raise ValueError(f"{owner}: jit_compile must be True, False or 'auto', got {self.jit_compile!r}")

    def seeds(self, first: int) -> list[int]:
        """Return the seeds an ablation runs with, starting at `first`."""
        return [int(first) + i for i in range(self.ablation_seeds)]


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke", description="tests and CI: tiny data, one epoch, each notebook well under a minute",
        embedded_internal=400, embedded_external=200, max_train=320, max_val=120, max_external=150,
        batch_size=32, weights="random", mixed_precision=False, ablation_seeds=1,
    ),
    "demo": Profile(
        name="demo", description="default on a CPU without real data: every notebook, table and figure in minutes on "
                                 "the embedded data, one seed, short schedules, no XLA; the numbers test the pipeline",
        embedded_internal=1500, embedded_external=500, max_train=None, max_val=None, max_external=None,
        batch_size=32, weights="random", mixed_precision=False, ablation_seeds=1, jit_compile=False,
    ),
    "cpu": Profile(
        name="cpu", description="default on a CPU with real data: 48 px inputs, subsets and fewer epochs; ImageNet "
                                "weights where Keras can load them, else the transfer models trained from scratch "
                                "at 32 px, one seed",
        embedded_internal=4000, embedded_external=1500, max_train=None, max_val=None, max_external=None,
        # one seed: the transfer models trained from scratch cost minutes each (a real-data run of notebooks 01-08
        # fits 90 minutes on 2 cores), and the paired tests judge each seed on its own; --seeds N asks for more
        batch_size=64, weights="auto", mixed_precision=False, ablation_seeds=1,
    ),
    "full": Profile(
        name="full",
        description="default with a GPU: 96 px, ImageNet weights, the study's schedules where it gives them",
        embedded_internal=20000, embedded_external=6000, max_train=None, max_val=None, max_external=None,
        batch_size=64, weights="imagenet", mixed_precision=True,
    ),
}


CAP_ENV = {"max_epochs": "FERLIB_MAX_EPOCHS", "ablation_seeds": "FERLIB_SEEDS"}  # run_all.sh --max-epochs / --seeds
XLA_ENV = "FERLIB_XLA"  # "0": compile without XLA (its compile time dominates tiny runs on a CPU)


def capped(profile: Profile, max_epochs: int | None = None, seeds: int | None = None) -> Profile:
    """Return the profile capped in epochs and ablation seeds (arguments, else FERLIB_MAX_EPOCHS / FERLIB_SEEDS)."""
    changes: dict[str, Any] = {}
    for field_name, value in (("max_epochs", max_epochs), ("ablation_seeds", seeds)):
        value = value or int(os.environ.get(CAP_ENV[field_name], "0") or 0)
        if value:
            if value < 1:
                raise ValueError(f"{field_name} must be at least 1, got {value}")
            changes[field_name] = value
    if os.environ.get(XLA_ENV, "").strip().lower() in ("0", "false", "no"):
        changes["jit_compile"] = False
    return dataclasses.replace(profile, **changes) if changes else profile


DETERMINISTIC_ENV = "FERLIB_DETERMINISTIC"  # run_all.sh --deterministic sets it


def deterministic_run() -> bool:
    """Return True when the run asked for bit-reproducible training (op determinism, one augmentation thread)."""
    return os.environ.get(DETERMINISTIC_ENV, "").strip().lower() in ("1", "true", "yes")


def resolve_profile(name: str | None = "auto", *, gpu: bool | None = None, real_data: bool | None = None) -> Profile:
    """Return the named profile. "auto" (or None) means `full` with a GPU, `cpu` on a CPU with real data, and
    `demo` on a CPU with only the embedded data (`gpu` and `real_data` are looked up when not given)."""
    if name in (None, "", "auto"):
        if gpu is None:
            import tensorflow as tf

            gpu = bool(tf.config.list_physical_devices("GPU"))
        if real_data is None:
            real_data = real_data_given("internal")
        name = "full" if gpu else ("cpu" if real_data else "demo")
    if name not in PROFILES:
        raise KeyError(f"unknown profile {name!r}; choose one of: auto, {', '.join(PROFILES)}")
    return PROFILES[name]


SAVED_MODELS = {"V13": "v13_champion.keras", "C1": "cpu_champion.keras", "C1_distilled": "cpu_distilled.keras"}


@dataclass(frozen=True)
class RunSettings:
    """Everything a notebook needs to know about where it runs: profile, seed and folders."""

    profile: Profile
    seed: int
    output_dir: Path
    cache_dir: Path
    # the run's data (internal + external) as a folder name (`run_data.keyed_settings`): results, tables and
    # models of runs on different data live apart; "" keeps one folder per profile
    data_key: str = ""

    def _per_data(self, kind: str) -> Path:
        folder = self.output_dir / kind / self.profile.name
        return folder / self.data_key if self.data_key else folder

    @property
    def results_dir(self) -> Path:
        """Return ``outputs/results/<profile>/<data>/``: this run's result files."""
        return self._per_data("results")

    @property
    def tables_dir(self) -> Path:
        """Return ``outputs/tables/<profile>/<data>/``: this run's tables (CSV)."""
        return self._per_data("tables")

    def model_path(self, key: str) -> Path:
        """Return where this run's saved model of experiment `key` (SAVED_MODELS, C1_[<variant>_]<N>epochs,
        C1_finetuned_<N>ep) lives, ``outputs/models/<profile>/<data>/``: V13 from notebook 05, C1 from notebook 10 or
        `champion`."""
        # C1's other budgets and fine-tuned shipped models (ferlib.runnames): `champion --epochs N [--variant V]`,
        # `champion --fine-tune P`
        retrained = RETRAINED.fullmatch(key)  # `champion --train-seed`: the run's own model name, suffixed
        if retrained:
            base = self.model_path(retrained["key"])
            return base.with_name(f"{base.stem}_train{retrained['train_seed']}{base.suffix}")
        other = BUDGET.fullmatch(key) or FINE_TUNED.fullmatch(key)
        name = SAVED_MODELS.get(key) or (f"cpu_champion_{key[len('C1_'):]}.keras" if other else None)
        if not name:
            raise KeyError(f"no saved model for {key!r}; saved models: {', '.join(SAVED_MODELS)}, C1_<N>epochs, "
                           "C1_finetuned_<N>ep")
        return self._per_data("models") / name


def run_settings(profile: str | None = "auto", seed: int = 42, output_dir: str | Path | None = None,
                 cache_dir: str | Path | None = None, data_dir: str | Path | None = None) -> RunSettings:
    """Return a run's resolved settings (`data_dir`, the internal data, tells "auto" real data from embedded)."""
    out = Path(output_dir) if output_dir else PROJECT_ROOT / "outputs"
    cache = Path(cache_dir or os.environ.get("FERLIB_CACHE_DIR") or out / "cache")
    resolved = resolve_profile(profile, real_data=real_data_given("internal", data_dir))  # used by "auto" only
    return RunSettings(profile=capped(resolved), seed=int(seed), output_dir=out.resolve(), cache_dir=cache.resolve())
