"""Training-time augmentation as Keras preprocessing layers (the study's V8-V11).

Layers work on raw 0-255 pixel values (the range the model's input expects), are applied to
training batches only, after the decoded images are cached, and clip back into 0-255.
"""
from __future__ import annotations

import keras
from keras import layers

AUGMENTATIONS = ("none", "geometric", "photometric")


def build_augmentation(kind: str, seed: int = 0) -> keras.Sequential | None:
    """Return the augmentation pipeline for "geometric" (rotation, zoom) or "photometric"
    (brightness, contrast, noise); None for "none"."""
    if kind == "none":
        return None
    if kind == "geometric":
        steps = [
            layers.RandomRotation(0.1, fill_mode="nearest", seed=seed),  # up to +-36 degrees
            layers.RandomZoom(0.2, fill_mode="nearest", seed=seed + 1),
        ]
    elif kind == "photometric":
        steps = [
            layers.RandomBrightness(0.3, value_range=(0, 255), seed=seed),
            layers.RandomContrast(0.3, seed=seed + 1),
            layers.Rescaling(1 / 255.0),  # GaussianNoise takes its stddev on a 0-1 scale
            layers.GaussianNoise(0.05, seed=seed + 2),  # about 13 grey levels
            layers.Rescaling(255.0),
        ]
    else:
        raise KeyError(f"unknown augmentation {kind!r}; known: {', '.join(AUGMENTATIONS)}")
    return keras.Sequential(steps, name=f"{kind}_augmentation")


def augment_batch(augmentation: keras.Sequential, images, labels):
    """Return (augmented float images clipped to 0-255, labels) for one training batch."""
    import tensorflow as tf

    out = augmentation(tf.cast(images, tf.float32), training=True)
    return tf.clip_by_value(out, 0.0, 255.0), labels
