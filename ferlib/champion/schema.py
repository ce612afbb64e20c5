"""C1's result as typed data: the experiment's fields plus what `run.run_champion` adds, read by name.

`ChampionRecord.from_json` reads a C1 result (`C1-seed<seed>.json`, a budget's, a variant's or the distilled
student's) and raises `SchemaError` naming the file and the field when one is missing; `to_json` writes it back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ferlib.evaluation.result_schema import ExperimentResult, Score, SetEvaluation, require_fields


@dataclass(frozen=True)
class TestTimeChoice:
    """The test-time mode kept (chosen on validation accuracy), with its flip and shift."""

    mode: str
    flip: bool
    shift: int
    chosen_on: str = "validation accuracy"

    def to_json(self) -> dict[str, Any]:
        """Return the choice as plain data."""
        return {"mode": self.mode, "flip": self.flip, "shift": self.shift, "chosen_on": self.chosen_on}

    @classmethod
    def from_json(cls, data: Any, what: str = "tta") -> TestTimeChoice:
        """Return the choice in `data`, or raise SchemaError naming what is missing."""
        d = require_fields(data, ("mode", "flip", "shift"), what)
        return cls(str(d["mode"]), bool(d["flip"]), int(d["shift"]), str(d.get("chosen_on", "validation accuracy")))


@dataclass(frozen=True)
class CopySplit:
    """The external score split by the leakage audit: images with a copy in the training data and without one
    (None for a part with no image)."""

    threshold_bits: int
    with_copy: Score | None
    without_copy: Score | None

    def to_json(self) -> dict[str, Any]:
        """Return the split as plain data."""
        return {"threshold_bits": self.threshold_bits, "with_copy": self.with_copy and self.with_copy.to_json(),
                "without_copy": self.without_copy and self.without_copy.to_json()}

    @classmethod
    def from_json(cls, data: Any, what: str = "external_by_copy") -> CopySplit:
        """Return the split in `data`, or raise SchemaError naming what is missing."""
        d = require_fields(data, ("threshold_bits", "with_copy", "without_copy"), what)
        parts = {part: None if d[part] is None else Score.from_json(d[part], f"{what}.{part}")
                 for part in ("with_copy", "without_copy")}
        return cls(int(d["threshold_bits"]), **parts)


@dataclass
class ChampionRecord:
    """C1's result: the experiment's result (`base`) and its scores in every test-time mode, the mode kept, the
    external set's scores (None without one), the training time, and the context `records.champion_context`
    adds (goal, ablation, learning curve), which stays plain data."""

    base: ExperimentResult
    validation_scores: dict[str, Score]
    tta: TestTimeChoice
    training_time_s: float
    precision: str
    epochs_run: int
    external: SetEvaluation | None = None
    external_scores: dict[str, Score] = field(default_factory=dict)
    external_by_copy: CopySplit | None = None

    OWN = ("validation_scores", "tta", "training_time_s", "precision", "epochs_run", "external", "external_scores",
           "external_by_copy")

    @property
    def experiment(self) -> str:
        """Return the experiment key (C1, a budget, a variant or the distilled student)."""
        return self.base.experiment

    @property
    def kept_external(self) -> Score | None:
        """Return the external score in the kept test-time mode (None without an external set)."""
        return self.external_scores.get(self.tta.mode)

    def to_json(self) -> dict[str, Any]:
        """Return the result file's content."""
        own = {"validation_scores": {m: s.to_json() for m, s in self.validation_scores.items()},
               "tta": self.tta.to_json(), "training_time_s": self.training_time_s, "precision": self.precision,
               "epochs_run": self.epochs_run}
        if self.external is not None:
            own |= {"external": self.external.to_json(),
                    "external_scores": {m: s.to_json() for m, s in self.external_scores.items()},
                    "external_by_copy": self.external_by_copy and self.external_by_copy.to_json()}
        base = self.base.to_json()
        return {**{k: v for k, v in base.items() if k not in self.OWN}, **own}

    @classmethod
    def from_json(cls, data: Any, source: str = "C1's result") -> ChampionRecord:
        """Return C1's result in `data` (read from `source`, named in errors), or raise SchemaError."""
        base = ExperimentResult.from_json(data, source)
        d = require_fields(base.extra, ("validation_scores", "tta", "training_time_s", "precision", "epochs_run"),
                           source)
        scores = require_fields(d["validation_scores"], ("plain",), f"{source}: validation_scores")
        external = d.get("external")
        return cls(
            base=base, validation_scores={m: Score.from_json(s, f"{source}: validation_scores.{m}")
                                          for m, s in scores.items()},
            tta=TestTimeChoice.from_json(d["tta"], f"{source}: tta"), training_time_s=float(d["training_time_s"]),
            precision=str(d["precision"]), epochs_run=int(d["epochs_run"]),
            external=None if external is None else SetEvaluation.from_json(external, f"{source}: external"),
            external_scores={m: Score.from_json(s, f"{source}: external_scores.{m}")
                             for m, s in (d.get("external_scores") or {}).items()},
            external_by_copy=(None if d.get("external_by_copy") is None
                              else CopySplit.from_json(d["external_by_copy"], f"{source}: external_by_copy")))
