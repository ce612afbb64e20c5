"""The result file of an experiment as typed data: fields read by name, a schema version, clear errors.

`run_experiment` writes an `ExperimentResult` (`to_json`); notebooks and tables read one back with
`ExperimentResult.read` and use its fields (`result.validation.confusion`), not nested keys. A file that lacks a
field of its schema, or was written by a newer schema, raises `SchemaError` naming the file and the field, so a
mistake in the format is never taken for damaged data. Files written before the version was recorded (schema 1
without the key) read as schema 1: existing `outputs/` keep working.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

RESULT_SCHEMA = 1  # raise it when a field is renamed or removed; readers then say what changed


class SchemaError(ValueError):
    """A result that does not have the fields its schema promises (or comes from a newer schema)."""


def require_fields(data: Any, names: tuple[str, ...], what: str) -> dict[str, Any]:
    """Return `data` when it is a dict holding every field in `names`, else raise SchemaError naming them."""
    if not isinstance(data, dict):
        raise SchemaError(f"{what}: expected an object, got {type(data).__name__}")
    missing = [name for name in names if name not in data]
    if missing:
        raise SchemaError(f"{what}: missing field(s) {', '.join(missing)}")
    return data


def _interval(value: Any, what: str) -> tuple[float, float]:
    if not (isinstance(value, list | tuple) and len(value) == 2):
        raise SchemaError(f"{what}: expected [low, high], got {value!r}")
    return float(value[0]), float(value[1])


@dataclass(frozen=True)
class Score:
    """The short form every table reports for one set in one test-time mode (`test_time.score`)."""

    accuracy: float
    n: int
    correct: int
    ci95: tuple[float, float]
    macro_f1: float
    macro_f1_ci95: tuple[float, float]

    def to_json(self) -> dict[str, Any]:
        """Return the score as plain data (intervals as lists)."""
        return {"accuracy": self.accuracy, "n": self.n, "correct": self.correct, "ci95": list(self.ci95),
                "macro_f1": self.macro_f1, "macro_f1_ci95": list(self.macro_f1_ci95)}

    @classmethod
    def from_json(cls, data: Any, what: str = "score") -> Score:
        """Return the Score in `data`, or raise SchemaError naming what is missing."""
        d = require_fields(data, tuple(f.name for f in fields(cls)), what)
        return cls(float(d["accuracy"]), int(d["n"]), int(d["correct"]), _interval(d["ci95"], f"{what}.ci95"),
                   float(d["macro_f1"]), _interval(d["macro_f1_ci95"], f"{what}.macro_f1_ci95"))


@dataclass(frozen=True)
class SetEvaluation:
    """One scored set as `Evaluation.to_dict` writes it: accuracy with its interval, per-class metrics, averages,
    the confusion matrix and the per-image labels and predictions (encoded, for paired tests)."""

    accuracy: float
    accuracy_ci: tuple[float, float]
    n: int
    per_class: dict[str, dict[str, Any]]
    averages: dict[str, dict[str, Any]]
    confusion: list[list[int]]
    classes: list[str]
    ci_method: str
    y_true: Any
    y_pred: Any

    @property
    def macro_f1(self) -> float:
        """Return the macro-averaged F1."""
        return float(self.averages["macro avg"]["f1"])

    def to_json(self) -> dict[str, Any]:
        """Return the set's scores as plain data, as `Evaluation.to_dict` wrote them."""
        return {f.name: (list(getattr(self, f.name)) if f.name == "accuracy_ci" else getattr(self, f.name))
                for f in fields(self)}

    @classmethod
    def from_json(cls, data: Any, what: str = "evaluation") -> SetEvaluation:
        """Return the SetEvaluation in `data`, or raise SchemaError naming what is missing."""
        d = require_fields(data, tuple(f.name for f in fields(cls)), what)
        return cls(**{**d, "accuracy": float(d["accuracy"]), "n": int(d["n"]),
                      "accuracy_ci": _interval(d["accuracy_ci"], f"{what}.accuracy_ci")})


def read_json(path: str | Path) -> Any:
    """Return a result file's content; SchemaError naming the file when it is not JSON (a damaged write)."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path}: not JSON ({exc})") from exc


def as_json(value: Any) -> Any:
    """Return a typed result (anything with `to_json`) as plain data, and plain data as it is: the tables and
    checks that take a result or a scored set accept both."""
    return value.to_json() if hasattr(value, "to_json") else value


@dataclass
class ExperimentResult:
    """What one run of an experiment wrote: its settings, validation scores, history and provenance.

    `extra` holds what other writers add to the same file (C1's test-time modes and external scores, an
    ablation's variant); `ferlib.champion.schema.ChampionRecord` reads C1's part by name.
    """

    experiment: str
    title: str
    settings: dict[str, Any]
    validation: SetEvaluation
    history: dict[str, list]
    best_epoch: int
    kept_phase: int
    phase_starts: list[int]
    timings: dict[str, Any]
    overfitting: dict[str, float]
    n_train: int
    train_seed: int
    run_dir: str
    reused_finished_run: bool
    provenance: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    schema: int = RESULT_SCHEMA

    REQUIRED = ("experiment", "title", "settings", "validation", "history", "best_epoch", "kept_phase",
                "phase_starts", "timings", "overfitting", "n_train", "train_seed", "run_dir",
                "reused_finished_run", "provenance")

    def to_json(self) -> dict[str, Any]:
        """Return the result file's content: the schema version, every field, then what other writers added."""
        core = {name: getattr(self, name) for name in self.REQUIRED}
        return {"schema": self.schema, **core, "validation": self.validation.to_json(), **self.extra}

    @classmethod
    def from_json(cls, data: Any, source: str = "a result") -> ExperimentResult:
        """Return the result in `data` (read from `source`, named in errors); SchemaError when a field is missing
        or the file comes from a newer schema than this code reads."""
        d = require_fields(data, (), source)
        version = d.get("schema", 1)  # files from before the version was written are schema 1
        if not isinstance(version, int) or version > RESULT_SCHEMA:
            raise SchemaError(f"{source}: result schema {version!r}, newer than this ferlib reads ({RESULT_SCHEMA}); "
                              "update ferlib or rerun the experiment")
        require_fields(d, cls.REQUIRED, source)
        core = {name: d[name] for name in cls.REQUIRED}
        core["validation"] = SetEvaluation.from_json(d["validation"], f"{source}: validation")
        extra = {k: v for k, v in d.items() if k not in cls.REQUIRED and k != "schema"}
        return cls(**core, extra=extra, schema=version)

    @classmethod
    def read(cls, path: str | Path) -> ExperimentResult:
        """Return the result in a file written by `run_experiment` (SchemaError names the file on a bad one)."""
        return cls.from_json(read_json(path), str(path))
