"""What a phase optimises: its learning-rate schedule, optimizer and loss, and the targets the loss needs (integer
labels, one-hot vectors, or batches blended by mixup)."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ferlib.experiments import Experiment, Phase


def learning_rate(experiment: Experiment, phase: Phase, steps_per_epoch: int):
    """Return the phase's learning rate: a float, or ("cosine") linear warm-up then cosine decay to zero."""
    if experiment.schedule == "constant":
        return phase.learning_rate
    total = max(1, phase.epochs * steps_per_epoch)
    warmup = min(experiment.warmup_epochs * steps_per_epoch, total - 1)
    if warmup == 0:
        return keras.optimizers.schedules.CosineDecay(phase.learning_rate, total)
    return keras.optimizers.schedules.CosineDecay(phase.learning_rate / 10, total - warmup,
                                                  warmup_target=phase.learning_rate, warmup_steps=warmup)


def compile_options(experiment: Experiment, phase: Phase, steps_per_epoch: int) -> dict:
    """Return the optimizer and loss of a phase (label smoothing needs one-hot labels, see `one_hot_labels`)."""
    rate = learning_rate(experiment, phase, steps_per_epoch)
    # the optimizer keeps the average beside the weights and never overwrites them while training;
    # `PolyakAverage` swaps it in for validation and the checkpoints
    ema = {"use_ema": True, "ema_momentum": experiment.weight_average} if experiment.weight_average else {}
    if experiment.optimizer == "adam":
        optimizer = keras.optimizers.Adam(rate, **ema)
    elif experiment.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(rate, weight_decay=experiment.weight_decay, **ema)
    else:  # sgd_nesterov (Experiment checks its optimizer when it is made)
        optimizer = keras.optimizers.SGD(rate, momentum=0.9, nesterov=True,
                                         weight_decay=experiment.weight_decay or None, **ema)
    loss = (keras.losses.CategoricalCrossentropy(label_smoothing=experiment.label_smoothing)
            if soft_targets(experiment) else "sparse_categorical_crossentropy")
    return {"optimizer": optimizer, "loss": loss, "metrics": ["accuracy"]}


def hard_labels(labels: np.ndarray) -> np.ndarray:
    """Return integer labels: `labels` itself, or the most probable class of each probability vector."""
    labels = np.asarray(labels)
    return labels.argmax(axis=1) if labels.ndim == 2 else labels


def soft_targets(experiment: Experiment) -> bool:
    """Return True when the experiment trains on probability vectors (label smoothing, mixup or distillation)."""
    return bool(experiment.label_smoothing or experiment.mixup or experiment.distill)


def one_hot_labels(dataset, num_classes: int):
    """Return the dataset with its integer labels turned into one-hot vectors (probability vectors pass)."""
    if len(dataset.element_spec[1].shape) == 2:  # (batch, classes): already vectors
        return dataset
    return dataset.map(lambda x, y: (x, tf.one_hot(y, num_classes)), num_parallel_calls=tf.data.AUTOTUNE)


def build_mixup(alpha: float, seed: int):
    """Return Keras' MixUp layer (weights from Beta(alpha, alpha)), or None when `alpha` is 0."""
    return keras.layers.MixUp(alpha=alpha, seed=seed + 7, dtype="float32") if alpha else None


def mix_batches(dataset, mixup, deterministic: bool):
    """Return the (one-hot labelled) training dataset with every batch mixed by `mixup`."""
    def mix(x, y):
        out = mixup({"images": tf.cast(x, tf.float32), "labels": tf.cast(y, tf.float32)}, training=True)
        return out["images"], out["labels"]

    return dataset.map(mix, num_parallel_calls=1 if deterministic else tf.data.AUTOTUNE, deterministic=True)
