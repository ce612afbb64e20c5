"""Writing files so that a crash, a kill or a full disk never leaves half a file behind: every file the project
writes goes through `atomic_path` (a temporary file in the same folder, renamed over the target once complete)."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

FULL_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
TMP_MARK = ".tmp-"  # temporary files are named <name>.tmp-<pid><suffix>; `remove_stale_temporaries` finds them


class CacheRebuilt(UserWarning):
    """A cache file was unreadable or did not match what it caches: it is removed and built again."""


class DiskFullError(OSError):
    """The disk (or the user's quota) filled while writing: names the folder and the space the step needed."""


def _mb(n_bytes: float) -> str:
    """Return a size in KB below 1 MB, else in MB or GB."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:,.1f} {unit}"
    return f"{n_bytes / 2**10:,.1f} KB"


def disk_full_error(folder: Path, what: str, needed: int | None, written: int = 0) -> DiskFullError:
    """Return the error a full disk raises: the folder, what was being written, the space it needed
    (or, when unknown, at least what was written before the disk filled) and the space free."""
    folder = Path(folder)
    if needed:
        need = f"it needs {_mb(needed)}"
    elif written:
        need = f"it needs more than the {_mb(written)} written before the disk filled"
    else:
        need = "its size is not known in advance"
    existing = next((p for p in (folder, *folder.parents) if p.exists()), folder)  # the nearest existing parent
    free = _mb(shutil.disk_usage(existing).free)
    return DiskFullError(errno.ENOSPC, f"no space left to write {what} in {folder}: {need}, {free} free. Free some "
                                       "space there (or choose another --output folder) and run again; nothing "
                                       "partial was left behind")


def temporary_name(path: Path) -> Path:
    """Return the temporary file `path` is written to before the rename: same folder, same suffix (some writers,
    numpy and Keras, look at the suffix)."""
    path = Path(path)
    return path.with_name(f"{path.stem}{TMP_MARK}{os.getpid()}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | Path, needed: int | None = None, what: str | None = None) -> Iterator[Path]:
    """Yield a temporary path to write `path`'s content to; when the block ends without error, rename it over
    `path`. On any error the temporary file is removed and `path` keeps its previous content; a full disk
    raises DiskFullError (`needed`: the bytes the write needs, when known)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        written = tmp.stat().st_size if tmp.exists() else 0
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in FULL_DISK_ERRNOS and not isinstance(exc, DiskFullError):
            raise disk_full_error(path.parent, what or path.name, needed, written) from exc
        raise


def write_text(path: str | Path, text: str) -> Path:
    """Write text (UTF-8) atomically; return the path."""
    return write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write bytes atomically; return the path."""
    with atomic_path(path, needed=len(data)) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: str | Path, payload: Any, indent: int | None = 2) -> Path:
    """Write JSON atomically (values JSON cannot hold are written as text); return the path."""
    return write_text(path, json.dumps(payload, indent=indent, default=str))


def save_npy(path: str | Path, array) -> Path:
    """Write a .npy array atomically; return the path."""
    import numpy as np

    with atomic_path(path, needed=int(np.asarray(array).nbytes) + 128) as tmp:
        np.save(tmp, array)
    return Path(path)


def write_csv(path: str | Path, frame, **to_csv: Any) -> Path:
    """Write a pandas frame as CSV atomically; return the path."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **to_csv)
    return Path(path)


def save_model(model, path: str | Path) -> Path:
    """Save a Keras model atomically (a kill or a full disk never leaves half a checkpoint); return the path."""
    with atomic_path(path, what=f"the model {Path(path).name}") as tmp:
        model.save(tmp)
    return Path(path)


def save_figure(fig, path: str | Path, **savefig: Any) -> Path:
    """Save a matplotlib figure atomically; return the path."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", **savefig)
    return Path(path)


def save_image(image, path: str | Path, **save: Any) -> Path:
    """Save a PIL image atomically (its format from the file name); return the path."""
    from PIL import Image

    fmt = Image.registered_extensions().get(Path(path).suffix.lower())
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt, **save)
    return Path(path)


def read_cache(path: str | Path, read: Callable[[Path], Any], what: str) -> Any | None:
    """Return `read(path)` for a cache file, or None when there is none. A file that `read` cannot read, or
    rejects (any exception: truncated, corrupted, from other inputs), is removed with a one-line warning, so the
    caller builds it again: a bad cache never stops a run."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return read(path)
    except Exception as exc:  # noqa: BLE001 (whatever is wrong with the file, it is rebuilt)
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        warnings.warn(f"cached {what} {path.name} is unusable ({reason}): building it again", CacheRebuilt,
                      stacklevel=2)
        path.unlink(missing_ok=True)
        return None


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove temporary files that killed processes left under `folder` (not those of a live process); return
    them."""
    removed = []
    for tmp in Path(folder).rglob(f"*{TMP_MARK}*"):
        pid = tmp.name.split(TMP_MARK, 1)[1].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue  # not one of ours, or still being written
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
