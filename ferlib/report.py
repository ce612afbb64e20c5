"""What notebooks show besides figures: the data banner and small display helpers."""
from __future__ import annotations

import html

from ferlib.sources import DataSource

_STYLE = ("padding:12px 16px;margin:8px 0;border-radius:6px;border-left:6px solid {color};"
          "background:{background};font-family:sans-serif;line-height:1.4")


RANDOM_WEIGHTS_NOTE = (
    "Randomly initialised backbones (no ImageNet weights offline): a frozen random backbone's pooled "
    "features carry almost no information, so head-only experiments stay near the majority-class rate "
    "and comparisons between them are noise. These runs check the pipeline end to end; the study's "
    "claims need ImageNet weights (profile full, or weights='imagenet' with the file in the Keras cache)."
)


def data_banner(*sources: DataSource, weights: str | None = None) -> str:
    """Return an HTML banner saying which data (and weights) this notebook runs on.

    Real data gets a calm blue banner; the embedded synthetic dataset gets a loud amber one, so
    nobody mistakes its numbers for results on real faces.
    """
    synthetic = any(s.embedded for s in sources)
    color, background = ("#d97706", "#fffbeb") if synthetic else ("#2563eb", "#eff6ff")
    lines = [html.escape(s.describe()) for s in sources]
    head = ("EMBEDDED SYNTHETIC DATA: these numbers come from generated faces, not real photos. "
            "Point data_dir / external_dir (or FERLIB_DATA_DIR / FERLIB_EXTERNAL_DIR) at real data "
            "to reproduce the study." if synthetic else "Real data")
    if weights is not None:
        lines.append(html.escape(f"backbone weights: {weights}"))
        if str(weights).startswith("random"):
            color, background = "#d97706", "#fffbeb"
            lines.append("<strong>" + html.escape(RANDOM_WEIGHTS_NOTE) + "</strong>")
    body = "<br>".join(lines)
    return (f'<div style="{_STYLE.format(color=color, background=background)}">'
            f"<strong>{html.escape(head)}</strong><br>{body}</div>")


def show_banner(*sources: DataSource, weights: str | None = None) -> None:
    """Display the data banner in a notebook (and print it as text for logs)."""
    from IPython.display import HTML, display

    display(HTML(data_banner(*sources, weights=weights)))


SHARED_DATA_MARK = "shared/data"  # the project's shared real-data folder: never show its images in reports


def examples_allowed(show_examples: bool | str, *sources: DataSource) -> tuple[bool, str]:
    """Return (whether example images may be shown, why): "auto" shows them unless a source lies under the
    shared data folder (third-party images must not end up in committed or published reports)."""
    if show_examples not in ("auto", True, False):
        raise ValueError(f"show_examples must be 'auto', True or False, got {show_examples!r}")
    shared = [s for s in sources if SHARED_DATA_MARK in s.root.resolve().as_posix()]
    if show_examples == "auto":
        if shared:
            return False, f"not shown: {shared[0].root} is the project's shared data (counts only)"
        return True, "shown: the data is not the project's shared data"
    return bool(show_examples), f"{'shown' if show_examples else 'not shown'}: show_examples={show_examples}"
