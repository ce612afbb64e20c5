"""Videos: frames sampled, faces followed by identity and classified; CSV and plot; bad videos say why."""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from ferlib import EmotionClassifier, cli
from ferlib.photos import video
from ferlib.photos.boxes import Box
from ferlib.photos.synthetic_photos import render_photo


def write_clip(path, frames: int = 30, fps: float = 10.0, codec: str = "mp4v"):
    """Write a clip of a generated photo with three faces drifting right 2 px per frame; return the faces' boxes."""
    photo = render_photo(np.random.default_rng(1), 3)
    height, width = photo.rgb.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.ascontiguousarray(np.roll(photo.rgb, 2 * i, axis=1)[..., ::-1]))
    writer.release()
    return photo.boxes


@pytest.fixture(scope="module")
def clf():
    return EmotionClassifier.load()


def test_faces_are_followed_and_classified_in_every_sampled_frame(clf, tmp_path):
    boxes = write_clip(tmp_path / "clip.mp4")
    result = video.predict_video(clf, tmp_path / "clip.mp4", fps=5, progress=False)
    assert result.frames_sampled == 15 and result.sampled_fps == 5 and result.duration_s == pytest.approx(3.0)
    rows = result.rows
    assert list(rows.columns) == [*video.COLUMNS, *clf.classes] and result.faces == 3 and not result.warnings
    assert sorted(rows["frame"].unique()) == list(range(0, 30, 2))
    assert rows.groupby("face_id").size().tolist() == [15, 15, 15]  # each face keeps its identity
    for _, face in rows.groupby("face_id"):
        moved = face.sort_values("frame")["x"].to_numpy()
        assert moved[-1] - moved[0] == pytest.approx(2 * 28, abs=8)  # it drifted 2 px per frame
    first = rows[rows["frame"] == 0].sort_values("x")
    truth = sorted(boxes)
    assert all(Box(*t).iou(Box(r.x, r.y, r.w, r.h)) > 0.3 for t, r in zip(truth, first.itertuples()))
    assert set(rows["label"]) <= set(clf.classes) and len(clf.classes) == 7  # the default model's seven
    np.testing.assert_allclose(rows[clf.classes].sum(axis=1), 1.0, atol=1e-4)
    assert (rows["abstained"] == (rows["confidence"] < clf.abstain_below)).all()


def test_cli_writes_the_csv_and_the_timeline_for_a_video(tmp_path, capsys):
    write_clip(tmp_path / "clip.avi", frames=20, codec="MJPG")
    out = tmp_path / "out"
    assert cli.main(["predict", str(tmp_path / "clip.avi"), "--fps", "2", "--video-out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "4 frames sampled (2 per second of its 10), 3 face(s) followed, 12 rows" in err
    rows = pd.read_csv(out / "clip.emotions.csv")
    assert len(rows) == 12 and rows["face_id"].nunique() == 3
    assert (out / "clip.emotions.png").stat().st_size > 10_000


def test_a_truncated_video_gives_what_was_read_and_says_so(clf, tmp_path, capsys):
    write_clip(tmp_path / "clip.avi", codec="MJPG")  # MJPG frames are read until the cut
    data = (tmp_path / "clip.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) * 4 // 10])
    result = video.predict_video(clf, tmp_path / "cut.avi", fps=5, progress=False)
    assert 0 < result.frames_sampled < 15
    assert "looks truncated" in result.warnings[0] and "of the 30 frames its header announces" in result.warnings[0]
    assert cli.main(["predict", str(tmp_path / "cut.avi"), "--video-out", str(tmp_path / "out")]) == 1
    assert "warning:" in capsys.readouterr().err and (tmp_path / "out" / "cut.emotions.csv").is_file()


@pytest.mark.parametrize("content,reason", [(b"", "empty file"), (b"not a video at all", "cannot be opened"),
                                            (None, "file not found")])
def test_an_unreadable_video_gets_a_clear_error(clf, tmp_path, capsys, content, reason):
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(video.VideoError, match=reason):
        video.predict_video(clf, path, progress=False)
    assert cli.main(["predict", str(path), "--video-out", str(tmp_path)]) == 1
    assert reason in capsys.readouterr().err


def test_a_truncated_mp4_whose_index_is_lost_cannot_be_opened(clf, tmp_path):
    write_clip(tmp_path / "clip.mp4")
    data = (tmp_path / "clip.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])  # mp4v keeps its index (moov) at the end
    with pytest.raises(video.VideoError, match="cannot be opened as a video"):
        video.predict_video(clf, tmp_path / "cut.mp4", progress=False)


def test_tracker_keeps_identities_across_small_moves_and_starts_new_ones():
    tracker = video.FaceTracker(max_gap_s=1.0)
    a, b = Box(0, 0, 50, 50), Box(200, 0, 50, 50)
    assert tracker.assign([a, b], 0.0) == [1, 2]
    assert tracker.assign([Box(205, 2, 50, 50), Box(4, 1, 50, 50)], 0.25) == [2, 1]  # order does not matter
    assert tracker.assign([Box(400, 0, 50, 50)], 0.5) == [3]  # far from every track: a new face
    assert tracker.assign([Box(6, 2, 50, 50)], 2.0) == [4]  # track 1 unseen for 1.75 s: a new identity
    assert video.is_video("x.MP4") and not video.is_video("x.jpg")


def test_sparse_sampling_keeps_identities(clf, tmp_path):
    write_clip(tmp_path / "clip.mp4")  # 10 frames per second, 3 s
    result = video.predict_video(clf, tmp_path / "clip.mp4", fps=0.5, progress=False)  # samples 2 s apart
    assert result.frames_sampled == 2 and result.faces == 3  # not six: each face keeps its identity


def test_photos_and_videos_together_share_the_json_and_the_exit_status(tmp_path, capsys):
    import json

    from PIL import Image

    write_clip(tmp_path / "clip.avi", frames=10, codec="MJPG")
    Image.fromarray(render_photo(np.random.default_rng(1), 3).rgb).save(tmp_path / "photo.jpg")
    (tmp_path / "notes.jpg").write_text("not an image")
    code = cli.main(["predict", str(tmp_path / "clip.avi"), str(tmp_path / "notes.jpg"), "--json",
                     "--video-out", str(tmp_path / "out")])
    entries = {e["path"].rsplit("/", 1)[-1]: e for e in json.loads(capsys.readouterr().out)}
    assert code == 0  # the video was read whole, although the photo was not
    assert entries["notes.jpg"]["error"].startswith("not an image") and entries["clip.avi"]["error"] is None
    assert entries["clip.avi"]["video"]["faces"] == 3 and entries["clip.avi"]["video"]["csv"].endswith(".csv")
    assert cli.main(["predict", str(tmp_path / "clip.avi"), "--json", "--video-out", str(tmp_path / "out")]) == 0
    only_video = json.loads(capsys.readouterr().out)
    assert [e["video"]["frames_sampled"] for e in only_video] == [5]  # every 2nd of 10 frames


def test_without_video_out_the_csv_and_plot_go_beside_the_video(tmp_path, monkeypatch, capsys):
    clips = tmp_path / "clips"
    clips.mkdir()
    write_clip(clips / "clip.avi", frames=10, codec="MJPG")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not where the video is
    assert cli.main(["predict", str(clips / "clip.avi"), "--fps", "2"]) == 0
    assert (clips / "clip.emotions.csv").is_file() and (clips / "clip.emotions.png").is_file()
    assert not list(elsewhere.iterdir())
    assert f"wrote {clips / 'clip.emotions.csv'} and {clips / 'clip.emotions.png'}" in capsys.readouterr().err
