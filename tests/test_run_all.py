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
    (["--bogus"], "unknown option '--bogus'"),
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
