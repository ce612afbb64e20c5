"""Loading a saved model to predict with: LiteRT by default, Keras on request or when LiteRT cannot run.

    loaded = load_for_inference(path)              # backend "auto": LiteRT when a checked .tflite is beside
    probs = loaded.network(faces)                  # (n, 48, 48, 3) 0-255 RGB -> (n, 5) float64

"auto" runs the LiteRT file beside the ``.keras`` at the card's default precision (or the one asked for) when
the card vouches for it (`litert.stale_reason`) and LiteRT is installed; otherwise it loads the ``.keras`` with
Keras, with a `note` saying why when a LiteRT file was there to be used. Predicting with LiteRT imports no
TensorFlow: Keras is imported only on the Keras path.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ferlib.models.litert import LiteRTNetwork, default_precision, litert_path, litert_unavailable, stale_reason
from ferlib.models.shipped import WithCard, read_card

BACKENDS = ("auto", "litert", "keras")
PRECISION_CHOICES = ("card", "float32", "int8")  # card: the precision the card chose on validation
KERAS_BUCKETS = (8, 16, 32, 64)  # batch sizes the Keras backend pads to (one compiled trace each)


def padded_size(n: int) -> int:
    """Return the batch size n images are padded to on the Keras backend: the smallest of KERAS_BUCKETS that
    holds them, else n."""
    return next(b for b in (*KERAS_BUCKETS, n) if b >= n)


class KerasNetwork:
    """A Keras model called like `LiteRTNetwork`: images (n, size, size, 3) in 0-255 -> probabilities, float64.

    The compiled predict step (several times faster than an eager call on small batches) is traced once per
    batch shape, so batches are padded to a few fixed sizes: a new number of faces costs no trace."""

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
    """Return a saved model (``.keras`` with its card, and its LiteRT files when converted) ready to predict.

    backend: "litert" (RuntimeError or ValueError saying why when it cannot), "keras", or "auto" (LiteRT
    when it can, else Keras with a `note`). precision (LiteRT): "card" (the one the card chose on validation),
    "float32" (the Keras network's own numbers) or "int8". FileNotFoundError when the model is missing."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if precision not in PRECISION_CHOICES:
        raise ValueError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, got {precision!r}")
    path = Path(path)
    card = read_card(path)
    precision = default_precision(card) if precision == "card" else precision
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
