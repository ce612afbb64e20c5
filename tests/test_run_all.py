"""run_all.sh refuses bad options clearly, before running anything."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_all(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "run_all.sh"), *args], capture_output=True, text=True, timeout=600,
                          cwd=ROOT)


@pytest.mark.parametrize("args,message", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--notebooks", "99"], "no notebook matches '99'"),
    (["--data", "/definitely/not/here"], "data path not found: /definitely/not/here"),
])
def test_bad_options_fail_with_a_clear_message(args, message):
    proc = run_all(*args)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_help_lists_the_options():
    proc = run_all("--help")
    assert proc.returncode == 0
    for option in ("--profile", "--data", "--external", "--notebooks", "--weights", "--tests", "--bench"):
        assert option in proc.stdout


def test_the_dry_run_estimate_scales_with_the_cpu_probe_beyond_its_noise(monkeypatch):
    from ferlib import estimate, plan

    monkeypatch.setattr(estimate, "cpu_probe_s", lambda: estimate.PROBE_REFERENCE_S * 1.2)  # run-to-run noise
    assert estimate.cpu_speed_factor()[0] == 1.0
    monkeypatch.setattr(estimate, "cpu_probe_s", lambda: estimate.PROBE_REFERENCE_S * 2.0)  # twice as slow
    assert estimate.cpu_speed_factor()[0] == pytest.approx(2.0)
    monkeypatch.setattr(estimate, "cpu_probe_s", lambda: estimate.PROBE_REFERENCE_S * 40)  # a stall, not a machine
    assert estimate.cpu_speed_factor()[0] == estimate.PROBE_FACTOR_RANGE[1]
    machine = plan.Machine(python="x")
    base = plan.make_plan("demo", machine=machine, cpu_factor=1.0)["estimate_s"]
    slow = plan.make_plan("demo", machine=machine)  # the probe above: clamped to 5
    assert slow["estimate_s"] == {n: 5 * s for n, s in base.items()}
    assert "times 5.00 for this CPU" in slow["estimate_how"]
