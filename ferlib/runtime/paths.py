"""How reports show paths: relative to the project (or the run's outputs), never a machine's temporary folder;
and the cache folder the commands use by default."""
from __future__ import annotations

import os
from pathlib import Path

from ferlib.config import PROJECT_ROOT

MAX_LEVELS_UP = 1  # "../shared/data/x" reads well; "../../tmp/x" would show a machine folder


def display_path(path: str | Path, output_dir: str | Path | None = None) -> str:
    """Return `path` as a report shows it: ``outputs/<rest>`` under the run's output folder, relative to the project
    inside it or one folder up (``../shared/data/fer2013``), else as given (``/kaggle/input/fer2013``)."""
    p = Path(path).expanduser()
    absolute = Path(os.path.abspath(p))
    if output_dir is not None:
        out = Path(os.path.abspath(Path(output_dir)))
        if absolute == out or out in absolute.parents:
            return Path("outputs", absolute.relative_to(out)).as_posix()
    rel = os.path.relpath(absolute, PROJECT_ROOT)
    if rel.split(os.sep).count("..") <= MAX_LEVELS_UP:
        return Path(rel).as_posix()
    return str(p)


def default_cache_dir() -> Path:
    """Return the cache the commands use without --cache: $FERLIB_CACHE_DIR, else <project>/outputs/cache."""
    return Path(os.environ.get("FERLIB_CACHE_DIR") or PROJECT_ROOT / "outputs" / "cache")
