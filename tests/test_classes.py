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
from tests.conftest import FER2013 as FER2013_DIR
from tests.conftest import FER_FOLDERS, SHARED_DATA, make_class_tree


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
    with pytest.raises(KeyError, match="known: none, equalize, equalize-smooth"):
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


@pytest.mark.realdata
@pytest.mark.skipif(not (SHARED_DATA / "fer2013-raw").is_dir(), reason="FER-2013's two copies are not here")
def test_smoothing_after_equalization_brings_two_copies_of_one_face_closer():
    """FER-2013's equalized copy is sharp, its copy with the original pixels was rescaled (softer): equalized, the
    same face still differs between them; smoothed after equalizing, it differs less."""
    names = sorted(p.relative_to(FER2013_DIR / "test") for p in (FER2013_DIR / "test").glob("*/*.jpg"))[::18]
    copies = [np.stack([cv2.imread(str(root / "test" / n), cv2.IMREAD_GRAYSCALE) for n in names])
              for root in (FER2013_DIR, SHARED_DATA / "fer2013-raw")]
    rgb = [np.repeat(c[..., None], 3, axis=-1) for c in copies]
    apart = {name: np.abs(preprocess.preprocess_faces(rgb[0], name).astype(int)
                          - preprocess.preprocess_faces(rgb[1], name)).mean()
             for name in ("equalize", "equalize-smooth")}
    assert len(names) == 200 and apart["equalize-smooth"] < 0.8 * apart["equalize"]
    smooth = preprocess.preprocess_faces(rgb[0], "equalize-smooth")
    assert smooth.shape == rgb[0].shape and (smooth[..., 0] == smooth[..., 2]).all()


def test_a_card_names_its_preprocessing_and_an_older_one_gets_equalization():
    assert shipped.card_preprocessing({"preprocessing": {"name": "none"}}) == "none"
    legacy = {"preprocessing": "inside the model: raw 0-255 RGB in"}  # cards before preprocessing was named
    assert shipped.card_preprocessing(legacy) == "equalize" == shipped.card_preprocessing({})
    with pytest.raises(ValueError, match="unknown preprocessing 'clahe'"):
        shipped.card_preprocessing({"name": "m", "preprocessing": {"name": "clahe"}})


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
    printed = capsys.readouterr().out
    assert result["model"]["preprocessing"] == "equalize" and "Disgust" in printed
    size = result["model"]["input_size"]
    assert f"(7 classes, {size} px" in printed and "faces equalize;" in printed  # what the network was given


def test_calibrate_chooses_the_inference_preprocessing_on_validation_and_refits_the_threshold(
        seven_class_c1, tmp_path, capsys):
    import shutil

    from ferlib.evaluation.views import average_over_views
    from ferlib.models import shipping
    from ferlib.photos.predict import EmotionClassifier

    root, champ = seven_class_c1
    model = tmp_path / "seven.keras"
    shutil.copy(champ.model_file, model)
    shutil.copy(shipped.card_path(champ.model_file), shipped.card_path(model))
    assert cli.main(["calibrate", str(model), "--data", str(root / "fer")]) == 0
    card = json.loads(shipped.card_path(model).read_text())
    entry, accuracy = card["preprocessing"], card["preprocessing"]["chosen_on"]["accuracy"]
    assert entry["learned_with"] == "equalize" and set(accuracy) == {"equalize", "equalize-smooth"}
    assert entry["name"] == max(accuracy, key=accuracy.get)  # the learned one first: it wins a tie
    assert ("mcnemar_vs_learned" in entry["chosen_on"]) == (entry["name"] != "equalize")
    assert card["calibration"]["n"] == card["data"]["n_val"] and f"chosen: {entry['name']}" in capsys.readouterr().out
    clf = EmotionClassifier.load(model, backend="keras")
    assert clf.preprocessing == entry["name"]  # what predict and evaluate give the network from now on
    images, labels, _ = shipping.validation_split(card, root / "fer", tmp_path / "cache")
    probs = average_over_views(clf.network, images, *clf.tta)
    assert (probs.argmax(axis=1) == labels).mean() == pytest.approx(accuracy[entry["name"]])
    assert card["calibration"]["accuracy"] == pytest.approx(accuracy[entry["name"]])
    assert cli.main(["calibrate", str(tmp_path / "missing.keras"), "--data", str(root / "fer")]) == 2
    assert "cannot calibrate" in capsys.readouterr().err


def test_pool_chooses_on_faces_neither_trained_on_and_predict_pools_as_the_card_says(
        seven_class_c1, tmp_path, monkeypatch, capsys):
    import shutil

    from ferlib.champion import run
    from ferlib.evaluation.views import probabilities_per_view
    from ferlib.models import shipping
    from ferlib.models.pooling import class_positions, pooled_over_views
    from ferlib.photos.predict import EmotionClassifier

    root, champ = seven_class_c1
    assets = tmp_path / "assets"
    assets.mkdir()
    shipping.ship_model(champ.model_file, assets=assets)  # the seven-class network, shipped as the partner
    monkeypatch.setattr(shipped, "ASSETS", assets)
    five = run.champion_from_folders("smoke", root / "fer", root / "fer", seed=1, output_dir=tmp_path / "out")
    model, card_file = five.model_file, shipped.card_path(five.model_file)
    before = card_file.read_text()
    code = cli.main(["pool", str(model), "--with", "fer2013-7", "--data", str(root / "fer")])
    out, err = capsys.readouterr()
    # chosen on the five-class model's validation faces that the seven-class one did not train on
    card, partner_card = json.loads(before), shipped.shipped_card("fer2013-7")
    own_val = shipping.chosen_on(card, root / "fer").val
    partner_train = set(shipping.chosen_on(partner_card, root / "fer").train["pixel_hash"])
    clean = own_val[~own_val["pixel_hash"].isin(partner_train)]
    assert f"the {len(clean):,} faces of the validation split that fer2013-7 did not train on" in out, err
    assert 0 < len(clean) < len(own_val)
    assert (code == 0) == ("pooled_with" in json.loads(card_file.read_text()))
    assert code == 0 or ("error: not pooled" in err and card_file.read_text() == before)  # refused: card untouched

    # a card that names a partner: predict pools, view by view, as the weight was chosen
    pooled = tmp_path / "pooled.keras"
    shutil.copy(model, pooled)
    entry = {"model": "fer2013-7", "sha256": partner_card["shipped"]["sha256"], "weight": 0.5}
    shipped.card_path(pooled).write_text(json.dumps(card | {"pooled_with": entry}))
    clf, alone = (EmotionClassifier.load(m, backend="keras") for m in (pooled, model))
    partner = EmotionClassifier.load("fer2013-7", backend="keras")
    images = np.random.default_rng(0).integers(0, 256, (5, clf.image_size, clf.image_size, 3), dtype=np.uint8)
    faces = preprocess.preprocess_faces(images, clf.preprocessing)  # what the networks are given
    expected = pooled_over_views(*(probabilities_per_view(m.network, faces, *clf.tta) for m in (alone, partner)),
                                 class_positions(clf.classes, partner.classes), 0.5)
    np.testing.assert_allclose(clf.raw_probabilities(images), expected, atol=1e-6)
    assert not np.allclose(clf.raw_probabilities(images), alone.raw_probabilities(images), atol=1e-3)
    shipped.card_path(pooled).write_text(json.dumps(card | {"pooled_with": entry | {"sha256": "0" * 64}}))
    with pytest.raises(ValueError, match="pooled with another fer2013-7"):
        EmotionClassifier.load(pooled, backend="keras")
    assert cli.main(["calibrate", str(pooled), "--data", str(root / "fer")]) == 2  # calibrated alone, then pooled
    assert "pooled with fer2013-7" in capsys.readouterr().err
    shutil.copy(model, assets / "fer2013-5.keras")  # a shipped five-class model pooled with the shipped seven
    shipped.card_path(assets / "fer2013-5.keras").write_text(json.dumps(card | {"pooled_with": entry}))
    assert cli.main(["ship", str(champ.model_file)]) == 0  # a new seven-class network: the five must be re-pooled
    assert "fer2013-5 was pooled with the previous fer2013-7: pool it again" in capsys.readouterr().out


def test_a_second_network_of_another_training_seed_is_pooled_from_its_own_file_beside_the_model(
        seven_class_c1, tmp_path, capsys):
    import shutil

    from ferlib.champion import run
    from ferlib.evaluation.views import probabilities_per_view
    from ferlib.models import pool_choice, shipping
    from ferlib.models.pooling import class_positions, pooled_over_views
    from ferlib.photos.predict import EmotionClassifier

    root, champ = seven_class_c1
    first_result = champ.result_file.read_text()
    second = run.champion_from_folders("smoke", root / "fer", root / "fer", output_dir=root / "out",
                                       classes="fer2013-7", train_seed=43)
    assert second.model_file.name == f"{champ.model_file.stem}_train43.keras"
    assert second.result_file.name.endswith("_train43-seed42.json") and champ.result_file.read_text() == first_result
    assert (second.result["train_seed"], champ.result["train_seed"]) == (43, 42)
    cards = [json.loads(shipped.card_path(m).read_text()) for m in (champ.model_file, second.model_file)]
    assert cards[0]["data"] == cards[1]["data"] and cards[1]["provenance"]["seed"] == 42  # the same split
    assert cards[1]["provenance"]["train_seed"] == 43 and "train_seed" not in cards[0]["provenance"]
    for wrong in (["--train-seed", "42"], ["--train-seed", "-1"], ["--train-seed", "43", "--fine-tune", "equalize"]):
        assert cli.main(["champion", "--data", str(root / "fer"), "--classes", "fer2013-7", *wrong]) == 2
        assert "a network of its own needs a training seed" in capsys.readouterr().err
    model = tmp_path / "seven.keras"
    shutil.copy(champ.model_file, model)
    shutil.copy(shipped.card_path(champ.model_file), shipped.card_path(model))
    code = cli.main(["pool", str(model), "--with", str(second.model_file), "--data", str(root / "fer")])
    out, err = capsys.readouterr()
    stem, n_val = second.model_file.stem, cards[0]["data"]["n_val"]
    assert f"the {n_val:,} faces of the validation split that {stem} did not train on" in out, err  # all of them
    assert code in (0, 3) and (code == 0) == model.with_name("seven.partner.keras").is_file()

    # what pool does when the pooling is better: the partner is shipped beside the model and found by its file name
    shipped.card_path(second.model_file).write_text(json.dumps(cards[1] | {"pooled_with": {"model": "fer2013-5"}}))
    copy = pool_choice.ship_partner(model, second.model_file)
    partner_card = json.loads(shipped.card_path(copy).read_text())
    assert "pooled_with" not in partner_card  # a partner answers alone
    assert copy.name == "seven.partner.keras" and partner_card["shipped"]["sha256"] == shipped.sha256_of(copy)
    assert shipped.card_path(copy).is_file() and all((tmp_path / e["file"]).is_file()
                                                     for e in partner_card["litert"]["precisions"].values())
    entry = {"model": stem, "file": copy.name, "sha256": partner_card["shipped"]["sha256"], "weight": 0.4}
    shipped.card_path(model).write_text(json.dumps(cards[0] | {"pooled_with": entry}))
    clf, alone, partner = (EmotionClassifier.load(m, backend="keras") for m in (model, champ.model_file, copy))
    images = np.random.default_rng(0).integers(0, 256, (5, clf.image_size, clf.image_size, 3), dtype=np.uint8)
    faces = preprocess.preprocess_faces(images, clf.preprocessing)
    expected = pooled_over_views(*(probabilities_per_view(m.network, faces, *clf.tta) for m in (alone, partner)),
                                 class_positions(clf.classes, partner.classes), 0.4)
    np.testing.assert_allclose(clf.raw_probabilities(images), expected, atol=1e-6)
    assert not np.allclose(partner.raw_probabilities(images), alone.raw_probabilities(images), atol=1e-3)
    assert "a second network of its own, " in shipped.pooling_text(cards[0] | {"pooled_with": entry | {
        "chosen_on": {"accuracy": {"0.0": 0.5, "0.4": 0.6}, "mcnemar_vs_alone": {"n": 10, "p_value": 0.01}}}})
    shipped.card_path(model).write_text(json.dumps(cards[0] | {"pooled_with": entry | {"sha256": "0" * 64}}))
    with pytest.raises(ValueError, match=f"pooled with another {stem}.*--with PARTNER.keras"):
        EmotionClassifier.load(model, backend="keras")
    assert cli.main(["pool", str(model), "--with", str(model), "--data", str(root / "fer")]) == 2
    assert "cannot be its own partner" in capsys.readouterr().err
    assert cli.main(["pool", str(model), "--with", str(tmp_path / "none.keras"), "--data", str(root / "fer")]) == 2
    assert "--with " in capsys.readouterr().err
    with pytest.raises(ValueError, match="a network ships alone"):
        shipping.ship_model(model, assets=tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere").exists()  # refused before anything was written

    # shipping another network in place of a model removes the replaced one's own partner
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "fer2013-7.partner.keras").write_bytes(b"the replaced network's partner")
    shipping.ship_model(champ.model_file, assets=assets)
    assert sorted(p.name for p in assets.glob("fer2013-7*")) == [
        "fer2013-7.int8.tflite", "fer2013-7.json", "fer2013-7.keras", "fer2013-7.tflite"]

