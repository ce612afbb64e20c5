"""Layouts (Human Face Emotions, FER-2013 folders, FER-2013 CSV) and where data comes from."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ferlib.data.sources import DataError, detect_source, list_files, resolve_source
from tests.conftest import make_class_tree, write_image

FIVE = {"Angry": 2, "Fear": 2, "Happy": 3, "Sad": 2, "Suprise": 2}


def test_hfe_layout_with_data_folder_and_misspelled_surprise(tmp_path):
    make_class_tree(tmp_path / "Data", FIVE)
    source = detect_source(tmp_path, "internal")
    assert source.layout == "hfe" and source.class_dir == tmp_path / "Data"
    listing = list_files(source)
    assert (listing["status"] == "pending").sum() == 11
    assert listing.loc[listing["folder"] == "Suprise", "label"].unique().tolist() == ["Surprise"]


def test_hfe_layout_without_data_folder_is_case_insensitive(tmp_path):
    make_class_tree(tmp_path, {"ANGRY": 1, "fear": 1, "HaPpY": 1, "sad": 1, "Surprise": 1})
    listing = list_files(detect_source(tmp_path, "internal"))
    assert sorted(listing["label"]) == ["Angry", "Fear", "Happy", "Sad", "Surprise"]


def test_fer_folder_uses_train_for_internal_and_test_for_external(tmp_path):
    make_class_tree(tmp_path / "train", {"angry": 3, "disgust": 2, "neutral": 1, "happy": 2})
    make_class_tree(tmp_path / "test", {"angry": 1, "happy": 1}, start_seed=100)
    internal = detect_source(tmp_path, "internal")
    external = detect_source(tmp_path, "external")
    assert (internal.layout, internal.split) == ("fer-folder", "train")
    assert (external.split, external.class_dir.name) == ("test", "test")
    listing = list_files(internal)
    counts = listing.groupby("status").size().to_dict()
    assert counts == {"pending": 5, "excluded": 3}
    assert set(listing.loc[listing.status == "excluded", "folder"]) == {"disgust", "neutral"}
    assert len(list_files(external)) == 2


def test_fer_folder_missing_split_is_a_clear_error(tmp_path):
    make_class_tree(tmp_path / "train", {"angry": 1})
    with pytest.raises(DataError, match="no 'test' split"):
        detect_source(tmp_path, "external")


def test_unknown_folders_and_stray_files_are_listed_not_dropped(tmp_path):
    make_class_tree(tmp_path, {"Happy": 2, "cats": 2})
    write_image(tmp_path / "stray.png")
    listing = list_files(detect_source(tmp_path, "internal"))
    ignored = listing[listing.status == "ignored"]
    assert len(ignored) == 3
    assert set(ignored["reason"]) == {"unknown class folder 'cats'", "file outside the class folders"}


def test_no_class_folders_is_a_clear_error(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(DataError, match="cannot find emotion class folders"):
        detect_source(tmp_path, "internal")
    with pytest.raises(DataError, match="does not exist"):
        detect_source(tmp_path / "missing", "internal")


def write_fer_csv(path, rows):
    pd.DataFrame(rows, columns=["emotion", "pixels", "Usage"]).to_csv(path, index=False)
    return path


def pixels(seed, side=48):
    return " ".join(map(str, np.random.default_rng(seed).integers(0, 256, side * side)))


def test_fer_csv_maps_codes_and_usage(tmp_path):
    csv = write_fer_csv(tmp_path / "fer2013.csv", [
        (0, pixels(0), "Training"), (1, pixels(1), "Training"), (3, pixels(2), "Training"),
        (5, pixels(3), "PublicTest"), (6, pixels(4), "PrivateTest"), (2, pixels(5), "PrivateTest"),
    ])
    internal = list_files(detect_source(csv, "internal"))
    assert internal["label"].tolist()[::2] == ["Angry", "Happy"]
    assert internal["status"].tolist() == ["pending", "excluded", "pending"]
    external = list_files(detect_source(tmp_path, "external"))  # a folder holding one CSV works too
    assert external["label"].dropna().tolist() == ["Surprise", "Fear"]
    assert (external["status"] == "excluded").sum() == 1


def test_fer_csv_without_pixels_column_is_a_clear_error(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="'emotion' and 'pixels'"):
        list_files(detect_source(csv, "internal"))


def test_resolution_order_parameter_env_kaggle_embedded(tmp_path):
    param = make_class_tree(tmp_path / "param", {"Happy": 1})
    env_dir = make_class_tree(tmp_path / "env", {"Happy": 1})
    kaggle = make_class_tree(tmp_path / "kaggle", {"Happy": 1})
    embedded = make_class_tree(tmp_path / "embedded", {"Happy": 1})
    calls = []

    def make_embedded():
        calls.append(1)
        return embedded

    kaggle_dirs = {"internal": kaggle, "external": tmp_path / "absent"}
    env = {"FERLIB_DATA_DIR": str(env_dir)}
    assert resolve_source("internal", param, make_embedded, env, kaggle_dirs).origin == "parameter"
    assert resolve_source("internal", None, make_embedded, env, kaggle_dirs).root == env_dir
    src = resolve_source("internal", None, make_embedded, {}, kaggle_dirs)
    assert (src.origin, src.root) == ("kaggle", kaggle)
    assert calls == []  # the embedded dataset is generated only when needed
    kaggle_dirs = {"internal": tmp_path / "absent", "external": tmp_path / "absent"}
    src = resolve_source("internal", None, make_embedded, {}, kaggle_dirs)
    assert src.embedded and calls == [1]
