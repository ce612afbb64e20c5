"""Grad-CAM for both model kinds, the out-of-distribution report, and hard-example collection."""
from __future__ import annotations

import keras
import numpy as np
import pytest
from PIL import Image

from ferlib.data.sources import detect_source, list_files
from ferlib.models import gradcam, modelcard
from ferlib.models.builders import build_custom_cnn, build_transfer_model
from ferlib.photos.hard_examples import collect_hard_examples
from ferlib.photos.ood import SETTINGS, folder_predictions, ood_report, ood_table
from ferlib.photos.predict import EmotionClassifier
from ferlib.photos.synthetic_photos import render_photo


def test_gradcam_highlights_the_region_that_drives_the_class():
    model = keras.Sequential([
        keras.Input((16, 16, 3)),
        keras.layers.Conv2D(1, 1, activation="relu", kernel_initializer="ones", name="conv"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(5, activation="softmax", kernel_initializer=keras.initializers.Constant(
            np.array([[1.0, 0, 0, 0, 0]])), bias_initializer="zeros"),
    ])
    image = np.zeros((1, 16, 16, 3), np.float32)
    image[0, :6, :6] = 1.0  # only the top-left corner is lit
    heat, probs = gradcam.gradcam(model, image, class_index=0)
    assert gradcam.target_layer(model) == "conv" and heat.shape == (1, 16, 16)
    assert heat[0, :4, :4].mean() > 0.8 and heat[0, 10:, 10:].max() < 0.2
    assert np.allclose(probs, model.predict(image, verbose=0), atol=1e-6)


@pytest.mark.slow
def test_gradcam_on_a_saved_custom_cnn_and_a_transfer_model(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    path = modelcard.save_with_card(build_custom_cnn(32, seed=0), tmp_path / "cnn.keras", experiment={"key": "V1"},
                                    weights="none", data={}, metrics={}, provenance={})
    transfer = build_transfer_model("mobilenetv2", 32, "random")
    for model in (modelcard.load_with_card(path).model, transfer):
        heat, probs = gradcam.gradcam(model, images)
        assert heat.shape == (2, 32, 32) and heat.min() >= 0 and heat.max() <= 1 and heat.std() > 0.01
        assert np.allclose(probs, model.predict(images, verbose=0), atol=1e-5)
    # at 32 px the backbone's output is 1x1: the map is taken inside it, where it is at least 3 wide
    inner = gradcam.target_layer(transfer)
    assert inner.startswith("backbone/") and transfer.get_layer("backbone").get_layer(inner[9:]).output.shape[1] >= 3
    assert gradcam.target_layer(build_transfer_model("mobilenetv2", 96, "random")) == "backbone"  # 3x3 output
    with pytest.raises(ValueError, match="neither"):
        gradcam.target_layer(keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)]))


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A labelled folder of generated one-face photos, with a broken file and an excluded class."""
    root = tmp_path_factory.mktemp("labelled")
    rng = np.random.default_rng(11)
    for i in range(20):
        photo = render_photo(rng, 1, width=200, height=200, face_px=(120, 180))
        folder = root / {"Surprise": "surprise"}.get(photo.labels[0], photo.labels[0].lower())
        folder.mkdir(exist_ok=True)
        Image.fromarray(photo.rgb).save(folder / f"img_{i:02d}.png")
    (root / "happy" / "broken.jpg").parent.mkdir(exist_ok=True)
    (root / "happy" / "broken.jpg").write_bytes(b"not a jpeg")
    (root / "neutral").mkdir()
    Image.fromarray(photo.rgb).save(root / "neutral" / "n.png")
    return root


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "tiny.keras"
    path = modelcard.save_with_card(build_custom_cnn(32, seed=1), path, experiment={"key": "V1"}, weights="none",
                                    data={}, metrics={}, provenance={})
    modelcard.update_card(path, calibration={"temperature": 2.0, "abstain_below": 0.3})
    return path


def test_ood_report_compares_resize_crop_and_temperature(model_path, labelled):
    clf = EmotionClassifier.load(model_path)
    preds = folder_predictions(clf, labelled, progress=False)
    report = ood_report(clf, labelled, predictions=preds)
    assert list(report["settings"]) == list(SETTINGS)
    rows = report["settings"]
    assert all(r["n"] == 20 for r in rows.values())
    assert rows["face crop"]["accuracy"] == rows["face crop + temperature"]["accuracy"]  # temperature keeps ranking
    assert rows["face crop + temperature"]["mean_confidence"] < rows["face crop"]["mean_confidence"]
    assert report["detection"]["face_found"] >= 12  # most generated faces are found
    assert not np.allclose(preds.plain, preds.crop)
    statuses = {(r["status"], r["reason"]) for r in report["data"]["not_used"]}
    assert ("skipped", "not an image (format not recognised)") in statuses and any(s == "excluded" for s, _ in statuses)
    curve = report["abstention"]["curve"]
    assert curve[0]["coverage"] == 1.0 and all(a["coverage"] >= b["coverage"] for a, b in zip(curve, curve[1:]))
    table = ood_table(report)
    assert len(table) == 5 and table["n"].iloc[-1] == round(report["abstention"]["coverage"] * 20)


def test_hard_examples_land_in_the_human_face_emotions_layout(model_path, labelled, tmp_path):
    clf = EmotionClassifier.load(model_path, abstain_below=0.0)
    preds = folder_predictions(clf, labelled, progress=False)
    wrong = int((preds.probs("face crop + temperature", clf.temperature).argmax(axis=1) != preds.labels).sum())
    written = collect_hard_examples(clf, labelled, tmp_path / "hard", include=("misclassified",), predictions=preds)
    assert len(written) == wrong and set(written["reason"]) <= {"misclassified"}
    everything = collect_hard_examples(EmotionClassifier.load(model_path, abstain_below=1.01), labelled,
                                       tmp_path / "all", progress=False)
    assert len(everything) == 20  # every face abstains at a threshold above 1
    folders = sorted(p.name for p in (tmp_path / "all" / "Data").iterdir())
    assert folders == ["Angry", "Fear", "Happy", "Sad", "Suprise"]
    for row in everything.itertuples():
        img = Image.open(row.file)
        assert img.mode == "L" and f"/Data/{'Suprise' if row.label == 'Surprise' else row.label}/" in row.file
    listing = list_files(detect_source(tmp_path / "all", "internal"))
    assert (listing["status"] == "pending").sum() == 20 and set(listing["label"]) <= set(everything["label"])
    with pytest.raises(ValueError, match="unknown reason"):
        collect_hard_examples(clf, labelled, tmp_path / "x", include=("boring",), predictions=preds)
