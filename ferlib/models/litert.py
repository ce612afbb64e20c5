"""A saved model run with LiteRT: its ``.keras`` network converted, without TensorFlow at inference.

``<name>.tflite`` (float32) and ``<name>.int8.tflite`` (dynamic-range int8) beside ``<name>.keras`` are made by
TensorFlow's LiteRT converter (`convert_keras`, from `ferlib.models.shipping`, which checks them and picks the
default precision on the validation split). The card's ``litert`` entry records each file's sha256 and the
``.keras`` it comes from, so a converted file that no longer matches is never used silently (`stale_reason`).

LiteRT (``ai-edge-litert``) has no wheel for Windows; `litert_unavailable` says so, and
`ferlib.models.inference` then falls back to Keras.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ferlib.models.shipped import sha256_of
from ferlib.runtime.quiet import captured_fd2

SUFFIX = ".tflite"
PRECISIONS = ("float32", "float16", "int8")  # int8: dynamic range (weights int8, activations float)
MAX_THREADS = 4  # a face batch is small: more threads than this only add synchronisation
MAX_BATCH = 256  # images per invocation: larger calls are split (activations grow with the batch)


def litert_path(model_path: str | Path, precision: str = "float32") -> Path:
    """Return the LiteRT file of a saved model at a precision: <name>.tflite (float32), <name>.int8.tflite, ..."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return Path(model_path).with_suffix(SUFFIX if precision == "float32" else f".{precision}{SUFFIX}")


def default_precision(card: dict[str, Any] | None) -> str:
    """Return the precision a card names for prediction (float32 when it names none)."""
    return str(((card or {}).get("litert") or {}).get("default", "float32"))


def litert_unavailable() -> str | None:
    """Return why LiteRT cannot run on this machine (None when it can), without importing it."""
    if importlib.util.find_spec("ai_edge_litert") is not None:
        return None
    if sys.platform == "win32":
        return "LiteRT has no Windows wheel (ai-edge-litert)"
    return "ai-edge-litert is not installed (pip install ai-edge-litert)"


def inference_threads() -> int:
    """Return the threads LiteRT uses: the CPU cores this process may run on, at most MAX_THREADS."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_THREADS))


def stale_reason(card: dict[str, Any] | None, model_path: Path, precision: str = "float32") -> str | None:
    """Return why the LiteRT file of `model_path` at `precision` must not stand for it (None when it may): missing,
    not recorded in the card, changed since it was converted, or converted from another ``.keras``."""
    path = litert_path(model_path, precision)
    entry = (((card or {}).get("litert") or {}).get("precisions") or {}).get(precision)
    if not path.is_file():
        return f"no LiteRT file beside {Path(model_path).name}"
    if not entry:
        return f"{path.name} is not recorded in the model card"
    if sha256_of(path) != entry.get("sha256"):
        return f"{path.name} differs from the file its card records (sha256)"
    if Path(model_path).is_file() and sha256_of(Path(model_path)) != entry.get("from_sha256"):
        return f"{path.name} was converted from another {Path(model_path).name}"
    return None


class LiteRTNetwork:
    """A LiteRT model taking uint8 or float 0-255 RGB batches (n, size, size, 3) and returning class
    probabilities. A call is one invocation (up to MAX_BATCH images): the input is resized when the batch size
    changes, which measured no slower than fixed, padded batch sizes (docs/history.md)."""

    name = "litert"

    def __init__(self, path: str | Path, threads: int | None = None):

        if (why := litert_unavailable()) is not None:
            raise ModuleNotFoundError(why, name="ai_edge_litert")
        self.path = Path(path)
        self.threads = threads or inference_threads()
        with captured_fd2():  # LiteRT prints "Created TensorFlow Lite XNNPACK delegate" on stderr
            from ai_edge_litert.interpreter import Interpreter

            self.interpreter = Interpreter(model_path=str(self.path), num_threads=self.threads)
            self.interpreter.allocate_tensors()
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"{self.path} has {len(inputs)} inputs and {len(outputs)} outputs; a classifier has one "
                             "of each")
        self.input_index, self.output_index = inputs[0]["index"], outputs[0]["index"]
        self.input_dtype = inputs[0]["dtype"]
        self.input_shape = tuple(int(v) for v in inputs[0]["shape"][1:])
        self.classes = int(outputs[0]["shape"][-1])
        self._batch = int(inputs[0]["shape"][0])

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Return probabilities (n, classes) as float64 for images (n, size, size, 3) in 0-255."""
        images = np.asarray(images)
        if images.shape[1:] != self.input_shape:
            raise ValueError(f"expected images of shape (n, {', '.join(map(str, self.input_shape))}), got "
                             f"{images.shape}")
        if len(images) == 0:
            return np.zeros((0, self.classes))
        if len(images) > MAX_BATCH:
            return np.concatenate([self(images[i: i + MAX_BATCH]) for i in range(0, len(images), MAX_BATCH)])
        if len(images) != self._batch:
            self.interpreter.resize_tensor_input(self.input_index, [len(images), *self.input_shape])
            self.interpreter.allocate_tensors()
            self._batch = len(images)
        self.interpreter.set_tensor(self.input_index, np.ascontiguousarray(images, dtype=self.input_dtype))
        self.interpreter.invoke()
        return np.array(self.interpreter.get_tensor(self.output_index), dtype=np.float64)


def convert_keras(model: Any, precision: str = "float32") -> bytes:
    """Return a Keras model converted by TensorFlow's LiteRT converter, with a dynamic batch size.

    `precision`: "float32" (no quantization), "float16" (weights stored as float16) or "int8" (dynamic range:
    weights int8, activations computed in float). TensorFlow is imported here only: converting is part of
    shipping a model, never of predicting."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if precision != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if precision == "float16":
            converter.target_spec.supported_types = [tf.float16]
    return bytes(converter.convert())


def agreement(reference: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    """Return how far two backends' probabilities (n, classes) agree: images, the share with the same label,
    the images whose labels differ, and the largest absolute difference of a probability."""
    reference, other = np.asarray(reference, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if reference.shape != other.shape:
        raise ValueError(f"shapes differ: {reference.shape} and {other.shape}")
    same = reference.argmax(axis=1) == other.argmax(axis=1)
    return {"n": int(len(same)), "same_label": float(same.mean()) if len(same) else 1.0,
            "labels_differ": int((~same).sum()),
            "max_probability_difference": float(np.abs(reference - other).max()) if len(same) else 0.0}
