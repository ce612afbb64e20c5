"""Where and how precisely training runs: one GPU or several, mixed precision, op determinism."""
from __future__ import annotations

import contextlib

import keras

MULTI_GPU_ENV = "FERLIB_MULTI_GPU"  # run_all.sh --multi-gpu: one replica per visible GPU (MirroredStrategy)


def distribution_strategy(multi_gpu: bool | None = None):
    """Return MirroredStrategy over every GPU when several are visible and asked for (`multi_gpu`, default: the
    FERLIB_MULTI_GPU switch), else the default strategy (one GPU, or the CPU).

    One GPU is the default: these models are small for a T4, and with 2 CPU cores feeding the pipeline a second
    replica mostly waits for data; `--multi-gpu` is there to measure and use both.
    """
    import os

    import tensorflow as tf

    if multi_gpu is None:
        multi_gpu = os.environ.get(MULTI_GPU_ENV, "").strip().lower() in ("1", "true", "yes")
    gpus = tf.config.list_physical_devices("GPU")
    return tf.distribute.MirroredStrategy() if multi_gpu and len(gpus) > 1 else tf.distribute.get_strategy()


@contextlib.contextmanager
def precision_policy(mixed: bool, require_gpu: bool = True):
    """Use mixed_float16 inside the block when asked (and, unless `require_gpu` is False, a GPU is present);
    restore the previous policy after. Output layers and augmentation stay float32 whatever the policy."""
    import tensorflow as tf

    previous = keras.config.dtype_policy()
    use = mixed and (not require_gpu or bool(tf.config.list_physical_devices("GPU")))
    if use:
        keras.config.set_dtype_policy("mixed_float16")
    try:
        yield use
    finally:
        keras.config.set_dtype_policy(previous)


def use_determinism(enabled: bool) -> None:
    """Turn on TensorFlow's op determinism (process-wide, irreversible) when `enabled`."""
    if enabled:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
