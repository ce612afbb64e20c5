"""The run card every report opens with (what ran, on which data and machine), and what reports may show."""
from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ferlib.config import RunSettings
from ferlib.data.sources import DataSource
from ferlib.evaluation.results import git_commit, machine
from ferlib.experiments import FROM_SCRATCH
from ferlib.runtime.paths import display_path

FROM_SCRATCH_NOTE = (
    "Transfer models trained from scratch (no ImageNet weights here): every layer learned from FER-2013 alone, so "
    "the study's comparisons are made on networks that learned, not in the study's ImageNet setting; each verdict "
    "says so."
)
RANDOM_WEIGHTS_NOTE = (
    "Randomly initialised backbones (no ImageNet weights offline): a frozen random backbone's pooled "
    "features carry almost no information, so head-only experiments stay near the majority-class rate "
    "and comparisons between them are noise. These runs check the pipeline end to end; the study's "
    "claims need ImageNet weights (profile full, or weights='imagenet' with the file in the Keras cache)."
)


def run_card(notebook: str, settings: RunSettings, sources: Sequence[DataSource],
             weights: str | None, model: str | None = None) -> dict[str, Any]:
    """Return what ran, as data: notebook, profile, data, weights, model used, seed, commit, date, machine."""
    return {
        "notebook": notebook,
        "profile": settings.profile.name,
        "profile_description": settings.profile.description + (
            f"; epochs capped at {settings.profile.max_epochs}, {settings.profile.ablation_seeds} seed(s) per "
            "ablation: a check of the code path" if settings.profile.max_epochs else ""),
        "seed": settings.seed,
        "data": [s.describe() for s in sources],
        "synthetic": any(s.embedded for s in sources),
        "weights": None if weights is None else str(weights),
        "random_weights": str(weights or "").startswith("random"),
        "from_scratch": FROM_SCRATCH in str(weights or ""),
        "model": model,
        "git_commit": git_commit(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "wall_time_s": None,
    }


def card_html(card: dict[str, Any]) -> str:
    """Return the run card as an HTML block: amber for embedded data or random weights, blue otherwise."""
    loud = card["synthetic"] or card["random_weights"] or card.get("from_scratch")
    color, background = ("#d97706", "#fffbeb") if loud else ("#2563eb", "#eff6ff")
    head = ("EMBEDDED SYNTHETIC DATA: these numbers come from generated faces, not real photos. Point data_dir / "
            "external_dir (run_all.sh --data / --external) at real data to reproduce the study." if card["synthetic"]
            else "Real data.")
    wall = card.get("wall_time_s")
    rows = [
        ("profile", f"{card['profile']} ({card['profile_description']})"),
        ("data", "<br>".join(html.escape(d) for d in card["data"]) or "none"),
        ("weights", card["weights"] or "not applicable"),
        *([("model", card["model"])] if card.get("model") else []),
        ("seed", card["seed"]),
        ("commit", str(card["git_commit"])[:12]
         + (" (uncommitted changes)" if "dirty" in str(card["git_commit"]) else "")),
        ("date", card["date"]),
        ("machine", card["machine"]),
        ("wall time", minutes_text(wall) if wall is not None else "running interactively (filled in by run_all.sh)"),
    ]
    body = "".join(f"<tr><th style='text-align:left;padding-right:12px;vertical-align:top'>{k}</th>"
                   f"<td style='text-align:left'>{v if k == 'data' else html.escape(str(v))}</td></tr>"
                   for k, v in rows)
    note = next((f"<p style='margin:6px 0 0 0'><strong>{html.escape(text)}</strong></p>"
                 for flag, text in (("random_weights", RANDOM_WEIGHTS_NOTE), ("from_scratch", FROM_SCRATCH_NOTE))
                 if card.get(flag)), "")
    style = (f"padding:12px 16px;margin:8px 0;border-radius:6px;border-left:6px solid {color};"
             f"background:{background};font-family:sans-serif;line-height:1.4")
    return (f'<div class="ferlib-run-card" style="{style}">'
            f"<strong>{html.escape(head)}</strong><table style='margin-top:6px;border:none'>{body}</table>{note}</div>")


def minutes_text(seconds: float | None) -> str:
    """Return a wall time as reports show it: "75 s" below two minutes, else "2.5 min" ("" for None)."""
    return "" if seconds is None else f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


SHARED_DATA_MARK = "shared/data"  # the project's shared real-data folder: never show its images in reports


def examples_allowed(show_examples: bool | str, *sources: DataSource) -> tuple[bool, str]:
    """Return (whether example images may be shown, why): "auto" shows them unless a source is shared data."""
    if show_examples not in ("auto", True, False):
        raise ValueError(f"show_examples must be 'auto', True or False, got {show_examples!r}")
    shared = [s for s in sources if SHARED_DATA_MARK in s.root.resolve().as_posix()]
    if show_examples == "auto":
        if shared:
            return False, f"not shown: {display_path(shared[0].root)} is the project's shared data (counts only)"
        return True, "shown: the data is not the project's shared data"
    return bool(show_examples), f"{'shown' if show_examples else 'not shown'}: show_examples={show_examples}"
