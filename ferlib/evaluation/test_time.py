"""Scoring a Keras model in several test-time modes (sets of `views.tta_views`: plain, flip, and for a network that
sees a central crop five crops x flip) and keeping the one the validation split prefers."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ferlib.evaluation.evaluate import Evaluation, evaluate_model
from ferlib.experiments import Experiment

TTA_LABELS = {"plain": "plain", "flip_tta": "flip TTA", "crops_flip_tta": "5 crops x flip TTA"}


def score(evaluation: Evaluation) -> dict[str, Any]:
    """Return accuracy, n, correct count, macro F1 and their 95% bootstrap intervals (as every table reports)."""
    d = evaluation.to_dict()
    macro = d["averages"]["macro avg"]
    return {"accuracy": d["accuracy"], "n": d["n"], "correct": int(np.sum(evaluation.y_true == evaluation.y_pred)),
            "ci95": d["accuracy_ci"], "macro_f1": macro["f1"], "macro_f1_ci95": macro["f1_ci"]}


def crop_margin(experiment: Experiment) -> int:
    """Return how many pixels the network's central crop leaves on each side (0: it sees the whole image)."""
    return (experiment.image_size - experiment.crop) // 2 if experiment.crop else 0


def tta_modes(margin: int) -> dict[str, tuple[bool, int]]:
    """Return {mode: (flip, shift)}: plain, flip, and for a cropping network five crops x flip (`margin` px)."""
    return {"plain": (False, 0), "flip_tta": (True, 0), **({"crops_flip_tta": (True, margin)} if margin else {})}


def evaluate_tta_modes(model, images: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], batch_size: int = 64,
                       margin: int = 0) -> dict[str, Evaluation]:
    """Return {mode: Evaluation} for every mode of `tta_modes(margin)`."""
    return {mode: evaluate_model(model, images, labels, classes, batch_size, tta_flip=flip, tta_shift=shift)
            for mode, (flip, shift) in tta_modes(margin).items()}


def choose_tta(validation: dict[str, Evaluation]) -> str:
    """Return the test-time mode with the best validation accuracy (ties: the one with fewer views)."""
    return max(validation, key=lambda mode: (validation[mode].accuracy, -list(TTA_LABELS).index(mode)))


def tta_scores(evaluations: dict[str, Evaluation]) -> dict[str, Any]:
    """Return {mode: score} for evaluations in several test-time modes."""
    return {name: score(e) for name, e in evaluations.items()}


def ensemble_evaluation(evaluations: Sequence[Evaluation]) -> Evaluation:
    """Return the Evaluation of the members' mean probabilities (all scored on the same images)."""
    if not evaluations:
        raise ValueError("no member evaluations to average")
    y_true = evaluations[0].y_true
    if any(len(e.y_true) != len(y_true) or not np.array_equal(e.y_true, y_true) for e in evaluations):
        raise ValueError("the members were scored on different images")
    probs = np.mean([e.probs for e in evaluations], axis=0)
    return Evaluation(y_true, probs.argmax(axis=1), probs, evaluations[0].classes)
