"""Shared fixtures: images of every kind generated in tmp_path, and a smoke-profile RunSettings."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FER2013 = SHARED_DATA / "fer2013"


def face_array(seed: int, size: int = 48) -> np.ndarray:
    """Return a random-but-deterministic uint8 grayscale image."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(size, size), dtype=np.uint8)


def write_image(path: Path, seed: int = 0, size: int = 48, mode: str = "L", fmt: str = "PNG") -> Path:
    """Write a deterministic image in the given PIL mode and format; return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(face_array(seed, size), mode="L")
    if mode != "L":
        img = img.convert(mode)
    img.save(path, format=fmt)
    return path


def write_png_claiming(path: Path, width: int, height: int) -> Path:
    """Write a tiny PNG whose header claims width x height pixels and that holds no pixel data: how a
    decompression bomb looks to a decoder that reads the header first. Return its path."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


def make_class_tree(root: Path, counts: dict[str, int], start_seed: int = 0, fmt: str = "PNG") -> Path:
    """Write counts[folder] images into root/<folder>/ and return root."""
    seed = start_seed
    for folder, n in counts.items():
        for i in range(n):
            write_image(root / folder / f"img_{i:04d}.{fmt.lower()}", seed=seed, fmt=fmt)
            seed += 1
    return root


def data_folder(out: Path, kind: str, profile: str) -> Path:
    """Return the one data-pair folder of a run under ``out/<kind>/<profile>/`` (results, tables or models are kept
    per data pair, e.g. ``embedded+embedded-1a2b3c4d``)."""
    folders = [p for p in (out / kind / profile).iterdir() if p.is_dir()]
    assert len(folders) == 1, f"expected one data folder in {out / kind / profile}, found {folders}"
    return folders[0]


def startup_lines(stderr: str) -> set[str]:
    """Return TensorFlow's start-up lines in `stderr` without their time stamps and process ids."""
    from ferlib.runtime import quiet

    return {re.sub(r"^[IWE]\d{4} [\d:.]+\s+\d+ ", "", line) for line in stderr.splitlines()
            if line.strip() and quiet.NOISE.search(line)}


def tiny_data(n=60, size=24, seed=0):
    """Return uint8 images with a learnable per-class brightness signal and their labels (0-4 cycling)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 5
    images = rng.integers(0, 60, size=(n, size, size, 3)).astype(np.uint8)
    images[:, : size // 2] += (labels * 35).astype(np.uint8)[:, None, None, None]  # learnable signal
    return images, labels


@pytest.fixture
def smoke_settings(tmp_path):
    """RunSettings for the smoke profile writing into tmp_path."""
    from ferlib.config import run_settings

    return run_settings("smoke", seed=42, output_dir=tmp_path / "outputs", cache_dir=tmp_path / "cache")


SLOW_MARKERS = {"notebook", "realdata", "gpu_path", "kaggle_stack"}


# The longest files, longest first: pytest-xdist hands whole files to its workers in collection order, so
# starting these first keeps both workers busy until the end (measured with --durations on 2 cores).
LONGEST_FIRST = ("test_notebooks_full.py", "test_kaggle_stack.py", "test_notebooks.py", "test_gpu_path.py",
                 "test_faults.py", "test_notebooks_fer2013.py", "test_transfer.py", "test_train.py", "test_distill.py")


def pytest_collection_modifyitems(config, items):
    """Tests that run notebooks, read the real data or check the GPU path are slow: `-m "not slow"` skips them.
    The longest files are collected first (see LONGEST_FIRST); within a file the order is kept."""
    for item in items:
        if SLOW_MARKERS & {mark.name for mark in item.iter_markers()}:
            item.add_marker(pytest.mark.slow)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept otherwise


ASSETS = Path(__file__).resolve().parents[1] / "ferlib" / "assets"


@pytest.fixture(scope="session", autouse=True)
def shipped_assets_stay_untouched():
    """Fail the run when a test wrote into ferlib/assets (a `ship` or `convert` aimed at the real package instead
    of a temporary folder would otherwise replace the shipped model unnoticed)."""
    def fingerprint() -> dict[str, tuple[int, int]]:
        return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(ASSETS.iterdir())}

    before = fingerprint()
    yield
    assert fingerprint() == before, "a test changed ferlib/assets: restore it with `git checkout ferlib/assets`"


def evaluation_json(y_true: str, y_pred: str) -> dict:
    """Return a scored set as a result file holds it (`Evaluation.to_dict`), for labels written as digits."""
    from ferlib.classes import STUDY
    from ferlib.evaluation.evaluate import Evaluation
    from ferlib.evaluation.stats import decode_labels

    truth, pred = decode_labels(y_true), decode_labels(y_pred)
    return Evaluation(truth, pred, np.eye(5)[pred], STUDY.names).to_dict()


def experiment_json(experiment: str = "C1", y_true: str = "0123", y_pred: str = "0123", **extra) -> dict:
    """Return a complete experiment result file's content (schema-valid) for generated labels, with `extra`
    fields (what C1's run or an ablation adds) merged in."""
    from ferlib.evaluation.results import RESULT_SCHEMA

    return {"schema": RESULT_SCHEMA, "experiment": experiment, "title": experiment, "settings": {},
            "validation": evaluation_json(y_true, y_pred),
            "history": {"epoch": [1], "accuracy": [0.5], "val_accuracy": [0.5], "loss": [1.0], "val_loss": [1.0]},
            "best_epoch": 1, "kept_phase": 0, "phase_starts": [0], "timings": {}, "overfitting": {}, "n_train": 100,
            "train_seed": 0, "run_dir": "runs/test", "reused_finished_run": False, "provenance": {"seed": 0}} | extra


def load_tool(name: str):
    """Return tools/<name>.py as a module: maintainers' scripts are tested, though not part of the package."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FER_FOLDERS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")  # FER-2013's folder names


@pytest.fixture(scope="module")
def seven_class_c1(tmp_path_factory):
    """C1 at the smoke profile's size trained on a generated FER-2013 tree of all seven classes."""
    from ferlib.champion import run

    root = tmp_path_factory.mktemp("seven")
    for split, n in (("train", 12), ("test", 3)):
        make_class_tree(root / "fer" / split, {f: n for f in FER_FOLDERS}, start_seed=100 if split == "test" else 0)
    champ = run.champion_from_folders("smoke", root / "fer", root / "fer", output_dir=root / "out",
                                      classes="fer2013-7")
    return root, champ
