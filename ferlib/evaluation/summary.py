"""Study vs reproduction: every number the study reports beside this run's, with an interval and a verdict,
and the study's four conclusions judged on this run's evidence. Built only from result files."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from ferlib.classes import STUDY
from ferlib.config import RunSettings
from ferlib.evaluation.chance import NO_EVIDENCE, ChanceCheck, chance_levels
from ferlib.evaluation.compare import STUDY_PAIRS, accuracy_interval, paired_summary, paired_tests, seed_metrics
from ferlib.evaluation.results import read_result
from ferlib.evaluation.stats import confusion_intervals
from ferlib.experiments import FROM_SCRATCH
from ferlib.runnames import RunName
from ferlib.study import STUDY_ACCURACY, STUDY_TABLE2, STUDY_TABLE2_SUMMARY, STUDY_TABLE3, STUDY_TABLE3_SUMMARY

ROUNDING = 0.005  # the study prints two decimals: a value within half a unit of the interval counts as inside
ALPHA = 0.05


def result_files(settings: RunSettings) -> list[Path]:
    """Return the result files of this run's profile and data (``outputs/results/<profile>/<data>/``), sorted."""
    folder = settings.results_dir
    return sorted(p for p in folder.glob("*-seed*.json") if RunName.parse(p.name)) if folder.is_dir() else []


def collect_results(settings: RunSettings) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Return this run's results by name (per seed, its own first) and notes on files left out (on other data)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in result_files(settings):
        found.setdefault(RunName.parse(path.name).name, []).append(read_result(path))
    seed = lambda r: r.get("provenance", {}).get("seed")
    data = lambda r: sorted((k, v.get("fingerprint")) for k, v in r.get("provenance", {}).get("data", {}).items()
                            if isinstance(v, dict))
    notes = []
    for name, results in found.items():
        results.sort(key=lambda r: (seed(r) != settings.seed, seed(r) or 0))
        found[name] = [r for r in results if data(r) == data(results[0])]
        if len(found[name]) < len(results):
            notes.append(f"{name}: {len(results) - len(found[name])} result file(s) on other data than seed "
                         f"{seed(results[0])}'s left out")
    return found, notes


def comparability(result: dict[str, Any]) -> list[str]:
    """Return why a result cannot be set against the study's number (empty when it can)."""
    prov = result.get("provenance", {})
    reasons = []
    for role, data in prov.get("data", {}).items():
        if not isinstance(data, dict) or "layout" not in data:
            continue
        if data.get("embedded"):
            reasons.append(f"{role} data is the embedded synthetic set")
        elif role == "internal" and data["layout"] != "hfe":
            reasons.append(f"internal data is {data['layout']} (e.g. FER-2013), not Human Face Emotions")
    weights = str(prov.get("weights", ""))
    if "random" in weights:
        reasons.append("backbone randomly initialised (the study used ImageNet weights)")
    elif FROM_SCRATCH in weights:
        reasons.append(f"backbone trained {FROM_SCRATCH} (no ImageNet weights on this machine)")
    if prov.get("max_epochs"):
        reasons.append(f"epochs capped at {prov['max_epochs']} (a check of the code path)")
    if prov.get("profile") not in (None, "full"):
        reasons.append(f"profile {prov.get('profile')}: scaled-down settings, not the study's")
    return reasons


def verdict(study_value: float | None, value: float | None, ci: list[float] | None, reasons: list[str]) -> str:
    """Return "reproduced", "not reproduced (...)", "not comparable" or "not run" for one number."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "not run"
    if study_value is None:
        return "no study value"
    if reasons:
        return "not comparable"
    low, high = ci if ci else (value, value)
    if low - ROUNDING <= study_value <= high + ROUNDING:
        return "reproduced"
    return "not reproduced (study higher)" if study_value > high else "not reproduced (study lower)"


def _row(claim: str, where: str, study_value: float | None, value: float | None, ci: list[float] | None,
         reasons: list[str], n: int | None = None, seeds: int | None = None) -> dict[str, Any]:
    return {"claim": claim, "where in the study": where, "study": study_value, "this run": value,
            "this run ci_low": ci[0] if ci else None, "this run ci_high": ci[1] if ci else None, "n": n, "seeds": seeds,
            "verdict": verdict(study_value, value, ci, reasons), "why": "; ".join(reasons)}


def _report_rows(prefix: str, where: str, evaluation: dict[str, Any], table: dict, summary: dict,
                 reasons: list[str]) -> list[dict[str, Any]]:
    ci = confusion_intervals(evaluation["confusion"], evaluation["classes"])
    rows = [_row(f"{prefix} accuracy", where, summary["accuracy"], evaluation["accuracy"], ci["accuracy"], reasons,
                 evaluation["n"])]
    rows += [_row(f"{prefix} {name} F1", where, summary[key], evaluation["averages"][name]["f1"], ci[key], reasons,
                  evaluation["n"]) for name, key in (("macro avg", "macro_f1"), ("weighted avg", "weighted_f1"))]
    return rows + [_row(f"{prefix} {c} {metric}", where, table[c][metric], evaluation["per_class"][c][metric],
                        ci[metric][c], reasons, evaluation["per_class"][c]["support"])
                   for c in STUDY.names for metric in ("precision", "recall", "f1")]  # the study's tables


def study_numbers(runs: dict[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """Return one row per number the study reports: its value, this run's (mean over seeds), interval, verdict."""
    rows = []
    for key, study in STUDY_ACCURACY.items():
        results = runs.get(key)
        if not results:
            rows.append(_row(f"{key} validation accuracy", study["where"], study["accuracy"], None, None, []))
            continue
        m = seed_metrics(results)
        reasons = comparability(results[0])
        rows.append(_row(f"{key} validation accuracy", study["where"], study["accuracy"], m["accuracy"],
                         m["accuracy_ci"], reasons, m["n"], len(results)))
        rows += [_row(f"{key} {c} F1", study["where"], f1, m["f1"][c], m["f1_ci"][c], reasons, m["n"], len(results))
                 for c, f1 in study.get("f1", {}).items()]
    if runs.get("V13"):
        v13 = runs["V13"][0]
        rows += _report_rows("V13 (Table 2)", "Table 2", v13["validation"], STUDY_TABLE2, STUDY_TABLE2_SUMMARY,
                             comparability(v13))
    if runs.get("V13_external"):
        ext = runs["V13_external"][0]
        reasons = comparability(ext)
        external = ext.get("provenance", {}).get("data", {}).get("external", {})
        if external.get("layout") not in (None, "fer-folder", "fer-csv"):
            reasons.append("external data is not FER-2013")
        if ext["external"]["n"] != STUDY_TABLE3_SUMMARY["n"]:
            reasons.append(f"{ext['external']['n']:,} test images, the study's {STUDY_TABLE3_SUMMARY['n']:,}")
        rows += _report_rows("V13 external (Table 3)", "Table 3", ext["external"], STUDY_TABLE3, STUDY_TABLE3_SUMMARY,
                             reasons)
    return pd.DataFrame(rows).set_index("claim")


def _judge_pairs(summary: pd.DataFrame, expect_a_better: bool) -> tuple[str, str]:
    """Return (verdict, evidence) for pairs where the study expects A better (or worse) than B."""
    if summary.empty:
        return "not tested", "the experiments were not run (with per-image predictions)"
    evidence = "; ".join(f"{r['A']} - {r['B']}: {r['mean A - B']:+.1%} mean over {r['seeds']} seed(s), significant "
                         f"(McNemar p<{ALPHA}) for {r['A']} in {r['A better (p<alpha)']}, for {r['B']} in "
                         f"{r['B better (p<alpha)']}" for _, r in summary.iterrows())
    wanted, against = ["A better (p<alpha)", "B better (p<alpha)"][::1 if expect_a_better else -1]
    if (summary[wanted] > summary["seeds"] / 2).all():
        return "supported", evidence
    if (summary[against] > summary["seeds"] / 2).any():
        return "contradicted", evidence
    return "not supported (no consistent significant difference)", evidence


# The study's four conclusions (abstract, 2.2, 2.3, 4 and 5), in its words; the first has two parts.
CONCLUSIONS = {
    "augmentation": "1. Geometric and photometric augmentation hurt: V8, V9 and V11 below V4 (Table 1)",
    "augmentation_weights": "1b. ...most of all together with class weights: V8 below V9 (Table 1)",
    "resnet": "2. ResNet50V2 with class weights and fine-tuning is best: V13 above V5 and V7; fine-tuning "
              "adds to the head (V13 above V12)",
    "generalisation": "3. 91% on FER-2013, above the internal 87%, shows the model generalises",
    "ood": "4. On real-world photos (out of distribution) the model fails with high confidence",
}


def conclusions(runs: dict[str, list[dict[str, Any]]], audit: dict[str, Any] | None = None,
                photos: dict[str, Any] | None = None) -> pd.DataFrame:
    """Return the study's conclusions, each with this run's verdict, its evidence and caveats. `audit` is
    `audit_evidence` of notebook 07's result; `photos` is notebook 09's result (for the OOD claim)."""
    rows = []
    chance = chance_levels(runs)  # models no better than always answering the largest class: not evidence

    def add(claim: str, pairs: list[tuple[str, str]], expect_a_better: bool) -> None:
        ran = [p for p in pairs if runs.get(p[0]) and runs.get(p[1])]
        learned = [p for p in ran if p[0] not in chance and p[1] not in chance]
        if ran and not learned:
            rows.append(_no_evidence(claim, sorted({k for p in ran for k in p if k in chance}), chance))
            return
        chosen = [p for p in STUDY_PAIRS if p[:2] in learned]
        verdict_, evidence = _judge_pairs(paired_summary(paired_tests(runs, chosen), ALPHA), expect_a_better)
        if left := sorted({k for p in ran if p not in learned for k in p if k in chance}):
            evidence += "; left out, at chance: " + "; ".join(chance[k].describe(k) for k in left)
        caveats = sorted({r for pair in pairs for k in pair for res in runs.get(k, [])[:1] for r in comparability(res)})
        if caveats and verdict_ != "not tested":
            verdict_ += " on this run's settings, which differ from the study's (see caveats)"
        rows.append(_conclusion(claim, verdict_, evidence, "; ".join(caveats)))

    add(CONCLUSIONS["augmentation"], [("V8", "V4"), ("V9", "V4"), ("V11", "V4")], False)
    add(CONCLUSIONS["augmentation_weights"], [("V8", "V9")], False)
    add(CONCLUSIONS["resnet"], [("V13", "V5"), ("V13", "V7"), ("V13", "V12")], True)
    at_chance_v13 = {k: chance[k] for k in ("V13",) if k in chance}
    at_chance_v13 |= chance_levels({"V13 external": runs.get("V13_external", [])[:1]}, "external")
    for claim, judge in ((CONCLUSIONS["generalisation"], lambda: _generalisation(runs, audit)),
                         (CONCLUSIONS["ood"], lambda: _out_of_distribution(runs, photos))):
        rows.append(_no_evidence(claim, list(at_chance_v13), at_chance_v13) if at_chance_v13 else judge())
    return pd.DataFrame(rows).set_index("conclusion")


def _conclusion(claim: str, verdict_: str, evidence: str = "", caveats: str = "") -> dict[str, Any]:
    return {"conclusion": claim, "verdict": verdict_, "evidence": evidence, "caveats": caveats}


def _no_evidence(claim: str, names: list[str], chance: dict[str, ChanceCheck]) -> dict[str, Any]:
    """Return a conclusion's row when every model it rests on is at chance (see ferlib.evaluation.chance)."""
    return _conclusion(claim, NO_EVIDENCE,
                       "; ".join(chance[k].describe(k) for k in names) + " (one-sided binomial test, p >= 0.05)",
                       "a model at chance learned nothing a constant answer would not: train longer or on real data")


VERDICT_KINDS = ("supported", "partly supported", "contradicted", "not supported", "no evidence", "not tested")


def verdict_kind(verdict_: str) -> str:
    """Return the kind of a conclusion's verdict (one of VERDICT_KINDS), for counting them."""
    return next((k for k in sorted(VERDICT_KINDS, key=len, reverse=True) if str(verdict_).startswith(k)), "other")


def conclusion_counts(verdicts: list[str]) -> dict[str, int]:
    """Return how many conclusions got each kind of verdict, in VERDICT_KINDS order (kinds with none left out)."""
    kinds = [verdict_kind(v) for v in verdicts]
    return {k: kinds.count(k) for k in (*VERDICT_KINDS, "other") if kinds.count(k)}


def accuracy_text(evaluation: dict[str, Any], ci: list[float] | None = None) -> str:
    """Return an accuracy and its 95% interval (`accuracy_interval` unless given): "61.5% [59.0%, 64.0%]"."""
    low, high = accuracy_interval(evaluation) if ci is None else ci
    return f"{evaluation['accuracy']:.1%} [{low:.1%}, {high:.1%}]"


def _generalisation(runs: dict[str, list[dict[str, Any]]], audit: dict[str, Any] | None) -> dict[str, Any]:
    """Judge "the external score shows generalisation" on the external images without a copy in training: the
    verdict sets the clean part's accuracy against the internal validation split's."""
    claim = CONCLUSIONS["generalisation"]
    if not runs.get("V13_external") or not runs.get("V13"):
        return _conclusion(claim, "not tested", "V13 and its external test were not run")
    internal, external = runs["V13"][0]["validation"], runs["V13_external"][0]["external"]
    ci_int, ci_ext = accuracy_interval(internal), accuracy_interval(external)
    evidence = f"internal {accuracy_text(internal, ci_int)}, external {accuracy_text(external, ci_ext)}"
    caveats = "; ".join(sorted(set(comparability(runs["V13_external"][0]))))
    if audit is None:
        return _conclusion(claim, "not tested (no leakage audit: run notebook 07)", evidence, caveats)
    overlap = audit.get("external_overlap_fraction") or 0.0
    clean, full = audit.get("clean"), audit.get("full")
    evidence += f"; {overlap:.1%} of the external images have a copy in the internal data"
    if overlap and (clean is None or not clean.get("n")):
        return _conclusion(claim, "not tested: every external image has a copy in the internal data", evidence,
                           caveats)
    ci_ref, where = ci_ext, "with no external image copied in the internal data"
    if overlap:
        ci_ref, where = accuracy_interval(clean), "on the external images without a copy"
        evidence += (f"; without them the champion scores {accuracy_text(clean, ci_ref)} on "
                     f"{clean['n']:,} images")
        if full is not None:
            evidence += (f" (all {full['n']:,}: {full['accuracy']:.1%}; the copies move it by "
                         f"{100 * (full['accuracy'] - clean['accuracy']):+.1f} points)")
    if ci_ref[1] < ci_int[0]:
        verdict_ = f"not supported: {where}, external accuracy is below the internal one"
    elif ci_ref[0] > ci_int[1]:
        verdict_ = f"supported, but {where} external accuracy is above the internal one: look for other differences"
    else:
        verdict_ = f"supported: {where}, external accuracy matches the internal one"
    if caveats:
        verdict_ += " (on this run's settings, see caveats)"
    return _conclusion(claim, verdict_, evidence, caveats)


def _out_of_distribution(runs: dict[str, list[dict[str, Any]]], photos: dict[str, Any] | None) -> dict[str, Any]:
    """Judge the OOD claim on notebook 09's labelled out-of-distribution faces, with the study's plain resize."""
    claim = CONCLUSIONS["ood"]
    plain = ((photos or {}).get("ood") or {}).get("settings", {}).get("plain resize")
    if plain is None or not runs.get("V13"):
        return _conclusion(claim, "not tested (run notebooks 05 and 09)")
    if (photos or {}).get("model_role", "run") != "run":  # 09 showed another model than this run's V13
        return _conclusion(claim, "not tested: notebook 09 did not use this run's V13",
                           str(photos.get("model_choice", "")))
    internal = runs["V13"][0]["validation"]
    ci_int, n = accuracy_interval(internal), int(plain["n"])
    low, high = binomtest(round(plain["accuracy"] * n), n).proportion_ci(confidence_level=0.95)
    evidence = (f"plain resize on {n} labelled out-of-distribution faces: accuracy "
                f"{accuracy_text(plain, [low, high])} at mean confidence {plain['mean_confidence']:.1%} "
                f"(ECE {plain['ece']:.3f}); internal validation {accuracy_text(internal, ci_int)}")
    if high < ci_int[0] and plain["mean_confidence"] > high:
        verdict_ = "supported: accuracy falls out of distribution while confidence stays above it"
    elif high < ci_int[0]:
        verdict_ = "partly supported: accuracy falls out of distribution, but confidence falls with it"
    else:
        verdict_ = "not supported: accuracy out of distribution is not below the internal one"
    caveats = sorted(set(comparability(runs["V13"][0])))
    if (photos.get("provenance", {}).get("data", {}).get("ood") or {}).get("embedded"):
        caveats.append("the out-of-distribution faces are generated, not real photos")
    if caveats:
        verdict_ += " (on this run's settings, see caveats)"
    return _conclusion(claim, verdict_, evidence, "; ".join(caveats))


def verdict_counts(numbers: pd.DataFrame) -> pd.Series:
    """Return how many of the study's numbers got each verdict."""
    return numbers["verdict"].value_counts()


def data_provenance(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Return the data blocks (internal, external) of the summarised results, for the summary's provenance."""
    blocks: dict[str, Any] = {}
    for results in runs.values():
        for role, data in results[0].get("provenance", {}).get("data", {}).items():
            # notebook 09 may show the shipped model, whose data is not this run's
            if role != "shipped_model" and isinstance(data, dict) and "fingerprint" in data:
                blocks.setdefault(role, data)
    return blocks


def audit_evidence(audit: dict[str, Any]) -> dict[str, Any]:
    """Return what the generalisation verdict needs from notebook 07's result: overlap and clean/full scores."""
    pair = audit.get("summaries", {}).get("internal_vs_external", {})
    champion = audit.get("champion") or {}
    clean = champion.get("non_overlapping") or None
    return {"external_overlap_fraction": pair.get("right_flagged_fraction"),
            "accuracy_clean": clean.get("accuracy") if clean else None, "clean": clean,
            "full": champion.get("full") or None}
