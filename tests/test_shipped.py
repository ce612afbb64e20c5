"""The shipped model: `predict` and `evaluate` work without --model, with the card's views and calibration."""
from __future__ import annotations

import hashlib
import json

import keras
import numpy as np
import pytest
from PIL import Image

from ferlib import EmotionClassifier, cli
from ferlib.champion.recipe import is_budget_key
from ferlib.champion.tables import card_test_scores
from ferlib.classes import FER2013
from ferlib.data.embedded import write_embedded_dataset
from ferlib.models import modelcard, shipped, shipping
from ferlib.models.builders import build_custom_cnn
from ferlib.photos.synthetic_photos import render_photo
from tests.conftest import SHARED_DATA, evaluation_json, experiment_json

CARD = shipped.ASSETS / "fer2013-7.json"  # the default model's card


@pytest.fixture(scope="module")
def clf():
    return EmotionClassifier.load()  # no path: the default shipped model


@pytest.mark.parametrize("name", list(shipped.SHIPPED_MODELS))
def test_each_shipped_card_says_what_the_model_is_and_matches_its_file(name):
    model_file = shipped.ASSETS / shipped.SHIPPED_MODELS[name]
    card = json.loads(model_file.with_suffix(".json").read_text())
    assert card["name"] == name and len(card["classes"]) == int(name.split("-")[1])  # fer2013-7: seven classes
    preprocessing = card["preprocessing"]  # both learned FER-2013's equalized copy; the inference one: on validation
    assert preprocessing["learned_with"] == "equalize"
    chosen = preprocessing["chosen_on"]["accuracy"]
    assert preprocessing["name"] == max(chosen, key=chosen.get)
    data = model_file.read_bytes()
    assert card["shipped"]["sha256"] == hashlib.sha256(data).hexdigest() and card["shipped"]["size_bytes"] == len(data)
    assert len(data) < 10_000_000  # weights only: a few MB
    assert card["data"]["layout"] == "fer-folder" and card["data"]["n_train"] > 15_000  # FER-2013 train split
    # what reports say it was trained on: the sizes, never the folder it was read from on the developers' machine
    described = shipped.training_data_text(card)
    assert f"{card['data']['n_train']:,} training" in described and card["data"]["root"] not in described
    key = card["experiment"]["key"]  # C1's recipe, at the profile's budget or another (`champion --epochs`)
    assert card["weights"] == "none (trained from scratch)" and (key == "C1" or is_budget_key(key))
    test = card["test"]
    lo, hi = test["accuracy_ci"]
    assert "split 'test'" in test["data"] and test["n"] > 2000 and lo < test["accuracy"] < hi
    assert card["calibration"]["fitted_on"] == "validation split" and 0 < card["calibration"]["abstain_below"] < 1
    assert card["tta"]["mode"] == test["test_time_mode"]
    trained = card["provenance"]["trained"]
    assert len(trained["git_commit"].split("+")[0]) == 40 and trained["machine"]
    import zipfile

    with zipfile.ZipFile(model_file) as archive:  # a .keras file: config, metadata and the weights only
        weights = archive.read("model.weights.h5")
    assert len(weights) < len(data) + 1000 and b"optimizer" not in weights


def test_predict_without_a_model_uses_the_shipped_one_with_its_calibration(clf, tmp_path, capsys):
    card = json.loads(CARD.read_text())
    assert shipped.DEFAULT_MODEL == "fer2013-7" and clf.classes == list(FER2013.names)
    assert clf.calibrated and clf.temperature == card["calibration"]["temperature"]
    assert clf.abstain_below == card["calibration"]["abstain_below"] and clf.tta == (True, card["tta"]["shift"])
    photo = tmp_path / "three_faces.jpg"
    Image.fromarray(render_photo(np.random.default_rng(1), 3).rgb).save(photo, quality=92)
    assert cli.main(["predict", str(photo), "--json"]) == 0
    faces = json.loads(capsys.readouterr().out)[0]["faces"]
    assert len(faces) == 3
    for face in faces:
        assert face["label"] in card["classes"] and sum(face["scores"].values()) == pytest.approx(1, abs=1e-4)
        assert face["abstained"] == (face["confidence"] < card["calibration"]["abstain_below"])


def test_evaluate_without_a_model_scores_a_labelled_folder(tmp_path, capsys):
    data = write_embedded_dataset(tmp_path / "data", 20, 40, seed=1)
    out = tmp_path / "eval.json"
    assert cli.main(["evaluate", "--data", str(data.external_dir), "--json", str(out),
                     "--cache", str(tmp_path / "cache")]) == 0
    result = json.loads(out.read_text())
    calm = data.n_external_neutral  # the seven-class model scores the Neutral faces too
    assert result["n"] == 40 + calm and calm > 0 and not result["data"]["not_used"]
    assert result["model"]["experiment"] == json.loads(CARD.read_text())["experiment"]["key"]
    assert result["model"]["test_time"] == {"flip": True, "shift": json.loads(CARD.read_text())["tta"]["shift"]}


def test_ship_copies_weights_only_with_the_card_and_refuses_an_unscored_model(tmp_path):
    model = build_custom_cnn(32, seed=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(np.zeros((4, 32, 32, 3), np.float32), np.eye(5)[[0, 1, 2, 3]], epochs=1, verbose=0)  # Adam slots
    source = modelcard.save_with_card(model, tmp_path / "champ.keras", experiment={"key": "C1", "title": "t"},
                                      weights="none (trained from scratch)", data={"source": "test"},
                                      metrics={"accuracy": 0.5}, provenance={"seed": 0})
    with pytest.raises(ValueError, match="tta, calibration, test"):
        shipping.ship_model(source, tmp_path / "assets")
    score = {"accuracy": 0.6, "n": 10, "correct": 6, "ci95": [0.3, 0.85], "macro_f1": 0.5, "macro_f1_ci95": [0, 1]}
    result = experiment_json(
        "C1", provenance={"data": {"external": {"source": "external data: test"}}},
        validation_scores={"plain": score}, tta={"mode": "plain", "flip": False, "shift": 0}, training_time_s=1.0,
        precision="float32", epochs_run=1, external=evaluation_json("0123401234", "0123400000"),
        external_scores={"plain": score}, external_by_copy=None)
    modelcard.update_card(source, tta={"mode": "plain", "flip": False, "shift": 0},
                          calibration={"temperature": 1.5, "abstain_below": 0.4}, test=card_test_scores(result))
    card = shipping.ship_model(source, tmp_path / "assets")
    target = tmp_path / "assets" / shipped.SHIPPED_MODELS["fer2013-5"]  # the study's five: shipped as fer2013-5
    assert target.stat().st_size < source.stat().st_size  # no optimizer state
    assert card["shipped"]["from"] == "champ.keras" and card["test"]["accuracy"] == 0.6
    x = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(keras.models.load_model(target, compile=False).predict(x, verbose=0),
                               model.predict(x, verbose=0), atol=1e-6)
    low, high = result["external"]["accuracy_ci"]  # the card's interval is the external set's own
    assert f"60.0% [{low:.1%}, {high:.1%}]" in shipped.describe_shipped(card)
    latest = {"data": "FER-2013 PublicTest, original pixels", "images": 3589, "accuracy": 0.678,
              "accuracy_ci": [0.663, 0.693]}
    measured = card | {"tests": {"measured": {"date": "2026-12-07"}, "on": [latest]}}
    assert "FER-2013 PublicTest, original pixels (measured 2026-12-07) 67.8% [66.3%, 69.3%] on 3,589 images" in (
        shipped.describe_shipped(measured))  # the latest measurement, on the pixels users have, once there is one


def test_a_missing_shipped_model_says_how_to_make_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shipped, "ASSETS", tmp_path)
    with pytest.raises(FileNotFoundError, match="python -m ferlib champion"):
        shipped.shipped_model_path()
    assert cli.main(["predict", str(tmp_path)]) == 2
    assert "ferlib ship" in capsys.readouterr().err


@pytest.mark.realdata
def test_the_shipped_model_finds_and_labels_faces_on_the_shared_photos(clf):
    photos = sorted((SHARED_DATA / "photos").glob("dlib_*.jpg"))
    if not photos:
        pytest.skip(f"shared photos not found in {SHARED_DATA / 'photos'}")
    results = clf.predict_paths(photos)
    faces = [f for r in results for f in r.faces]
    assert all(r.error is None for r in results) and len(faces) >= 30
    assert {f.label for f in faces} <= set(clf.classes) and len({f.label for f in faces}) >= 2


def test_every_asset_is_in_the_package_data():
    import fnmatch
    import subprocess
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["ferlib"]
    tracked = subprocess.run(["git", "ls-files", "ferlib/assets"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.split()
    assert {Path(t).name for t in tracked} >= {"fer2013-7.keras", "fer2013-7.json", "fer2013-5.keras",
                                               "fer2013-5.json", "face_detection_full_range_sparse.tflite", "NOTICE.md"}
    for path in tracked:
        relative = Path(path).relative_to("ferlib").as_posix()
        assert any(fnmatch.fnmatch(relative, g) for g in globs), f"{path} would not be installed"


def test_warm_up_traces_every_batch_size_keras_predictions_use():
    from ferlib.models.inference import padded_size

    assert [padded_size(n) for n in (1, 8, 9, 20, 33, 64, 70)] == [8, 8, 16, 32, 64, 64, 70]
    traced = []
    clf = EmotionClassifier.load(backend="keras", batch_size=48)  # the default model: three Keras networks pooled
    networks = [clf.network.own, *getattr(clf.network.partner, "members", [clf.network.partner])]
    for network in networks:
        network.model.predict_on_batch = lambda x: traced.append(len(x))
    clf.warm_up()
    assert traced == [8, 16, 32, 64] * len(networks) and len(networks) > 1  # each network; 48 faces pad to 64


@pytest.mark.parametrize("name, partner_file", [("fer2013-5", None), ("fer2013-7", "fer2013-7.partner.keras")])
def test_each_shipped_model_answers_pooled_as_chosen_on_its_validation_faces(name, partner_file):
    """fer2013-5 with the shipped fer2013-7's network (their splits differ: only faces neither trained on count);
    fer2013-7 with two more seven-class networks of its own, trained with other seeds on its split (all count), as
    one partner."""
    from ferlib.models.pooling import POOL_WEIGHTS, PooledNetwork

    card = shipped.shipped_card(name)
    entry = card["pooled_with"]
    assert entry.get("file") == partner_file and (partner_file or entry["model"] == "fer2013-7")
    for named, path in zip(shipped.partner_entries(entry), shipped.partner_paths(shipped.ASSETS / name, entry)):
        partner = shipped.read_card(path)
        assert named["sha256"] == partner["shipped"]["sha256"] == shipped.sha256_of(path)
        assert "pooled_with" not in partner or not partner_file  # a partner of its own answers alone
        for e in (partner.get("litert") or {}).get("precisions", {}).values():  # its LiteRT files as converted
            assert e["sha256"] == shipped.sha256_of(shipped.ASSETS / e["file"])
    partner = shipped.read_card(shipped.partner_path(shipped.ASSETS / name, entry))
    accuracy = {float(w): a for w, a in entry["chosen_on"]["accuracy"].items()}
    assert sorted(accuracy) == list(POOL_WEIGHTS)
    assert entry["weight"] == max(POOL_WEIGHTS[1:], key=accuracy.get) and accuracy[entry["weight"]] > accuracy[0.0]
    assert entry["chosen_on"]["mcnemar_vs_alone"]["p_value"] < shipped.SHIP_ALPHA
    if before := entry["chosen_on"].get("mcnemar_vs_before"):  # pooled again: better than its pooling until then
        assert before["p_value"] < shipped.SHIP_ALPHA and before["only_b"] > before["only_a"]
    n = entry["chosen_on"]["mcnemar_vs_alone"]["n"]
    same_split = all(c["data"]["fingerprint"] == partner["data"]["fingerprint"] and c["provenance"]["seed"] == 42
                     for c in (card, partner))
    assert card["calibration"]["n"] == n and (n == card["data"]["n_val"]) == same_split == bool(partner_file)
    assert card["calibration"]["accuracy"] == pytest.approx(accuracy[entry["weight"]])
    clf = EmotionClassifier.load(name)
    assert isinstance(clf.network, PooledNetwork) and clf.network.weight == entry["weight"]
    pool = entry["litert"]  # both networks at the precision chosen for the pool, on the same faces
    assert f"the {n:,} validation faces" in pool["compared_on"] and clf.precision == pool["default"]
    assert pool["precisions"]["float32"]["accuracy"] == pytest.approx(accuracy[entry["weight"]], abs=2 / n)
