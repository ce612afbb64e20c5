"""Every notebook runs headlessly with papermill under the smoke profile and writes its outputs.

The notebooks share one output folder, in order, as under run_all.sh: notebook 05 reuses the V13 run
that 04 trained, and 06 loads the champion that 05 saved.
"""
from __future__ import annotations

import json
from pathlib import Path

import papermill as pm
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))

EXPECTED = {
    "01_eda": {"figures": ["class_distribution", "image_sizes_and_modes", "sample_grid"], "results": ["eda"]},
    "02_baseline_cnn": {"figures": ["v1_training_curves", "v1_confusion_matrix"], "results": ["V1"]},
    "03_augmentation_ablations": {"figures": ["table1_accuracy_bars"], "results": ["V4", "V8", "V9", "V10", "V11"],
                                  "tables": ["table1_augmentation", "table1_seeds", "table1_mcnemar"]},
    "04_architecture_comparison": {"figures": ["architecture_accuracy_bars", "architecture_f1_heatmap"],
                                   "results": ["V5", "V7", "V12", "V13"],
                                   "tables": ["architecture_comparison", "architecture_seeds", "architecture_mcnemar"]},
    "05_champion_v13": {"figures": ["figure3_v13_curves", "figure4_v13_confusion", "v13_reliability_validation",
                                    "v13_coverage_validation"], "results": ["V13"],
                        "tables": ["table2_v13_validation"]},
    "06_external_fer2013": {"figures": ["v13_external_confusion"], "results": ["V13_external"],
                            "tables": ["table3_v13_external"]},
    "07_leakage_audit": {"figures": ["leakage_fractions", "leakage_example_pairs"], "results": ["leakage_audit"],
                         "tables": ["leakage_counts"]},
    "08_summary": {"figures": ["study_vs_run_forest"], "results": ["summary"],
                   "tables": ["study_vs_run_summary", "study_conclusions"]},
    "09_real_photos": {"figures": ["detections", "gradcam_least_most_confident", "ood_reliability", "ood_coverage"],
                       "results": ["real_photos"], "tables": ["real_photos_predictions", "real_photos_ood"]},
    "10_cpu_champion": {"figures": ["c1_training_curves", "c1_external_confusion"], "results": ["C1"],
                        "tables": ["c1_scores"]},
}


def test_every_notebook_has_expectations():
    assert {nb.stem for nb in NOTEBOOKS} == set(EXPECTED)


def test_parameters_cell_comes_first():
    for nb in NOTEBOOKS:
        cells = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        assert "parameters" in cells[0]["metadata"].get("tags", []), nb.name
        assert "profile" in "".join(cells[0]["source"]), nb.name


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory):
    """One output and cache folder for all notebooks of this module, like one run_all.sh run."""
    root = tmp_path_factory.mktemp("smoke_run")
    return {"out": root / "outputs", "cache": root / "cache", "done": set()}


def execute(notebook: Path, shared_run: dict, monkeypatch) -> dict:
    monkeypatch.setenv("FERLIB_CACHE_DIR", str(shared_run["cache"]))
    monkeypatch.delenv("FERLIB_DATA_DIR", raising=False)
    monkeypatch.delenv("FERLIB_EXTERNAL_DIR", raising=False)
    executed = pm.execute_notebook(
        str(notebook), str(shared_run["out"] / "executed" / notebook.name), cwd=str(notebook.parent),
        kernel_name="python3", parameters={"profile": "smoke", "output_dir": str(shared_run["out"])},
        progress_bar=False,
    )
    shared_run["done"].add(notebook.stem)
    return executed


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_with_smoke_profile(notebook, shared_run, monkeypatch):
    (shared_run["out"] / "executed").mkdir(parents=True, exist_ok=True)
    needs_champion = ("06_external_fer2013", "07_leakage_audit", "09_real_photos")
    if notebook.stem in needs_champion and "05_champion_v13" not in shared_run["done"]:
        execute(notebook.with_name("05_champion_v13.ipynb"), shared_run, monkeypatch)  # they load 05's model
    executed = execute(notebook, shared_run, monkeypatch)
    assert "EMBEDDED SYNTHETIC DATA" in json.dumps(executed["cells"])  # banner shown without real data
    out = shared_run["out"]
    expected = EXPECTED[notebook.stem]
    for fig in expected["figures"]:
        assert (out / "figures" / notebook.stem / f"{fig}.png").stat().st_size > 5000, fig
    for table in expected.get("tables", []):
        assert len((out / "tables" / "smoke" / f"{table}.csv").read_text().splitlines()) >= 3, table
    for name in expected["results"]:
        result = json.loads((out / "results" / "smoke" / f"{name}-seed42.json").read_text())
        prov = result["provenance"]
        assert prov["profile"] == "smoke" and prov["seed"] == 42 and prov["git_commit"] and prov["weights"]
        assert all(d["embedded"] is True and d["fingerprint"] for d in prov["data"].values() if "embedded" in d)
    if notebook.stem == "09_real_photos":
        result = json.loads((out / "results" / "smoke" / "real_photos-seed42.json").read_text())
        assert result["photos"]["files"] == 8 and result["detection"]["generated"]["recall"] > 0.3
        assert set(result["ood"]["settings"]) == {"plain resize", "plain resize + temperature", "face crop",
                                                  "face crop + temperature"}
    if notebook.stem == "05_champion_v13":
        card = json.loads((out / "models" / "smoke" / "v13_champion.json").read_text())
        assert card["classes"] == ["Angry", "Fear", "Happy", "Sad", "Surprise"] and card["input"]["size"] == 32
        assert card["weights"] == "random" and card["metrics"]["n"] > 0
        assert card["calibration"]["fitted_on"] == "validation split" and card["calibration"]["temperature"] > 0
    if notebook.stem == "07_leakage_audit":  # the planted copies are found; the champion is scored on both parts
        result = json.loads((out / "results" / "smoke" / "leakage_audit-seed42.json").read_text())
        assert result["planted_check"]["found"] == result["planted_check"]["planted"] > 0
        champion = result["champion"]
        assert champion["full"]["n"] == champion["non_overlapping"]["n"] + champion["n_overlapping"] > 0
        assert champion["n_overlapping"] > 0
    if notebook.stem == "10_cpu_champion":
        card = json.loads((out / "models" / "smoke" / "cpu_champion.json").read_text())
        assert card["weights"] == "none (trained from scratch)" and card["experiment"]["tta_flip"] is True
        result = json.loads((out / "results" / "smoke" / "C1-seed42.json").read_text())
        scores, validation = result["external_scores"], result["validation_scores"]
        assert set(scores) == set(validation) == {"plain", "flip_tta", "crops_flip_tta"} and scores["flip_tta"]["n"] > 0
        kept = max(validation, key=lambda mode: validation[mode]["accuracy"])  # the test-time mode chosen on validation
        assert card["tta"] == result["tta"] and validation[card["tta"]["mode"]]["accuracy"] == validation[kept]["accuracy"]
        assert result["external"]["accuracy"] == scores[card["tta"]["mode"]]["accuracy"]
        by_copy = result["external_by_copy"]  # the embedded data plants copies of external images
        assert by_copy["with_copy"]["n"] > 0 and by_copy["with_copy"]["n"] + by_copy["without_copy"]["n"] == result["external"]["n"]
        assert by_copy["with_copy"]["correct"] + by_copy["without_copy"]["correct"] == round(
            result["external"]["accuracy"] * result["external"]["n"])
