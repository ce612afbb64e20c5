"""The tf.data input pipeline: batches gathered from one array, shuffled and augmented for training."""
from __future__ import annotations

import numpy as np


def make_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, training: bool, seed: int = 42,
                 augmentation=None, deterministic: bool | None = None):
    """Return a batched tf.data pipeline over the arrays: shuffled only for training, augmented (training batches
    only) when an augmentation model is given, prefetched. Images stay uint8 unless augmented.

    The pipeline holds indices, not images: each batch is gathered from the one numpy array, so a run keeps a
    single copy of its images (a cached or constant-embedded dataset and a full-size shuffle buffer would add
    three more). With `deterministic` (default: the FERLIB_DETERMINISTIC switch) augmentation runs on one
    thread, so its random draws reach the batches in the same order on every run.
    """
    import tensorflow as tf

    from ferlib.config import deterministic_run
    from ferlib.data.augment import augment_batch

    images, labels = np.asarray(images), np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    deterministic = deterministic_run() if deterministic is None else deterministic
    x_dtype, y_dtype = tf.as_dtype(images.dtype), tf.as_dtype(labels.dtype)

    def gather(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return images[index], labels[index]

    def load(index):
        x, y = tf.numpy_function(gather, [index], (x_dtype, y_dtype), stateful=False)
        x.set_shape((None, *images.shape[1:]))
        y.set_shape((None, *labels.shape[1:]))
        return x, y

    ds = tf.data.Dataset.range(len(images))
    if training:  # a buffer of indices (8 bytes per image), reshuffled every epoch from the seed
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if training and augmentation is not None:
        ds = ds.map(lambda x, y: augment_batch(augmentation, x, y),
                    num_parallel_calls=1 if deterministic else tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
