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

    One array of the whole `source` (the usable rows of the manifest the frame was drawn from; the frame itself
    when not given) is cached per size and the frame's rows are read from it (memory-mapped): splits, seeds and
    subsets then share one file on disk, and memory holds only the rows asked for.
    """
    source = frame if source is None else source
    key = _sha1(list(source["path"]), list(source["pixel_hash"]), size)[:16]
    cache_file = Path(cache_dir) / "arrays" / f"all-{key}-{size}px.npy"

    def read(file: Path) -> np.ndarray:
        array = np.load(file, mmap_mode="r")
        if array.shape != (len(source), size, size, 3) or array.dtype != np.uint8:
            raise ValueError(f"shape {array.shape} {array.dtype}, expected {(len(source), size, size, 3)} uint8")
        return array

    whole = read_cache(cache_file, read, "images")  # a bad file is removed with a warning and decoded again
    if whole is None:
        whole = np.empty((len(source), size, size, 3), dtype=np.uint8)
        rows = decoded(list(source["path"]))
        for i, (path, arr, reason) in enumerate(progress_bar(rows, total=len(source), desc=f"decode {size}px",
                                                              disable=not progress)):
            if arr is None:  # the manifest decoded it once: the file changed since
                raise DecodeError(f"{path}: {reason}")
            whole[i] = resize_rgb(arr, size)
        save_npy(cache_file, whole)
    position = pd.Series(np.arange(len(source)), index=source["path"].to_numpy())
    try:
        rows = position.loc[frame["path"].to_numpy()].to_numpy()
    except KeyError as exc:
        raise ValueError(f"rows not in the source manifest: {exc}") from exc
    return np.asarray(whole[rows])
