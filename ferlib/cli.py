"""Command line.

    python -m ferlib predict [--model MODEL] PHOTO_FOLDER_OR_VIDEO... [--json] [--csv F] [--annotate DIR]
    python -m ferlib evaluate [--model MODEL] --data DIR [--json OUT]
    python -m ferlib audit --internal DIR --external DIR [--json OUT]
    python -m ferlib champion --data DIR --external DIR [--profile cpu] [--epochs N] [--variant V]
    python -m ferlib ablate --data DIR [--epochs 8] [--variants champion,no_augmentation,...]
    python -m ferlib distill --data DIR --external DIR [--teachers N]
    python -m ferlib ship MODEL.keras [--data DIR]        python -m ferlib convert [MODEL.keras] [--data DIR]
    python -m ferlib bench [all|feature-cache|throughput|audit|gpu-check|memory] [options]
    python -m ferlib report [EXECUTED.ipynb...] [--output-dir outputs] [--check]

predict and evaluate run the shipped model (or MODEL's LiteRT files) with LiteRT, without TensorFlow.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ferlib.bench.suite import PARTS
from ferlib.config import PROJECT_ROOT
from ferlib.models.inference import BACKENDS, PRECISION_CHOICES
from ferlib.runtime import files
from ferlib.training.commands import TRAINING_COMMANDS, add_training_commands, run_training_command

BACKEND_HELP = ("auto (default): LiteRT when the model has a checked .tflite beside it (the shipped one has), "
                "else Keras; litert; keras (needs TensorFlow: pip install 'ferlib[cpu]')")
PRECISION_HELP = ("LiteRT: card (default: the precision the model card chose on the validation split; int8 for "
                  "the shipped model), float32 (Keras's own numbers) or int8")
_SHARED = PROJECT_ROOT.parent / "shared" / "data"  # the development machines' real data (absent elsewhere)


def _default_cache() -> Path:
    return Path(os.environ.get("FERLIB_CACHE_DIR") or PROJECT_ROOT / "outputs" / "cache")


def _print_report(result: dict) -> None:
    from ferlib.evaluation.evaluate import report_table

    print(f"model: {result['model']['path']} ({result['model']['input_size']} px, "
          f"weights {result['model']['weights']}; run with {result['model']['backend']} "
          f"{result['model']['precision']})")
    print(result["data"]["source"])
    for item in result["data"]["not_used"]:
        print(f"  not used: {item['files']} file(s): {item['status']}: {item['reason']}")
    low, high = result["accuracy_ci"]
    print(f"\naccuracy: {result['accuracy']:.4f} (95% CI {low:.4f}-{high:.4f}) on {result['n']:,} images\n")
    print(report_table(result).round(3).to_string(na_rep=""))


def _bench_all(args: argparse.Namespace) -> int:
    from ferlib.bench import suite

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
                           cache_dir=args.cache or _default_cache(), backend=args.backend,
                           precision=args.precision)
    return _write_bench(args.json or PROJECT_ROOT / "outputs" / "bench" / "bench.json", report,
                        suite.markdown(report))


def _bench_model(model: Path | None) -> Path | None:
    """Return the model bench measures: the one given (None when it does not exist), else the shipped one."""
    if model is not None:
        return model if model.is_file() else None
    from ferlib.models.shipped import shipped_model_path

    try:
        return shipped_model_path()
    except FileNotFoundError:
        return None


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


def _bench(args: argparse.Namespace) -> int:
    from ferlib.bench import timers

    if args.which == "all":
        return _bench_all(args)
    if args.which == "audit":
        return _bench_audit(args)
    if args.which == "memory":
        from ferlib.bench.memory_probe import probe
        from ferlib.evaluation.results import machine

        result = probe(args.experiment, args.profile, images=args.images if args.images != 512 else 59_099)
        result["machine"] = machine()
        return _write_bench(args.json or PROJECT_ROOT / "outputs" / "bench" / "memory.json", result)
    if args.which == "gpu-check":
        from ferlib.bench import gpu_check

        report = gpu_check.run_check(args.data, args.output_dir or PROJECT_ROOT / "outputs" / "gpu_check",
                                     n_images=args.images if args.images != 512 else 2048, epochs=args.check_epochs,
                                     profile=args.profile, image_size=args.check_size,
                                     keys=tuple(args.check_experiments.split(",")))
        paths = gpu_check.write_report(report, (args.json.parent if args.json else PROJECT_ROOT / "outputs" / "bench"))
        print(gpu_check.markdown(report))
        print("wrote " + " and ".join(str(p) for p in paths))
        return 0 if all(r["finite_losses"] for r in report["experiments"].values()) else 1
    if args.which == "feature-cache":
        result = timers.feature_cache_speedup(n_images=args.images, image_size=args.size, epochs=args.epochs)
    else:
        result = timers.training_throughput(args.experiment, args.profile, steps=args.steps)
    return _write_bench(args.json or PROJECT_ROOT / "outputs" / "bench" / f"{args.which}.json", result)


def _bench_audit(args: argparse.Namespace) -> int:
    from ferlib.audit import quality

    result, _ = quality.run_benchmark(args.data, args.cache or _default_cache(), seed=0)
    return _write_bench(args.json or PROJECT_ROOT / "outputs" / "bench" / "audit.json", result,
                        quality.to_markdown(result))


def _audit(args: argparse.Namespace) -> int:
    from ferlib.audit.leakage import DEFAULT_THRESHOLD, audit_folders, report_text
    from ferlib.data.sources import DataError

    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    try:
        _, result = audit_folders(args.internal, args.external, args.cache or _default_cache(), threshold,
                                  seed=args.seed)
    except (FileNotFoundError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report_text(result))
    if args.json:
        files.write_json(args.json, result)
        print(f"\nwrote {args.json} (every flagged pair and the counts)")
    return 0


def _predict_video(args: argparse.Namespace, classifier, source: Path | int, taken: set[str]) -> dict:
    """Predict on one video (or camera), write <name>.emotions.csv and .png; return its JSON entry (status 0,
    or 1 when it could not be read or looks truncated)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ferlib.photos import video

    try:
        result = video.predict_video(classifier, source, fps=args.fps, max_seconds=args.seconds,
                                     progress=not args.json)
    except video.VideoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return {"path": str(source), "error": str(exc), "status": 1}
    name = f"camera{source}" if isinstance(source, int) else Path(source).stem
    # beside the video unless --video-out says where (a camera's go to the current folder)
    out_dir = args.video_out or (Path.cwd() if isinstance(source, int) else Path(source).resolve().parent)
    stem, k = name, 1
    while str(out_dir / stem) in taken:  # two videos of the same name from different folders, one --video-out
        k += 1
        stem = f"{name}_{k}"
    taken.add(str(out_dir / stem))
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, png = out_dir / f"{stem}.emotions.csv", out_dir / f"{stem}.emotions.png"
    files.write_csv(csv, result.rows, index=False)
    figure = video.plot_timeline(result)
    files.save_figure(figure, png, dpi=90, bbox_inches="tight")
    plt.close(figure)
    print(f"{source}: {result.frames_sampled} frames sampled ({result.sampled_fps:.3g} per second of its "
          f"{result.native_fps:.3g}), {result.faces} face(s) followed, {len(result.rows)} rows; wrote {csv} and "
          f"{png}", file=sys.stderr)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    truncated = any("truncated" in w for w in result.warnings)
    return {"path": str(source), "error": None, "video": {
        "csv": str(csv), "png": str(png), "frames_sampled": result.frames_sampled, "faces": result.faces,
        "rows": int(len(result.rows)), "warnings": result.warnings}, "status": 1 if truncated else 0}


def _predict(args: argparse.Namespace) -> int:
    from ferlib.photos import predict, video
    from ferlib.photos.faces import require_haar_cascades

    try:
        if args.detector == "haar":
            require_haar_cascades()  # OpenCV 5 has none: say so before loading anything
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        classifier = predict.EmotionClassifier.load(args.model, args.backend, args.precision,
                                                    detector=args.detector, views=args.views)
    except (FileNotFoundError, ValueError, OSError, RuntimeError) as exc:
        print(f"error: cannot load model: {exc}", file=sys.stderr)
        return 2
    if classifier.backend_note:
        print(f"note: {classifier.backend_note}", file=sys.stderr)
    videos = [p for p in args.photos if video.is_video(p) and not p.is_dir()]
    args.photos = [p for p in args.photos if p not in videos]
    if args.camera is not None:
        videos.append(args.camera)
    taken: set[str] = set()
    video_entries = [_predict_video(args, classifier, v, taken) for v in videos]
    video_status = min((e.pop("status") for e in video_entries), default=1)
    if not args.photos:
        if not videos:
            print("error: give photos, folders or videos to predict on, or --camera N", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps(video_entries, indent=2))
        return video_status
    for line in predict.describe_inputs(args.photos):
        print(line, file=sys.stderr)
    if not predict.expand_inputs(args.photos):
        print("error: nothing to predict on: the folders given hold no image files (listed above)", file=sys.stderr)
        return min(1, video_status) if videos else 1
    results = classifier.predict_paths(args.photos, detect=not args.no_detect,
                                       progress=len(args.photos) > 1 and not args.json)
    if args.csv:
        files.write_csv(args.csv, predict.results_frame(results), index=False)
        print(f"wrote {args.csv} (one row per face; photos without a face and unreadable files say why)",
              file=sys.stderr)
    if args.annotate:
        for path in predict.write_annotated(results, args.annotate):
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        print(json.dumps([r.to_dict() for r in results] + video_entries, indent=2))
    else:
        print(predict.results_table(results).to_string(index=False))
    return min(predict.exit_status(results), video_status) if videos else predict.exit_status(results)


def _report(args: argparse.Namespace) -> int:
    """Render executed notebooks to HTML, rebuild the landing page, and (with --check) check every report."""
    from ferlib.reports.check import check_reports
    from ferlib.reports.index import build_index
    from ferlib.reports.render import render

    out = (args.output_dir or PROJECT_ROOT / "outputs").resolve()
    for executed in args.notebooks:
        if not executed.is_file():
            print(f"error: no executed notebook at {executed}", file=sys.stderr)
            return 2
        render(executed, out / "reports")
    index = build_index(out)
    print(f"landing page: {index}")
    if not args.check:
        return 0
    checks = check_reports(out, forbidden_paths=[str(p) for p in args.forbid])
    for check in checks:
        counts = ", ".join(f"{place} {n}" for place, n in check.figures.items())
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: figures {counts}")
        for problem in check.problems:
            print(f"       - {problem}")
    return 0 if all(c.ok for c in checks) else 1


KERAS_BACKENDS = ("tensorflow", "jax", "torch", "keras")  # `pip install ferlib` brings none of them
NOTEBOOK_STACK = ("nbconvert", "nbformat", "papermill", "IPython", "seaborn")  # the [notebooks] extra


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (2, with one line naming the extra to install, when a command
    needs what `pip install ferlib` leaves to the extras: TensorFlow and Keras, or the notebook stack)."""
    try:
        return _main(argv)
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top in KERAS_BACKENDS:
            print("error: this command needs TensorFlow, which is not installed (it comes with an extra): "
                  "pip install 'ferlib[cpu]' (in a clone: pip install '.[cpu]'; with an NVIDIA GPU: '[gpu]')",
                  file=sys.stderr)
        elif top in NOTEBOOK_STACK:
            print(f"error: this command needs {top}, which is not installed (it comes with the notebook extra): "
                  "pip install 'ferlib[notebooks]' (in a clone: pip install '.[notebooks]')", file=sys.stderr)
        else:
            raise
        return 2


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ferlib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="score a saved model on a folder with class subfolders")
    ev.add_argument("--model", type=Path, default=None,
                    help="a .keras model with its card, e.g. saved by notebook 05 (default: the shipped C1)")
    ev.add_argument("--data", required=True, type=Path,
                    help="labelled folder: <dir>/<Class>/*, <dir>/Data/<Class>/*, FER-2013 folders (test split) or CSV")
    ev.add_argument("--json", type=Path, help="also write the result as JSON here")
    ev.add_argument("--cache", type=Path, default=None, help="cache folder for manifests and decoded images")
    ev.add_argument("--batch-size", type=int, default=64)
    ev.add_argument("--backend", choices=BACKENDS, default="auto", help=BACKEND_HELP)
    ev.add_argument("--precision", choices=PRECISION_CHOICES, default="card", help=PRECISION_HELP)
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
    bench.add_argument("--model", type=Path, default=None,
                       help="bench all: the model to measure (default: the shipped C1, ferlib/assets/)")
    bench.add_argument("--backend", choices=BACKENDS, default="auto",
                       help="bench all: the backend latency, accuracy and crop measure (latency times the other too)")
    bench.add_argument("--precision", choices=PRECISION_CHOICES, default="card", help="bench all: " + PRECISION_HELP)
    bench.add_argument("--ood", type=Path, default=_SHARED / "ood-dev" / "muxspace",
                       help="bench all: labelled out-of-distribution folder (skipped when absent)")
    bench.add_argument("--photos", type=Path, default=_SHARED / "photos", help="bench all: photos for latency")
    bench.add_argument("--experiment", default="V13")
    bench.add_argument("--profile", default="full", help="profile whose settings are measured (default full)")
    bench.add_argument("--steps", type=int, default=20, help="training steps to time (throughput)")
    bench.add_argument("--images", type=int, default=512, help="images to train on (feature-cache)")
    bench.add_argument("--size", type=int, default=96, help="input size (feature-cache)")
    bench.add_argument("--epochs", type=int, default=30, help="head epochs (feature-cache)")
    bench.add_argument("--json", type=Path, default=None, help="output file (default outputs/bench/<which>.json)")
    bench.add_argument("--data", type=Path, default=_SHARED / "fer2013",
                       help="FER-2013 folder with train/ and test/ (audit; bench all: loading and accuracy)")
    bench.add_argument("--cache", type=Path, default=None, help="cache folder (audit)")
    au = sub.add_parser("audit", help="leakage audit: exact, near and mirrored duplicates between two data folders")
    au.add_argument("--internal", required=True, type=Path,
                    help="internal data folder (any layout; split as runs split it)")
    au.add_argument("--external", required=True, type=Path, help="external data folder (a FER-2013 folder uses test/)")
    au.add_argument("--json", type=Path, help="write every flagged pair and the counts here")
    au.add_argument("--threshold", type=int, default=None,
                    help="Hamming threshold in bits (default: the calibrated one)")
    au.add_argument("--seed", type=int, default=42, help="seed of the train/validation split")
    au.add_argument("--cache", type=Path, default=None, help="cache folder for manifests and hashes")
    pr = sub.add_parser("predict", help="detect faces in photos and predict their emotions",
                        description="Exit status: 0 when at least one input (photo or video) was read whole, 1 "
                                    "when every input failed (its reason is in the table or JSON) or the only videos "
                                    "read look truncated, 2 when the model cannot be loaded.")
    pr.add_argument("--model", type=Path, default=None,
                    help="a .keras model with its .json card (default: the shipped C1, trained on FER-2013)")
    pr.add_argument("photos", nargs="*", type=Path,
                    help="image files, folders (every image file in them and their sub-folders) or videos "
                         "(.mp4, .mov, .avi, ...: see --fps)")
    pr.add_argument("--json", action="store_true", help="print JSON (one entry per input file) instead of a table")
    pr.add_argument("--csv", type=Path, default=None,
                    help="also write a CSV: one row per face with its box, label, confidence and five scores")
    pr.add_argument("--annotate", type=Path, default=None, help="write each photo with boxes and labels drawn here")
    pr.add_argument("--no-detect", action="store_true", help="classify each whole image as one pre-cropped face")
    pr.add_argument("--fps", type=float, default=4.0, help="videos: frames sampled per second (default 4)")
    pr.add_argument("--seconds", type=float, default=None,
                    help="videos and camera: stop after this many seconds (camera default: 10)")
    pr.add_argument("--camera", type=int, default=None, help="also read this camera (its index, e.g. 0)")
    pr.add_argument("--video-out", type=Path, default=None,
                    help="videos: folder for <name>.emotions.csv (one row per face per frame) and .png (default: "
                         "beside each video; a camera's in the current folder)")
    pr.add_argument("--views", choices=["card", "flip", "single"], default="card",
                    help="test-time views per face: the model card's (as its scores were measured; default), "
                         "the face and its mirror image, or the face alone (fastest)")
    pr.add_argument("--backend", choices=BACKENDS, default="auto", help=BACKEND_HELP)
    pr.add_argument("--precision", choices=PRECISION_CHOICES, default="card", help=PRECISION_HELP)
    pr.add_argument("--detector", choices=["blazeface", "haar"], default="blazeface",
                    help="face detector: BlazeFace (MediaPipe's, with LiteRT; default) or OpenCV's Haar cascades")
    add_training_commands(sub)
    rep = sub.add_parser("report", help="render executed notebooks to HTML reports and rebuild the landing page")
    rep.add_argument("notebooks", nargs="*", type=Path, help="executed notebooks (outputs/notebooks/NN_*.ipynb)")
    rep.add_argument("--output-dir", type=Path, default=None, help="the run's output folder (default: outputs)")
    rep.add_argument("--check", action="store_true",
                     help="check every rendered report: figures embedded and not blank, no log lines or tracebacks")
    rep.add_argument("--forbid", type=Path, action="append", default=[],
                     help="with --check: a machine path that no report may show (repeatable)")
    args = parser.parse_args(argv)
    if args.command == "report":
        return _report(args)
    if args.command == "bench":
        return _bench(args)
    if args.command == "audit":
        return _audit(args)
    if args.command == "predict":
        return _predict(args)
    if args.command in TRAINING_COMMANDS:
        return run_training_command(args)

    from ferlib.data.sources import DataError
    from ferlib.photos.folder_scores import evaluate_folder

    try:
        result = evaluate_folder(args.model, args.data, args.cache or _default_cache(), args.batch_size, args.backend,
                                 args.precision)
    except (FileNotFoundError, DataError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result["model"]["backend_note"]:
        print(f"note: {result['model']['backend_note']}", file=sys.stderr)
    _print_report(result)
    if args.json:
        files.write_json(args.json, result)
        print(f"\nwrote {args.json}")
    return 0
