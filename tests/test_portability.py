"""What users' machines differ in: the Keras that loads a saved model, a missing TensorFlow, OpenCV 5."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from ferlib import cli
from ferlib.models import modelcard, shipped
from ferlib.photos import faces
from ferlib.photos.synthetic_photos import render_photo

ROOT = Path(__file__).resolve().parents[1]
BASE_INSTALL = """
import importlib.abc, runpy, sys
class Extras(importlib.abc.MetaPathFinder):  # as after `pip install ferlib`: no TensorFlow, Keras or notebook stack
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "jax", "torch", "nbconvert", "nbformat", "papermill",
                                  "IPython", "seaborn"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Extras())
sys.argv = ["ferlib", *sys.argv[1:]]
runpy.run_module("ferlib", run_name="__main__")
"""


def faces_batch(n: int = 12) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 48, 48, 3)).astype("float32")


def with_config(source: Path, target: Path, config: str) -> Path:
    """Copy a .keras file (and its card) with its layer configuration replaced by `config`."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            new.writestr(item, config if item.filename == "config.json" else old.read(item.filename))
    shutil.copy(modelcard.card_path(source), modelcard.card_path(target))
    return target


def test_the_shipped_model_loads_from_its_weights_without_its_layer_configuration(tmp_path):
    """Keras 3.13 cannot read the layer configuration 3.15 writes; the weights alone load in any Keras 3."""
    path = shipped.shipped_model_path()
    reference = keras.models.load_model(path, compile=False).predict(faces_batch(), verbose=0)
    # a configuration this Keras cannot read, as an older Keras sees a newer one's arguments
    unreadable = json.loads(zipfile.ZipFile(path).read("config.json"))
    unreadable["config"]["layers"][3]["config"]["input_axes"] = [1, 2]
    copy = with_config(path, tmp_path / "c1.keras", json.dumps(unreadable))
    with pytest.raises(Exception):  # noqa: B017 (whatever this Keras raises for an unknown argument)
        keras.models.load_model(copy, compile=False)
    loaded = modelcard.load_with_card(copy)
    assert np.abs(loaded.model.predict(faces_batch(), verbose=0) - reference).max() < 1e-6
    assert [layer.dtype_policy.name for layer in loaded.model.layers] == ["float32"] * len(loaded.model.layers)


def test_a_model_its_card_does_not_describe_loads_from_its_configuration_or_says_why_not(tmp_path):
    path = shipped.shipped_model_path()
    copy = with_config(path, tmp_path / "c1.keras", zipfile.ZipFile(path).read("config.json").decode())
    card = json.loads(modelcard.card_path(copy).read_text())
    card["experiment"]["filters"] = [16, 32, 64, 128]  # not the network whose weights the file holds
    modelcard.card_path(copy).write_text(json.dumps(card))
    loaded = modelcard.load_with_card(copy)  # the file's own configuration, readable by this Keras
    assert loaded.model.count_params() == keras.models.load_model(path, compile=False).count_params()
    broken = with_config(copy, tmp_path / "broken.keras", "{}")
    modelcard.card_path(broken).write_text(json.dumps(card))
    with pytest.raises(ValueError, match=rf"saved by Keras {keras.__version__}, this is Keras .*do not fit"):
        modelcard.load_with_card(broken)


def test_the_base_install_predicts_and_names_the_extra_the_rest_needs(tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray(render_photo(np.random.default_rng(1), 2).rgb).save(photo)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", BASE_INSTALL, *args], capture_output=True, text=True, cwd=ROOT,
                              timeout=300)

    predicted = run("predict", str(photo), "--json")  # LiteRT: no TensorFlow needed
    assert predicted.returncode == 0, predicted.stderr
    assert len(json.loads(predicted.stdout)[0]["faces"]) == 2
    keras_backend = run("predict", str(photo), "--backend", "keras")
    assert keras_backend.returncode == 2, keras_backend.stderr
    assert "pip install 'ferlib[cpu]'" in keras_backend.stderr and "Traceback" not in keras_backend.stderr
    report = run("report", "--output-dir", str(tmp_path))
    assert report.returncode == 2 and "pip install 'ferlib[notebooks]'" in report.stderr, report.stderr
    help_text = run("--help")
    assert help_text.returncode == 0 and "predict" in help_text.stdout


def test_the_haar_detector_under_an_opencv_without_cascades_says_what_to_do(monkeypatch, tmp_path, capsys):
    import cv2

    faces.load_cascade.cache_clear()
    monkeypatch.delattr(cv2, "CascadeClassifier")  # OpenCV 5: no cascade classifier and no cascade files
    with pytest.raises(RuntimeError, match=r"OpenCV 5 dropped them.*--detector blazeface.*opencv-python-headless<5"):
        faces.make_detector("haar")
    photo = tmp_path / "photo.png"
    Image.fromarray(render_photo(np.random.default_rng(1), 2).rgb).save(photo)
    assert cli.main(["predict", str(photo), "--detector", "haar"]) == 2
    assert "OpenCV 5 dropped them" in capsys.readouterr().err
    assert faces.make_detector("blazeface").name == "blazeface"  # the default needs no cascade
    faces.load_cascade.cache_clear()
