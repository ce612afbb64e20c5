"""Notebooks 03-06 under the `full` profile (the GPU run's code path) on a CPU, on a tiny generated slice.

Kept in its own file: it is the suite's longest test, and pytest-xdist gives each worker whole files.
"""
from __future__ import annotations

import json

import pytest

from tests.conftest import data_folder

pytestmark = pytest.mark.gpu_path


@pytest.mark.notebook
def test_full_profile_notebooks_run_their_code_path_on_a_tiny_slice(tmp_path):
    """Notebooks 03-06 under `full` (96 px, the study's layer indices and two phases, mixed precision where a GPU
    is, XLA), random weights, every phase capped at one epoch and one seed: the GPU run's code, on a CPU."""
    from ferlib.data.embedded import write_embedded_dataset
    from ferlib.reports.catalog import CATALOG
    from ferlib.reports.check import check_notebook
    from tests.test_notebooks import run_all

    data = write_embedded_dataset(tmp_path / "data", 80, 30, seed=0)  # the code path, not the numbers
    out = tmp_path / "outputs"
    proc = run_all(out, tmp_path / "cache", "--profile", "full", "--allow-cpu", "--weights", "random",
                   "--max-epochs", "1", "--seeds", "1", "--notebooks", "03,04,05,06",
                   "--data", str(data.internal_dir), "--external", str(data.external_dir))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    for name in ("03_augmentation_ablations", "04_architecture_comparison", "05_champion_v13", "06_external_fer2013"):
        check = check_notebook(CATALOG[name], out, forbidden_paths=[str(out), str(tmp_path / "cache")])
        assert check.ok, "\n".join(check.problems)
    v13 = json.loads((data_folder(out, "results", "full") / "V13-seed42.json").read_text())
    assert v13["settings"]["image_size"] == 96 and v13["provenance"]["max_epochs"] == 1
    assert [p["trainable_from"] for p in v13["settings"]["phases"]] == [None, 140]  # the study's layer index
    assert v13["history"]["phase"] == [1, 2] and v13["provenance"]["weights"] == "random"
    card = (out / "reports" / "05_champion_v13.nocode.html").read_text()
    assert "epochs capped at 1" in card
    results_dir = data_folder(out, "results", "full")
    summary_reason = json.loads((results_dir / "V13_external-seed42.json").read_text())["provenance"]
    assert summary_reason["max_epochs"] == 1  # never mistaken for a full run: the summary calls it not comparable
    for key in ("V5", "V7", "V13"):
        result = json.loads((data_folder(out, "results", "full") / f"{key}-seed42.json").read_text())
        assert len(set(result["history"]["phase"])) == 2, key
