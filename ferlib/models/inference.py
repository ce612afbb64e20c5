"""Loading a saved model to predict with: LiteRT by default, Keras on request or when LiteRT cannot run.

"auto" runs the card's checked LiteRT file (``<name>.tflite``, or ``<name>.int8.tflite`` at the card's default
precision, or for a pooled model the one chosen for the pool; written by `ferlib.models.shipping` and
`ferlib.models.pool_choice`) when the card vouches for it (`stale_reason`) and LiteRT is
installed (`litert_unavailable`); otherwise the ``.keras`` with Keras, with a `note` saying why when a LiteRT file
was there. Predicting with LiteRT imports no TensorFlow: Keras is imported only on the Keras path.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ferlib.models.pooling import NetworkGroup, PooledNetwork, class_positions
from ferlib.models.shipped import (
    WithCard,
    learned_preprocessing,
    partner_entries,
    partner_paths,
    pooled_precision,
    read_card,
    replaced_partner,
    sha256_of,
)
from ferlib.runtime.quiet import captured_fd2

BACKENDS = ("auto", "litert", "keras")
PRECISIONS = ("float32", "float16", "int8")  # of LiteRT files; int8: dynamic range (weights int8, activations float)
PRECISION_CHOICES = ("card", "float32", "int8")  # card: the precision the card chose on validation
KERAS_BUCKETS = (8, 16, 32, 64)  # batch sizes the Keras backend pads to (one compiled trace each)
MAX_THREADS = 4  # a face batch is small: more threads than this only add synchronisation
MAX_BATCH = 256  # images per LiteRT invocation: larger calls are split (activations grow with the batch)


def litert_path(model_path: str | Path, precision: str = "float32") -> Path:
    """Return the LiteRT file of a saved model at a precision: <name>.tflite (float32), <name>.int8.tflite, ..."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return Path(model_path).with_suffix(".tflite" if precision == "float32" else f".{precision}.tflite")


def litert_unavailable() -> str | None:
    """Return why LiteRT cannot run on this machine (None when it can), without importing it."""
    if importlib.util.find_spec("ai_edge_litert") is not None:
        return None
    if sys.platform == "win32":
        return "LiteRT has no Windows wheel (ai-edge-litert)"
    return "ai-edge-litert is not installed (pip install ai-edge-litert)"


def stale_reason(card: dict[str, Any] | None, model_path: Path, precision: str = "float32") -> str | None:
    """Return why the LiteRT file at `precision` must not stand for `model_path` (None when it may)."""
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
    """A LiteRT model: 0-255 RGB batches (n, size, size, 3) in, class probabilities out, one invocation per call
    of up to MAX_BATCH images (the input resized to the batch: no slower than padding, docs/history.md)."""

    name = "litert"

    def __init__(self, path: str | Path, threads: int | None = None):
        if (why := litert_unavailable()) is not None:
            raise ModuleNotFoundError(why, name="ai_edge_litert")
        self.path = Path(path)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.threads = threads or max(1, min(cores, MAX_THREADS))  # the cores this process may run on
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


def padded_size(n: int) -> int:
    """Return the batch size n images are padded to: the smallest of KERAS_BUCKETS that holds them, else n."""
    return next(b for b in (*KERAS_BUCKETS, n) if b >= n)


class KerasNetwork:
    """A Keras model called like `LiteRTNetwork`, its batches padded to a few fixed sizes (KERAS_BUCKETS) so that
    a new number of faces costs no new trace of the compiled predict step."""

    name = "keras"

    def __init__(self, model: Any, batch_size: int = 64):
        self.model = model
        self.batch_size = batch_size

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if len(images) == 0:
            return np.zeros((0, int(self.model.output_shape[-1])))
        out = []
        for i in range(0, len(images), self.batch_size):
            chunk = images[i: i + self.batch_size]
            size = padded_size(len(chunk))
            padded = np.concatenate([chunk, np.zeros((size - len(chunk), *chunk.shape[1:]), chunk.dtype)])
            out.append(np.asarray(self.model.predict_on_batch(padded), dtype=np.float64)[: len(chunk)])
        return np.concatenate(out)

    def warm_up(self, image_size: int) -> None:
        """Trace the predict step for every padded batch size a call can use."""
        for batch in sorted({padded_size(n) for n in range(1, self.batch_size + 1)}):
            self.model.predict_on_batch(np.zeros((batch, image_size, image_size, 3), np.uint8))


@dataclass
class InferenceModel(WithCard):
    """A saved model ready to predict: its network (LiteRT or Keras), card, path and which backend runs it."""

    network: Any  # LiteRTNetwork or KerasNetwork: images -> probabilities
    card: dict[str, Any]
    path: Path
    backend: str  # "litert" or "keras"
    precision: str = "float32"  # what runs: the LiteRT file's precision (Keras: float32)
    note: str | None = None  # why "auto" did not run LiteRT although a LiteRT file was there


def load_keras(path: Path, batch_size: int = 64) -> tuple[KerasNetwork, dict[str, Any]]:
    """Return the Keras network saved in `path` and its card (see `ferlib.models.modelcard.load_with_card`)."""
    # Keras (and TensorFlow under it) is imported here and only here, so that predicting with LiteRT stays
    # free of both: a light install has neither, and importing them costs seconds.
    from ferlib.models.modelcard import load_with_card  # lazy: Keras, only for a Keras model

    loaded = load_with_card(path)
    return KerasNetwork(loaded.model, batch_size), loaded.card


def load_for_inference(path: str | Path, backend: str = "auto", precision: str = "card", *,
                       threads: int | None = None, batch_size: int = 64) -> InferenceModel:
    """Return a saved model ready to predict with `backend` ("auto": LiteRT when it can, else Keras with a `note`;
    "litert": RuntimeError or ValueError saying why when it cannot; "keras") at a LiteRT `precision` ("card": the
    one the card chose on validation, for a pooled model the one chosen for the pool; "float32", "int8"); pooled
    with the partner its card names (`pooled`). FileNotFoundError when the model is missing."""
    if precision == "card":  # a pooled model: the precision chosen for the pool, all its networks at it
        precision = pool_precision(path) or precision
    loaded = _load_alone(path, backend, precision, threads, batch_size)
    return pooled(loaded, backend, precision, threads, batch_size) if loaded.card.get("pooled_with") else loaded


def pool_precision(path: str | Path) -> str | None:
    """Return the LiteRT precision chosen for a pooled model's pool (`pooled_precision`) when all its networks' files
    at it are the ones their cards vouch for (`stale_reason`); None otherwise (each network at its own card's)."""
    card = read_card(path)
    chosen = pooled_precision(card)
    if card is None or chosen not in PRECISION_CHOICES or chosen == "card":
        return None
    networks = [Path(path), *partner_paths(path, card["pooled_with"])]
    return chosen if all(stale_reason(read_card(n), n, chosen) is None for n in networks) else None


def pooled(loaded: InferenceModel, backend: str = "auto", precision: str = "card", threads: int | None = None,
           batch_size: int = 64) -> InferenceModel:
    """Return the model with its network pooled with the partner its card's ``pooled_with`` names (a shipped model,
    or a ``file`` of its own beside it; `ferlib.models.pooling`), the partner loaded the same way and run on the
    model's test-time views and faces; ValueError when the partner is not the one the weight was chosen with, or
    learned another face preprocessing."""
    entry = loaded.card["pooled_with"]
    partners = [_load_alone(where, backend, precision, threads, batch_size)
                for where in partner_paths(loaded.path, entry)]
    if named := replaced_partner(entry, [p.card for p in partners]):
        now = (partners[partner_entries(entry).index(named)].card.get("shipped") or {}).get("sha256")
        again = "PARTNER.keras" if named.get("file") else named["model"]
        raise ValueError(f"{loaded.path.name} was pooled with another {named['model']} (sha256 "
                         f"{named['sha256'][:12]}, now: {str(now)[:12]}); pool it again with `python -m "
                         f"ferlib pool {loaded.path} --with {again} --data DIR`")
    for named, partner in zip(partner_entries(entry), partners):
        if learned_preprocessing(loaded.card) != learned_preprocessing(partner.card):  # all get the model's faces
            raise ValueError(f"{loaded.path.name} and its partner {named['model']} learned other faces "
                             f"({learned_preprocessing(loaded.card)}, {learned_preprocessing(partner.card)})")
    group = partners[0].network if len(partners) == 1 else NetworkGroup([p.network for p in partners])
    network = PooledNetwork(loaded.network, group, class_positions(loaded.classes, partners[0].classes),
                            float(entry["weight"]))
    return dataclasses.replace(loaded, network=network, note=loaded.note or next(
        (p.note for p in partners if p.note), None))


def _load_alone(path: str | Path, backend: str, precision: str, threads: int | None, batch_size: int
                ) -> InferenceModel:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if precision not in PRECISION_CHOICES:
        raise ValueError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, got {precision!r}")
    path = Path(path)
    card = read_card(path)
    if precision == "card":  # the precision the card chose on validation (float32 when it names none)
        precision = str(((card or {}).get("litert") or {}).get("default", "float32"))
    if not path.is_file() and not litert_path(path, precision).is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    note = None
    if backend in ("auto", "litert"):
        unavailable = litert_unavailable()
        stale = stale_reason(card, path, precision)
        if unavailable is None and stale is None and card is not None:
            network = LiteRTNetwork(litert_path(path, precision), threads)
            return InferenceModel(network, card, path, "litert", precision)
        why = unavailable or stale
        if backend == "litert":
            if unavailable:
                raise RuntimeError(f"cannot predict with LiteRT: {unavailable}; use --backend keras")
            raise ValueError(f"cannot predict with LiteRT: {why}; convert it with `python -m ferlib convert {path}` "
                             "or use --backend keras")
        if litert_path(path, precision).is_file():  # a model never converted runs with Keras without a word
            note = f"{why}: predicting with Keras instead of LiteRT (the same network, slower to load and run)"
    network, card = load_keras(path, batch_size)
    return InferenceModel(network, card, path, "keras", "float32", note)
