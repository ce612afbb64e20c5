"""What notebook 09 computes from a folder of photos: which model to show, detection recall, the faces worth
explaining (Grad-CAM on the least and the most confident), its result; the notebook only shows.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ferlib.data.decode import read_image
from ferlib.evaluation.chance import chance_check
from ferlib.models.shipped import ASSETS, read_card, shipped_label, shipped_model_path
from ferlib.photos import faces
from ferlib.photos.boxes import Box
from ferlib.photos.predict import EmotionClassifier, PhotoResult

IOU = 0.3  # a detection matches an annotated face at this intersection over union or more
REAL_PHOTOS = (ASSETS / "photos" / "astronaut_eileen_collins.jpg",)  # public domain (assets/NOTICE.md)


@dataclass(frozen=True)
class PhotoModels:
    """Notebook 09's models, each (label, path): `primary` (figures, Grad-CAM, result file), `beside` it, and why."""

    primary: tuple[str, Path]
    beside: tuple[tuple[str, Path], ...]
    why: str

    @property
    def uses_shipped(self) -> bool:
        """Return True when the shipped model is the primary one (the run's champion did not qualify)."""
        return self.primary[1] == shipped_model_path()


def photo_models(run_model: Path, run_result: dict[str, Any] | None, name: str = "V13",
                 given: Path | None = None) -> PhotoModels:
    """Return the models to show photos with: the run's champion, the shipped model beside it, when it learned from
    real faces above chance on validation; else the shipped model alone, saying why; a model `given` alone."""
    if given is not None:
        return PhotoModels((f"the model given ({Path(given).name})", Path(given)), (), "model_path was given")
    shipped = (shipped_label(), shipped_model_path())
    card = read_card(run_model) if Path(run_model).is_file() else None
    if card is None:
        return PhotoModels(shipped, (), f"this run has no {name} model yet")
    if (card.get("data") or {}).get("embedded"):
        return PhotoModels(shipped, (), f"this run's {name} was trained on generated faces, not real ones")
    validation = (run_result or {}).get("validation")
    if isinstance(validation, dict) and "confusion" in validation:
        check = chance_check(validation)
        if check.at_chance:
            return PhotoModels(shipped, (), f"this run's {check.describe(name)}")
    return PhotoModels((f"this run's {name}", Path(run_model)), (shipped,),
                       f"this run's {name} learned from real faces; {shipped[0]} is shown beside it")


def detection_scores(photos: Path, photo_results: list[PhotoResult], truth: pd.DataFrame | None,
                     detector: Any) -> dict[str, dict[str, Any]]:
    """Return recall and unmatched detections against every set of known boxes the photos have: the generated
    photos' own boxes (`truth`), and dlib annotations in ``<photos>/annotations`` (the ``dlib_*`` photos)."""
    scores: dict[str, dict[str, Any]] = {}
    if truth is not None:
        boxes = {f: [Box(r.x, r.y, r.w, r.h) for r in g.itertuples()] for f, g in truth.groupby("file")}
        for r in photo_results:  # photos without a face are scored too: any detection there is unmatched
            boxes.setdefault(Path(r.path).name, [])
        scores["generated"] = faces.detection_recall(photos, boxes, IOU, detector)
    if (photos / "annotations").is_dir():
        dlib = faces.read_dlib_annotations(photos / "annotations", prefix="dlib_")
        scores["dlib annotations"] = faces.detection_recall(photos, dlib, IOU, detector)
    return scores


def side_by_side(results: dict[str, list[PhotoResult]]) -> pd.DataFrame:
    """Return one row per face found by the first model's run: photo, face, and each model's label with its
    calibrated confidence ("?" marks an abstention). The models share the detector, so faces line up."""
    names = list(results)
    rows = []
    for i, first in enumerate(results[names[0]]):
        for k in range(len(first.faces)):
            row = {"photo": Path(first.path).name, "face": k + 1}
            for name in names:
                f = results[name][i].faces[k: k + 1]  # empty when this model's run has no such face
                row[name] = f"{f[0].label} {f[0].confidence:.2f}{' ?' if f[0].abstained else ''}" if f else ""
            rows.append(row)
    return pd.DataFrame(rows, columns=["photo", "face", *names])


def confidence_extremes(clf: EmotionClassifier, photo_results: list[PhotoResult], k: int = 4
                        ) -> tuple[np.ndarray, list[str]] | None:
    """Return the inputs and titles of the k least and k most confident faces, or None when no face was found."""
    crops, records = [], []
    for r in photo_results:
        if r.error is None and r.faces:
            crops.append(clf.inputs(read_image(r.path)[0], [Box(*f.box) for f in r.faces]))
            records += list(r.faces)
    if not records:
        return None
    order = np.argsort([f.confidence for f in records])
    chosen = list(dict.fromkeys([*order[:k], *order[-k:]]))
    titles = [f"{records[i].label} {records[i].confidence:.2f}" + (" ?" if records[i].abstained else "")
              for i in chosen]
    return np.concatenate(crops)[chosen], titles


def photos_fingerprint(photo_results: list[PhotoResult]) -> str:
    """Return a short digest of the photos' names and content, in name order."""
    digest = hashlib.sha1()
    for r in sorted(photo_results, key=lambda r: r.path):
        path = Path(r.path)
        digest.update(path.name.encode() + (path.read_bytes() if path.is_file() else b""))
    return digest.hexdigest()[:12]


def photo_summary(photo_results: list[PhotoResult]) -> dict[str, Any]:
    """Return the photos part of the result: files, read, faces, abstentions, errors and every prediction."""
    return {"files": len(photo_results), "read": sum(r.error is None for r in photo_results),
            "faces": sum(len(r.faces) for r in photo_results),
            "abstained": sum(f.abstained for r in photo_results for f in r.faces),
            "errors": {Path(r.path).name: r.error for r in photo_results if r.error},
            "predictions": [r.to_dict() for r in photo_results]}


def findings_table(result: dict[str, Any]) -> pd.DataFrame:
    """Return notebook 09's findings, one row per measured number, from its result file."""
    photos = result["photos"]
    rows = [{"metric": "faces found in the photos", "value": photos["faces"], "note": f"{photos['read']} photos read"}]
    for name, d in result["detection"].items():
        rows.append({"metric": f"detection recall at IoU {IOU} ({name})", "value": round(d["recall"], 3),
                     "note": f"{d['found']} of {d['faces']} boxes; {d['unmatched_detections']} unmatched detections"})
    for setting, r in result["ood"]["settings"].items():
        rows.append({"metric": f"OOD accuracy / ECE, {setting}", "value": f"{r['accuracy']:.3f} / {r['ece']:.3f}",
                     "note": f"n = {r['n']}"})
    ab = result["ood"]["abstention"]
    rows.append({"metric": f"abstain below {ab['threshold']:.2f}: coverage / accuracy kept",
                 "value": f"{ab['coverage']:.3f} / {ab['accuracy_kept']:.3f}" if ab["accuracy_kept"] is not None
                 else "abstains on all", "note": "threshold chosen on the validation split (notebook 05)"})
    return pd.DataFrame(rows).set_index("metric")
