"""The GPU check (`bash tools/gpu_check.sh`): the real training path on a slice of real images, timed per phase.

    .venv/bin/python tools/gpu_check.py --data FER2013_DIR [--profile full] [--images 2048] [--epochs 3]

V4 (cached-feature head), V8 (augmented head), V7 and V13 (both phases) train under a profile's settings through
`train_experiment`; each phase's images/s (epochs after the first, which compiles) projects the whole study's wall
time per notebook as `run_all.sh --dry-run` estimates it, on this GPU and scaled to a T4 by spec FP16 throughput.
Weights are random: the GPU machines have no internet, and speed does not depend on them.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ferlib.config import PROJECT_ROOT, run_settings  # noqa: E402
from ferlib.data.manifest import stratified_subset  # noqa: E402
from ferlib.data.run_data import prepare_internal  # noqa: E402
from ferlib.estimate import CPU_IMAGES_PER_S, estimate_seconds  # noqa: E402
from ferlib.evaluation.evaluate import evaluate_model  # noqa: E402
from ferlib.evaluation.results import machine  # noqa: E402
from ferlib.experiments import get_experiment  # noqa: E402
from ferlib.models.builders import is_transfer  # noqa: E402
from ferlib.runtime.files import write_json, write_text  # noqa: E402
from ferlib.training.train import train_experiment  # noqa: E402

CHECKED = ("V4", "V8", "V7", "V13")
STUDY_IMAGES = {"internal": 59_099, "external": 5_834}  # Human Face Emotions; FER-2013's five classes (Table 3)
# Dense FP16 tensor TFLOP/s from the vendors' spec sheets: a rough scale between GPUs, not a measurement.
GPU_FP16_TFLOPS = {"T4": 65, "P100": 19, "V100": 125, "A10G": 125, "L4": 121, "A100": 312, "H100": 989, "H200": 989,
                   "RTX 4090": 165, "RTX 3090": 71}


def gpu_name() -> str:
    """Return the first GPU's name as TensorFlow reports it, or "CPU"."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    try:
        return str(tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU"))
    except (RuntimeError, ValueError):
        return "GPU"


def spec_ratio_to_t4(name: str) -> float | None:
    """Return how many times a T4's spec throughput this GPU has (None when the name is not in the table)."""
    for key, tflops in sorted(GPU_FP16_TFLOPS.items(), key=lambda kv: -len(kv[0])):
        if key.lower() in name.lower():
            return tflops / GPU_FP16_TFLOPS["T4"]
    return None


def phase_throughput(history: Any, n_train: int, n_val: int) -> list[dict[str, Any]]:
    """Return images/s per phase from a run's history (epoch_seconds), leaving out each phase's first epoch."""
    out = []
    for phase, rows in history.groupby("phase"):
        timed = rows["epoch_seconds"].iloc[1:] if len(rows) > 1 else rows["epoch_seconds"]
        seconds = float(timed.mean())
        out.append({"phase": int(phase), "epochs": int(len(rows)),
                    "first_epoch_s": round(float(rows["epoch_seconds"].iloc[0]), 2),
                    "epoch_s": round(seconds, 3), "images_per_s": round((n_train + n_val) / seconds, 1)})
    return out


def speeds_at_48px(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Return the estimate's throughput table (images/s at 48 px per backbone and phase kind) from the check's
    measurements, scaling the CPU reference's shape for kinds the check did not time."""
    measured: dict[str, dict[str, float]] = {}
    for r in results.values():
        scale = (r["image_size"] / 48) ** 2
        kinds = measured.setdefault(r["backbone"], {})
        for p in r["phases"]:  # a cached head trains on pooled features: its speed says nothing of the backbone
            if p["kind"] != "cached_head":
                kind = {"frozen": "frozen", "finetune": "train"}[p["kind"]]
                kinds[kind] = max(kinds.get(kind, 0.0), p["images_per_s"] * scale)
        if r.get("inference_images_per_s"):  # the feature cache: one forward pass over every image
            kinds["infer"] = max(kinds.get("infer", 0.0), r["inference_images_per_s"] * scale)
    table = {}
    for backbone, reference in CPU_IMAGES_PER_S.items():
        got = measured.get(backbone, {})
        ratio = float(np.median([got[k] / reference[k] for k in got if k in reference])) if got else None
        if ratio is None:  # a backbone the check did not run: scale like the others
            ratios = [v / CPU_IMAGES_PER_S[b][k] for b, ks in measured.items() for k, v in ks.items()
                      if k in CPU_IMAGES_PER_S[b]]
            ratio = float(np.median(ratios)) if ratios else 1.0
        table[backbone] = {k: round(got.get(k, v * ratio), 1) for k, v in reference.items()}
    return table


def run_check(data_dir: str | Path, output_dir: str | Path, n_images: int = 2048, epochs: int = 3,
              profile: str = "full", keys: tuple[str, ...] = CHECKED, image_size: int | None = None) -> dict[str, Any]:
    """Train each experiment on a slice of `data_dir`, time it per phase, project the study; return the report."""
    output_dir = Path(output_dir)
    settings = run_settings(profile, seed=0, output_dir=output_dir, cache_dir=output_dir / "cache")
    internal = prepare_internal(settings, data_dir, progress=False)
    train_rows = stratified_subset(internal.train, int(n_images * 0.8), 0)
    val_rows = stratified_subset(internal.val, max(int(n_images * 0.2), 64), 0)
    results: dict[str, Any] = {}
    started = time.perf_counter()
    for key in keys:
        experiment = get_experiment(key, settings.profile)  # every phase runs `epochs` epochs: the first compiles
        experiment = dataclasses.replace(experiment, image_size=image_size or experiment.image_size, phases=tuple(
            dataclasses.replace(p, epochs=epochs, early_stopping_patience=None) for p in experiment.phases))
        x, y = internal.images(train_rows, experiment.image_size), internal.labels(train_rows)
        xv, yv = internal.images(val_rows, experiment.image_size), internal.labels(val_rows)
        t0 = time.perf_counter()
        run = train_experiment(experiment, x, y, xv, yv, output_dir / "runs", internal.fingerprint, seed=0,
                               batch_size=settings.profile.batch_size, weights="random",
                               mixed_precision=settings.profile.mixed_precision,
                               jit_compile=settings.profile.jit_compile,
                               force=True, verbose=1)
        reloaded_accuracy = evaluate_model(run.model, xv, yv, internal.classes.names,
                                           batch_size=settings.profile.batch_size).accuracy
        phases = phase_throughput(run.history, len(y), len(yv))
        for p, phase in zip(phases, experiment.phases):
            head = is_transfer(experiment.backbone) and phase.trainable_from is None
            p["kind"] = (("cached_head" if head and experiment.augmentation == "none" else "frozen")
                         if head else "finetune")
        extraction = (run.timings.get("phase1") or {}).get("feature_extraction_s")
        results[key] = {"backbone": experiment.backbone, "image_size": experiment.image_size, "phases": phases,
                        "inference_images_per_s": round((len(y) + len(yv)) / extraction, 1) if extraction else None,
                        "augmentation": experiment.augmentation, "class_weights": experiment.class_weights,
                        "kept_phase": run.kept_phase, "validation_accuracy_after_reload": round(reloaded_accuracy, 4),
                        "finite_losses": bool(np.isfinite(run.history[["loss", "val_loss"]].to_numpy()).all()),
                        "wall_s": round(time.perf_counter() - t0, 1)}
    name = gpu_name()
    table = speeds_at_48px(results)
    projection = estimate_seconds(settings.profile, STUDY_IMAGES["internal"], STUDY_IMAGES["external"], table)
    ratio = spec_ratio_to_t4(name)
    report = {
        "device": name, "machine": machine(), "profile": profile,
        "images": {"train": len(train_rows), "val": len(val_rows)},
        "epochs_per_phase": epochs, "experiments": results, "images_per_s_48px": table,
        "projected_study_s": {"this device": projection,
                              "T4 (scaled by spec FP16 throughput)": ({n: round(s * ratio)
                                                                       for n, s in projection.items()}
                                                                      if ratio else None)},
        "t4_scale": ratio, "check_wall_s": round(time.perf_counter() - started, 1),
        "how": "images/s per phase from the epochs after the first; projection: run_all.sh --dry-run's estimate for "
               f"the {profile} profile at the study's size ({STUDY_IMAGES['internal']:,} internal images); T4: times "
               "this GPU's dense FP16 spec throughput over a T4's (an approximation: small models and a 2-core input "
               "pipeline scale less than the spec sheet)",
    }
    return report


def markdown(report: dict[str, Any]) -> str:
    """Return the check's report as Markdown."""
    lines = [f"# GPU check on {report['device']}", "", f"Machine: {report['machine']}; profile {report['profile']}; "
             f"{report['images']['train']:,} training and {report['images']['val']:,} validation images, "
             f"{report['epochs_per_phase']} epochs per phase; "
             f"the check took {report['check_wall_s'] / 60:.1f} min.", "",
             "| experiment | phase | kind | first epoch (s) | epoch (s) | images/s | finite losses "
             "| accuracy after reload |",
             "|---|---|---|---|---|---|---|---|"]
    for key, r in report["experiments"].items():
        for p in r["phases"]:
            lines.append(f"| {key} | {p['phase']} | {p['kind']} | {p['first_epoch_s']} | {p['epoch_s']} | "
                         f"{p['images_per_s']} | {r['finite_losses']} | {r['validation_accuracy_after_reload']} |")
    lines += ["", "Projected wall time of the whole study (minutes):", "", "| notebook | this device | T4 |",
              "|---|---|---|"]
    t4 = report["projected_study_s"]["T4 (scaled by spec FP16 throughput)"] or {}
    for name, seconds in report["projected_study_s"]["this device"].items():
        lines.append(f"| {name} | {seconds / 60:.1f} | {t4[name] / 60:.1f} |" if name in t4
                     else f"| {name} | {seconds / 60:.1f} | unknown |")
    lines += ["", report["how"]]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], folder: Path) -> list[Path]:
    """Write gpu_check.json (which run_all.sh --dry-run reads for its GPU estimate) and gpu_check.md."""
    out = [folder / "gpu_check.json", folder / "gpu_check.md"]
    write_json(out[0], report)
    write_text(out[1], markdown(report))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a FER-2013 folder (its train/ split is used)")
    parser.add_argument("--output-dir", type=Path, default=PROJECT_ROOT / "outputs" / "gpu_check")
    parser.add_argument("--images", type=int, default=2048, help="images to train on (80%%) and validate on")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per phase (the first compiles)")
    parser.add_argument("--profile", default="full")
    parser.add_argument("--size", type=int, default=None, help="input size (default: the profile's)")
    parser.add_argument("--experiments", default=",".join(CHECKED), help="experiments to time")
    args = parser.parse_args(argv)
    report = run_check(args.data, args.output_dir, n_images=args.images, epochs=args.epochs, profile=args.profile,
                       image_size=args.size, keys=tuple(args.experiments.split(",")))
    paths = write_report(report, PROJECT_ROOT / "outputs" / "bench")
    print(markdown(report))
    print("wrote " + " and ".join(str(p) for p in paths))
    return 0 if all(r["finite_losses"] for r in report["experiments"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
