"""Pooling two networks (`ferlib.models.pooling`): the arithmetic, and that a pooled network averaged over the
test-time views gives what the weight was chosen with."""
from __future__ import annotations

import numpy as np
import pytest

from ferlib.classes import FER2013, STUDY
from ferlib.evaluation.views import average_over_views, probabilities_per_view
from ferlib.models.pooling import PooledNetwork, class_positions, pool, pooled_over_views


def random_probs(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.dirichlet(np.ones(k), size=n)


def test_weights_zero_and_one_give_each_network_alone_over_the_classes_both_know():
    rng = np.random.default_rng(0)
    five, seven = random_probs(rng, 50, 5), random_probs(rng, 50, 7)
    positions = class_positions(STUDY.names, FER2013.names)  # a five-class model, a seven-class partner
    assert list(positions[1]) == [FER2013.names.index(c) for c in STUDY.names]
    np.testing.assert_allclose(pool(five, seven, positions, 0.0), five, atol=1e-9)
    restricted = seven[:, positions[1]] / seven[:, positions[1]].sum(axis=1, keepdims=True)
    np.testing.assert_allclose(pool(five, seven, positions, 1.0), restricted, atol=1e-9)
    half = pool(five, seven, positions, 0.5)
    expected = np.sqrt(five * restricted)
    np.testing.assert_allclose(half, expected / expected.sum(axis=1, keepdims=True), atol=1e-9)


def test_a_five_class_partner_reorders_the_seven_classes_it_knows_and_never_touches_disgust_or_neutral():
    rng = np.random.default_rng(1)
    seven, five = random_probs(rng, 40, 7), random_probs(rng, 40, 5)
    positions = class_positions(FER2013.names, STUDY.names)
    pooled = pool(seven, five, positions, 0.7)
    np.testing.assert_allclose(pooled.sum(axis=1), 1, atol=1e-9)
    calm = [FER2013.names.index(c) for c in ("Disgust", "Neutral")]
    np.testing.assert_allclose(pooled[:, calm], seven[:, calm], atol=1e-12)
    assert not np.allclose(pooled, seven)  # the five it knows did move
    # a partner sure of Sad moves the seven-class answer towards Sad, never towards Neutral
    sure = np.tile(np.eye(5)[STUDY.names.index("Sad")] * 0.96 + 0.01, (40, 1))
    moved = pool(seven, sure, positions, 0.5)
    sad = FER2013.names.index("Sad")
    assert (moved[:, sad] >= seven[:, sad] - 1e-12).all()


def test_a_partner_must_share_two_classes_and_a_weight_lies_in_zero_one():
    with pytest.raises(ValueError, match="two or more"):
        class_positions(("Happy", "Sad"), ("Happy", "Angry"))
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        pool(random_probs(rng, 3, 5), random_probs(rng, 3, 7), class_positions(STUDY.names, FER2013.names), 1.5)


def test_a_pooled_network_over_the_views_gives_what_its_weight_was_chosen_with():
    rng = np.random.default_rng(3)
    w5, w7 = rng.normal(size=(48 * 48 * 3, 5)), rng.normal(size=(48 * 48 * 3, 7))

    def network(weights):
        def predict(images):
            logits = images.reshape(len(images), -1).astype(np.float64) @ weights / 2000
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        return predict

    images = rng.integers(0, 256, size=(6, 48, 48, 3), dtype=np.uint8)
    positions = class_positions(STUDY.names, FER2013.names)
    pooled = PooledNetwork(network(w5), network(w7), positions, 0.4)
    as_predicted = average_over_views(pooled, images, flip=True, shift=2)  # what predict computes
    as_chosen = pooled_over_views(probabilities_per_view(network(w5), images, True, 2),
                                  probabilities_per_view(network(w7), images, True, 2), positions, 0.4)
    np.testing.assert_allclose(as_predicted, as_chosen, atol=1e-12)
    assert as_predicted.shape == (6, 5) and not np.allclose(as_predicted, average_over_views(network(w5), images,
                                                                                             True, 2))
