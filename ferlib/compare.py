""""Study vs this run" tables, built from result files and the study's numbers (ferlib.study)."""
from __future__ import annotations

from typing import Any

import pandas as pd

from ferlib.classes import CLASS_NAMES
from ferlib.results import study_vs_run
from ferlib.study import HFE_CLASS_COUNTS, STUDY_ACCURACY


def eda_summary(counts: pd.Series, manifest: pd.DataFrame) -> dict[str, Any]:
    """Return the EDA numbers as data: counts, shares, imbalance, unused files by status."""
    counts = counts.reindex(list(CLASS_NAMES), fill_value=0)
    shares = counts / max(int(counts.sum()), 1)
    return {
        "counts": {k: int(v) for k, v in counts.items()},
        "shares": {k: float(v) for k, v in shares.items()},
        "total": int(counts.sum()),
        "largest_class": str(counts.idxmax()),
        "imbalance_ratio": float(counts.max() / max(counts.min(), 1)),
        "unused_by_status": {k: int(v) for k, v in manifest["status"].value_counts().items() if k != "ok"},
    }


def eda_vs_study(summary: dict[str, Any]) -> pd.DataFrame:
    """Return the class-balance comparison between the study's dataset (Figure 1) and this run's data."""
    study_counts = pd.Series(HFE_CLASS_COUNTS)
    study_shares = study_counts / study_counts.sum()
    rows = [{"metric": "images (five classes)", "study": int(study_counts.sum()), "this run": summary["total"],
             "note": "the study's Human Face Emotions count"}]
    rows += [{"metric": f"share {c}", "study": round(float(study_shares[c]), 3),
              "this run": round(summary["shares"][c], 3), "note": ""} for c in CLASS_NAMES]
    rows.append({"metric": "largest / smallest class", "study": round(float(study_counts.max() / study_counts.min()), 2),
                 "this run": round(summary["imbalance_ratio"], 2), "note": "imbalance that class weights address"})
    return study_vs_run(rows)


def experiment_vs_study(result: dict[str, Any]) -> pd.DataFrame:
    """Return validation accuracy (and the study's other reported numbers) beside this run's for one experiment."""
    key = result["experiment"]
    study = STUDY_ACCURACY.get(key, {})
    val = result["validation"]
    rows = [{"metric": "validation accuracy", "study": study.get("accuracy"), "this run": round(val["accuracy"], 4),
             "note": f"study: {study.get('where', 'not reported')}; this run: {val['n']:,} validation images"}]
    for cls, f1 in study.get("f1", {}).items():
        rows.append({"metric": f"F1 {cls}", "study": f1, "this run": round(val["per_class"][cls]["f1"], 4), "note": ""})
    if "overfitting" in result:
        of = result["overfitting"]
        rows.append({"metric": "validation loss rise after its minimum", "study": None,
                     "this run": round(of["val_loss_rise"], 4),
                     "note": "study: validation loss diverged (overfitting); > 0 here means it rose again"})
    return study_vs_run(rows)


def _study_acc(key: str) -> float | None:
    return STUDY_ACCURACY.get(key, {}).get("accuracy")


def table1(results: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Return the study's Table 1 (augmentation ablations) with this run's accuracy beside the study's."""
    rows = []
    for key in ("V4", "V8", "V9", "V10", "V11"):
        if key not in results:
            continue
        r = results[key]
        s = r["settings"]
        rows.append({"model": key, "configuration": r["title"], "class weights": s["class_weights"],
                     "augmentation": s["augmentation"], "study accuracy": _study_acc(key),
                     "this run accuracy": r["validation"]["accuracy"], "validation images": r["validation"]["n"]})
    table = pd.DataFrame(rows).set_index("model")
    table["difference"] = table["this run accuracy"] - pd.to_numeric(table["study accuracy"], errors="coerce")
    return table


def architecture_table(results: dict[str, dict[str, Any]], keys: tuple[str, ...] = ("V5", "V7", "V12", "V13")
                       ) -> pd.DataFrame:
    """Return accuracy, macro F1 and per-class F1 of each architecture, with the study's numbers beside."""
    rows = []
    for key in keys:
        if key not in results:
            continue
        r = results[key]
        val = r["validation"]
        row = {"model": key, "configuration": r["title"], "input px": r["settings"]["image_size"],
               "study accuracy": _study_acc(key), "this run accuracy": val["accuracy"],
               "macro F1": val["averages"]["macro avg"]["f1"]}
        row |= {f"F1 {c}": val["per_class"][c]["f1"] for c in CLASS_NAMES}
        row["study F1 Fear"] = STUDY_ACCURACY.get(key, {}).get("f1", {}).get("Fear")
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def classification_vs_study(result: dict[str, Any], study_table: dict[str, dict[str, float]],
                            study_summary: dict[str, float]) -> pd.DataFrame:
    """Return a classification report with the study's (Table 2 or 3) and this run's values side by side."""
    rows = {}
    for c in CLASS_NAMES:
        s, m = study_table[c], result["per_class"][c]
        rows[c] = [s["precision"], m["precision"], s["recall"], m["recall"], s["f1"], m["f1"], s["support"], m["support"]]
    rows["accuracy"] = [None, None, None, None, study_summary["accuracy"], result["accuracy"],
                        study_summary["n"], result["n"]]
    for name, key in (("macro avg", "macro_f1"), ("weighted avg", "weighted_f1")):
        m = result["averages"][name]
        rows[name] = [None, m["precision"], None, m["recall"], study_summary[key], m["f1"], study_summary["n"], result["n"]]
    columns = pd.MultiIndex.from_product([["precision", "recall", "f1-score", "support"], ["study", "this run"]])
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns)
