"""ImageNet weights for the study's backbones: the files Keras looks for, and whether this machine has them or can
download them (standard library only: the plan asks before anything is installed).
"""
from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

AUTO = "auto"  # a profile's weights: ImageNet where Keras can load them, else from scratch
WEIGHTS_HOST = ("storage.googleapis.com", 443)  # where Keras downloads keras.applications weights from
IMAGENET_FILES = {  # backbone: the file name Keras caches its ImageNet weights (no top) under ({rows}: input size)
    "mobilenetv2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5",
    "efficientnetb0": "efficientnetb0_notop.h5",
    "resnet50v2": "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
}


def keras_cache_dir() -> Path:
    """Return the folder where Keras looks for downloaded weights (KERAS_HOME/models)."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser() / "models"


def imagenet_file(backbone: str, image_size: int) -> Path:
    """Return where Keras keeps a backbone's ImageNet weights for this input size."""
    rows = image_size if image_size in (96, 128, 160, 192, 224) else 224  # Keras falls back to the 224 weights
    return keras_cache_dir() / IMAGENET_FILES[backbone].format(rows=rows)


def online(timeout: float = 3.0) -> bool:
    """Return True when Keras' weights host answers within `timeout` seconds."""
    try:
        with socket.create_connection(WEIGHTS_HOST, timeout=timeout):
            return True
    except OSError:
        return False


@functools.cache
def imagenet_status(image_size: int = 48) -> tuple[bool, str]:
    """Return (whether Keras can load ImageNet weights for every backbone here, why): cached, or downloadable."""
    missing = [b for b in IMAGENET_FILES if not imagenet_file(b, image_size).is_file()]
    if not missing:
        return True, f"ImageNet weights are in the Keras cache ({keras_cache_dir()})"
    if online():
        return True, f"ImageNet weights can be downloaded (not cached yet: {', '.join(missing)})"
    return False, (f"offline, and the ImageNet weights of {', '.join(missing)} are not in the Keras cache "
                   f"({keras_cache_dir()})")


def choose_weights(asked: str | None, profile_weights: str, image_size: int = 48) -> tuple[str, str]:
    """Return (weights, why) of a run: what was asked for, else the profile's; "auto" becomes "imagenet" when Keras
    can load ImageNet weights for every backbone and "random" (the transfer experiments from scratch) otherwise."""
    weights = asked or profile_weights
    if weights != AUTO:
        return weights, "asked for" if asked else "the profile's"
    available, why = imagenet_status(image_size)
    return ("imagenet" if available else "random"), why
