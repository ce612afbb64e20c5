"""Grad-CAM: which parts of a face drove a prediction.

The map is taken at a CNN's last Conv2D layer, or at a transfer model's backbone output (inside the backbone, at
its deepest layer at least 3 pixels wide, when that output is 1x1 or 2x2). Both kinds are chains at the top level,
so the forward pass is replayed layer by layer under the gradient tape, without rebuilding the model.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ferlib.models.builders import BACKBONE_LAYER


def _side(layer: keras.layers.Layer) -> int:
    """Return the smaller spatial side of a layer's 4-d output (0 for other outputs)."""
    shape = layer.output.shape
    return min(int(shape[1] or 0), int(shape[2] or 0)) if len(shape) == 4 else 0


def target_layer(model: keras.Model, min_side: int = 3) -> str:
    """Return the feature map Grad-CAM weighs: the last Conv2D, or a transfer model's (inner) backbone layer."""
    names = [layer.name for layer in model.layers]
    if BACKBONE_LAYER in names:
        backbone = model.get_layer(BACKBONE_LAYER)
        if _side(backbone) >= min_side:
            return BACKBONE_LAYER
        inner = [layer.name for layer in backbone.layers
                 if _side(layer) >= min_side and not isinstance(layer, keras.layers.ZeroPadding2D)]
        return f"{BACKBONE_LAYER}/{inner[-1]}" if inner else BACKBONE_LAYER
    convs = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    if not convs:
        raise ValueError(f"model {model.name!r} has neither a '{BACKBONE_LAYER}' sub-model nor a Conv2D layer")
    return convs[-1]


def gradcam(model: keras.Model, images: np.ndarray, class_index: int | np.ndarray | None = None,
            layer: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (heatmaps (n, H, W) in [0, 1] at input size, class probabilities (n, classes)).

    The heatmap explains `class_index` (one index, one per image, or None: each image's predicted class).
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    layer = layer or target_layer(model)
    outer, _, inner = layer.partition("/")
    nested = None
    if inner:  # a layer inside the backbone: run the backbone as (that layer's output, its own output)
        backbone = model.get_layer(outer)
        nested = keras.Model(backbone.inputs, [backbone.get_layer(inner).output, backbone.output])
    x = tf.convert_to_tensor(images, dtype=tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)  # frozen weights are not watched by default; the input makes every op recorded
        features = None
        for lay in model.layers:  # this project's models are chains at the top level
            if isinstance(lay, keras.layers.InputLayer):
                continue
            if nested is not None and lay.name == outer:
                features, x = nested(x, training=False)
                continue
            x = lay(x, training=False)
            if lay.name == outer:
                features = x
        probs = x
        if features is None:
            raise ValueError(f"layer {layer!r} is not a top-level layer of {model.name!r}")
        if class_index is None:
            chosen = tf.argmax(probs, axis=1)
        else:
            chosen = tf.convert_to_tensor(np.broadcast_to(np.asarray(class_index), (len(images),)), dtype=tf.int64)
        # The models end in a softmax: weigh the log-probability, whose gradient does not vanish when confident.
        score = tf.math.log(tf.gather(probs, chosen, axis=1, batch_dims=1) + 1e-12)
    grads = tape.gradient(score, features)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cams = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1)).numpy()
    resized = tf.image.resize(cams[..., None], images.shape[1:3], method="bilinear").numpy()[..., 0]
    peak = resized.max(axis=(1, 2), keepdims=True)
    return (resized / np.where(peak > 0, peak, 1)).astype(np.float32), probs.numpy().astype(np.float64)
