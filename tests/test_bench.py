"""Benchmarks run end to end on tiny inputs and report consistent quantities (no speed asserted)."""
from __future__ import annotations

from ferlib import bench
from tests.conftest import make_class_tree


def test_image_loading_counts_every_usable_image_cold_and_warm(tmp_path):
    root = make_class_tree(tmp_path / "faces" / "Data", {"Angry": 3, "Fear": 2, "Happy": 4, "Sad": 2, "Suprise": 3})
    (root / "Sad" / "broken.jpg").write_bytes(b"not an image")
    result = bench.image_loading(tmp_path / "faces", size=32, cache_root=tmp_path)
    assert result["cold"]["images"] == result["warm"]["images"] == 14
    assert result["cold"]["images_per_s"] > 0 and result["warm"]["images_per_s"] > 0
    assert "hfe" in result["data"] and result["machine"]["cpus"] >= 1


def test_pipeline_overhead_compares_the_same_number_of_images():
    result = bench.pipeline_overhead("V1", "smoke", steps=2, batch_size=16)
    assert result["images"] == 32 and result["backbone"] == "custom_cnn"
    raw, pipe = result["raw_images_per_s"], result["pipeline_images_per_s"]
    assert raw > 0 and pipe > 0
    assert abs(result["pipeline_overhead_percent"] - 100 * (raw / pipe - 1)) < 2  # overhead = extra time per image
