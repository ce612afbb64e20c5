"""Emotions in a video (or from a camera): sample frames, find and follow each face, classify it over time.

One row per face per sampled frame (`predict_video`); `plot_timeline` draws each face's scores over time.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ferlib.photos.boxes import Box, match_boxes
from ferlib.runtime.progress import bar as progress_bar

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv"})
TRACK_IOU = 0.3  # a face continues a track when its box overlaps the track's last box at least this much
COLUMNS = ["time_s", "frame", "face_id", "x", "y", "w", "h", "label", "confidence", "abstained"]  # + one per class


class VideoError(ValueError):
    """A video that cannot be read (the message says which and why)."""


@dataclass
class VideoResult:
    """The rows of a video's prediction and what was read: frames sampled, the video's length and rate."""

    rows: pd.DataFrame
    frames_sampled: int
    native_fps: float
    sampled_fps: float  # the rate actually sampled: the native rate over the frame step nearest to `fps`
    duration_s: float | None  # from the file's header; None for a camera
    warnings: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)  # the model's, one score column each

    @property
    def faces(self) -> int:
        """Return how many distinct faces (identities) were followed."""
        return int(self.rows["face_id"].nunique()) if len(self.rows) else 0


def is_video(path: str | Path) -> bool:
    """Return True for a file name with a video extension (.mp4, .mov, .avi, ...)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


class FaceTracker:
    """Give each face box an identity: the track whose last box it overlaps most (IoU >= `iou`), if that track
    was seen within `max_gap_s`; otherwise a new identity (1, 2, ...)."""

    def __init__(self, iou: float = TRACK_IOU, max_gap_s: float = 1.0):
        self.iou, self.max_gap_s = iou, max_gap_s
        self.tracks: dict[int, tuple[Box, float]] = {}  # id -> (last box, last time)
        self.next_id = 1

    def assign(self, boxes: list[Box], time_s: float) -> list[int]:
        """Return one identity per box (one-to-one, the best-overlapping pairs first: boxes.match_boxes)."""
        live = [(i, box) for i, (box, seen) in self.tracks.items() if time_s - seen <= self.max_gap_s]
        ids: list[int | None] = [None] * len(boxes)
        for t, b, _ in match_boxes([box for _, box in live], boxes, self.iou):
            ids[b] = live[t][0]
        for b, box in enumerate(boxes):
            if ids[b] is None:
                ids[b] = self.next_id
                self.next_id += 1
            self.tracks[ids[b]] = (box, time_s)
        return [int(i) for i in ids]


def predict_video(classifier: Any, source: str | Path | int, fps: float = 4.0, max_seconds: float | None = None,
                  progress: bool = True) -> VideoResult:
    """Return one row per face per sampled frame of a video file or camera index: time, frame, face identity, box,
    label, confidence, abstained, one score per class. VideoError when nothing can be read; a truncated file warns."""
    import cv2

    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    camera = isinstance(source, int)
    if not camera and not Path(source).is_file():
        raise VideoError(f"{source}: file not found")
    if not camera and Path(source).stat().st_size == 0:
        raise VideoError(f"{source}: empty file (0 bytes)")
    capture = cv2.VideoCapture(source if camera else str(source))
    if not capture.isOpened():
        raise VideoError(f"camera {source}: cannot be opened" if camera else f"{source}: cannot be opened as a "
                         "video (not a video, a format OpenCV cannot read, or a corrupt file)")
    warnings = []
    try:
        native = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        if not 0 < native < 1000:
            warnings.append(f"{source}: no frame rate in its metadata; assumed 30 per second (times are estimates)")
            native = 30.0
        # the header's frame count is an estimate for some containers (mkv, webm, variable frame rates)
        announced = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)) if not camera else 0
        step = max(1, round(native / fps))
        limit = int(max_seconds * native) if max_seconds and not camera else None
        total = min(announced, limit) if announced and limit else (announced or limit or None)
        # a face keeps its identity across at least one missed sample, however sparse the sampling
        tracker, rows, index, sampled = FaceTracker(max_gap_s=max(1.0, 2.5 * step / native)), [], 0, 0
        # a camera runs for max_seconds (default 10) by the wall clock
        deadline = time.monotonic() + (max_seconds or 10.0) if camera else None
        with progress_bar(total=total, desc=f"video {Path(str(source)).name}", unit="frame",
                          disable=not progress) as bar:
            while limit is None or index < limit:
                if (deadline is not None and time.monotonic() > deadline) or not capture.grab():
                    break
                if index % step == 0:
                    ok, bgr = capture.retrieve()
                    if not ok or bgr is None:
                        break
                    records = classifier.predict(np.ascontiguousarray(bgr[..., ::-1]))
                    ids = tracker.assign([Box(*r.box) for r in records], index / native)
                    rows += [{"time_s": round(index / native, 3), "frame": index, "face_id": face_id,
                              **record.flat(classifier.classes)} for face_id, record in zip(ids, records)]
                    sampled += 1
                index += 1
                bar.update(1)
    finally:
        capture.release()
    if sampled == 0:
        raise VideoError(f"{source}: no frame could be read (an empty, truncated or corrupt video)")
    if announced and index < 0.95 * announced and (limit is None or index < limit):
        warnings.append(f"{source}: the video ended after {index} of the {announced} frames its header announces "
                        f"({index / native:.1f} of {announced / native:.1f} s): the file looks truncated")
    classes = list(classifier.classes)
    return VideoResult(pd.DataFrame(rows, columns=[*COLUMNS, *classes]), sampled, native, native / step,
                       announced / native if announced else None, warnings, classes)


def plot_timeline(result: VideoResult, max_faces: int = 6) -> Any:
    """Return a figure: for each face followed (the `max_faces` seen longest), its class scores over time."""
    from matplotlib.figure import Figure  # not pyplot's: nothing to close, and no display needed

    rows = result.rows
    if rows.empty:
        fig = Figure(figsize=(8, 2))
        ax = fig.subplots()
        ax.axis("off")
        ax.text(0.5, 0.5, f"no face found in {result.frames_sampled} sampled frames", ha="center", va="center")
        return fig
    longest = rows["face_id"].value_counts().index[:max_faces]
    fig = Figure(figsize=(9, 2.2 * len(longest)))
    axes = fig.subplots(len(longest), 1, sharex=True, squeeze=False)
    for ax, face_id in zip(axes[:, 0], sorted(longest)):
        face = rows[rows["face_id"] == face_id].sort_values("time_s")
        for name in result.classes:
            ax.plot(face["time_s"], face[name], marker=".", label=name)
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"face {face_id}\nscore")
        ax.set_title(f"face {face_id}: most often {face['label'].mode().iloc[0]} "
                     f"({len(face)} frames, {face['time_s'].min():.1f}-{face['time_s'].max():.1f} s)", fontsize=9)
    # beside the first face's plot, right of it: above it the legend would cover that plot's title
    axes[0, 0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    return fig
