"""Transfer models: weights handling, preprocessing inside the model, freezing, feature caching, augmentation."""
from __future__ import annotations

import dataclasses
import time

import keras
import numpy as np
import pytest

from ferlib.data.augment import build_augmentation
from ferlib.data.pipeline import make_dataset
from ferlib.experiments import Phase, get_experiment
from ferlib.models import builders
from ferlib.training import train
from tests.test_train import tiny_data

pytestmark = pytest.mark.slow  # every test builds or trains a transfer backbone


def test_imagenet_weights_fail_fast_offline_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(builders, "online", lambda timeout=3.0: False)
    start = time.perf_counter()
    with pytest.raises(builders.WeightsUnavailable) as err:
        builders.build_transfer_model("resnet50v2", 64, "imagenet")
    assert time.perf_counter() - start < 10
    assert "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5" in str(err.value)
    assert str(tmp_path / "models") in str(err.value)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "efficientnetb0_notop.h5").write_bytes(b"")
    assert builders.resolve_weights("efficientnetb0", 96, "imagenet") == "imagenet"  # cached: Keras loads it
    assert builders.resolve_weights("mobilenetv2", 96, "random") is None
    with pytest.raises(builders.WeightsUnavailable, match="not found"):
        builders.resolve_weights("mobilenetv2", 96, str(tmp_path / "missing.h5"))


@pytest.mark.parametrize("backbone", ["mobilenetv2", "efficientnetb0", "resnet50v2"])
def test_transfer_model_takes_raw_pixels_and_has_the_study_head(backbone):
    model = builders.build_transfer_model(backbone, 32, None, seed=0)
    head = builders.head_of(model)
    assert [type(layer).__name__ for layer in head.layers] == ["InputLayer", "Dense", "Dropout", "Dense"]
    assert head.layers[1].units == 128 and head.layers[2].rate == 0.5 and head.output_shape == (None, 5)
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    probs = model.predict(images, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    pooled = builders.feature_extractor(model).predict(images, verbose=0)
    np.testing.assert_allclose(head.predict(pooled, verbose=0), probs, rtol=1e-4, atol=1e-6)


def test_set_trainable_from_unfreezes_the_top_layers_only():
    model = builders.build_transfer_model("resnet50v2", 32, None)
    base = builders.backbone_of(model)
    assert len(base.layers) == 190 and not base.trainable
    builders.set_trainable_from(model, 140)
    assert [layer.trainable for layer in base.layers] == [i >= 140 for i in range(190)]
    assert all(layer.trainable for layer in builders.head_of(model).layers)
    builders.set_trainable_from(model, None)
    assert not model.get_layer("backbone").trainable


def head_experiment(backbone="mobilenetv2", epochs=2, **changes):
    base = get_experiment("V4", "smoke")
    return dataclasses.replace(base, backbone=backbone, image_size=32,
                               phases=(Phase(epochs=epochs, learning_rate=1e-3),), **changes)


def test_feature_cached_head_training_matches_training_through_the_frozen_backbone(tmp_path):
    x, y = tiny_data(n=48, size=32)
    exp = head_experiment(epochs=3)
    kwargs = dict(seed=5, batch_size=16, verbose=0)
    cached = train.train_experiment(exp, x, y, x, y, tmp_path / "cached", "fp", cache_features=True, **kwargs)
    direct = train.train_experiment(exp, x, y, x, y, tmp_path / "direct", "fp", cache_features=False, **kwargs)
    assert "feature_extraction_s" in cached.timings["phase1"] and "feature_extraction_s" not in direct.timings["phase1"]
    np.testing.assert_allclose(cached.history["loss"], direct.history["loss"], rtol=2e-4)
    np.testing.assert_allclose(cached.history["val_accuracy"], direct.history["val_accuracy"])
    for a, b in zip(builders.head_of(cached.model).get_weights(), builders.head_of(direct.model).get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(cached.model.predict(x, verbose=0), direct.model.predict(x, verbose=0),
                               rtol=1e-3, atol=1e-5)


def test_two_phase_training_joins_histories_and_marks_fine_tuning(tmp_path):
    x, y = tiny_data(n=40, size=32)
    exp = dataclasses.replace(head_experiment(epochs=2),
                              phases=(Phase(epochs=2, learning_rate=1e-3), Phase(epochs=1, learning_rate=1e-5,
                                                                                 trainable_from=145)))
    run = train.train_experiment(exp, x, y, x, y, tmp_path, "fp", seed=0, batch_size=20, verbose=0)
    assert run.history["phase"].tolist() == [1, 1, 2] and run.history["epoch"].tolist() == [1, 2, 3]
    assert run.phase_starts == [3]
    h = run.history  # each phase's best by val_loss; the phase whose best has the higher val_accuracy is kept
    best_of = {p: h.loc[h[h["phase"] == p]["val_loss"].idxmin()] for p in (1, 2)}
    expected = max((1, 2), key=lambda p: (best_of[p]["val_accuracy"], -p))
    assert run.kept_phase == expected and run.best_epoch == int(best_of[expected]["epoch"])
    other = 3 - run.kept_phase  # the other phase's checkpoint is cleaned up once the run is done
    assert not (run.run_dir / f"phase{other}" / "best.keras").exists()
    reloaded = keras.models.load_model(run.run_dir / f"phase{run.kept_phase}" / "best.keras")
    np.testing.assert_allclose(reloaded.predict(x[:4], verbose=0), run.model.predict(x[:4], verbose=0), rtol=1e-4)


@pytest.mark.parametrize("kind", ["geometric", "photometric"])
def test_augmentation_changes_training_batches_only_and_stays_in_range(kind):
    x, y = tiny_data(n=16, size=32)
    x[:] = x[0]  # sixteen copies of one image: the shuffle cannot hide a change
    aug = build_augmentation(kind, seed=0)
    batch, _ = next(iter(make_dataset(x, y, 16, training=True, seed=0, augmentation=aug)))
    batch = batch.numpy()
    assert batch.min() >= 0 and batch.max() <= 255
    changed = [not np.allclose(b, x[0]) for b in batch]
    assert sum(changed) >= 12
    val_batch, _ = next(iter(make_dataset(x, y, 16, training=False, augmentation=aug)))
    np.testing.assert_array_equal(val_batch.numpy(), x)  # evaluation data is never augmented
    assert build_augmentation("none") is None
    with pytest.raises(KeyError):
        build_augmentation("sepia")


def write_imagenet_files(folder, size: int = 48) -> dict[str, np.ndarray]:
    """Write ImageNet-shaped weight files (random values, Keras' legacy .h5 layout) under the names Keras caches
    them by, into `folder`/models; return each backbone's first kernel as written."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    from ferlib import weights

    (folder / "models").mkdir(parents=True, exist_ok=True)
    first = {}
    for name, spec in builders.BACKBONES.items():
        base = spec.constructor(include_top=False, weights=None, input_shape=(size, size, 3))
        with h5py.File(folder / "models" / weights.imagenet_file(name, size).name, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, base)
        first[name] = base.get_weights()[0]
    return first


def test_the_cpu_profile_uses_imagenet_weights_where_keras_can_load_them_and_trains_from_scratch_otherwise(
        tmp_path, monkeypatch):
    from ferlib import weights
    from ferlib.evaluation.study_settings import settings_vs_study
    from ferlib.experiments import weights_in_use

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(weights, "online", lambda timeout=3.0: False)  # offline: only the cache counts
    weights.imagenet_status.cache_clear()
    offline = get_experiment("V13", "cpu")
    assert offline.from_scratch and offline.phases[0].trainable_from == 0 and offline.phases[1].trainable_from == 140
    assert "from scratch, not the study's ImageNet setting" in weights_in_use(None, get_profile("cpu"))
    assert not get_experiment("V13", "demo").from_scratch  # demo keeps its frozen random backbones (seconds)
    backbone = ("V13", "backbone"), "this run (cpu)"
    assert settings_vs_study(["V13"], "cpu").loc[backbone] == "resnet50v2, random weights, trained from scratch"
    first = write_imagenet_files(tmp_path)
    weights.imagenet_status.cache_clear()
    assert settings_vs_study(["V13"], "cpu").loc[backbone] == "resnet50v2, imagenet weights"  # as the run resolves
    assert settings_vs_study(["V13"], "cpu", "random").loc[backbone].endswith("trained from scratch")
    assert weights.choose_weights(None, "auto") == ("imagenet", f"ImageNet weights are in the Keras cache "
                                                               f"({tmp_path / 'models'})")
    pretrained = get_experiment("V13", "cpu")
    assert not pretrained.from_scratch and pretrained.phases[0].trainable_from is None
    assert get_experiment("V13", "cpu", "random").from_scratch  # --weights random asks for the other path
    for name, kernel in first.items():  # read from the cache as Keras reads it, never downloaded
        model = builders.build_transfer_model(name, 48, "imagenet")
        np.testing.assert_array_equal(builders.backbone_of(model).get_weights()[0], kernel)
    weights.imagenet_status.cache_clear()


def test_each_comparison_the_study_makes_is_made_at_one_input_size_in_every_profile():
    from ferlib.config import PROFILES
    from ferlib.evaluation.compare import STUDY_PAIRS

    sizes = set()
    for profile in PROFILES:
        for weights in ("random", "imagenet"):
            for a, b, what in STUDY_PAIRS:
                size_a, size_b = (get_experiment(k, profile, weights).image_size for k in (a, b))
                assert size_a == size_b, f"{profile}, {weights} weights: {what} compares {size_a} px with {size_b} px"
                sizes |= {(profile, weights, a, size_a), (profile, weights, b, size_b)}
    assert ("cpu", "random", "V4", 32) in sizes and ("cpu", "imagenet", "V4", 48) in sizes  # 03 from scratch: 32 px


def get_profile(name):
    from ferlib.config import PROFILES

    return PROFILES[name]


def test_a_transfer_model_from_scratch_trains_every_layer_and_its_batchnorm(tmp_path):
    x, y = tiny_data(n=32, size=32)
    exp = dataclasses.replace(head_experiment(epochs=1), from_scratch=True,
                              phases=(Phase(epochs=1, learning_rate=1e-3, trainable_from=0),))
    model = builders.build_model(exp, "imagenet")  # from scratch: never loads weights, whatever was asked
    bn = next(layer for layer in builders.backbone_of(model).layers if "BatchNormalization" in type(layer).__name__)
    before = np.array(bn.moving_mean)
    run = train.train_experiment(exp, x, y, x, y, tmp_path, "fp", seed=0, batch_size=16, verbose=0)
    after = next(layer for layer in builders.backbone_of(run.model).layers if layer.name == bn.name)
    assert not np.allclose(np.array(after.moving_mean), before)  # BatchNorm learned its statistics
    assert run.weights == "none (from scratch, not the study's ImageNet setting)"


@pytest.mark.parametrize("kernel, strides, padding, size", [
    (3, 1, "same", 2), (3, 1, "valid", 4), (3, 2, "valid", 5), (3, 2, "same", 4), (1, 2, "same", 3), (1, 1, "same", 9),
    (7, 2, "valid", 38),  # a large map: Conv2D's own path
])
def test_a_matmul_convolution_gives_conv2d_numbers_and_gradients(kernel, strides, padding, size):
    import tensorflow as tf

    from ferlib.models.matmul_conv import MatmulConv2D

    x = tf.constant(np.random.default_rng(size).normal(size=(3, size, size, 8)).astype("float32"))
    settings = dict(filters=6, kernel_size=kernel, strides=strides, padding=padding)
    plain, matmul = keras.layers.Conv2D(**settings), MatmulConv2D(**settings)
    plain.build(x.shape), matmul.build(x.shape)
    matmul.set_weights([w + 0.1 for w in plain.get_weights()])  # a bias that is not zero
    plain.set_weights(matmul.get_weights())
    outputs, gradients = [], []
    for layer in (plain, matmul):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * tf.sin(y))
        outputs.append(y.numpy())
        gradients.append([g.numpy() for g in tape.gradient(loss, [x, *layer.trainable_weights])])
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-4, atol=1e-5)
    for mine, theirs in zip(gradients[1], gradients[0]):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-4)


def test_a_backbone_from_scratch_computes_its_convolutions_as_matrix_products():
    from ferlib.models.matmul_conv import MatmulConv2D

    scratch = builders.build_transfer_model("resnet50v2", 32, None, from_scratch=True)
    pretrained_shape = builders.build_transfer_model("resnet50v2", 32, None)
    kinds = [type(layer) for layer in builders.backbone_of(scratch).layers]
    plain = [type(layer) for layer in builders.backbone_of(pretrained_shape).layers]
    assert kinds.count(MatmulConv2D) == plain.count(keras.layers.Conv2D) > 50 and keras.layers.Conv2D not in kinds
    assert MatmulConv2D not in plain  # ImageNet's path keeps Keras' own layers


def test_mobilenetv2_from_scratch_feeds_its_head_scaled_features_that_a_saved_card_rebuilds():
    # without ImageNet weights, Adam's first steps on 1,280 all-positive pooled features kill every unit of the
    # study's ReLU head; a constant scale before the head (no weights) keeps them alive
    from ferlib.evaluation.study_settings import describe

    v4, v12 = get_experiment("V4", "cpu", "random"), get_experiment("V12", "cpu", "random")
    assert v4.head_scale == 0.1 and v12.head_scale == 1.0 and get_experiment("V4", "cpu", "imagenet").head_scale == 1
    assert "head_scale" in v4.settings() and "head_scale" not in v12.settings()  # its own run key; V12's unchanged
    assert "times 0.1 before the head" in describe(v4, get_profile("cpu"))["phase 1 (head)"]
    exp = dataclasses.replace(v4, image_size=32)
    model = builders.build_model(exp, seed=0)
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("float32")
    pooled = keras.Model(model.inputs, model.get_layer("pool").output).predict(x, verbose=0)
    np.testing.assert_allclose(builders.feature_extractor(model).predict(x, verbose=0), 0.1 * pooled, rtol=1e-5)
    rebuilt = builders.build_described(exp.settings(), num_classes=5)  # how a saved model's card loads it
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_allclose(rebuilt.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match="head_scale"):
        dataclasses.replace(v4, head_scale=0.0)
