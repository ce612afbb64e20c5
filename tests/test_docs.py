"""Generated documentation stays current, and the README's commands are the ones CI runs."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def docs_tables():
    """Return tools/docs_tables.py as a module (a maintainers' tool, not part of the package)."""
    from tests.conftest import load_tool

    return load_tool("docs_tables")


def test_every_generated_table_matches_its_sources():
    """The README's results, the top of docs/results.md, docs/settings.md and the tested-on table of docs/gpu.md are
    what their sources (measurements, model cards, the registry, the pins) say today."""
    for path, text in docs_tables().expected().items():
        assert path.read_text() == text, f"{path.name} drifted from its sources: run tools/docs_tables.py --write"


def test_the_readme_results_come_from_the_measurements_and_cards(tmp_path):
    tool = docs_tables()
    measured, cards = tool.load()
    block = tool.readme_block(measured, cards)
    raw = tool.by_copy(measured)["original pixels"]["models"]["fer2013-7"]
    assert f"**{tool.with_ci(raw)}**" in block and measured["measured"]["command"] in block
    cards["fer2013-7"]["classes"] = cards["fer2013-7"]["classes"][:6]  # a card that changed: the table changes
    assert tool.readme_block(measured, cards) != block


def test_ci_runs_the_readmes_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "bash run_all.sh --tests" in readme
    assert "bash run_all.sh --tests" in (ROOT / ".ci" / "run").read_text()


USER_DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", USER_DOCS, ids=lambda p: p.name)
def test_links_in_the_readme_and_docs_resolve(doc):
    import re

    text = doc.read_text()
    for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path = (doc.parent / target).resolve() if target else doc
        assert path.exists(), f"{doc.name}: link to {target} (no such file)"
        if anchor and path.suffix == ".md":
            headings = [re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-")
                        for h in re.findall(r"^#+ (.+)$", path.read_text(), re.M)]
            assert anchor in headings, f"{doc.name}: link to {target}#{anchor} (no such heading)"


def test_what_users_read_names_no_development_folder():
    notebooks = [" ".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                 for nb in sorted((ROOT / "notebooks").glob("*.ipynb"))
                 for c in __import__("json").loads(nb.read_text())["cells"] if c["cell_type"] == "markdown"]
    for name, text in [*((d.name, d.read_text()) for d in USER_DOCS), *(("a notebook", t) for t in notebooks)]:
        assert "../shared" not in text, f"{name} names ../shared, which users do not have"


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
