"""The CPU champion C1: its network, augmentation, label smoothing, schedule, flip averaging, intervals, ablation."""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pytest

from ferlib import cli
from ferlib.champion import ablation, recipe, records, tables
from ferlib.champion.commands import _print_goal_and_ablation
from ferlib.classes import STUDY
from ferlib.config import PROFILES, capped, run_settings
from ferlib.data.augment import RandomFaceAffine, augment_batch, build_augmentation
from ferlib.data.run_data import prepare_internal
from ferlib.evaluation import test_time
from ferlib.evaluation.evaluate import Evaluation, evaluate_model, predict_probs
from ferlib.evaluation.results import RESULT_SCHEMA, SchemaError, check_result
from ferlib.evaluation.views import tta_views
from ferlib.experiments import RECIPE_FIELDS, Phase, experiment_keys, get_experiment
from ferlib.models import modelcard
from ferlib.models.builders import build_fer_cnn, build_model
from ferlib.runnames import retrained_name
from ferlib.training import objective, train
from ferlib.viz import figures
from tests.conftest import data_folder, evaluation_json, experiment_json, make_class_tree, tiny_data


def tiny_c1(epochs=1, **changes):
    c1 = get_experiment("C1", "smoke")
    phases = (Phase(epochs=epochs, learning_rate=2e-3, monitor="val_accuracy"),)
    return dataclasses.replace(c1, **({"image_size": 24, "filters": (4, 8), "crop": 0, "phases": phases} | changes))


def test_recipe_fields_leave_the_study_experiments_run_keys_unchanged():
    """settings() of every study experiment is the dict of the fields it had before C1 existed, so the
    hash over it (the run key) and every finished run stay as they were (with ImageNet weights: without them the cpu
    profile's transfer experiments are other experiments, trained from scratch)."""
    for key in experiment_keys():
        for profile in PROFILES:
            experiment = get_experiment(key, profile, "imagenet")
            old = {k: v for k, v in dataclasses.asdict(experiment).items() if k not in RECIPE_FIELDS}
            assert experiment.settings() == old
            text = json.dumps({"settings": old, "data": "fp", "seed": 1, "weights": "random"}, sort_keys=True)
            assert train.run_key(experiment, "fp", 1) == hashlib.sha1(text.encode()).hexdigest()[:10]
    c1 = get_experiment("C1", "cpu").settings()
    assert c1["label_smoothing"] == 0.1 and c1["schedule"] == "cosine" and c1["tta_flip"] is True
    assert "C1" not in experiment_keys() and "C1" in experiment_keys(include_project=True)


def test_c1_takes_raw_uint8_rgb_and_rescales_inside(tmp_path):
    model = build_model(get_experiment("C1", "smoke"), seed=0)
    assert model.input_shape == (None, 32, 32, 3) and model.get_layer("rescale").scale == pytest.approx(1 / 255)
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)
    probs = model.predict(images, verbose=0)
    assert probs.shape == (4, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(model.predict(images.astype(np.float32), verbose=0), probs, rtol=1e-5)
    model.save(tmp_path / "c1.keras")  # plain Keras layers only: loads in safe mode
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "c1.keras").predict(images, verbose=0), probs,
                               rtol=1e-5)


def test_c1_sees_only_the_central_crop_and_keeps_it_after_saving(tmp_path):
    """Pixels outside the central crop cannot change a prediction; inside it they do. The crop is
    part of the saved model, so it still takes whole faces after loading."""
    model = build_fer_cnn(24, filters=(4, 8), seed=0, crop=16)
    assert model.input_shape == (None, 24, 24, 3) and model.get_layer("center_crop").output.shape[1:3] == (16, 16)
    images = np.random.default_rng(1).integers(0, 256, (3, 24, 24, 3)).astype(np.uint8)
    border, centre = images.copy(), images.copy()
    border[:, :4], border[:, :, -4:] = 0, 255  # outside the central 16 x 16
    centre[:, 8:16, 8:16] = 255 - centre[:, 8:16, 8:16]
    probs = model.predict(images, verbose=0)
    np.testing.assert_allclose(model.predict(border, verbose=0), probs, rtol=1e-5)
    assert np.abs(model.predict(centre, verbose=0) - probs).max() > 1e-4
    whole = build_fer_cnn(24, filters=(4, 8), seed=0)
    assert np.abs(whole.predict(border, verbose=0) - whole.predict(images, verbose=0)).max() > 1e-4
    model.save(tmp_path / "cropped.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "cropped.keras").predict(border, verbose=0),
                               probs, rtol=1e-5)
    with pytest.raises(ValueError, match="crop must be between"):
        build_fer_cnn(24, crop=32)


def test_label_smoothing_is_applied_to_the_loss():
    phase = Phase(epochs=1, learning_rate=1e-3)
    y_true = keras.ops.one_hot(np.array([0, 3]), 5)
    smoothed = objective.compile_options(tiny_c1(label_smoothing=0.1), phase, 10)["loss"]
    # a confident, correct prediction costs nothing without smoothing and a lot with it
    assert float(smoothed(y_true, y_true)) > 1.0
    assert float(smoothed(y_true, 0.92 * y_true + 0.02)) < float(smoothed(y_true, y_true))
    plain = objective.compile_options(tiny_c1(label_smoothing=0.0), phase, 10)["loss"]
    assert plain == "sparse_categorical_crossentropy"


@pytest.mark.slow
def test_training_applies_the_cosine_schedule_with_warm_up(tmp_path):
    x, y = tiny_data()
    exp = tiny_c1(epochs=3, warmup_epochs=1, label_smoothing=0.1)
    run = train.train_experiment(exp, x, y, x, y, tmp_path, "fp", seed=0, batch_size=20, verbose=0)
    # 3 steps per epoch: warm-up to the peak after epoch 1, half-way down the cosine after 2, zero at the end
    np.testing.assert_allclose(run.history["learning_rate"], [2e-3, 1e-3, 0.0], atol=2e-6)
    assert isinstance(run.model.loss, keras.losses.CategoricalCrossentropy)  # label smoothing trained on one-hot labels
    constant = objective.learning_rate(dataclasses.replace(exp, schedule="constant"), exp.phases[0], 3)
    assert constant == 2e-3


def test_unknown_schedule_and_optimizer_are_refused_when_the_experiment_is_made():
    with pytest.raises(ValueError, match="schedule must be one of 'constant', 'cosine'"):
        tiny_c1(schedule="step")
    with pytest.raises(ValueError, match="optimizer must be one of 'adam', 'adamw'"):
        tiny_c1(optimizer="lamb")


def test_flip_tta_is_the_mean_of_the_image_and_mirror_predictions():
    model = build_model(tiny_c1(), seed=1)
    images = np.random.default_rng(1).integers(0, 256, (6, 24, 24, 3)).astype(np.uint8)
    plain = predict_probs(model, images, batch_size=4)
    mirrored = predict_probs(model, images[:, :, ::-1], batch_size=4)
    tta = predict_probs(model, images, batch_size=4, tta_flip=True)
    np.testing.assert_allclose(tta, (plain + mirrored) / 2, rtol=1e-6)
    assert not np.allclose(tta, plain)
    symmetric = np.concatenate([images[:, :, :12], images[:, :, :12][:, :, ::-1]], axis=2)
    np.testing.assert_allclose(predict_probs(model, symmetric, 4, tta_flip=True), predict_probs(model, symmetric, 4),
                               rtol=1e-5)
    evaluation = evaluate_model(model, images, np.arange(6) % 5, STUDY.names, batch_size=4, tta_flip=True)
    np.testing.assert_array_equal(evaluation.y_pred, tta.argmax(axis=1))


def test_crop_tta_averages_the_centre_and_corner_crops_with_their_mirror_images():
    """For a network that sees its central 16 of 24 px, the shifted views are exactly the corner crops:
    the same predictions as a network without the crop layer run on the five crops cut out by hand."""
    cropped = build_fer_cnn(24, filters=(4, 8), seed=2, crop=16)
    whole16 = build_fer_cnn(16, filters=(4, 8), seed=2)
    whole16.set_weights(cropped.get_weights())
    images = np.random.default_rng(3).integers(0, 256, (5, 24, 24, 3)).astype(np.uint8)
    corners = [images[:, 4:20, 4:20], images[:, :16, :16], images[:, :16, 8:], images[:, 8:, :16], images[:, 8:, 8:]]
    by_hand = [predict_probs(whole16, c, 4) for c in corners]
    by_hand += [predict_probs(whole16, c[:, :, ::-1], 4) for c in corners]
    tta = predict_probs(cropped, images, 4, tta_flip=True, tta_shift=4)
    np.testing.assert_allclose(tta, np.mean(by_hand, axis=0), rtol=1e-5, atol=1e-6)
    assert len(tta_views(images, flip=True, shift=4)) == 10 and len(tta_views(images)) == 1
    assert test_time.crop_margin(get_experiment("C1", "cpu")) == 4
    assert (set(test_time.tta_modes(4)) == {"plain", "flip_tta", "crops_flip_tta"}
            and set(test_time.tta_modes(0)) == {"plain", "flip_tta"})


def test_tta_mode_is_chosen_on_validation_with_ties_to_fewer_views():
    y = np.arange(10) % 5
    def ev(correct):
        return Evaluation(y, np.where(np.arange(10) < correct, y, (y + 1) % 5), np.zeros((10, 5)), STUDY.names)
    assert test_time.choose_tta({"plain": ev(6), "flip_tta": ev(8), "crops_flip_tta": ev(7)}) == "flip_tta"
    assert test_time.choose_tta({"plain": ev(8), "flip_tta": ev(8), "crops_flip_tta": ev(8)}) == "plain"
    assert test_time.choose_tta({"plain": ev(5), "flip_tta": ev(8), "crops_flip_tta": ev(9)}) == "crops_flip_tta"


def test_face_affine_mirrors_exactly_and_fer_augmentation_stays_grey_and_in_range():
    images = np.random.default_rng(2).integers(0, 256, (32, 24, 24, 3)).astype(np.float32)
    mirror_only = RandomFaceAffine(rotation_deg=0, zoom=0, shift=0, seed=3)
    out = np.asarray(mirror_only(images, training=True))
    mirrored = [np.allclose(o, i[:, ::-1], atol=1e-3) for o, i in zip(out, images)]
    unchanged = [np.allclose(o, i, atol=1e-3) for o, i in zip(out, images)]
    assert all(m != u for m, u in zip(mirrored, unchanged)) and 5 < sum(mirrored) < 27  # about half mirrored
    assert np.array_equal(np.asarray(mirror_only(images, training=False)), images)
    grey = np.repeat(images[..., :1], 3, axis=-1).astype(np.uint8)
    batch, labels = augment_batch(build_augmentation("fer", seed=0), grey, np.arange(32))
    batch = np.asarray(batch)
    assert batch.shape == grey.shape and batch.min() >= 0 and batch.max() <= 255
    np.testing.assert_allclose(batch[..., 0], batch[..., 2])  # grey faces stay grey
    assert np.mean(np.abs(batch - grey)) > 5 and np.array_equal(np.asarray(labels), np.arange(32))


def test_champion_scores_carry_the_bootstrap_interval_of_every_table():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 500)
    pred = np.where(rng.random(500) < 0.8, y, (y + 1) % 5)
    s = test_time.score(Evaluation(y, pred, np.zeros((500, 5)), STUDY.names))
    assert s["correct"] == int((pred == y).sum()) and s["n"] == 500
    assert s["ci95"][0] < s["accuracy"] < s["ci95"][1] and s["ci95"][1] - s["ci95"][0] < 0.1
    assert s["macro_f1_ci95"][0] <= s["macro_f1"] <= s["macro_f1_ci95"][1]


@pytest.mark.parametrize("name", list(recipe.ABLATIONS))
def test_each_ablation_variant_changes_one_thing_and_shares_the_budget(name):
    base, changes = get_experiment("C1", "cpu"), recipe.ABLATIONS[name]
    variant = recipe.ablation_variant(name, "cpu", epochs=8)
    assert [p.epochs for p in variant.phases] == [8] and variant.warmup_epochs <= 1
    differs = {f.name for f in dataclasses.fields(base)
               if getattr(variant, f.name) != getattr(base, f.name)} - {"phases", "warmup_epochs"}
    assert differs == set(changes) - {"warmup_epochs", "learning_rate"}
    assert variant.phases[0].learning_rate == changes.get("learning_rate", base.phases[0].learning_rate)
    assert recipe.ABLATION_DESCRIPTIONS[name]  # every variant says what it changed
    assert recipe.ablation_result_name(name).startswith("C1_ablation_" + name)


def test_an_unknown_variant_is_refused_and_the_training_images_can_be_capped():
    base = get_experiment("C1", "cpu")
    with pytest.raises(KeyError, match="unknown ablation"):
        recipe.ablation_variant("no_cnn", "cpu")
    capped = recipe.ablation_variant("no_crop_48", "cpu", epochs=6, max_train=6000)
    assert capped.max_train == 6000 and capped.crop == 0 and base.crop == 40 and base.max_train is None


@pytest.mark.slow
def test_ablation_run_writes_results_and_builds_the_table(smoke_settings):

    internal = prepare_internal(smoke_settings, progress=False)
    half = len(internal.train) // 2
    results = ablation.run_ablation(smoke_settings, internal, ["no_label_smoothing"], epochs=1, verbose=0,
                                    max_train=half)
    folder = smoke_settings.output_dir / "results" / "smoke"
    assert (folder / f"C1_ablation_no_label_smoothing_1epochs_{half}images-seed{smoke_settings.seed}.json").is_file()
    assert records.read_ablation(folder, smoke_settings.seed) == {}  # the short budget (8 epochs) has no results
    found = records.read_ablation(folder, smoke_settings.seed, epochs=1, max_train=half)
    assert set(found) == set(results) == {"no_label_smoothing"}
    assert found["no_label_smoothing"]["settings"]["key"] == "C1"
    assert "label_smoothing" not in found["no_label_smoothing"]["settings"]  # at its default, so left out
    row = tables.ablation_table(found).loc["no_label_smoothing"]
    assert row["epochs"] == 1 and row["n (val)"] == len(internal.val)
    assert row["n (train)"] == pytest.approx(len(internal.train) // 2, abs=5)  # stratified: rounding per class
    assert row["val ci95 low"] <= row["val accuracy"] <= row["val ci95 high"]
    better = json.loads(json.dumps(found["no_label_smoothing"]))
    better["validation_scores"]["flip_tta"]["accuracy"] += 0.1
    table = tables.ablation_table({"champion": better, "no_label_smoothing": found["no_label_smoothing"]})
    assert table["vs champion (flip TTA)"].tolist() == pytest.approx([0.0, -0.1])
    assert table.loc["champion", "McNemar p vs champion"] == 1.0  # the same predictions: no discordant image
    flipped = json.loads(json.dumps(found["no_label_smoothing"]))
    y_true = flipped["validation"]["y_true"]
    flipped["validation"]["y_pred"] = "".join(str((int(c) + 1) % 5) for c in y_true)  # every image wrong
    table = tables.ablation_table({"champion": found["no_label_smoothing"], "all_wrong": flipped})
    right = int(sum(a == b for a, b in zip(y_true, found["no_label_smoothing"]["validation"]["y_pred"])))
    assert (table.loc["all_wrong", "McNemar p vs champion"] < 0.05) == (right >= 6)


@dataclass
class TrainedPair:
    """What the champion commands wrote for one generated data pair (see `trained`)."""
    report: dict  # `champion`'s printed JSON
    printed: str  # everything `champion` printed
    results: Path
    models: Path
    c1_result: dict  # C1-seed42.json as `champion` wrote it, before the other budgets ran
    pair: list[str]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> TrainedPair:
    """Run the commands a user runs on one generated data pair, once for this module's tests: the ablation (two
    variants, one epoch), `champion`, `champion --epochs 2` (another budget) and `champion --epochs 1 --variant
    mixup_0.2` (a candidate to ship)."""
    tmp_path = tmp_path_factory.mktemp("champion")
    classes = ("Angry", "Fear", "Happy", "Sad", "Suprise")
    internal = make_class_tree(tmp_path / "hfe" / "Data", {c: 12 for c in classes})
    external = make_class_tree(tmp_path / "ext" / "Data", {c: 4 for c in classes}, start_seed=500)
    pair = ["--profile", "smoke", "--data", str(internal.parent), "--external", str(external.parent),
            "--output-dir", str(tmp_path / "out")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FERLIB_CACHE_DIR", str(tmp_path / "cache"))
        assert cli.main(["ablate", *pair, "--epochs", "1", "--variants", "champion,no_label_smoothing"]) == 0
        with contextlib.redirect_stdout(io.StringIO()) as out:
            assert cli.main(["champion", *pair]) == 0
        results = data_folder(tmp_path / "out", "results", "smoke")
        c1_result = json.loads((results / "C1-seed42.json").read_text())
        assert cli.main(["champion", *pair, "--epochs", "2"]) == 0
        assert cli.main(["champion", *pair, "--epochs", "1", "--variant", "mixup_0.2"]) == 0
    printed = out.getvalue()
    return TrainedPair(json.loads(printed[printed.index("{"): printed.rindex("}") + 1]), printed, results,
                       data_folder(tmp_path / "out", "models", "smoke"), c1_result, pair)


@pytest.mark.slow
def test_champion_prints_its_scores_in_every_test_time_mode_and_split_by_copies(trained):
    """`python -m ferlib champion` is the reproduction command: the scores per test-time mode, the mode chosen on
    validation, and the external score split by copies in the training data."""
    report = trained.report
    assert set(report["external"]) == set(report["validation"]) == {"plain", "flip_tta", "crops_flip_tta"}
    assert report["external"]["plain"]["n"] == 20 and report["test_time_mode"]["chosen_on"] == "validation accuracy"
    by_copy = report["external_by_copy"]  # distinct synthetic faces: no external image has a copy
    assert by_copy["with_copy"] is None and by_copy["without_copy"]["n"] == 20


@pytest.mark.slow
def test_champion_saves_the_model_with_its_kept_mode_and_calibration_in_the_data_pairs_folder(trained):
    model_path = trained.models / "cpu_champion.keras"
    assert model_path.parent.name.startswith("hfe+ext-") and f"saved {model_path}" in trained.printed
    card = modelcard.load_with_card(model_path).card
    kept = trained.report["test_time_mode"]["mode"]
    assert card["tta"] == trained.report["test_time_mode"] and card["experiment"]["key"] == "C1"
    assert card["metrics"]["accuracy"] == trained.report["validation"][kept]["accuracy"]  # as the card's mode scores
    calibration = card["calibration"]  # fitted on the validation predictions in the kept mode
    assert calibration["fitted_on"] == "validation split" and calibration["temperature"] > 0
    assert calibration["accuracy"] == pytest.approx(card["metrics"]["accuracy"])


@pytest.mark.slow
def test_c1s_result_carries_the_ablation_learning_curve_and_goal_measured_beside_it(trained):
    result = trained.c1_result
    assert result["tta"]["mode"] == trained.report["test_time_mode"]["mode"] and result["external"]["n"] == 20
    rows = {row["variant"]: row for row in result["ablation"]["variants"]}
    assert set(rows) == {"champion", "no_label_smoothing"} and result["ablation"]["epochs"] == [1]
    assert rows["champion"]["McNemar p vs champion"] == 1.0
    assert 0 <= rows["no_label_smoothing"]["McNemar p vs champion"] <= 1
    assert [row["run"] for row in result["learning_curve"]] == ["ablation budget (full recipe)", "C1"]
    goal = result["goal"]  # generated faces, not FER-2013's test images: the goal is not judged
    assert goal["test_accuracy"] == result["external"]["accuracy"] and goal["goal"] == recipe.GOAL_ACCURACY
    assert goal["reached"] is None and "not FER-2013's test images" in goal["not_applicable"]
    printed = trained.printed
    assert f"goal {goal['goal']:.0%}" in printed and "does not apply" in printed and "no_label_smoothing" in printed


@pytest.mark.slow
def test_another_budget_writes_its_own_result_and_model_beside_c1s(trained):
    longer = json.loads((trained.results / "C1_2epochs-seed42.json").read_text())
    assert longer["epochs_run"] == 2 and longer["settings"]["key"] == "C1_2epochs"
    assert [row["run"] for row in longer["learning_curve"]] == ["ablation budget (full recipe)", "C1", "C1_2epochs"]
    assert json.loads((trained.results / "C1-seed42.json").read_text()) == trained.c1_result  # C1's untouched
    card = modelcard.load_with_card(trained.models / "cpu_champion_2epochs.keras").card
    assert card["experiment"]["key"] == "C1_2epochs"


@pytest.mark.slow
def test_a_variant_trained_to_ship_is_compared_in_the_ablation_of_its_budget(trained):
    candidate = json.loads((trained.results / "C1_mixup_0.2_1epochs-seed42.json").read_text())
    assert candidate["settings"]["mixup"] == 0.2 and "learning_curve" not in candidate
    assert [row["variant"] for row in candidate["ablation"]["variants"]] == ["champion", "no_label_smoothing",
                                                                             "mixup_0.2"]
    card = modelcard.load_with_card(trained.models / "cpu_champion_mixup_0.2_1epochs.keras").card
    assert card["experiment"]["key"] == "C1_mixup_0.2_1epochs"


def test_champion_refuses_an_unknown_variant_before_any_work(tmp_path, capsys):
    assert cli.main(["champion", "--profile", "smoke", "--variant", "mixup", "--output-dir", str(tmp_path)]) == 2
    assert "unknown variant 'mixup'" in capsys.readouterr().err and not any(tmp_path.iterdir())


def test_learning_curve_rows_come_from_finished_budgets(tmp_path):
    def result(epochs, accuracy, flip, minutes):
        return experiment_json(
            "C1", epochs_run=epochs, n_train=1000, training_time_s=minutes * 60, precision="mixed_bfloat16",
            history={"epoch": list(range(epochs)), "accuracy": [0.5] * (epochs - 1) + [accuracy + 0.1]},
            validation_scores={"plain": {"accuracy": accuracy, "n": 400}, "flip_tta": {"accuracy": flip, "n": 400}})

    (tmp_path / "C1-seed7.json").write_text(json.dumps(result(28, 0.68, 0.69, 30)))
    (tmp_path / "C1_ablation_champion-seed7.json").write_text(json.dumps(result(8, 0.62, 0.61, 9) | {
        "ablation": "champion", "epochs_budget": 8}))
    (tmp_path / "C1_112epochs-seed7.json").write_text(json.dumps(result(112, 0.70, 0.72, 60)))  # another budget
    (tmp_path / "C1-seed8.json").write_text(json.dumps(result(50, 0.99, 0.99, 1)))  # another seed: not read
    (tmp_path / "C1_distilled-seed7.json").write_text(json.dumps(result(28, 0.99, 0.99, 1)))  # not a budget
    found = records.budget_results(tmp_path, seed=7)
    curve = tables.learning_curve(found)
    assert list(curve.index) == ["ablation budget (full recipe)", "C1", "C1_112epochs"]  # sorted by images seen
    assert curve["images seen (millions)"].tolist() == pytest.approx([0.008, 0.028, 0.112])
    assert curve["val accuracy (best mode)"].tolist() == [0.62, 0.69, 0.72]  # the better mode of each run
    assert curve["best mode"].tolist() == ["plain", "flip TTA", "flip TTA"]
    assert curve["training time (min)"].tolist() == [9, 30, 60]
    assert curve["train accuracy (last epoch)"].tolist() == pytest.approx([0.72, 0.78, 0.80])  # the fit's last epoch
    per_doubling = curve["val gain per doubling (points)"]  # 7 points over log2(3.5) doublings, 3 over 2 doublings
    assert np.isnan(per_doubling.iloc[0]) and per_doubling.iloc[1:].tolist() == pytest.approx([7 / np.log2(3.5), 1.5])
    import matplotlib.pyplot as plt

    figure = figures.learning_curve(curve)
    assert len(figure.axes[0].lines) == 2  # best mode and plain, one point per budget
    plt.close(figure)


def test_a_training_budget_is_the_recipe_for_other_epochs_under_its_own_key():
    """`champion --epochs N` trains C1's recipe for N epochs as its own experiment: its own run, result and model,
    so a longer budget never overwrites the profile's C1 (and its own epochs give C1 itself)."""
    c1 = get_experiment("C1", "cpu")
    own = sum(phase.epochs for phase in c1.phases)
    assert recipe.budget_experiment("cpu") == c1 and recipe.budget_experiment("cpu", own) == c1
    longer = recipe.budget_experiment("cpu", 2 * own)
    assert longer.key == recipe.budget_key(2 * own) == f"C1_{2 * own}epochs" and recipe.is_budget_key(longer.key)
    assert [phase.epochs for phase in longer.phases] == [2 * own] and longer.warmup_epochs == c1.warmup_epochs
    same = {"key", "title", "phases"}
    assert {k: v for k, v in longer.settings().items() if k not in same} == {
        k: v for k, v in c1.settings().items() if k not in same}  # nothing else of the recipe changes
    assert recipe.budget_experiment("cpu", 8).warmup_epochs == 1  # a short budget keeps the warm-up short
    assert run_settings("cpu").model_path(longer.key).name == f"cpu_champion_{2 * own}epochs.keras"
    again = retrained_name(longer.key, 43)  # `champion --train-seed 43`: its own result and model, the same split
    assert run_settings("cpu").model_path(again).name == f"cpu_champion_{2 * own}epochs_train43.keras"
    assert not recipe.is_budget_key(again)  # never taken for the recipe's own budget
    assert not recipe.is_budget_key("C1_distilled") and not recipe.is_budget_key("C1_ablation_champion")
    with pytest.raises(ValueError, match="at least one epoch"):
        recipe.budget_experiment("cpu", 0)

    check = capped(PROFILES["cpu"], max_epochs=2)  # run_all.sh --max-epochs 2: every budget is a 2-epoch check
    assert [p.epochs for p in recipe.budget_experiment(check).phases] == [2]
    assert recipe.budget_experiment(check).key == "C1" and recipe.budget_experiment(check, 112).key == "C1"
    # a variant of the recipe (`champion --variant mixup_0.2`): its own key, run, result and model; nothing else
    mixup = recipe.budget_experiment("cpu", 2 * own, "mixup_0.2")
    assert mixup.key == recipe.budget_key(2 * own, "mixup_0.2") == f"C1_mixup_0.2_{2 * own}epochs"
    assert mixup.mixup == 0.2 and c1.mixup != 0.2 and [p.epochs for p in mixup.phases] == [2 * own]
    assert {k: v for k, v in mixup.settings().items() if k not in same | {"mixup"}} == {
        k: v for k, v in longer.settings().items() if k not in same}
    assert recipe.budget_experiment("cpu", None, "mixup_0.2").key == f"C1_mixup_0.2_{own}epochs"
    assert recipe.budget_variant(mixup.key) == "mixup_0.2" and recipe.budget_variant(longer.key) is None
    assert recipe.is_budget_key(mixup.key) and not recipe.is_budget_key(mixup.key, variants=False)
    assert not recipe.is_budget_key("C1_ablation_mixup_0.2_56epochs")  # an ablation result, not a budget
    assert run_settings("cpu").model_path(mixup.key).name == f"cpu_champion_mixup_0.2_{2 * own}epochs.keras"
    for wrong in ("champion", "mixup"):
        with pytest.raises(KeyError, match="unknown variant"):
            recipe.budget_experiment("cpu", 8, wrong)


def _ablation_result(epochs_budget, y_pred, flip=0.6):
    return experiment_json("C1", "0123", y_pred, epochs_budget=epochs_budget, epochs_run=epochs_budget,
                           max_train=None, training_time_s=60.0,
                           validation_scores={"plain": {"accuracy": 0.5, "n": 4, "ci95": [0.1, 0.9]},
                                              "flip_tta": {"accuracy": flip, "n": 4, "ci95": [0.2, 0.9]}})


def test_the_result_compares_only_ablations_of_the_recipes_budget_and_judges_the_goal_on_fer2013_only(tmp_path):

    results = {"champion": _ablation_result(8, "0123"), "float32": _ablation_result(8, "0120", 0.55),
               "mixup_0.2": _ablation_result(4, "3210", 0.2)}
    summary = tables.ablation_summary(results)
    assert [row["variant"] for row in summary["variants"]] == ["champion", "float32"]
    assert summary["other_budgets"] == ["mixup_0.2"] and summary["epochs"] == [8]
    fer = {"experiment": "C1", "external": {"accuracy": 0.77},
           "provenance": {"data": {"external": {"layout": "fer-folder", "embedded": False}}}}
    assert tables.goal_status(fer)["reached"] is True
    assert tables.goal_status(fer | {"external": {"accuracy": 0.75}})["reached"] is False
    capped_run = json.loads(json.dumps(fer))
    capped_run["provenance"]["max_epochs"] = 1
    assert tables.goal_status(capped_run)["reached"] is None
    # a damaged neighbouring result never costs the trained model its own result
    (tmp_path / "C1_ablation_champion-seed3.json").write_text('{"validation_scores": ')
    this = _ablation_result(56, "0123") | {"experiment": "C1"}
    context = records.champion_context(tmp_path, 3, this)
    assert context["ablation"] is None and [row["run"] for row in context["learning_curve"]] == ["C1"]


@pytest.mark.parametrize("change, named", [
    (lambda r: {k: v for k, v in r.items() if k != "history"}, "missing field(s) history"),
    (lambda r: r | {"schema": RESULT_SCHEMA + 1}, f"result schema {RESULT_SCHEMA + 1}, newer"),
    (lambda r: r | {"validation": {"accuracy": 0.5}}, "validation: missing field(s) accuracy_ci"),
])
def test_a_neighbouring_result_of_another_schema_is_left_out_naming_the_file_and_field(tmp_path, capsys, change,
                                                                                       named):
    """A neighbour without a field of its schema (or from a newer one) is named in a warning and left out; the
    reader raises SchemaError for it, not a KeyError that would look like a bug."""
    path = tmp_path / "C1_ablation_champion-seed3.json"
    path.write_text(json.dumps(change(_ablation_result(8, "0123") | {"ablation": "champion"})))
    with pytest.raises(SchemaError, match=re.escape(named)):
        records.read_neighbour(path)
    context = records.champion_context(tmp_path, 3, _ablation_result(56, "0123") | {"experiment": "C1"})
    warning = capsys.readouterr().err
    assert context["ablation"] is None and path.name in warning and named.split(",")[0] in warning


def test_a_mistake_in_the_code_is_not_taken_for_a_damaged_neighbour(tmp_path):
    """No broad except: a result lacking what the code itself reads (here the experiment key) raises."""
    result = _ablation_result(56, "0123")
    del result["experiment"]
    with pytest.raises(KeyError, match="experiment"):
        records.champion_context(tmp_path, 3, result)


def test_results_pass_the_schema_check_as_written_and_c1s_tables_read_them_by_key():
    """An experiment's result passes the check as written, and without a schema number (older files read as
    schema 1); C1's tables and card entry read its scores in the kept mode."""
    raw = experiment_json("V1", "0123401234", "0123401230")
    assert raw["schema"] == RESULT_SCHEMA and check_result(raw) is raw
    assert raw["validation"]["accuracy"] == pytest.approx(0.9) and raw["validation"]["n"] == 10
    check_result({k: v for k, v in raw.items() if k != "schema"})
    with pytest.raises(SchemaError, match="expected an object, got list"):
        check_result([raw])
    score = {"accuracy": 0.9, "n": 10, "correct": 9, "ci95": [0.6, 1.0], "macro_f1": 0.88, "macro_f1_ci95": [0.5, 1]}
    c1 = raw | {"validation_scores": {"plain": score},
                "tta": {"mode": "plain", "flip": False, "shift": 0, "chosen_on": "validation accuracy"},
                "training_time_s": 12.5, "precision": "float32", "epochs_run": 3,
                "external": evaluation_json("01234", "01233"), "external_scores": {"plain": score | {"n": 5}},
                "external_by_copy": {"threshold_bits": 8, "with_copy": None, "without_copy": score},
                "goal": {"goal": 0.76}, "provenance": {"seed": 0, "data": {"external": {"source": "test"}}}}
    refs = tables.references_table(c1, raw)
    assert refs["accuracy"].tolist() == [0.9, 0.9, recipe.GOAL_ACCURACY, pytest.approx(0.9)]
    assert refs.iloc[0]["note"] == "external set, n=5; trained 12 s" and refs.iloc[1]["note"].startswith("n=10:")
    card = tables.card_test_scores(c1)
    assert card["n"] == 5 and card["accuracy"] == 0.8 and "with_copy" not in card and card["without_copy"]["n"] == 10
    scores = tables.scores_table(c1)
    assert scores["kept"].tolist() == ["yes", "yes"] and scores["n"].tolist() == [10, 5]


def test_a_longer_ablation_keeps_its_own_results_and_is_compared_with_c1_at_that_budget(tmp_path, capsys):
    """`ablate --epochs 56` must not overwrite the 8-epoch results: its files are named by the budget, and with
    no full-recipe ablation at 56 epochs C1's own 56-epoch result (same recipe, split and seed) is the reference."""
    assert recipe.ablation_result_name("mixup_0.2") == "C1_ablation_mixup_0.2"
    assert recipe.ablation_result_name("mixup_0.2", 56) == "C1_ablation_mixup_0.2_56epochs"
    assert recipe.ablation_result_name("float32", 8, 6000) == "C1_ablation_float32_6000images"
    assert recipe.ablation_table_name(56) == "c1_ablation_56epochs"
    assert recipe.ablation_table_name() == "c1_ablation"
    with pytest.raises(KeyError, match="unknown ablation"):
        recipe.ablation_result_name("mixup")

    def variant(name, epochs, y_pred, flip):
        return _ablation_result(epochs, y_pred, flip) | {"ablation": name, "experiment": "C1"}

    files = {"C1_ablation_champion": variant("champion", 8, "0123", 0.6),
             "C1_ablation_mixup_0.2": variant("mixup_0.2", 8, "0120", 0.55),
             "C1_ablation_mixup_0.2_56epochs": variant("mixup_0.2", 56, "0103", 0.5),
             "C1": _ablation_result(56, "0123", 0.75) | {"experiment": "C1"},  # C1's own 56-epoch run
             "C1_16epochs": _ablation_result(16, "0000", 0.7) | {"experiment": "C1_16epochs"}}
    for name, result in files.items():
        (tmp_path / f"{name}-seed5.json").write_text(json.dumps(result))
    assert records.ablation_budgets(tmp_path, 5) == [(8, None), (56, None)]
    short = records.read_ablation(tmp_path, 5)
    assert list(short) == ["champion", "mixup_0.2"] and short["mixup_0.2"]["validation"]["y_pred"] == "0120"
    longer = records.read_ablation(tmp_path, 5, epochs=56)
    assert list(longer) == ["champion", "mixup_0.2"] and longer["champion"]["validation"]["y_pred"] == "0123"
    assert longer["champion"]["description"] == "the full recipe (the result of C1)"
    assert records.read_ablation(tmp_path, 5, epochs=16) == {}  # no ablation variant at 16 epochs
    budget_tables = records.ablation_tables(tmp_path, 5)
    assert list(budget_tables) == ["c1_ablation", "c1_ablation_56epochs"] and "the result of C1" in budget_tables[
        "c1_ablation_56epochs"][0]
    assert budget_tables["c1_ablation_56epochs"][1]["vs champion (flip TTA)"].tolist() == pytest.approx([0.0, -0.25])
    # C1's result file carries both budgets, each compared with the full recipe of its own budget
    context = records.champion_context(tmp_path, 5, files["C1"])
    assert [row["variant"] for row in context["ablation"]["variants"]] == ["champion", "mixup_0.2"]
    assert context["ablation"]["epochs"] == [8] and context["ablation"]["other_budgets"] == []
    [other] = context["ablation_other_budgets"]
    assert other["epochs"] == [56] and [row["variant"] for row in other["variants"]] == ["champion", "mixup_0.2"]
    assert [row["run"] for row in context["learning_curve"]] == ["ablation budget (full recipe)", "C1_16epochs",
                                                                 "C1"]
    # a variant trained as a candidate to ship (`champion --variant`) is that variant's row at its budget,
    # compared with C1 of the same epochs; it is not a point of the recipe's learning curve
    (tmp_path / "C1_112epochs-seed5.json").write_text(json.dumps(_ablation_result(112, "0123", 0.8)))
    candidate = _ablation_result(112, "0122", 0.78) | {"experiment": "C1_mixup_0.2_112epochs"}
    (tmp_path / "C1_mixup_0.2_112epochs-seed5.json").write_text(json.dumps(candidate))
    at_112 = records.read_ablation(tmp_path, 5, epochs=112)
    assert list(at_112) == ["champion", "mixup_0.2"] and "the result of C1_mixup_0.2_112epochs" in at_112[
        "mixup_0.2"]["description"]
    assert "C1_mixup_0.2_112epochs" not in records.budget_results(tmp_path, 5)
    assert "learning_curve" not in records.champion_context(tmp_path, 5, candidate)
    _print_goal_and_ablation({"tta": {"mode": "flip_tta"}, **context})
    printed = capsys.readouterr().out
    assert "ablation at 8 epochs" in printed and "ablation at 56 epochs" in printed

    code = cli.main(["ablate", "--profile", "smoke", "--variants", "champion,mixup", "--output-dir",
                     str(tmp_path / "out")])
    assert code == 2 and "unknown ablation variant(s) mixup; known: champion" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before any data is read or trained


def test_training_times_read_as_people_say_them():
    assert [tables.duration_text(s) for s in (13.4, 89, 240, 5399, 5760)] == ["13 s", "89 s", "4 min", "90 min",
                                                                             "1.6 h"]


def test_fine_tuning_starts_from_the_shipped_weights_in_its_recipe_and_is_a_run_of_its_own(tmp_path):
    from ferlib.experiments import Experiment
    from ferlib.models import shipped
    from ferlib.training.run_folders import run_key

    card = shipped.shipped_card("fer2013-7")
    trained = Experiment.from_settings(json.loads(json.dumps(card["experiment"])))  # as the card's JSON holds it
    assert trained.settings() == Experiment.from_settings(trained.settings()).settings()
    assert trained.filters == tuple(card["experiment"]["filters"]) and trained.phases[0].epochs == 112
    tuned = recipe.fine_tune_experiment(trained, "fer2013-7", "equalize-smooth", epochs=1)
    assert (tuned.key, tuned.phases[0].epochs, tuned.phases[0].learning_rate, tuned.warmup_epochs) == (
        "C1_finetuned_1ep", 1, recipe.FINE_TUNE_RATE, 1)
    assert (tuned.filters, tuned.crop, tuned.classes, tuned.preprocessing, tuned.init_from) == (
        trained.filters, trained.crop, "fer2013-7", "equalize-smooth", "fer2013-7")
    faces = np.random.default_rng(0).integers(0, 256, (6, 48, 48, 3)).astype("float32")
    ship = keras.models.load_model(shipped.shipped_model_path("fer2013-7"), compile=False)
    np.testing.assert_allclose(train.initial_model(tuned).predict(faces, verbose=0), ship.predict(faces, verbose=0),
                               atol=1e-5)
    fresh = dataclasses.replace(tuned, init_from="")
    assert np.abs(train.initial_model(fresh).predict(faces, verbose=0) - ship.predict(faces, verbose=0)).max() > 1e-3
    label = train.weights_label(tuned, None)
    assert shipped.sha256_of(shipped.shipped_model_path("fer2013-7"))[:12] in label  # another file: another run
    assert run_key(tuned, "fp", 42, label) != run_key(fresh, "fp", 42, train.weights_label(fresh, None))
    with pytest.raises(FileNotFoundError, match="shipped: fer2013-7, fer2013-5"):
        train.initial_model(dataclasses.replace(tuned, init_from="fer2013-9"))
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 256, (14, 48, 48, 3)).astype(np.uint8), np.arange(14) % 7
    run = train.train_experiment(tuned, x, y, x, y, tmp_path / "runs", "fp", batch_size=16, verbose=0)
    assert len(run.history) == 1 and run.weights == label and not run.reused
    assert json.loads((run.run_dir / "settings.json").read_text())["settings"]["init_from"] == "fer2013-7"
    assert run_settings("cpu", output_dir=tmp_path).model_path(tuned.key).name == "cpu_champion_finetuned_1ep.keras"


def test_fine_tuning_on_data_or_a_seed_that_draw_another_split_is_refused_before_training(tmp_path, capsys):
    from ferlib.models import shipped

    data = make_class_tree(tmp_path / "fer" / "train", {f: 3 for f in ("angry", "disgust", "fear", "happy",
                                                                       "neutral", "sad", "surprise")}).parent
    out = tmp_path / "out"
    args = ["champion", "--data", str(data), "--classes", "fer2013-7", "--fine-tune", "equalize-smooth",
            "--output-dir", str(out)]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    fingerprint = shipped.shipped_card("fer2013-7")["data"]["fingerprint"]
    assert f"\nerror: the shipped fer2013-7 learned data with fingerprint {fingerprint}, split by seed 42" in err
    assert "validation faces would include training ones" in err and not (out / "runs").exists()
    assert cli.main([*args, "--variant", "mixup_0.2"]) == 2
    assert "it takes no --variant" in capsys.readouterr().err
