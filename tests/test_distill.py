"""Seed ensembles of C1 and distillation into one C1-sized network: targets, ensemble scoring, the whole run."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from ferlib.champion import recipe, records, tables
from ferlib.classes import STUDY
from ferlib.evaluation import test_time
from ferlib.evaluation.evaluate import Evaluation
from ferlib.experiments import Phase, get_experiment
from ferlib.training import teachers, train


def test_targets_mix_the_one_hot_label_with_the_teachers_probabilities():
    labels = np.array([0, 3, 4])
    teacher = np.array([[0.5, 0.5, 0, 0, 0], [0, 0, 0, 0.2, 0.8], [0.2, 0.2, 0.2, 0.2, 0.2]])
    half = teachers.distillation_targets(labels, teacher, 0.5)
    assert half.dtype == np.float32 and np.allclose(half.sum(axis=1), 1)
    assert half[0].tolist() == pytest.approx([0.75, 0.25, 0, 0, 0])
    assert half[1].tolist() == pytest.approx([0, 0, 0, 0.6, 0.4])
    assert teachers.distillation_targets(labels, teacher, 0.0).argmax(axis=1).tolist() == labels.tolist()
    assert teachers.distillation_targets(labels, teacher, 1.0) == pytest.approx(teacher)
    with pytest.raises(ValueError, match="teacher probabilities of shape"):
        teachers.distillation_targets(labels, teacher[:2], 0.5)
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        teachers.distillation_targets(labels, teacher, 1.5)


def test_ensemble_averages_probabilities_of_members_scored_on_the_same_images():
    y = np.array([0, 1, 2])
    a = Evaluation(y, np.array([0, 0, 2]), np.array([[.6, .4, 0, 0, 0], [.6, .4, 0, 0, 0], [0, 0, 1, 0, 0]]),
                   STUDY.names)
    b = Evaluation(y, np.array([1, 1, 2]), np.array([[.3, .7, 0, 0, 0], [0, 1., 0, 0, 0], [0, 0, 1, 0, 0]]),
                   STUDY.names)
    both = test_time.ensemble_evaluation([a, b])
    assert both.probs[0].tolist() == pytest.approx([.45, .55, 0, 0, 0])
    assert both.y_pred.tolist() == [1, 1, 2]  # the second member's confidence wins the first image
    with pytest.raises(ValueError, match="different images"):
        test_time.ensemble_evaluation([a, Evaluation(y[::-1], a.y_pred, a.probs, STUDY.names)])


def test_members_train_with_their_own_seed_and_the_student_is_a_distinct_validated_recipe():
    assert [recipe.member_seed(42, i) for i in range(3)] == [42, 43, 44]
    assert recipe.member_name(0) == "C1_member0" and recipe.member_name(2) == "C1_member2"
    student = recipe.student_experiment("cpu", teachers=3, weight=0.5)
    c1 = get_experiment("C1", "cpu")
    assert student.key == "C1_distilled" and (student.distill, student.teachers) == (0.5, 3)
    assert student.phases == c1.phases and student.filters == c1.filters  # the shipped size and schedule
    assert {"distill", "teachers"} <= set(student.settings()) and "distill" not in c1.settings()
    assert train.run_key(student, "data", 42) != train.run_key(c1, "data", 42)
    with pytest.raises(ValueError, match="go together"):
        dataclasses.replace(c1, distill=0.5)


def test_training_on_probability_targets_uses_them_as_given(tmp_path):
    """A distillation run trains on the targets it is given: a network taught that every image is class 2
    predicts class 2, although the integer labels say otherwise."""
    from tests.conftest import tiny_data

    x_train, y_train = tiny_data(n=60, size=24, seed=3)
    x_val, y_val = tiny_data(n=20, size=24, seed=4)
    c1 = get_experiment("C1", "smoke")
    student = dataclasses.replace(c1, image_size=24, filters=(4, 8), crop=0, distill=1.0, teachers=1,
                                  augmentation="none", label_smoothing=0.0, warmup_epochs=0,
                                  phases=(Phase(epochs=6, learning_rate=1e-2, monitor="val_accuracy"),))
    targets = teachers.distillation_targets(y_train, np.tile(np.eye(5)[2], (len(y_train), 1)), 1.0)
    run = train.train_experiment(student, x_train, targets, x_val, y_val, tmp_path / "runs", "fp", seed=1,
                                 batch_size=16, verbose=0, jit_compile=False)
    from ferlib.evaluation.evaluate import predict_probs

    assert (predict_probs(run.model, x_val, 16).argmax(axis=1) == 2).mean() > 0.9


@pytest.mark.slow
def test_distill_command_scores_the_ensemble_and_saves_a_student_compared_on_validation(tmp_path, capsys,
                                                                                       monkeypatch):
    """`python -m ferlib distill`: members trained on the champion's split (the champion reused as member 0),
    the ensemble scored in a mode chosen on validation, the student trained, scored, tested against the
    champion with McNemar and saved with its card; a rerun reuses every finished run."""
    from ferlib import cli
    from ferlib.models import modelcard
    from tests.conftest import data_folder, make_class_tree

    monkeypatch.setenv("FERLIB_CACHE_DIR", str(tmp_path / "cache"))
    classes = ("Angry", "Fear", "Happy", "Sad", "Suprise")
    internal = make_class_tree(tmp_path / "hfe" / "Data", {c: 12 for c in classes})
    external = make_class_tree(tmp_path / "ext" / "Data", {c: 4 for c in classes}, start_seed=500)
    args = ["distill", "--profile", "smoke", "--data", str(internal.parent), "--external", str(external.parent),
            "--output-dir", str(tmp_path / "out"), "--teachers", "2"]
    common = args[1:-2]
    assert cli.main(["champion", *common]) == 0  # the usual order: the champion first, reused as member 0
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    results = data_folder(tmp_path / "out", "results", "smoke")
    result = json.loads((results / "C1_distilled-seed42.json").read_text())
    assert {p.name for p in results.glob("*.json")} >= {"C1-seed42.json", "C1_member1-seed42.json"}
    assert json.loads((results / "C1_member1-seed42.json").read_text())["train_seed"] == 43
    member0 = json.loads((results / "C1_member0-seed42.json").read_text())
    champion = json.loads((results / "C1-seed42.json").read_text())
    assert member0["reused_finished_run"] and member0["run_dir"] == champion["run_dir"]  # the champion's own run
    assert "external_scores" in champion  # its result file left as the champion command wrote it
    ensemble = result["ensemble"]
    assert ensemble["members"] == 2 and ensemble["train_seeds"] == [42, 43]
    assert ensemble["tta"]["chosen_on"] == "validation accuracy" and ensemble["external"]["n"] == 20
    assert result["settings"]["distill"] == 0.5 and result["teachers"]["members"] == 2
    versus = result["versus_champion"]
    assert versus["student_vs_champion"]["n"] == versus["champion_validation"]["n"] == result["validation"]["n"]
    assert 0 <= versus["student_vs_champion"]["p_value"] <= 1
    model_path = data_folder(tmp_path / "out", "models", "smoke") / "cpu_distilled.keras"
    card = modelcard.load_with_card(model_path).card
    assert card["experiment"]["key"] == "C1_distilled" and card["test"]["n"] == 20
    assert f"saved {model_path}" in printed
    table = tables.distillation_table(result)  # notebook 10's table, built from the result file
    assert len(table) == 4 and table["networks per face"].tolist() == [1, 1, 2, 1]
    assert table.iloc[2]["validation"] == ensemble["validation_scores"][ensemble["tta"]["mode"]]["accuracy"]
    assert table.iloc[3]["external"] == result["external_scores"][result["tta"]["mode"]]["accuracy"]
    assert records.read_distillation(results, 42) == result and records.read_distillation(results, 7) is None
    assert cli.main(args) == 0  # every run reused: the same student
    again = json.loads((results / "C1_distilled-seed42.json").read_text())
    assert again["reused_finished_run"] and again["validation"]["y_pred"] == result["validation"]["y_pred"]

    # shipping the student: compared with the shipped model on the validation split both were chosen on
    from ferlib.models import shipped, shipping

    champion_path = model_path.parent / "cpu_champion.keras"
    comparison = shipping.compare_on_validation(model_path, internal.parent, incumbent=champion_path)
    assert comparison["split"]["n"] == versus["champion_validation"]["n"]
    assert comparison["candidate"]["accuracy"] == pytest.approx(card["metrics"]["accuracy"])  # the card's views
    assert comparison["shipped"]["accuracy"] == pytest.approx(versus["champion_validation"]["accuracy"])
    assert comparison["mcnemar"] == pytest.approx(versus["student_vs_champion"])
    monkeypatch.setattr(shipped, "ASSETS", tmp_path / "assets")
    assert cli.main(["ship", str(champion_path)]) == 0
    capsys.readouterr()
    code = cli.main(["ship", str(model_path), "--data", str(internal.parent)])
    out, err = capsys.readouterr()
    assert "McNemar p =" in out
    shipped_card = json.loads((tmp_path / "assets" / "fer2013-5.json").read_text())
    if comparison["difference"] > 0 and comparison["mcnemar"]["p_value"] < shipped.SHIP_ALPHA:
        assert code == 0 and shipped_card["shipped"]["chosen_over_previous"]["difference"] > 0
    else:  # not (significantly) better on validation: refused, the champion stays
        assert code == 3 and "better on validation" in err and "McNemar p =" in err
        assert shipped_card["experiment"]["key"] == "C1"
        assert cli.main(["ship", str(model_path), "--data", str(internal.parent), "--force"]) == 0
    shipped_card = json.loads((tmp_path / "assets" / "fer2013-5.json").read_text())
    assert shipped_card["experiment"]["key"] == "C1_distilled"
    assert shipped_card["preprocessing"]["learned_with"] == "equalize"  # its inference one chosen on validation
    assert shipped_card["calibration"]["n"] == comparison["split"]["n"]
    other_split = json.loads(modelcard.card_path(champion_path).read_text())
    other_split["provenance"]["seed"] = 7
    modelcard.card_path(champion_path).write_text(json.dumps(other_split))
    with pytest.raises(ValueError, match="same validation split"):
        shipping.compare_on_validation(model_path, internal.parent, incumbent=champion_path)


def test_only_a_significantly_better_model_ships():
    """A candidate replaces the shipped model only when it is more accurate on validation with McNemar p < 0.05:
    a difference within noise would churn the model users rely on."""
    from ferlib.models.shipped import ship_verdict

    def comparison(difference, p):
        return {"difference": difference, "mcnemar": {"p_value": p}}

    assert ship_verdict(comparison(0.010, 0.044))[0]
    better, why = ship_verdict(comparison(0.002, 0.65))
    assert not better and "not significantly better" in why and "p = 0.65" in why
    assert not ship_verdict(comparison(-0.02, 0.001))[0] and "not better" in ship_verdict(comparison(-0.02, 0.001))[1]
    assert not ship_verdict(comparison(0.0, 1.0))[0]
