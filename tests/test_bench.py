"""Benchmarks run end to end on tiny inputs and report consistent quantities (no speed asserted)."""
from __future__ import annotations

import numpy as np
from PIL import Image

from ferlib.evaluation.results import cpu_model, machine
from ferlib.photos.synthetic_photos import render_photo
from tests.conftest import make_class_tree


def test_latency_and_accuracy_parts_with_a_saved_model_and_without_the_fer_package(tmp_path, monkeypatch):
    from ferlib.bench import photo_latency, suite
    from ferlib.models import modelcard
    from ferlib.models.builders import build_custom_cnn
    from tests.conftest import write_image

    monkeypatch.setattr(photo_latency, "package_dir", lambda: None)  # as on a machine without the extra
    model = modelcard.save_with_card(build_custom_cnn(32, seed=0), tmp_path / "m.keras", experiment={"key": "V1"},
                                     weights="none", data={}, metrics={}, provenance={})
    photos = tmp_path / "photos"
    for i in range(2):
        write_image(photos / f"p{i}.png", seed=i, size=64)
    Image.fromarray(render_photo(np.random.default_rng(1), 3).rgb).save(photos / "scene.jpg", quality=92)
    labelled = make_class_tree(tmp_path / "faces" / "Data", {"Angry": 2, "Fear": 2, "Happy": 2, "Sad": 2, "Suprise": 2})
    report = suite.run(("latency", "accuracy"), test_dir=labelled.parent, ood_dir=None, photos_dir=photos,
                       champion=model, cache_dir=tmp_path / "cache", latency_repeats=2, inference_extras=False)
    ours = report["latency"]["this project"]
    assert ours["samples"] == 6 and 0 < ours["p50_ms"] <= ours["p95_ms"] and ours["detector"] == "blazeface"
    assert set(ours["stages"]) == {"decode", "detect", "crop", "classify"} and ours["views_per_face"] == 1
    assert report["latency"]["this project, 2 views"]["views_per_face"] == 2
    assert all(stage["samples"] == 6 for stage in ours["stages"].values()) and ours["faces_per_photo"] == 1.0
    assert "pip install --no-deps fer" in report["latency"]["fer package"]["skipped"]
    scores = report["accuracy"]["FER-2013 test"]["this project"]
    assert scores["n"] == 10 and scores["accuracy_ci"][0] <= scores["accuracy"] <= scores["accuracy_ci"][1]
    text = suite.markdown(report)
    assert f"Machine: {machine()}; " in text and cpu_model() in text  # the CPU model heads the timings
    assert scores["flip_averaging"] is False and scores["shifted_views_px"] == 0  # the card asks for no averaging
    assert "| this project (1 test-time view, keras) |" in text  # never converted: Keras
    others = report["latency"]["this project, other backends"]  # never converted: no LiteRT file
    assert set(others) == {"litert float32", "litert int8"} and all("skipped" in o for o in others.values())
    assert "skipped" in text and "| detect |" in text


def test_inference_bench_times_cold_starts_and_video(tmp_path, monkeypatch):
    from ferlib import cli
    from ferlib.bench import photo_latency
    from ferlib.models import modelcard
    from ferlib.models.builders import build_custom_cnn

    monkeypatch.setattr(photo_latency, "package_dir", lambda: None)
    model = modelcard.save_with_card(build_custom_cnn(32, seed=0), tmp_path / "m.keras", experiment={"key": "V1"},
                                     weights="none", data={}, metrics={}, provenance={})
    assert cli.main(["convert", str(model)]) == 0
    photo = tmp_path / "two.jpg"
    Image.fromarray(render_photo(np.random.default_rng(2), 2).rgb).save(photo, quality=92)
    cold = photo_latency.cold_start(photo, repeats=1, model=model, backends=("litert",))
    assert cold["this project (LiteRT)"]["median_s"] > 0 and "skipped" in cold["fer package"]
    video = photo_latency.video_fps(model, photo, frames=4, backends=("litert",))
    assert video["litert"]["frames_per_s"] > 0 and video["litert"]["faces_per_frame"] == 2.0
    text = "\n".join(photo_latency.inference_markdown({"cold_start": cold, "video": video}))
    assert "| this project (LiteRT) |" in text and "| litert |" in text


def test_contenders_are_timed_in_turn_photo_by_photo_and_unreadable_photos_are_counted(tmp_path):
    from ferlib.bench.photo_latency import time_side_by_side

    calls: list[tuple[str, str]] = []

    def timer(name: str, seconds: dict[str, float], unreadable: str = ""):
        def one_photo(path):
            calls.append((name, path.name))
            return None if path.name == unreadable else (seconds, 2)
        return one_photo

    photos = [tmp_path / "a.jpg", tmp_path / "b.jpg", tmp_path / "c.jpg"]
    out = time_side_by_side({"ours": timer("ours", {"detect": 0.010, "classify": 0.020}),
                             "theirs": timer("theirs", {"whole": 0.050}, unreadable="b.jpg")}, photos, repeats=2)
    assert calls[:2] == [("ours", "a.jpg"), ("theirs", "a.jpg")]  # the warm-up photo, once each, untimed
    timed = calls[2:]
    assert [name for name, _ in timed[::2]] == ["ours", "theirs"] * 3  # who goes first alternates photo by photo
    assert [photo for _, photo in timed] == [p.name for p in photos * 2 for _ in range(2)]  # each photo: both
    assert out["ours"]["p50_ms"] == 30.0 and out["ours"]["samples"] == 6 and out["ours"]["faces_per_photo"] == 2
    assert set(out["ours"]["stages"]) == {"detect", "classify"} and out["ours"]["stages"]["classify"]["p50_ms"] == 20
    assert out["theirs"]["samples"] == 4 and out["theirs"]["unreadable_photos"] == 1 and "stages" not in out["theirs"]
    nothing = time_side_by_side({"theirs": timer("theirs", {}, unreadable="a.jpg")}, photos[:1], repeats=1)
    assert nothing["theirs"] == {"skipped": "no photo could be read"}
