"""Saved models with cards, and `python -m ferlib evaluate` on any labelled folder."""
from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from ferlib import cli
from ferlib.models import modelcard
from ferlib.models.builders import build_custom_cnn
from tests.conftest import make_class_tree, write_image


@pytest.fixture
def saved_model(tmp_path):
    model = build_custom_cnn(32, seed=0)
    return modelcard.save_with_card(model, tmp_path / "models" / "tiny.keras", experiment={"key": "V1"},
                                    weights="none (trained from scratch)", data={"source": "test"},
                                    metrics={"accuracy": 0.5}, provenance={"seed": 0})


def test_card_round_trip(saved_model):
    loaded = modelcard.load_with_card(saved_model)
    assert loaded.image_size == 32 and loaded.classes == ["Angry", "Fear", "Happy", "Sad", "Surprise"]
    assert loaded.card["weights"] == "none (trained from scratch)" and loaded.card["input"]["value_range"] == [0, 255]
    images = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    assert loaded.model.predict(images, verbose=0).shape == (2, 5)


def test_model_without_card_gets_a_labelled_default(saved_model):
    modelcard.card_path(saved_model).unlink()
    loaded = modelcard.load_with_card(saved_model)
    assert loaded.card["card_version"] == 0 and "no model card" in loaded.card["note"]


def test_model_with_wrong_outputs_is_refused(saved_model, tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(7)])
    model.save(tmp_path / "seven.keras")
    with pytest.raises(ValueError, match="no model card and 7 outputs"):  # a card names seven classes
        modelcard.load_with_card(tmp_path / "seven.keras")
    card = json.loads(modelcard.card_path(saved_model).read_text())
    modelcard.card_path(tmp_path / "seven.keras").write_text(json.dumps(card))  # a card of five
    with pytest.raises(ValueError, match="outputs 7 scores but its card lists 5 classes"):
        modelcard.load_with_card(tmp_path / "seven.keras")


def test_evaluate_writes_the_documented_json(saved_model, tmp_path, capsys):
    data = make_class_tree(tmp_path / "faces" / "Data", {"Angry": 2, "Fear": 1, "Happy": 3, "Sad": 1, "Suprise": 2})
    (data / "Happy" / "broken.jpg").write_bytes(b"nope")
    write_image(data / "neutral" / "n.png")
    out = tmp_path / "eval.json"
    code = cli.main(["evaluate", "--model", str(saved_model), "--data", str(tmp_path / "faces"), "--json", str(out),
                     "--cache", str(tmp_path / "cache")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "accuracy:" in printed and "Surprise" in printed and "not an image" in printed
    result = json.loads(out.read_text())
    assert result["n"] == 9 and 0 <= result["accuracy"] <= 1
    assert set(result["per_class"]) == {"Angry", "Fear", "Happy", "Sad", "Surprise"}
    assert set(result["per_class"]["Fear"]) == {"precision", "recall", "f1", "f1_ci", "support"}
    low, high = result["accuracy_ci"]
    assert low <= result["accuracy"] <= high and "95%" in printed
    assert np.asarray(result["confusion"]).shape == (5, 5) and np.asarray(result["confusion"]).sum() == 9
    assert result["model"]["path"] == str(saved_model) and result["model"]["weights"]
    statuses = {row["status"] for row in result["data"]["not_used"]}
    assert statuses == {"skipped", "excluded"}
    assert result["model"]["test_time"] == {"flip": False, "shift": 0}  # its card asks for no averaging
    modelcard.update_card(saved_model, tta={"mode": "flip_tta", "flip": True, "shift": 0})
    assert cli.main(["evaluate", "--model", str(saved_model), "--data", str(tmp_path / "faces"), "--json", str(out),
                     "--cache", str(tmp_path / "cache")]) == 0
    assert json.loads(out.read_text())["model"]["test_time"] == {"flip": True, "shift": 0}


def test_evaluate_reports_bad_arguments_clearly(tmp_path, capsys):
    code = cli.main(["evaluate", "--model", str(tmp_path / "missing.keras"), "--data", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "neither a shipped model (fer2013-7, fer2013-5) nor a" in err
    assert cli.main(["predict", "--model", "fer2013-6", str(tmp_path)]) == 2
    assert "--model fer2013-6: neither a shipped model (fer2013-7, fer2013-5)" in capsys.readouterr().err


@pytest.mark.slow
def test_module_entry_point_runs(saved_model, tmp_path):
    make_class_tree(tmp_path / "test" / "happy", {"": 2})
    make_class_tree(tmp_path / "train" / "happy", {"": 1})
    proc = subprocess.run([sys.executable, "-m", "ferlib", "evaluate", "--model", str(saved_model), "--data",
                           str(tmp_path), "--cache", str(tmp_path / "cache")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "split 'test'" in proc.stdout and "on 2 images" in proc.stdout
