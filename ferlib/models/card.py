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

from ferlib.classes import LEGACY_PREPROCESSING, PREPROCESSINGS, STUDY

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

    @property
    def preprocessing(self) -> str:
        """Return the face preprocessing the model learned with (`card_preprocessing`)."""
        return card_preprocessing(self.card)


def card_path(model_path: Path) -> Path:
    """Return the card file that belongs to a saved model."""
    return Path(model_path).with_suffix(".json")


def read_card(model_path: str | Path) -> dict[str, Any] | None:
    """Return the card beside a saved model, or None when it has none."""
    path = card_path(Path(model_path))
    return json.loads(path.read_text()) if path.is_file() else None


def card_preprocessing(card: dict[str, Any]) -> str:
    """Return the name of the face preprocessing a card gives (one of PREPROCESSINGS). A card written before cards
    named one belongs to a model that learned FER-2013's equalized faces: it gets equalization."""
    entry = card.get("preprocessing")
    name = entry.get("name") if isinstance(entry, dict) else LEGACY_PREPROCESSING
    if name not in PREPROCESSINGS:
        raise ValueError(f"the card of {card.get('name')} names an unknown preprocessing {name!r}; known: "
                         f"{', '.join(PREPROCESSINGS)}")
    return name


def assumed_card(model_path: Path, size: int, n_classes: int = len(STUDY)) -> dict[str, Any]:
    """Return the card assumed for a model saved without one: the study's classes and 0-255 RGB input."""
    if n_classes != len(STUDY):
        raise ValueError(f"{model_path} has no model card and {n_classes} outputs: save it with its card (classes)")
    return {"card_version": 0, "name": Path(model_path).stem, "classes": list(STUDY.names),
            "preprocessing": {"name": "none"},
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
