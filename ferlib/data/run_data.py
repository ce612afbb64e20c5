"""A run's internal and external datasets, resolved, manifested, split and ready to train on."""
from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ferlib.classes import STUDY, ClassSet
from ferlib.config import RunSettings
from ferlib.data.arrays import load_images
from ferlib.data.embedded import write_embedded_dataset
from ferlib.data.manifest import build_manifest, fingerprint, label_indices, split_train_val, stratified_subset, usable
from ferlib.data.preprocess import preprocess_faces
from ferlib.data.sources import DataSource, Role, list_files, resolve_source
from ferlib.runtime.paths import display_path


def resolve(settings: RunSettings, role: Role, path: str | Path | None = None, classes: ClassSet = STUDY
            ) -> DataSource:
    """Return the data source for a role: parameter, environment, Kaggle input, or the embedded dataset (generated
    on first use, from seed 0 whatever the run's seed)."""
    def embedded() -> Path:
        data = write_embedded_dataset(settings.cache_dir / "embedded", settings.profile.embedded_internal,
                                      settings.profile.embedded_external, seed=0)
        return data.internal_dir if role == "internal" else data.external_dir

    return resolve_source(role, path, embedded=embedded, classes=classes)


def _label(source: DataSource) -> str:
    """Return a short readable name of a source for folder names: "embedded" or its folder's name."""
    if source.embedded:
        return "embedded"
    name = source.class_dir.stem if source.layout == "fer-csv" else source.root.name
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")[:24] or source.layout


def data_key(internal: DataSource, external: DataSource) -> str:
    """Return the folder name of a run's data, e.g. ``fer2013+fer2013-1a2b3c4d``: both sources' names and a hash
    of their file listings (each file's path inside its folder, and its size), so other data, or files added,
    removed or resized, get another folder. The same folder gives the same key however its path is spelled
    (relative or absolute) and after a copy that changes modification times; training reuse is decided by the
    data's content fingerprint, not by this key. Listing takes a stat per file, no decoding."""
    digest = hashlib.sha1()
    for source in (internal, external):
        digest.update(f"{source.role}:{source.layout}:{source.split}\n".encode())
        if source.layout == "fer-csv":
            entries = [(source.class_dir.name, source.class_dir.stat().st_size)]
        else:
            entries = [(os.path.relpath(p, source.root), os.stat(p).st_size) for p in list_files(source)["path"]]
        for name, size in entries:
            digest.update(f"{name}\t{size}\n".encode())
    classes = "" if internal.classes == STUDY else f"-{internal.classes.name}"  # the study's keys as before
    return f"{_label(internal)}+{_label(external)}-{digest.hexdigest()[:8]}{classes}"


def keyed_settings(settings: RunSettings, data_dir: str | Path | None = None,
                   external_dir: str | Path | None = None, classes: ClassSet = STUDY) -> RunSettings:
    """Return the settings with the run's data key set (from the internal and external data parameters and the
    class set), so its results, tables and models go to folders of their own."""
    key = data_key(resolve(settings, "internal", data_dir, classes), resolve(settings, "external", external_dir,
                                                                              classes))
    return dataclasses.replace(settings, data_key=key)


@dataclass
class _RunData:
    """What a run's internal and external data share: the source, its manifest and fingerprint, the cache."""

    source: DataSource
    manifest: pd.DataFrame
    fingerprint: str
    cache_dir: Path

    @property
    def classes(self) -> ClassSet:
        """Return the classes this dataset's labels index."""
        return self.source.classes

    def _provenance(self, **sizes: int) -> dict:
        """Return the data provenance: where it is, how it was chosen, its fingerprint, `sizes` and usable images."""
        s = self.source
        return {"source": s.describe(), "root": display_path(s.root), "layout": s.layout, "origin": s.origin,
                "embedded": s.embedded, "fingerprint": self.fingerprint, **sizes,
                "n_usable": int((self.manifest.status == "ok").sum())}


@dataclass
class InternalData(_RunData):
    """The internal dataset of a run: its manifest and the study's 80/20 split (capped by the profile)."""

    train: pd.DataFrame
    val: pd.DataFrame

    def images(self, rows: pd.DataFrame, size: int, preprocessing: str = "none") -> np.ndarray:
        """Return uint8 images at size x size for rows of this dataset (read from one cached array per size),
        after the named face preprocessing."""
        return preprocess_faces(load_images(rows, size, self.cache_dir, source=usable(self.manifest)), preprocessing)

    def labels(self, rows: pd.DataFrame) -> np.ndarray:
        """Return the class indices of rows of this dataset."""
        return label_indices(rows, self.classes)

    def arrays(self, size: int, preprocessing: str = "none") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return (x_train, y_train, x_val, y_val): uint8 images at size x size and class indices."""
        return (self.images(self.train, size, preprocessing), self.labels(self.train),
                self.images(self.val, size, preprocessing), self.labels(self.val))

    def describe(self) -> dict:
        """Return the data provenance: source, fingerprint and split sizes."""
        return self._provenance(n_train=len(self.train), n_val=len(self.val))


@dataclass
class ExternalData(_RunData):
    """The external test set of a run (FER-2013's test split, or any labelled folder)."""

    test: pd.DataFrame

    def arrays(self, size: int, preprocessing: str = "none") -> tuple[np.ndarray, np.ndarray]:
        """Return (x_test, y_test) at size x size, after the named face preprocessing."""
        return (preprocess_faces(load_images(self.test, size, self.cache_dir), preprocessing),
                label_indices(self.test, self.classes))

    def describe(self) -> dict:
        """Return the data provenance: source, fingerprint and size."""
        return self._provenance(n_test=len(self.test))


def prepare_internal(settings: RunSettings, data_dir: str | Path | None = None, progress: bool = True,
                     val_fraction: float = 0.2, classes: ClassSet = STUDY) -> InternalData:
    """Return the internal data of `classes`: resolved, manifested, split 80/20 by the run's seed and capped by
    profile."""
    source = resolve(settings, "internal", data_dir, classes)
    manifest = build_manifest(source, settings.cache_dir, progress=progress)
    train, val = split_train_val(manifest, val_fraction=val_fraction, seed=settings.seed)
    train = stratified_subset(train, settings.profile.max_train, settings.seed)
    val = stratified_subset(val, settings.profile.max_val, settings.seed)
    return InternalData(source, manifest, fingerprint(manifest), settings.cache_dir, train, val)


def prepare_external(settings: RunSettings, external_dir: str | Path | None = None,
                     progress: bool = True, classes: ClassSet = STUDY) -> ExternalData:
    """Return the external test data of `classes` (FER-2013 test split when pointed at a FER-2013 folder)."""
    source = resolve(settings, "external", external_dir, classes)
    manifest = build_manifest(source, settings.cache_dir, progress=progress)
    test = stratified_subset(usable(manifest), settings.profile.max_external, settings.seed)
    return ExternalData(source, manifest, fingerprint(manifest), settings.cache_dir, test)


def class_counts(frame: pd.DataFrame, classes: ClassSet = STUDY) -> pd.Series:
    """Return image counts per class in the class set's order (zeros included)."""
    return frame["label"].value_counts().reindex(list(classes.names), fill_value=0).astype(int)
