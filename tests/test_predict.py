"""The prediction API and `python -m ferlib predict`: every kind of input, good and bad, gives a clear outcome."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ferlib import cli
from ferlib.data.decode import DecodeError, image_to_rgb
from ferlib.evaluation.calibration import apply_temperature
from ferlib.models import modelcard
from ferlib.models.builders import build_custom_cnn
from ferlib.photos.boxes import Box, match_boxes
from ferlib.photos.predict import EmotionClassifier, PhotoResult, expand_inputs
from ferlib.photos.synthetic_photos import render_photo
from tests.conftest import SHARED_DATA, write_png_claiming

CLASSES = ["Angry", "Fear", "Happy", "Sad", "Surprise"]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    return modelcard.save_with_card(build_custom_cnn(32, seed=0), path, experiment={"key": "V1"},
                                    weights="none (trained from scratch)", data={"source": "test"},
                                    metrics={"accuracy": 0.5}, provenance={"seed": 0})


@pytest.fixture(scope="module")
def clf(model_path):
    return EmotionClassifier.load(model_path)


@pytest.fixture(scope="module")
def photo():
    """A generated photo whose three faces the detector finds (see test_faces)."""
    return render_photo(np.random.default_rng(1), 3)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, photo):
    """One file per kind of input the issue lists."""
    d = tmp_path_factory.mktemp("inputs")
    img = Image.fromarray(photo.rgb)
    img.save(d / "faces.jpg", quality=92)
    Image.fromarray(render_photo(np.random.default_rng(5), 0).rgb).save(d / "no_face.jpg")
    img.resize((640 * 6, 480 * 6), Image.Resampling.BILINEAR).save(d / "huge.jpg", quality=85)
    write_png_claiming(d / "too_big.png", 14000, 12000)  # claims 168 MP: refused before decoding
    Image.fromarray(photo.rgb[:6, :6]).save(d / "tiny.png")
    img.convert("L").save(d / "gray.png")
    rgba = img.convert("RGBA")
    rgba.putalpha(230)
    rgba.save(d / "rgba.png")
    img.convert("CMYK").save(d / "cmyk.jpg", quality=92)
    (d / "notes.jpg").write_text("this is not an image")
    return d


def _check_record(face, size=None):
    assert face.label in CLASSES and face.label == face.scores[0][0]
    assert [c for c, _ in sorted(face.scores)] == sorted(CLASSES)
    values = [p for _, p in face.scores]
    assert values == sorted(values, reverse=True) and sum(values) == pytest.approx(1.0, abs=1e-5)
    assert face.confidence == values[0] and isinstance(face.abstained, bool)
    if size:
        x, y, w, h = face.box
        assert x >= 0 and y >= 0 and x + w <= size[0] and y + h <= size[1]


def test_one_record_per_face_for_path_pil_array_and_bytes(clf, photo, inputs):
    by_path = clf.predict(inputs / "faces.jpg")
    assert len(by_path) == 3
    for face in by_path:
        _check_record(face, (640, 480))
    by_array = clf.predict(photo.rgb)
    assert [f.box for f in by_array] == [f.box for f in clf.predict(Image.fromarray(photo.rgb))]
    assert len(clf.predict((inputs / "faces.jpg").read_bytes())) == 3
    gray_float = photo.rgb.mean(axis=2) / 255.0  # HxW floats in [0, 1]
    assert len(clf.predict(gray_float)) >= 2


def test_no_face_is_an_empty_result_not_an_error(clf, inputs):
    assert clf.predict(inputs / "no_face.jpg") == []
    result = clf.predict_file(inputs / "no_face.jpg")
    assert result.error is None and result.faces == [] and result.to_dict()["faces"] == []


def test_huge_photo_is_detected_on_a_copy_and_boxes_map_back(clf, photo, inputs):
    faces = clf.predict(inputs / "huge.jpg")
    assert len(faces) == 3
    for face, (x, _, w, _) in zip(faces, sorted(photo.boxes)):
        assert abs(face.box[0] - 6 * x) < 6 * 0.3 * w and abs(face.box[2] - 6 * w) < 6 * 0.4 * w
        _check_record(face, (3840, 2880))


def test_photo_over_the_pixel_limit_is_refused_with_its_reason(clf, inputs):
    result = clf.predict_file(inputs / "too_big.png")
    assert result.faces == [] and result.error.startswith("oversized image 14000x12000")


def test_tiny_photo_has_no_face_but_can_be_classified_whole(clf, inputs):
    assert clf.predict(inputs / "tiny.png") == []
    whole = clf.predict(inputs / "tiny.png", detect=False)
    assert len(whole) == 1 and whole[0].box == (0, 0, 6, 6) and not whole[0].detected
    _check_record(whole[0])


@pytest.mark.parametrize("name", ["gray.png", "rgba.png", "cmyk.jpg"])
def test_grayscale_rgba_and_cmyk_files_give_the_same_faces(clf, inputs, name):
    reference = clf.predict(inputs / "faces.jpg")
    faces = clf.predict(inputs / name)
    assert len(faces) == len(reference) == 3
    for a, b in zip(faces, reference):
        assert max(abs(u - v) for u, v in zip(a.box, b.box)) <= 0.15 * b.box[2]


def test_not_an_image_and_missing_file_become_error_entries(clf, inputs, tmp_path):
    bad = clf.predict_file(inputs / "notes.jpg")
    assert bad.error == "not an image (format not recognised)" and bad.faces == []
    missing = clf.predict_file(tmp_path / "missing.jpg")
    assert missing.error == "file not found"
    with pytest.raises(DecodeError, match="file not found"):
        clf.predict(tmp_path / "missing.jpg")


def test_bad_arrays_and_types_are_refused_clearly():
    with pytest.raises(DecodeError, match="shape"):
        image_to_rgb(np.zeros((4, 4, 2)))
    with pytest.raises(DecodeError, match="NaN"):
        image_to_rgb(np.full((4, 4), np.nan))
    with pytest.raises(TypeError, match="expected a path"):
        image_to_rgb(42)
    rgba = np.zeros((2, 2, 4), np.uint8)  # fully transparent: white, as decode composites
    assert (image_to_rgb(rgba) == 255).all()


def test_card_calibration_sets_temperature_and_abstention(model_path, photo, tmp_path):
    raw = EmotionClassifier.load(model_path)
    assert raw.temperature == 1.0 and raw.abstain_below == 0.0 and not raw.calibrated
    copy = tmp_path / "calibrated.keras"
    copy.write_bytes(model_path.read_bytes())
    modelcard.card_path(copy).write_text(modelcard.card_path(model_path).read_text())
    modelcard.update_card(copy, calibration={"temperature": 3.0, "abstain_below": 0.99})
    calibrated = EmotionClassifier.load(copy)
    assert calibrated.calibrated and calibrated.temperature == 3.0
    boxes = calibrated.find_faces(photo.rgb)
    inputs = calibrated.inputs(photo.rgb, boxes)
    expected = apply_temperature(raw.raw_probabilities(inputs), 3.0).max(axis=1)
    faces = calibrated.predict(photo.rgb)
    assert [f.confidence for f in faces] == pytest.approx(expected.tolist(), abs=1e-6)
    assert all(f.abstained for f in faces)  # nothing random is 99% sure after softening
    with pytest.raises(FileNotFoundError, match="model card not found"):
        modelcard.update_card(tmp_path / "nothing.keras", calibration={})


def test_folders_expand_to_their_visible_files(inputs, tmp_path):
    (inputs / ".hidden").write_text("x")
    files = expand_inputs([inputs, tmp_path / "missing.jpg"])
    assert [f.name for f in files[:-1]] == sorted(p.name for p in inputs.iterdir() if not p.name.startswith("."))
    assert files[-1].name == "missing.jpg"


def test_cli_json_lists_every_input_with_error_or_faces(model_path, inputs, tmp_path, capsys):
    missing = tmp_path / "missing.jpg"
    code = cli.main(["predict", "--model", str(model_path), str(inputs), str(missing), "--json",
                     "--annotate", str(tmp_path / "annotated")])
    assert code == 0
    entries = json.loads(capsys.readouterr().out)
    by_name = {e["path"].rsplit("/", 1)[-1]: e for e in entries}
    assert set(by_name) == {p.name for p in inputs.iterdir() if not p.name.startswith(".")} | {"missing.jpg"}
    assert by_name["missing.jpg"]["error"] == "file not found"
    assert by_name["notes.jpg"]["error"].startswith("not an image")
    assert by_name["too_big.png"]["error"].startswith("oversized image")
    assert by_name["no_face.jpg"] == {"path": str(inputs / "no_face.jpg"), "error": None, "faces": []}
    face = by_name["faces.jpg"]["faces"][0]
    assert set(face) == {"box", "label", "confidence", "scores", "abstained"} and len(face["box"]) == 4
    assert list(face["scores"])[0] == face["label"] and set(face["scores"]) == set(CLASSES)
    assert len(by_name["faces.jpg"]["faces"]) == 3
    written = sorted(p.name for p in (tmp_path / "annotated").iterdir())
    readable = [n for n, e in by_name.items() if e["error"] is None]
    assert written == sorted(n.rsplit(".", 1)[0] + ".annotated.jpg" for n in readable)
    drawn = np.asarray(Image.open(tmp_path / "annotated" / "faces.annotated.jpg").convert("RGB"))
    assert drawn.shape == (480, 640, 3) and not np.array_equal(drawn, np.asarray(Image.open(inputs / "faces.jpg")))


def test_cli_table_no_detect_and_exit_status(model_path, inputs, tmp_path, capsys):
    assert cli.main(["predict", "--model", str(model_path), str(inputs / "faces.jpg"), str(inputs / "no_face.jpg"),
                     str(inputs / "notes.jpg")]) == 0
    table = capsys.readouterr().out
    assert "no face found" in table and "error: not an image" in table and table.count("faces.jpg") == 3
    assert cli.main(["predict", "--model", str(model_path), str(inputs / "faces.jpg"), "--no-detect", "--json"]) == 0
    whole = json.loads(capsys.readouterr().out)[0]["faces"]
    assert len(whole) == 1 and whole[0]["box"] == [0, 0, 640, 480]
    # every input failed: exit status 1, still one entry per input
    assert cli.main(["predict", "--model", str(model_path), str(inputs / "notes.jpg"), str(tmp_path / "no.jpg"),
                     "--json"]) == 1
    assert [e["error"] is not None for e in json.loads(capsys.readouterr().out)] == [True, True]
    assert cli.main(["predict", "--model", str(tmp_path / "none.keras"), str(inputs / "faces.jpg")]) == 2
    assert "cannot load model" in capsys.readouterr().err


def test_a_folder_of_class_folders_is_walked_and_written_as_csv(model_path, inputs, tmp_path, capsys):
    labelled = tmp_path / "labelled"
    for folder, names in {"Happy": ["faces.jpg", "gray.png"], "Sad": ["no_face.jpg"], ".cache": ["faces.jpg"]}.items():
        (labelled / folder).mkdir(parents=True)
        for name in names:
            (labelled / folder / name).write_bytes((inputs / name).read_bytes())
    (labelled / "Empty").mkdir()
    (labelled / "Sad" / "labels.txt").write_text("not a photo")
    csv = tmp_path / "out" / "faces.csv"
    assert cli.main(["predict", "--model", str(model_path), str(labelled), "--csv", str(csv)]) == 0
    captured = capsys.readouterr()
    # the hidden folder is not walked; a file that is not an image by name is left out, and said so
    assert f"{labelled}: 3 image files: 2 in Happy/, 1 in Sad/; 1 other file left out (not images by name: " \
           "Sad/labels.txt)" in captured.err
    assert "Happy/faces.jpg" in captured.out and "Sad/no_face.jpg" in captured.out
    assert str(tmp_path) not in captured.out  # the table shows paths inside the folder, not the machine's
    rows = pd.read_csv(csv)
    assert list(rows.columns[:9]) == ["path", "face", "x", "y", "w", "h", "label", "confidence", "abstained"]
    assert set(CLASSES) <= set(rows.columns) and "error" in rows.columns
    faces = rows[rows["path"].str.endswith("Happy/faces.jpg")]
    assert len(faces) == 3 and faces["error"].isna().all()
    assert faces[list(CLASSES)].sum(axis=1).to_numpy() == pytest.approx(1.0, abs=1e-4)
    assert rows.loc[rows["path"].str.endswith("no_face.jpg"), "error"].tolist() == ["no face found"]
    # a folder with nothing in it: the reason, and exit status 1
    assert cli.main(["predict", "--model", str(model_path), str(labelled / "Empty")]) == 1
    err = capsys.readouterr().err
    assert "Empty: no image files (the folder is empty)" in err and "nothing to predict on" in err


@pytest.mark.realdata
def test_many_faces_on_a_real_group_photo(clf):
    path = SHARED_DATA / "photos" / "dlib_bald_guys.jpg"
    if not path.is_file():
        pytest.skip(f"shared photo not found: {path}")
    result = clf.predict_file(path)
    assert isinstance(result, PhotoResult) and result.error is None and len(result.faces) >= 20
    for face in result.faces:
        _check_record(face, result.size)


def test_predict_averages_the_test_time_views_the_card_asks_for(tmp_path):
    """A champion scored with flip (and crop) averaging predicts on photos with the same averaging, so a
    user's predictions are made the way the reported accuracy was measured."""
    from ferlib.evaluation.evaluate import predict_probs
    from ferlib.models.builders import build_fer_cnn

    model = build_fer_cnn(32, filters=(4, 8), seed=0, crop=28)
    path = modelcard.save_with_card(model, tmp_path / "c1.keras", experiment={"key": "C1", "tta_flip": True},
                                    weights="none (trained from scratch)", data={"source": "test"},
                                    metrics={"accuracy": 0.5}, provenance={"seed": 0})
    faces = np.random.default_rng(4).integers(0, 256, (3, 32, 32, 3)).astype(np.uint8)
    flip_only = EmotionClassifier.load(path)
    assert flip_only.tta == (True, 0)
    np.testing.assert_allclose(flip_only.raw_probabilities(faces), predict_probs(model, faces, tta_flip=True),
                               rtol=1e-5, atol=1e-6)
    modelcard.update_card(path, tta={"mode": "crops_flip_tta", "flip": True, "shift": 2})
    crops = EmotionClassifier.load(path)
    assert crops.tta == (True, 2)
    expected = predict_probs(model, faces, tta_flip=True, tta_shift=2)
    np.testing.assert_allclose(crops.raw_probabilities(faces), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(expected, predict_probs(model, faces))
    assert EmotionClassifier(model, {"classes": CLASSES, "input": {"size": 32}}).tta == (False, 0)


def test_faces_of_a_48_megapixel_photo_come_back_in_its_own_pixels(clf, photo, tmp_path):
    path = tmp_path / "phone.jpg"
    Image.fromarray(photo.rgb).resize((8000, 6000), Image.Resampling.BILINEAR).save(path, quality=85)
    result = clf.predict_file(path)
    assert result.error is None and result.size == (8000, 6000) and len(result.faces) == 3
    scale = 8000 / 640
    truth = [Box(*(round(v * scale) for v in b)) for b in photo.boxes]
    assert len(match_boxes(truth, [Box(*f.box) for f in result.faces], 0.5)) == 3


def test_fewer_test_time_views_can_be_asked_for(model_path, photo):
    card_views = EmotionClassifier.load(model_path)
    assert card_views.tta == (False, 0)  # this card names no averaging
    mirror = EmotionClassifier.load(model_path, views="flip")
    assert mirror.tta == (True, 0)
    faces = mirror.predict(photo.rgb)
    inputs = mirror.inputs(photo.rgb, mirror.find_faces(photo.rgb))
    both = (card_views.raw_probabilities(inputs) + card_views.raw_probabilities(inputs[:, :, ::-1])) / 2
    assert [f.confidence for f in faces] == pytest.approx(both.max(axis=1).tolist(), abs=1e-5)
    with pytest.raises(ValueError, match="card, flip, single"):
        EmotionClassifier.load(model_path, views="ten")


@pytest.mark.parametrize("label", ["Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"])
def test_every_label_of_the_seven_class_model_is_drawn_legibly(label):
    # white text on the class colour: Neutral and Disgust were drawn white on white (the label invisible)
    from types import SimpleNamespace

    from ferlib.viz.photo_figures import ABSTAIN_COLOR, CLASS_COLORS, draw_predictions

    face = SimpleNamespace(box=(40, 60, 80, 80), label=label, confidence=0.9, abstained=False)
    drawn = np.asarray(draw_predictions(np.full((200, 200, 3), 255, np.uint8), [face]))
    colour = np.array(CLASS_COLORS[label])
    ys, xs = np.nonzero((drawn[:60] == colour).all(axis=-1))  # the label's band above the box
    assert tuple(colour) != ABSTAIN_COLOR and len(ys) > 200
    assert (drawn[ys.min():ys.max() + 1, xs.min():xs.max() + 1].min(axis=-1) > 200).any()  # the white text on it
    assert colour @ [0.299, 0.587, 0.114] < 200  # dark enough for white text to read
    assert len(set(CLASS_COLORS.values())) == len(CLASS_COLORS)
