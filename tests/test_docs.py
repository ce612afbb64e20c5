"""Generated documentation stays current, and the README's commands are the ones CI runs."""
from __future__ import annotations

from pathlib import Path

import pytest

from ferlib.evaluation import study_settings

ROOT = Path(__file__).resolve().parents[1]


def test_settings_docs_are_generated_from_the_registry():
    assert (ROOT / "docs" / "settings.md").read_text() == study_settings.markdown(), \
        "run: python -m ferlib.evaluation.study_settings --write"
    assert study_settings.readme_block() in (ROOT / "README.md").read_text(), \
        "run: python -m ferlib.evaluation.study_settings --write"


def test_ci_runs_the_readmes_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "bash run_all.sh --tests" in readme
    assert "bash run_all.sh --tests" in (ROOT / ".ci" / "run").read_text()


def test_readme_links_point_at_files_that_exist():
    import re

    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        assert (ROOT / target).exists(), target


def test_the_tested_on_table_is_generated_from_the_pins():
    from ferlib import stacks

    assert stacks.tested_on_table() in stacks.DOC.read_text(), "run: python -m ferlib.stacks --write"


def test_the_main_lane_runs_the_versions_its_row_names():
    """CI keeps the table true: the main lane's row is what this test suite runs on."""
    import platform
    from importlib import metadata

    from ferlib import stacks

    pins = stacks.main_pins()
    try:
        metadata.version("tensorflow-cpu")
    except metadata.PackageNotFoundError:
        pytest.skip("not the main lane's environment (no tensorflow-cpu: a GPU or Kaggle build)")
    assert platform.python_version().rsplit(".", 1)[0] == pins["python"]
    for package in ("tensorflow-cpu", "keras", "numpy", "opencv-python-headless"):
        assert metadata.version(package) == pins[package], package
