"""Where the data comes from (`resolve_source`) and which files it holds; the layout is detected from the folder:

* Human Face Emotions: ``<root>/Data/<Class>/*`` or ``<root>/<Class>/*``;
* FER-2013 folders: ``<root>/{train,test}/<class>/*`` (internal data uses ``train``, external ``test``);
* the original FER-2013 CSV (``emotion,pixels,Usage``).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ferlib.classes import FER_CSV_CODES, FOLDER_ALIASES, STUDY, ClassSet
from ferlib.config import EMBEDDED, ENV_VARS, KAGGLE_DIRS, real_data_given  # noqa: F401 (where data is looked for)
from ferlib.runtime.paths import display_path

if TYPE_CHECKING:  # pandas is imported where files are listed, so resolving a source needs only the stdlib
    import pandas as pd

Role = Literal["internal", "external"]

FER_SPLIT_FOR_ROLE: dict[str, str] = {"internal": "train", "external": "test"}
CSV_USAGE_FOR_ROLE: dict[str, tuple[str, ...]] = {
    "internal": ("Training",),
    "external": ("PublicTest", "PrivateTest"),
}
LISTING_COLUMNS = ["path", "folder", "label", "status", "reason"]


class DataError(ValueError):
    """The data a user pointed at cannot be read as any supported layout."""


@dataclass(frozen=True)
class DataSource:
    """One resolved data source: where it is, how it is laid out, and why it was chosen."""

    role: str
    root: Path
    layout: str  # "hfe" | "fer-folder" | "fer-csv"
    class_dir: Path  # the folder holding the class folders (or the CSV file)
    split: str | None  # FER split or CSV usages used, None for plain class folders
    origin: str  # "parameter" | "environment" | "kaggle" | "embedded"
    classes: ClassSet = STUDY  # the classes used; folders of other emotions are counted as excluded

    @property
    def embedded(self) -> bool:
        """Return True when this is the generated synthetic dataset, not real data."""
        return self.origin == "embedded"

    def describe(self) -> str:
        """Return a one-line description for banners and provenance."""
        split = f", split '{self.split}'" if self.split else ""
        if self.embedded:  # generated into the cache: its folder says nothing to a reader
            return f"{self.role} data: embedded synthetic dataset{split} (no real data given)"
        return f"{self.role} data: {self.layout} layout at {display_path(self.root)}{split} (chosen by {self.origin})"


def _child_dir(root: Path, name: str) -> Path | None:
    """Return root's sub-folder called name (case-insensitive), or None."""
    return next((c for c in sorted(root.iterdir()) if c.is_dir() and c.name.lower() == name.lower()), None)


def _has_class_folders(folder: Path) -> bool:
    return any(c.is_dir() and c.name.strip().lower() in FOLDER_ALIASES for c in folder.iterdir())


def detect_source(path: str | Path, role: Role, origin: str = "parameter", classes: ClassSet = STUDY) -> DataSource:
    """Return the DataSource for a folder or CSV file, detecting its layout; raise DataError if none fits."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"{role} data path does not exist: {root}")
    if root.is_file():
        if root.suffix.lower() == ".csv":
            return DataSource(role, root, "fer-csv", root, "+".join(CSV_USAGE_FOR_ROLE[role]), origin, classes)
        raise DataError(f"{role} data path is a file but not a FER-2013 CSV: {root}")
    data_dir = _child_dir(root, "Data")
    if data_dir is not None and _has_class_folders(data_dir):
        return DataSource(role, root, "hfe", data_dir, None, origin, classes)
    splits = {s: _child_dir(root, s) for s in ("train", "test")}
    if any(d is not None and _has_class_folders(d) for d in splits.values()):
        wanted = FER_SPLIT_FOR_ROLE[role]
        if (split_dir := splits[wanted]) is None:
            raise DataError(f"FER-2013 folder {root} has no '{wanted}' split, which {role} data uses")
        return DataSource(role, root, "fer-folder", split_dir, wanted, origin, classes)
    if _has_class_folders(root):
        return DataSource(role, root, "hfe", root, None, origin, classes)
    csvs = sorted(root.glob("*.csv"))
    if len(csvs) == 1:
        return detect_source(csvs[0], role, origin, classes)
    found = ", ".join(sorted(c.name for c in root.iterdir())[:10]) or "nothing"
    raise DataError(
        f"cannot find emotion class folders in {root} (found: {found}). Expected <root>/Data/<Class>/, "
        f"<root>/<Class>/, <root>/train|test/<class>/ or a FER-2013 CSV with emotion,pixels,Usage columns."
    )


def resolve_source(
    role: Role,
    explicit: str | Path | None,
    embedded: Callable[[], Path] | None,
    env: Mapping[str, str] | None = None,
    kaggle_dirs: Mapping[str, Path] = KAGGLE_DIRS,
    classes: ClassSet = STUDY,
) -> DataSource:
    """Return the data source for a role: explicit path, then env var, then Kaggle input, then the embedded dataset
    (`embedded` is called to generate it only then, or when `explicit` is the word "embedded")."""
    env = os.environ if env is None else env
    if str(explicit) == EMBEDDED:  # asked for by name, even where real data is configured
        if embedded is None:
            raise DataError(f"the embedded {role} dataset is not available here")
        return detect_source(embedded(), role, "embedded", classes)
    if explicit not in (None, ""):
        return detect_source(explicit, role, "parameter", classes)
    if env.get(ENV_VARS[role]):
        return detect_source(env[ENV_VARS[role]], role, "environment", classes)
    if kaggle_dirs[role].exists():
        return detect_source(kaggle_dirs[role], role, "kaggle", classes)
    if embedded is None:
        raise DataError(f"no {role} data given and no embedded dataset available")
    return detect_source(embedded(), role, "embedded", classes)


def list_files(source: DataSource) -> pd.DataFrame:
    """Return one row per file (or CSV row of this role's usages) with its class and whether it is pending,
    excluded, ignored or skipped."""
    import pandas as pd

    rows: list[tuple[str, str, str | None, str, str]] = []
    if source.layout == "fer-csv":
        table = read_csv(source.class_dir)
        if not {"emotion", "pixels"} <= set(table.columns):
            raise DataError(f"FER-2013 CSV {source.class_dir} needs 'emotion' and 'pixels' columns, "
                            f"has {list(table.columns)}")
        if "usage" in table.columns:
            table = table[table["usage"].str.strip().isin(CSV_USAGE_FOR_ROLE[source.role])]
        for idx, code in zip(table.index, table["emotion"]):
            path = f"{source.class_dir}#{idx}"
            try:
                name = FER_CSV_CODES[int(code)]
            except (ValueError, KeyError):
                rows.append((path, f"emotion={code}", None, "skipped", f"unknown emotion code '{code}'"))
                continue
            label = source.classes.label_of(name)
            status, reason = ("pending", "") if label is not None else ("excluded", _excluded(name, source.classes))
            rows.append((path, name, label, status, reason))
        return pd.DataFrame(rows, columns=LISTING_COLUMNS)
    for entry in sorted(source.class_dir.iterdir()):
        if entry.is_file():
            rows.append((str(entry), "", None, "ignored", "file outside the class folders"))
            continue
        label = source.classes.label_of(entry.name)
        if label is not None:
            status, reason = "pending", ""
        elif source.classes.leaves_out(entry.name):
            status, reason = "excluded", _excluded(entry.name, source.classes)
        else:
            status, reason = "ignored", f"unknown class folder '{entry.name}'"
        for f in sorted(p for p in entry.rglob("*") if p.is_file()):
            rows.append((str(f), entry.name, label, status, reason))
    return pd.DataFrame(rows, columns=LISTING_COLUMNS)


def _excluded(name: str, classes: ClassSet) -> str:
    """Return why a known emotion's images are left out."""
    return f"class '{name}' is not one of {classes.description.split(' (')[0]}"


def read_csv(path: Path) -> pd.DataFrame:
    """Return a FER-2013 CSV as text, its column names stripped and lower-cased; raise DataError when unreadable."""
    import pandas as pd

    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"cannot read FER-2013 CSV {path}: {exc}") from None
    table.columns = [c.strip().lower() for c in table.columns]
    return table

