"""Notebooks 07 (leakage audit) and 08 (summary) with the cpu profile on the shared real FER-2013 data.

Run through run_all.sh as a user would. Nothing is trained here: 07 audits train against test (and the
train/validation split) and says clearly that no champion exists yet; 08 summarises whatever cpu results
the output folder holds (none). Both reports must still show their figures and no shared image.
"""
from __future__ import annotations

import json

import pytest

from ferlib.evaluation.summary import CONCLUSIONS
from ferlib.reports.catalog import CATALOG
from ferlib.reports.check import check_notebook
from tests.conftest import FER2013, data_folder
from tests.test_notebooks import run_all

pytestmark = [
    pytest.mark.realdata, pytest.mark.notebook,
    pytest.mark.skipif(not FER2013.is_dir(), reason=f"real FER-2013 folder not present at {FER2013}"),
]


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cpu_fer2013")
    proc = run_all(root / "outputs", root / "cache", "--profile", "cpu", "--notebooks", "07,08",
                   "--data", str(FER2013), "--external", str(FER2013))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return root


def test_leakage_audit_finds_fer2013s_own_train_test_copies_and_shows_no_images(cpu_run):
    out = cpu_run / "outputs"
    result = json.loads((data_folder(out, "results", "cpu") / "leakage_audit-seed42.json").read_text())
    external = result["summaries"]["internal_vs_external"]
    assert external["n_right"] > 2000 and 0.05 < external["right_flagged_fraction"] < 0.5
    executed = (out / "notebooks" / "07_leakage_audit.ipynb").read_text()
    assert result["champion"] is None and "run notebook 05" in executed
    assert not (out / "figures" / "07_leakage_audit" / "leakage_example_pairs.png").exists()
    assert (out / "figures" / "07_leakage_audit" / "leakage_fractions.png").stat().st_size > 5000


def test_summary_runs_on_the_cpu_results_and_judges_generalisation_untested(cpu_run):
    out = cpu_run / "outputs"
    summary = json.loads((data_folder(out, "results", "cpu") / "summary-seed42.json").read_text())
    verdicts = {row["verdict"] for row in summary["numbers"]}
    assert verdicts == {"not run"}  # nothing was trained in this folder
    generalisation = next(c for c in summary["conclusions"] if c["conclusion"] == CONCLUSIONS["generalisation"])
    assert generalisation["verdict"] == "not tested"
    assert (data_folder(out, "tables", "cpu") / "study_vs_run_summary.csv").is_file()


@pytest.mark.parametrize("name", ["07_leakage_audit", "08_summary"])
def test_real_data_reports_show_their_figures_and_relative_paths(cpu_run, name):
    check = check_notebook(CATALOG[name], cpu_run / "outputs", forbidden_paths=[str(cpu_run)])
    assert check.ok, "\n".join(check.problems)
    report = (cpu_run / "outputs" / "reports" / f"{name}.nocode.html").read_text()
    assert "../shared/data/fer2013" in report and str(FER2013) not in report  # the data root, relative
    assert "Real data" in report
