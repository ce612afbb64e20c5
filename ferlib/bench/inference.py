"""Inference measurements beside the photo latency: how to call LiteRT, cold starts, and video frames per second.

- `invocation_choices`: the LiteRT network called once per photo (all views of all faces, the input resized to
  the batch), once per face, once per view, or padded to fixed batch sizes as the Keras backend does; with 1 and
  with all usable threads. What `LiteRTNetwork` does is the first row.
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
from ferlib.models.inference import padded_size
from ferlib.models.litert import LiteRTNetwork, inference_threads, litert_path
from ferlib.photos import video
from ferlib.photos.predict import EmotionClassifier

FACE_COUNTS = (1, 4, 24)  # faces per photo: a portrait, a small group, the largest shared group photo
COLD_REPEATS = 3


def _median_ms(call: Any, repeats: int) -> float:
    call()  # warm up, untimed
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return round(1000 * float(np.median(samples)), 2)


def _ways(network: Any, batch: np.ndarray, views: int) -> dict[str, Any]:
    """Return the ways of classifying one photo's batch of views, each a call taking no argument."""
    def padded() -> None:
        n = padded_size(len(batch))
        network(np.concatenate([batch, np.zeros((n - len(batch), *batch.shape[1:]), batch.dtype)]))

    return {"one call per photo (all views, resized input)": lambda: network(batch),
            "one call per face": lambda: [network(batch[i: i + views]) for i in range(0, len(batch), views)],
            "one call per view (batch of 1)": lambda: [network(batch[i: i + 1]) for i in range(len(batch))],
            "padded to 8/16/32/64 (as the Keras backend)": padded}


def invocation_choices(model: Path, views: int, repeats: int = 30, precision: str = "float32") -> list[dict[str, Any]]:
    """Return the median time to classify one photo's faces (all `views` views of each) per way of calling the
    LiteRT network at `precision`, for FACE_COUNTS faces and 1 or all usable threads."""
    rows = []
    for threads in sorted({1, inference_threads()}):
        network = LiteRTNetwork(litert_path(model, precision), threads)
        size = network.input_shape[0]
        for faces in FACE_COUNTS:
            batch = np.random.default_rng(faces).integers(0, 256, (faces * views, size, size, 3), dtype=np.uint8)
            for way, call in _ways(network, batch, views).items():
                rows.append({"precision": precision, "threads": threads, "faces": faces, "images": len(batch),
                             "way": way, "median_ms": _median_ms(call, repeats)})
    return rows


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
    """Return the cold starts, video speed and invocation choices as Markdown lines."""
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
    if choices := report.get("invocations"):
        lines += [f"### Calling the LiteRT network ({choices[0].get('precision', 'float32')}): one photo's faces, the "
                  "card's views each (median)\n",
                  "| threads | faces | images | way | time |", "|---|---|---|---|---|"]
        lines += [f"| {r['threads']} | {r['faces']} | {r['images']} | {r['way']} | {r['median_ms']} ms |"
                  for r in choices]
        lines.append("")
    return lines
