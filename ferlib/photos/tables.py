"""What a prediction gives back beyond the records: tables for the terminal and notebooks, CSV rows, annotated
photos."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ferlib.data.decode import image_to_rgb
from ferlib.photos.predict import PhotoResult
from ferlib.runtime.files import save_image


def results_frame(results: list[PhotoResult], classes: list[str]) -> pd.DataFrame:
    """Return one CSV row per face, per photo without faces and per unreadable file (box, label, scores, error)."""
    rows = []
    for r in results:
        base = {"path": r.path, **dict.fromkeys(["face", *"xywh", "label", "confidence", "abstained", *classes])}
        if r.error or not r.faces:
            rows.append(base | {"error": r.error or "no face found"})
        for i, f in enumerate(r.faces, 1):
            rows.append(base | {"face": i, **f.flat(classes), "error": None})
    return pd.DataFrame(rows, columns=[*rows[0]] if rows else ["path", "face", "error"])


def results_table(results: list[PhotoResult]) -> pd.DataFrame:
    """Return one row per face (or per photo without faces) for printing: photo, face, box, label, ..."""
    paths, rows = [r.path for r in results], []
    try:  # each path relative to the folder holding them all ("Happy/x.jpg"), never a machine's absolute path
        root = Path(os.path.commonpath([str(Path(p).resolve().parent) for p in paths])) if paths else Path()
        names = [Path(p).resolve().relative_to(root).as_posix() for p in paths]
    except ValueError:  # different drives: names only
        names = [Path(p).name for p in paths]
    for r, name in zip(results, names):
        if r.error or not r.faces:
            rows.append({"photo": name, "face": "", "box [x, y, w, h]": "",
                         "label": f"error: {r.error}" if r.error else "no face found", "confidence": "",
                         "next best": "", "abstained": ""})
        for i, f in enumerate(r.faces, 1):
            second = f"{f.scores[1][0]} {f.scores[1][1]:.2f}" if len(f.scores) > 1 else ""
            rows.append({"photo": name, "face": i, "box [x, y, w, h]": str(list(f.box)), "label": f.label,
                         "confidence": f"{f.confidence:.2f}", "next best": second,
                         "abstained": "yes" if f.abstained else "no"})
    return pd.DataFrame(rows, columns=["photo", "face", "box [x, y, w, h]", "label", "confidence", "next best",
                                       "abstained"])


def write_annotated(results: list[PhotoResult], out_dir: str | Path) -> list[Path]:
    """Write each readable photo with its faces drawn as <out_dir>/<name>.annotated.jpg; return the paths."""
    from ferlib.viz.photo_figures import draw_predictions  # lazy: matplotlib, only with --annotate

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for r in results:
        if r.error:
            continue
        target = out_dir / f"{Path(r.path).stem}.annotated.jpg"
        k = 1
        while target in written:  # two inputs with the same name from different folders
            k += 1
            target = out_dir / f"{Path(r.path).stem}_{k}.annotated.jpg"
        save_image(draw_predictions(image_to_rgb(Path(r.path)), r.faces), target, quality=90)
        written.append(target)
    return written
