"""Scoring a trained model: accuracy, the classification report and the confusion matrix."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import classification_report, confusion_matrix

from ferlib.evaluation.stats import confusion_intervals, encode_labels
from ferlib.evaluation.views import average_over_views


@dataclass(frozen=True)
class Evaluation:
    """True labels, predicted labels and class probabilities for one evaluated set, over the model's classes."""

    y_true: np.ndarray
    y_pred: np.ndarray
    probs: np.ndarray
    classes: tuple[str, ...]  # the model's classes, in the order of its outputs

    def __post_init__(self) -> None:
        if self.probs.ndim == 2 and len(self.probs) and self.probs.shape[1] != len(self.classes):
            raise ValueError(f"{self.probs.shape[1]} outputs per image for {len(self.classes)} classes")

    @property
    def n(self) -> int:
        """Return the number of evaluated images."""
        return int(len(self.y_true))

    @property
    def accuracy(self) -> float:
        """Return the fraction of correct predictions."""
        return float(np.mean(self.y_true == self.y_pred)) if self.n else float("nan")

    def confusion(self) -> np.ndarray:
        """Return the confusion matrix (rows: true class, columns: predicted class)."""
        return confusion_matrix(self.y_true, self.y_pred, labels=list(range(len(self.classes))))

    def to_dict(self) -> dict:
        """Return accuracy, n, per-class metrics, averages, the confusion matrix, 95% bootstrap intervals
        and the per-image labels and predictions (for paired tests) as plain data."""
        if not self.n:
            raise ValueError("nothing to evaluate: 0 images (check the data folder and the skipped-file report)")
        rep = classification_report(self.y_true, self.y_pred, labels=list(range(len(self.classes))),
                                    target_names=list(self.classes), output_dict=True, zero_division=0)
        confusion = self.confusion()
        ci = confusion_intervals(confusion, self.classes)
        scores = lambda k: {"precision": rep[k]["precision"], "recall": rep[k]["recall"], "f1": rep[k]["f1-score"]}
        per_class = {c: scores(c) | {"f1_ci": ci["f1"][c], "support": int(rep[c]["support"])} for c in self.classes}
        averages = {k: scores(k) | {"f1_ci": ci[ci_key]}
                    for k, ci_key in (("macro avg", "macro_f1"), ("weighted avg", "weighted_f1"))}
        return {"accuracy": self.accuracy, "accuracy_ci": ci["accuracy"], "n": self.n,
                "per_class": per_class, "averages": averages, "confusion": confusion.tolist(),
                "classes": list(self.classes), "ci_method": ci["method"],
                "y_true": encode_labels(self.y_true), "y_pred": encode_labels(self.y_pred)}


def predict_probs(model, images: np.ndarray, batch_size: int = 64, tta_flip: bool = False,
                  tta_shift: int = 0) -> np.ndarray:
    """Return the model's outputs for uint8 images, in input order, as float64 (class probabilities, or a feature
    extractor's features), averaged over the `tta_views` of `tta_flip` / `tta_shift`; the images are never copied."""
    from ferlib.data.pipeline import make_dataset  # lazy: tf.data; scoring LiteRT's outputs needs no TensorFlow

    def predict(x: np.ndarray) -> np.ndarray:
        ds = make_dataset(x, np.zeros(len(x), dtype=np.int64), batch_size, training=False)
        return np.asarray(model.predict(ds.map(lambda image, _: image), verbose=0), dtype=np.float32)

    return average_over_views(predict, images, tta_flip, tta_shift).astype(np.float64)


def evaluate_model(model, images: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], batch_size: int = 64,
                   tta_flip: bool = False, tta_shift: int = 0) -> Evaluation:
    """Return the Evaluation of a model of `classes` on images with integer labels (`predict_probs` for the views)."""
    probs = predict_probs(model, images, batch_size, tta_flip=tta_flip, tta_shift=tta_shift)
    return Evaluation(np.asarray(labels, dtype=np.int64), probs.argmax(axis=1), probs, tuple(classes))


def report_table(result: dict) -> pd.DataFrame:
    """Return a classification-report table (like the study's Tables 2 and 3) from `to_dict()`, with F1 intervals."""
    ci = lambda interval: list(interval) if interval else [np.nan, np.nan]
    rows = {c: [m["precision"], m["recall"], m["f1"], *ci(m.get("f1_ci")), m["support"]]
            for c, m in result["per_class"].items()}
    rows["accuracy"] = [np.nan, np.nan, result["accuracy"], *ci(result.get("accuracy_ci")), result["n"]]
    rows |= {name: [m["precision"], m["recall"], m["f1"], *ci(m.get("f1_ci")), result["n"]]
             for name, m in result["averages"].items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["precision", "recall", "f1-score", "f1 95% CI low",
                                                                 "f1 95% CI high", "support"]).astype({"support": int})
