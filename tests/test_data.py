"""Manifest (with counted skips and caching), the 80/20 split, class weights and tf.data pipelines."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from ferlib.classes import STUDY
from ferlib.data import arrays, pipeline
from ferlib.data import manifest as manifests
from ferlib.data.sources import DataError, detect_source
from tests.conftest import make_class_tree, write_image, write_png_claiming
from tests.test_sources import pixels, write_fer_csv


@pytest.fixture
def messy_tree(tmp_path):
    """A Human Face Emotions folder with good images and one bad file of each kind."""
    root = make_class_tree(tmp_path / "hfe" / "Data", {"Angry": 3, "Fear": 3, "Happy": 4, "Sad": 3, "Suprise": 3})
    happy = root / "Happy"
    (happy / "empty.jpg").write_bytes(b"")
    (happy / "notes.jpg").write_text("not a picture")
    write_image(happy / "cmyk.jpg", seed=50, mode="CMYK", fmt="JPEG")
    big = write_image(happy / "trunc.jpg", seed=51, size=300, mode="RGB", fmt="JPEG")
    big.write_bytes(big.read_bytes()[:2000])
    side = int(manifests.read_image.__globals__["MAX_PIXELS"] ** 0.5) + 10
    write_png_claiming(root / "Sad" / "bomb.png", side, side)
    write_image(root / "Contempt" / "c.png", seed=60)
    return tmp_path / "hfe"


def test_manifest_lists_every_file_with_a_status_and_reason(messy_tree, tmp_path):
    manifest = manifests.build_manifest(detect_source(messy_tree, "internal"), tmp_path / "cache", progress=False)
    assert list(manifest.columns) == manifests.MANIFEST_COLUMNS
    by_status = manifest["status"].value_counts().to_dict()
    assert by_status == {"ok": 17, "skipped": 4, "excluded": 1}
    reasons = " | ".join(manifest.loc[manifest.status == "skipped", "reason"])
    for expected in ("empty file", "not an image", "truncated", "oversized"):
        assert expected in reasons
    summary = manifests.skip_summary(manifest)
    assert summary["files"].sum() == 5
    ok = manifest[manifest.status == "ok"]
    assert ok["width"].min() == 48 and (ok["mode"] == "CMYK").sum() == 1


def test_manifest_is_cached_and_invalidated_by_changes(messy_tree, tmp_path, monkeypatch):
    source = detect_source(messy_tree, "internal")
    first = manifests.build_manifest(source, tmp_path / "cache", progress=False)

    def fail(*_a, **_k):
        raise AssertionError("decoded again although the manifest was cached")

    monkeypatch.setattr(manifests, "read_image", fail)
    again = manifests.build_manifest(source, tmp_path / "cache", progress=False)
    pd.testing.assert_frame_equal(first, again)
    monkeypatch.undo()
    write_image(messy_tree / "Data" / "Angry" / "new.png", seed=99)
    changed = manifests.build_manifest(source, tmp_path / "cache", progress=False)
    assert len(changed) == len(first) + 1


def test_csv_rows_with_bad_pixels_are_skipped_with_reasons(tmp_path):
    csv = write_fer_csv(tmp_path / "fer.csv", [
        (0, pixels(0), "Training"), (3, pixels(1), "Training"), (4, "1 2 3", "Training"),
        (5, "a b c d", "Training"), (2, " ".join(["300"] * 2304), "Training"), (9, pixels(2), "Training"),
    ])
    manifest = manifests.build_manifest(detect_source(csv, "internal"), tmp_path / "cache", progress=False)
    assert manifest["status"].tolist() == ["ok", "ok", "skipped", "skipped", "skipped", "skipped"]
    assert "square" in manifest.loc[2, "reason"] and "non-numeric" in manifest.loc[3, "reason"]
    assert "0..255" in manifest.loc[4, "reason"] and "unknown emotion code" in manifest.loc[5, "reason"]
    images = arrays.load_images(manifests.usable(manifest), 96, tmp_path / "cache", progress=False)
    assert images.shape == (2, 96, 96, 3)


def balanced_manifest(n_per_class=40, duplicates=0):
    """A synthetic manifest with given pixel-identical duplicate groups (no files needed)."""
    rows = []
    for c in STUDY.names:
        for i in range(n_per_class):
            rows.append({"path": f"{c}/{i}.png", "label": c, "status": "ok", "pixel_hash": f"{c}-{i}"})
    frame = pd.DataFrame(rows)
    for d in range(duplicates):  # groups of three identical images in one class
        frame.loc[[3 * d + 1, 3 * d + 2], "pixel_hash"] = frame.loc[3 * d, "pixel_hash"]
    return frame


def test_split_is_stratified_seeded_and_keeps_duplicates_together():
    manifest = balanced_manifest(100, duplicates=20)
    train, val = manifests.split_train_val(manifest, 0.2, seed=7)
    assert len(train) + len(val) == len(manifest)
    assert set(train["pixel_hash"]).isdisjoint(val["pixel_hash"])
    shares = val["label"].value_counts() / len(val)
    assert np.allclose(shares.values, 0.2, atol=0.02)
    assert abs(len(val) / len(manifest) - 0.2) < 0.02
    again, _ = manifests.split_train_val(manifest, 0.2, seed=7)
    other, _ = manifests.split_train_val(manifest, 0.2, seed=8)
    assert train["path"].tolist() == again["path"].tolist()
    assert train["path"].tolist() != other["path"].tolist()


def test_split_refuses_too_little_data():
    with pytest.raises(DataError, match="too few images"):
        manifests.split_train_val(balanced_manifest(1), 0.2, seed=0)


def test_stratified_subset_keeps_proportions():
    manifest = balanced_manifest(100)
    manifest = manifest[~((manifest.label == "Happy") & (manifest.index % 2 == 0))]
    sub = manifests.stratified_subset(manifest, 90, seed=0)
    assert len(sub) == 90
    assert sub["label"].value_counts()["Happy"] == 10
    assert manifests.stratified_subset(manifest, None, 0) is manifest


def test_class_weights_are_balanced_and_keyed_by_index():
    labels = np.array([0] * 10 + [1] * 20 + [2] * 40 + [3] * 20 + [4] * 10)
    weights = manifests.class_weights(labels, STUDY)
    assert list(weights) == [0, 1, 2, 3, 4]
    assert weights[0] == pytest.approx(100 / (5 * 10)) and weights[2] == pytest.approx(100 / (5 * 40))
    with pytest.raises(DataError, match="no training images of Surprise"):
        manifests.class_weights(np.array([0, 1, 2, 3]), STUDY)


def test_datasets_keep_uint8_shuffle_training_only_and_align_labels():
    images = np.arange(20, dtype=np.uint8).reshape(20, 1, 1, 1) * np.ones((1, 4, 4, 3), dtype=np.uint8)
    labels = np.arange(20) % 5
    val = pipeline.make_dataset(images, labels, batch_size=8, training=False)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in val])
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x.dtype == np.uint8
    np.testing.assert_array_equal(x[:, 0, 0, 0], np.arange(20))  # order kept
    np.testing.assert_array_equal(y, labels)
    train = pipeline.make_dataset(images, labels, batch_size=20, training=True, seed=1)
    epoch1, epoch2 = [next(iter(train)) for _ in range(2)]
    order1 = epoch1[0].numpy()[:, 0, 0, 0]
    assert sorted(order1) == list(range(20)) and list(order1) != list(range(20))
    np.testing.assert_array_equal(epoch1[1].numpy(), order1 % 5)  # labels follow their images


def test_training_order_and_augmentation_are_a_function_of_seed_and_epoch():
    """Epoch e's order and augmented pixels are the same whether it is the first pass of a run (a resume at e)
    or follows passes 0 ... e-1; other epochs and seeds differ."""
    from ferlib.data.augment import build_augmentation

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 16, 16, 3)).astype(np.uint8)
    labels = np.arange(24) % 5

    def passes(start_epoch, n_passes, seed=3):
        aug = build_augmentation("fer", seed=seed)
        order = pipeline.EpochOrder(len(images), 8, seed, aug)
        order.start(start_epoch)
        ds = pipeline.make_dataset(images, labels, 8, training=True, augmentation=aug, deterministic=True,
                                   order=order)
        out = [np.concatenate([x.numpy() for x, _ in ds]) for _ in range(n_passes)]
        return out, order

    straight, order = passes(0, 3)
    assert order.epochs_started == [0, 1, 2]
    resumed, order = passes(2, 1)
    assert order.epochs_started == [2]
    np.testing.assert_array_equal(resumed[0], straight[2])
    assert not np.array_equal(straight[1], straight[2])
    assert not np.array_equal(passes(2, 1, seed=4)[0][0], straight[2])
    assert sorted(order.permutation(5)) == list(range(24)) and list(order.permutation(5)) != list(
        order.permutation(6))


def test_load_images_caches_per_size(messy_tree, tmp_path):
    manifest = manifests.build_manifest(detect_source(messy_tree, "internal"), tmp_path / "cache", progress=False)
    ok = manifests.usable(manifest)
    small = arrays.load_images(ok, 32, tmp_path / "cache", progress=False)
    assert small.shape == (17, 32, 32, 3) and small.dtype == np.uint8
    shutil.rmtree(messy_tree)  # the cached arrays no longer need the files
    np.testing.assert_array_equal(arrays.load_images(ok, 32, tmp_path / "cache", progress=False), small)


def test_fingerprint_depends_on_content_not_paths(tmp_path):
    a = make_class_tree(tmp_path / "a", {"Happy": 2, "Sad": 2})
    b = make_class_tree(tmp_path / "elsewhere" / "b", {"Happy": 2, "Sad": 2})
    fa = manifests.fingerprint(manifests.build_manifest(detect_source(a, "internal"), tmp_path / "c", progress=False))
    fb = manifests.fingerprint(manifests.build_manifest(detect_source(b, "internal"), tmp_path / "c", progress=False))
    assert fa == fb
    write_image(b / "Sad" / "extra.png", seed=77)
    fc = manifests.fingerprint(manifests.build_manifest(detect_source(b, "internal"), tmp_path / "c", progress=False))
    assert fc != fa


def test_subsets_read_one_cached_array_of_the_whole_source(messy_tree, tmp_path):
    manifest = manifests.build_manifest(detect_source(messy_tree, "internal"), tmp_path / "cache", progress=False)
    ok = manifests.usable(manifest)
    whole = arrays.load_images(ok, 24, tmp_path / "cache", progress=False)
    subset = ok.sample(6, random_state=0)
    picked = arrays.load_images(subset, 24, tmp_path / "cache", progress=False, source=ok)
    rows = [ok.index.get_loc(i) for i in subset.index]
    np.testing.assert_array_equal(picked, whole[rows])
    other = arrays.load_images(ok.iloc[:3], 24, tmp_path / "cache", progress=False, source=ok)  # another seed's subset
    np.testing.assert_array_equal(other, whole[:3])
    assert len(list((tmp_path / "cache" / "arrays").glob("all-*-24px.npy"))) == 1  # one file for every subset


def test_a_truncated_image_cache_is_decoded_again_with_a_warning(messy_tree, tmp_path):
    manifest = manifests.build_manifest(detect_source(messy_tree, "internal"), tmp_path / "cache", progress=False)
    ok = manifests.usable(manifest)
    first = arrays.load_images(ok.iloc[:4], 24, tmp_path / "cache", progress=False, source=ok)
    cached = next((tmp_path / "cache" / "arrays").glob("all-*-24px.npy"))
    cached.write_bytes(cached.read_bytes()[: cached.stat().st_size // 2])  # as a crash or a full disk leaves it
    with pytest.warns(UserWarning, match="unusable"):
        again = arrays.load_images(ok.iloc[:4], 24, tmp_path / "cache", progress=False, source=ok)
    np.testing.assert_array_equal(again, first)
    assert np.load(cached).shape == (len(ok), 24, 24, 3)  # rebuilt whole
