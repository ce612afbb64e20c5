"""A saved model's card, read without Keras: what the model expects as input and how it was scored.

``<name>.keras`` holds the network, ``<name>.json`` beside it the card (written by `ferlib.models.modelcard`),
and ``<name>.tflite`` the same network for LiteRT when it has been converted (`ferlib.models.litert`). Reading
a card needs no TensorFlow, so that predicting with LiteRT never imports it.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ferlib.classes import CLASS_NAMES

CARD_VERSION = 1


class WithCard:
    """What a model's card tells about its inputs and outputs (for classes holding a `card`)."""

    card: dict[str, Any]

    @property
    def image_size(self) -> int:
        """Return the square input size the model expects."""
        return int(self.card["input"]["size"])

    @property
    def classes(self) -> list[str]:
        """Return the class names in the model's output order."""
        return list(self.card["classes"])


def card_path(model_path: Path) -> Path:
    """Return the card file that belongs to a saved model."""
    return Path(model_path).with_suffix(".json")


def read_card(model_path: str | Path) -> dict[str, Any] | None:
    """Return the card beside a saved model, or None when it has none."""
    path = card_path(Path(model_path))
    return json.loads(path.read_text()) if path.is_file() else None


def assumed_card(model_path: Path, size: int) -> dict[str, Any]:
    """Return the card assumed for a model saved without one: this project's classes and 0-255 RGB input."""
    return {"card_version": 0, "name": Path(model_path).stem, "classes": list(CLASS_NAMES),
            "input": {"size": size, "shape": [size, size, 3], "value_range": [0, 255]},
            "note": "no model card found; classes and input range assumed to be this project's"}


def tta_settings(card: dict[str, Any]) -> tuple[bool, int]:
    """Return (flip, shift): the test-time averaging a card asks for (its "tta" entry, else the
    experiment's tta_flip; see `ferlib.evaluation.views.tta_views`)."""
    tta = card.get("tta")
    if tta:
        return bool(tta.get("flip", False)), int(tta.get("shift", 0))
    return bool((card.get("experiment") or {}).get("tta_flip", False)), 0


def sha256_of(path: Path) -> str:
    """Return a file's sha256 (hex), as cards record it."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
