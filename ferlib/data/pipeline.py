"""The tf.data input pipeline: batches gathered from one array, shuffled and augmented for training.

Training order and augmentation are a function of (seed, epoch): every pass over the data asks an
`EpochOrder` for its epoch's permutation, and the augmentation's random generators are reset from
(seed, epoch) before its first batch. A run resumed at epoch e therefore sees the order and
augmentation an uninterrupted run sees at epoch e (`ReseedEachEpoch` tells the order which epoch
Keras is starting, and also reseeds the model's dropout).
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator

import keras
import numpy as np

from ferlib.config import deterministic_run
from ferlib.data.augment import augment_batch


def reseed(model, seed: int, epoch: int, stream: int = 0) -> None:
    """Reset every Keras SeedGenerator a model or layer (and its sublayers), or a list of them, draws from to a
    state derived from (seed, epoch, stream, its position in a fixed order): different streams never share draws."""
    models = [m for m in (model if isinstance(model, (list, tuple)) else [model]) if m is not None]
    generators = {}  # by id, in the order first met
    for layer in [layer for m in models for layer in (m, *m._flatten_layers(include_self=False))]:
        for generator in getattr(layer, "_seed_generators", []):
            generators.setdefault(id(generator), generator)
    for i, generator in enumerate(generators.values()):
        digest = hashlib.sha256(f"{seed}:{epoch}:{1000 * stream + i}".encode()).digest()
        state = int.from_bytes(digest[:4], "little") & 0x7FFFFFFF  # a 31-bit seed
        generator.state.assign(np.array([state, 0], dtype=generator.state.dtype))


class EpochOrder:
    """The batches of training indices of each pass, drawn from (seed, epoch).

    Each call starts a pass: it takes the epoch set by `start` (or the one after the previous pass),
    reseeds the augmentation for that epoch, and yields the epoch's permutation in batches."""

    def __init__(self, n: int, batch_size: int, seed: int, augmentation=None):
        self.n, self.batch_size, self.seed, self.augmentation = n, batch_size, seed, augmentation
        self.next_epoch = 0
        self.epochs_started: list[int] = []

    def start(self, epoch: int) -> None:
        """Make the next pass epoch `epoch` (0-based), as Keras numbers it."""
        self.next_epoch = int(epoch)

    def permutation(self, epoch: int) -> np.ndarray:
        """Return epoch `epoch`'s order of the training images."""
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def __call__(self) -> Iterator[np.ndarray]:
        epoch = self.next_epoch
        self.next_epoch += 1
        self.epochs_started.append(epoch)
        reseed(self.augmentation, self.seed, epoch, stream=1)
        order = self.permutation(epoch)
        for begin in range(0, self.n, self.batch_size):
            yield order[begin:begin + self.batch_size]


class ReseedEachEpoch(keras.callbacks.Callback):
    """At the start of every epoch (also the first one after resuming), point the training order at that epoch
    and reseed the model's own random layers (dropout) from (seed, epoch)."""

    def __init__(self, order: EpochOrder, seed: int):
        super().__init__()
        self.order, self.seed = order, seed

    def on_epoch_begin(self, epoch, logs=None):
        self.order.start(epoch)
        reseed(self.model, self.seed, epoch, stream=2)


def make_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, training: bool, seed: int = 42,
                 augmentation=None, deterministic: bool | None = None, order: EpochOrder | None = None):
    """Return a batched, prefetched tf.data pipeline over the arrays (uint8 unless augmented); training batches
    come in an `EpochOrder` (made from `seed` when not given) and go through the augmentation when one is given.

    The pipeline holds indices, not images: each batch is gathered from the one numpy array, so a run keeps a
    single copy of its images (a cached or constant-embedded dataset and a full-size shuffle buffer would add
    three more). With `deterministic` (default: the FERLIB_DETERMINISTIC switch) augmentation runs on one
    thread, so its random draws reach the batches in the same order on every run.
    """
    import tensorflow as tf

    images, labels = np.asarray(images), np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    deterministic = deterministic_run() if deterministic is None else deterministic
    x_dtype, y_dtype = tf.as_dtype(images.dtype), tf.as_dtype(labels.dtype)

    def load(index):  # gathers a batch from the arrays
        x, y = tf.numpy_function(lambda i: (images[i], labels[i]), [index], (x_dtype, y_dtype), stateful=False)
        x.set_shape((None, *images.shape[1:]))
        y.set_shape((None, *labels.shape[1:]))
        return x, y

    if training:
        if order is None:
            order = EpochOrder(len(images), batch_size, seed, augmentation)
        elif (order.n, order.batch_size) != (len(images), batch_size):
            raise ValueError(f"the epoch order is for {order.n} images in batches of {order.batch_size}, "
                             f"not {len(images)} in batches of {batch_size}")
        ds = tf.data.Dataset.from_generator(order, output_signature=tf.TensorSpec((None,), tf.int64))
        ds = ds.apply(tf.data.experimental.assert_cardinality(-(-order.n // order.batch_size)))  # batches a pass
    else:
        ds = tf.data.Dataset.range(len(images)).batch(batch_size)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if training and augmentation is not None:
        ds = ds.map(lambda x, y: augment_batch(augmentation, x, y),
                    num_parallel_calls=1 if deterministic else tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
