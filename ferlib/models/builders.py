"""Model builders: every experiment's network is built from its registry entry.

``custom_cnn`` (V1) and ``fer_cnn`` (C1) are trained from scratch; the others are transfer models, ``image ->
preprocessing -> backbone -> the study's head``. Every model takes raw 0-255 RGB images: its preprocessing is inside.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
from keras import layers

from ferlib.classes import STUDY, class_set
from ferlib.experiments import Experiment
from ferlib.models.matmul_conv import with_matmul_convolutions
from ferlib.weights import imagenet_file, online

BACKBONE_LAYER = "backbone"
SCRATCH_BACKBONES = ("custom_cnn", "fer_cnn")
FER_CNN_FILTERS = (32, 64, 128, 256)
SCRATCH_BN_MOMENTUM = 0.9  # BatchNorm's moving averages of a backbone trained from scratch (C1's own: Keras' 0.99)


class WeightsUnavailable(RuntimeError):
    """ImageNet weights are neither in the Keras cache nor downloadable."""


@dataclass(frozen=True)
class Backbone:
    """A keras.applications backbone: its name, constructor and the input scaling it expects."""

    name: str
    constructor: Callable[..., keras.Model]
    scale: tuple[float, float] | None  # Rescaling (scale, offset) for 0-255 input; None: built in


BACKBONES: dict[str, Backbone] = {
    "mobilenetv2": Backbone("MobileNetV2", keras.applications.MobileNetV2, (1 / 127.5, -1.0)),
    "efficientnetb0": Backbone("EfficientNetB0", keras.applications.EfficientNetB0, None),
    "resnet50v2": Backbone("ResNet50V2", keras.applications.ResNet50V2, (1 / 127.5, -1.0)),
}


def resolve_weights(backbone: str, image_size: int, weights: str | None) -> str | None:
    """Return what to pass as `weights=`: "imagenet" (cached or downloadable), None, or a file path;
    WeightsUnavailable, naming the file and where to put it, for ImageNet weights offline and not cached."""
    if weights in (None, "random", "none"):
        return None
    if weights != "imagenet":
        if not Path(weights).is_file():
            raise WeightsUnavailable(f"weights file not found: {weights}")
        return str(weights)
    spec = BACKBONES[backbone]
    cached = imagenet_file(backbone, image_size)
    if cached.is_file() or online():
        return "imagenet"
    raise WeightsUnavailable(
        f"ImageNet weights for {spec.name} are not in the Keras cache and this machine is offline. "
        f"Place the file {cached.name} in {cached.parent} (download it on a machine with internet, e.g. by "
        f"running keras.applications.{spec.name}(include_top=False, weights='imagenet', "
        f"input_shape=({image_size}, {image_size}, 3)) there, and copy it from its ~/.keras/models), "
        f"or use random initialisation (profile cpu/smoke, or weights='random')."
    )


def build_custom_cnn(image_size: int, seed: int | None = None, num_classes: int = len(STUDY)) -> keras.Model:
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
            layers.Dropout(0.5, seed=seed),
            layers.Dense(num_classes, activation="softmax", dtype="float32", name="emotion"),
        ],
        name="custom_cnn",
    )


def build_fer_cnn(image_size: int, filters: tuple[int, ...] = FER_CNN_FILTERS, seed: int = 0,
                  num_classes: int = len(STUDY), dropout: float = 0.5, dense: int = 256, crop: int = 0) -> keras.Model:
    """Return the C1 network: the central crop x crop pixels (when `crop` is set: part of the model, and behind
    augmentation that shifts faces, a random crop at (crop / image_size)^2 of the compute), VGG-style blocks of
    3x3 conv-BN-ReLU and 2x2 max pooling, then flatten, dropout/2, Dense(dense)-BN-ReLU, dropout and softmax."""
    if crop and not 0 < crop <= image_size:
        raise ValueError(f"crop must be between 1 and the image size {image_size}, got {crop}")
    he = lambda i: keras.initializers.HeNormal(seed=seed + i)  # noqa: E731
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = layers.CenterCrop(crop, crop, name="center_crop")(inputs) if crop and crop < image_size else inputs
    x = layers.Rescaling(1.0 / 255, name="rescale")(x)
    n = 0
    for block, width in enumerate(filters):
        # a single conv at full resolution: the second one there costs a fifth of the time for little gain
        for _ in range(1 if block == 0 else 2):
            n += 1
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, kernel_initializer=he(n), name=f"conv{n}")(x)
            x = layers.BatchNormalization(name=f"bn{n}")(x)
            x = layers.ReLU(name=f"relu{n}")(x)
        x = layers.MaxPooling2D(name=f"pool{block + 1}")(x)
    # flatten keeps where a feature is (mouth, eyes, brows): faces are aligned, so position is information
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout / 2, seed=seed, name="dropout1")(x)
    x = layers.Dense(dense, use_bias=False, kernel_initializer=he(0), name="dense")(x)
    x = layers.BatchNormalization(name="bn_dense")(x)
    x = layers.ReLU(name="relu_dense")(x)
    x = layers.Dropout(dropout, seed=seed + 1, name="dropout2")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="emotion",
                           kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(x)
    return keras.Model(inputs, outputs, name="fer_cnn")


def float32_copy(model: keras.Model) -> keras.Model:
    """Return the model computing in float32 with the same weights (what is evaluated, saved and shipped)."""
    policies = {getattr(layer.dtype_policy, "name", "float32") for layer in model.layers}
    if policies <= {"float32"}:
        return model
    config = model.get_config()
    for layer in config["layers"]:
        if "dtype" in layer["config"]:
            layer["config"]["dtype"] = "float32"
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def is_transfer(backbone: str) -> bool:
    """Return True for keras.applications backbones, False for networks trained from scratch."""
    return backbone not in SCRATCH_BACKBONES


def build_transfer_model(backbone: str, image_size: int, weights: str | None, seed: int = 0,
                         num_classes: int = len(STUDY), from_scratch: bool = False,
                         head_scale: float = 1.0) -> keras.Model:
    """Return image (0-255) -> preprocessing -> backbone -> pooling -> the study's head (Dense(128, relu),
    Dropout(0.5), Dense(classes, softmax)). The backbone starts frozen with its BatchNorm in inference mode;
    `from_scratch` (random weights) lets its BatchNorm learn its statistics while it trains."""
    spec = BACKBONES[backbone]
    resolved = resolve_weights(backbone, image_size, weights)
    cached = imagenet_file(backbone, image_size)
    # ImageNet weights in the Keras cache are read from there as Keras reads them; otherwise Keras downloads them
    from_cache = resolved == "imagenet" and cached.is_file()
    base = spec.constructor(include_top=False, weights=None if from_cache else resolved,
                            input_shape=(image_size, image_size, 3))
    if from_cache:
        base.load_weights(cached)
    if from_scratch:  # keras.applications' BatchNorm averages over ~1,000 steps: a short run from scratch needs ~10
        base = with_matmul_convolutions(base)  # the same network, with convolution gradients fast on a CPU
        for layer in base.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = SCRATCH_BN_MOMENTUM
    base.name = BACKBONE_LAYER
    base.trainable = False
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = layers.Rescaling(*spec.scale, name="preprocess")(inputs) if spec.scale else inputs
    x = base(x) if from_scratch else base(x, training=False)  # pretrained: BatchNorm in inference mode
    pooled = layers.GlobalAveragePooling2D(name="pool")(x)
    if head_scale != 1.0:  # a constant, no weights: the head's first Adam steps move its units head_scale as far
        pooled = layers.Rescaling(head_scale, name="head_scale")(pooled)
    # the study's head, a sub-model seeded so that it trains identically on cached features and through the backbone
    features = keras.Input(shape=(pooled.shape[-1],), name="pooled_features")
    h = layers.Dense(128, activation="relu", name="head_dense",
                     kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(features)
    h = layers.Dropout(0.5, seed=seed, name="head_dropout")(h)
    h = layers.Dense(num_classes, activation="softmax", dtype="float32", name="emotion",
                     kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1))(h)
    return keras.Model(inputs, keras.Model(features, h, name="head")(pooled), name=f"{backbone}_emotion")


def feature_extractor(model: keras.Model) -> keras.Model:
    """Return the part of a transfer model up to the features its head takes (sharing its weights)."""
    names = {layer.name for layer in model.layers}
    return keras.Model(model.inputs, model.get_layer("head_scale" if "head_scale" in names else "pool").output,
                       name="features")


def backbone_of(model: keras.Model) -> keras.Model:
    """Return the backbone sub-model of a transfer model."""
    return model.get_layer(BACKBONE_LAYER)


def head_of(model: keras.Model) -> keras.Model:
    """Return the head sub-model of a transfer model."""
    return model.get_layer("head")


def set_trainable_from(model: keras.Model, trainable_from: int | None) -> None:
    """Freeze the backbone (None) or unfreeze its layers from index `trainable_from` on; the head always trains."""
    base = backbone_of(model)
    if trainable_from is None:
        base.trainable = False
        return
    base.trainable = True
    for i, layer in enumerate(base.layers):
        layer.trainable = i >= trainable_from


def _build(backbone: str, size: int, num_classes: int, seed: int = 0, filters: tuple[int, ...] | None = None,
           crop: int = 0, weights: str | None = None, from_scratch: bool = False, head_scale: float = 1.0
           ) -> keras.Model:
    if backbone == "custom_cnn":
        return build_custom_cnn(size, seed=seed, num_classes=num_classes)
    if backbone == "fer_cnn":
        return build_fer_cnn(size, filters or FER_CNN_FILTERS, seed=seed, crop=crop, num_classes=num_classes)
    return build_transfer_model(backbone, size, weights, seed=seed, num_classes=num_classes, from_scratch=from_scratch,
                                head_scale=head_scale)


def build_described(experiment: Mapping[str, Any], num_classes: int = len(STUDY)) -> keras.Model | None:
    """Return the untrained float32 network a model card's `experiment` entry describes (random weights, nothing
    downloaded; `modelcard.load_network` reads saved weights into it), or None for a backbone not built here."""
    backbone, size = experiment.get("backbone"), experiment.get("image_size")
    if not isinstance(size, int) or backbone not in (*SCRATCH_BACKBONES, *BACKBONES):
        return None
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")  # saved champions compute in float32 (see float32_copy)
    try:
        return _build(backbone, size, num_classes, filters=tuple(experiment.get("filters") or FER_CNN_FILTERS),
                      crop=int(experiment.get("crop") or 0), head_scale=float(experiment.get("head_scale") or 1.0))
    finally:
        keras.config.set_dtype_policy(policy)


def build_model(experiment: Experiment, weights: str | None = None, seed: int = 0) -> keras.Model:
    """Return the untrained network for an experiment entry (weights apply to transfer backbones)."""
    return _build(experiment.backbone, experiment.image_size, len(class_set(experiment.classes)), seed,
                  experiment.filters, experiment.crop, None if experiment.from_scratch else weights,
                  experiment.from_scratch, experiment.head_scale)
