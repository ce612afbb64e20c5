"""Is a model better than always answering the largest class of the images it was scored on? One at chance (a
one-sided binomial test, docs/methods.md) shows no findings; a conclusion resting only on such gets NO_EVIDENCE."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import binomtest

CHANCE_ALPHA = 0.05
NO_EVIDENCE = "no evidence: the models it rests on are at chance"


@dataclass(frozen=True)
class ChanceCheck:
    """A model's accuracy set against always answering the largest class of the same images."""

    accuracy: float
    n: int
    largest_class: str
    largest_share: float  # the accuracy of always answering largest_class
    p_value: float  # one-sided binomial: accuracy > largest_share

    @property
    def at_chance(self) -> bool:
        """Return True when the accuracy is not significantly above the largest class's share."""
        return self.p_value >= CHANCE_ALPHA

    def describe(self, name: str) -> str:
        """Return e.g. "V13 19.0%: no better than always answering Happy (31.3%)", or "... above ..." when not."""
        how = "no better than" if self.at_chance else "above"
        return f"{name} {self.accuracy:.1%}: {how} always answering {self.largest_class} ({self.largest_share:.1%})"


def chance_check(evaluation: dict[str, Any]) -> ChanceCheck:
    """Return the chance check of an evaluation (a result's "validation" or "external" entry)."""
    confusion = np.asarray(evaluation["confusion"], dtype=np.int64)
    support = confusion.sum(axis=1)
    n = int(support.sum())
    if n == 0:
        raise ValueError("an evaluation of 0 images has no chance level")
    right = int(np.trace(confusion))
    largest = int(np.argmax(support))
    share = float(support[largest] / n)
    p = float(binomtest(right, n, share, alternative="greater").pvalue) if share < 1 else 1.0
    return ChanceCheck(right / n, n, evaluation["classes"][largest], share, p)


def chance_levels(runs: dict[str, list[dict[str, Any]]], split: str = "validation") -> dict[str, ChanceCheck]:
    """Return the names at chance in at least half of their seeds' `split` evaluations, with a seed's check."""
    out = {}
    for name, results in runs.items():
        checks = [chance_check(r[split]) for r in results if isinstance(r.get(split), dict) and "confusion" in r[split]]
        if checks and sum(c.at_chance for c in checks) * 2 >= len(checks):
            out[name] = next(c for c in checks if c.at_chance)  # the evidence names a seed at chance
    return out


def chance_note(evaluation: dict[str, Any]) -> str:
    """Return what a headline adds after an accuracy at chance: ": no better than always answering Happy (31.3%)"."""
    check = chance_check(evaluation)
    return f": no better than always answering {check.largest_class} ({check.largest_share:.1%})" \
        if check.at_chance else ""


def models_at_chance_note(runs: dict[str, Any], split: str = "validation") -> str:
    """Return what a headline over several models adds when some are at chance ("; V4, V8 at chance: ..."), else "".
    `runs`: result name -> result or list of seeds' results."""
    lists = {k: v if isinstance(v, list) else [v] for k, v in runs.items() if v}
    at = list(chance_levels(lists, split))  # in the order of `runs`
    every = " (every one)" if len(at) == len(lists) else ""
    return (f"; {', '.join(at)} at chance{every}: no better than always answering the largest class, so their "
            "differences are not findings") if at else ""
