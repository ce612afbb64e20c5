"""Where and how precisely training runs: one GPU or several, mixed precision (bfloat16 where the CPU has it)."""
from __future__ import annotations

import contextlib

import keras

MULTI_GPU_ENV = "FERLIB_MULTI_GPU"  # run_all.sh --multi-gpu: one replica per visible GPU (MirroredStrategy)


def distribution_strategy(multi_gpu: bool | None = None):
    """Return MirroredStrategy over every GPU when several are visible and asked for (`multi_gpu`, default: the
    FERLIB_MULTI_GPU switch), else the default strategy: these models are small, a second replica mostly waits."""
    import os

    import tensorflow as tf

    if multi_gpu is None:
        multi_gpu = os.environ.get(MULTI_GPU_ENV, "").strip().lower() in ("1", "true", "yes")
    gpus = tf.config.list_physical_devices("GPU")
    return tf.distribute.MirroredStrategy() if multi_gpu and len(gpus) > 1 else tf.distribute.get_strategy()


@contextlib.contextmanager
def precision_policy(mixed: bool, require_gpu: bool = True, policy: str = "mixed_float16"):
    """Use `policy` inside the block when `mixed` (and a GPU is present, or not `require_gpu`), then restore."""
    import tensorflow as tf

    previous = keras.config.dtype_policy()
    use = mixed and (not require_gpu or bool(tf.config.list_physical_devices("GPU")))
    if use:
        keras.config.set_dtype_policy(policy)
    try:
        yield use
    finally:
        keras.config.set_dtype_policy(previous)


def resolve_precision(requested: str) -> str:
    """Return the Keras policy a recipe's `precision` means here ("auto": mixed_bfloat16 on a GPU-less bf16 CPU)."""
    if requested != "auto":
        return requested
    import tensorflow as tf

    try:  # native bfloat16: AVX512_BF16 or AMX_BF16 in /proc/cpuinfo
        with open("/proc/cpuinfo") as f:
            native = bool(set(f.read().split()) & {"avx512_bf16", "amx_bf16"})
    except OSError:
        native = False
    return "mixed_bfloat16" if native and not tf.config.list_physical_devices("GPU") else "float32"
