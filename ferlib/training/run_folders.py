"""A training run's folder, ``runs/<experiment>-<key>/`` (`run_key`): what it records, how it is found again
(`adopt_reworded_run`), and what is kept once done (`compact_run`; `done.json` marks a finished run).
"""
from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from ferlib.evaluation.results import git_commit, machine
from ferlib.experiments import Experiment, first_phase_settings
from ferlib.runtime import files
from ferlib.runtime.progress import say

DONE_FILE = "done.json"


def trained_by_record(run_dir: Path) -> dict | None:
    """Return the commit, machine and start time a run folder records for its first training (None if absent)."""
    try:
        return json.loads((run_dir / "settings.json").read_text()).get("trained_by")
    except (OSError, ValueError):
        return None


def record_training_session(run_dir: Path, trained_by: dict | None, n_phases: int) -> dict:
    """Return `trained_by` (a new one for a new run) with this training session appended to its "sessions"
    (start, machine, commit, epochs logged before): a resumed run says where each part of its time was spent."""
    session = {"started": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
               "git_commit": git_commit(),
               "epochs_before": sum(len(frame) for frame in _phase_histories(run_dir, n_phases))}
    if trained_by is None:  # a new run
        trained_by, earlier = {key: session[key] for key in ("git_commit", "machine", "started")}, []
    else:  # a resumed one; begun before sessions were recorded, its first session is what trained_by says
        trained_by = dict(trained_by)
        earlier = trained_by.get("sessions") or [
            {key: trained_by.get(key) for key in ("started", "machine", "git_commit")} | {"epochs_before": 0}]
    trained_by["sessions"] = [*earlier, session]
    return trained_by


def run_key(experiment: Experiment, data_fingerprint: str, seed: int, weights: str = "random") -> str:
    """Return the key that names a run: it changes with any setting, the data, the seed or the weights."""
    text = json.dumps({"settings": experiment.settings(), "data": data_fingerprint, "seed": seed,
                       "weights": weights}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


PROSE_FIELDS = ("title", "notes")  # words about an experiment: editing them must not lose its finished runs


def _same_run(settings_file: Path, wanted: dict[str, Any]) -> bool:
    """Return True when a run folder's settings.json describes the wanted run, prose fields aside."""
    try:
        found = json.loads(settings_file.read_text())
    except (OSError, ValueError):
        return False
    plain = {k: v for k, v in found.get("settings", {}).items() if k not in PROSE_FIELDS}
    return plain == {k: v for k, v in wanted["settings"].items() if k not in PROSE_FIELDS} and all(
        found.get(k) == wanted[k] for k in ("data", "seed", "weights"))


def adopt_reworded_run(run_dir: Path, experiment: Experiment, data_fingerprint: str, seed: int,
                       weights: str) -> bool:
    """Rename to `run_dir` the run (a finished one first) of the same experiment, settings, data, seed and
    weights whose title or notes were since reworded (its key hashes them); return whether there was one."""
    if run_dir.exists():
        return False
    wanted = {"settings": json.loads(json.dumps(experiment.settings())), "data": data_fingerprint, "seed": seed,
              "weights": weights}
    candidates = [d for d in run_dir.parent.glob(f"{experiment.key}-*")
                  if d.is_dir() and _same_run(d / "settings.json", wanted)]
    if not candidates:
        return False
    chosen = max(candidates, key=lambda d: ((d / DONE_FILE).exists(), d.stat().st_mtime))
    chosen.rename(run_dir)
    say(f"{experiment.key}: reusing run {chosen.name} (its title or notes were reworded since) as {run_dir.name}")
    return True


def _first_phase_of(settings_file: Path) -> dict[str, Any] | None:
    """Return what a run's first phase depends on (its settings.json, `first_phase_settings`), or None when
    unreadable."""
    try:
        found = json.loads(settings_file.read_text())
    except (OSError, ValueError):
        return None
    return {"settings": first_phase_settings(found.get("settings", {}))} | {
        k: found.get(k) for k in ("data", "seed", "weights")}


def copy_first_phase(run_dir: Path) -> str | None:
    """Copy into a new run the finished first phase of another run that trained it alike (the same settings but
    for its name and later phases, the same data, seed and weights): V13's first phase is V12, V5's is V4 where
    their budgets match. Return the other run's name, or None when there is none."""
    wanted = _first_phase_of(run_dir / "settings.json")
    if wanted is None or (run_dir / "phase1").exists():
        return None
    for other in sorted(run_dir.parent.iterdir()):
        phase = other / "phase1"
        if (other != run_dir and (phase / DONE_FILE).exists() and (phase / "best.keras").exists()
                and _first_phase_of(other / "settings.json") == wanted):
            shutil.copytree(phase, run_dir / "phase1")
            say(f"{run_dir.name.split('-')[0]}: its first phase is {other.name.split('-')[0]}'s, trained alike: "
                "copied from that run, not trained again")
            return other.name
    return None


def _phase_histories(run_dir: Path, n_phases: int) -> list[pd.DataFrame]:
    """Return each phase's logged epochs (its history.csv, with a `phase` column), skipping phases not begun."""
    frames = []
    for i in range(n_phases):
        log = run_dir / f"phase{i + 1}" / "history.csv"
        if log.exists() and log.stat().st_size:
            frames.append(pd.read_csv(log).assign(phase=i + 1))
    return frames


def read_history(run_dir: Path, n_phases: int) -> pd.DataFrame:
    """Return the joined per-epoch history of all phases, numbered from 1."""
    history = pd.concat(_phase_histories(run_dir, n_phases), ignore_index=True)
    history["epoch"] = np.arange(1, len(history) + 1)
    return history


def fit_finished_unmarked(phase_dir: Path) -> bool:
    """Return True when a phase's fit ended (backup gone, epochs logged, best saved) but was not marked done."""
    history = phase_dir / "history.csv"
    return (history.exists() and history.stat().st_size > 0 and not (phase_dir / "backup").exists()
            and (phase_dir / "best.keras").exists())


def compact_run(run_dir: Path, kept: str) -> None:
    """Keep only what reuse needs of a finished run: the kept model without optimizer state, histories, timings."""
    for phase_dir in sorted(run_dir.glob("phase*")):
        for name in ("last.keras", "features_train.npy", "features_val.npy"):
            (phase_dir / name).unlink(missing_ok=True)
        shutil.rmtree(phase_dir / "backup", ignore_errors=True)
        best = phase_dir / "best.keras"
        if best.exists() and f"{phase_dir.name}/best.keras" != kept:
            best.unlink()
    kept_path = run_dir / kept
    slim = keras.models.load_model(kept_path, compile=False)  # no optimizer: a third of the file for Adam
    files.save_model(slim, kept_path)
