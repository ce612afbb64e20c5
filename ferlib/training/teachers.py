"""Teachers for distillation: an ensemble's mean probabilities as a student's training targets (the ensemble is
trained by `ferlib.champion.distillation`)."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ferlib.evaluation.evaluate import predict_probs
from ferlib.training.train import cached_predictions


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
        contiguous = np.ascontiguousarray(images)  # the images' digest names the cache
        digest = hashlib.sha1(repr(contiguous.shape).encode() + contiguous.tobytes()).hexdigest()[:12]
        path = self.cache_dir / "teachers" / f"{self.run_names[index]}-f{int(self.flip)}s{self.shift}-{digest}.npy"
        return cached_predictions(path, lambda: predict_probs(self.models[index], images, self.batch_size,
                                                              tta_flip=self.flip, tta_shift=self.shift),
                                  len(images), "teacher probabilities", self.models[index].output_shape[-1])

    def targets(self, images: np.ndarray, labels: np.ndarray, weight: float) -> np.ndarray:
        """Return training targets: (1 - weight) x one-hot label + weight x the members' mean probabilities."""
        mean = np.mean([self.member_probabilities(i, images) for i in range(len(self.models))], axis=0)
        return distillation_targets(labels, mean, weight)


def distillation_targets(labels: np.ndarray, teacher_probs: np.ndarray, weight: float) -> np.ndarray:
    """Return (1 - weight) x one-hot(labels) + weight x teacher_probs, as float32 rows that sum to 1."""
    labels, teacher_probs = np.asarray(labels), np.asarray(teacher_probs, dtype=np.float64)
    if teacher_probs.ndim != 2 or len(teacher_probs) != len(labels) or labels.max() >= teacher_probs.shape[1]:
        raise ValueError(f"teacher probabilities of shape {teacher_probs.shape} for {len(labels)} labels")
    if not 0 <= weight <= 1:
        raise ValueError(f"distillation weight must be in [0, 1], got {weight}")
    teacher_probs = teacher_probs / teacher_probs.sum(axis=1, keepdims=True)
    return ((1 - weight) * np.eye(teacher_probs.shape[1])[labels] + weight * teacher_probs).astype(np.float32)
