"""Notebooks 07 (leakage audit) and 08 (summary) with the cpu profile on the shared real FER-2013 data.

Nothing is trained here: 07 audits train against test (and the train/validation split) and says clearly
that no cpu champion exists yet; 08 summarises whatever cpu results the output folder holds (none).
"""
from __future__ import annotations

import json

import papermill as pm
import pytest

from tests.conftest import FER2013
from tests.test_notebooks import NOTEBOOKS

pytestmark = [
    pytest.mark.realdata, pytest.mark.notebook,
    pytest.mark.skipif(not FER2013.is_dir(), reason=f"real FER-2013 folder not present at {FER2013}"),
]


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cpu_fer2013")
    out = root / "outputs"
    executed = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FERLIB_CACHE_DIR", str(root / "cache"))
        for stem in ("07_leakage_audit", "08_summary"):
            notebook = next(nb for nb in NOTEBOOKS if nb.stem == stem)
            executed[stem] = pm.execute_notebook(
                str(notebook), str(root / f"{stem}.ipynb"), cwd=str(notebook.parent), kernel_name="python3",
                parameters={"profile": "cpu", "output_dir": str(out), "data_dir": str(FER2013),
                            "external_dir": str(FER2013)}, progress_bar=False)
    return out, executed


def test_leakage_audit_finds_fer2013s_own_train_test_copies_and_shows_no_images(cpu_run):
    out, executed = cpu_run
    result = json.loads((out / "results" / "cpu" / "leakage_audit-seed42.json").read_text())
    external = result["summaries"]["internal_vs_external"]
    assert external["n_right"] > 2000 and 0.05 < external["right_flagged_fraction"] < 0.5
    assert result["champion"] is None and "run notebook 05" in json.dumps(executed["07_leakage_audit"]["cells"])
    assert not (out / "figures" / "07_leakage_audit" / "leakage_example_pairs.png").exists()
    assert (out / "figures" / "07_leakage_audit" / "leakage_fractions.png").stat().st_size > 5000


def test_summary_runs_on_the_cpu_results_and_judges_generalisation_untested(cpu_run):
    out, _ = cpu_run
    summary = json.loads((out / "results" / "cpu" / "summary-seed42.json").read_text())
    verdicts = {row["verdict"] for row in summary["numbers"]}
    assert verdicts == {"not run"}  # nothing was trained in this folder
    generalisation = [c for c in summary["conclusions"] if c["conclusion"].startswith("91%")][0]
    assert generalisation["verdict"] == "not tested"
    assert (out / "tables" / "cpu" / "study_vs_run_summary.csv").is_file()
