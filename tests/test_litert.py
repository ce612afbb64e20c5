"""LiteRT inference: the shipped model's .tflite is the .keras network, runs by default without TensorFlow,
falls back to Keras with one line when it cannot run, and a stale conversion is never used silently."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferlib import EmotionClassifier, cli
from ferlib.models import inference, modelcard, shipped, shipping
from ferlib.models.builders import build_custom_cnn
from ferlib.photos.synthetic_photos import render_photo
from tests.conftest import FER2013

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = shipped.ASSETS / shipped.SHIPPED_MODELS[shipped.DEFAULT_MODEL]


@pytest.fixture(scope="module")
def both():
    """The shipped model on LiteRT float32 (the Keras network converted) and on Keras."""
    return EmotionClassifier.load(backend="litert", precision="float32"), EmotionClassifier.load(backend="keras")


def test_the_shipped_tflite_files_are_the_ones_its_card_records_converted_from_the_shipped_keras():
    card = shipped.read_card(SHIPPED)
    entry = card["litert"]  # written by `python -m ferlib convert --data FER2013` on the validation split
    assert set(entry["precisions"]) == {"float32", "int8"}
    for precision, e in entry["precisions"].items():
        tflite = inference.litert_path(SHIPPED, precision)
        assert e["file"] == tflite.name and e["size_bytes"] == tflite.stat().st_size
        assert e["sha256"] == shipped.sha256_of(tflite)
        assert e["from_sha256"] == shipped.sha256_of(SHIPPED) == card["shipped"]["sha256"]
        assert inference.stale_reason(card, SHIPPED, precision) is None and e["agreement_with_keras"]["n"] == card[
            "data"]["n_val"]
    assert entry["views"] == {"flip": True, "shift": card["tta"]["shift"]}
    agreed = entry["precisions"]["float32"]["agreement_with_keras"]
    assert agreed["same_label"] >= shipping.AGREEMENT_LABELS
    assert agreed["max_probability_difference"] <= shipping.AGREEMENT_PROBABILITY
    assert (entry["default"], entry["why"]) == shipping.choose_precision(entry["precisions"], labelled=True)
    assert entry["precisions"]["int8"]["size_bytes"] < entry["precisions"]["float32"]["size_bytes"] / 3


def test_predict_uses_litert_at_the_cards_precision_by_default_and_keras_when_asked(both):
    lite, keras_clf = both
    default = EmotionClassifier.load()
    assert default.backend == "litert" and default.precision == shipped.read_card(SHIPPED)["litert"]["default"]
    assert lite.backend == "litert" and lite.precision == "float32" and lite.backend_note is None
    assert keras_clf.backend == "keras"


def test_both_backends_agree_on_generated_faces_in_the_cards_views(both):
    lite, keras_clf = both
    photo = render_photo(np.random.default_rng(3), 4)
    crops = lite.inputs(photo.rgb, lite.find_faces(photo.rgb))
    faces = np.concatenate([crops, shipping.generated_faces(lite.image_size, 60, seed=5)])
    a, b = lite.raw_probabilities(faces), keras_clf.raw_probabilities(faces)
    agreed = shipping.agreement(b, a)
    assert agreed["n"] == len(faces) >= 64 and agreed["same_label"] == 1.0
    assert agreed["max_probability_difference"] <= shipping.AGREEMENT_PROBABILITY
    records = [lite.records(lite.probabilities(crops), lite.find_faces(photo.rgb)),
               keras_clf.records(keras_clf.probabilities(crops), keras_clf.find_faces(photo.rgb))]
    assert [r.label for r in records[0]] == [r.label for r in records[1]]
    int8 = EmotionClassifier.load(backend="litert", precision="int8").raw_probabilities(faces)
    close = shipping.agreement(a, int8)  # quantized: near, not equal
    assert close["same_label"] >= 0.95 and 0 < close["max_probability_difference"] < 0.1


def test_one_invocation_takes_any_batch_size_and_large_ones_are_split(both, monkeypatch):
    lite, _ = both
    network = lite.network
    faces = shipping.generated_faces(lite.image_size, 23, seed=1)
    whole = network(faces)
    monkeypatch.setattr(inference, "MAX_BATCH", 5)
    np.testing.assert_allclose(network(faces), whole, atol=1e-6)
    np.testing.assert_allclose(network(faces[:1])[0], whole[0], atol=1e-6)
    assert network(faces[:0]).shape == (0, len(lite.classes))
    with pytest.raises(ValueError, match="expected images of shape"):
        network(np.zeros((2, 32, 32, 3), np.uint8))


def _tiny_model(path: Path, seed: int) -> Path:
    model = build_custom_cnn(32, seed=seed)
    return modelcard.save_with_card(model, path, experiment={"key": "V1"}, weights="none", data={"source": "test"},
                                    metrics={}, provenance={"seed": seed})


def test_convert_writes_a_checked_file_and_a_changed_keras_falls_back_with_a_note(tmp_path, capsys):
    path = _tiny_model(tmp_path / "tiny.keras", 0)
    assert EmotionClassifier.load(path).backend == "keras"  # never converted: Keras, without a word
    assert EmotionClassifier.load(path).backend_note is None
    assert cli.main(["convert", str(path)]) == 0
    out = capsys.readouterr().out
    assert "512 generated images" in out and "float32 (tiny.tflite" in out and "int8 (tiny.int8.tflite" in out
    assert "default precision: float32 (no validation data given" in out
    card = shipped.read_card(path)
    assert card["litert"]["precisions"]["int8"]["from_sha256"] == shipped.sha256_of(path)
    assert card["litert"]["default"] == "float32"  # a quantized model is never chosen without validation data
    loaded = EmotionClassifier.load(path)
    assert (loaded.backend, loaded.precision) == ("litert", "float32")
    assert EmotionClassifier.load(path, precision="int8").precision == "int8"
    _tiny_model(tmp_path / "other.keras", 1).replace(path)  # a retrained network under the old name, old card
    modelcard.update_card(path, litert=card["litert"])
    auto = EmotionClassifier.load(path)
    assert auto.backend == "keras" and "tiny.tflite was converted from another tiny.keras" in auto.backend_note
    with pytest.raises(ValueError, match="python -m ferlib convert"):
        EmotionClassifier.load(path, backend="litert")


def test_without_litert_the_shipped_model_runs_with_keras_after_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(inference, "litert_unavailable", lambda: "LiteRT has no Windows wheel (ai-edge-litert)")
    photo = tmp_path / "two.jpg"
    Image.fromarray(render_photo(np.random.default_rng(2), 2).rgb).save(photo, quality=92)
    assert cli.main(["predict", str(photo), "--json"]) == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if line.startswith("note:")]
    assert notes == ["note: LiteRT has no Windows wheel (ai-edge-litert): predicting with Keras instead of LiteRT "
                     "(the same network, slower to load and run)"]
    assert len(json.loads(captured.out)[0]["faces"]) == 2
    assert cli.main(["predict", str(photo), "--backend", "litert"]) == 2
    assert "cannot predict with LiteRT: LiteRT has no Windows wheel" in capsys.readouterr().err


def test_a_prediction_and_a_video_import_no_tensorflow(tmp_path):
    from tests.test_video import write_clip

    photo = tmp_path / "three.jpg"
    Image.fromarray(render_photo(np.random.default_rng(1), 3).rgb).save(photo, quality=92)
    write_clip(tmp_path / "clip.avi", frames=10, codec="MJPG")
    script = textwrap.dedent(f"""
        import json, sys
        from ferlib import EmotionClassifier
        from ferlib.cli import main
        assert main(["predict", {str(photo)!r}, "--json"]) == 0
        assert main(["predict", {str(tmp_path / "clip.avi")!r}, "--fps", "5", "--video-out", {str(tmp_path)!r}]) == 0
        assert len(EmotionClassifier.load().predict({str(photo)!r})) == 3
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "jax", "torch"))
        print(json.dumps(heavy), file=sys.stderr)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []
    assert (tmp_path / "clip.emotions.csv").is_file()


def test_the_base_install_leaves_tensorflow_keras_and_notebooks_to_extras():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {r.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip().lower()
            for r in project["dependencies"]}
    assert {"numpy", "pillow", "opencv-python-headless", "ai-edge-litert"} <= base
    assert not base & {"tensorflow", "tensorflow-cpu", "keras", "papermill", "nbconvert", "jupyterlab", "seaborn"}
    extras = project["optional-dependencies"]
    assert any(r.startswith("keras") for r in extras["cpu"]) and any(r.startswith("keras") for r in extras["gpu"])
    assert any(r.startswith("nbconvert") for r in extras["notebooks"])


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.skipif(not FER2013.is_dir(), reason=f"real FER-2013 folder not present at {FER2013}")
def test_both_backends_agree_on_fer2013s_validation_split(both, tmp_path):
    """Every image of the split the shipped model was chosen on, one view each: the networks themselves."""
    lite, keras_clf = both
    images, labels, _ = shipping.validation_split(lite.card, FER2013, tmp_path)
    assert len(images) == lite.card["data"]["n_val"]
    a, b = lite.network(images), keras_clf.network(images)
    agreed = shipping.agreement(b, a)
    assert agreed["same_label"] >= shipping.AGREEMENT_LABELS
    assert agreed["max_probability_difference"] <= shipping.AGREEMENT_PROBABILITY
    assert abs((a.argmax(1) == labels).mean() - (b.argmax(1) == labels).mean()) <= 1 - shipping.AGREEMENT_LABELS
    int8 = EmotionClassifier.load(backend="litert", precision="int8").network(images)
    assert shipping.agreement(a, int8)["same_label"] >= 0.99  # quantized: a few labels move, accuracy does not
    assert abs((int8.argmax(1) == labels).mean() - (a.argmax(1) == labels).mean()) < 0.005
