"""Confidence calibration and abstention: temperature scaling (confidence changes, never the prediction),
calibration error, coverage curves. Temperature and abstention threshold are fitted on the validation split."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import softmax

EPS = 1e-12
TARGET_ACCURACY = 0.8  # default rule: keep the faces on which the model is right at least 4 times in 5 ...
MIN_COVERAGE = 0.8  # ... but never abstain on more than a fifth of them (a seven-class model: not a third)
THRESHOLD_RULE = ("the lowest calibrated-confidence threshold at which the validation faces kept are right "
                  "at least {target:.0%} of the time, capped so that at least {coverage:.0%} of them are kept")


def _as_probs(probs: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) == 0:
        raise ValueError(f"expected probabilities of shape (n, classes) with n > 0, got {probs.shape}")
    return probs


def _confidence_correct(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = _as_probs(probs)
    return probs.max(axis=1), probs.argmax(axis=1) == np.asarray(labels)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Return softmax(log(probs) / temperature): the same ranking, sharper (T < 1) or softer (T > 1)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return softmax(np.log(np.clip(_as_probs(probs), EPS, 1.0)) / float(temperature), axis=1)


def negative_log_likelihood(probs: np.ndarray, labels: np.ndarray) -> float:
    """Return the mean negative log-likelihood of the true labels."""
    probs = _as_probs(probs)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(probs)), np.asarray(labels)], EPS, 1.0))))


def fit_temperature(probs: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """Return the temperature minimising the negative log-likelihood of the labels (searched on log T)."""
    probs, labels = _as_probs(probs), np.asarray(labels, dtype=np.int64)
    if len(labels) != len(probs):
        raise ValueError(f"{len(probs)} probability rows but {len(labels)} labels")
    nll = lambda log_t: negative_log_likelihood(apply_temperature(probs, np.exp(log_t)), labels)
    return float(np.exp(minimize_scalar(nll, bounds=np.log(bounds), method="bounded", options={"xatol": 1e-4}).x))


def reliability_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Return per confidence bin: its range, count, mean confidence and accuracy (empty bins kept, NaN)."""
    confidence, correct = _confidence_correct(probs, labels)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    return pd.DataFrame([{"lower": edges[b], "upper": edges[b + 1], "count": int(mask.sum()),
                          "confidence": float(confidence[mask].mean()) if mask.any() else np.nan,
                          "accuracy": float(correct[mask].mean()) if mask.any() else np.nan}
                         for b in range(n_bins) for mask in [index == b]])


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    """Return the ECE: the count-weighted mean |accuracy - confidence| over equal-width confidence bins."""
    bins = reliability_bins(probs, labels, n_bins)
    used = bins[bins["count"] > 0]
    return float((used["count"] * (used["accuracy"] - used["confidence"]).abs()).sum() / used["count"].sum())


def coverage_curve(probs: np.ndarray, labels: np.ndarray, thresholds: np.ndarray | None = None) -> pd.DataFrame:
    """Return, per confidence threshold, the share of faces kept (coverage) and the accuracy on them."""
    confidence, correct = _confidence_correct(probs, labels)
    thresholds = np.round(np.arange(0.0, 1.0, 0.025), 3) if thresholds is None else np.asarray(thresholds, dtype=float)
    return pd.DataFrame([{"threshold": float(t), "coverage": float(kept.mean()), "kept": int(kept.sum()),
                          "accuracy": float(correct[kept].mean()) if kept.any() else np.nan}
                         for t in thresholds for kept in [confidence >= t]])


def choose_threshold(probs: np.ndarray, labels: np.ndarray, target_accuracy: float = TARGET_ACCURACY,
                     min_coverage: float = MIN_COVERAGE) -> float:
    """Return the abstention threshold chosen on validation data by THRESHOLD_RULE (0.0: never abstain)."""
    confidence, correct = _confidence_correct(probs, labels)
    order = np.argsort(-confidence, kind="stable")
    # Keeping the k most confident faces is the same as thresholding at the k-th highest confidence.
    kept_accuracy = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    cut = max(int(np.ceil(min_coverage * len(order))), 1)  # keep at least this many
    reaching = np.flatnonzero(kept_accuracy >= target_accuracy) + 1
    reaching = reaching[reaching >= cut]
    k = int(reaching.max()) if len(reaching) else cut
    return 0.0 if k >= len(order) else float(confidence[order[k - 1]])


def fit_calibration(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10, target_accuracy: float = TARGET_ACCURACY,
                    min_coverage: float = MIN_COVERAGE) -> dict[str, Any]:
    """Return the card's "calibration" entry: temperature, abstention threshold and before/after metrics."""
    probs, labels = _as_probs(probs), np.asarray(labels, dtype=np.int64)
    temperature = fit_temperature(probs, labels)
    scaled = apply_temperature(probs, temperature)
    threshold = choose_threshold(scaled, labels, target_accuracy, min_coverage)
    kept = scaled.max(axis=1) >= threshold
    correct = scaled.argmax(axis=1) == labels
    return {
        "method": "temperature scaling of log-probabilities",
        "fitted_on": "validation split",
        "n": int(len(labels)),
        "temperature": round(temperature, 4),
        "ece_before": expected_calibration_error(probs, labels, n_bins),
        "ece_after": expected_calibration_error(scaled, labels, n_bins),
        "nll_before": negative_log_likelihood(probs, labels),
        "nll_after": negative_log_likelihood(scaled, labels),
        "n_bins": n_bins,
        "abstain_below": round(threshold, 4),
        "threshold_rule": THRESHOLD_RULE.format(target=target_accuracy, coverage=min_coverage),
        "target_accuracy": target_accuracy,
        "min_coverage": min_coverage,
        "coverage_at_threshold": float(kept.mean()),
        "accuracy_at_threshold": float(correct[kept].mean()) if kept.any() else float("nan"),
        "accuracy": float(correct.mean()),
    }


def summarize(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> dict[str, float]:
    """Return accuracy, ECE, NLL, mean confidence and n for one set of predictions."""
    confidence, correct = _confidence_correct(probs, labels)
    return {"n": int(len(labels)), "accuracy": float(np.mean(correct)),
            "ece": expected_calibration_error(probs, labels, n_bins), "nll": negative_log_likelihood(probs, labels),
            "mean_confidence": float(confidence.mean())}
