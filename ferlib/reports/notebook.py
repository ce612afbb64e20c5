"""One helper sets up a notebook: settings, folders, the run card, figures shown and saved in one step.

    nb = notebook.start("02_baseline_cnn", profile, seed=seed, output_dir=output_dir)
    nb.show_run_card(internal.source, weights="none: trained from scratch")
    nb.figure(figures.training_curves(...), "v1_training_curves")   # saved as PNG, the same bytes shown inline
    nb.headline("V1: 61.5% validation accuracy")                    # the landing page's one line
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ferlib.config import RunSettings, run_settings
from ferlib.data.run_data import keyed_settings
from ferlib.data.sources import DataSource
from ferlib.reports.banner import card_html, run_card
from ferlib.reports.catalog import get_spec
from ferlib.runtime import files, progress
from ferlib.runtime.paths import display_path

METADATA_KEY = "ferlib"  # outputs carrying {"ferlib": {...}} metadata: the run card, figures, the headline


@dataclass
class NotebookRun:
    """A running notebook: its settings and folders."""

    name: str
    settings: RunSettings

    def path(self, path: str | Path) -> str:
        """Return a path as the report shows it (``outputs/...`` or relative to the project)."""
        return display_path(path, self.settings.output_dir)

    def show_run_card(self, *sources: DataSource, weights: str | None = None, model: str | None = None) -> None:
        """Display what runs (profile, data, weights, the model used, seed, commit, date, machine)."""
        card = run_card(self.name, self.settings, sources, weights, model)
        _display({"text/html": card_html(card), "text/plain": "run card"}, {"run_card": card})

    def figure(self, fig: Any, name: str, dpi: int = 120) -> None:
        """Save the figure as ``outputs/figures/<notebook>/<name>.png``, show the same PNG inline, close it and
        return None (so a cell ending with this call shows nothing else)."""
        import matplotlib.pyplot as plt

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        png = buffer.getvalue()
        files.write_bytes(self.settings.output_dir / "figures" / self.name / f"{name}.png", png)
        _display({"image/png": base64.b64encode(png).decode("ascii"), "text/plain": f"figure {name}"}, {"figure": name})

    def table(self, frame: pd.DataFrame, name: str, **to_csv: Any) -> pd.DataFrame:
        """Write the table as ``outputs/tables/<profile>/<data>/<name>.csv`` (atomically) and return it."""
        files.write_csv(self.settings.tables_dir / f"{name}.csv", frame, **to_csv)
        return frame

    def headline(self, text: str, results: list[str | Path] | None = None) -> None:
        """Show the notebook's one-line result (the landing page lists it) and the result files behind it."""
        _display({"text/markdown": f"**Result:** {text}", "text/plain": text},
                 {"headline": text, "results": [self.path(p) for p in results or []],
                  "profile": self.settings.profile.name, "seed": self.settings.seed})


def start(name: str, profile: str | None = "auto", seed: int = 42, output_dir: str | Path | None = None,
          data_dir: str | Path | None = None, external_dir: str | Path | None = None) -> NotebookRun:
    """Return the NotebookRun of notebook `name` (as in the catalog) with the run's resolved settings, its results
    in folders of its data (`data_dir`, `external_dir`); under run_all.sh warnings go to the progress log."""
    progress.route_warnings()
    pd.set_option("display.max_colwidth", None)  # reports show whole sentences (sources, reasons), not "..."
    settings = run_settings(profile, seed=seed, output_dir=output_dir, data_dir=data_dir)
    return NotebookRun(get_spec(name).name, keyed_settings(settings, data_dir, external_dir))


def _display(data: dict[str, Any], metadata: dict[str, Any]) -> None:
    """Display a raw MIME bundle with ferlib metadata (so renderers and tests can find it)."""
    from IPython.display import display

    display(data, raw=True, metadata={METADATA_KEY: metadata})
