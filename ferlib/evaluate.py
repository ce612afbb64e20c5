"""Scoring a trained model: accuracy, the classification report and the confusion matrix."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import classification_report, confusion_matrix

from ferlib.classes import CLASS_NAMES, NUM_CLASSES


@dataclass(frozen=True)
class Evaluation:
    """True labels, predicted labels and class probabilities for one evaluated set."""

    y_true: np.ndarray
    y_pred: np.ndarray
    probs: np.ndarray

    @property
    def n(self) -> int:
        """Return the number of evaluated images."""
        return int(len(self.y_true))

    @property
    def accuracy(self) -> float:
        """Return the fraction of correct predictions."""
        return float(np.mean(self.y_true == self.y_pred)) if self.n else float("nan")

    def report(self) -> dict:
        """Return scikit-learn's classification report as a dict (per class, accuracy, averages)."""
        return classification_report(self.y_true, self.y_pred, labels=list(range(NUM_CLASSES)),
                                     target_names=list(CLASS_NAMES), output_dict=True, zero_division=0)

    def confusion(self) -> np.ndarray:
        """Return the confusion matrix (rows: true class, columns: predicted class)."""
        return confusion_matrix(self.y_true, self.y_pred, labels=list(range(NUM_CLASSES)))

    def to_dict(self) -> dict:
        """Return accuracy, n, per-class metrics, averages and the confusion matrix as plain data."""
        rep = self.report()
        per_class = {c: {"precision": rep[c]["precision"], "recall": rep[c]["recall"],
                         "f1": rep[c]["f1-score"], "support": int(rep[c]["support"])} for c in CLASS_NAMES}
        averages = {k: {"precision": rep[k]["precision"], "recall": rep[k]["recall"], "f1": rep[k]["f1-score"]}
                    for k in ("macro avg", "weighted avg")}
        return {"accuracy": self.accuracy, "n": self.n, "per_class": per_class, "averages": averages,
                "confusion": self.confusion().tolist(), "classes": list(CLASS_NAMES)}


def predict_probs(model, images: np.ndarray, batch_size: int = 64, tta_flip: bool = False) -> np.ndarray:
    """Return class probabilities (n, 5) for uint8 images, in input order; with `tta_flip`, the mean of
    the predictions for each image and its mirror image (left-right)."""
    import tensorflow as tf

    def predict(x: np.ndarray) -> np.ndarray:
        ds = tf.data.Dataset.from_tensor_slices(x).batch(batch_size).prefetch(tf.data.AUTOTUNE)
        return np.asarray(model.predict(ds, verbose=0), dtype=np.float64)

    probs = predict(images)
    if tta_flip:
        probs = (probs + predict(np.ascontiguousarray(images[:, :, ::-1]))) / 2
    return probs


def evaluate_model(model, images: np.ndarray, labels: np.ndarray, batch_size: int = 64,
                   tta_flip: bool = False) -> Evaluation:
    """Return the Evaluation of a model on images with integer labels (flip-averaged with `tta_flip`)."""
    probs = predict_probs(model, images, batch_size, tta_flip=tta_flip)
    return Evaluation(y_true=np.asarray(labels, dtype=np.int64), y_pred=probs.argmax(axis=1), probs=probs)


def accuracy_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Return the Wilson score interval (low, high) for an accuracy of `correct` out of `n`."""
    from scipy.stats import norm

    if n <= 0:
        return float("nan"), float("nan")
    z = float(norm.ppf(0.5 + confidence / 2))
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def report_table(result: dict) -> pd.DataFrame:
    """Return a classification-report table (like the study's Tables 2 and 3) from `Evaluation.to_dict()`."""
    rows = {c: [m["precision"], m["recall"], m["f1"], m["support"]] for c, m in result["per_class"].items()}
    rows["accuracy"] = [np.nan, np.nan, result["accuracy"], result["n"]]
    for name, m in result["averages"].items():
        rows[name] = [m["precision"], m["recall"], m["f1"], result["n"]]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["precision", "recall", "f1-score", "support"])
    table["support"] = table["support"].astype(int)
    return table
