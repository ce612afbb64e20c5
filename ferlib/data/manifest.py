"""Manifests (one row per file: path, label, size, mode, bytes, hashes, status), the study's split, class weights.

A manifest is built once per data folder and cached on disk. Files that cannot be decoded stay in it with status
``skipped`` and a reason, so nothing is dropped silently.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight

from ferlib.classes import ClassSet
from ferlib.data.decode import DecodeError, pixel_hash, read_image
from ferlib.data.sources import DataError, DataSource, list_files, read_csv
from ferlib.runtime.files import read_cache, write_csv
from ferlib.runtime.progress import bar as progress_bar

MANIFEST_VERSION = 1
MANIFEST_COLUMNS = [
    "path", "folder", "label", "status", "reason", "width", "height", "mode", "format", "bytes",
    "sha1", "pixel_hash",
]


def _sha1(*parts: object) -> str:
    h = hashlib.sha1()
    for part in parts:
        h.update(json.dumps(part, default=str, sort_keys=True).encode())
    return h.hexdigest()


def decode_csv_pixels(text: str) -> np.ndarray:
    """Return a uint8 HxWx3 array from a FER-2013 `pixels` string, or raise DecodeError."""
    try:
        values = np.array(text.split(), dtype=np.int64)
    except ValueError:
        raise DecodeError("pixels: non-numeric values") from None
    side = int(round(np.sqrt(values.size)))
    if values.size == 0 or side * side != values.size:
        raise DecodeError(f"pixels: {values.size} values do not form a square image")
    if values.min() < 0 or values.max() > 255:
        raise DecodeError("pixels: values outside 0..255")
    gray = values.reshape(side, side).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def _csv_pixel_strings(paths: pd.Series) -> dict[str, str]:
    """Return {manifest path: pixels string} for CSV-backed manifest rows ("file.csv#row")."""
    out: dict[str, str] = {}
    for csv_path, group in paths.str.rsplit("#", n=1, expand=True).groupby(0):
        table = read_csv(Path(csv_path))
        out |= {f"{csv_path}#{r}": table.at[int(r), "pixels"] for r in group[1]}
    return out


def decoded(paths: list[str]) -> Iterator[tuple[str, np.ndarray | None, str]]:
    """Yield (path, RGB array or None, why it could not be used) for image files and FER-2013 CSV rows
    ("file.csv#row"), in order."""
    rows = [p for p in paths if ".csv#" in p]
    texts = _csv_pixel_strings(pd.Series(rows, dtype=str)) if rows else {}
    for path in paths:
        try:
            yield path, (decode_csv_pixels(texts[path]) if path in texts else read_image(path)[0]), ""
        except DecodeError as exc:
            yield path, None, exc.reason


def build_manifest(source: DataSource, cache_dir: Path, progress: bool = True) -> pd.DataFrame:
    """Return the manifest of a data source, decoding every file once and caching the table on disk."""
    listing = list_files(source)
    if not (listing["status"] == "pending").any():
        raise DataError(f"no images of {source.classes.description} found in {source.class_dir}")
    # the cache's key changes when any listed file is added, removed or modified
    paths = [str(source.class_dir)] if source.layout == "fer-csv" else listing["path"]
    stats = [[p, st.st_size, st.st_mtime_ns] for p, st in zip(paths, map(os.stat, paths))]
    classes = [] if source.classes.name == "study-5" else [source.classes.names]  # the five's keys as before
    key = _sha1(MANIFEST_VERSION, source.layout, source.split, source.role, stats, *classes)[:16]
    cache_file = Path(cache_dir) / "manifests" / f"{source.role}-{key}.csv"
    cached = read_cache(cache_file, lambda path: _checked_manifest(path, listing), "manifest")
    if cached is not None:
        return cached
    texts = (_csv_pixel_strings(listing.loc[listing["status"] == "pending", "path"])
             if source.layout == "fer-csv" else {})
    records = []
    for row in progress_bar(listing.to_dict("records"), desc=f"manifest ({source.role})", disable=not progress):
        record = {c: None for c in MANIFEST_COLUMNS} | row
        if row["status"] == "pending":
            try:
                if row["path"] in texts:  # a CSV row
                    text = texts[row["path"]]
                    arr = decode_csv_pixels(text)
                    record |= dict(width=arr.shape[1], height=arr.shape[0], mode="L", format="CSV", bytes=len(text),
                                   sha1=hashlib.sha1(text.encode()).hexdigest(), pixel_hash=pixel_hash(arr))
                else:
                    info = read_image(row["path"])[1]
                    record |= dict(width=info.width, height=info.height, mode=info.mode, format=info.format,
                                   bytes=info.n_bytes, sha1=info.sha1, pixel_hash=info.pixel_hash)
                record["status"] = "ok"
            except DecodeError as exc:
                record["status"], record["reason"] = "skipped", exc.reason
        records.append(record)
    manifest = pd.DataFrame(records, columns=MANIFEST_COLUMNS)
    write_csv(cache_file, manifest, index=False)
    return _read_manifest(cache_file)


def _checked_manifest(path: Path, listing: pd.DataFrame) -> pd.DataFrame:
    """Return a cached manifest after checking it is whole: its columns, one row per listed file, and the
    listed paths in order (a truncated or edited file raises ValueError)."""
    manifest = _read_manifest(path)
    if list(manifest.columns) != MANIFEST_COLUMNS:
        raise ValueError(f"columns {list(manifest.columns)}")
    if len(manifest) != len(listing) or not (manifest["path"].to_numpy() == listing["path"].to_numpy()).all():
        raise ValueError(f"{len(manifest)} rows for {len(listing)} listed files")
    if manifest.loc[manifest["status"] == "ok", ["sha1", "pixel_hash"]].isna().any().any():
        raise ValueError("decoded rows without their hashes")
    return manifest


def _read_manifest(path: Path) -> pd.DataFrame:
    """Read a cached manifest with stable dtypes (empty reasons as "", missing labels as NaN)."""
    numbers = ["width", "height", "bytes"]
    manifest = pd.read_csv(path, dtype={c: "string" for c in MANIFEST_COLUMNS if c not in numbers})
    manifest[["folder", "reason"]] = manifest[["folder", "reason"]].fillna("")
    manifest[numbers] = manifest[numbers].astype("Int64")
    return manifest


def usable(manifest: pd.DataFrame) -> pd.DataFrame:
    """Return the rows that decoded and belong to one of the source's classes."""
    return manifest[manifest["status"] == "ok"].reset_index(drop=True)


def skip_summary(manifest: pd.DataFrame) -> pd.DataFrame:
    """Return counts of files not used, by status and reason (skipped, excluded, ignored)."""
    unused = manifest[manifest["status"] != "ok"]
    return (unused.groupby(["status", "reason"], dropna=False).size().rename("files")
            .reset_index().sort_values("files", ascending=False, ignore_index=True))


def fingerprint(manifest: pd.DataFrame) -> str:
    """Return a short content fingerprint of the usable images (labels and pixel hashes, path-independent)."""
    ok = usable(manifest)
    pairs = sorted(zip(ok["label"], ok["pixel_hash"]))
    return _sha1(pairs)[:12]


def label_indices(frame: pd.DataFrame, classes: ClassSet) -> np.ndarray:
    """Return int64 class indices (into `classes`) for the frame's labels; raise ValueError for another class."""
    lookup = {name: i for i, name in enumerate(classes.names)}
    indices = frame["label"].map(lookup)
    if indices.isna().any():
        raise ValueError(f"labels outside {classes.name}: {sorted(set(frame['label'][indices.isna()]))}")
    return indices.to_numpy(dtype=np.int64)


def split_train_val(manifest: pd.DataFrame, val_fraction: float = 0.2, seed: int = 42
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (train, validation): stratified by class, seeded, identical pixels kept on one side."""
    ok = usable(manifest)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    # Split whole groups of pixel-identical images, stratified by each group's label.
    groups = ok.groupby("pixel_hash", sort=True)["label"].first()
    counts = groups.value_counts()
    if len(groups) < 2 or (counts < 2).any():
        raise DataError(f"too few images to split by class: {counts.to_dict()}")
    n_val = max(len(counts), int(round(val_fraction * len(groups))))
    train_groups, _ = train_test_split(groups.index.to_numpy(), test_size=n_val, stratify=groups.to_numpy(),
                                       random_state=seed)
    in_train = ok["pixel_hash"].isin(set(train_groups)).to_numpy()
    return ok[in_train].reset_index(drop=True), ok[~in_train].reset_index(drop=True)


def stratified_subset(frame: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    """Return at most n rows of the frame, keeping class proportions (the frame itself when n is None)."""
    if n is None or len(frame) <= n:
        return frame
    counts = frame["label"].value_counts()
    stratify = frame["label"] if counts.min() >= 2 and n >= len(counts) else None
    subset, _ = train_test_split(frame, train_size=n, stratify=stratify, random_state=seed)
    return subset.sort_index().reset_index(drop=True)


def class_weights(labels: np.ndarray, classes: ClassSet) -> dict[int, float]:
    """Return scikit-learn's "balanced" class weights keyed by class index."""
    present = set(np.unique(labels).tolist())
    if missing := [name for i, name in enumerate(classes.names) if i not in present]:
        raise DataError(f"cannot weight classes: no training images of {', '.join(missing)}")
    weights = compute_class_weight("balanced", classes=np.arange(len(classes)), y=labels)
    return {i: float(w) for i, w in enumerate(weights)}
