"""A seed ensemble of C1 and its distillation into one network of C1's size.

Members are C1 trained on the champion's own train/validation split (drawn from the run's seed) with their
own training seeds: member 0 is the champion itself, member i trains with seed + i (initialisation, epoch
order, augmentation and dropout). The ensemble averages its members' probabilities in a test-time mode
chosen on validation. Distillation trains one C1-sized network on targets that mix each training image's
one-hot label with the ensemble's probabilities for that (unaugmented) image: the student costs what C1
costs at test time, the ensemble k times as much.
"""
from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ferlib.classes import NUM_CLASSES
from ferlib.config import DISTILL_TEACHERS as TEACHERS
from ferlib.config import DISTILL_WEIGHT, Experiment, RunSettings, get_experiment
from ferlib.data.run_data import ExternalData, InternalData
from ferlib.evaluation.evaluate import Evaluation, evaluate_model, predict_probs
from ferlib.evaluation.results import write_result
from ferlib.evaluation.stats import mcnemar
from ferlib.runnames import DISTILLED, RunName
from ferlib.runtime import files
from ferlib.runtime.progress import say

MEMBER_PREFIX = "C1_member"
DISTILLED_KEY = DISTILLED  # the student's experiment key and result name (ferlib.runnames)


def member_seed(seed: int, index: int) -> int:
    """Return the training seed of ensemble member `index` (0: the champion, trained with the run's seed)."""
    if index < 0:
        raise ValueError(f"member index must be >= 0, got {index}")
    return seed + index


def member_name(index: int) -> str:
    """Return the result name of member `index` (member 0's run is the champion's; its own name keeps the
    champion's result file, with its test scores, as the champion command wrote it)."""
    return f"{MEMBER_PREFIX}{index}"


def train_members(settings: RunSettings, internal: InternalData, count: int, verbose: int = 2) -> list:
    """Train (or resume, or reuse) the first `count` members on the run's split; return their
    ExperimentOutcomes with float32 models. Member 0 is the champion's own run."""
    from ferlib.models.builders import float32_copy
    from ferlib.training.cpu_champion import CHAMPION_KEY
    from ferlib.training.experiments import release_memory, run_experiment

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


def images_digest(images: np.ndarray) -> str:
    """Return a short hash of an image array's shape and bytes (names a cache of predictions on it)."""
    images = np.ascontiguousarray(images)
    return hashlib.sha1(repr(images.shape).encode() + images.tobytes()).hexdigest()[:12]


@dataclass
class Teachers:
    """An ensemble of trained networks whose mean probabilities (in one test-time mode) teach a student."""

    models: Sequence[Any]
    run_names: Sequence[str]  # each member's run folder name: what the student's run key depends on
    flip: bool
    shift: int
    cache_dir: Path
    batch_size: int = 64

    def __post_init__(self) -> None:
        if not self.models or len(self.models) != len(self.run_names):
            raise ValueError(f"{len(self.models)} teacher models for {len(self.run_names)} run names")

    @property
    def key(self) -> str:
        """Return a short name for these teachers in this mode (part of the student's run key)."""
        text = "|".join(sorted(self.run_names)) + f"|flip={self.flip}|shift={self.shift}"
        return hashlib.sha1(text.encode()).hexdigest()[:10]

    def describe(self) -> dict[str, Any]:
        """Return the teachers as plain data for result files."""
        return {"members": len(self.models), "runs": list(self.run_names), "flip": self.flip, "shift": self.shift,
                "key": self.key}

    def member_probabilities(self, index: int, images: np.ndarray) -> np.ndarray:
        """Return member `index`'s probabilities on the images in the teachers' mode, cached by image digest."""
        path = (self.cache_dir / "teachers"
                / f"{self.run_names[index]}-f{int(self.flip)}s{self.shift}-{images_digest(images)}.npy")

        def read(file: Path) -> np.ndarray:
            probs = np.load(file)
            if probs.shape != (len(images), NUM_CLASSES) or not np.isfinite(probs).all():
                raise ValueError(f"shape {probs.shape} for {len(images)} images, or values not finite")
            return probs

        cached = files.read_cache(path, read, "teacher probabilities")
        if cached is not None:
            return cached
        probs = predict_probs(self.models[index], images, self.batch_size, tta_flip=self.flip,
                              tta_shift=self.shift).astype(np.float32)
        files.save_npy(path, probs)
        return probs

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Return the members' mean probabilities on the images."""
        return np.mean([self.member_probabilities(i, images) for i in range(len(self.models))], axis=0)

    def targets(self, images: np.ndarray, labels: np.ndarray, weight: float) -> np.ndarray:
        """Return training targets: (1 - weight) x one-hot label + weight x the ensemble's probabilities."""
        return distillation_targets(labels, self.probabilities(images), weight)


def distillation_targets(labels: np.ndarray, teacher_probs: np.ndarray, weight: float) -> np.ndarray:
    """Return (1 - weight) x one-hot(labels) + weight x teacher_probs, as float32 rows that sum to 1."""
    labels, teacher_probs = np.asarray(labels), np.asarray(teacher_probs, dtype=np.float64)
    if teacher_probs.shape != (len(labels), NUM_CLASSES):
        raise ValueError(f"teacher probabilities of shape {teacher_probs.shape} for {len(labels)} labels")
    if not 0 <= weight <= 1:
        raise ValueError(f"distillation weight must be in [0, 1], got {weight}")
    teacher_probs = teacher_probs / teacher_probs.sum(axis=1, keepdims=True)
    return ((1 - weight) * np.eye(NUM_CLASSES)[labels] + weight * teacher_probs).astype(np.float32)


def ensemble_evaluation(evaluations: Sequence[Evaluation]) -> Evaluation:
    """Return the Evaluation of the members' mean probabilities (all scored on the same images)."""
    if not evaluations:
        raise ValueError("no member evaluations to average")
    y_true = evaluations[0].y_true
    if any(len(e.y_true) != len(y_true) or not np.array_equal(e.y_true, y_true) for e in evaluations):
        raise ValueError("the members were scored on different images")
    probs = np.mean([e.probs for e in evaluations], axis=0)
    return Evaluation(y_true=y_true, y_pred=probs.argmax(axis=1), probs=probs)


def student_experiment(profile: str, teachers: int = TEACHERS, weight: float = DISTILL_WEIGHT) -> Experiment:
    """Return C1's recipe under `profile`, trained on distillation targets from `teachers` members."""
    from ferlib.training.cpu_champion import CHAMPION_KEY

    base = get_experiment(CHAMPION_KEY, profile)
    return dataclasses.replace(base, key=DISTILLED_KEY, title=f"C1 distilled from {teachers} seeds",
                               distill=weight, teachers=teachers,
                               notes=base.notes + f" Distilled: trained on {1 - weight:g} x the one-hot label + "
                                                  f"{weight:g} x the mean probabilities of {teachers} C1 networks "
                                                  "trained on the same split with other seeds.")


@dataclass
class DistillOutcome:
    """The ensemble scored, and the distilled student (scored and saved like the champion)."""

    ensemble: dict[str, Any]
    student: Any  # cpu_champion.ChampionOutcome
    result_file: Path


def run_distillation(settings: RunSettings, internal: InternalData, external: ExternalData | None = None,
                     teachers: int = TEACHERS, weight: float = DISTILL_WEIGHT, verbose: int = 2) -> DistillOutcome:
    """Train (or reuse) the ensemble's members, score the ensemble (mode chosen on validation), train the
    distilled student on the ensemble's targets and score it like the champion, with McNemar tests against
    the champion on the validation split; write C1_distilled-seed<seed>.json and save the student."""
    from ferlib.training import cpu_champion as cc

    members = train_members(settings, internal, teachers, verbose)
    experiment = members[0].experiment
    margin = cc.crop_margin(experiment)
    x_val, y_val = internal.arrays(experiment.image_size)[2:]
    member_val = [cc.evaluate_tta_modes(m.run.model, x_val, y_val, settings.profile.batch_size, margin)
                  for m in members]
    ens_val = {mode: ensemble_evaluation([v[mode] for v in member_val]) for mode in member_val[0]}
    mode = cc.choose_tta(ens_val)
    flip, shift = cc.tta_modes(margin)[mode]
    ensemble: dict[str, Any] = {
        "members": teachers, "train_seeds": [member_seed(settings.seed, i) for i in range(teachers)],
        "tta": {"mode": mode, "flip": flip, "shift": shift, "chosen_on": "validation accuracy"},
        "validation_scores": {name: cc.score(e) for name, e in ens_val.items()},
        "member_validation": [cc.score(v[mode]) for v in member_val],
        "training_time_s": [m.run.wall_time_s for m in members],
    }
    if external is not None:
        x_test, y_test = external.arrays(experiment.image_size)
        member_test = [evaluate_model(m.run.model, x_test, y_test, settings.profile.batch_size, tta_flip=flip,
                                      tta_shift=shift) for m in members]
        ens_test = ensemble_evaluation(member_test)
        ensemble["external"] = cc.score(ens_test)
        ensemble["member_external"] = [cc.score(e) for e in member_test]
        ensemble["external_by_copy"] = cc.scores_by_copy(ens_test, internal, external, settings)
    say(f"ensemble of {teachers}: validation {ens_val[mode].accuracy:.3f} ({cc.TTA_LABELS[mode]})")
    teacher_set = Teachers([m.run.model for m in members], [m.run.run_dir.name for m in members], flip, shift,
                           settings.cache_dir, settings.profile.batch_size)
    student = cc.run_champion(settings, internal, external, verbose=verbose,
                              key=student_experiment(settings.profile.name, teachers, weight), teachers=teacher_set)
    student_mode = student.result["tta"]["mode"]
    champion_eval = member_val[0][cc.choose_tta(member_val[0])]
    comparison = {
        "against": "the champion (member 0), each in its test-time mode chosen on validation",
        "champion_validation": cc.score(champion_eval),
        "student_validation": cc.score(student.validation[student_mode]),
        "student_vs_champion": mcnemar(y_val, champion_eval.y_pred, student.validation[student_mode].y_pred).to_dict(),
        "ensemble_vs_champion": mcnemar(y_val, champion_eval.y_pred, ens_val[mode].y_pred).to_dict(),
    }
    student.result |= {"ensemble": ensemble, "teachers": teacher_set.describe(), "distill_weight": weight,
                       "versus_champion": comparison,
                       "teachers_training_time_s": float(sum(ensemble["training_time_s"]))}
    write_result(student.result_file, student.result)
    cc.save_champion(student, settings, internal)
    return DistillOutcome(ensemble, student, student.result_file)


def distill_from_folders(profile: str = "cpu", data_dir: str | Path | None = None,
                         external_dir: str | Path | None = None, seed: int = 42,
                         output_dir: str | Path | None = None, teachers: int = TEACHERS,
                         weight: float = DISTILL_WEIGHT) -> DistillOutcome:
    """Run `run_distillation` on `data_dir` (80/20 split, the champion's) scored on `external_dir`: the command
    line's entry. Results and the student's model go to the data pair's folders, beside the champion's."""
    from ferlib.config import run_settings
    from ferlib.data.run_data import keyed_settings, prepare_external, prepare_internal

    settings = keyed_settings(run_settings(profile, seed=seed, output_dir=output_dir), data_dir, external_dir)
    internal = prepare_internal(settings, data_dir)
    external = prepare_external(settings, external_dir)
    return run_distillation(settings, internal, external, teachers=teachers, weight=weight)


def distillation_table(result: dict[str, Any]) -> pd.DataFrame:
    """Return the members, their ensemble and the distilled student side by side from the student's result file:
    validation and external accuracy with 95% intervals (each in its test-time mode), the accuracy on external
    images without a copy in the training data, McNemar's p against the champion on validation, and the
    networks each face passes through."""
    from ferlib.training.cpu_champion import TTA_LABELS

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


def read_distillation(results_dir: Path, seed: int) -> dict[str, Any] | None:
    """Return the distilled student's result in a results folder, or None before `distill` has finished."""
    from ferlib.evaluation.results import read_result

    path = Path(results_dir) / RunName(DISTILLED_KEY, seed).file
    return read_result(path) if path.exists() else None
