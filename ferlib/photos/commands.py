"""The command-line commands that use a saved model: predict (photos, folders, videos, a camera) and evaluate.

Nothing here imports TensorFlow: the shipped model runs with LiteRT (`--backend keras` loads Keras when asked).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ferlib.data.sources import DataError
from ferlib.evaluation.evaluate import report_table
from ferlib.models.inference import BACKENDS, PRECISION_CHOICES
from ferlib.models.shipped import DEFAULT_MODEL, SHIPPED_MODELS
from ferlib.photos import predict, tables, video
from ferlib.photos.faces import DETECTORS, require_haar_cascades
from ferlib.photos.folder_scores import evaluate_folder
from ferlib.photos.predict import VIEWS
from ferlib.runtime import files
from ferlib.runtime.paths import default_cache_dir

PHOTO_COMMANDS = ("predict", "evaluate")
BACKEND_HELP = ("auto (default): LiteRT when the model has a checked .tflite beside it (the shipped one has), "
                "else Keras; litert; keras (needs TensorFlow: pip install 'ferlib[cpu]')")
MODEL_HELP = (f"a shipped model ({', '.join(SHIPPED_MODELS)}: FER-2013's seven emotions or the study's five; "
              f"default {DEFAULT_MODEL}) or a .keras model with its .json card (e.g. saved by notebook 05)")
PRECISION_HELP = ("LiteRT: card (default: the precision the model card chose on the validation split, for a pooled "
                  "model the one chosen for all its networks), float32 (the Keras network converted: its numbers "
                  "within 1e-3) or int8")


def add_photo_commands(sub) -> None:
    """Add predict and evaluate to the command line's sub-parsers."""
    ev = sub.add_parser("evaluate", help="score a saved model on a folder with class subfolders")
    ev.add_argument("--model", default=None, help=MODEL_HELP)
    ev.add_argument("--data", required=True, type=Path,
                    help="labelled folder: <dir>/<Class>/*, <dir>/Data/<Class>/*, FER-2013 folders (test split) or CSV")
    ev.add_argument("--json", type=Path, help="also write the result as JSON here")
    ev.add_argument("--cache", type=Path, default=None, help="cache folder for manifests and decoded images")
    ev.add_argument("--batch-size", type=int, default=64)
    ev.add_argument("--backend", choices=BACKENDS, default="auto", help=BACKEND_HELP)
    ev.add_argument("--precision", choices=PRECISION_CHOICES, default="card", help=PRECISION_HELP)
    pr = sub.add_parser("predict", help="detect faces in photos and predict their emotions",
                        description="Exit status: 0 when at least one input (photo or video) was read whole, 1 "
                                    "when every input failed (its reason is in the table or JSON) or the only videos "
                                    "read look truncated, 2 when the model cannot be loaded.")
    pr.add_argument("--model", default=None, help=MODEL_HELP)
    pr.add_argument("photos", nargs="*", type=Path,
                    help="image files, folders (every image file in them and their sub-folders) or videos "
                         "(.mp4, .mov, .avi, ...: see --fps)")
    pr.add_argument("--json", action="store_true", help="print JSON (one entry per input file) instead of a table")
    pr.add_argument("--csv", type=Path, default=None,
                    help="also write a CSV: one row per face with its box, label, confidence and one score per "
                         "class of the model")
    pr.add_argument("--annotate", type=Path, default=None, help="write each photo with boxes and labels drawn here")
    pr.add_argument("--no-detect", action="store_true", help="classify each whole image as one pre-cropped face")
    pr.add_argument("--fps", type=float, default=4.0, help="videos: frames sampled per second (default 4)")
    pr.add_argument("--seconds", type=float, default=None,
                    help="videos and camera: stop after this many seconds (camera default: 10)")
    pr.add_argument("--camera", type=int, default=None, help="also read this camera (its index, e.g. 0)")
    pr.add_argument("--video-out", type=Path, default=None,
                    help="videos: folder for <name>.emotions.csv (one row per face per frame) and .png (default: "
                         "beside each video; a camera's in the current folder)")
    pr.add_argument("--views", choices=VIEWS, default=VIEWS[0],
                    help="test-time views per face: the model card's (as its scores were measured; default), "
                         "the face and its mirror image, or the face alone (fastest)")
    pr.add_argument("--backend", choices=BACKENDS, default="auto", help=BACKEND_HELP)
    pr.add_argument("--precision", choices=PRECISION_CHOICES, default="card", help=PRECISION_HELP)
    pr.add_argument("--detector", choices=DETECTORS, default=DETECTORS[0],
                    help="face detector: BlazeFace (MediaPipe's, with LiteRT; default) or OpenCV's Haar cascades")


def run_photo_command(args: argparse.Namespace) -> int:
    """Run predict or evaluate; return the exit status."""
    return _predict(args) if args.command == "predict" else _evaluate(args)


def _evaluate(args: argparse.Namespace) -> int:
    try:
        result = evaluate_folder(args.model, args.data, args.cache or default_cache_dir(), args.batch_size,
                                 args.backend, args.precision)
    except (FileNotFoundError, DataError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model = result["model"]
    if model["backend_note"]:
        print(f"note: {model['backend_note']}", file=sys.stderr)
    print(f"model: {model['path']} ({len(model['classes'])} classes, {model['input_size']} px, weights "
          f"{model['weights']}; faces {model['preprocessing']}; run with {model['backend']} {model['precision']})")
    print(result["data"]["source"])
    for item in result["data"]["not_used"]:
        print(f"  not used: {item['files']} file(s): {item['status']}: {item['reason']}")
    low, high = result["accuracy_ci"]
    print(f"\naccuracy: {result['accuracy']:.4f} (95% CI {low:.4f}-{high:.4f}) on {result['n']:,} images\n")
    print(report_table(result).round(3).to_string(na_rep=""))
    if args.json:
        files.write_json(args.json, result)
        print(f"\nwrote {args.json}")
    return 0


def _predict_video(args: argparse.Namespace, classifier, source: Path | int, taken: set[str]) -> dict:
    """Predict on a video or camera, write <name>.emotions.csv and .png; return its JSON entry (status 1: unread)."""
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
    csv, png = out_dir / f"{stem}.emotions.csv", out_dir / f"{stem}.emotions.png"
    files.write_csv(csv, result.rows, index=False)
    files.save_figure(video.plot_timeline(result), png, dpi=90, bbox_inches="tight")
    print(f"{source}: {result.frames_sampled} frames sampled ({result.sampled_fps:.3g} per second of its "
          f"{result.native_fps:.3g}), {result.faces} face(s) followed, {len(result.rows)} rows; wrote {csv} and "
          f"{png}", file=sys.stderr)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return {"path": str(source), "error": None, "video": {
        "csv": str(csv), "png": str(png), "frames_sampled": result.frames_sampled, "faces": result.faces,
        "rows": int(len(result.rows)), "warnings": result.warnings},
        "status": int(any("truncated" in w for w in result.warnings))}


def _predict(args: argparse.Namespace) -> int:
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
        return video_status  # 1 without videos
    results = classifier.predict_paths(args.photos, detect=not args.no_detect,
                                       progress=len(args.photos) > 1 and not args.json)
    if args.csv:
        files.write_csv(args.csv, tables.results_frame(results, classifier.classes), index=False)
        print(f"wrote {args.csv} (one row per face; photos without a face and unreadable files say why)",
              file=sys.stderr)
    if args.annotate:
        for path in tables.write_annotated(results, args.annotate):
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        print(json.dumps([r.to_dict() for r in results] + video_entries, indent=2))
    else:
        print(tables.results_table(results).to_string(index=False))
    return 0 if any(r.error is None for r in results) else video_status  # 0: at least one input was read whole
