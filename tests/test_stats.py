"""Bootstrap intervals, seed spread, McNemar's test and the tables that carry them."""
from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn.metrics import f1_score

from ferlib.classes import STUDY
from ferlib.evaluation import compare, stats
from ferlib.evaluation.evaluate import Evaluation


def predictions(n: int, accuracy: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, n)
    wrong = (y + rng.integers(1, 5, n)) % 5
    return y, np.where(rng.random(n) < accuracy, y, wrong)


def test_confusion_bootstrap_matches_resampling_images():
    y, p = predictions(3000, 0.6, 0)
    confusion = Evaluation(y, p, np.zeros((3000, 5)), STUDY.names).confusion()
    ci = stats.confusion_intervals(confusion, STUDY.names)["accuracy"]
    rng = np.random.default_rng(1)
    correct = y == p
    direct = np.quantile([correct[rng.integers(0, 3000, 3000)].mean() for _ in range(2000)], [0.025, 0.975])
    assert ci[0] < correct.mean() < ci[1]
    assert np.allclose(ci, direct, atol=0.004)


def test_interval_narrows_with_more_images_and_vanishes_for_a_perfect_model():
    widths = []
    for n in (500, 8000):
        y, p = predictions(n, 0.7, n)
        lo, hi = Evaluation(y, p, np.zeros((n, 5)), STUDY.names).to_dict()["accuracy_ci"]
        widths.append(hi - lo)
    assert 3 < widths[0] / widths[1] < 5.5  # sqrt(16) = 4
    y, _ = predictions(200, 1.0, 3)
    assert Evaluation(y, y, np.zeros((200, 5)), STUDY.names).to_dict()["accuracy_ci"] == [1.0, 1.0]


def test_f1_from_confusions_matches_scikit_learn():
    y, p = predictions(1000, 0.5, 4)
    m = stats.metrics_of(Evaluation(y, p, np.zeros((1000, 5)), STUDY.names).confusion())
    assert np.allclose(m["f1"][0], f1_score(y, p, average=None, labels=range(5)))
    assert np.isclose(m["macro_f1"][0], f1_score(y, p, average="macro"))
    assert np.isclose(m["weighted_f1"][0], f1_score(y, p, average="weighted"))


def test_evaluation_dict_carries_intervals_and_predictions():
    y, p = predictions(400, 0.6, 5)
    d = Evaluation(y, p, np.zeros((400, 5)), STUDY.names).to_dict()
    assert d["per_class"]["Fear"]["f1_ci"][0] <= d["per_class"]["Fear"]["f1"] <= d["per_class"]["Fear"]["f1_ci"][1]
    assert d["averages"]["macro avg"]["f1_ci"][0] <= d["averages"]["macro avg"]["f1"]
    assert (stats.decode_labels(d["y_true"]) == y).all() and (stats.decode_labels(d["y_pred"]) == p).all()


def test_empty_evaluation_is_a_clear_error():
    with pytest.raises(ValueError, match="0 images"):
        Evaluation(np.zeros(0, int), np.zeros(0, int), np.zeros((0, 5)), STUDY.names).to_dict()
    with pytest.raises(ValueError, match="empty"):
        stats.bootstrap_confusions(np.zeros((5, 5)))


def test_mean_over_seeds_has_a_narrower_interval_than_one_seed():
    cms = [Evaluation(*predictions(1000, 0.6, s), np.zeros((1000, 5)), STUDY.names).confusion() for s in range(3)]
    one = stats.confusion_intervals(cms[0], STUDY.names)["accuracy"]
    mean = stats.seed_mean_intervals(cms, STUDY.names)["accuracy"]
    assert (mean[1] - mean[0]) < 0.75 * (one[1] - one[0])
    spread = stats.seed_spread([0.5, 0.6, 0.7])
    assert spread["mean"] == pytest.approx(0.6) and spread["sd"] == pytest.approx(0.1) and spread["n"] == 3


def test_mcnemar_exact_and_chi_square():
    y = np.zeros(100, int)
    a = np.zeros(100, int)
    b = a.copy()
    b[:10] = 1  # A right and B wrong on 10 images, never the reverse
    exact = stats.mcnemar(y, a, b)
    assert (exact.only_a, exact.only_b, exact.method) == (10, 0, "exact binomial")
    assert exact.p_value == pytest.approx(2 * 0.5 ** 10)
    b[:30] = 1
    a[30:40] = 1  # 30 vs 10 discordant
    chi = stats.mcnemar(y, a, b)
    assert (chi.only_a, chi.only_b) == (30, 10)
    assert chi.statistic == pytest.approx(19 ** 2 / 40) and chi.p_value == pytest.approx(sps.chi2.sf(19 ** 2 / 40, 1))
    assert stats.mcnemar(y, a, a).p_value == 1.0
    with pytest.raises(ValueError, match="same images"):
        stats.mcnemar(y, a, b[:50])


def fake_result(key: str, seed: int, accuracy: float, y_seed: int | None = None) -> dict:
    y, p = predictions(600, accuracy, 100 * seed + zlib.crc32(key.encode()) % 50)
    if y_seed is not None:
        y, _ = predictions(600, accuracy, y_seed)
        p = np.where(np.random.default_rng(seed).random(600) < accuracy, y, (y + 1) % 5)
    return {"experiment": key, "title": f"{key} title", "provenance": {"seed": seed},
            "settings": {"class_weights": True, "augmentation": "none", "image_size": 48},
            "validation": Evaluation(y, p, np.zeros((600, 5)), STUDY.names).to_dict()}


def test_table1_reports_mean_interval_and_spread_over_seeds():
    runs = {"V4": [fake_result("V4", s, a) for s, a in ((1, 0.6), (2, 0.7), (3, 0.8))],
            "V8": fake_result("V8", 1, 0.5)}
    table = compare.table1(runs)
    v4 = table.loc["V4"]
    accs = [r["validation"]["accuracy"] for r in runs["V4"]]
    assert v4["this run accuracy"] == pytest.approx(np.mean(accs)) and v4["seeds"] == 3
    assert v4["seed sd"] == pytest.approx(np.std(accs, ddof=1))
    assert v4["this run accuracy ci_low"] < v4["this run accuracy"] < v4["this run accuracy ci_high"]
    assert table.loc["V8", "seeds"] == 1 and np.isnan(table.loc["V8", "seed sd"])
    shown = compare.with_intervals(table)
    assert "ci_low" not in " ".join(shown.columns) and shown.loc["V4", "this run accuracy"].count("[") == 1


def test_paired_tests_pair_runs_by_seed_and_refuse_different_images():
    runs = {"V8": [fake_result("V8", s, 0.5, y_seed=s) for s in (1, 2)],
            "V4": [fake_result("V4", s, 0.8, y_seed=s) for s in (1, 2)]}
    tests = compare.paired_tests(runs, [("V8", "V4", "aug vs none")])
    assert list(tests["seed"]) == [1, 2] and (tests["A - B"] < 0).all() and (tests["p-value"] < 1e-6).all()
    summary = compare.paired_summary(tests)
    assert summary.loc["aug vs none", "B better (p<alpha)"] == 2
    runs["V4"][0] = fake_result("V4", 1, 0.8, y_seed=99)
    with pytest.raises(ValueError, match="same images"):
        compare.paired_tests(runs, [("V8", "V4", "aug vs none")])


def test_classification_table_places_intervals_beside_this_runs_values():
    from ferlib import study

    result = fake_result("V13", 1, 0.7)["validation"]
    table = compare.classification_vs_study(result, study.STUDY_TABLE2, study.STUDY_TABLE2_SUMMARY)
    low, high = table[("f1-score", "this run ci_low")], table[("f1-score", "this run ci_high")]
    assert [c for g, c in table.columns if g == "f1-score"] == ["study", "this run", "this run ci_low",
                                                                 "this run ci_high"]  # not under "study"
    assert (low <= table[("f1-score", "this run")]).all() and (table[("f1-score", "this run")] <= high).all()
    shown = compare.with_intervals(table)
    assert isinstance(shown.loc["Fear", ("f1-score", "this run")], str)
    assert isinstance(pd.DataFrame(shown).loc["accuracy", ("f1-score", "this run")], str)


def test_p_values_are_written_as_reports_write_them():
    from ferlib.evaluation.stats import p_value_text

    assert p_value_text(0.0442) == "p = 0.0442" and p_value_text(0.649) == "p = 0.649"
    assert p_value_text(2e-86) == "p < 0.001" and p_value_text(0.0) == "p < 0.001"
