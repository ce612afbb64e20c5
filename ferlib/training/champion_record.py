"""What C1's result file says beyond its own scores: the ablation and learning curve measured beside it on the
same data, and where its test accuracy stands against the project's goal.

`run_champion` adds `champion_context` to `C1-seed<seed>.json`, so that one file answers "how good, how sure,
on what machine, and which parts of the recipe were shown to matter" (the issue's result file).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ferlib.training import cpu_champion as cc
from ferlib.training.budgets import budget_results, learning_curve


def ablation_summary(results: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Return the ablation table as plain data (one record per variant, NaN as null), or None without results."""
    if not results:
        return None
    table = cc.ablation_table(results).reset_index()
    budgets = sorted({r.get("epochs_run") for r in results.values() if r.get("epochs_run")})
    return {"compared_on": "validation split; McNemar on the flip-averaged predictions, against the recipe "
                          "('champion' row) trained with the same budget",
            "epochs": budgets, "variants": json.loads(table.to_json(orient="records"))}


def goal_status(result: dict[str, Any]) -> dict[str, Any]:
    """Return the project's goal and aim for C1's five-class test accuracy and whether this result reaches them
    (in the test-time mode chosen on validation); `reached` is None without an external score."""
    external = result.get("external")
    accuracy = external["accuracy"] if external else None
    return {"goal": cc.GOAL_ACCURACY, "aim": cc.AIM_ACCURACY, "test_accuracy": accuracy,
            "reached": None if accuracy is None else accuracy >= cc.GOAL_ACCURACY,
            "aim_reached": None if accuracy is None else accuracy >= cc.AIM_ACCURACY}


def champion_context(results_dir: Path, seed: int, result: dict[str, Any]) -> dict[str, Any]:
    """Return the `ablation`, `learning_curve` and `goal` entries of the result of C1 (or one of its budgets),
    from the ablation and budget results in the same data pair's results folder (finished so far) and `result`."""
    ablation = cc.read_ablation(results_dir, seed)
    label = result["experiment"] if result["experiment"] != cc.CHAMPION_KEY else "C1"
    budgets = {name: r for name, r in budget_results(results_dir, seed).items() if name != label}
    curve = learning_curve({**budgets, label: result}).reset_index()
    return {"ablation": ablation_summary(ablation), "learning_curve": json.loads(curve.to_json(orient="records")),
            "goal": goal_status(result)}
