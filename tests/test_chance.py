"""The chance-level rule: a model no better than always answering the largest class is called so, and a
conclusion resting only on such models gets no verdict of its own (docs/methods.md, "Models at chance")."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from ferlib.classes import STUDY
from ferlib.evaluation import chance, summary
from ferlib.evaluation.evaluate import Evaluation
from tests.test_summary import COMPARABLE, result

HAPPY = STUDY.names.index("Happy")


def skewed(key: str, seed: int, right: float, n: int = 600, constant: int | None = None) -> dict:
    """A result scored on images where Happy is 40%: right on a share `right` of them, or always answering
    `constant`."""
    rng = np.random.default_rng(seed)  # the same images for every model of a seed
    y = np.where(rng.random(n) < 0.4, HAPPY, rng.integers(0, 5, n))
    if constant is not None:
        pred = np.full(n, constant)
    else:
        hit = np.random.default_rng(zlib.crc32(key.encode())).random(n) < right
        pred = np.where(hit, y, (y + 1) % 5)
    return {"experiment": key, "validation": Evaluation(y, pred, np.zeros((n, 5)), STUDY.names).to_dict(),
            "provenance": {**COMPARABLE, "seed": seed}}


def test_always_answering_the_largest_class_is_at_chance_and_learning_is_not():
    constant = chance.chance_check(skewed("V4", 1, 0, constant=HAPPY)["validation"])
    assert constant.largest_class == "Happy" and constant.accuracy == pytest.approx(constant.largest_share)
    assert constant.at_chance and constant.p_value > 0.4
    assert constant.describe("V4").startswith(f"V4 {constant.accuracy:.1%}: no better than always answering Happy")
    learned = chance.chance_check(skewed("V13", 1, 0.7)["validation"])
    assert not learned.at_chance and learned.p_value < 1e-6 and "above always answering" in learned.describe("V13")
    worse = chance.chance_check(skewed("V5", 1, 0, constant=0)["validation"])  # always Angry: below the share
    assert worse.at_chance and worse.accuracy < worse.largest_share


def test_a_model_is_at_chance_when_half_of_its_seeds_are():
    learned, stuck = skewed("V4", 1, 0.7), skewed("V4", 2, 0, constant=HAPPY)
    levels = chance.chance_levels({"V4": [learned, stuck]})
    assert list(levels) == ["V4"] and levels["V4"].at_chance  # one of two seeds stuck: not shown, and named
    assert not chance.chance_levels({"V4": [learned, skewed("V4", 3, 0.7), stuck]})  # two of three learned
    assert not chance.chance_levels({"V4": [learned]})


def test_a_model_just_above_the_share_is_at_chance_until_the_difference_is_significant():
    n, share = 1000, 0.3
    support = np.array([300, 175, 175, 175, 175])
    for right, expected in ((310, True), (345, False)):  # 31.0% and 34.5% against a 30% share (p 0.26, 0.001)
        confusion = np.zeros((5, 5), dtype=int)
        confusion[0, 0] = 300  # every Angry face right, and `right - 300` of the Fear faces
        confusion[1, 1], confusion[1, 0] = right - 300, support[1] - (right - 300)
        confusion[2:, 0] = support[2:]
        check = chance.chance_check({"confusion": confusion.tolist(), "classes": list(STUDY.names)})
        assert check.n == n and check.largest_share == pytest.approx(share) and check.at_chance is expected


def test_conclusions_on_models_at_chance_say_there_is_no_evidence():
    seeds = (1, 2)
    at = {k: [skewed(k, s, 0, constant=HAPPY) for s in seeds] for k in ("V4", "V8", "V9", "V11", "V10")}
    runs = at | {"V5": [skewed("V5", s, 0, constant=HAPPY) for s in seeds],
                 "V7": [skewed("V7", s, 0, constant=0) for s in seeds],
                 "V12": [skewed("V12", s, 0, constant=HAPPY) for s in seeds],
                 "V13": [skewed("V13", s, 0, constant=3) for s in seeds]}
    table = summary.conclusions(runs)
    c = summary.CONCLUSIONS
    for claim in ("augmentation", "augmentation_weights", "resnet"):
        row = table.loc[c[claim]]
        assert row["verdict"] == chance.NO_EVIDENCE and "no better than always answering Happy" in row["evidence"]
    v13_ext = {"external": skewed("V13", 9, 0, constant=3)["validation"], "provenance": {**COMPARABLE, "seed": 1}}
    runs["V13_external"] = [v13_ext]
    photos = {"ood": {"settings": {"plain resize": {"n": 400, "accuracy": 0.2, "mean_confidence": 0.9,
                                                    "ece": 0.7}}}, "provenance": {"data": {"ood": {}}}}
    table = summary.conclusions(runs, {"external_overlap_fraction": 0.0, "clean": None, "full": None}, photos)
    for claim in ("generalisation", "ood"):  # both rest on V13 alone
        row = table.loc[c[claim]]
        assert row["verdict"] == chance.NO_EVIDENCE and row["evidence"].startswith("V13 ")
    counts = summary.conclusion_counts(list(table["verdict"]))
    assert counts == {"no evidence": 5}


def test_a_pair_with_a_model_at_chance_is_left_out_and_the_rest_still_judged():
    seeds = (1, 2, 3)
    runs = {"V13": [result("V13", s, 0.80) for s in seeds], "V5": [result("V5", s, 0.55) for s in seeds],
            "V7": [result("V7", s, 0.55) for s in seeds],
            "V12": [result("V12", s, 0.2) for s in seeds]}  # 20%: the share of each of five equal classes
    row = summary.conclusions(runs).loc[summary.CONCLUSIONS["resnet"]]
    assert row["verdict"] == "supported"  # V13 above V5 and V7; V13 against V12 is not evidence
    assert "left out, at chance: V12 " in row["evidence"] and "V13 - V12" not in row["evidence"]
    assert summary.verdict_kind("not supported (no consistent significant difference)") == "not supported"
    assert summary.verdict_kind("partly supported: accuracy falls") == "partly supported"


def test_notebook_09_shows_the_shipped_model_unless_the_runs_champion_learned_from_real_faces(tmp_path):
    from ferlib.models import modelcard, shipped
    from ferlib.models.builders import build_custom_cnn
    from ferlib.photos import photo_report

    def saved(name: str, embedded: bool):
        return modelcard.save_with_card(build_custom_cnn(32, seed=0), tmp_path / f"{name}.keras",
                                        experiment={"key": "V13"}, weights="random", metrics={}, provenance={},
                                        data={"source": "test", "embedded": embedded})

    missing = photo_report.photo_models(tmp_path / "none.keras", None)
    assert missing.uses_shipped and missing.beside == () and "no V13 model yet" in missing.why
    generated = photo_report.photo_models(saved("generated", True), skewed("V13", 1, 0.8))
    assert generated.uses_shipped and "generated faces" in generated.why
    real = saved("real", False)
    at = photo_report.photo_models(real, skewed("V13", 1, 0, constant=HAPPY))
    assert at.uses_shipped and "no better than always answering Happy" in at.why
    learned = photo_report.photo_models(real, skewed("V13", 1, 0.8))
    assert not learned.uses_shipped and learned.primary[1] == real
    assert [p for _, p in learned.beside] == [shipped.shipped_model_path()]
    given = photo_report.photo_models(real, None, given=tmp_path / "mine.keras")
    assert given.primary[1] == tmp_path / "mine.keras" and given.beside == ()


def test_the_ood_claim_is_not_judged_on_another_model_than_the_runs_v13():
    runs = {"V13": [result("V13", 1, 0.80)]}
    photos = {"model_role": "shipped", "model_choice": "the shipped C1: this run's V13 was trained on generated faces",
              "ood": {"settings": {"plain resize": {"n": 400, "accuracy": 0.3, "mean_confidence": 0.9, "ece": 0.6}}}}
    row = summary.conclusions(runs, photos=photos).loc[summary.CONCLUSIONS["ood"]]
    assert row["verdict"] == "not tested: notebook 09 did not use this run's V13" and "generated" in row["evidence"]


def test_the_landing_page_counts_conclusions_without_evidence(tmp_path):
    from ferlib.reports import index

    page = index._verdicts({"conclusions": [
        {"conclusion": "1. a", "verdict": chance.NO_EVIDENCE, "evidence": "V4 31.3%: no better than ..."},
        {"conclusion": "2. b", "verdict": "supported", "evidence": ""},
        {"conclusion": "3. c", "verdict": chance.NO_EVIDENCE, "evidence": ""}], "numbers": [], "verdict_counts": {}})
    assert "3 conclusions: 1 supported, 2 no evidence" in page and "no better than always answering" in page
    assert page.count("class='v-nc'") == 2
