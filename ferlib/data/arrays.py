"""Decoded images as uint8 arrays, cached on disk once per data source and size (checked when read)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ferlib.data.decode import DecodeError, resize_rgb
from ferlib.data.manifest import _sha1, decoded
from ferlib.runtime.files import read_cache, save_npy
from ferlib.runtime.progress import bar as progress_bar


def load_images(frame: pd.DataFrame, size: int, cache_dir: Path, progress: bool = True,
                source: pd.DataFrame | None = None) -> np.ndarray:
    """Return uint8 images (n, size, size, 3) for the frame's rows, decoded once and cached per size.

    With `source` (the usable rows of the manifest the frame was drawn from), one array of the whole source is
    cached per size and the frame's rows are read from it (memory-mapped): splits, seeds and subsets then share
    one file on disk, and memory holds only the rows asked for.
    """
    if source is not None:
        whole = _whole_array(source, size, cache_dir, progress)
        position = pd.Series(np.arange(len(source)), index=source["path"].to_numpy())
        try:
            rows = position.loc[frame["path"].to_numpy()].to_numpy()
        except KeyError as exc:
            raise ValueError(f"rows not in the source manifest: {exc}") from exc
        return np.asarray(whole[rows])
    key = _sha1(list(frame["path"]), list(frame["pixel_hash"]), size)[:16]
    cache_file = Path(cache_dir) / "arrays" / f"{key}-{size}px.npy"
    cached = _read_cached_array(cache_file, len(frame), size)
    if cached is not None:
        return np.array(cached)
    return _decode_to_cache(frame, size, cache_file, progress)


def _read_cached_array(path: Path, n: int, size: int) -> np.ndarray | None:
    """Return the cached array (memory-mapped) when it is whole and of the expected shape; else None (and a bad
    file is removed with a one-line warning, so that it is decoded again)."""
    def read(file: Path) -> np.ndarray:
        array = np.load(file, mmap_mode="r")
        if array.shape != (n, size, size, 3) or array.dtype != np.uint8:
            raise ValueError(f"shape {array.shape} {array.dtype}, expected {(n, size, size, 3)} uint8")
        return array

    return read_cache(path, read, "images")


def _whole_array(source: pd.DataFrame, size: int, cache_dir: Path, progress: bool) -> np.ndarray:
    key = _sha1(list(source["path"]), list(source["pixel_hash"]), size)[:16]
    cache_file = Path(cache_dir) / "arrays" / f"all-{key}-{size}px.npy"
    cached = _read_cached_array(cache_file, len(source), size)
    if cached is not None:
        return cached
    _decode_to_cache(source, size, cache_file, progress)
    return np.load(cache_file, mmap_mode="r")


def _decode_to_cache(frame: pd.DataFrame, size: int, cache_file: Path, progress: bool) -> np.ndarray:
    """Decode the frame's images at size x size and write them to `cache_file` atomically; return them."""
    out = np.empty((len(frame), size, size, 3), dtype=np.uint8)
    rows = decoded(list(frame["path"]))
    for i, (path, arr, reason) in enumerate(progress_bar(rows, total=len(frame), desc=f"decode {size}px",
                                                          disable=not progress)):
        if arr is None:  # the manifest decoded it once: the file changed since
            raise DecodeError(f"{path}: {reason}")
        out[i] = resize_rgb(arr, size)
    save_npy(cache_file, out)
    return out
