"""Run names: made and read back in one place, the names existing outputs/ folders hold."""
from __future__ import annotations

import pytest

from ferlib.runnames import ABLATION_PREFIX, DISTILLED, RETRAINED, RunName, budget_name, parse_budget, retrained_name


@pytest.mark.parametrize("file_name, name, seed", [
    ("C1-seed42.json", "C1", 42), ("C1_112epochs-seed42.json", "C1_112epochs", 42),
    ("C1_mixup_0.2_112epochs-seed7.json", "C1_mixup_0.2_112epochs", 7),
    ("leakage_audit-seed42.json", "leakage_audit", 42),
    ("C1_ablation_no_mixup_16epochs_2000images-seed43.json", "C1_ablation_no_mixup_16epochs_2000images", 43),
])
def test_result_file_names_round_trip(file_name, name, seed):
    parsed = RunName.parse(file_name)
    assert parsed == RunName(name, seed) and parsed.file == file_name


def test_what_is_not_a_result_file_is_not_parsed():
    assert RunName.parse("C1-seed.json") is None and RunName.parse("notes.json") is None
    assert RunName.parse("C1-seed42.json.tmp") is None


def test_budget_names_and_patterns(tmp_path):
    assert budget_name(112) == "C1_112epochs" and budget_name(56, "mixup_0.2") == "C1_mixup_0.2_56epochs"
    assert parse_budget("C1_112epochs") == (None, 112) and parse_budget("C1_mixup_0.2_56epochs") == ("mixup_0.2", 56)
    assert parse_budget("C1") is None and parse_budget(DISTILLED) is None and parse_budget("V13") is None
    for name in ("C1_112epochs", "C1_mixup_0.2_56epochs", f"{ABLATION_PREFIX}no_mixup", "C1"):
        (tmp_path / RunName(name, 42).file).write_text("{}")
    (tmp_path / RunName("C1_112epochs", 43).file).write_text("{}")
    budgets = sorted(p.name for p in tmp_path.glob(RunName.pattern("C1_", 42, "epochs")))
    assert budgets == ["C1_112epochs-seed42.json", "C1_mixup_0.2_56epochs-seed42.json"]
    assert [p.name for p in tmp_path.glob(RunName.pattern(ABLATION_PREFIX, 42))] == ["C1_ablation_no_mixup-seed42.json"]


def test_a_run_trained_again_with_another_seed_is_named_apart_from_the_recipes_budgets(tmp_path):
    again = retrained_name("C1_112epochs", 43)
    assert again == "C1_112epochs_train43" and parse_budget(again) is None
    assert RETRAINED.fullmatch(again).group("key", "train_seed") == ("C1_112epochs", "43")
    assert RETRAINED.fullmatch(retrained_name("C1", 7)).group("key") == "C1" and not RETRAINED.fullmatch("C1_112epochs")
    (tmp_path / RunName(again, 42).file).write_text("{}")
    assert list(tmp_path.glob(RunName.pattern("C1_", 42, "epochs"))) == []  # not read as a learning-curve point
