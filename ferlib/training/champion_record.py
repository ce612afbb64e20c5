"""What C1's result file says beyond its own scores: the ablation and learning curve measured beside it on the
same data, and where its test accuracy stands against the project's goal.

`run_champion` adds `champion_context` to `C1-seed<seed>.json`, so that one file answers "how good, how sure,
on what machine, and which parts of the recipe were shown to matter" (the issue's result file).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ferlib.runtime.progress import say
from ferlib.training import ablation as abl
from ferlib.training import cpu_champion as cc
from ferlib.training.budgets import budget_results, budget_variant, learning_curve


def ablation_summary(results: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Return the ablation table as plain data (one record per variant, NaN as null), or None without results.
    Only variants trained with the recipe's own ablation budget (epochs and training images of the 'champion'
    row) are compared with it; variants of another budget are named under `other_budgets`, not compared."""
    if not results:
        return None

    reference = results.get("champion")
    same = {name: r for name, r in results.items()
            if reference is None or abl.result_budget(r) == abl.result_budget(reference)}
    table = abl.ablation_table(same).reset_index()
    return {"compared_on": "validation split; McNemar on the flip-averaged predictions, against the recipe "
                          "('champion' row) trained with the same epochs and training images",
            "epochs": sorted({r.get("epochs_run") for r in same.values() if r.get("epochs_run")}),
            "max_train": (reference or next(iter(same.values()))).get("max_train"),
            "variants": json.loads(table.to_json(orient="records")),
            "other_budgets": sorted(set(results) - set(same))}


def goal_does_not_apply(result: dict[str, Any]) -> str | None:
    """Return why the project's goal (FER-2013's five-class test images) does not apply to a result, or None."""
    provenance = result.get("provenance") or {}
    external = (provenance.get("data") or {}).get("external") or {}
    if not result.get("external") or not external:
        return "no external test set was scored"
    if external.get("embedded"):
        return "the external set is the embedded synthetic data"
    if external.get("layout") not in ("fer-folder", "fer-csv"):
        return f"the external set ({external.get('layout')}) is not FER-2013's test images"
    if provenance.get("max_epochs"):
        return f"epochs capped at {provenance['max_epochs']} (a check of the code path)"
    return None


def goal_status(result: dict[str, Any]) -> dict[str, Any]:
    """Return the project's goal and aim for C1's five-class FER-2013 test accuracy and whether this result
    reaches them (in the test-time mode chosen on validation); `reached` is None, with `not_applicable` saying
    why, when the result is not on FER-2013's test images or is a capped check."""
    external = result.get("external")
    accuracy = external["accuracy"] if external else None
    reason = goal_does_not_apply(result)
    return {"goal": cc.GOAL_ACCURACY, "aim": cc.AIM_ACCURACY, "test_accuracy": accuracy,
            "reached": None if reason else accuracy >= cc.GOAL_ACCURACY,
            "aim_reached": None if reason else accuracy >= cc.AIM_ACCURACY, "not_applicable": reason}


def champion_context(results_dir: Path, seed: int, result: dict[str, Any]) -> dict[str, Any]:
    """Return the `ablation`, `ablation_other_budgets`, `learning_curve` and `goal` entries of the result of C1
    (or one of its budgets), from the ablation and budget results in the same data pair's results folder
    (finished so far) and `result`. `ablation` is the short budget's (or the first found), each other budget's
    ablation is compared with the full recipe at that budget in `ablation_other_budgets`.
    A neighbouring result that cannot be read (damaged, or of an older format) is left out with a warning, so
    the trained model's own result is always written."""
    context: dict[str, Any] = {"goal": goal_status(result)}
    try:
        summaries = [ablation_summary(abl.read_ablation(results_dir, seed, epochs, max_train))
                     for epochs, max_train in abl.ablation_budgets(results_dir, seed)]
        context["ablation"] = summaries[0] if summaries else None
        context["ablation_other_budgets"] = summaries[1:]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        say(f"warning: the ablation results in {results_dir} could not be read ({exc!r}); left out of the result")
        context["ablation"], context["ablation_other_budgets"] = None, []
    label = result["experiment"] if result["experiment"] != cc.CHAMPION_KEY else "C1"
    if budget_variant(label):  # another recipe: not a point of the recipe's learning curve
        return context
    try:
        budgets = {name: r for name, r in budget_results(results_dir, seed).items() if name != label}
        curve = learning_curve({**budgets, label: result})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        say(f"warning: the other budgets' results in {results_dir} could not be read ({exc!r}); the learning "
            "curve holds this run only")
        curve = learning_curve({label: result})
    context["learning_curve"] = json.loads(curve.reset_index().to_json(orient="records"))
    return context
