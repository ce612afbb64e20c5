"""Reading C1's results back from a results folder (what `run`, `ablation` and `distillation` write): the
ablation of each budget, the learning curve's budgets, the distilled student, the `fer` package's bench scores."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ferlib.champion.recipe import (
    ABLATION_DESCRIPTIONS,
    ABLATION_EPOCHS,
    ABLATIONS,
    CHAMPION_KEY,
    DISTILLED_KEY,
    RECIPE,
    ablation_table_name,
    budget_variant,
    is_budget_key,
)
from ferlib.champion.tables import ablation_summary, ablation_table, goal_status, learning_curve, result_budget
from ferlib.evaluation.results import SchemaError, check_result, read_result
from ferlib.runnames import ABLATION_PREFIX, RunName
from ferlib.runtime.progress import say


def read_neighbour(path: Path) -> dict[str, Any]:
    """Return a result file found beside C1's, checked against the result schema (SchemaError naming the file)."""
    return check_result(read_result(path), str(path))


def _budget_order(budget: tuple[int, int | None]) -> tuple:
    """Sort key of budgets: the short budget on all images first, then by epochs and training images."""
    return budget != (ABLATION_EPOCHS, None), budget[0], budget[1] or 0


def _ablation_results(results_dir: Path, seed: int) -> list[dict[str, Any]]:
    """Return a folder's ablation results of `seed`, every budget, with variants trained as candidates."""
    folder = Path(results_dir)
    found = []
    for path in sorted(folder.glob(RunName.pattern(ABLATION_PREFIX, seed))):
        result = read_neighbour(path)
        if result.get("ablation") in ABLATIONS and "validation_scores" in result:  # not one still training
            found.append(result)
    trained = {(r["ablation"], result_budget(r)) for r in found}
    for path in sorted(folder.glob(RunName.pattern("C1_", seed, "epochs"))):
        key = RunName.parse(path.name).name
        name = budget_variant(key)
        if name not in ABLATIONS or (result := read_neighbour(path)).get("max_train"):
            continue
        if "validation_scores" not in result:  # trained, not yet scored in every test-time mode
            continue
        budget = int(result.get("epochs_run") or 0)
        if (name, (budget, None)) not in trained and not (result.get("provenance") or {}).get("max_epochs"):
            found.append(result | {"ablation": name, "epochs_budget": budget, "max_train": None,
                                   "description": f"{ABLATION_DESCRIPTIONS[name]} (the result of {key})"})
    return found


def ablation_budgets(results_dir: Path, seed: int) -> list[tuple[int, int | None]]:
    """Return the budgets (epochs, images cap) of a folder's ablation results, the short one on all images first."""
    return sorted({result_budget(r) for r in _ablation_results(results_dir, seed)}, key=_budget_order)


def read_ablation(results_dir: Path, seed: int, epochs: int = ABLATION_EPOCHS,
                  max_train: int | None = None) -> dict[str, dict[str, Any]]:
    """Return the ablation results of one budget found in a results folder, {name: result} in ABLATIONS order;
    C1 itself trained at this budget on all images stands in for a missing full recipe ('champion')."""
    same = {r["ablation"]: r for r in _ablation_results(results_dir, seed) if result_budget(r) == (epochs, max_train)}
    if same and RECIPE not in same and max_train is None:
        for label, result in budget_results(results_dir, seed, ablation=False).items():
            capped = (result.get("provenance") or {}).get("max_epochs")
            scored = "validation_scores" in result  # a run still training has written only its history
            if scored and int(result.get("epochs_run") or 0) == epochs and not capped and not result.get("max_train"):
                same[RECIPE] = result | {"ablation": RECIPE, "epochs_budget": epochs, "max_train": None,
                                             "description": f"the full recipe (the result of {label})"}
                break
    return {name: same[name] for name in ABLATIONS if name in same}


def ablation_tables(results_dir: Path, seed: int) -> dict[str, tuple[str, pd.DataFrame]]:
    """Return every budget's ablation table in a results folder, {table name: (title, table)}, short budget first."""
    tables = {}
    for epochs, max_train in ablation_budgets(results_dir, seed):
        found = read_ablation(results_dir, seed, epochs, max_train)
        reference = found.get(RECIPE, {}).get("description", "no full-recipe run at this budget yet")
        images = f" on {max_train:,} training images" if max_train else ""
        title = f"{epochs} epochs{images}; compared with {reference}"
        tables[ablation_table_name(epochs, max_train)] = (title, ablation_table(found))
    return tables


def budget_results(results_dir: Path, seed: int, ablation: bool = True) -> dict[str, dict[str, Any]]:
    """Return the results a learning curve is drawn from, {label: result}: the ablation's full recipe at each
    budget (with `ablation`), C1 itself, and every other budget of the recipe (``C1_<N>epochs``)."""
    folder = Path(results_dir)
    found: dict[str, dict[str, Any]] = {}
    if ablation:  # the full recipe's ablation results (the 'champion' variant), short budget first
        recipes = {result_budget(r): r for r in _ablation_results(folder, seed) if r["ablation"] == RECIPE}
        for epochs, max_train in sorted(recipes, key=_budget_order):
            short = epochs == ABLATION_EPOCHS and not max_train
            found["ablation budget (full recipe)" if short or not found else
                  f"ablation budget (full recipe, {epochs} epochs" + (f", {max_train} images)" if max_train else ")")
                  ] = recipes[(epochs, max_train)]
    names = {"C1": CHAMPION_KEY}
    for path in sorted(folder.glob(RunName.pattern("C1_", seed, "epochs"))):
        key = RunName.parse(path.name).name
        if is_budget_key(key, variants=False):  # the recipe's budgets; a variant is another recipe
            names[key] = key
    for label, name in names.items():
        path = folder / RunName(name, seed).file
        if path.is_file():
            found[label] = read_neighbour(path)
    return found


def read_distillation(results_dir: Path, seed: int) -> dict[str, Any] | None:
    """Return the distilled student's result in a results folder, or None before `distill` has finished."""
    path = Path(results_dir) / RunName(DISTILLED_KEY, seed).file
    return read_result(path) if path.exists() else None


def fer_package_reference(bench_file: Path, external_source: str, classes: str = "study-5") -> dict[str, Any] | None:
    """Return the `fer` package's bench scores on the same external data and classes, or None."""
    if not Path(bench_file).is_file():
        return None
    report = json.loads(Path(bench_file).read_text())
    for entry in (report.get("accuracy") or {}).values():
        if (isinstance(entry, dict) and entry.get("data") == external_source
                and entry.get("classes", "study-5") == classes and "accuracy" in entry.get("fer package", {})):
            return entry["fer package"]
    return None


def champion_context(results_dir: Path, seed: int, result: dict[str, Any]) -> dict[str, Any]:
    """Return the `ablation` (the short budget's), `ablation_other_budgets`, `learning_curve` and `goal` entries of
    C1's (or a budget's) result, from the results beside it. A neighbour that cannot be read (OSError,
    `SchemaError`) is left out with a warning, so the model's own result is always written."""
    context: dict[str, Any] = {"goal": goal_status(result)}
    try:
        summaries = [ablation_summary(read_ablation(results_dir, seed, epochs, max_train))
                     for epochs, max_train in ablation_budgets(results_dir, seed)]
        context["ablation"] = summaries[0] if summaries else None
        context["ablation_other_budgets"] = summaries[1:]
    except (OSError, SchemaError) as exc:
        say(f"warning: the ablation results in {results_dir} could not be read ({exc}); left out of the result")
        context["ablation"], context["ablation_other_budgets"] = None, []
    label = result["experiment"] if result["experiment"] != CHAMPION_KEY else "C1"
    if budget_variant(label):  # another recipe: not a point of the recipe's learning curve
        return context
    try:
        budgets = {name: r for name, r in budget_results(results_dir, seed).items() if name != label}
        curve = learning_curve({**budgets, label: result})
    except (OSError, SchemaError) as exc:
        say(f"warning: the other budgets' results in {results_dir} could not be read ({exc}); the learning "
            "curve holds this run only")
        curve = learning_curve({label: result})
    context["learning_curve"] = json.loads(curve.reset_index().to_json(orient="records"))
    return context
