"""A seed ensemble of C1 and its distillation into one network of C1's size.

Members are C1 on the champion's split with training seeds seed + i (member 0 is the champion); the ensemble
averages their probabilities in a test-time mode chosen on validation. The student trains on each image's one-hot
label mixed with the ensemble's probabilities (`training.teachers`) and costs what C1 costs at test time.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ferlib.audit.findings import scores_by_copy
from ferlib.champion.recipe import CHAMPION_KEY, TEACHERS, member_name, member_seed, student_experiment
from ferlib.champion.run import ChampionOutcome, run_champion, save_champion
from ferlib.config import RunSettings, run_settings
from ferlib.data.run_data import ExternalData, InternalData, keyed_settings, prepare_external, prepare_internal
from ferlib.evaluation.evaluate import evaluate_model
from ferlib.evaluation.results import write_result
from ferlib.evaluation.stats import mcnemar
from ferlib.evaluation.test_time import (
    TTA_LABELS,
    choose_tta,
    crop_margin,
    ensemble_evaluation,
    evaluate_tta_modes,
    score,
    tta_modes,
)
from ferlib.experiments import DISTILL_WEIGHT
from ferlib.models.builders import float32_copy
from ferlib.runtime.progress import say
from ferlib.training.experiments import release_memory, run_experiment
from ferlib.training.teachers import Teachers


def train_members(settings: RunSettings, internal: InternalData, count: int, verbose: int = 2) -> list:
    """Train (or reuse) the first `count` members (member 0: the champion's run); return their float32 outcomes."""
    if count < 1:
        raise ValueError(f"an ensemble needs at least one member, got {count}")
    outcomes = []
    for index in range(count):
        say(f"ensemble member {index + 1}/{count}: C1 with training seed {member_seed(settings.seed, index)}"
            f"{' (the champion)' if index == 0 else ''}")
        outcome = run_experiment(CHAMPION_KEY, settings, internal, verbose=verbose, result_name=member_name(index),
                                 train_seed=member_seed(settings.seed, index))
        outcome.run.model = float32_copy(outcome.run.model)
        outcomes.append(outcome)
        release_memory()
    return outcomes


def run_distillation(settings: RunSettings, internal: InternalData, external: ExternalData | None = None,
                     teachers: int = TEACHERS, weight: float = DISTILL_WEIGHT, verbose: int = 2) -> ChampionOutcome:
    """Train (or reuse) the members, score their ensemble, train the distilled student and score it like the
    champion (McNemar against the champion on validation); write its result (with the ensemble's) and save it."""
    members = train_members(settings, internal, teachers, verbose)
    experiment = members[0].experiment
    margin = crop_margin(experiment)
    x_val, y_val = internal.arrays(experiment.image_size, experiment.preprocessing)[2:]
    classes = internal.classes.names
    member_val = [evaluate_tta_modes(m.run.model, x_val, y_val, classes, settings.profile.batch_size, margin)
                  for m in members]
    ens_val = {mode: ensemble_evaluation([v[mode] for v in member_val]) for mode in member_val[0]}
    mode = choose_tta(ens_val)
    flip, shift = tta_modes(margin)[mode]
    ensemble: dict[str, Any] = {
        "members": teachers, "train_seeds": [member_seed(settings.seed, i) for i in range(teachers)],
        "tta": {"mode": mode, "flip": flip, "shift": shift, "chosen_on": "validation accuracy"},
        "validation_scores": {name: score(e) for name, e in ens_val.items()},
        "member_validation": [score(v[mode]) for v in member_val],
        "training_time_s": [m.run.wall_time_s for m in members],
    }
    if external is not None:
        x_test, y_test = external.arrays(experiment.image_size, experiment.preprocessing)
        member_test = [evaluate_model(m.run.model, x_test, y_test, classes, settings.profile.batch_size, tta_flip=flip,
                                      tta_shift=shift) for m in members]
        ens_test = ensemble_evaluation(member_test)
        ensemble["external"] = score(ens_test)
        ensemble["member_external"] = [score(e) for e in member_test]
        ensemble["external_by_copy"] = scores_by_copy(ens_test, internal, external, settings)
    say(f"ensemble of {teachers}: validation {ens_val[mode].accuracy:.3f} ({TTA_LABELS[mode]})")
    teacher_set = Teachers([m.run.model for m in members], [m.run.run_dir.name for m in members], flip, shift,
                           settings.cache_dir, settings.profile.batch_size)
    student = run_champion(settings, internal, external, verbose=verbose,
                              key=student_experiment(settings.profile.name, teachers, weight), teachers=teacher_set)
    student_mode = student.result["tta"]["mode"]
    champion_eval = member_val[0][choose_tta(member_val[0])]
    comparison = {
        "against": "the champion (member 0), each in its test-time mode chosen on validation",
        "champion_validation": score(champion_eval),
        "student_validation": score(student.validation[student_mode]),
        "student_vs_champion": mcnemar(y_val, champion_eval.y_pred, student.validation[student_mode].y_pred).to_dict(),
        "ensemble_vs_champion": mcnemar(y_val, champion_eval.y_pred, ens_val[mode].y_pred).to_dict(),
    }
    student.result |= {"ensemble": ensemble, "teachers": teacher_set.describe(), "distill_weight": weight,
                       "versus_champion": comparison,
                       "teachers_training_time_s": float(sum(ensemble["training_time_s"]))}
    write_result(student.result_file, student.result)
    save_champion(student, settings, internal)
    return student


def distill_from_folders(profile: str = "cpu", data_dir: str | Path | None = None,
                         external_dir: str | Path | None = None, seed: int = 42,
                         output_dir: str | Path | None = None, teachers: int = TEACHERS,
                         weight: float = DISTILL_WEIGHT) -> ChampionOutcome:
    """Run `run_distillation` on `data_dir` scored on `external_dir` (the `distill` command's entry)."""
    settings = keyed_settings(run_settings(profile, seed=seed, output_dir=output_dir), data_dir, external_dir)
    internal = prepare_internal(settings, data_dir)
    external = prepare_external(settings, external_dir)
    return run_distillation(settings, internal, external, teachers=teachers, weight=weight)
