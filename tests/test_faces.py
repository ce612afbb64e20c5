"""Face detection, cropping, the training conversion, and detection recall on the shared dlib photos."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ferlib.data.decode import read_image
from ferlib.photos import boxes, faces
from ferlib.photos.synthetic_photos import render_photo, write_synthetic_photos
from tests.conftest import SHARED_DATA

PHOTOS = SHARED_DATA / "photos"


def _photo(seed: int = 1, n: int = 3):
    return render_photo(np.random.default_rng(seed), n)


def test_box_geometry():
    a, b = boxes.Box(0, 0, 10, 10), boxes.Box(5, 0, 10, 10)
    assert a.area == 100 and a.intersection(b) == 50
    assert a.iou(b) == pytest.approx(50 / 150) and a.iou(a) == 1.0
    assert boxes.Box(0, 0, 4, 4).iou(boxes.Box(10, 10, 4, 4)) == 0.0


def test_duplicates_inside_a_better_box_are_dropped():
    big, inner, apart = boxes.Box(0, 0, 100, 100, 5.0), boxes.Box(40, 60, 40, 40, 1.0), boxes.Box(200, 0, 50, 50, 2.0)
    kept = boxes.suppress_duplicates([inner, big, apart])
    assert kept == [big, apart]


def test_detects_every_generated_face_where_it_was_placed():
    photo = _photo(seed=1, n=3)
    found = faces.HaarDetector().detect(photo.rgb)
    truth = [boxes.Box(*b) for b in photo.boxes]
    matches = boxes.match_boxes(truth, found, 0.3)
    assert len(truth) == 3 and len(matches) == 3 and len(found) == 3
    assert [b.x for b in found] == sorted(b.x for b in found)  # left to right


def test_no_face_in_a_plain_background_and_in_degenerate_images():
    assert faces.HaarDetector().detect(_photo(seed=5, n=0).rgb) == []
    assert faces.HaarDetector().detect(np.zeros((1, 1, 3), np.uint8)) == []
    assert faces.HaarDetector().detect(np.full((7, 300, 3), 128, np.uint8)) == []


def test_huge_photo_boxes_come_back_in_photo_pixels():
    photo = _photo(seed=3, n=3)
    big = np.asarray(Image.fromarray(photo.rgb).resize((640 * 6, 480 * 6), Image.Resampling.BILINEAR))
    found = faces.HaarDetector().detect(big)
    truth = [boxes.Box(*[6 * v for v in b]) for b in photo.boxes]
    assert len(boxes.match_boxes(truth, found, 0.3)) == 3
    assert all(0 <= b.x and b.x + b.w <= big.shape[1] and b.y + b.h <= big.shape[0] for b in found)


def test_tiny_face_filling_the_frame_is_found_by_the_upscaled_padded_retry():
    photo = _photo(seed=1, n=1)
    x, y, w, h = photo.boxes[0]
    tight = np.asarray(Image.fromarray(photo.rgb[y: y + h, x: x + w]).resize((40, 40), Image.Resampling.BILINEAR))
    assert len(faces.HaarDetector().detect(tight)) == 1
    no_retry = faces.HaarDetector(pad=0.0)
    assert no_retry.detect(tight) == []


def test_crop_is_square_with_margin_and_replicates_edges_outside_the_photo():
    rgb = np.zeros((100, 200, 3), np.uint8)
    rgb[:, :100] = 255
    crop = faces.crop_face(rgb, boxes.Box(0, 0, 40, 20), margin=0.25)
    assert crop.shape == (60, 60, 3)  # longer side 40, plus 25% on each side
    assert (crop[:, :10] == 255).all()  # left of the photo: the edge column repeated


def test_training_conversion_is_grayscale_replicated_at_model_size():
    rgb = np.zeros((64, 80, 3), np.uint8)
    rgb[..., 0] = 200  # pure red
    out = faces.training_conversion(rgb, 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert out[0, 0, 0] == round(0.299 * 200)  # ITU-R 601 luma, as PIL's "L"


def test_generated_photos_are_written_with_their_face_table(tmp_path):
    table = write_synthetic_photos(tmp_path, n_photos=3, seed=0)
    files = sorted(p.name for p in (tmp_path / "photos").iterdir())
    assert files == ["photo_00.jpg", "photo_01.jpg", "photo_02.jpg"]
    assert "photo_00.jpg" not in set(table["file"])  # the first photo holds no face
    assert set(table["label"]) <= {"Angry", "Fear", "Happy", "Sad", "Surprise"} and len(table) >= 2
    assert (tmp_path / "faces.csv").read_text().startswith("file,x,y,w,h,label")


def test_dlib_annotations_are_read(tmp_path):
    (tmp_path / "a.xml").write_text(
        "<dataset><images><image file='x/p.jpg'><box top='5' left='7' width='20' height='21'/>"
        "<box top='1' left='1' width='3' height='3' ignore='1'/></image></images></dataset>")
    assert faces.read_dlib_annotations(tmp_path, prefix="dlib_") == {"dlib_p.jpg": [boxes.Box(7, 5, 20, 21)]}
    with pytest.raises(FileNotFoundError, match="no dlib annotation"):
        faces.read_dlib_annotations(tmp_path / "nothing")


@pytest.mark.realdata
def test_recall_on_the_annotated_dlib_photos_is_at_least_80_percent():
    if not (PHOTOS / "annotations").is_dir():
        pytest.skip(f"shared photos not found at {PHOTOS}")
    annotations = faces.read_dlib_annotations(PHOTOS / "annotations", prefix="dlib_")
    result = faces.detection_recall(PHOTOS, annotations, iou_threshold=0.3)
    assert result["faces"] >= 40
    assert result["recall"] >= 0.8, result["per_photo"]
    assert result["unmatched_detections"] <= 0.2 * result["faces"]


@pytest.mark.realdata
@pytest.mark.parametrize("detector", faces.DETECTORS)  # BlazeFace needs its tiles for these small faces
def test_many_faces_on_a_real_group_photo(detector):
    path = PHOTOS / "dlib_bald_guys.jpg"
    if not path.is_file():
        pytest.skip(f"shared photo not found: {path}")
    rgb, _ = read_image(path)
    found = faces.make_detector(detector).detect(rgb)
    assert len(found) >= 20
    assert all(b.w >= 24 and b.x + b.w <= rgb.shape[1] and b.y + b.h <= rgb.shape[0] for b in found)
