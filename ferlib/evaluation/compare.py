""""Study vs this run" tables, built from result files and the study's numbers (ferlib.study)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ferlib.classes import STUDY
from ferlib.evaluation.stats import confusion_intervals, decode_labels, mcnemar, seed_mean_intervals, seed_spread
from ferlib.study import HFE_CLASS_COUNTS, STUDY_ACCURACY, STUDY_TABLE3_SUMMARY


def study_vs_run(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Return a "study vs this run" table from rows with metric, study, this run, note and optionally "ci" (this
    run's 95% interval: then "this run ci_low/ci_high" columns), with the difference added."""
    table = pd.DataFrame(rows, columns=["metric", "study", "this run", "note"])
    if any(r.get("ci") for r in rows):
        cis = [r.get("ci") or (None, None) for r in rows]
        table.insert(3, "this run ci_low", [c[0] for c in cis])
        table.insert(4, "this run ci_high", [c[1] for c in cis])
    table["difference"] = (pd.to_numeric(table["this run"], errors="coerce")
                           - pd.to_numeric(table["study"], errors="coerce"))
    return table.set_index("metric")


def eda_summary(counts: pd.Series, manifest: pd.DataFrame) -> dict[str, Any]:
    """Return the EDA numbers as data: counts, shares, imbalance, unused files by status."""
    counts = counts.reindex(list(STUDY.names), fill_value=0)
    return {
        "counts": {k: int(v) for k, v in counts.items()},
        "shares": {k: float(v) for k, v in (counts / max(int(counts.sum()), 1)).items()},
        "total": int(counts.sum()),
        "largest_class": str(counts.idxmax()),
        "imbalance_ratio": float(counts.max() / max(counts.min(), 1)),
        "unused_by_status": {k: int(v) for k, v in manifest["status"].value_counts().items() if k != "ok"},
    }


def eda_vs_study(summary: dict[str, Any]) -> pd.DataFrame:
    """Return the class-balance comparison between the study's dataset (Figure 1) and this run's data."""
    study_counts = pd.Series(HFE_CLASS_COUNTS)
    rows = [{"metric": "images (five classes)", "study": int(study_counts.sum()), "this run": summary["total"],
             "note": "the study's Human Face Emotions count"}]
    rows += [{"metric": f"share {c}", "study": round(float(study_counts[c] / study_counts.sum()), 3),
              "this run": round(summary["shares"][c], 3), "note": ""} for c in STUDY.names]
    rows.append({"metric": "largest / smallest class",
                 "study": round(float(study_counts.max() / study_counts.min()), 2),
                 "this run": round(summary["imbalance_ratio"], 2), "note": "imbalance that class weights address"})
    return study_vs_run(rows)


def experiment_vs_study(result: dict[str, Any]) -> pd.DataFrame:
    """Return validation accuracy (and the study's other reported numbers) beside this run's for one experiment."""
    study, val = STUDY_ACCURACY.get(result["experiment"], {}), result["validation"]
    ci = confusion_intervals(val["confusion"], val["classes"])
    rows = [{"metric": "validation accuracy", "study": study.get("accuracy"), "this run": round(val["accuracy"], 4),
             "ci": ci["accuracy"],
             "note": f"study: {study.get('where', 'not reported')}; this run: {val['n']:,} validation images"}]
    rows += [{"metric": f"F1 {cls}", "study": f1, "this run": round(val["per_class"][cls]["f1"], 4),
              "ci": ci["f1"][cls], "note": ""} for cls, f1 in study.get("f1", {}).items()]
    if "overfitting" in result:
        rows.append({"metric": "validation loss rise after its minimum", "study": None,
                     "this run": round(result["overfitting"]["val_loss_rise"], 4),
                     "note": "study: validation loss diverged (overfitting); > 0 here means it rose again"})
    return study_vs_run(rows)


def _study_acc(key: str) -> float | None:
    return STUDY_ACCURACY.get(key, {}).get("accuracy")


Runs = dict[str, list[dict[str, Any]] | dict[str, Any]]


def _as_lists(runs: Runs) -> dict[str, list[dict[str, Any]]]:
    return {k: v if isinstance(v, list) else [v] for k, v in runs.items() if v}


def _with_ci(name: str, value: float, ci: list[float] | None) -> dict[str, Any]:
    low, high = ci if ci else (None, None)
    return {name: value, f"{name} ci_low": low, f"{name} ci_high": high}


def seed_metrics(results: list[dict[str, Any]], split: str = "validation") -> dict[str, Any]:
    """Return mean accuracy and F1 over seeds with 95% bootstrap intervals of the mean and the seed spread."""
    evals = [r[split] for r in results]
    classes = evals[0]["classes"]
    ci = seed_mean_intervals([e["confusion"] for e in evals], classes)
    accs = [e["accuracy"] for e in evals]
    return {"accuracy": float(np.mean(accs)), "accuracy_ci": ci["accuracy"], "spread": seed_spread(accs),
            "macro_f1": float(np.mean([e["averages"]["macro avg"]["f1"] for e in evals])),
            "macro_f1_ci": ci["macro_f1"],
            "f1": {c: float(np.mean([e["per_class"][c]["f1"] for e in evals])) for c in classes},
            "f1_ci": ci["f1"], "seeds": [r["provenance"]["seed"] for r in results], "n": evals[0]["n"]}


def _seed_columns(m: dict[str, Any]) -> dict[str, Any]:
    return {**_with_ci("this run accuracy", m["accuracy"], m["accuracy_ci"]), "seed sd": m["spread"]["sd"],
            "seeds": len(m["seeds"])}


def table1(runs: Runs) -> pd.DataFrame:
    """Return the study's Table 1 (augmentation ablations): mean accuracy over seeds beside the study's."""
    rows = [{"model": key, "configuration": results[0]["title"], "class weights": s["class_weights"],
             "augmentation": s["augmentation"], "study accuracy": _study_acc(key), **_seed_columns(m),
             "validation images": m["n"]}
            for key, results in _as_lists(runs).items() if key in ("V4", "V8", "V9", "V10", "V11")
            for s, m in [(results[0]["settings"], seed_metrics(results))]]
    table = pd.DataFrame(rows).set_index("model")
    table["difference"] = table["this run accuracy"] - pd.to_numeric(table["study accuracy"], errors="coerce")
    return table


def architecture_table(runs: Runs, keys: tuple[str, ...] = ("V5", "V7", "V12", "V13")) -> pd.DataFrame:
    """Return accuracy, macro and per-class F1 of each architecture (means over seeds) beside the study's."""
    rows = []
    lists = _as_lists(runs)
    for key, results in ((k, lists[k]) for k in keys if k in lists):
        m = seed_metrics(results)
        row = {"model": key, "configuration": results[0]["title"], "input px": results[0]["settings"]["image_size"],
               "study accuracy": _study_acc(key), **_seed_columns(m),
               **_with_ci("macro F1", m["macro_f1"], m["macro_f1_ci"])}
        for c in STUDY.names:
            row |= _with_ci(f"F1 {c}", m["f1"][c], m["f1_ci"][c])
        row["study F1 Fear"] = STUDY_ACCURACY.get(key, {}).get("f1", {}).get("Fear")
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def seed_table(runs: Runs, split: str = "validation") -> pd.DataFrame:
    """Return one row per experiment and seed: accuracy with its 95% interval and macro F1 (the raw runs)."""
    rows = [{"model": key, "seed": r["provenance"]["seed"],
             **_with_ci("accuracy", e["accuracy"], e.get("accuracy_ci") or accuracy_interval(e)),
             "macro F1": e["averages"]["macro avg"]["f1"], "images": e["n"]}
            for key, results in _as_lists(runs).items() for r in results for e in [r[split]]]
    return pd.DataFrame(rows).set_index(["model", "seed"])


def paired_tests(runs: Runs, pairs: list[tuple[str, str, str]], split: str = "validation") -> pd.DataFrame:
    """Return McNemar's test for each (A, B, question) pair and each seed both were run with."""
    lists = _as_lists(runs)
    rows = []
    for a, b, question in (p for p in pairs if p[0] in lists and p[1] in lists):
        by_seed_b = {r["provenance"]["seed"]: r[split] for r in lists[b]}
        for ra in lists[a]:
            seed, ea = ra["provenance"]["seed"], ra[split]
            eb = by_seed_b.get(seed)
            if eb is None or "y_pred" not in ea or "y_pred" not in eb:
                continue
            if ea["y_true"] != eb["y_true"]:
                raise ValueError(f"{a} and {b} (seed {seed}) were not scored on the same images")
            test = mcnemar(decode_labels(ea["y_true"]), decode_labels(ea["y_pred"]), decode_labels(eb["y_pred"]))
            rows.append({"question": question, "A": a, "B": b, "seed": seed, "accuracy A": ea["accuracy"],
                         "accuracy B": eb["accuracy"], "A - B": ea["accuracy"] - eb["accuracy"],
                         "only A right": test.only_a, "only B right": test.only_b, "McNemar statistic": test.statistic,
                         "p-value": test.p_value, "test": test.method})
    return pd.DataFrame(rows)


# The study's paired claims, as (A, B, question): augmentation vs none, class weights vs none, V13 vs V5.
STUDY_PAIRS: list[tuple[str, str, str]] = [
    ("V8", "V4", "geometric augmentation (with class weights) vs none"),
    ("V9", "V4", "geometric augmentation without class weights vs none with them"),
    ("V11", "V4", "photometric augmentation (with class weights) vs none"),
    ("V8", "V9", "class weights vs none (geometric augmentation)"),
    ("V11", "V10", "class weights vs none (photometric augmentation)"),
    ("V13", "V5", "ResNet50V2 (V13) vs MobileNetV2 (V5)"),
    ("V13", "V7", "ResNet50V2 (V13) vs EfficientNetB0 (V7)"),
    ("V13", "V12", "fine-tuning vs head only (ResNet50V2)"),
]


def paired_summary(tests: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Return, per question, the mean A - B over seeds and in how many seeds McNemar found A or B better."""
    if tests.empty:
        return pd.DataFrame(columns=["A", "B", "mean A - B", "seeds", "A better (p<alpha)", "B better (p<alpha)"])
    significant = tests["p-value"] < alpha
    by = tests.assign(a_better=significant & (tests["A - B"] > 0),
                      b_better=significant & (tests["A - B"] < 0)).groupby("question", sort=False)
    return pd.DataFrame({"A": by["A"].first(), "B": by["B"].first(), "mean A - B": by["A - B"].mean(),
                         "seeds": by.size(), "A better (p<alpha)": by["a_better"].sum(),
                         "B better (p<alpha)": by["b_better"].sum()})


def with_intervals(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Return a display copy where each column with "<col> ci_low/ci_high" siblings reads "value [low, high]"."""
    def text(value: Any, low: Any, high: Any) -> str:  # pd.isna: None or NaN
        shown = "" if pd.isna(value) else f"{value:.{digits}f}"
        return shown if pd.isna(value) or pd.isna(low) else f"{shown} [{low:.{digits}f}, {high:.{digits}f}]"

    out = table.copy()
    for col in list(table.columns):
        low, high = [(*col[:-1], f"{col[-1]} {s}") if isinstance(col, tuple) else f"{col} {s}"
                     for s in ("ci_low", "ci_high")]
        if low in table.columns and high in table.columns:
            out[col] = [text(v, lo, hi) for v, lo, hi in zip(table[col], table[low], table[high])]
            out = out.drop(columns=[low, high])
    return out


def classification_vs_study(result: dict[str, Any], study_table: dict[str, dict[str, float]],
                            study_summary: dict[str, float]) -> pd.DataFrame:
    """Return a classification report with the study's (Table 2 or 3) and this run's values side by side."""
    rows = {c: [v for k in ("precision", "recall", "f1", "support")
                for v in (study_table[c][k], result["per_class"][c][k])] for c in STUDY.names}
    rows["accuracy"] = [None, None, None, None, study_summary["accuracy"], result["accuracy"],
                        study_summary["n"], result["n"]]
    for name, key in (("macro avg", "macro_f1"), ("weighted avg", "weighted_f1")):
        m = result["averages"][name]
        rows[name] = [None, m["precision"], None, m["recall"], study_summary[key], m["f1"], study_summary["n"],
                      result["n"]]
    columns = pd.MultiIndex.from_product([["precision", "recall", "f1-score", "support"], ["study", "this run"]])
    table = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    ci = confusion_intervals(result["confusion"], result["classes"])  # from the confusion matrix: old results too
    intervals = {**ci["f1"], "accuracy": ci["accuracy"], "macro avg": ci["macro_f1"], "weighted avg": ci["weighted_f1"]}
    # the 95% interval of this run's value, placed right after it ("f1-score" holds accuracy in its row)
    after = table.columns.get_loc(("f1-score", "this run")) + 1
    table.insert(after, ("f1-score", "this run ci_low"), [intervals[r][0] for r in table.index])
    table.insert(after + 1, ("f1-score", "this run ci_high"), [intervals[r][1] for r in table.index])
    return table


def accuracy_interval(evaluation: dict[str, Any]) -> list[float]:
    """Return the 95% bootstrap interval [low, high] of an evaluation's accuracy."""
    return confusion_intervals(evaluation["confusion"], evaluation["classes"])["accuracy"]


AUGMENTATION_EFFECTS: list[tuple[str, str, str]] = [
    ("V8", "V4", "geometric, with class weights (V8 - V4)"),
    ("V9", "V4", "geometric, without class weights (V9 - V4)"),
    ("V11", "V4", "photometric, with class weights (V11 - V4)"),
    ("V8", "V9", "geometric: with minus without class weights (V8 - V9)"),
    ("V11", "V10", "photometric: with minus without class weights (V11 - V10)"),
]


def augmentation_effects(table: pd.DataFrame) -> pd.DataFrame:
    """Return each augmentation effect (difference in accuracy) in the study and in this run, from `table1`."""
    acc = table["this run accuracy"]
    rows = []
    for a, b, label in AUGMENTATION_EFFECTS:
        study_a, study_b = _study_acc(a), _study_acc(b)
        rows.append({"effect": label,
                     "study (one run)": study_a - study_b if study_a is not None and study_b is not None else None,
                     "this run (mean over seeds)": acc[a] - acc[b] if a in acc and b in acc else None})
    return pd.DataFrame(rows).set_index("effect")


def training_summary(runs: Runs) -> pd.DataFrame:
    """Return one row per experiment and seed: epochs trained per phase, the kept epoch, wall time, reuse."""
    rows = [{"model": key, "seed": r["provenance"]["seed"],
             "epochs per phase": " + ".join(str(n) for n in np.unique(r["history"]["phase"], return_counts=True)[1]),
             "kept epoch": r["best_epoch"], "kept phase": r["kept_phase"],
             "validation accuracy": r["validation"]["accuracy"],
             "training time (s)": round(r["provenance"]["wall_time_s"]),
             "reused": "yes" if r.get("reused_finished_run") else ""}
            for key, results in _as_lists(runs).items() for r in results]
    return pd.DataFrame(rows).set_index(["model", "seed"])


def external_support_note(described: dict[str, Any], n: int) -> str:
    """Return a sentence comparing how many external images this run scored with the study's Table 3."""
    study_n = STUDY_TABLE3_SUMMARY["n"]
    if n == study_n:
        return f"This run scored {n:,} external images, as many as the study's Table 3."
    usable = described.get("n_usable", n)
    capped = f" (a stratified subset of the {usable:,} usable images, by the profile)" if usable > n else ""
    return (f"This run scored {n:,} external images{capped} from {described['source']}; the study's Table 3 has "
            f"{study_n:,} (the five classes of the Kaggle FER-2013 test folder). Supports and counts differ; "
            f"accuracies and per-class scores can still be set side by side.")
