"""Inference measurements beside the photo latency: cold starts, and video frames per second.

- `cold_start`: a new process predicting one photo, wall time, for this project (each backend) and for `fer`.
- `video_fps`: frames classified per second on a clip made from a photo (a temporary file, never kept).
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ferlib.bench import fer_package
from ferlib.data.decode import read_image
from ferlib.photos import video
from ferlib.photos.predict import EmotionClassifier

COLD_REPEATS = 3


def _timed_process(args: list[str], repeats: int) -> dict[str, Any]:
    samples, last = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        last = subprocess.run(args, capture_output=True, text=True, timeout=600)
        samples.append(time.perf_counter() - start)
    if last is not None and last.returncode != 0:
        return {"skipped": f"exit {last.returncode}: {last.stderr.strip().splitlines()[-1:] or ''}"}
    return {"median_s": round(float(np.median(samples)), 2), "runs": [round(s, 2) for s in samples]}


FER_ONE_PHOTO = """
import sys, cv2
from fer.fer import FER
print(FER(mtcnn=False).detect_emotions(cv2.imread(sys.argv[1])))
"""


COLD_ROWS = {"litert": "this project (LiteRT)", "keras": "this project (--backend keras)"}


def cold_start(photo: Path, repeats: int = COLD_REPEATS, model: Path | None = None,
               backends: tuple[str, ...] = ("litert", "keras")) -> dict[str, Any]:
    """Return the wall time of a new process predicting one photo (import, model load, detect, classify):
    `python -m ferlib predict PHOTO` on each backend (the shipped model, or `model`), and the `fer` package's own
    FER().detect_emotions."""
    ours = [sys.executable, "-m", "ferlib", "predict", str(photo), "--json"]
    ours += ["--model", str(model)] if model else []
    out: dict[str, Any] = {"photo": Path(photo).name, "repeats": repeats}
    for backend in backends:
        out[COLD_ROWS[backend]] = _timed_process([*ours, "--backend", backend], repeats)
    if fer_package.package_dir() is None:
        out["fer package"] = {"skipped": f"not installed: {fer_package.INSTALL_HINT}"}
    else:
        out["fer package"] = _timed_process([sys.executable, "-c", FER_ONE_PHOTO, str(photo)], repeats)
    return out


def write_panning_clip(photo: Path, target: Path, frames: int = 40, fps: float = 10.0,
                       size: tuple[int, int] = (1280, 720)) -> Path:
    """Write a clip of `photo` letterboxed into `size` and panned 3 px per frame (MJPG in .avi); return it."""
    import cv2

    rgb = read_image(photo)[0]
    width, height = size
    scale = min(width / rgb.shape[1], height / rgb.shape[0])
    resized = cv2.resize(rgb, (int(rgb.shape[1] * scale), int(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((height, width, 3), np.uint8)
    y, x = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[y: y + resized.shape[0], x: x + resized.shape[1]] = resized
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for i in range(frames):
        writer.write(np.ascontiguousarray(np.roll(canvas, 3 * i, axis=1)[..., ::-1]))
    writer.release()
    return target


def video_fps(model: Path, photo: Path, frames: int = 40, backends: tuple[str, ...] = ("litert", "keras")
              ) -> dict[str, Any]:
    """Return frames classified per second (every frame sampled: decode, detect, crop, classify, track) on a
    1280x720 clip made from `photo`, for each backend."""
    out: dict[str, Any] = {"clip": f"{frames} frames of {Path(photo).name} letterboxed to 1280x720, panning",
                           "frames": frames}
    with tempfile.TemporaryDirectory() as folder:
        clip = write_panning_clip(photo, Path(folder) / "clip.avi", frames)
        for backend in backends:
            classifier = EmotionClassifier.load(model, backend)
            classifier.warm_up()
            start = time.perf_counter()
            result = video.predict_video(classifier, clip, fps=10.0, progress=False)
            seconds = time.perf_counter() - start
            out[backend] = {"frames_per_s": round(result.frames_sampled / seconds, 1),
                            "faces_per_frame": round(len(result.rows) / max(result.frames_sampled, 1), 2)}
    return out


def markdown(report: dict[str, Any]) -> list[str]:
    """Return the cold starts and video speed as Markdown lines."""
    lines: list[str] = []
    if cold := report.get("cold_start"):
        lines += [f"### Cold start: a new process predicting one photo ({cold['photo']}, median of "
                  f"{cold['repeats']})\n", "| | wall time |", "|---|---|"]
        for who in (*COLD_ROWS.values(), "fer package"):
            if (s := cold.get(who)) is None:
                continue
            lines.append(f"| {who} | {'skipped: ' + s['skipped'] if 'skipped' in s else str(s['median_s']) + ' s'} |")
        lines.append("")
    if (vid := report.get("video")) and "litert" in vid:
        lines += [f"### Video ({vid['clip']}, every frame classified)\n",
                  "| backend | frames per second | faces per frame |", "|---|---|---|"]
        lines += [f"| {b} | {vid[b]['frames_per_s']} | {vid[b]['faces_per_frame']} |" for b in ("litert", "keras")
                  if b in vid]
        lines.append("")
    return lines
