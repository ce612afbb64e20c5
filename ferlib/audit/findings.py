"""What the leakage audit means for an external score (notebook 07): a model scored on the external images with
and without a copy in the internal data, and sentences built from the measured numbers. `scores_by_copy` splits an
evaluation the same way for C1's result files and the shipped models' scores.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import fisher_exact

from ferlib.audit.leakage import audit_manifests
from ferlib.config import RunSettings
from ferlib.data.run_data import ExternalData, InternalData
from ferlib.evaluation.evaluate import Evaluation, evaluate_model
from ferlib.evaluation.summary import accuracy_text
from ferlib.evaluation.test_time import score

ALPHA = 0.05


def score_by_overlap(model: Any, x_test: np.ndarray, y_test: np.ndarray, overlap: np.ndarray,
                     classes: tuple[str, ...], batch_size: int = 64) -> dict[str, Any]:
    """Return the model's evaluation on all external images, on those without a copy and on those with one."""
    parts = {"full": np.ones(len(y_test), dtype=bool), "non_overlapping": ~overlap, "overlapping": overlap}
    return {"n_overlapping": int(overlap.sum()),
            **{name: evaluate_model(model, x_test[rows], y_test[rows], classes, batch_size=batch_size).to_dict()
               if rows.any() else None for name, rows in parts.items()}}


def scores_by_copy(evaluation: Evaluation, internal: InternalData, external: ExternalData,
                   settings: RunSettings) -> dict[str, Any]:
    """Return the external scores split by the leakage audit: on the external images with an exact, near or
    mirrored copy in the internal data and on those without one (the number the training data cannot
    have memorised), each with its 95% interval (None for an empty part)."""
    leak = audit_manifests(internal.manifest, external.manifest, settings.cache_dir, seed=settings.seed,
                           progress=False)
    overlap = leak.external_overlap(external.test["path"])
    if len(overlap) != len(evaluation.y_true):
        raise ValueError(f"{len(overlap)} external paths but {len(evaluation.y_true)} scored images")
    parts = {"with_copy": overlap, "without_copy": ~overlap}
    return {"threshold_bits": leak.threshold,
            **{name: score(Evaluation(evaluation.y_true[rows], evaluation.y_pred[rows], evaluation.probs[rows],
                                   evaluation.classes))
               if rows.any() else None for name, rows in parts.items()}}


def findings(summaries: dict[str, dict], scores: dict[str, Any] | None) -> list[str]:
    """Return the audit's findings as sentences, every number taken from the audit and the scores."""
    s, v = summaries["internal_vs_external"], summaries["train_vs_validation"]
    lines = [f"{s['right_flagged']:,} of {s['n_right']:,} external images ({s['right_flagged_fraction']:.1%}) have a "
             f"copy in the internal set ({s['right_with_exact']:,} exact, {s['right_with_near']:,} near, "
             f"{s['right_with_mirrored']:,} mirrored); {v['right_flagged']:,} of {v['n_right']:,} validation images "
             f"({v['right_flagged_fraction']:.1%}) have one in the training split."]
    if scores is None:
        return lines + ["No saved champion: the accuracies are not computed (run notebook 05 first)."]
    full = scores["full"]
    if s["right_flagged"] == 0:
        return lines + [f"The champion scores {accuracy_text(full)} on the external set; no external image has a copy "
                        "in the internal set, so copies do not inflate this score."]
    if scores["non_overlapping"] is None:
        return lines + ["Every external image has a copy in the internal set: no clean part is left to score."]
    clean, copied = scores["non_overlapping"], scores["overlapping"]
    right = [round(part["accuracy"] * part["n"]) for part in (copied, clean)]  # do copies score differently?
    _, p = fisher_exact([[right[0], copied["n"] - right[0]], [right[1], clean["n"] - right[1]]])
    lines.append(f"The champion scores {accuracy_text(full)} on all {full['n']:,} external images, "
                 f"{accuracy_text(clean)} on the {clean['n']:,} without a copy and {accuracy_text(copied)} on the "
                 f"{copied['n']:,} with one (Fisher's exact test, p = {float(p):.2g}).")
    if p < ALPHA and copied["accuracy"] > clean["accuracy"]:
        lines.append("Images with a copy score higher: the copies inflate the external score, and the accuracy on "
                     "the images without a copy is the fair external number.")
    elif p < ALPHA:
        lines.append("Images with a copy score lower here, so the copies do not inflate this model's score; the "
                     "accuracy on the images without a copy is still the fair external number.")
    else:
        lines.append(f"Images with a copy do not score significantly differently for this model; with "
                     f"{s['right_flagged_fraction']:.1%} of the external set held by the internal data, a model that "
                     "fits its training data more closely could still be scored partly on its training images, so "
                     "the accuracy on the images without a copy is the fair external number.")
    return lines
