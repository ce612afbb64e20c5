"""The study-vs-reproduction summary: verdicts per number and per conclusion, from result files."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from ferlib import config
from ferlib.classes import STUDY
from ferlib.evaluation import summary
from ferlib.evaluation.evaluate import Evaluation
from ferlib.evaluation.results import result_path, write_result

COMPARABLE = {"profile": "full", "weights": "imagenet",
              "data": {"internal": {"layout": "hfe", "embedded": False, "fingerprint": "abc"}}}


def result(key: str, seed: int, accuracy: float, provenance: dict | None = None, n: int = 2000) -> dict:
    """A result file's content: every experiment of one seed is scored on the same images."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, n)
    right = np.random.default_rng(zlib.crc32(f"{key}-{seed}".encode())).random(n) < accuracy
    pred = np.where(right, y, (y + 1) % 5)
    prov = {**(provenance or COMPARABLE), "seed": seed}
    return {"experiment": key, "title": key,
            "settings": {"class_weights": True, "augmentation": "none", "image_size": 96},
            "validation": Evaluation(y, pred, np.zeros((n, 5)), STUDY.names).to_dict(), "provenance": prov}


def test_verdict_rules():
    assert summary.verdict(0.87, 0.86, [0.85, 0.875], []) == "reproduced"
    assert summary.verdict(0.87, 0.86, [0.855, 0.866], []) == "reproduced"  # within the study's rounding
    assert summary.verdict(0.91, 0.80, [0.78, 0.82], []) == "not reproduced (study higher)"
    assert summary.verdict(0.49, 0.60, [0.58, 0.62], []) == "not reproduced (study lower)"
    assert summary.verdict(0.87, 0.86, [0.85, 0.875], ["random weights"]) == "not comparable"
    assert summary.verdict(0.87, None, None, []) == "not run"


def test_comparability_names_every_reason():
    offline = {"profile": "cpu", "weights": "random",
               "data": {"internal": {"layout": "fer-folder", "embedded": False, "fingerprint": "x"},
                        "external": {"layout": "hfe", "embedded": True, "fingerprint": "y"}}}
    reasons = " ".join(summary.comparability({"provenance": offline}))
    for word in ("fer-folder", "embedded synthetic", "randomly initialised", "profile cpu"):
        assert word in reasons
    assert summary.comparability({"provenance": COMPARABLE}) == []
    scratch = {**COMPARABLE, "weights": "none (from scratch, not the study's ImageNet setting)"}
    assert summary.comparability({"provenance": scratch}) == [
        "backbone trained from scratch, not the study's ImageNet setting (no ImageNet weights on this machine)"]


def test_study_numbers_use_the_mean_over_seeds():
    runs = {"V4": [result("V4", s, a) for s, a in ((1, 0.74), (2, 0.76), (3, 0.78))]}
    numbers = summary.study_numbers(runs)
    row = numbers.loc["V4 validation accuracy"]
    assert (row["seeds"] == 3
            and row["this run"] == pytest.approx(np.mean([r["validation"]["accuracy"] for r in runs["V4"]])))
    assert row["verdict"] == "reproduced"
    assert numbers.loc["V13 validation accuracy", "verdict"] == "not run"


def test_conclusions_follow_the_paired_tests():
    seeds = (1, 2, 3)
    runs = {"V4": [result("V4", s, 0.80) for s in seeds], "V8": [result("V8", s, 0.55) for s in seeds],
            "V11": [result("V11", s, 0.50) for s in seeds], "V9": [result("V9", s, 0.55) for s in seeds],
            "V10": [result("V10", s, 0.50) for s in seeds], "V5": [result("V5", s, 0.85) for s in seeds],
            "V7": [result("V7", s, 0.60) for s in seeds], "V12": [result("V12", s, 0.60) for s in seeds],
            "V13": [result("V13", s, 0.70) for s in seeds]}
    verdicts = summary.conclusions(runs)["verdict"]
    c = summary.CONCLUSIONS
    assert verdicts[c["augmentation"]] == "supported"
    assert verdicts[c["augmentation_weights"]].startswith("not supported")  # V8 and V9 score the same
    assert verdicts[c["resnet"]] == "contradicted"  # V13 below V5
    runs["V8"] = [result("V8", s, 0.40) for s in seeds]  # class weights make augmentation worse, as the study says
    assert summary.conclusions(runs)["verdict"][c["augmentation_weights"]] == "supported"
    runs["V4"] = [result("V4", s, 0.80, {**COMPARABLE, "weights": "random"}) for s in seeds]
    assert summary.conclusions(runs)["verdict"][c["augmentation"]].startswith(
        "supported on this run's settings, which differ")


def test_generalisation_is_judged_on_the_images_without_a_copy():
    internal = result("V13", 1, 0.80)
    runs = {"V13": [internal], "V13_external": [{"external": result("V13", 7, 0.90)["validation"],
                                                 "provenance": {**COMPARABLE, "seed": 1}}]}
    claim = summary.CONCLUSIONS["generalisation"]
    assert summary.conclusions(runs)["verdict"][claim].startswith("not tested")
    clean_low = result("V13", 8, 0.70, n=1500)["validation"]
    row = summary.conclusions(runs, {"external_overlap_fraction": 0.3, "clean": clean_low,
                                     "full": runs["V13_external"][0]["external"]}).loc[claim]
    assert (row["verdict"].startswith("not supported") and "30.0%" in row["evidence"]
            and "1,500 images" in row["evidence"])
    clean_same = result("V13", 9, 0.80, n=1500)["validation"]
    row = summary.conclusions(runs, {"external_overlap_fraction": 0.01, "clean": clean_same, "full": None}).loc[claim]
    assert row["verdict"].startswith("supported: on the external images without a copy") and "1.0%" in row["evidence"]
    no_overlap = summary.conclusions(runs, {"external_overlap_fraction": 0.0, "clean": None, "full": None}).loc[claim]
    assert "look for other differences" in no_overlap["verdict"]  # 90% external well above 80% internal


def test_out_of_distribution_claim_uses_notebook_09s_plain_resize():
    runs = {"V13": [result("V13", 1, 0.80)]}
    claim = summary.CONCLUSIONS["ood"]
    assert summary.conclusions(runs)["verdict"][claim].startswith("not tested")

    def photos(accuracy, confidence, embedded=False):
        return {"ood": {"settings": {"plain resize": {"n": 400, "accuracy": accuracy, "mean_confidence": confidence,
                                                      "ece": abs(confidence - accuracy)}}},
                "provenance": {"data": {"ood": {"embedded": embedded}}}}

    assert summary.conclusions(runs, photos=photos(0.30, 0.90)).loc[claim, "verdict"].startswith("supported")
    assert summary.conclusions(runs, photos=photos(0.30, 0.30)).loc[claim, "verdict"].startswith("partly supported")
    assert summary.conclusions(runs, photos=photos(0.82, 0.85)).loc[claim, "verdict"].startswith("not supported")
    generated = summary.conclusions(runs, photos=photos(0.30, 0.90, embedded=True)).loc[claim]
    assert "generated" in generated["caveats"] and "see caveats" in generated["verdict"]


def test_collect_results_leaves_out_runs_on_other_data(tmp_path):
    settings = config.run_settings("cpu", seed=42, output_dir=tmp_path)
    other = {**COMPARABLE, "data": {"internal": {"layout": "hfe", "embedded": False, "fingerprint": "other"}}}
    for seed, prov in ((42, COMPARABLE), (43, COMPARABLE), (44, other)):
        s = config.run_settings("cpu", seed=seed, output_dir=tmp_path)
        write_result(result_path(s, "V4"), result("V4", seed, 0.7, prov))
    runs, notes = summary.collect_results(settings)
    assert [r["provenance"]["seed"] for r in runs["V4"]] == [42, 43]
    assert len(notes) == 1 and "V4" in notes[0]


def test_audit_evidence_reads_notebook_07s_result():
    audit = {"summaries": {"internal_vs_external": {"right_flagged_fraction": 0.118}},
             "champion": {"full": {"accuracy": 0.5}, "non_overlapping": {"accuracy": 0.45}}}
    evidence = summary.audit_evidence(audit)
    assert evidence["external_overlap_fraction"] == 0.118 and evidence["accuracy_clean"] == 0.45
    assert evidence["clean"] == {"accuracy": 0.45} and evidence["full"] == {"accuracy": 0.5}
    assert summary.audit_evidence({"summaries": {}, "champion": None})["accuracy_clean"] is None
