"""Uncertainty: bootstrap confidence intervals, seed spread and McNemar's test for paired classifiers. Resampling
images is drawing confusion-matrix cells from a multinomial, so the bootstrap works on any result's confusion matrix."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

N_BOOT = 2000
LEVEL = 0.95
BOOT_SEED = 0


def bootstrap_confusions(confusion: np.ndarray | list, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> np.ndarray:
    """Return `n_boot` bootstrap resamples of a confusion matrix, shape (n_boot, k, k)."""
    cm = np.asarray(confusion, dtype=np.int64)
    n, k = int(cm.sum()), cm.shape[0]
    if n == 0:
        raise ValueError("cannot bootstrap an empty evaluation (0 images)")
    return np.random.default_rng(seed).multinomial(n, cm.ravel() / n, size=n_boot).reshape(n_boot, k, k)


def metrics_of(confusions: np.ndarray) -> dict[str, np.ndarray]:
    """Return accuracy, per-class F1, precision and recall, macro and weighted F1 of stacked confusion matrices."""
    cms = np.asarray(confusions, dtype=np.float64)
    cms = cms.reshape(-1, *cms.shape[-2:])  # one matrix, or a stack of them
    tp = np.diagonal(cms, axis1=1, axis2=2)
    support, predicted = cms.sum(axis=2), cms.sum(axis=1)
    n = cms.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), 0.0)
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
    return {"accuracy": tp.sum(axis=1) / n, "f1": f1, "macro_f1": f1.mean(axis=1),
            "weighted_f1": (f1 * support).sum(axis=1) / n, "precision": precision, "recall": recall}


def _intervals(m: dict[str, np.ndarray], classes: Sequence[str], level: float, per_class: tuple[str, ...],
               method: str) -> dict:
    def interval(samples: np.ndarray) -> list[float]:
        return [float(q) for q in np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0)]

    return {**{key: interval(m[key]) for key in ("accuracy", "macro_f1", "weighted_f1")},
            **{key: {c: interval(m[key][:, i]) for i, c in enumerate(classes)} for key in per_class},
            "method": method, "level": level}


def confusion_intervals(confusion: np.ndarray | list, classes: Sequence[str], n_boot: int = N_BOOT,
                        level: float = LEVEL, seed: int = BOOT_SEED) -> dict:
    """Return percentile-bootstrap intervals for accuracy, macro/weighted F1 and per-class F1, precision, recall."""
    return _intervals(metrics_of(bootstrap_confusions(confusion, n_boot, seed)), classes, level, ("f1", "precision",
                      "recall"), f"percentile bootstrap over images, {n_boot} resamples, seed {seed}")


def seed_mean_intervals(confusions: Sequence[np.ndarray | list], classes: Sequence[str], n_boot: int = N_BOOT,
                        level: float = LEVEL, seed: int = BOOT_SEED) -> dict:
    """Return intervals for the mean over seeds: each seed's evaluation is resampled independently, then averaged."""
    stacks = [metrics_of(bootstrap_confusions(cm, n_boot, seed + i)) for i, cm in enumerate(confusions)]
    mean = {key: np.mean([s[key] for s in stacks], axis=0) for key in stacks[0]}
    return _intervals(mean, classes, level, ("f1",),
                      f"percentile bootstrap of the mean over {len(confusions)} seed(s), {n_boot} resamples")


def seed_spread(values: Sequence[float]) -> dict[str, float | int]:
    """Return mean, sample standard deviation, min, max and count of per-seed values."""
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else float("nan"),
            "min": float(v.min()), "max": float(v.max()), "n": int(len(v))}


@dataclass(frozen=True)
class McNemar:
    """McNemar's test on the images two classifiers got differently right."""

    only_a: int  # images A got right and B wrong
    only_b: int  # images B got right and A wrong
    n: int
    statistic: float
    p_value: float
    method: str

    def to_dict(self) -> dict:
        """Return the test as plain data."""
        return dict(self.__dict__)


def p_value_text(p: float) -> str:
    """Return a p-value as reports write it: "p = 0.044", or "p < 0.001" below that (never "p = 0")."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3g}"


def mcnemar(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, exact_below: int = 25) -> McNemar:
    """Return McNemar's test for paired predictions: exact when few images differ, else chi-square corrected."""
    y_true, pred_a, pred_b = (np.asarray(x) for x in (y_true, pred_a, pred_b))
    if not (len(y_true) == len(pred_a) == len(pred_b)):
        raise ValueError(f"paired predictions must cover the same images: {len(y_true)}, {len(pred_a)}, {len(pred_b)}")
    right_a, right_b = pred_a == y_true, pred_b == y_true
    b, c = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    if b + c == 0:
        return McNemar(b, c, len(y_true), 0.0, 1.0, "no discordant images")
    if b + c < exact_below:
        p = sps.binomtest(b, b + c, 0.5).pvalue
        return McNemar(b, c, len(y_true), float(min(b, c)), float(p), "exact binomial")
    stat = (abs(b - c) - 1) ** 2 / (b + c)
    return McNemar(b, c, len(y_true), float(stat), float(sps.chi2.sf(stat, 1)), "chi-square, continuity corrected")


def encode_labels(labels: np.ndarray) -> str:
    """Return class indices (0-9) as a compact digit string for result files."""
    return "".join(map(str, np.asarray(labels, dtype=np.int64).tolist()))


def decode_labels(text: str) -> np.ndarray:
    """Return the class indices stored by `encode_labels`."""
    return np.frombuffer(text.encode(), dtype=np.uint8).astype(np.int64) - ord("0")
