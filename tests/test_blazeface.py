"""BlazeFace: anchors, decoding and non-maximum suppression on known tensors; faces found on generated and
real photos; the detector chosen by name."""
from __future__ import annotations

import numpy as np
import pytest

from ferlib.photos import blazeface, boxes, faces
from ferlib.photos.synthetic_photos import render_photo
from tests.conftest import SHARED_DATA

PHOTOS = SHARED_DATA / "photos"


def test_anchors_are_cell_centres_row_by_row():
    anchors = blazeface.anchor_centres()
    assert anchors.shape == (48 * 48, 2)
    np.testing.assert_allclose(anchors[0], [0.5 / 48, 0.5 / 48])
    np.testing.assert_allclose(anchors[1], [1.5 / 48, 0.5 / 48])  # x moves first
    np.testing.assert_allclose(anchors[48], [0.5 / 48, 1.5 / 48])
    np.testing.assert_allclose(anchors[-1], [47.5 / 48, 47.5 / 48])


def test_decode_places_boxes_and_keypoints_at_their_anchor_and_drops_weak_or_empty_ones():
    anchors = blazeface.anchor_centres(4)  # a 4x4 grid on a 16 px input: centres at 2, 6, 10, 14 px
    raw = np.zeros((16, 16), np.float32)
    raw[5, :4] = [1.0, -2.0, 6.0, 4.0]  # anchor 5 = (6, 6) px: centre (7, 4), 6 x 4
    raw[5, 4:] = np.tile([0.5, 0.5], 6)  # every keypoint half a pixel right and down of the anchor
    raw[9, :4] = [0, 0, 0, 5]  # strong score but zero width: dropped
    scores = np.full(16, -10.0, np.float32)
    scores[[5, 9]] = 3.0
    scores[2] = 0.1  # sigmoid 0.52: above the default threshold but raw box empty (width 0): dropped too
    boxes, keypoints, kept = blazeface.decode(raw, scores, anchors, size=16)
    assert boxes.shape == (1, 4) and keypoints.shape == (1, 6, 2)
    np.testing.assert_allclose(boxes[0], [4.0, 2.0, 10.0, 6.0])
    np.testing.assert_allclose(keypoints[0], np.tile([6.5, 6.5], (6, 1)))
    assert kept[0] == pytest.approx(1 / (1 + np.exp(-3.0)))
    assert len(blazeface.decode(raw, scores, anchors, size=16, min_score=0.99)[0]) == 0


def test_weighted_nms_merges_overlaps_by_score_and_keeps_separate_faces():
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60]], np.float32)
    keypoints = np.stack([np.full((6, 2), v, np.float32) for v in (0.0, 4.0, 55.0)])
    scores = np.array([0.9, 0.6, 0.7], np.float32)
    merged = blazeface.weighted_nms(boxes, keypoints, scores, iou=0.3)
    assert [round(score, 2) for _, _, score in merged] == [0.9, 0.7]  # best first, the best score kept
    np.testing.assert_allclose(merged[0][0], [0.8, 0, 10.8, 10], atol=1e-5)  # (0.9*0 + 0.6*2) / 1.5 = 0.8
    np.testing.assert_allclose(merged[0][1], np.full((6, 2), 1.6), atol=1e-5)
    np.testing.assert_allclose(merged[1][0], boxes[2])


def test_letterbox_keeps_the_aspect_ratio_and_maps_points_back():
    rgb = np.zeros((100, 200, 3), np.uint8)
    rgb[:, 100:] = 255
    tensor, scale, (pad_x, pad_y) = blazeface.letterbox(rgb, size=192)
    assert tensor.shape == (192, 192, 3) and scale == pytest.approx(0.96) and (pad_x, pad_y) == (0, 48)
    assert tensor[0, 0, 0] == -1.0 and tensor[100, 150, 0] == pytest.approx(1.0)  # padding black, white right
    assert (150 - pad_x) / scale == pytest.approx(156.25)  # an input point back in photo pixels


def test_finds_the_generated_faces_with_keypoints_inside_their_boxes(capfd):
    detector = faces.make_detector("blazeface")
    assert "XNNPACK" not in capfd.readouterr().err  # LiteRT's start-up line is kept out of notebooks
    photo = render_photo(np.random.default_rng(1), 3)
    found = detector.detect_with_keypoints(photo.rgb)
    truth = [boxes.Box(*b) for b in photo.boxes]
    assert len(boxes.match_boxes(truth, [d.box for d in found], 0.3)) == 3 and len(found) == 3
    for d in found:
        (rx, ry), (lx, ly), _, (mx, my) = d.keypoints[:4]
        assert d.box.x <= min(rx, lx) and max(rx, lx) <= d.box.x + d.box.w
        assert max(ry, ly) < my  # eyes above the mouth
        assert 0.5 < d.box.score <= 1
    assert detector.detect(render_photo(np.random.default_rng(5), 0).rgb) == []
    assert detector.detect(np.zeros((1, 1, 3), np.uint8)) == []


def test_detectors_by_name():
    assert faces.make_detector().name == "blazeface" and faces.make_detector("haar").name == "haar"
    with pytest.raises(ValueError, match="blazeface, haar"):
        faces.make_detector("mtcnn")


@pytest.mark.realdata
def test_recall_on_the_annotated_dlib_photos_is_at_least_95_percent():
    if not (PHOTOS / "annotations").is_dir():
        pytest.skip(f"shared photos not found at {PHOTOS}")
    annotations = faces.read_dlib_annotations(PHOTOS / "annotations", prefix="dlib_")
    result = faces.detection_recall(PHOTOS, annotations, 0.3, faces.make_detector("blazeface"))
    assert result["faces"] >= 40 and result["recall"] >= 0.95, result["per_photo"]
    assert result["unmatched_detections"] <= 0.05 * result["faces"]


def test_levelling_rotates_the_crop_so_that_the_eyes_are_level():
    rgb = np.zeros((200, 200, 3), np.uint8)
    eyes = (70.0, 90.0, 130.0, 110.0)  # the line from the right eye (image left) to the left eye drops 20 px
    for x, y in ((70, 90), (130, 110)):
        rgb[y - 2: y + 3, x - 2: x + 3] = 255
    box = boxes.Box(50, 50, 100, 100, 1.0, eyes)
    assert faces.eye_angle(box) == pytest.approx(np.degrees(np.arctan2(20, 60)))

    def eye_rows(crop):
        ys, xs = np.nonzero(crop[:, :, 0] > 128)
        left = xs < crop.shape[1] / 2
        return ys[left].mean(), ys[~left].mean()

    plain = faces.crop_face(rgb, box, margin=0.0)
    levelled = faces.crop_face(rgb, box, margin=0.0, level=True)
    assert plain.shape == levelled.shape == (100, 100, 3)
    assert np.subtract(*eye_rows(plain)) == pytest.approx(-20, abs=1)
    assert np.subtract(*eye_rows(levelled)) == pytest.approx(0, abs=1.5)
    no_eyes = boxes.Box(50, 50, 100, 100)
    assert np.array_equal(faces.crop_face(rgb, no_eyes, 0.0, level=True), plain)  # unknown eyes: as before


def test_a_face_filling_the_frame_is_found_on_the_padded_retry():
    photo = render_photo(np.random.default_rng(1), 3)
    detector, without_retry = faces.make_detector("blazeface"), blazeface.BlazeFaceDetector(pad=0)
    for x, y, w, h in photo.boxes:
        m = w // 10
        close = photo.rgb[y + m: y + h - m, x + m: x + w - m]  # the face's central 80%: it fills the image
        found = detector.detect(close)
        assert len(found) == 1 and found[0].w > 0.5 * close.shape[1]
        assert without_retry.detect(close) == []  # without the retry it is missed
