"""Temperature scaling, calibration error, coverage curves and the abstention-threshold rule."""
from __future__ import annotations

import numpy as np
import pytest

from ferlib.evaluation import calibration


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def overconfident():
    """Labels drawn from softmax(z), probabilities reported as softmax(2.5 z): a model too sure of itself."""
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1.2, size=(4000, 5))
    true = _softmax(z)
    labels = np.array([rng.choice(5, p=p) for p in true])
    return _softmax(2.5 * z), labels


def test_temperature_keeps_the_ranking_and_one_is_identity():
    p = _softmax(np.random.default_rng(1).normal(size=(50, 5)))
    assert np.allclose(calibration.apply_temperature(p, 1.0), p)
    soft = calibration.apply_temperature(p, 3.0)
    assert (soft.argmax(axis=1) == p.argmax(axis=1)).all()
    assert (soft.max(axis=1) < p.max(axis=1)).all() and np.allclose(soft.sum(axis=1), 1)
    with pytest.raises(ValueError, match="temperature"):
        calibration.apply_temperature(p, 0.0)


def test_fitted_temperature_recovers_the_overconfidence(overconfident):
    probs, labels = overconfident
    t = calibration.fit_temperature(probs, labels)
    assert t == pytest.approx(2.5, rel=0.12)
    before = calibration.expected_calibration_error(probs, labels)
    after = calibration.expected_calibration_error(calibration.apply_temperature(probs, t), labels)
    assert before > 0.1 and after < 0.03


def test_ece_by_hand():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.6, 0.4]])
    labels = np.array([0, 1, 1, 0])
    # bin (0.8, 0.9]: accuracy 0.5, confidence 0.9; bin (0.5, 0.6]: accuracy 1.0, confidence 0.6
    assert calibration.expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(0.4)
    bins = calibration.reliability_bins(probs, labels, n_bins=10)
    assert bins["count"].sum() == 4 and bins.loc[8, "count"] == 2 and bins.loc[5, "count"] == 2
    assert np.isnan(bins.loc[0, "accuracy"])


def test_coverage_curve_and_threshold_rule():
    conf = np.array([0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4, 0.35])
    correct = np.array([1, 1, 1, 1, 0, 1, 0, 0, 1, 0], bool)
    labels = np.zeros(10, int)
    probs = np.column_stack([np.where(correct, conf, (1 - conf) / 2), np.where(correct, (1 - conf) / 2, conf),
                             np.full(10, 0.0)])
    probs[:, 2] = 1 - probs[:, 0] - probs[:, 1]
    curve = calibration.coverage_curve(probs, labels, thresholds=[0.0, 0.55, 0.9])
    assert curve["coverage"].tolist() == [1.0, 0.6, 0.2] and curve["accuracy"].tolist() == [0.6, 5 / 6, 1.0]
    # top-6 (down to 0.6) are 5/6 = 83% right: the lowest threshold reaching 80% with at least half kept
    assert calibration.choose_threshold(probs, labels, target_accuracy=0.8, min_coverage=0.5) == pytest.approx(0.6)
    # a 95% target is out of reach above half coverage: keep exactly half
    assert calibration.choose_threshold(probs, labels, target_accuracy=0.95, min_coverage=0.5) == pytest.approx(0.7)
    # already accurate enough on everything: never abstain
    assert calibration.choose_threshold(probs, labels, target_accuracy=0.5, min_coverage=0.5) == 0.0


def test_fit_calibration_is_the_cards_entry(overconfident):
    probs, labels = overconfident
    entry = calibration.fit_calibration(probs, labels)
    assert entry["fitted_on"] == "validation split" and entry["n"] == 4000
    assert entry["ece_after"] < entry["ece_before"] and entry["nll_after"] < entry["nll_before"]
    assert entry["coverage_at_threshold"] >= entry["min_coverage"] - 1e-9
    assert 0 < entry["abstain_below"] < 1 and "80%" in entry["threshold_rule"]


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="shape"):
        calibration.expected_calibration_error(np.array([0.2, 0.8]), np.array([1]))
    with pytest.raises(ValueError, match="labels"):
        calibration.fit_temperature(np.full((3, 5), 0.2), np.array([0, 1]))
