"""The Kaggle-stack lane: tools/kaggle_stack.sh from a fresh clone, with Kaggle's versions and no ensurepip.

Kept in its own file (pytest-xdist gives each worker whole files): it builds its interpreter once per machine
(cached under ~/.cache/ferlib/stacks), then sets up a clone, runs five smoke notebooks and predicts with the
shipped model under Kaggle's Keras and the oldest supported one.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from ferlib.stacks import OLDEST_KERAS, stack_pins

pytestmark = [pytest.mark.kaggle_stack, pytest.mark.notebook]
ROOT = Path(__file__).resolve().parents[1]


def test_the_kaggle_stack_lane_passes_from_a_fresh_clone(tmp_path):
    work = tmp_path / "lane"
    proc = subprocess.run(["bash", str(ROOT / "tools" / "kaggle_stack.sh"), "--keep", str(work)], cwd=ROOT,
                          capture_output=True, text=True, timeout=2400)
    if proc.returncode == 3:  # no Python of the stack's version to copy on this machine
        pytest.skip(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    pins = stack_pins("kaggle")
    kept = re.search(r"kept: (.*?)\)", proc.stdout).group(1).split()
    assert kept == [f"{name}=={pins[name]}" for name in ("tensorflow", "keras", "numpy", "pandas")]
    assert f"keras {pins['keras']} and keras {OLDEST_KERAS} agree" in proc.stdout
    clone = work / "fer"
    venv_cfg = (clone / ".venv" / "pyvenv.cfg").read_text()
    # made anew over the broken .venv the lane leaves first: it sees the image's packages
    assert "include-system-site-packages = true" in venv_cfg and f"version = {pins['python']}" in venv_cfg
    # the notebook runner in .venv is the pinned set, not Kaggle's older one beside it
    runner = subprocess.run([str(clone / ".venv" / "bin" / "python"), "-c", "from importlib import metadata as m; "
                             "print({n: m.version(n) for n in ('nbconvert', 'nbclient', 'jupyter_client')})"],
                            capture_output=True, text=True, timeout=120)
    wanted = dict(line.split("==") for line in (ROOT / "requirements" / "notebooks.txt").read_text().splitlines()
                  if "==" in line and not line.startswith("#"))
    assert runner.stdout.strip() == str({n: wanted[n] for n in ("nbconvert", "nbclient", "jupyter_client")})
    timings = (clone / "outputs" / "timings.csv").read_text().splitlines()[1:]
    assert [row.split(",")[0][:2] for row in timings] == ["01", "02", "05", "06", "09"]
    assert all(row.endswith(",ok") for row in timings)
    for model, classes in (("fer2013-7", 7), ("fer2013-5", 5)):  # both shipped models, each with its own classes
        faces = json.loads((work / f"{model}-oldest.json").read_text())[0]["faces"]
        assert faces and all(face["label"] and len(face["scores"]) == classes for face in faces)
