"""The GPU path, checked on a CPU: two replicas, mixed precision, the plan per machine (`pytest -m gpu_path`).

A GPU is not needed: MirroredStrategy runs over two logical CPU devices, mixed_float16 is forced on the CPU,
and run_all.sh --dry-run is run with a stub `nvidia-smi` and with Kaggle's environment variables.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import load_tool, make_class_tree, tiny_data

pytestmark = pytest.mark.gpu_path
ROOT = Path(__file__).resolve().parents[1]

TWO_PHASE = '''
import dataclasses, json, sys
import numpy as np
import ferlib, tensorflow as tf, keras
{setup}
from ferlib.training import train
from ferlib.data.augment import build_augmentation
from ferlib.experiments import Phase, get_experiment
data = np.load(sys.argv[1])
x, y = data["x"], data["y"]
exp = dataclasses.replace(get_experiment("V5", "smoke"), image_size=32, augmentation="geometric", class_weights=True,
                          phases=(Phase(epochs=2, learning_rate=1e-3),
                                  Phase(epochs=1, learning_rate=1e-4, trainable_from=145)))
run = train.train_experiment(exp, x, y, x[:24], y[:24], sys.argv[2], "fp", seed=0, batch_size=8, verbose=0, {kwargs})
reloaded = keras.models.load_model(run.run_dir / f"phase{{run.kept_phase}}" / "best.keras")
keras.config.set_dtype_policy("float32")
probs = reloaded.predict(x[:5], verbose=0)
keras.config.set_dtype_policy("mixed_float16")
probs_mixed = keras.models.load_model(run.run_dir / f"phase{{run.kept_phase}}" / "best.keras").predict(x[:5], verbose=0)
keras.config.set_dtype_policy("mixed_float16")
augmented = build_augmentation("geometric", 0)(np.zeros((2, 32, 32, 3), "float32"), training=True)
print(json.dumps({{"replicas": {replicas}, "history": run.history.to_dict(orient="list"),
                  "output_dtype": str(run.model.output.dtype),
                  "augmentation_dtype": keras.backend.standardize_dtype(augmented.dtype),
                  "probs": probs.tolist(), "probs_mixed_policy": np.asarray(probs_mixed, dtype="float32").tolist(),
                  "kept_phase": run.kept_phase}}))
'''


def run_script(tmp_path: Path, setup: str, kwargs: str, replicas: str) -> dict:
    x, y = tiny_data(n=48, size=32)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    script = TWO_PHASE.format(setup=setup, kwargs=kwargs, replicas=replicas)
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "data.npz"), str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_run(out: dict) -> None:
    history = out["history"]
    assert history["phase"] == [1, 1, 2]  # both phases ran, augmented and class-weighted
    assert all(np.isfinite(history[k]).all() for k in ("loss", "val_loss"))
    assert out["output_dtype"] == "float32" and out["augmentation_dtype"] == "float32"
    probs = np.asarray(out["probs"])
    assert probs.shape == (5, 5) and np.allclose(probs.sum(axis=1), 1, atol=1e-3)
    np.testing.assert_allclose(out["probs_mixed_policy"], probs, atol=2e-2)  # reloads and predicts under any policy


def test_two_replicas_train_both_phases_with_augmentation_and_class_weights(tmp_path):
    setup = ('cpu = tf.config.list_physical_devices("CPU")[0]\n'
             'tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n'
             'strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])')
    out = run_script(tmp_path, setup, "strategy=strategy", "strategy.num_replicas_in_sync")
    assert out["replicas"] == 2
    check_run(out)


def test_mixed_float16_keeps_augmentation_and_the_softmax_in_float32(tmp_path):
    out = run_script(tmp_path, "", "mixed_precision=True, mixed_precision_without_gpu=True",
                     "keras.config.dtype_policy().name")
    check_run(out)


def dry_run(tmp_path: Path, env_extra: dict[str, str], path_prefix: Path | None = None, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAGGLE_", "FERLIB_"))}
    env.update(env_extra)
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}:{env['PATH']}"
    proc = subprocess.run(["bash", str(ROOT / "run_all.sh"), "--dry-run", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "never-created").exists()
    return proc.stdout


def test_dry_run_plans_for_a_cpu_a_gpu_and_kaggle(tmp_path):
    plain = dry_run(tmp_path, {})
    assert "tensorflow-cpu==2.21.0" in plain and "profile:     demo" in plain and "no NVIDIA GPU" in plain
    assert "expected wall time" in plain and "10_cpu_champion" in plain

    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: Tesla T4 (UUID: GPU-1234)'\n"
                                     "echo 'GPU 1: Tesla T4 (UUID: GPU-5678)'\n")
    (stub / "nvidia-smi").chmod(0o755)
    hfe = make_class_tree(tmp_path / "hfe" / "Data", {"Angry": 3, "Fear": 2, "Happy": 4, "Sad": 2, "Suprise": 2})
    gpu = dry_run(tmp_path, {}, stub, "--data", str(hfe.parent))
    assert "tensorflow[and-cuda]==2.21.0" in gpu and "Tesla T4, Tesla T4" in gpu
    assert "profile:     full" in gpu and "gpu_check.sh" in gpu  # no GPU measurement yet: the time is unknown
    assert "hfe at" in gpu and "about 13 images" in gpu

    kaggle = dry_run(tmp_path, {"KAGGLE_KERNEL_RUN_TYPE": "Interactive", "PYTHON": sys.executable}, stub,
                     "--data", str(hfe.parent))
    assert "preinstalled tensorflow" in kaggle and "never replaced" in kaggle and "requirements/common.txt" in kaggle


def test_full_profile_refuses_a_cpu_and_missing_data_with_clear_messages(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAGGLE_", "FERLIB_"))}
    proc = subprocess.run(["bash", str(ROOT / "run_all.sh"), "--profile", "full", "--notebooks", "02"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "no NVIDIA GPU is visible" in proc.stderr and "--allow-cpu" in proc.stderr
    proc = subprocess.run(["bash", str(ROOT / "run_all.sh"), "--profile", "full", "--allow-cpu", "--dry-run"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "/kaggle/input/human-face-emotions" in proc.stderr and "--data" in proc.stderr
    proc = subprocess.run(["bash", str(ROOT / "run_all.sh"), "--profile", "full", "--allow-cpu", "--dry-run",
                           "--data", "embedded", "--external", "embedded"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and "profile:     full" in proc.stdout


def test_kaggle_install_keeps_the_preinstalled_libraries(tmp_path):
    from ferlib.stacks import PlanError, kaggle_requirements

    common = tmp_path / "common.txt"
    (tmp_path / "notebooks.txt").write_text("papermill==2.7.0\nnbclient==0.11.0\nnbconvert==7.17.2\n")
    common.write_text("keras==3.15.1\nnumpy==2.4.6\nseaborn==0.13.2\n-r notebooks.txt\njupyterlab==4.6.6\n"
                      "scikit_learn==1.9.1\n# a comment\n")
    kaggle = {"tensorflow": "2.20.0", "keras": "3.13.2", "numpy": "2.1.3", "pandas": "2.2.3", "seaborn": "0.13.2",
              "scikit-learn": "1.2.2", "nbconvert": "6.4.5", "nbclient": "0.12.0", "jupyterlab": "3.6.8"}
    missing, constraints = kaggle_requirements(common, kaggle)
    # keras and numpy are Kaggle's; seaborn is recent enough; scikit-learn is too old; the notebook runner is
    # installed at its pins whether Kaggle's is older (nbconvert), newer (nbclient) or missing (papermill);
    # JupyterLab is Kaggle's editor's business
    assert missing == ["papermill==2.7.0", "nbclient==0.11.0", "nbconvert==7.17.2", "scikit_learn==1.9.1"]
    assert constraints == ["tensorflow==2.20.0", "keras==3.13.2", "numpy==2.1.3", "pandas==2.2.3"]
    with pytest.raises(PlanError, match=r"keras 3.9.2; this project needs keras >= 3.10"):
        kaggle_requirements(common, kaggle | {"keras": "3.9.2"})  # older than any Keras the lane loads the model with
    with pytest.raises(PlanError, match="tensorflow missing"):
        kaggle_requirements(common, {k: v for k, v in kaggle.items() if k != "tensorflow"})


def test_gpu_check_times_each_phase_and_projects_the_study(tmp_path):
    """The check's own path on the CPU, tiny: V4 (cached head) and V8 (augmented head through the backbone)."""
    gpu_check = load_tool("gpu_check")
    from ferlib.data.embedded import write_embedded_dataset
    from ferlib.plan import Machine, make_plan
    from ferlib.reports.catalog import CATALOG

    data = write_embedded_dataset(tmp_path / "data", 200, 50, seed=0).internal_dir
    report = gpu_check.run_check(data, tmp_path / "check", n_images=150, epochs=2, profile="smoke",
                                 keys=("V4", "V8"), image_size=32)
    for key in ("V4", "V8"):
        result = report["experiments"][key]
        assert (result["finite_losses"] and result["phases"][0]["images_per_s"] > 0
                and result["phases"][0]["epochs"] == 2)
    assert report["experiments"]["V4"]["phases"][0]["kind"] == "cached_head"
    assert report["experiments"]["V8"]["phases"][0]["kind"] == "frozen"
    assert set(report["projected_study_s"]["this device"]) == set(CATALOG)
    json_file, md_file = gpu_check.write_report(report, tmp_path / "bench")
    assert "Projected wall time" in md_file.read_text()
    plan = make_plan("auto", data=str(data), machine=Machine(python="x", gpus=["Tesla T4"]), gpu_measurements=json_file)
    assert plan["profile"] == "full" and plan["estimate_s"] and "gpu_check.sh measured on CPU" in plan["estimate_how"]
    json_file.write_text(json_file.read_text()[:40])  # cut short, as a crash or a full disk leaves it
    plan = make_plan("auto", data=str(data), machine=Machine(python="x", gpus=["Tesla T4"]), gpu_measurements=json_file)
    assert not plan["estimate_s"] and "gpu_check.json is unreadable" in plan["estimate_how"]


def test_gpu_throughput_helpers():
    import pandas as pd

    gpu_check = load_tool("gpu_check")

    history = pd.DataFrame({"phase": [1, 1, 1, 2, 2], "epoch_seconds": [10.0, 2.0, 2.0, 30.0, 4.0]})
    phases = gpu_check.phase_throughput(history, n_train=800, n_val=200)
    assert [p["images_per_s"] for p in phases] == [500.0, 250.0]  # the first (compiling) epoch is left out
    assert gpu_check.spec_ratio_to_t4("NVIDIA H200") == pytest.approx(989 / 65)
    assert gpu_check.spec_ratio_to_t4("Tesla T4") == 1 and gpu_check.spec_ratio_to_t4("Mystery GPU") is None
    table = gpu_check.speeds_at_48px({"V13": {"backbone": "resnet50v2", "image_size": 96, "phases": [
        {"kind": "cached_head", "images_per_s": 50000.0}, {"kind": "finetune", "images_per_s": 100.0}],
        "inference_images_per_s": 300.0}})
    # the cached head's speed (pooled features, no backbone) is left out; inference comes from the feature cache
    assert table["resnet50v2"]["train"] == 400.0 and table["resnet50v2"]["infer"] == 1200.0
    assert table["mobilenetv2"]["train"] > 0  # not measured: scaled like the measured backbone
