"""Command line.

    python -m ferlib evaluate --model MODEL --data DIR [--json OUT]
    python -m ferlib bench feature-cache|throughput [options]
    python -m ferlib champion --data DIR --external DIR [--profile cpu]
    python -m ferlib ablate --data DIR [--epochs 8] [--variants champion,no_augmentation,...]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ferlib.config import PROJECT_ROOT


def _default_cache() -> Path:
    return Path(os.environ.get("FERLIB_CACHE_DIR") or PROJECT_ROOT / "outputs" / "cache")


def evaluate_folder(model_path: Path, data_dir: Path, cache_dir: Path, batch_size: int = 64) -> dict:
    """Return accuracy, n, per-class metrics, confusion, model and data provenance for a labelled folder."""
    from ferlib.data import build_manifest, fingerprint, label_indices, load_images, skip_summary, usable
    from ferlib.evaluate import evaluate_model
    from ferlib.modelcard import load_with_card
    from ferlib.sources import detect_source

    loaded = load_with_card(model_path)
    source = detect_source(data_dir, "external")
    manifest = build_manifest(source, cache_dir)
    rows = usable(manifest)
    images = load_images(rows, loaded.image_size, cache_dir)
    evaluation = evaluate_model(loaded.model, images, label_indices(rows), batch_size=batch_size)
    result = evaluation.to_dict()
    result["model"] = {"path": str(model_path), "name": loaded.card.get("name"), "weights": loaded.card.get("weights"),
                       "experiment": loaded.card.get("experiment", {}).get("key"), "input_size": loaded.image_size,
                       "provenance": loaded.card.get("provenance")}
    result["data"] = {"source": source.describe(), "fingerprint": fingerprint(manifest),
                      "not_used": skip_summary(manifest).to_dict(orient="records")}
    return result


def _print_report(result: dict) -> None:
    from ferlib.evaluate import report_table

    print(f"model: {result['model']['path']} ({result['model']['input_size']} px, weights {result['model']['weights']})")
    print(result["data"]["source"])
    for item in result["data"]["not_used"]:
        print(f"  not used: {item['files']} file(s): {item['status']}: {item['reason']}")
    print(f"\naccuracy: {result['accuracy']:.4f} on {result['n']:,} images\n")
    print(report_table(result).round(3).to_string(na_rep=""))


def _bench(args: argparse.Namespace) -> int:
    from ferlib import bench

    if args.which == "feature-cache":
        result = bench.feature_cache_speedup(n_images=args.images, image_size=args.size, epochs=args.epochs)
    else:
        result = bench.training_throughput(args.experiment, args.profile, steps=args.steps)
    out = args.json or PROJECT_ROOT / "outputs" / "bench" / f"{args.which}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


def _champion(args: argparse.Namespace) -> int:
    from ferlib import champion

    if args.command == "champion":
        result = champion.champion_from_folders(args.profile, args.data, args.external, args.seed, args.output_dir,
                                                args.force).result
        scores = {"validation": result["validation_scores"], "external": result.get("external_scores")}
        print(json.dumps({"training_time_s": round(result["training_time_s"], 1), "epochs": result["epochs_run"],
                          **scores}, indent=2))
        return 0
    names = args.variants.split(",") if args.variants else list(champion.ABLATIONS)
    table, csv = champion.ablation_from_folders(args.profile, args.data, args.epochs, names, args.seed,
                                                args.output_dir, args.force)
    print(table.round(4).to_string())
    print(f"wrote {csv}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m ferlib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="score a saved model on a folder with class subfolders")
    ev.add_argument("--model", required=True, type=Path, help="a .keras model saved by notebook 05")
    ev.add_argument("--data", required=True, type=Path,
                    help="labelled folder: <dir>/<Class>/*, <dir>/Data/<Class>/*, FER-2013 folders (test split) or CSV")
    ev.add_argument("--json", type=Path, help="also write the result as JSON here")
    ev.add_argument("--cache", type=Path, default=None, help="cache folder for manifests and decoded images")
    ev.add_argument("--batch-size", type=int, default=64)
    bench = sub.add_parser("bench", help="speed measurements (written as JSON under outputs/bench/)")
    bench.add_argument("which", choices=["feature-cache", "throughput"],
                       help="feature-cache: cached vs through-backbone head training; throughput: images/s per phase")
    bench.add_argument("--experiment", default="V13")
    bench.add_argument("--profile", default="full", help="profile whose settings are measured (default full)")
    bench.add_argument("--steps", type=int, default=20, help="training steps to time (throughput)")
    bench.add_argument("--images", type=int, default=512, help="images to train on (feature-cache)")
    bench.add_argument("--size", type=int, default=96, help="input size (feature-cache)")
    bench.add_argument("--epochs", type=int, default=30, help="head epochs (feature-cache)")
    bench.add_argument("--json", type=Path, default=None, help="output file (default outputs/bench/<which>.json)")
    for name, what in (("champion", "train C1, the CPU champion, and score it with and without flip averaging"),
                       ("ablate", "train C1's ablation variants with a shortened epoch budget")):
        cmd = sub.add_parser(name, help=what)
        cmd.add_argument("--data", type=Path, default=None, help="internal data (default: env, Kaggle, embedded)")
        if name == "champion":
            cmd.add_argument("--external", type=Path, default=None, help="external test data")
        else:
            cmd.add_argument("--epochs", type=int, default=8, help="epoch budget of every variant")
            cmd.add_argument("--variants", default=None, help="comma-separated variant names (default: all)")
        cmd.add_argument("--profile", default="cpu")
        cmd.add_argument("--seed", type=int, default=42)
        cmd.add_argument("--output-dir", type=Path, default=None, help="default: <project>/outputs")
        cmd.add_argument("--force", action="store_true", help="retrain finished runs")
    args = parser.parse_args(argv)
    if args.command == "bench":
        return _bench(args)
    if args.command in ("champion", "ablate"):
        return _champion(args)

    from ferlib.sources import DataError

    try:
        result = evaluate_folder(args.model, args.data, args.cache or _default_cache(), args.batch_size)
    except (FileNotFoundError, DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_report(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str))
        print(f"\nwrote {args.json}")
    return 0
