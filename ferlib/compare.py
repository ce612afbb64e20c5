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
