"""Run names: how every result, run and model is named, made and read back in one place.

    RunName("C1", 42).file                    -> "C1-seed42.json"      (a result file)
    RunName.parse("C1_112epochs-seed42.json") -> RunName("C1_112epochs", 42)
    budget_name(112, "mixup_0.2")             -> "C1_mixup_0.2_112epochs"   (C1's recipe at another budget)
    parse_budget("C1_mixup_0.2_112epochs")    -> ("mixup_0.2", 112)
    fine_tuned_name(8)                        -> "C1_finetuned_8ep"     (a shipped model trained 8 epochs further)
    retrained_name("C1_112epochs", 43)        -> "C1_112epochs_train43" (the same run, training seed 43, same split)

The names stay the ones existing ``outputs/`` folders hold, so old results keep being found.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

RESULT_FILE = re.compile(r"^(?P<name>.+)-seed(?P<seed>\d+)\.json$")
BUDGET = re.compile(r"C1_(?:(?P<variant>[a-z][a-z0-9_.]*?)_)?(?P<epochs>[0-9]+)epochs")
ABLATION_PREFIX = "C1_ablation_"  # C1's ablation variants: C1_ablation_<variant>[_<N>epochs][_<M>images]
DISTILLED = "C1_distilled"  # the student distilled from C1's seed ensemble
FINE_TUNED = re.compile(r"C1_finetuned_(?P<epochs>[0-9]+)ep")  # a shipped model trained N epochs further
RETRAINED = re.compile(r"(?P<key>.+)_train(?P<train_seed>[0-9]+)")  # a run again with another training seed
MEMBER_PREFIX = "C1_member"  # the seed ensemble's members: C1_member<index>


@dataclass(frozen=True)
class RunName:
    """A result's name and the seed of its run: the file ``<name>-seed<seed>.json``."""

    name: str
    seed: int

    @property
    def file(self) -> str:
        """Return the result file's name."""
        return f"{self.name}-seed{int(self.seed)}.json"

    @classmethod
    def parse(cls, file_name: str) -> RunName | None:
        """Return the RunName of a result file's name, or None when it is not one."""
        match = RESULT_FILE.match(file_name)
        return cls(match["name"], int(match["seed"])) if match else None

    @staticmethod
    def pattern(prefix: str, seed: int, suffix: str = "") -> str:
        """Return the glob of the result files whose names start with `prefix` (and end with `suffix`)."""
        return f"{prefix}*{suffix}-seed{int(seed)}.json"


def budget_name(epochs: int, variant: str | None = None) -> str:
    """Return the name of C1's recipe (or its ablation `variant`) trained for `epochs` epochs."""
    return f"C1_{variant + '_' if variant else ''}{int(epochs)}epochs"


def fine_tuned_name(epochs: int) -> str:
    """Return the name of a shipped model trained `epochs` epochs further (`champion --fine-tune`)."""
    return f"C1_finetuned_{int(epochs)}ep"


def retrained_name(key: str, train_seed: int) -> str:
    """Return the name of run `key` trained again with another training seed on the same split
    (`champion --train-seed`): an independent network to pool with."""
    return f"{key}_train{int(train_seed)}"


def parse_budget(name: str) -> tuple[str | None, int] | None:
    """Return (variant or None, epochs) of a budget name, or None when the name is no budget."""
    match = BUDGET.fullmatch(name)
    return (match["variant"], int(match["epochs"])) if match else None
