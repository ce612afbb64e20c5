"""Training-time augmentation as Keras preprocessing layers (the study's V8-V11, and C1's "fer").

Layers work on raw 0-255 pixel values (the range the model's input expects), are applied to
training batches only, after the decoded images are cached, and clip back into 0-255.
"""
from __future__ import annotations

import math

import keras
from keras import layers

AUGMENTATIONS = ("none", "geometric", "photometric", "fer")
# What each pipeline below does, in words (the settings tables show it beside what the study says).
AUGMENTATION_TEXT = {
    "none": "none",
    "geometric": "rotation up to 36 degrees, zoom up to 20%",
    "photometric": "brightness and contrast up to 30%, Gaussian noise of 0.05 of the range",
    "fer": "mirror, rotation up to 10 degrees, zoom and shift up to 10%, brightness 10%, contrast 20%, "
           "random erasing of half the images",
}


class RandomFaceAffine(layers.Layer):
    """Mirror (half of the images), rotate, zoom and shift each image in ONE resampling.

    Chaining RandomFlip, RandomRotation, RandomZoom and RandomTranslation would interpolate a 48 px
    face three times and blur it; one composed affine transform interpolates once, and a plain mirror
    (no rotation, zoom or shift) stays pixel-exact.
    """

    def __init__(self, rotation_deg: float = 10.0, zoom: float = 0.1, shift: float = 0.1, flip: bool = True,
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rotation_deg, self.zoom, self.shift, self.flip = rotation_deg, zoom, shift, flip
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def transforms(self, batch: int, height: int, width: int):
        """Return (batch, 8) projective transforms mapping output to input pixel coordinates."""
        ops = keras.ops
        u = keras.random.uniform((batch, 5), minval=-1.0, maxval=1.0, seed=self.generator)
        angle = u[:, 0] * (self.rotation_deg * math.pi / 180)
        scale = 1.0 + u[:, 1] * self.zoom  # > 1 reads a larger area (zooms out)
        mirror = ops.where(u[:, 2] < 0, -1.0, 1.0) if self.flip else ops.ones_like(u[:, 2])
        tx, ty = u[:, 3] * self.shift * width, u[:, 4] * self.shift * height
        cos, sin = ops.cos(angle) * scale, ops.sin(angle) * scale
        a0, a1, b0, b1 = cos * mirror, -sin, sin * mirror, cos
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        a2 = cx + tx - a0 * cx - a1 * cy
        b2 = cy + ty - b0 * cx - b1 * cy
        zeros = ops.zeros_like(a0)
        return ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)

    def call(self, images, training=True):
        if not training:
            return images
        shape = keras.ops.shape(images)
        return keras.ops.image.affine_transform(images, self.transforms(shape[0], shape[1], shape[2]),
                                                interpolation="bilinear", fill_mode="reflect")

    def get_config(self):
        return super().get_config() | {"rotation_deg": self.rotation_deg, "zoom": self.zoom, "shift": self.shift,
                                       "flip": self.flip, "seed": self.seed}


def build_augmentation(kind: str, seed: int = 0, dtype: str = "float32") -> keras.Sequential | None:
    """Return the augmentation pipeline for "geometric" (rotation, zoom), "photometric" (brightness,
    contrast, noise) or "fer" (C1: mirror, small rotation/zoom/shift, mild brightness/contrast, random
    erasing); None for "none". Every layer computes in `dtype` (float32), whatever the global mixed-precision
    policy: augmentation runs in the input pipeline, on the CPU, where float16 only loses precision."""
    if kind == "none":
        return None
    if kind == "geometric":
        steps = [
            layers.RandomRotation(0.1, fill_mode="nearest", seed=seed, dtype=dtype),  # up to +-36 degrees
            layers.RandomZoom(0.2, fill_mode="nearest", seed=seed + 1, dtype=dtype),
        ]
    elif kind == "photometric":
        steps = [
            layers.RandomBrightness(0.3, value_range=(0, 255), seed=seed, dtype=dtype),
            layers.RandomContrast(0.3, seed=seed + 1, dtype=dtype),
            layers.Rescaling(1 / 255.0, dtype=dtype),  # GaussianNoise takes its stddev on a 0-1 scale
            layers.GaussianNoise(0.05, seed=seed + 2, dtype=dtype),  # about 13 grey levels
            layers.Rescaling(255.0, dtype=dtype),
        ]
    elif kind == "fer":
        steps = [
            RandomFaceAffine(rotation_deg=10.0, zoom=0.1, shift=0.1, flip=True, seed=seed, dtype=dtype),
            # same shift on all 3 channels
            layers.RandomBrightness(0.1, value_range=(0, 255), seed=seed + 1, dtype=dtype),
            layers.RandomContrast(0.2, seed=seed + 2, dtype=dtype),
            # half of the images lose a grey patch of about 2-15% of their area (sides 14-39%)
            layers.RandomErasing(factor=(0.5, 0.5), scale=(0.02, 0.15), fill_value=128.0, value_range=(0, 255),
                                 seed=seed + 3, dtype=dtype),
        ]
    else:
        raise KeyError(f"unknown augmentation {kind!r}; known: {', '.join(AUGMENTATIONS)}")
    return keras.Sequential(steps, name=f"{kind}_augmentation")


def augment_batch(augmentation: keras.Sequential, images, labels):
    """Return (augmented float images clipped to 0-255, labels) for one training batch."""
    import tensorflow as tf

    out = augmentation(tf.cast(images, tf.float32), training=True)
    return tf.clip_by_value(out, 0.0, 255.0), labels
