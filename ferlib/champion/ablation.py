"""Training C1's ablation: variants of the recipe that each drop or change one part, with one shared budget,
each result named by its budget (`recipe.ablation_result_name`) so a longer budget never overwrites the short one.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ferlib.champion.recipe import (
    ABLATION_DESCRIPTIONS,
    ABLATION_EPOCHS,
    ABLATIONS,
    ablation_result_name,
    ablation_table_name,
    ablation_variant,
)
from ferlib.champion.records import read_ablation
from ferlib.champion.tables import ablation_table
from ferlib.config import RunSettings, run_settings
from ferlib.data.run_data import InternalData, keyed_settings, prepare_internal
from ferlib.evaluation.results import result_path, write_result
from ferlib.evaluation.test_time import crop_margin, evaluate_tta_modes, tta_scores
from ferlib.models.builders import float32_copy
from ferlib.runtime.files import write_csv
from ferlib.runtime.progress import say
from ferlib.training.experiments import run_experiment


def run_ablation(settings: RunSettings, internal: InternalData, names: Iterable[str] = tuple(ABLATIONS),
                 epochs: int | None = None, force: bool = False, verbose: int = 2,
                 max_train: int | None = None) -> dict[str, dict[str, Any]]:
    """Train each named variant of C1 on one budget, write its result scored in every test-time mode; return them."""
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        say(f"--- ablation variant {name}: {ABLATION_DESCRIPTIONS[name]}")
        variant = ablation_variant(name, settings.profile, epochs, max_train=max_train)
        budget = sum(phase.epochs for phase in variant.phases)
        outcome = run_experiment(variant, settings, internal, force=force, verbose=verbose,
                                 result_name=ablation_result_name(name, budget, max_train))
        x_val, y_val = internal.arrays(variant.image_size, variant.preprocessing)[2:]
        evals = evaluate_tta_modes(float32_copy(outcome.run.model), x_val, y_val, internal.classes.names,
                                   settings.profile.batch_size, crop_margin(variant))
        out[name] = outcome.result | {
            "ablation": name, "description": ABLATION_DESCRIPTIONS[name], "epochs_budget": budget,
            "max_train": max_train, "validation_scores": tta_scores(evals), "training_time_s": outcome.run.wall_time_s,
            "precision": outcome.run.precision, "epochs_run": int(len(outcome.run.history))}
        write_result(outcome.result_file, out[name])
    return out


def ablation_from_folders(profile: str = "cpu", data_dir: str | Path | None = None,
                          epochs: int = ABLATION_EPOCHS,
                          names: Iterable[str] = tuple(ABLATIONS), seed: int = 42,
                          output_dir: str | Path | None = None, force: bool = False,
                          max_train: int | None = None,
                          external_dir: str | Path | None = None) -> tuple[pd.DataFrame, Path]:
    """Run the ablation on `data_dir` (results in the data pair's folder, where its champion finds them); return
    the table of every variant of this budget found so far and the CSV it was written to."""
    settings = keyed_settings(run_settings(profile, seed=seed, output_dir=output_dir), data_dir, external_dir)
    names = list(names)
    for name in names:  # an unknown variant fails before any work
        ablation_variant(name, settings.profile)
    internal = prepare_internal(settings, data_dir)
    run_ablation(settings, internal, names, epochs=epochs, force=force, max_train=max_train)
    table = ablation_table(read_ablation(result_path(settings, "x").parent, seed, epochs, max_train))
    csv = settings.tables_dir / f"{ablation_table_name(epochs, max_train)}.csv"
    write_csv(csv, table)
    return table, csv
