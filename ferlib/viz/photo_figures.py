"""Figures for predictions on photos: annotated detections (`draw_predictions`, an image), Grad-CAM, reliability
and coverage (matplotlib Figures).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

# every class of both class sets, each dark enough for the white label text drawn on it
CLASS_COLORS: dict[str, tuple[int, int, int]] = {
    "Angry": (220, 38, 38), "Disgust": (180, 83, 9), "Fear": (147, 51, 234), "Happy": (234, 179, 8),
    "Neutral": (13, 148, 136), "Sad": (37, 99, 235), "Surprise": (22, 163, 74)}
ABSTAIN_COLOR = (128, 128, 128)
OTHER_COLOR = (30, 41, 59)  # a label of a model with other classes


def draw_predictions(rgb: np.ndarray, faces: Sequence) -> Image.Image:
    """Return the photo with each face's box and "label confidence" drawn (grey with "?" when abstained)."""
    img = Image.fromarray(np.asarray(rgb, dtype=np.uint8), mode="RGB")
    draw = ImageDraw.Draw(img)
    width = max(2, round(max(img.size) / 400))
    font = ImageFont.load_default(size=max(11, round(max(img.size) / 50)))
    for face in faces:
        x, y, w, h = face.box
        color = ABSTAIN_COLOR if face.abstained else CLASS_COLORS.get(face.label, OTHER_COLOR)
        draw.rectangle([x, y, x + w - 1, y + h - 1], outline=color, width=width)
        text = f"{face.label} {face.confidence:.2f}" + (" ?" if face.abstained else "")
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        ty = y - (bottom - top) - 2 * width if y - (bottom - top) - 2 * width >= 0 else y + h
        draw.rectangle([x, ty, x + right - left + 2 * width, ty + bottom - top + 2 * width], fill=color)
        draw.text((x + width - left, ty + width - top), text, fill=(255, 255, 255), font=font)
    return img


def photo_grid(images: Sequence[np.ndarray | Image.Image], titles: Sequence[str], ncols: int = 3,
               title: str = "Detections and predictions") -> plt.Figure:
    """Return a grid of (annotated) photos with titles."""
    n = max(1, len(images))
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.6 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, name in zip(axes.ravel(), images, titles):
        ax.imshow(img)
        ax.set_title(name, fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def gradcam_grid(faces: np.ndarray, heatmaps: np.ndarray, titles: Sequence[str],
                 title: str = "Grad-CAM: where the model looked") -> plt.Figure:
    """Return two rows per batch of faces: the face as the model saw it, and the heatmap over it."""
    n = max(1, len(faces))
    fig, axes = plt.subplots(2, n, figsize=(2.1 * n, 4.6), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (face, cam, name) in enumerate(zip(faces, heatmaps, titles)):
        axes[0, i].imshow(face)
        axes[0, i].set_title(name, fontsize=8)
        axes[1, i].imshow(face)
        axes[1, i].imshow(cam, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def reliability_diagrams(bins: Mapping[str, pd.DataFrame], ece: Mapping[str, float] | None = None,
                         title: str = "Reliability") -> plt.Figure:
    """Return one reliability diagram per setting: accuracy per confidence bin against the diagonal."""
    n = max(1, len(bins))
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.8), squeeze=False)
    for ax, (name, frame) in zip(axes[0], bins.items()):
        frame = pd.DataFrame(frame)
        centers = (frame["lower"] + frame["upper"]) / 2
        widths = frame["upper"] - frame["lower"]
        ax.bar(centers, frame["accuracy"].fillna(0), width=widths, edgecolor="black", color="tab:blue",
               alpha=0.75, label="accuracy")
        low = np.minimum(frame["confidence"], frame["accuracy"]).fillna(0)
        ax.bar(centers, (frame["confidence"] - frame["accuracy"]).abs().fillna(0), bottom=low, width=widths,
               fill=False, hatch="//", edgecolor="tab:red", lw=0.8, label="gap to mean confidence")
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
        label = f"{name}\nECE {ece[name]:.3f}" if ece and name in ece else name
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy", title=label)
        ax.title.set_fontsize(9)
    axes[0, 0].legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def coverage_accuracy(curves: Mapping[str, pd.DataFrame], threshold: float | None = None,
                      title: str = "Abstention: accuracy on the faces kept") -> plt.Figure:
    """Return accuracy against coverage as the confidence threshold rises, the chosen threshold marked."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, frame in curves.items():
        frame = pd.DataFrame(frame)
        line, = ax.plot(frame["coverage"], frame["accuracy"], marker="o", ms=3, label=name)
        if threshold is not None:
            at = frame.iloc[(frame["threshold"] - threshold).abs().argmin()]
            ax.scatter([at["coverage"]], [at["accuracy"]], s=90, facecolors="none", edgecolors=line.get_color(), lw=2)
            ax.annotate(f"abstain below {threshold:.2f}", (at["coverage"], at["accuracy"]), textcoords="offset points",
                        xytext=(8, -12), fontsize=8, color=line.get_color())
    ax.set(xlabel="coverage (share of faces the classifier answers)", ylabel="accuracy on those faces",
           xlim=(0, 1.02), title=title)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig

