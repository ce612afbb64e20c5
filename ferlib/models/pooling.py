"""Pooling two networks: over the classes both know, a model's own probabilities combined with a partner's as their
weighted geometric mean, the model's share of those classes kept (a five-class partner reorders a seven-class
model's Angry, Fear, Happy, Sad and Surprise, never its Disgust or Neutral); view by view. NumPy only, so that
predicting with LiteRT stays free of TensorFlow.

A partner may be a group of networks of the same classes (`NetworkGroup`): they answer as one, the normalized
geometric mean of their probabilities. A card's ``pooled_with`` entry names the partner (another shipped model, or
with ``file`` its own copy beside the model; the group's further members under ``also``), its weight and the
validation faces it was chosen on, faces that no network trained on (`ferlib.models.pool_choice.fit_pooling`,
``python -m ferlib pool``). `ferlib.models.inference.load_for_inference` pools a model whose card says so.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

POOL_WEIGHTS = tuple(i / 10 for i in range(11))  # the partner's weights tried: 0 (the model alone) to 1 (the partner)
FLOOR = 1e-7  # probabilities are floored here before their logarithm


Positions = tuple[np.ndarray, np.ndarray]  # the shared classes' columns in the model's outputs and the partner's


def class_positions(own: Sequence[str], partner: Sequence[str]) -> Positions:
    """Return the columns of the classes both know, in the model's outputs and in the partner's (in the model's
    order); ValueError when they share fewer than two."""
    shared = [name for name in own if name in partner]
    if len(shared) < 2:
        raise ValueError(f"a partner must know two or more of the model's classes ({', '.join(own)}); it knows "
                         f"{', '.join(partner)}")
    return np.array([list(own).index(n) for n in shared]), np.array([list(partner).index(n) for n in shared])


def pool(own: np.ndarray, partner: np.ndarray, positions: Positions, weight: float) -> np.ndarray:
    """Return the model's probabilities (n, own classes) with those of the shared classes replaced by their share
    times the normalized own^(1 - weight) * partner^weight, each network's taken over the shared classes."""
    if not 0 <= weight <= 1:
        raise ValueError(f"the partner's weight must be in [0, 1], got {weight}")
    mine, theirs = own[:, positions[0]], partner[:, positions[1]]
    share = mine.sum(axis=1, keepdims=True)
    log = ((1 - weight) * np.log(np.maximum(mine / np.maximum(share, FLOOR), FLOOR))
           + weight * np.log(np.maximum(theirs / np.maximum(theirs.sum(axis=1, keepdims=True), FLOOR), FLOOR)))
    pooled = np.exp(log - log.max(axis=1, keepdims=True))
    out = np.array(own, dtype=np.float64)
    out[:, positions[0]] = share * pooled / pooled.sum(axis=1, keepdims=True)
    return out


def pooled_over_views(own_views: np.ndarray, partner_views: np.ndarray, positions: Positions,
                      weight: float) -> np.ndarray:
    """Return the mean over views of the pooled probabilities, given the model's and its partner's (views, n,
    classes) outputs (`ferlib.evaluation.views.probabilities_per_view`): what a `PooledNetwork`
    gives averaged over those views."""
    return np.mean([pool(o, p, positions, weight) for o, p in zip(own_views, partner_views)], axis=0)


def geometric_mean(probs: Sequence[np.ndarray]) -> np.ndarray:
    """Return the normalized geometric mean, with equal weights, of several networks' probabilities over the same
    classes (arrays of one shape, classes last)."""
    log = np.mean([np.log(np.maximum(np.asarray(p, dtype=np.float64), FLOOR)) for p in probs], axis=0)
    out = np.exp(log - log.max(axis=-1, keepdims=True))
    return out / out.sum(axis=-1, keepdims=True)


@dataclass
class NetworkGroup:
    """Networks of the same classes answering as one (`geometric_mean`): a pooled model's partners. Called like the
    networks of `ferlib.models.inference`."""

    members: Sequence[Callable[[np.ndarray], np.ndarray]]

    @property
    def name(self) -> str:
        return getattr(self.members[0], "name", type(self.members[0]).__name__)

    def warm_up(self, image_size: int) -> None:
        """Warm every member up (`PooledNetwork.warm_up`)."""
        for member in self.members:
            _warm_up(member, image_size)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return geometric_mean([member(images) for member in self.members])


def _warm_up(network: Callable[[np.ndarray], np.ndarray], image_size: int) -> None:
    if hasattr(network, "warm_up"):
        network.warm_up(image_size)
    else:
        network(np.zeros((1, image_size, image_size, 3), np.uint8))


@dataclass
class PooledNetwork:
    """A network pooled with a partner: images (n, size, size, 3) in, the pooled probabilities of the model's
    classes out. Called like the networks of `ferlib.models.inference`; `name` is the backend's."""

    own: Callable[[np.ndarray], np.ndarray]
    partner: Callable[[np.ndarray], np.ndarray]
    positions: Positions
    weight: float

    @property
    def name(self) -> str:
        return getattr(self.own, "name", type(self.own).__name__)

    def warm_up(self, image_size: int) -> None:
        """Warm the model's network and its partner (every network of a group) up: a Keras one traces its batch
        sizes (`ferlib.models.inference.KerasNetwork`), a LiteRT one runs once."""
        for network in (self.own, self.partner):
            _warm_up(network, image_size)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return pool(self.own(images), self.partner(images), self.positions, self.weight)
