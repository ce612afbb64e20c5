"""Check what a reader will see: every expected figure, as the same not-blank PNG as on disk, in the executed
notebook and both HTML reports, and no log lines, warnings, traceback or machine path the caller names."""
from __future__ import annotations

import base64
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ferlib.reports.catalog import CATALOG, NotebookSpec
from ferlib.reports.render import read_outputs

FORBIDDEN = {
    "absl": re.compile(r"absl"),
    "oneDNN": re.compile(r"oneDNN"),
    # a C++ log line of TensorFlow or XLA: "2026-12-02 14:20:39.153962: E external/...] ..." or "I0000 00:00:..."
    "TensorFlow log line": re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |\b[IWEF]\d{4} \d\d:\d\d:\d\d"),
    "WARNING:": re.compile(r"WARNING:"),
    "Python warning": re.compile(r"\b\w*Warning: "),
    "traceback": re.compile(r"Traceback \(most recent call last\)"),
    "PosixPath": re.compile(r"PosixPath\("),
    "Keras progress": re.compile(r"\d+/\d+ - \d+s .*step"),
    "tqdm bar": re.compile(r"\d+%\|[█▏▎▍▌▋▊▉ #]*\|"),
}
# papermill's injected-parameters cell (shown in the report with code) holds the paths the user passed
INJECTED_PARAMETERS = re.compile(r'<div[^>]*celltag_injected-parameters[^>]*>.*?(?=<div[^>]*class="jp-Cell )', re.S)
PNG_IN_HTML = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=\s]+)")
EMBEDDED_DATA = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\s]+")  # figures embedded in the HTML
MIN_PIXEL_SD = 2.0  # a blank (one-colour) figure has standard deviation 0 over its grey levels


@dataclass
class ReportCheck:
    """The outcome for one notebook: figures found per place, and every problem in words."""

    name: str
    figures: dict[str, int] = field(default_factory=dict)  # place -> expected figures found there
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return True when nothing is wrong."""
        return not self.problems


def is_blank(png: bytes) -> bool:
    """Return True when the PNG does not decode or shows (nearly) one colour."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(png)) as image:
            grey = np.asarray(image.convert("L"), dtype=np.float32)
    except OSError:  # UnidentifiedImageError is one
        return True
    return grey.size == 0 or float(grey.std()) < MIN_PIXEL_SD


def check_notebook(spec: NotebookSpec, output_dir: Path, forbidden_paths: Sequence[str] = ()) -> ReportCheck:
    """Return the check of one rendered notebook (see the module docstring)."""
    import nbformat

    check = ReportCheck(spec.name)
    executed = output_dir / "notebooks" / f"{spec.name}.ipynb"
    reports = {"with code": output_dir / "reports" / f"{spec.name}.html",
               "no code": output_dir / "reports" / f"{spec.name}.nocode.html"}
    if missing := [str(p.name) for p in (executed, *reports.values()) if not p.is_file()]:
        check.problems.append(f"missing: {', '.join(missing)}")
        return check
    shown = read_outputs(nbformat.read(executed, as_version=4))
    if shown.failed:
        check.problems.append("the notebook failed")
    if shown.run_card is None:
        check.problems.append("no run card")
    on_disk: dict[str, bytes] = {}
    for name in dict.fromkeys([*spec.figures, *shown.figures]):  # the catalog's figures, then the others drawn
        path = output_dir / "figures" / spec.name / f"{name}.png"
        if not path.is_file():
            check.problems.append(f"figure {name}: no file {path.name}")
            continue
        on_disk[name] = path.read_bytes()
        if is_blank(on_disk[name]):
            check.problems.append(f"figure {name}: blank or unreadable PNG")
    for place, path in (("notebook", None), *reports.items()):
        text = path.read_text(encoding="utf-8", errors="replace") if path else ""
        embedded = ({base64.b64decode(re.sub(r"\s", "", m)) for m in PNG_IN_HTML.findall(text)} if path
                    else set(shown.figures.values()))
        check.figures[place] = sum(d in embedded for d in on_disk.values())
        where = f"embedded in the {place} report" if path else "shown in the executed notebook"
        check.problems += [f"figure {name}: not {where}" for name, d in on_disk.items() if d not in embedded]
        readable = EMBEDDED_DATA.sub("data:(embedded)", text)  # a figure's base64 can spell "absl" by chance
        for what, pattern in FORBIDDEN.items():
            if m := pattern.search(readable):  # shown with 60 characters around it
                context = re.sub(r"\s+", " ", readable[max(0, m.start() - 60):m.end() + 60])
                check.problems.append(f"{place} report shows {what}: {context}")
        own_input = INJECTED_PARAMETERS.sub("", readable)  # the command line's own arguments, as the user gave them
        check.problems += [f"{place} report shows the machine path {folder}" for folder in forbidden_paths
                           if folder and folder in own_input]
    return check


def check_reports(output_dir: Path, forbidden_paths: Sequence[str] = ()) -> list[ReportCheck]:
    """Return the checks of the rendered notebooks (all in the catalog that have an executed notebook)."""
    return [check_notebook(spec, output_dir, forbidden_paths) for name, spec in CATALOG.items()
            if (output_dir / "notebooks" / f"{name}.ipynb").is_file()]
