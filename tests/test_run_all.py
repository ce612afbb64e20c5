"""run_all.sh refuses bad options clearly, before running anything."""
from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
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


def test_the_estimate_counts_a_first_phase_copied_from_another_experiment_once(monkeypatch):
    from ferlib import estimate
    from ferlib.config import PROFILES

    cpu = PROFILES["cpu"]  # without ImageNet weights: V13's first phase is V12's, V5's is V4's
    speeds = estimate.CPU_IMAGES_PER_S["resnet50v2"]
    v12, v13 = (estimate.get_experiment(k, cpu, "random") for k in ("V12", "V13"))
    alone = estimate._phase_seconds(v13, speeds, 6000, 1500)
    copied = estimate._phase_seconds(v13, speeds, 6000, 1500, first_copied=True)
    assert copied == pytest.approx(alone - estimate._phase_seconds(v12, speeds, 6000, 1500)) and copied > 0
    shared = estimate.estimate_seconds(cpu, 7500, 100, weights="random")["04_architecture_comparison"]
    names = iter(range(10**6))  # every first phase its own: none copied
    monkeypatch.setattr(estimate, "first_phase_settings", lambda settings: next(names))
    apart = estimate.estimate_seconds(cpu, 7500, 100, weights="random")["04_architecture_comparison"]
    assert apart - shared > alone - copied


def test_run_all_keeps_freed_buffers_so_a_step_does_not_fault_them_in_again():
    """The GLIBC_TUNABLES run_all.sh exports (and gives the notebooks' kernel): a process that frees and takes a
    40 MiB buffer again, as TensorFlow's CPU kernels do on every step, reuses its pages instead of faulting them in."""
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("GLIBC_TUNABLES applies to glibc only")
    tunables = re.search(r'GLIBC_TUNABLES:-([^}"]+)', (ROOT / "run_all.sh").read_text()).group(1)
    step = ("import resource, numpy as np\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "for _ in range(20):\n    a = np.empty(40 << 20, dtype=np.uint8); a[::4096] = 1; del a\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)")

    def faults(env: dict[str, str]) -> int:
        clean = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
        out = subprocess.run([sys.executable, "-c", step], env=clean | env, capture_output=True, text=True, check=True)
        return int(out.stdout)

    assert faults({"GLIBC_TUNABLES": tunables}) * 5 < faults({})  # about one buffer's pages, against 20
    kernel = ROOT / ".venv" / "share" / "jupyter" / "kernels" / "ferlib" / "kernel.json"
    if kernel.is_file():  # set up by run_all.sh: JupyterLab's kernel keeps them too
        assert json.loads(kernel.read_text())["env"]["GLIBC_TUNABLES"] == os.environ.get("GLIBC_TUNABLES", tunables)
