"""Running the notebooks headlessly, as `bash run_all.sh` does once its environment is ready.

    python -m ferlib.runner [run_all.sh's options]

Each notebook the plan (`ferlib.plan`) selects runs with papermill, its progress shown in the terminal and kept in
``outputs/logs/<name>.log`` (the kernel's start-up lines in ``<name>.machinery.log``), then is rendered to HTML; a
notebook that fails stops the run with its failing cell.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import nbformat

from ferlib import plan as planning
from ferlib.config import PROJECT_ROOT
from ferlib.reports.check import check_reports
from ferlib.reports.index import build_index
from ferlib.reports.render import read_outputs, render
from ferlib.runtime import files
from ferlib.runtime.progress import LOG_ENV
from ferlib.runtime.quiet import NOISE

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"


def say(message: str) -> None:
    """Print one line of the run's own, time-stamped, as the terminal shows it."""
    print(f"[run_all {datetime.now():%H:%M:%S}] {message}", flush=True)


class Follow(threading.Thread):
    """Show a growing log file in the terminal, leaving out TensorFlow's start-up lines (they stay in the file)."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.done = path, threading.Event()

    def run(self) -> None:
        with self.path.open(encoding="utf-8", errors="replace") as log:
            pending = ""
            while True:
                chunk = log.read()
                pending += chunk
                *lines, pending = pending.split("\n")
                for line in lines:
                    if not NOISE.search(line):
                        print(line, flush=True)
                if not chunk:
                    if self.done.is_set():
                        break
                    time.sleep(0.5)
        if pending and not NOISE.search(pending):
            print(pending, flush=True)

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=10)


def notebook_path(path: str | Path) -> str:
    """Return a path as the notebooks (run in notebooks/) see it: relative when inside the project or beside it, so
    the reports' parameter cells show no folder of this machine; anything else as given."""
    rel = os.path.relpath(path, PROJECT_ROOT)
    return os.path.relpath(path, NOTEBOOKS_DIR) if rel.split(os.sep).count("..") <= 1 else str(path)


def parameters(run: argparse.Namespace, profile: str) -> list[str]:
    """Return papermill's -p arguments for every notebook of the run."""
    pairs = {"profile": profile, "seed": run.seed, "force": run.force, "output_dir": notebook_path(run.output)}
    for name, value in (("data_dir", run.data), ("external_dir", run.external)):
        if value:
            pairs[name] = value if value == planning.EMBEDDED else notebook_path(value)
    if run.weights:
        pairs["weights"] = run.weights
    return [arg for name, value in pairs.items() for arg in ("-p", name, str(value))]


def failure_lines(machinery: Path, limit: int = 40) -> list[str]:
    """Return what papermill said about a failing cell (its error, not the start-up lines around it)."""
    text = machinery.read_text(encoding="utf-8", errors="replace").splitlines() if machinery.is_file() else []
    start = next((i for i, line in enumerate(text) if "Exception encountered" in line or "Error" in line), 0)
    return [line for line in text[start:] if not NOISE.search(line)][-limit:]


def run_notebook(name: str, run: argparse.Namespace, params: list[str]) -> tuple[bool, int]:
    """Run one notebook with papermill, its progress shown as it goes; return (succeeded, seconds)."""
    out = run.output
    progress_log, machinery = out / "logs" / f"{name}.log", out / "logs" / f"{name}.machinery.log"
    progress_log.write_text("")
    follow = Follow(progress_log)
    follow.start()
    # papermill saves cell by cell to a temporary name; the previous run's notebook is replaced only at the end
    running = out / "notebooks" / f".{name}.running.ipynb"
    started = time.monotonic()
    with machinery.open("w") as chatter:
        code = subprocess.call([sys.executable, "-m", "papermill", str(NOTEBOOKS_DIR / f"{name}.ipynb"),
                                str(running), "-k", "ferlib", "--cwd", str(NOTEBOOKS_DIR), *params,
                                "--no-progress-bar", "--log-level", "WARNING"],
                               env=os.environ | {LOG_ENV: str(progress_log)}, stdout=chatter, stderr=chatter)
    seconds = round(time.monotonic() - started)
    follow.stop()
    if running.is_file():
        running.replace(out / "notebooks" / f"{name}.ipynb")
    return code == 0, seconds


def main(argv: list[str] | None = None) -> int:
    """Run the notebooks the options select; return the exit status."""
    run = planning.run_options(planning.run_parser().parse_args(argv))
    plan = planning.plan_run(run, cpu_factor=1.0)
    if plan is None:
        return 2
    out = run.output
    for folder in ("notebooks", "reports", "logs"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    if removed := files.remove_stale_temporaries(out):
        say(f"removed {len(removed)} temporary file(s) an interrupted run left in {out}")
    kernel_env = {"TF_CPP_MIN_LOG_LEVEL": 2, "FERLIB_MAX_EPOCHS": run.max_epochs, "FERLIB_SEEDS": run.seeds,
                  "FERLIB_DETERMINISTIC": run.deterministic, "FERLIB_MULTI_GPU": run.multi_gpu}
    os.environ.update({name: str(int(value)) for name, value in kernel_env.items() if value})  # the kernels read them
    profile, notebooks = plan["profile"], plan["notebooks"]
    say(f"profile {profile} (asked: {run.profile}), seed {run.seed}, data {run.data or '<default>'}, external "
        f"{run.external or '<default>'}, output {out}")
    say(f"backbone weights: {plan['weights']}")
    say(f"notebooks: {' '.join(notebooks)}")
    timings, total = ["notebook,seconds,status"], time.monotonic()
    params = parameters(run, profile)
    for name in notebooks:
        say(f"running {name} (progress below; the report keeps results only)")
        ok, seconds = run_notebook(name, run, params)
        executed = out / "notebooks" / f"{name}.ipynb"
        if executed.is_file():
            render(executed, out / "reports")
        timings.append(f"{name},{seconds},{'ok' if ok else 'failed'}")
        files.write_text(out / "timings.csv", "\n".join(timings) + "\n")
        if not ok:
            print("\n".join(failure_lines(out / "logs" / f"{name}.machinery.log")), file=sys.stderr)
            say(f"FAILED: {name} after {seconds} s; the failing cell is shown above and in "
                f"{out / 'reports' / name}.html (the kernel's log: {out / 'logs' / name}.machinery.log)")
            build_index(out)
            return 1
        shown = read_outputs(nbformat.read(executed, as_version=4)).headline or {}
        say(f"done {name} in {seconds} s: {shown.get('headline') or '(no result line)'}")
    seconds = round(time.monotonic() - total)
    say(f"all {len(notebooks)} notebooks finished in {seconds} s; timings in {out / 'timings.csv'}")
    problems = [c for c in check_reports(out) if not c.ok]
    for check in problems:
        say(f"WARNING: report {check.name}: {'; '.join(check.problems)}")
    say(f"open {build_index(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
