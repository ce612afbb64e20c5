"""The notebooks as data: title, and the figures, tables and result files each one must produce (the notebook
tests, the report checker and the landing page read it); `optional_figures` depend on the data."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ferlib.config import PROJECT_ROOT

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"


@dataclass(frozen=True)
class NotebookSpec:
    """One numbered notebook and the outputs it must produce."""

    name: str
    title: str
    figures: tuple[str, ...]
    tables: tuple[str, ...] = ()
    results: tuple[str, ...] = ()
    optional_figures: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (len(self.name) > 3 and self.name[:2].isdigit() and self.name[2] == "_"):
            raise ValueError(f"notebook names look like NN_topic, got {self.name!r}")
        if overlap := set(self.figures) & set(self.optional_figures):
            raise ValueError(f"{self.name}: figures both required and optional: {sorted(overlap)}")

    @property
    def path(self) -> Path:
        """Return the notebook file."""
        return NOTEBOOKS_DIR / f"{self.name}.ipynb"


CATALOG: dict[str, NotebookSpec] = {spec.name: spec for spec in (
    NotebookSpec("01_eda", "Exploratory data analysis (Figure 1)",
                 figures=("class_distribution", "image_sizes_and_modes"), results=("eda",),
                 optional_figures=("sample_grid",)),
    NotebookSpec("02_baseline_cnn", "Baseline custom CNN, V1 (Figure 2)",
                 figures=("v1_training_curves", "v1_confusion_matrix"), results=("V1",),
                 tables=("v1_settings", "v1_classification_report")),
    NotebookSpec("03_augmentation_ablations", "Augmentation ablations, V4 and V8-V11 (Table 1)",
                 figures=("table1_accuracy_bars",), results=("V4", "V8", "V9", "V10", "V11"),
                 tables=("table1_augmentation", "table1_seeds", "table1_mcnemar", "table1_settings")),
    NotebookSpec("04_architecture_comparison", "Architecture comparison, V5, V7, V12, V13",
                 figures=("architecture_accuracy_bars", "architecture_f1_heatmap"),
                 results=("V5", "V7", "V12", "V13"),
                 tables=("architecture_comparison", "architecture_seeds", "architecture_mcnemar",
                         "architecture_settings")),
    NotebookSpec("05_champion_v13", "The champion, V13 (Table 2, Figures 3 and 4)",
                 figures=("figure3_v13_curves", "figure4_v13_confusion", "v13_reliability_validation",
                          "v13_coverage_validation"), results=("V13",),
                 tables=("table2_v13_validation", "v13_settings")),
    NotebookSpec("06_external_fer2013", "External test on FER-2013 (Table 3)",
                 figures=("v13_external_confusion",), results=("V13_external",), tables=("table3_v13_external",)),
    NotebookSpec("07_leakage_audit", "Leakage audit: internal vs external images",
                 figures=("leakage_fractions",), results=("leakage_audit",), tables=("leakage_counts",),
                 optional_figures=("leakage_example_pairs", "leakage_example_pairs_train_val")),
    NotebookSpec("08_summary", "The study vs this reproduction: every number and conclusion",
                 figures=("study_vs_run_forest",), results=("summary",),
                 tables=("study_vs_run_summary", "study_conclusions")),
    NotebookSpec("09_real_photos", "Real photos: faces, calibration, Grad-CAM (Figure 5)",
                 figures=("detections", "ood_reliability", "ood_coverage"),
                 results=("real_photos",), tables=("real_photos_predictions", "real_photos_ood"),
                 optional_figures=("gradcam_least_most_confident",)),  # only when a face was found
    NotebookSpec("10_cpu_champion", "The CPU champion, C1 (trained from scratch)",
                 figures=("c1_training_curves", "c1_external_confusion", "c1_learning_curve"), results=("C1",),
                 tables=("c1_scores", "c1_learning_curve")),
)}


def get_spec(name: str) -> NotebookSpec:
    """Return the catalog entry of a notebook, by name (``02_baseline_cnn``) or number (``02``)."""
    if name in CATALOG:
        return CATALOG[name]
    matches = [spec for key, spec in CATALOG.items() if key.split("_", 1)[0] == name]
    if len(matches) != 1:
        raise KeyError(f"unknown notebook {name!r}; known: {', '.join(CATALOG)}")
    return matches[0]
