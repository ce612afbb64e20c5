"""Fault injection: kill -9 a run while it decodes, trains, evaluates or saves, run it again, and compare.

Each kill lands at or after a point the run reaches (a file appears); wherever it lands, the rerun must finish
and write the result an uninterrupted run writes (identical numbers: the runs are deterministic).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# where a kill lands: after the first file matching the pattern appears under the output folder (and `delay_s`)
KILL_POINTS = {
    "decoding": ("cache/manifests/*.csv", 0.0),
    "training": ("runs/C1-*/settings.json", 1.0),
    "evaluation": ("runs/C1-*/done.json", 0.5),
    "saving": ("results/smoke/*/C1-seed42.json", 0.0),
}
TIMING_KEYS = {"training_time_s", "wall_time_s", "timings", "provenance", "run_dir", "reused_finished_run",
               "history"}


def champion_command(data, out: Path) -> list[str]:
    return [sys.executable, "-m", "ferlib", "champion", "--profile", "smoke", "--data", str(data.internal_dir),
            "--external", str(data.external_dir), "--output-dir", str(out)]


def environment(out: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERLIB_")}
    return env | {"FERLIB_DETERMINISTIC": "1", "FERLIB_CACHE_DIR": str(out / "cache"), "TF_CPP_MIN_LOG_LEVEL": "2"}


def comparable(result: dict) -> dict:
    """Return a result without what differs between any two runs (times, folders, provenance)."""
    out = {k: v for k, v in result.items() if k not in TIMING_KEYS}
    history = result.get("history") or {}
    out["history"] = {k: v for k, v in history.items() if k not in ("epoch_seconds",)}
    out["learning_curve"] = [{k: v for k, v in row.items() if k != "training time (min)"}
                             for row in result.get("learning_curve") or []]
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from ferlib.data.embedded import write_embedded_dataset

    return write_embedded_dataset(tmp_path_factory.mktemp("fault_data"), 150, 60, seed=3)


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    proc = subprocess.run(champion_command(data, out), env=environment(out), capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(next(out.glob("results/smoke/*/C1-seed42.json")).read_text())


def kill_when(out: Path, pattern: str, delay_s: float, command: list[str], timeout_s: float = 300) -> str:
    """Start the command, kill -9 its process group once `pattern` exists under `out` (after `delay_s`); return
    "killed" or, when the run finished first, "finished"."""
    proc = subprocess.Popen(command, env=environment(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return "finished"
            if any(out.glob(pattern)):
                time.sleep(delay_s)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return "killed"
            time.sleep(0.05)
        raise TimeoutError(f"{pattern} never appeared")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_run_killed_at_any_point_finishes_on_rerun_with_the_uninterrupted_result(point, data, uninterrupted,
                                                                                 tmp_path):
    out = tmp_path / "out"
    pattern, delay = KILL_POINTS[point]
    outcome = kill_when(out, pattern, delay, champion_command(data, out))
    assert outcome == "killed", f"the run finished before reaching {point}"
    rerun = subprocess.run(champion_command(data, out), env=environment(out), capture_output=True, text=True,
                           timeout=600, cwd=ROOT)
    assert rerun.returncode == 0, f"killed during {point} ({outcome}); rerun failed:\n{rerun.stderr[-3000:]}"
    result = json.loads(next(out.glob("results/smoke/*/C1-seed42.json")).read_text())
    assert comparable(result) == comparable(uninterrupted), f"killed during {point} ({outcome})"
    assert next(out.glob("models/smoke/*/cpu_champion.keras")).stat().st_size > 0


def test_run_all_killed_while_rendering_a_report_finishes_on_rerun(tmp_path):
    """kill -9 run_all.sh (and the report it renders) once notebook 01 has run; the rerun finishes, its report
    passes the checks and its result equals an uninterrupted run's."""
    from ferlib.reports.catalog import CATALOG
    from ferlib.reports.check import check_notebook
    from tests.conftest import data_folder
    from tests.test_notebooks import run_all

    args = ("--profile", "smoke", "--notebooks", "01")
    reference = run_all(tmp_path / "reference", tmp_path / "cache", *args)
    assert reference.returncode == 0, reference.stderr[-3000:]
    out = tmp_path / "killed"
    env = {k: v for k, v in os.environ.items() if k not in ("FERLIB_DATA_DIR", "FERLIB_EXTERNAL_DIR",
                                                           "FERLIB_PROGRESS_LOG")}
    command = ["bash", str(ROOT / "run_all.sh"), "--output", str(out), *args]
    proc = subprocess.Popen(command, env=env | {"FERLIB_CACHE_DIR": str(tmp_path / "cache")}, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    executed = out / "notebooks" / "01_eda.ipynb"
    deadline = time.monotonic() + 300
    while not executed.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "run_all.sh finished before the kill"
    os.killpg(proc.pid, signal.SIGKILL)  # papermill has finished; the report is being rendered
    proc.wait()
    rerun = run_all(out, tmp_path / "cache", *args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    check = check_notebook(CATALOG["01_eda"], out)
    assert check.ok, "\n".join(check.problems)
    results = [json.loads((data_folder(o, "results", "smoke") / "eda-seed42.json").read_text())
               for o in (tmp_path / "reference", out)]
    assert comparable(results[1]) == comparable(results[0])
