"""Generated documentation stays current, and the README's commands are the ones CI runs."""
from __future__ import annotations

from pathlib import Path

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
