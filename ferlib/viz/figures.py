"""Figures: each function returns a matplotlib Figure; notebooks show and save it with `NotebookRun.figure`
(``ferlib.reports.notebook``), which writes outputs/figures/<notebook>/<name>.png and displays the same PNG."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns

from ferlib.classes import STUDY

sns.set_theme(style="whitegrid", context="notebook")


def class_distribution(counts: pd.Series, reference: pd.Series, title: str = "Class distribution") -> plt.Figure:
    """Return a bar chart of images per class (the study's Figure 1) beside the reference's shares (the study's)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    frame = pd.concat([pd.DataFrame({"class": s.index, "share": (s / s.sum()).values, "data": data}) for s, data in
                       ((counts, "this run"), (reference.reindex(counts.index), "Human Face Emotions (study)"))])
    sns.barplot(data=frame, x="class", y="share", hue="data", ax=ax)
    for bar, n in zip(ax.patches, counts.values):
        ax.annotate(f"{n:,}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                    fontsize=9)
    ax.set(title=title, xlabel="", ylabel="share of images")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    fig.tight_layout()
    return fig


def image_sizes(manifest: pd.DataFrame) -> plt.Figure:
    """Return a two-panel figure: image side lengths and colour modes of the usable files."""
    ok = manifest[manifest["status"] == "ok"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    sizes = (ok["width"].astype(str) + "x" + ok["height"].astype(str)).value_counts().head(10)
    for ax, counts, title, color in ((ax1, sizes, "Most common image sizes", "tab:blue"),
                                     (ax2, ok["mode"].value_counts(), "Colour modes", "tab:green")):
        sns.barplot(x=counts.values, y=counts.index, ax=ax, color=color)
        ax.set(title=title, xlabel="files", ylabel="")
    fig.tight_layout()
    return fig


def sample_grid(images: np.ndarray, labels: Sequence[int], per_class: int = 8, seed: int = 0,
                title: str = "Sample images") -> plt.Figure:
    """Return a grid with one row per class and `per_class` random images in each."""
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(STUDY.names), per_class, figsize=(per_class * 1.1, len(STUDY.names) * 1.2))
    for r, name in enumerate(STUDY.names):
        idx = np.flatnonzero(np.asarray(labels) == r)
        chosen = rng.choice(idx, size=min(per_class, len(idx)), replace=False) if len(idx) else []
        for c in range(per_class):
            axes[r, c].axis("off")
            if c < len(chosen):
                axes[r, c].imshow(images[chosen[c]])
        axes[r, 0].set_title(name, loc="left", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def training_curves(history: pd.DataFrame, title: str, phase_starts: Sequence[int] = ()) -> plt.Figure:
    """Return accuracy and loss curves for train and validation (Figures 2 and 3), phase starts marked."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("accuracy", "loss")):
        ax.plot(history["epoch"], history[metric], marker="o", ms=3, label=f"train {metric}")
        ax.plot(history["epoch"], history[f"val_{metric}"], marker="o", ms=3, label=f"validation {metric}")
        for start in phase_starts:
            ax.axvline(start - 0.5, color="grey", ls="--", lw=1)
            ax.text(start - 0.4, ax.get_ylim()[1], "fine-tuning", va="top", fontsize=8, color="grey")
        ax.set(xlabel="epoch", ylabel=metric, title=metric.capitalize())
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def learning_curve(points: pd.DataFrame, history: pd.DataFrame | None = None, n_train: int | None = None,
                   title: str = "Validation accuracy against images seen") -> plt.Figure:
    """Return validation accuracy against images seen (log scale): one marker per finished budget (labelled with
    its epochs and training time) and, when given, one run's per-epoch validation accuracy (a thin line)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    shown = [points["val accuracy (best mode)"], points["val accuracy (plain)"]]
    if history is not None and n_train:
        ax.plot(history["epoch"].to_numpy() * n_train / 1e6, history["val_accuracy"], color="grey", lw=1, alpha=0.7,
                label="within C1's run, per epoch (plain)")
        shown.append(history["val_accuracy"])
    ax.plot(points["images seen (millions)"], points["val accuracy (best mode)"], "o-", ms=7,
            label="finished budgets (kept model, best test-time mode)")
    ax.plot(points["images seen (millions)"], points["val accuracy (plain)"], "s--", ms=5, alpha=0.7,
            label="finished budgets (plain)")
    for i, (_, row) in enumerate(points.iterrows()):
        epochs = f"{row['epochs']} epoch" + ("" if row["epochs"] == 1 else "s")
        # labels alternate above-left and below-right, so neighbours on a flattening curve do not overlap
        ax.annotate(f"{epochs}, {row['training time (min)']:.0f} min",
                    (row["images seen (millions)"], row["val accuracy (best mode)"]),
                    textcoords="offset points", xytext=(-8, 8) if i % 2 else (8, -14), fontsize=8,
                    ha="right" if i % 2 else "left")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.2g"))
    values = pd.concat(shown).dropna()
    if len(values):  # at least 4 points of accuracy in view, so a single budget is not a flat line at one value
        middle, half = (values.max() + values.min()) / 2, max(0.02, (values.max() - values.min()) / 2 + 0.01)
        ax.set_ylim(max(0.0, middle - half), min(1.0, middle + half))
    low, high = ax.get_ylim()
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0 if high - low >= 0.1 else 1))
    ax.set(xlabel="images seen in training (millions, log scale)", ylabel="validation accuracy", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def confusion_heatmap(confusion: np.ndarray | list, classes: Sequence[str], title: str = "Confusion matrix",
                      normalize: bool = False) -> plt.Figure:
    """Return a heatmap of a confusion matrix over `classes` (rows: true class), counts or row-normalised."""
    matrix = np.asarray(confusion, dtype=float)
    if normalize:
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6 + 0.5 * (len(classes) - 5), 5 + 0.4 * (len(classes) - 5)))
    sns.heatmap(matrix, annot=True, fmt=".2f" if normalize else ".0f", cmap="Blues", cbar=False, ax=ax,
                xticklabels=classes, yticklabels=classes)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return fig


def study_vs_run_bars(table: pd.DataFrame, study: str = "study accuracy", run: str = "this run accuracy",
                      title: str = "Accuracy: study vs this run") -> plt.Figure:
    """Return grouped bars of the study's and this run's accuracy per row of `table` (with "<run> ci_low/high")."""
    numeric = lambda column: pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
    study_v, run_v = numeric(study), numeric(run)
    x, width = np.arange(len(table)), 0.38
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(table)), 4))
    ax.bar(x - width / 2, np.nan_to_num(study_v), width, label="study", color=sns.color_palette()[0])
    yerr = (np.nan_to_num(np.vstack([run_v - numeric(f"{run} ci_low"), numeric(f"{run} ci_high") - run_v]))
            if f"{run} ci_low" in table.columns else None)
    ax.bar(x + width / 2, run_v, width, yerr=yerr, capsize=4, label="this run (95% CI)" if yerr is not None
           else "this run", color=sns.color_palette()[1])
    for xs, values, ha in ((x - width / 2, study_v, "center"), (x + 3 * width / 4, run_v, "left")):
        for xi, v in zip(xs, values):
            if v > 0:
                ax.annotate(f"{v:.0%}", (xi, v), ha=ha, va="bottom", fontsize=8)
    ax.set_xticks(x, [str(i) for i in table.index])
    ax.set(ylim=(0, 1.05), title=title, xlabel="", ylabel="validation accuracy")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    fig.tight_layout()
    return fig


def study_vs_run_forest(numbers: pd.DataFrame, title: str = "The study's numbers vs this run (95% CI)"
                        ) -> plt.Figure:
    """Return a forest plot of `summary.study_numbers`: this run's value and interval, the study's, by verdict."""
    rows = numbers[pd.to_numeric(numbers["this run"], errors="coerce").notna()]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(rows) + 1.4))
    colors = {"reproduced": "#16a34a", "not reproduced": "#dc2626", "not comparable": "#9ca3af"}
    y = np.arange(len(rows))[::-1]
    for yi, (_, r) in zip(y, rows.iterrows()):
        color = colors.get(r["verdict"], "#dc2626")
        if pd.notna(r["this run ci_low"]):
            ax.plot([r["this run ci_low"], r["this run ci_high"]], [yi, yi], color=color, lw=2)
        ax.plot(r["this run"], yi, "o", color=color, ms=5)
        if pd.notna(r["study"]):
            ax.plot(r["study"], yi, "x", color="black", ms=6)
    ax.set_yticks(y, list(rows.index), fontsize=8)
    ax.set(xlim=(0, 1.02), xlabel="value", title=title)
    handles = [plt.Line2D([], [], color=c, marker="o", lw=2, label=v) for v, c in colors.items()]
    handles.append(plt.Line2D([], [], color="black", marker="x", lw=0, label="study"))
    fig.legend(handles=handles, loc="lower center", ncol=4, frameon=False, fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout(rect=(0, 0.9 / fig.get_figheight(), 1, 1))
    return fig


def f1_heatmap(table: pd.DataFrame, highlight: str = "Fear", title: str = "F1 per class") -> plt.Figure:
    """Return a heatmap of per-class F1 (columns "F1 <class>") per model, with one class outlined."""
    columns = [c for c in table.columns if c.startswith("F1 ") and not c.endswith(("ci_low", "ci_high"))]
    data = table[columns].astype(float).rename(columns=lambda c: c[len("F1 "):])
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(data) + 1.6))
    sns.heatmap(data, annot=True, fmt=".2f", vmin=0, vmax=1, cmap="viridis", cbar_kws={"label": "F1"}, ax=ax)
    if highlight in data.columns:
        col = list(data.columns).index(highlight)
        ax.add_patch(plt.Rectangle((col, 0), 1, len(data), fill=False, edgecolor="red", lw=3))
    ax.set(title=title, xlabel="", ylabel="")
    fig.tight_layout()
    return fig


def image_pairs(left: Sequence[np.ndarray], right: Sequence[np.ndarray], captions: Sequence[str],
                row_labels: tuple[str, str] = ("internal", "external"), title: str = "Flagged pairs") -> plt.Figure:
    """Return a figure with one flagged pair per column: left image on top, right image below, caption above."""
    n = max(1, len(left))
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n + 0.6, 3.6), squeeze=False)
    for c in range(n):
        for r, images in enumerate((left, right)):
            ax = axes[r, c]
            ax.set(xticks=[], yticks=[])
            if c < len(images):
                ax.imshow(images[c], cmap="gray", vmin=0, vmax=255)
            if c == 0:
                ax.set_ylabel(row_labels[r])
        if c < len(captions):
            axes[0, c].set_title(captions[c], fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def leakage_fractions(summaries: dict[str, dict], kinds: Sequence[str] = ("exact", "near", "mirrored")) -> plt.Figure:
    """Return grouped bars: per comparison, the share of right-hand images with a copy of each kind, and of any."""
    frame = pd.DataFrame([{"comparison": name.replace("_", " "), "kind": kind,
                           "share": s["right_flagged_fraction"] if kind == "any"
                           else s[f"right_with_{kind}"] / max(s["n_right"], 1)}
                          for name, s in summaries.items() for kind in (*kinds, "any")])
    fig, ax = plt.subplots(figsize=(8, 3.8))
    sns.barplot(data=frame, x="comparison", y="share", hue="kind", ax=ax)
    for bar in ax.patches:
        if bar.get_height() > 0:
            ax.annotate(f"{bar.get_height():.1%}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
    ax.set(title="Validation (external) images with a copy in the training (internal) set", xlabel="",
           ylabel="share of images")
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4, frameon=False)
    fig.tight_layout()
    return fig
