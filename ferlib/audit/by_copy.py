"""Scores split by the leakage audit: external images with a copy in the training data, and those without one."""
from __future__ import annotations

from typing import Any

from ferlib.audit.leakage import audit_manifests
from ferlib.config import RunSettings
from ferlib.data.run_data import ExternalData, InternalData
from ferlib.evaluation.evaluate import Evaluation
from ferlib.evaluation.test_time import score


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
