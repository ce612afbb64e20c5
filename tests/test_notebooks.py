"""Every notebook runs headlessly through run_all.sh (smoke profile), and its reports show every figure.

One `bash run_all.sh --profile smoke --output <tmp>` run executes all notebooks in order, as a user's run
does (05 saves the champion that 06, 07 and 09 load; 08 runs last). The tests then check what it left:
result files with provenance, tables, figures on disk, and the executed notebook and both HTML reports of
each notebook, which must embed every figure of the catalog (the same PNG as on disk, not blank) and
show no TensorFlow log line, warning, traceback or path of the temporary folder the run used.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from ferlib.evaluation.chance import NO_EVIDENCE, chance_check
from ferlib.evaluation.summary import CONCLUSIONS
from ferlib.reports.catalog import CATALOG
from ferlib.reports.check import check_notebook
from tests.conftest import data_folder

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SMOKE_NOTEBOOKS = [n for n in sorted(CATALOG) if not n.startswith(("03_", "04_"))]


def test_catalog_lists_every_notebook():
    assert {nb.stem for nb in NOTEBOOKS} == set(CATALOG)
    assert all(spec.path.is_file() for spec in CATALOG.values())


def test_parameters_cell_comes_first_and_figures_go_through_the_helper():
    for nb in NOTEBOOKS:
        cells = json.loads(nb.read_text())["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        assert "parameters" in code[0]["metadata"].get("tags", []), nb.name
        assert "profile" in "".join(code[0]["source"]), nb.name
        text = "".join("".join(c["source"]) for c in code)
        assert "save_fig" not in text and "plt.show" not in text, nb.name  # one way to show and save a figure
        for figure in CATALOG[nb.stem].figures:
            assert f'"{figure}"' in text, f"{nb.name} never draws {figure}"


def run_all(out: Path, cache: Path, *args: str) -> subprocess.CompletedProcess:
    """Run run_all.sh into `out` (cache in `cache`), without any real data from the environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("FERLIB_DATA_DIR", "FERLIB_EXTERNAL_DIR",
                                                           "FERLIB_PROGRESS_LOG")}
    env["FERLIB_CACHE_DIR"] = str(cache)
    return subprocess.run(["bash", str(ROOT / "run_all.sh"), "--output", str(out), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One smoke run of every notebook, as a user runs them."""
    root = tmp_path_factory.mktemp("smoke_run")
    # 03 and 04 (the ablations) run under the full profile's code path in tests/test_gpu_path.py
    proc = run_all(root / "outputs", root / "cache", "--profile", "smoke", "--notebooks", ",".join(SMOKE_NOTEBOOKS))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return {"root": root, "out": root / "outputs", "log": proc.stdout + proc.stderr}


@pytest.mark.notebook
@pytest.mark.parametrize("name", SMOKE_NOTEBOOKS)
def test_notebook_writes_its_results_tables_and_figures(name, smoke_run):
    out, spec = smoke_run["out"], CATALOG[name]
    executed = json.loads((out / "notebooks" / f"{name}.ipynb").read_text())
    assert "EMBEDDED SYNTHETIC DATA" in json.dumps(executed["cells"])  # the run card says so without real data
    for fig in spec.figures:
        assert (out / "figures" / name / f"{fig}.png").stat().st_size > 5000, fig
    for table in spec.tables:
        assert len((data_folder(out, "tables", "smoke") / f"{table}.csv").read_text().splitlines()) >= 2, table
    for result_name in spec.results:
        result = json.loads((data_folder(out, "results", "smoke") / f"{result_name}-seed42.json").read_text())
        prov = result["provenance"]
        assert prov["profile"] == "smoke" and prov["seed"] == 42 and prov["git_commit"] and prov["weights"]
        assert "cores" in prov["machine"]  # the CPU model beside every timing
        assert all(d["embedded"] is True and d["fingerprint"] for role, d in prov["data"].items()
                   if "embedded" in d and role != "shipped_model")  # 09 names the shipped model's own data apart


@pytest.mark.notebook
@pytest.mark.parametrize("name", SMOKE_NOTEBOOKS)
def test_reports_show_every_figure_and_no_noise(name, smoke_run):
    spec = CATALOG[name]
    # the developers' data folder (a shipped card names where it was trained) is no path of a user's
    check = check_notebook(spec, smoke_run["out"], forbidden_paths=[str(smoke_run["root"]), "../shared"])
    assert check.ok, "\n".join(check.problems)
    expected = len(spec.figures)
    assert check.figures == {"notebook": check.figures["notebook"], "with code": check.figures["notebook"],
                             "no code": check.figures["notebook"]}
    assert check.figures["notebook"] >= expected > 0
    nocode = (smoke_run["out"] / "reports" / f"{name}.nocode.html").read_text()
    assert "ferlib-run-card" in nocode and "wall time" in nocode and "machine" in nocode
    assert "running interactively" not in nocode  # run_all.sh filled in the measured wall time


@pytest.mark.notebook
def test_optional_figures_are_drawn_for_generated_data(smoke_run):
    for name in ("01_eda", "07_leakage_audit", "09_real_photos"):
        drawn = {p.stem for p in (smoke_run["out"] / "figures" / name).glob("*.png")}
        assert set(CATALOG[name].optional_figures) & drawn, name


@pytest.mark.notebook
def test_progress_goes_to_the_terminal_not_the_reports(smoke_run):
    assert re.search(r"V1 phase1 epoch 1/1: .*val_accuracy", smoke_run["log"])  # shown while run_all.sh runs
    # which backbone weights the run uses, and why, is said before any notebook starts
    assert smoke_run["log"].index("backbone weights: ") < smoke_run["log"].index("running 01_eda")
    log = (smoke_run["out"] / "logs" / "02_baseline_cnn.log").read_text()
    # TensorFlow's start-up lines (whichever this CPU gets) go to the log too: tests/test_reports.py checks how
    assert "epoch 1/1" in log
    report = (smoke_run["out"] / "reports" / "02_baseline_cnn.html").read_text()
    assert "epoch 1/1" not in report and "trained 1 epoch in" in report


@pytest.mark.notebook
def test_index_links_every_report_and_shows_the_verdicts(smoke_run):
    index = (smoke_run["out"] / "reports" / "index.html").read_text()
    links = set(re.findall(r"href='([^']+\.html)'", index))
    for name in CATALOG:  # every report that exists is linked; the others are listed as not run
        ran = name in SMOKE_NOTEBOOKS
        assert ({f"{name}.html", f"{name}.nocode.html"} <= links) == ran, name
        assert (smoke_run["out"] / "reports" / f"{name}.nocode.html").is_file() == ran
        listed_as_not_run = re.search(rf"<td>{name[:2]}</td><td>[^<]*</td><td class='small'>not run</td>", index)
        assert bool(listed_as_not_run) != ran, name
    assert "Result:" not in index and "(no headline)" not in index  # every notebook gave its one line
    for conclusion in CONCLUSIONS.values():
        assert conclusion.split(":")[0] in index
    assert "Every number the study reports" in index and "not comparable" in index
    assert "Embedded synthetic data" in index


@pytest.mark.notebook
def test_notebook_specific_outputs(smoke_run):
    out = smoke_run["out"]
    result = json.loads((data_folder(out, "results", "smoke") / "real_photos-seed42.json").read_text())
    assert result["photos"]["files"] == 8 and result["detection"]["generated"]["recall"] > 0.3
    assert set(result["ood"]["settings"]) == {"plain resize", "plain resize + temperature", "face crop",
                                              "face crop + temperature"}
    card = json.loads((data_folder(out, "models", "smoke") / "v13_champion.json").read_text())
    assert card["classes"] == ["Angry", "Fear", "Happy", "Sad", "Surprise"] and card["input"]["size"] == 32
    assert card["weights"] == "random" and card["metrics"]["n"] > 0
    assert card["calibration"]["fitted_on"] == "validation split" and card["calibration"]["temperature"] > 0
    leak = json.loads((data_folder(out, "results", "smoke") / "leakage_audit-seed42.json").read_text())
    assert leak["planted_check"]["found"] == leak["planted_check"]["planted"] > 0  # the planted copies are found
    champion = leak["champion"]
    assert champion["full"]["n"] == champion["non_overlapping"]["n"] + champion["n_overlapping"] > 0
    assert champion["n_overlapping"] > 0
    card = json.loads((data_folder(out, "models", "smoke") / "cpu_champion.json").read_text())
    assert card["weights"] == "none (trained from scratch)" and card["experiment"]["tta_flip"] is True
    assert card["calibration"]["fitted_on"] == "validation split"  # C1 abstains like V13 does
    c1 = json.loads((data_folder(out, "results", "smoke") / "C1-seed42.json").read_text())
    scores, validation = c1["external_scores"], c1["validation_scores"]
    assert set(scores) == set(validation) == {"plain", "flip_tta", "crops_flip_tta"} and scores["flip_tta"]["n"] > 0
    kept = max(validation, key=lambda mode: validation[mode]["accuracy"])  # the test-time mode chosen on validation
    assert card["tta"] == c1["tta"] and validation[card["tta"]["mode"]]["accuracy"] == validation[kept]["accuracy"]
    assert c1["external"]["accuracy"] == scores[card["tta"]["mode"]]["accuracy"]
    by_copy = c1["external_by_copy"]  # the embedded data plants copies of external images
    assert (by_copy["with_copy"]["n"] > 0
            and by_copy["with_copy"]["n"] + by_copy["without_copy"]["n"] == c1["external"]["n"])
    assert by_copy["with_copy"]["correct"] + by_copy["without_copy"]["correct"] == round(
        c1["external"]["accuracy"] * c1["external"]["n"])
    # 09 shows the shipped model: this run's V13 learned from generated faces (and is at chance in smoke)
    assert result["model_role"] == "shipped" and "generated faces" in result["model_choice"]
    real = result["real_photos"]  # the public-domain portrait: one face, found and classified
    assert [Path(r["path"]).name for r in real] == ["astronaut_eileen_collins.jpg"] and len(real[0]["faces"]) == 1
    summary = json.loads((data_folder(out, "results", "smoke") / "summary-seed42.json").read_text())
    v13 = json.loads((data_folder(out, "results", "smoke") / "V13-seed42.json").read_text())
    ood = next(c for c in summary["conclusions"] if c["conclusion"] == CONCLUSIONS["ood"])
    if chance_check(v13["validation"]).at_chance:  # the rule end to end: nothing judged on a model at chance
        assert ood["verdict"] == NO_EVIDENCE and "no better than always answering" in ood["evidence"]
    else:  # 08 ran after 09, which used another model than this V13: the claim is not judged on it
        assert ood["verdict"] == "not tested: notebook 09 did not use this run's V13"


@pytest.mark.notebook
def test_a_run_on_other_data_keeps_its_own_results_and_summary(smoke_run, tmp_path):
    """Notebooks 02 and 08 on generated data B, into the outputs of the smoke run on data A: B's results go to a
    folder of their own, the summary judges only them and says which folder it read, and A's files are untouched."""
    import shutil

    from ferlib.data.embedded import write_embedded_dataset

    out = tmp_path / "outputs"
    shutil.copytree(smoke_run["out"], out)
    folder_a = data_folder(out, "results", "smoke")
    before = {p.name: p.read_bytes() for p in folder_a.iterdir()}
    data_b = write_embedded_dataset(tmp_path / "data_b", 150, 60, seed=7)
    proc = run_all(out, smoke_run["root"] / "cache", "--profile", "smoke", "--notebooks", "02,08",
                   "--data", str(data_b.internal_dir), "--external", str(data_b.external_dir))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    folders = [p for p in (out / "results" / "smoke").iterdir() if p.is_dir()]
    assert len(folders) == 2 and folder_a in folders
    folder_b = next(p for p in folders if p != folder_a)
    assert {p.name: p.read_bytes() for p in folder_a.iterdir()} == before  # A's results untouched
    assert {p.name for p in folder_b.glob("*.json")} == {"V1-seed42.json", "summary-seed42.json"}
    summary = json.loads((folder_b / "summary-seed42.json").read_text())
    judged = {row["claim"].split()[0] for row in summary["numbers"] if row["verdict"] != "not run"}
    assert judged == {"V1"}  # only B's own result: none of A's V4 ... V13
    fingerprint_b = json.loads((folder_b / "V1-seed42.json").read_text())["provenance"]["data"]["internal"]
    assert fingerprint_b["fingerprint"] != json.loads((folder_a / "V1-seed42.json").read_text())[
        "provenance"]["data"]["internal"]["fingerprint"]
    executed = (out / "notebooks" / "08_summary.ipynb").read_text()
    assert "result files read (1, this data pair only)" in executed and folder_b.name in executed
