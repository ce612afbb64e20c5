"""Class sets and face preprocessing as data: folders, manifests, experiments, cards and the classifier take them
from one place, and a seven-class model runs end to end (trained, saved, predicted with, evaluated)."""
from __future__ import annotations

import csv
import dataclasses
import json

import cv2
import numpy as np
import pytest

from ferlib import cli
from ferlib.classes import CLASS_SETS, FER2013, PREPROCESSINGS, STUDY, ClassSet, class_set
from ferlib.data import preprocess
from ferlib.data.manifest import build_manifest, label_indices, usable
from ferlib.data.sources import detect_source, list_files
from ferlib.experiments import get_experiment
from ferlib.models import shipped
from tests.conftest import make_class_tree

FER_FOLDERS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def test_class_sets_map_folder_spellings_and_count_the_emotions_they_leave_out():
    assert STUDY.label_of("Suprise") == "Surprise" and FER2013.label_of("disgust") == "Disgust"
    assert STUDY.label_of("neutral") is None and STUDY.leaves_out("Neutral") and not FER2013.leaves_out("neutral")
    assert not STUDY.leaves_out("cats") and STUDY.label_of("cats") is None  # unknown: neither used nor left out
    assert class_set(list(FER2013.names)) is FER2013 and class_set("study-5") is STUDY
    assert class_set(["Happy", "Sad"]).name == "custom"  # a card's own classes
    with pytest.raises(KeyError, match="known: study-5, fer2013-7"):
        class_set("fer2013-8")
    with pytest.raises(ValueError, match="distinct known emotions"):
        ClassSet("x", ("Happy", "Bored"), "")
    assert set(CLASS_SETS) == {"study-5", "fer2013-7"}


def test_a_seven_class_source_uses_disgust_and_neutral_that_the_five_count_as_excluded(tmp_path):
    root = make_class_tree(tmp_path / "fer" / "train", {f: 2 for f in (*FER_FOLDERS, "cats")})
    for classes, used in ((STUDY, 10), (FER2013, 14)):
        listing = list_files(detect_source(tmp_path / "fer", "internal", classes=classes))
        assert (listing["status"] == "pending").sum() == used
        assert (listing["status"] == "excluded").sum() == 14 - used and (listing["status"] == "ignored").sum() == 2
    manifest = build_manifest(detect_source(tmp_path / "fer", "internal", classes=FER2013), tmp_path / "cache",
                              progress=False)
    labels = label_indices(usable(manifest), FER2013)
    assert sorted(set(labels.tolist())) == list(range(7)) and root.is_dir()
    with pytest.raises(ValueError, match="labels outside study-5"):
        label_indices(usable(manifest), STUDY)


def test_experiments_name_known_class_sets_and_preprocessings():
    c1 = get_experiment("C1", "smoke")
    assert c1.preprocessing == "equalize" and c1.classes == "study-5"
    assert get_experiment("V13", "smoke").preprocessing == "none"  # the study's own preprocessing
    assert dataclasses.replace(c1, classes="fer2013-7").settings()["classes"] == "fer2013-7"
    assert "classes" not in c1.settings()  # at its default: the run keys of older runs do not change
    for field, value in (("classes", "fer2013-6"), ("preprocessing", "clahe")):
        with pytest.raises(ValueError, match=f"{field} must be one of"):
            dataclasses.replace(c1, **{field: value})


def test_equalization_is_opencvs_on_the_luma_and_every_name_has_its_pixel_work():
    assert set(preprocess._FUNCTIONS) == set(PREPROCESSINGS)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 200, (3, 16, 16, 3), dtype=np.uint8)
    out = preprocess.preprocess_faces(rgb, "equalize")
    luma = cv2.cvtColor(rgb[0], cv2.COLOR_RGB2GRAY)
    assert out.shape == rgb.shape and (out[..., 0] == out[..., 2]).all()
    assert np.abs(out[0, ..., 0].astype(int) - cv2.equalizeHist(luma)).max() <= 1  # luma rounding
    assert preprocess.preprocess_faces(rgb, "none") is rgb
    with pytest.raises(KeyError, match="known: none, equalize"):
        preprocess.preprocess_faces(rgb, "clahe")
    with pytest.raises(ValueError, match="uint8"):
        preprocess.preprocess_faces(rgb.astype(np.float32), "equalize")


def test_a_face_and_a_copy_with_other_contrast_look_the_same_after_equalization():
    face = np.random.default_rng(1).integers(0, 128, (1, 48, 48), dtype=np.uint8)
    darker, brighter = np.repeat(face[..., None], 3, -1), np.repeat((face * 2)[..., None], 3, -1)
    same = [preprocess.preprocess_faces(x, "equalize") for x in (darker, brighter)]
    assert (same[0] == same[1]).all()  # equalization maps any strictly increasing change of grey levels alike
    assert preprocess.describe_pixels(np.concatenate(same)) == "histogram-equalized copy"
    assert preprocess.describe_pixels(darker) == "original pixels" and preprocess.equalized_share(darker) == 0


def test_a_card_names_its_preprocessing_and_an_older_one_gets_equalization():
    assert shipped.card_preprocessing({"preprocessing": {"name": "none"}}) == "none"
    legacy = {"preprocessing": "inside the model: raw 0-255 RGB in"}  # cards before preprocessing was named
    assert shipped.card_preprocessing(legacy) == "equalize" == shipped.card_preprocessing({})
    with pytest.raises(ValueError, match="unknown preprocessing 'clahe'"):
        shipped.card_preprocessing({"name": "m", "preprocessing": {"name": "clahe"}})


@pytest.fixture(scope="module")
def seven_class_c1(tmp_path_factory):
    """C1 at the smoke profile's size trained on a generated FER-2013 tree of all seven classes."""
    from ferlib.champion import run

    root = tmp_path_factory.mktemp("seven")
    for split, n in (("train", 12), ("test", 3)):
        make_class_tree(root / "fer" / split, {f: n for f in FER_FOLDERS}, start_seed=100 if split == "test" else 0)
    champ = run.champion_from_folders("smoke", root / "fer", root / "fer", output_dir=root / "out",
                                      classes="fer2013-7")
    return root, champ


def test_a_seven_class_c1_trains_scores_and_saves_its_classes_and_preprocessing(seven_class_c1):
    root, champ = seven_class_c1
    card = json.loads(shipped.card_path(champ.model_file).read_text())
    assert card["classes"] == list(FER2013.names) and card["class_set"] == "fer2013-7"
    assert card["preprocessing"]["name"] == "equalize" and card["data"]["n_train"] + card["data"]["n_val"] == 84
    assert champ.result["external"]["classes"] == list(FER2013.names) and champ.result["external"]["n"] == 21
    assert "-fer2013-7" in champ.result_file.parent.name  # its own results folder, apart from the five's


def test_predict_and_evaluate_answer_over_the_models_seven_classes(seven_class_c1, tmp_path, capsys):
    root, champ = seven_class_c1
    table = tmp_path / "faces.csv"
    assert cli.main(["predict", "--model", str(champ.model_file), "--no-detect", "--csv", str(table),
                     str(root / "fer" / "test" / "neutral")]) == 0
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 3 and [c for c in rows[0] if c in FER2013.names] == list(FER2013.names)
    assert abs(sum(float(rows[0][c]) for c in FER2013.names) - 1) < 1e-4
    out = tmp_path / "eval.json"
    assert cli.main(["evaluate", "--model", str(champ.model_file), "--data", str(root / "fer"), "--json", str(out),
                     "--cache", str(tmp_path / "cache")]) == 0
    result = json.loads(out.read_text())
    assert list(result["per_class"]) == list(FER2013.names) and result["n"] == 21 and not result["data"]["not_used"]
    assert result["model"]["preprocessing"] == "equalize" and "Disgust" in capsys.readouterr().out
