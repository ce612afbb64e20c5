"""Model builders: every experiment's network is built from its registry entry.

Models take raw 0-255 RGB images (uint8 or float); any rescaling lives inside the model, so a
saved model needs no separate preprocessing step.
"""
from __future__ import annotations

import keras
from keras import layers

from ferlib.classes import NUM_CLASSES
from ferlib.config import Experiment


def build_custom_cnn(image_size: int, num_classes: int = NUM_CLASSES) -> keras.Model:
    """Return the V1 baseline: three conv/pool blocks, a 128-unit dense layer, dropout, softmax."""
    return keras.Sequential(
        [
            keras.Input(shape=(image_size, image_size, 3), name="image"),
            layers.Rescaling(1.0 / 255, name="rescale"),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(128, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax", dtype="float32", name="emotion"),
        ],
        name="custom_cnn",
    )


BUILDERS = {"custom_cnn": build_custom_cnn}


def build_model(experiment: Experiment) -> keras.Model:
    """Return the untrained network for an experiment entry."""
    if experiment.backbone not in BUILDERS:
        raise KeyError(f"no builder for backbone {experiment.backbone!r}; known: {', '.join(BUILDERS)}")
    return BUILDERS[experiment.backbone](experiment.image_size)
