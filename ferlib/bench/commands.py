"""The `bench` command: every speed and accuracy measurement (`ferlib.bench.suite`), the leakage audit's quality,
the GPU check, memory, training throughput and the feature cache.

Data folders are given (`--data`, `--ood`, `--photos`); a part whose data is missing is reported as skipped.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ferlib.audit import quality
from ferlib.bench.parts import PARTS
from ferlib.config import PROJECT_ROOT
from ferlib.evaluation.results import machine
from ferlib.models.inference import BACKENDS, PRECISION_CHOICES
from ferlib.models.shipped import ASSETS, DEFAULT_MODEL, SHIPPED_MODELS, resolve_model
from ferlib.photos.commands import PRECISION_HELP
from ferlib.runtime import files
from ferlib.runtime.paths import default_cache_dir


def add_bench_command(sub) -> None:
    """Add bench to the command line's sub-parsers."""
    bench = sub.add_parser("bench", help="speed measurements (written as JSON under outputs/bench/)")
    bench.add_argument("which", nargs="?", default="all",
                       choices=["all", "feature-cache", "throughput", "audit", "gpu-check", "memory"],
                       help="all (default): every measurement in one run, written to outputs/bench/bench.{json,md}; "
                            "feature-cache: cached vs through-backbone head training; throughput: images/s per phase; "
                            "audit: recall, false positives and speed of the leakage audit (needs FER-2013 folders); "
                            "gpu-check: V4, V8, V7 and V13 through the real training path on a slice of --data, "
                            "images/s per phase and the study's projected wall time (tools/gpu_check.sh); "
                            "memory: peak memory of one experiment (--experiment, --profile) at the study's data size")
    bench.add_argument("--check-epochs", type=int, default=3, help="gpu-check: epochs per phase (the first compiles)")
    bench.add_argument("--check-size", type=int, default=None, help="gpu-check: input size (default: the profile's)")
    bench.add_argument("--check-experiments", default="V4,V8,V7,V13",
                       help="gpu-check: experiments to time (default V4,V8,V7,V13; V1 and C1 time the CNNs)")
    bench.add_argument("--output-dir", type=Path, default=None, help="gpu-check: folder for its runs and cache")
    bench.add_argument("--parts", default=",".join(PARTS), help=f"bench all: which parts ({', '.join(PARTS)})")
    bench.add_argument("--model", default=None,
                       help="bench all: the model to measure (a shipped model's name or a file; default: the default "
                            "shipped model, with the other shipped model measured beside it)")
    bench.add_argument("--test-copy", type=Path, default=None,
                       help="bench all: another copy of the FER-2013 test split (e.g. the equalized one) scored beside "
                            "--data's in the accuracy part")
    bench.add_argument("--backend", choices=BACKENDS, default="auto",
                       help="bench all: the backend latency, accuracy and crop measure (latency times the other too)")
    bench.add_argument("--precision", choices=PRECISION_CHOICES, default="card", help="bench all: " + PRECISION_HELP)
    bench.add_argument("--ood", type=Path, default=None,
                       help="bench all: labelled out-of-distribution folder (the crop and accuracy parts; skipped "
                            "when not given)")
    bench.add_argument("--photos", type=Path, default=None,
                       help="bench all: photos for latency (dlib annotations in <photos>/annotations give recall)")
    bench.add_argument("--experiment", default="V13")
    bench.add_argument("--profile", default="full", help="profile whose settings are measured (default full)")
    bench.add_argument("--steps", type=int, default=20, help="training steps to time (throughput)")
    bench.add_argument("--images", type=int, default=512, help="images to train on (feature-cache)")
    bench.add_argument("--size", type=int, default=96, help="input size (feature-cache)")
    bench.add_argument("--epochs", type=int, default=30, help="head epochs (feature-cache)")
    bench.add_argument("--json", type=Path, default=None, help="output file (default outputs/bench/<which>.json)")
    bench.add_argument("--data", type=Path, default=None,
                       help="FER-2013 folder with train/ and test/ (audit, gpu-check; bench all: loading and accuracy)")
    bench.add_argument("--cache", type=Path, default=None, help="cache folder (audit)")
    bench.add_argument("--other-copy", type=Path, default=None,
                       help="audit: another copy of the same FER-2013 test files with other pixels (e.g. the "
                            "original next to the equalized copy): half its real pairs calibrate, half are reported")


def run_bench_command(args: argparse.Namespace) -> int:
    """Run one bench measurement; return the exit status."""
    if args.which in ("audit", "gpu-check") and args.data is None:
        print(f"error: bench {args.which} needs --data (a FER-2013 folder with train/ and test/)", file=sys.stderr)
        return 2
    if args.which == "all":
        return _bench_all(args)
    if args.which == "audit":
        return _bench_audit(args)
    if args.which == "memory":
        from ferlib.bench.memory_probe import probe  # lazy: it trains, with TensorFlow

        result = probe(args.experiment, args.profile, images=args.images if args.images != 512 else 59_099)
        result["machine"] = machine()
        return _write_bench(args.json or PROJECT_ROOT / "outputs" / "bench" / "memory.json", result)
    if args.which == "gpu-check":
        from ferlib.bench import gpu_check  # lazy: it trains, with TensorFlow

        report = gpu_check.run_check(args.data, args.output_dir or PROJECT_ROOT / "outputs" / "gpu_check",
                                     n_images=args.images if args.images != 512 else 2048, epochs=args.check_epochs,
                                     profile=args.profile, image_size=args.check_size,
                                     keys=tuple(args.check_experiments.split(",")))
        paths = gpu_check.write_report(report, (args.json.parent if args.json else PROJECT_ROOT / "outputs" / "bench"))
        print(gpu_check.markdown(report))
        print("wrote " + " and ".join(str(p) for p in paths))
        return 0 if all(r["finite_losses"] for r in report["experiments"].values()) else 1
    from ferlib.bench import timers  # lazy: timing training imports TensorFlow

    if args.which == "feature-cache":
        result = timers.feature_cache_speedup(n_images=args.images, image_size=args.size, epochs=args.epochs)
    else:
        result = timers.training_throughput(args.experiment, args.profile, steps=args.steps)
    return _write_bench(args.json or PROJECT_ROOT / "outputs" / "bench" / f"{args.which}.json", result)


def _bench_all(args: argparse.Namespace) -> int:
    from ferlib.bench import suite  # lazy: its training parts import TensorFlow

    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    unknown = set(parts) - set(PARTS)
    if unknown:
        print(f"error: unknown part(s) {', '.join(sorted(unknown))}; known: {', '.join(PARTS)}", file=sys.stderr)
        return 2
    data = args.data if args.data and args.data.exists() else None
    report = suite.run(parts, train_dir=data, test_dir=data,
                       ood_dir=args.ood if args.ood and args.ood.exists() else None,
                       photos_dir=args.photos if args.photos and args.photos.exists() else None,
                       champion=_bench_model(args.model),
                       cache_dir=args.cache or default_cache_dir(), backend=args.backend,
                       precision=args.precision, beside=_beside(args.model),
                       other_tests={f"FER-2013 test, {args.test_copy.name}": args.test_copy} if args.test_copy
                       else None)
    return _write_bench(args.json or PROJECT_ROOT / "outputs" / "bench" / "bench.json", report,
                        suite.markdown(report))


def _bench_model(model: str | None) -> Path | None:
    """Return the model bench measures: the one given (a shipped model's name or a file; None when it does not
    exist), else the default shipped one."""
    try:
        return resolve_model(model)
    except FileNotFoundError:
        return None


def _beside(model: str | None) -> tuple[Path, ...]:
    """Return the other shipped models, measured beside the default one in the same run (none for a model file)."""
    if model is not None and model not in SHIPPED_MODELS:
        return ()
    measured = model or DEFAULT_MODEL
    return tuple(ASSETS / file for name, file in SHIPPED_MODELS.items()
                 if name != measured and (ASSETS / file).is_file())


def _write_bench(out: Path, result: dict, markdown: str | None = None) -> int:
    """Write a benchmark result as JSON (and Markdown beside it), print it and return 0."""
    files.write_json(out, result)
    if markdown is None:
        print(json.dumps(result, indent=2, default=str))
        print(f"wrote {out}")
    else:
        files.write_text(out.with_suffix(".md"), markdown)
        print(markdown)
        print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def _bench_audit(args: argparse.Namespace) -> int:

    result, _ = quality.run_benchmark(args.data, args.cache or default_cache_dir(), seed=0,
                                      other_copy=args.other_copy)
    return _write_bench(args.json or PROJECT_ROOT / "outputs" / "bench" / "audit.json", result,
                        quality.to_markdown(result))
