"""The shared real FER-2013 copy: its layout, counts and decoding (skipped only when the folder is absent)."""
from __future__ import annotations

import pytest

from ferlib.data import arrays
from ferlib.data import manifest as manifests
from ferlib.data.sources import detect_source, list_files
from tests.conftest import FER2013

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not FER2013.is_dir(), reason=f"real FER-2013 folder not present at {FER2013}"),
]


def test_train_split_lists_five_classes_and_counts_the_other_two():
    listing = list_files(detect_source(FER2013, "internal"))
    pending = listing[listing.status == "pending"]
    excluded = listing[listing.status == "excluded"]
    assert set(pending["label"]) == {"Angry", "Fear", "Happy", "Sad", "Surprise"}
    assert set(excluded["folder"]) == {"disgust", "neutral"}
    # Counts are read from the folder, then checked against each class folder's own listing.
    for folder, group in listing.groupby("folder"):
        assert len(group) == sum(1 for p in (FER2013 / "train" / folder).iterdir() if p.is_file())
    assert len(pending) > len(excluded) > 0


def test_test_split_decodes_cleanly_and_splits_without_leaks(tmp_path):
    source = detect_source(FER2013, "external")
    assert source.split == "test"
    manifest = manifests.build_manifest(source, tmp_path, progress=False)
    ok = manifests.usable(manifest)
    assert len(ok) > 0 and (manifest.status == "skipped").sum() == 0
    assert set(ok["width"].unique()) == {48} and set(ok["mode"].unique()) <= {"L", "RGB"}
    train, val = manifests.split_train_val(manifest, 0.2, seed=1)
    assert set(train["pixel_hash"]).isdisjoint(val["pixel_hash"])
    assert abs(len(val) / len(ok) - 0.2) < 0.01
    images = arrays.load_images(val.head(64), 96, tmp_path, progress=False)
    assert images.shape == (64, 96, 96, 3) and images.std() > 10
