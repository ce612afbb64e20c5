"""Reports without running a notebook: quiet TensorFlow import, progress routing, figure helper, checks, index."""
from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from ferlib.config import PROJECT_ROOT, run_settings  # noqa: E402
from ferlib.reports import check, index, notebook, render  # noqa: E402
from ferlib.reports.catalog import CATALOG, NotebookSpec, get_spec  # noqa: E402
from ferlib.runtime import progress  # noqa: E402
from ferlib.runtime.paths import display_path  # noqa: E402
from tests.conftest import startup_lines  # noqa: E402

IMPORT_TF = "import ferlib, tensorflow as tf; print('tf', tf.__version__)"


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("FERLIB_PROGRESS_LOG", "TF_CPP_MIN_LOG_LEVEL")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean | env, timeout=300,
                          cwd=PROJECT_ROOT)


@pytest.mark.slow
def test_tensorflow_loads_without_its_start_up_lines_and_keeps_them_in_the_progress_log(tmp_path):
    # TensorFlow turns oneDNN on by default only on some CPUs, and then says so while it loads; forcing it on
    # gives every CPU a start-up line to route. The level is the one ferlib sets.
    forced = {"TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    printed = startup_lines(python("import tensorflow", **forced).stderr)  # without ferlib
    assert printed  # something to route, whichever lines this CPU's TensorFlow prints
    quiet = python(IMPORT_TF, **forced)
    assert quiet.returncode == 0 and "tf 2." in quiet.stdout
    assert not startup_lines(quiet.stderr), quiet.stderr
    log = tmp_path / "progress.log"
    logged = python(IMPORT_TF, FERLIB_PROGRESS_LOG=str(log), **forced)
    assert not startup_lines(logged.stderr) and startup_lines(log.read_text()) == printed


def test_other_output_during_the_import_still_reaches_stderr():
    from ferlib.runtime import quiet

    code = ("import os, ferlib.runtime.quiet as q\nwith q.captured_fd2():\n    os.write(2, b'real problem\\n')\n"
            "    os.write(2, b'I0000 port.cc:153] oneDNN custom operations are on\\n')\n")
    proc = python(code)
    assert "real problem" in proc.stderr and "oneDNN" not in proc.stderr
    assert quiet.NOISE.search("WARNING: All log messages before absl::InitializeLog() is called")


def test_progress_goes_to_the_log_file_when_one_is_set(tmp_path, monkeypatch):
    monkeypatch.delenv(progress.LOG_ENV, raising=False)
    assert progress.stream() is sys.stderr
    log = tmp_path / "run.log"
    monkeypatch.setenv(progress.LOG_ENV, str(log))
    progress.say("hello from a long job")
    for _ in progress.bar(range(3), desc="work"):
        pass
    progress.stream().flush()
    text = log.read_text()
    assert "hello from a long job" in text and "work" in text


def test_display_paths_hide_machine_folders(tmp_path):
    out = tmp_path / "outputs"
    assert display_path(out / "runs" / "V1-abc", out) == "outputs/runs/V1-abc"
    assert display_path(PROJECT_ROOT / "notebooks" / "x.ipynb") == "notebooks/x.ipynb"
    assert display_path(PROJECT_ROOT.parent / "shared" / "data" / "fer2013") == "../shared/data/fer2013"
    assert display_path("/kaggle/input/fer2013") == "/kaggle/input/fer2013"  # a data root as the user gave it


def png_bytes(blank: bool) -> bytes:
    image = np.full((40, 60, 3), 255, np.uint8)
    if not blank:
        image[10:30, 10:50] = (200, 30, 30)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_blank_figures_are_caught():
    assert check.is_blank(png_bytes(blank=True)) and not check.is_blank(png_bytes(blank=False))
    assert check.is_blank(b"not a png")


def test_figure_helper_saves_and_shows_the_same_png(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(notebook, "_display", lambda data, meta: shown.append((data, meta)))
    nb = notebook.NotebookRun("02_baseline_cnn", run_settings("smoke", output_dir=tmp_path))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    assert nb.figure(fig, "line") is None  # nothing but the image is displayed
    saved = (tmp_path / "figures" / "02_baseline_cnn" / "line.png").read_bytes()
    data, meta = shown[0]
    assert base64.b64decode(data["image/png"]) == saved and meta == {"figure": "line"}
    assert not plt.get_fignums()  # closed, so the inline backend does not show it twice
    assert not check.is_blank(saved)


def fake_executed(out: Path, name: str, figures: dict[str, bytes], extra_text: str = "") -> None:
    """Write an executed notebook (as papermill leaves it) whose outputs carry ferlib metadata."""
    from ferlib.reports.banner import card_html

    card = {"notebook": name, "profile": "smoke", "profile_description": "tests", "seed": 42, "data": ["x"],
            "synthetic": True, "weights": "random", "random_weights": True, "git_commit": "abc", "date": "today",
            "machine": "test CPU, 2 cores; no GPU", "wall_time_s": None}
    outputs = [nbformat.v4.new_output("display_data", data={"text/html": card_html(card), "text/plain": "card"},
                                      metadata={"ferlib": {"run_card": card}})]
    for fig, png in figures.items():
        (out / "figures" / name).mkdir(parents=True, exist_ok=True)
        (out / "figures" / name / f"{fig}.png").write_bytes(png)
        outputs.append(nbformat.v4.new_output("display_data", data={
            "image/png": base64.b64encode(png).decode(), "text/plain": fig}, metadata={"ferlib": {"figure": fig}}))
    outputs.append(nbformat.v4.new_output("display_data", data={"text/markdown": "**Result:** fine", "text/plain": "x"},
                                          metadata={"ferlib": {"headline": "42 of everything", "results": []}}))
    if extra_text:
        outputs.append(nbformat.v4.new_output("stream", name="stderr", text=extra_text))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# title"),
                                         nbformat.v4.new_code_cell("x = 1", outputs=outputs)])
    nb.metadata["papermill"] = {"duration": 12.5, "exception": None}
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out / "notebooks" / f"{name}.ipynb")


def test_rendered_reports_embed_the_figures_and_the_wall_time(tmp_path):
    spec = NotebookSpec("02_baseline_cnn", "t", figures=("one",))
    fake_executed(tmp_path, spec.name, {"one": png_bytes(False)})
    written = render.render(tmp_path / "notebooks" / f"{spec.name}.ipynb", tmp_path / "reports")
    assert [p.name for p in written] == ["02_baseline_cnn.html", "02_baseline_cnn.nocode.html"]
    result = check.check_notebook(spec, tmp_path)
    assert result.ok and result.figures == {"notebook": 1, "with code": 1, "no code": 1}
    assert "12 s" in written[1].read_text() and "x = 1" not in written[1].read_text()  # wall time, no code


@pytest.mark.parametrize("noise,word", [
    ("WARNING: All log messages before absl::InitializeLog() is called", "absl"),
    ("/usr/lib/x.py:3: FutureWarning: something changes\n", "Python warning"),
    ("Traceback (most recent call last):\n", "traceback"),
    ("PosixPath('/tmp/x/outputs/figures/a.png')", "PosixPath"),
    # what TensorFlow's GPU build prints on a machine without a GPU (Kaggle's image on a CPU session)
    ("2026-12-02 14:20:39.153962: E external/local_xla/xla/stream_executor/cuda/cuda_platform.cc:51] failed call "
     "to cuInit: INTERNAL: CUDA error", "TensorFlow log line"),
    ("I0000 00:00:1796219952.280480    2270 port.cc:153] custom operations are on", "TensorFlow log line"),
])
def test_the_check_names_noise_in_a_report(tmp_path, noise, word):
    spec = NotebookSpec("02_baseline_cnn", "t", figures=("one",))
    fake_executed(tmp_path, spec.name, {"one": png_bytes(False)}, extra_text=noise)
    render.render(tmp_path / "notebooks" / f"{spec.name}.ipynb", tmp_path / "reports")
    problems = "\n".join(check.check_notebook(spec, tmp_path).problems)
    assert word in problems


def test_the_check_fails_a_missing_or_blank_figure_and_a_machine_path(tmp_path):
    spec = NotebookSpec("02_baseline_cnn", "t", figures=("one", "two"))
    fake_executed(tmp_path, spec.name, {"one": png_bytes(blank=True)}, extra_text=f"saved in {tmp_path}/x")
    render.render(tmp_path / "notebooks" / f"{spec.name}.ipynb", tmp_path / "reports")
    problems = "\n".join(check.check_notebook(spec, tmp_path, forbidden_paths=[str(tmp_path)]).problems)
    assert "figure two: no file" in problems and "figure one: blank" in problems and "machine path" in problems


def test_index_lists_reports_and_says_when_the_summary_has_not_run(tmp_path):
    fake_executed(tmp_path, "02_baseline_cnn", {"one": png_bytes(False)})
    render.render(tmp_path / "notebooks" / "02_baseline_cnn.ipynb", tmp_path / "reports")
    page = index.build_index(tmp_path).read_text()
    assert "02_baseline_cnn.nocode.html" in page and "42 of everything" in page
    assert "01_eda.nocode.html" not in page and "not run" in page
    assert "Notebook 08 has not run" in page


def test_index_shows_the_summary_verdicts(tmp_path):
    summary_file = tmp_path / "results" / "smoke" / "summary-seed42.json"
    summary_file.parent.mkdir(parents=True)
    summary_file.write_text(json.dumps({
        "conclusions": [{"conclusion": "1. Augmentation hurts", "verdict": "contradicted", "evidence": "e",
                         "caveats": ""}],
        "numbers": [{"claim": "V4 validation accuracy", "where in the study": "Table 1", "study": 0.76, "this run": 0.7,
                     "this run ci_low": 0.68, "this run ci_high": 0.72, "verdict": "not reproduced (study higher)",
                     "why": ""}], "verdict_counts": {"not reproduced (study higher)": 1}}))
    fake_executed(tmp_path, "08_summary", {})
    executed = tmp_path / "notebooks" / "08_summary.ipynb"
    nb = nbformat.read(executed, as_version=4)
    nb.cells[1].outputs[-1].metadata["ferlib"]["results"] = ["outputs/results/smoke/summary-seed42.json"]
    nbformat.write(nb, executed)
    render.render(executed, tmp_path / "reports")
    page = index.build_index(tmp_path).read_text()
    assert "1. Augmentation hurts" in page and "contradicted" in page and "0.700 [0.680, 0.720]" in page


def test_catalog_names_are_checked():
    with pytest.raises(ValueError, match="NN_topic"):
        NotebookSpec("eda", "x", figures=())
    with pytest.raises(ValueError, match="both required and optional"):
        NotebookSpec("01_x", "x", figures=("a",), optional_figures=("a",))
    assert get_spec("02") is CATALOG["02_baseline_cnn"]
    with pytest.raises(KeyError):
        get_spec("99")
