"""Outputs that survive crashes and full disks: atomic writes, caches checked when read, one run per checkout."""
from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ferlib.audit import hashes
from ferlib.data import arrays
from ferlib.data import manifest as manifests
from ferlib.data.sources import detect_source
from ferlib.evaluation.results import write_result
from ferlib.runtime import files
from tests.conftest import make_class_tree

ROOT = Path(__file__).resolve().parents[1]


def fill_the_disk_after(monkeypatch, n_bytes: int):
    """Make every file write put `n_bytes` on disk and then fail with ENOSPC, as a full disk does."""
    real_open = open

    class FullFile:
        def __init__(self, handle):
            self.handle, self.written = handle, 0

        def write(self, data):
            room = max(0, n_bytes - self.written)
            self.handle.write(data[:room])
            self.written += min(room, len(data))
            if len(data) > room:
                raise OSError(errno.ENOSPC, "No space left on device")
            return len(data)

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    def full_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        return FullFile(handle) if any(c in mode for c in "wax") else handle

    monkeypatch.setattr("builtins.open", full_open)
    monkeypatch.setattr(Path, "open", lambda self, mode="r", *a, **k: full_open(self, mode, *a, **k))


def test_a_full_disk_names_the_folder_and_the_space_needed_and_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "results" / "V1-seed42.json"
    write_result(target, {"accuracy": 0.5})
    fill_the_disk_after(monkeypatch, 10)
    with pytest.raises(files.DiskFullError) as caught:
        write_result(target, {"accuracy": 0.75, "padding": "x" * 5000})
    message = str(caught.value)
    assert str(target.parent) in message and "needs 4.9 KB" in message and " free" in message
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert os.listdir(target.parent) == [target.name]  # no temporary file left
    assert '"accuracy": 0.5' in target.read_text()  # the previous result is intact


def test_a_full_disk_while_caching_images_leaves_no_partial_cache(tmp_path, monkeypatch):
    images = np.zeros((50, 48, 48, 3), np.uint8)
    fill_the_disk_after(monkeypatch, 4096)
    with pytest.raises(files.DiskFullError, match=r"needs 337\.6 KB"):
        files.save_npy(tmp_path / "cache" / "arrays" / "all-x-48px.npy", images)
    monkeypatch.undo()
    assert list((tmp_path / "cache" / "arrays").iterdir()) == []


def test_other_write_errors_pass_through_and_remove_the_temporary_file(tmp_path):
    target = tmp_path / "table.csv"
    with pytest.raises(ZeroDivisionError), files.atomic_path(target) as tmp:
        tmp.write_text("half")
        1 / 0  # noqa: B018
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / "runs" / f"best{files.TMP_MARK}{dead}.keras"
    mine = tmp_path / f"table{files.TMP_MARK}{os.getpid()}.csv"
    stale.parent.mkdir()
    stale.write_text("half a model")
    mine.write_text("being written")
    users = tmp_path / "notes.tmp-draft.txt"  # a user's file that only looks like a temporary
    users.write_text("keep me")
    assert files.remove_stale_temporaries(tmp_path) == [stale]
    assert mine.exists() and users.exists()


@pytest.fixture
def small_tree(tmp_path):
    return make_class_tree(tmp_path / "hfe" / "Data", {"Angry": 3, "Fear": 3, "Happy": 4, "Sad": 3, "Suprise": 3})


@pytest.mark.parametrize("damage", ["truncate", "garbage", "drop_rows"])
def test_a_damaged_manifest_cache_is_rebuilt_with_a_warning(small_tree, tmp_path, damage):
    source = detect_source(small_tree.parent, "internal")
    first = manifests.build_manifest(source, tmp_path / "cache", progress=False)
    cached = next((tmp_path / "cache" / "manifests").glob("*.csv"))
    text = cached.read_text()
    cached.write_text({"truncate": text[: len(text) // 2], "garbage": "\x00\x01 not a table",
                       "drop_rows": "\n".join(text.splitlines()[:-3]) + "\n"}[damage])
    with pytest.warns(files.CacheRebuilt, match="cached manifest .* is unusable"):
        again = manifests.build_manifest(source, tmp_path / "cache", progress=False)
    pd.testing.assert_frame_equal(again, first)
    pd.testing.assert_frame_equal(manifests.build_manifest(source, tmp_path / "cache", progress=False), first)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_image_hashes_are_rebuilt_with_a_warning(small_tree, tmp_path, damage):
    paths = sorted(small_tree.rglob("*.png"))
    first = hashes.hash_paths(paths, tmp_path / "cache", progress=False)
    cached = next((tmp_path / "cache" / "audit").glob("*.npz"))
    data = cached.read_bytes()
    cached.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"PK\x03\x04" + os.urandom(200))
    with pytest.warns(files.CacheRebuilt, match="cached image hashes"):
        again = hashes.hash_paths(paths, tmp_path / "cache", progress=False)
    assert (again.phash == first.phash).all() and list(again.paths) == list(first.paths)


def test_image_hashes_from_fewer_images_are_rebuilt(small_tree, tmp_path):
    paths = sorted(small_tree.rglob("*.png"))
    first = hashes.hash_paths(paths, tmp_path / "cache", progress=False)
    cached = next((tmp_path / "cache" / "audit").glob("*.npz"))
    hashes._save(cached, first.take(np.arange(3)))  # a whole file that holds the hashes of 3 of the images
    with pytest.warns(files.CacheRebuilt, match="3 hashed and 0 skipped of 16 images"):
        again = hashes.hash_paths(paths, tmp_path / "cache", progress=False)
    assert len(again) == len(paths)


@pytest.mark.parametrize("damage", ["truncate", "wrong_shape"])
def test_damaged_image_arrays_are_decoded_again(small_tree, tmp_path, damage):
    manifest = manifests.build_manifest(detect_source(small_tree.parent, "internal"), tmp_path / "cache",
                                        progress=False)
    ok = manifests.usable(manifest)
    first = np.array(arrays.load_images(ok, 24, tmp_path / "cache", progress=False, source=ok))
    cached = next((tmp_path / "cache" / "arrays").glob("*.npy"))
    if damage == "truncate":
        cached.write_bytes(cached.read_bytes()[:300])
    else:
        np.save(cached, first[:5])
    with pytest.warns(files.CacheRebuilt, match="cached images"):
        again = arrays.load_images(ok, 24, tmp_path / "cache", progress=False, source=ok)
    np.testing.assert_array_equal(again, first)


@pytest.mark.parametrize("damage", ["truncate", "wrong_length", "nan"])
def test_damaged_backbone_features_are_computed_again(tmp_path, damage):
    import keras

    from ferlib.training import train

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="pool")(inputs))
    images = np.random.default_rng(0).random((10, 8, 8, 3)).astype(np.float32)
    path = tmp_path / "features_train.npy"
    first = train._cached_features(model, images, path, 4)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "wrong_length":
        np.save(path, first[:4])
    else:
        np.save(path, np.full_like(first, np.nan))
    with pytest.warns(files.CacheRebuilt, match="cached backbone features"):
        again = train._cached_features(model, images, path, 4)
    np.testing.assert_allclose(again, first)


@pytest.mark.slow
def test_a_second_run_all_into_the_same_outputs_stops_with_a_clear_message(tmp_path):
    """While a run writes to an output folder, a second run_all.sh into it stops at once (exit 3) and names the first;
    the first finishes undisturbed. The system drops a lock however its run ends (kill -9 too)."""
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("FERLIB_DATA_DIR", "FERLIB_EXTERNAL_DIR",
                                                           "FERLIB_PROGRESS_LOG")}
    env |= {"FERLIB_CACHE_DIR": str(tmp_path / "cache")}
    command = ["bash", str(ROOT / "run_all.sh"), "--profile", "smoke", "--notebooks", "01", "--output", str(out)]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lock = out / ".run_all.lock"
    for _ in range(600):  # until the first run holds the lock and has said who it is
        if lock.exists() and f"pid {first.pid}," in lock.read_text():
            break
        time.sleep(0.1)
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    first_output, _ = first.communicate(timeout=600)
    assert second.returncode == 3, second.stderr
    assert f"another run_all.sh is already writing to {out}" in second.stderr
    assert f"pid {first.pid}," in second.stderr and "another --output folder" in second.stderr
    assert first.returncode == 0, first_output[-3000:]
    assert (out / "reports" / "01_eda.nocode.html").is_file()
    holder = subprocess.Popen(["bash", "-c", f"exec 9>>{lock}; {sys.executable} -c "
                               "'import fcntl; fcntl.flock(9, fcntl.LOCK_EX)'; exec sleep 60"])
    try:
        for _ in range(100):  # until the holder has its lock
            with open(lock, "a") as probe:
                try:
                    fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(probe, fcntl.LOCK_UN)
                except BlockingIOError:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("the holder never took the lock")
        holder.kill()  # kill -9: no clean-up runs, and the lock goes with the process
        holder.wait()
        with open(lock, "a") as free:
            fcntl.flock(free, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if the killed run's lock were still held
    finally:
        holder.kill()


def test_images_saved_atomically_keep_their_format(tmp_path):
    image = Image.fromarray(np.zeros((8, 8, 3), np.uint8))
    files.save_image(image, tmp_path / "a.jpg", quality=90)
    files.save_image(image, tmp_path / "b.png")
    assert Image.open(tmp_path / "a.jpg").format == "JPEG" and Image.open(tmp_path / "b.png").format == "PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "b.png"]


def test_a_data_pair_keeps_its_folder_however_its_path_is_spelled_or_copied(tmp_path, monkeypatch):
    """The data pair's folder name (results, tables, models) depends on the files, not on how the command
    line spelled the folder (run_all.sh passes absolute paths, users type relative ones) or on modification
    times (a fresh copy of the same data); files added or resized give another folder."""
    import shutil

    from ferlib.config import run_settings
    from ferlib.data.run_data import keyed_settings

    classes = {c: 3 for c in ("Angry", "Fear", "Happy", "Sad", "Surprise")}
    data = make_class_tree(tmp_path / "one" / "Data", classes)
    settings = run_settings("smoke", output_dir=tmp_path / "out")
    key = keyed_settings(settings, data.parent, data.parent).data_key
    monkeypatch.chdir(tmp_path)
    assert keyed_settings(settings, Path("one"), Path("one")).data_key == key  # relative spelling
    copy = tmp_path / "elsewhere" / "one"
    shutil.copytree(tmp_path / "one", copy)
    for image in copy.rglob("*.png"):
        os.utime(image, (time.time() + 100, time.time() + 100))
    assert keyed_settings(settings, copy, copy).data_key == key  # same files, new times
    first = sorted((copy / "Data" / "Happy").iterdir())[0]
    shutil.copy(first, first.with_name("one_more.png"))  # one more image
    grown = keyed_settings(settings, copy, copy).data_key
    assert grown != key and grown.split("-")[0] == key.split("-")[0]
