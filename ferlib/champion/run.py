"""Training C1 (or a variant of its recipe), scoring it in every test-time mode, saving it with its card."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferlib.audit.findings import scores_by_copy
from ferlib.champion.recipe import (
    CHAMPION_KEY,
    FINE_TUNE_EPOCHS,
    budget_experiment,
    fine_tune_experiment,
    is_budget_key,
)
from ferlib.champion.records import champion_context
from ferlib.champion.tables import card_test_scores
from ferlib.classes import class_set
from ferlib.config import RunSettings, run_settings
from ferlib.data.run_data import ExternalData, InternalData, keyed_settings, prepare_external, prepare_internal
from ferlib.evaluation.evaluate import Evaluation, evaluate_model
from ferlib.evaluation.results import provenance, result_path, write_result
from ferlib.evaluation.test_time import choose_tta, crop_margin, evaluate_tta_modes, tta_modes, tta_scores
from ferlib.experiments import Experiment
from ferlib.models import modelcard
from ferlib.models.builders import float32_copy
from ferlib.models.shipped import SHIPPED_FOR_CLASSES, shipped_card
from ferlib.runnames import RunName, retrained_name
from ferlib.training.experiments import ExperimentOutcome, run_experiment
from ferlib.training.teachers import Teachers


@dataclass
class ChampionOutcome:
    """C1 trained and scored: the experiment outcome, validation evaluations per mode, the result file."""

    outcome: ExperimentOutcome
    validation: dict[str, Evaluation]  # per test-time mode: "plain", "flip_tta", "crops_flip_tta"
    result: dict[str, Any]
    result_file: Path
    model_file: Path | None = None  # set by save_champion


def run_champion(settings: RunSettings, internal: InternalData, external: ExternalData | None = None,
                 force: bool = False, verbose: int = 2, key: str | Experiment = CHAMPION_KEY,
                 teachers: Teachers | None = None, train_seed: int | None = None) -> ChampionOutcome:
    """Train (or resume, or reuse) C1 (or the variant `key`, e.g. the distilled student on `teachers`' targets;
    with `train_seed`, another initialisation, epoch order and augmentation on the same split, named so),
    score it on validation and the external set in every test-time mode (plain, flip, five crops x flip), keep
    the mode best on validation (only its external number is the model's result; the external score is also
    split by copies in the internal data) and write the result with intervals and timings."""
    name = None if train_seed is None else retrained_name(key if isinstance(key, str) else key.key, train_seed)
    outcome = run_experiment(key, settings, internal, force=force, verbose=verbose, teachers=teachers,
                             result_name=name, train_seed=train_seed)
    key = outcome.experiment.key
    outcome.run.model = float32_copy(outcome.run.model)  # scored, calibrated and saved as it ships: in float32
    experiment, model, batch = outcome.experiment, outcome.run.model, settings.profile.batch_size
    margin = crop_margin(experiment) if experiment.tta_flip else 0
    x_val, y_val = internal.arrays(experiment.image_size, experiment.preprocessing)[2:]
    classes = internal.classes.names
    validation = evaluate_tta_modes(model, x_val, y_val, classes, batch, margin)
    if not experiment.tta_flip:
        validation = {"plain": validation["plain"]}
    kept = choose_tta(validation)
    sources = {"internal": internal.describe()}
    flip, shift = tta_modes(margin)[kept]
    result = outcome.result | {"validation_scores": tta_scores(validation),
                               "tta": {"mode": kept, "flip": flip, "shift": shift, "chosen_on": "validation accuracy"}}
    if external is not None:
        x_test, y_test = external.arrays(experiment.image_size, experiment.preprocessing)
        ext_evals = {mode: evaluate_model(model, x_test, y_test, classes, batch, tta_flip=f, tta_shift=sh)
                     for mode, (f, sh) in tta_modes(margin).items() if mode in validation}
        result["external"] = ext_evals[kept].to_dict()
        result["external_scores"] = tta_scores(ext_evals)
        result["external_by_copy"] = scores_by_copy(ext_evals[kept], internal, external, settings)
        sources["external"] = external.describe()
    result |= {"training_time_s": outcome.run.wall_time_s, "precision": outcome.run.precision,
               "epochs_run": int(len(outcome.run.history))}
    trained = {"trained": outcome.run.trained_by} if outcome.run.trained_by else {}
    result["provenance"] = provenance(settings, sources, outcome.run.weights, outcome.run.wall_time_s, **trained)
    if name is None and (key == CHAMPION_KEY or is_budget_key(key)):  # the recipe's evidence: ablation, curve, goal
        write_result(result_path(settings, key), result)  # scored first, so that its own budget's ablation finds it
        result |= champion_context(result_path(settings, key).parent, settings.seed, result)
    path = write_result(result_path(settings, name or key), result)
    return ChampionOutcome(outcome, validation, result, path)


def save_champion(champ: ChampionOutcome, settings: RunSettings, internal: InternalData) -> Path:
    """Save the trained champion with its calibrated model card (in its kept test-time mode); return the path."""
    run, mode, experiment = champ.outcome.run, champ.result["tta"]["mode"], champ.outcome.experiment
    champ.model_file = settings.model_path(RunName.parse(champ.result_file.name).name)
    seeds = {"train_seed": seed} if (seed := champ.result.get("train_seed", settings.seed)) != settings.seed else {}
    modelcard.save_calibrated(run.model, champ.model_file, champ.validation[mode], tta=champ.result["tta"],
                              experiment=experiment.settings(), weights=run.weights, data=internal.describe(),
                              metrics=champ.validation[mode].to_dict(),
                              provenance=champ.outcome.result["provenance"] | seeds)
    if champ.result.get("external"):
        modelcard.update_card(champ.model_file, test=card_test_scores(champ.result))
    return champ.model_file


def champion_from_folders(profile: str = "cpu", data_dir: str | Path | None = None,
                          external_dir: str | Path | None = None, seed: int = 42,
                          output_dir: str | Path | None = None, force: bool = False,
                          epochs: int | None = None, variant: str | None = None,
                          classes: str | None = None, fine_tune: str | None = None,
                          train_seed: int | None = None) -> ChampionOutcome:
    """Return C1 (or a `budget_experiment`, or with `fine_tune` the shipped model of `classes` trained further on
    faces preprocessed so, `fine_tune_experiment`) trained, scored and saved with its card: the `champion` command."""
    settings = run_settings(profile, seed=seed, output_dir=output_dir)
    experiment = budget_experiment(settings.profile, epochs, variant, classes)  # unknown names fail before any work
    if fine_tune is not None:
        start_from = SHIPPED_FOR_CLASSES[experiment.classes]
        card = shipped_card(start_from)
        experiment = fine_tune_experiment(Experiment.from_settings(card["experiment"]), start_from, fine_tune,
                                          epochs or FINE_TUNE_EPOCHS)
    learned = class_set(experiment.classes)
    settings = keyed_settings(settings, data_dir, external_dir, learned)
    internal = prepare_internal(settings, data_dir, classes=learned)
    if fine_tune is not None:
        check_same_split(card, internal, settings.seed)
    external = prepare_external(settings, external_dir, classes=learned)
    champ = run_champion(settings, internal, external, force=force, key=experiment, train_seed=train_seed)
    save_champion(champ, settings, internal)
    return champ


class SplitMismatch(ValueError):
    """A shipped model is to be fine-tuned on data or a seed that draw another training/validation split."""


def check_same_split(card: dict[str, Any], internal: InternalData, seed: int) -> None:
    """Raise SplitMismatch unless `internal` and `seed` draw the training/validation split the card's model learned on:
    fine-tuned on another split, it would be validated on faces it has trained on."""
    data, trained_seed = card.get("data", {}), card.get("provenance", {}).get("seed")
    if data.get("fingerprint") != internal.fingerprint or trained_seed != seed:
        raise SplitMismatch(f"the shipped {card['name']} learned data with fingerprint {data.get('fingerprint')}, "
                            f"split by seed {trained_seed}; this run has {internal.fingerprint} and seed {seed}: "
                            "fine-tune it on the data and seed it was trained with, or its validation faces would "
                            "include training ones")
