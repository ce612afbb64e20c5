"""Every notebook runs headlessly with papermill under the smoke profile and writes its outputs."""
from __future__ import annotations

import json
from pathlib import Path

import papermill as pm
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))

EXPECTED = {
    "01_eda": {"figures": ["class_distribution", "image_sizes_and_modes", "sample_grid"], "results": ["eda"]},
    "02_baseline_cnn": {"figures": ["v1_training_curves", "v1_confusion_matrix"], "results": ["V1"]},
}


def test_every_notebook_has_expectations():
    assert {nb.stem for nb in NOTEBOOKS} == set(EXPECTED)


def test_parameters_cell_comes_first():
    for nb in NOTEBOOKS:
        cells = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        assert "parameters" in cells[0]["metadata"].get("tags", []), nb.name
        assert "profile" in "".join(cells[0]["source"]), nb.name


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_with_smoke_profile(notebook, tmp_path, monkeypatch):
    monkeypatch.setenv("FERLIB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FERLIB_DATA_DIR", raising=False)
    monkeypatch.delenv("FERLIB_EXTERNAL_DIR", raising=False)
    out_dir = tmp_path / "outputs"
    executed = pm.execute_notebook(
        str(notebook), str(tmp_path / notebook.name), cwd=str(notebook.parent), kernel_name="python3",
        parameters={"profile": "smoke", "output_dir": str(out_dir)}, progress_bar=False,
    )
    text = json.dumps(executed["cells"])
    assert "EMBEDDED SYNTHETIC DATA" in text  # the banner is shown when no real data is configured
    expected = EXPECTED[notebook.stem]
    for fig in expected["figures"]:
        assert (out_dir / "figures" / notebook.stem / f"{fig}.png").stat().st_size > 5000, fig
    for name in expected["results"]:
        result = json.loads((out_dir / "results" / "smoke" / f"{name}-seed42.json").read_text())
        prov = result["provenance"]
        assert prov["profile"] == "smoke" and prov["seed"] == 42 and prov["git_commit"]
        assert prov["data"]["internal"]["embedded"] is True and prov["data"]["internal"]["fingerprint"]
