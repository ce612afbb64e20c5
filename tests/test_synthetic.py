"""Tests for the embedded synthetic face dataset (ferlib.synthetic)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferlib.classes import STUDY
from ferlib.data.embedded import GENERATOR_VERSION, write_embedded_dataset
from ferlib.data.synthetic import (
    CLASS_PROPORTIONS,
    EXPRESSIONS,
    class_counts,
    generate_faces,
    render_face,
    sample_action_units,
)

INTERNAL_FOLDERS = ("Angry", "Fear", "Happy", "Sad", "Suprise")
EXTERNAL_FOLDERS = ("angry", "fear", "happy", "sad", "surprise", "neutral")


@pytest.fixture(scope="module")
def faces() -> tuple[np.ndarray, np.ndarray]:
    """Return a small generated set shared by several tests."""
    return generate_faces(60, seed=3)


def _files(root: Path) -> dict[str, bytes]:
    """Return every PNG under root keyed by its relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_proportions_cover_the_five_classes() -> None:
    assert tuple(CLASS_PROPORTIONS) == STUDY.names
    assert sum(CLASS_PROPORTIONS.values()) == pytest.approx(1.0)
    assert max(CLASS_PROPORTIONS, key=CLASS_PROPORTIONS.get) == "Happy"
    assert min(CLASS_PROPORTIONS, key=CLASS_PROPORTIONS.get) == "Surprise"


@pytest.mark.parametrize("n", [0, 1, 7, 100, 999, 6000, 12345])
def test_class_counts_sum_to_n_and_follow_proportions(n: int) -> None:
    counts = class_counts(n)
    assert tuple(counts) == STUDY.names
    assert sum(counts.values()) == n
    for name, count in counts.items():
        assert abs(count - CLASS_PROPORTIONS[name] * n) < 1


def test_class_counts_rejects_negative() -> None:
    with pytest.raises(ValueError):
        class_counts(-1)


def test_generate_faces_shapes_dtypes_and_counts(faces: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = faces
    assert images.shape == (60, 48, 48) and images.dtype == np.uint8
    assert labels.shape == (60,) and labels.dtype == np.int64
    observed = np.bincount(labels, minlength=len(STUDY.names))
    assert observed.tolist() == list(class_counts(60).values())
    assert not np.array_equal(labels, np.sort(labels))  # shuffled, not grouped by class


def test_generate_faces_is_deterministic_per_seed(faces: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = generate_faces(60, seed=3)
    assert np.array_equal(images, faces[0]) and np.array_equal(labels, faces[1])
    other_images, _ = generate_faces(60, seed=4)
    assert not np.array_equal(other_images, images)


def test_generate_faces_other_size() -> None:
    images, labels = generate_faces(5, seed=0, size=32)
    assert images.shape == (5, 32, 32) and len(labels) == 5


def test_faces_vary_within_a_class(faces: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = faces
    assert all(img.std() > 5 for img in images)
    for k in range(len(STUDY.names)):
        a, b = images[labels == k][:2].astype(int)
        assert np.abs(a - b).mean() > 5


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_render_face_every_expression(expression: str) -> None:
    img = render_face(expression, np.random.default_rng(0))
    assert img.shape == (48, 48) and img.dtype == np.uint8 and img.std() > 5


def test_render_face_rejects_unknown_expression() -> None:
    with pytest.raises(ValueError):
        render_face("Disgust", np.random.default_rng(0))


@pytest.fixture(scope="module")
def mean_action_units() -> dict[str, dict[str, float]]:
    """Return the mean AU intensities of 300 draws per expression."""
    rng = np.random.default_rng(0)
    draws = {e: [sample_action_units(e, rng) for _ in range(300)] for e in EXPRESSIONS}
    return {e: {au: float(np.mean([d[au] for d in ds])) for au in ds[0]} for e, ds in draws.items()}


def test_action_units_follow_the_class_profiles(mean_action_units: dict[str, dict[str, float]]) -> None:
    mean = mean_action_units
    assert mean["Happy"]["AU12"] > 0.4 > mean["Sad"]["AU12"]
    assert mean["Surprise"]["AU26"] > mean["Fear"]["AU26"] > mean["Sad"]["AU26"]
    assert mean["Angry"]["AU4"] > mean["Fear"]["AU4"] > mean["Surprise"]["AU4"]
    assert mean["Sad"]["AU15"] > 0.3 and mean["Sad"]["AU1"] > 0.3
    assert all(v < 0.1 for v in mean["neutral"].values())


def test_overlapping_pairs_are_nearest_in_action_unit_space(
        mean_action_units: dict[str, dict[str, float]]) -> None:
    centre = {c: np.array(list(mean_action_units[c].values())) for c in STUDY.names}

    def nearest(name: str) -> str:
        others = [c for c in STUDY.names if c != name]
        return min(others, key=lambda c: np.linalg.norm(centre[c] - centre[name]))

    assert (nearest("Fear"), nearest("Surprise")) == ("Surprise", "Fear")
    assert (nearest("Angry"), nearest("Sad")) == ("Sad", "Angry")


def test_write_embedded_dataset_layout(tmp_path: Path) -> None:
    ds = write_embedded_dataset(tmp_path, n_internal=30, n_external=25, seed=5)
    assert ds.root == tmp_path / f"embedded-v{GENERATOR_VERSION}-n30-e25-s5"
    assert (ds.n_internal, ds.n_external, ds.seed, ds.n_external_neutral) == (30, 25, 5, 2)
    data, test = ds.internal_dir / "Data", ds.external_dir / "test"
    assert sorted(p.name for p in data.iterdir()) == sorted(INTERNAL_FOLDERS)
    assert (data / "Suprise").is_dir() and not (data / "Surprise").exists()
    assert sorted(p.name for p in test.iterdir()) == sorted(EXTERNAL_FOLDERS)

    internal = {f: len(list((data / f).glob("*.png"))) for f in INTERNAL_FOLDERS}
    assert list(internal.values()) == list(class_counts(30).values())
    external = {f: len(list((test / f).glob("*.png"))) for f in EXTERNAL_FOLDERS}
    assert list(external.values())[:5] == list(class_counts(25).values())
    assert external["neutral"] == 2

    for path in [*data.rglob("*.png"), *test.rglob("*.png")]:
        with Image.open(path) as img:
            assert img.format == "PNG" and img.mode == "L" and img.size == (48, 48)
    marker = json.loads((ds.root / ".complete").read_text())
    assert marker["seed"] == 5 and marker["generator_version"] == GENERATOR_VERSION
    assert [p.name for p in tmp_path.iterdir()] == [ds.root.name]  # no temporary folder left over


def test_internal_set_matches_generate_faces_and_external_differs(tmp_path: Path) -> None:
    ds = write_embedded_dataset(tmp_path, n_internal=20, n_external=20, seed=1)
    images, labels = generate_faces(20, seed=1)
    first_happy = images[labels == STUDY.names.index("Happy")][0]
    internal = sorted((ds.internal_dir / "Data" / "Happy").glob("*.png"))
    external = sorted((ds.external_dir / "test" / "happy").glob("*.png"))
    assert np.array_equal(np.asarray(Image.open(internal[0])), first_happy)
    assert not np.array_equal(np.asarray(Image.open(external[0])), first_happy)


def test_write_embedded_dataset_is_idempotent(tmp_path: Path) -> None:
    ds = write_embedded_dataset(tmp_path, n_internal=12, n_external=12, seed=0)
    before = {p: p.stat().st_mtime_ns for p in ds.root.rglob("*")}
    again = write_embedded_dataset(tmp_path, n_internal=12, n_external=12, seed=0)
    assert again == ds
    assert {p: p.stat().st_mtime_ns for p in ds.root.rglob("*")} == before


def test_folder_without_marker_is_regenerated(tmp_path: Path) -> None:
    ds = write_embedded_dataset(tmp_path, n_internal=12, n_external=12, seed=0)
    reference = _files(ds.root)
    (ds.root / ".complete").unlink()
    stray = ds.internal_dir / "Data" / "Happy" / "half-written.png"
    stray.write_bytes(b"not a png")
    write_embedded_dataset(tmp_path, n_internal=12, n_external=12, seed=0)
    assert (ds.root / ".complete").is_file() and not stray.exists()
    assert _files(ds.root) == reference


def test_same_arguments_give_byte_identical_files(tmp_path: Path) -> None:
    a = write_embedded_dataset(tmp_path / "a", n_internal=15, n_external=10, seed=7)
    b = write_embedded_dataset(tmp_path / "b", n_internal=15, n_external=10, seed=7)
    files_a, files_b = _files(a.root), _files(b.root)
    assert len(files_a) == 15 + 10 + 1 and files_a == files_b
    c = write_embedded_dataset(tmp_path / "c", n_internal=15, n_external=10, seed=8)
    assert _files(c.root) != files_a


def _pixel_features(images: np.ndarray) -> np.ndarray:
    """Return 24x24 average-pooled pixels, standardised per image."""
    x = images.astype(np.float64).reshape(len(images), 24, 2, 24, 2).mean(axis=(2, 4))
    x = x.reshape(len(images), -1)
    return (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-6)


def test_classes_are_separable_but_overlap() -> None:
    # A linear (ridge) classifier on 24x24 pooled pixels; measured 0.525 (majority class: 0.31).
    x_train, y_train = generate_faces(1500, seed=11)
    x_test, y_test = generate_faces(400, seed=12)
    a, b = _pixel_features(x_train), _pixel_features(x_test)
    mu = a.mean(0)
    a, b = a - mu, b - mu
    targets = np.eye(len(STUDY.names))[y_train]
    weights = np.linalg.solve(a.T @ a + 30.0 * np.eye(a.shape[1]), a.T @ (targets - targets.mean(0)))
    accuracy = float(((b @ weights).argmax(1) == y_test).mean())
    assert 0.40 < accuracy < 0.90, accuracy
