"""Executed notebook -> two HTML reports (with code, and ``.nocode``) by nbconvert, the run card's wall time filled
in; figures are the notebook's ``image/png`` outputs, so both reports embed them."""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferlib.reports.banner import card_html
from ferlib.reports.catalog import CATALOG
from ferlib.reports.notebook import METADATA_KEY
from ferlib.runtime.files import write_text


@dataclass
class NotebookOutputs:
    """What an executed notebook shows, found through the ferlib metadata of its outputs."""

    run_card: dict[str, Any] | None = None
    headline: dict[str, Any] | None = None
    figures: dict[str, bytes] = field(default_factory=dict)  # name -> PNG bytes
    failed: bool = False
    duration_s: float | None = None


def read_outputs(nb: Any) -> NotebookOutputs:
    """Return the run card, headline and figures (name -> PNG) of a notebook node, and whether it failed."""
    papermill = nb.metadata.get("papermill", {})
    found = NotebookOutputs(failed=bool(papermill.get("exception")), duration_s=papermill.get("duration"))
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get(METADATA_KEY) or {}
            if "run_card" in meta:
                found.run_card = meta["run_card"]
            if "headline" in meta:
                found.headline = meta
            if "figure" in meta and "image/png" in output.get("data", {}):
                found.figures[meta["figure"]] = base64.b64decode(output["data"]["image/png"])
    return found


def render(executed: Path, reports_dir: Path) -> list[Path]:
    """Render an executed notebook to ``<name>.html`` and ``<name>.nocode.html``; return their paths. The notebook
    file itself gets papermill's measured duration written into its run card (data and HTML)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    wall_time_s = nb.metadata.get("papermill", {}).get("duration")
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            card = output.get("metadata", {}).get(METADATA_KEY, {}).get("run_card")
            if card is not None:
                card["wall_time_s"] = None if wall_time_s is None else round(float(wall_time_s), 1)
                output["data"]["text/html"] = card_html(card)
    write_text(executed, nbformat.writes(nb))
    name, spec = executed.stem, CATALOG.get(executed.stem)
    title = f"{name[:2]} · {spec.title}" if spec else name
    written = []
    for suffix, hide_code in (("", False), (".nocode", True)):
        exporter = HTMLExporter(template_name="lab", exclude_input=hide_code, exclude_input_prompt=hide_code,
                                exclude_output_prompt=hide_code)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
        written.append(write_text(Path(reports_dir) / f"{name}{suffix}.html", body))
    return written
