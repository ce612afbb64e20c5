"""The numbers the study reports, as data, so every table can show "study" beside "this run"."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# Accuracy on the internal validation split (Human Face Emotions, 80/20), as printed in the study.
STUDY_ACCURACY: dict[str, dict] = {
    "V1": {"accuracy": 0.68, "approximate": True, "where": "section 2.1"},
    "V4": {"accuracy": 0.76, "where": "Table 1"},
    "V5": {"accuracy": 0.79, "where": "section 2.3.1", "f1": {"Fear": 0.69}},
    "V7": {"accuracy": 0.70, "where": "section 2.3.2"},
    "V8": {"accuracy": 0.56, "where": "Table 1"},
    "V9": {"accuracy": 0.57, "where": "Table 1"},
    "V11": {"accuracy": 0.49, "where": "Table 1"},
    "V13": {"accuracy": 0.87, "where": "Table 2"},
}

# Table 2: V13 on the internal validation set (11,819 images).
STUDY_TABLE2: dict[str, dict[str, float]] = {
    "Angry": {"precision": 0.82, "recall": 0.86, "f1": 0.84, "support": 2058},
    "Fear": {"precision": 0.83, "recall": 0.80, "f1": 0.81, "support": 1981},
    "Happy": {"precision": 0.93, "recall": 0.90, "f1": 0.92, "support": 3648},
    "Sad": {"precision": 0.82, "recall": 0.86, "f1": 0.84, "support": 2503},
    "Surprise": {"precision": 0.92, "recall": 0.90, "f1": 0.91, "support": 1629},
}
STUDY_TABLE2_SUMMARY = {"accuracy": 0.87, "macro_f1": 0.86, "weighted_f1": 0.87, "n": 11819}

# Table 3: V13 on FER-2013 (the five classes of the public Kaggle test folder, 5,834 images).
STUDY_TABLE3: dict[str, dict[str, float]] = {
    "Angry": {"precision": 0.87, "recall": 0.92, "f1": 0.89, "support": 958},
    "Fear": {"precision": 0.90, "recall": 0.79, "f1": 0.84, "support": 1024},
    "Happy": {"precision": 0.96, "recall": 0.93, "f1": 0.95, "support": 1774},
    "Sad": {"precision": 0.86, "recall": 0.94, "f1": 0.90, "support": 1247},
    "Surprise": {"precision": 0.93, "recall": 0.95, "f1": 0.94, "support": 831},
}
STUDY_TABLE3_SUMMARY = {"accuracy": 0.91, "macro_f1": 0.91, "weighted_f1": 0.91, "n": 5834}

# Figure 1 of the study: the Human Face Emotions class counts (about 59,099 images).
HFE_CLASS_COUNTS: dict[str, int] = {"Angry": 10148, "Fear": 9732, "Happy": 18439, "Sad": 12553, "Surprise": 8227}

# Settings the study states once for every experiment.
STUDY_DEFAULTS: dict[str, str] = {
    "training images": "the 80% training split (Table 2's 11,819 validation images are 20% of 59,099)",
}
# What the study states about each experiment's settings; anything missing is "not stated" (section, appendix).
NOT_STATED = "not stated"
STUDY_SETTINGS: dict[str, dict[str, str]] = {
    "V1": {"backbone": "a simple custom CNN; layers not given (2.1)", "class weights": "not mentioned",
           "augmentation": "none mentioned"},
    "V4": {"backbone": "MobileNetV2, transfer learning (Table 1)", "class weights": "yes (Table 1)",
           "augmentation": "none (Table 1)"},
    "V5": {"backbone": "MobileNetV2, transfer learning (2.3.1)", "class weights": "yes (2.3)",
           "augmentation": "none", "phase 2 (fine-tuning)": "fine-tuned; layers and schedule not given (2.3)"},
    "V7": {"backbone": "EfficientNetB0, transfer learning (2.3.2)", "class weights": "yes (2.3)",
           "augmentation": "none", "phase 2 (fine-tuning)": "fine-tuned; layers and schedule not given (2.3)"},
    "V8": {"backbone": "MobileNetV2 (Table 1)", "class weights": "yes (Table 1)",
           "augmentation": "geometric: rotations and zooms; magnitudes not given (2.2)"},
    "V9": {"backbone": "MobileNetV2 (Table 1)", "class weights": "no (Table 1)",
           "augmentation": "geometric: rotations and zooms; magnitudes not given (2.2)"},
    "V10": {"backbone": "MobileNetV2 (listed in 2.2, not reported)", "class weights": "not given (implied: no)",
            "augmentation": "photometric: brightness, contrast, noise; magnitudes not given (2.2)"},
    "V11": {"backbone": "MobileNetV2 (Table 1)", "class weights": "yes (Table 1)",
            "augmentation": "photometric: brightness, contrast, noise; magnitudes not given (2.2)"},
    "V12": {"backbone": "ResNet50V2, ImageNet weights (A.1)", "input size": "96x96x3 (A.1)",
            "class weights": "yes (2.3.3)", "augmentation": "none",
            "phase 1 (head)": "frozen backbone; GAP, Dense 128 relu, Dropout 0.5, softmax; Adam 1e-4 (A.1)"},
    "V13": {"backbone": "ResNet50V2, ImageNet weights (A.1)", "input size": "96x96x3 (A.1)",
            "class weights": "yes (3.1)", "augmentation": "none",
            "phase 1 (head)": "frozen backbone, 30 epochs at 1e-4 (3.1)",
            "phase 2 (fine-tuning)": "layers 140 onwards at 1e-5, EarlyStopping(patience=3); epochs not given (3.1)"},
}


def study_claims(*items: str) -> pd.DataFrame:
    """Return the study's numbers for the given experiment keys (and "table2", "table3") as a table (notebooks
    open with it instead of typing the study's numbers into their prose)."""
    import pandas as pd

    tables = {"table2": ("V13 on its internal validation split", STUDY_TABLE2_SUMMARY),
              "table3": ("V13 on FER-2013 (five classes of the Kaggle test folder)", STUDY_TABLE3_SUMMARY)}
    rows = []
    for item in items:
        if item in STUDY_ACCURACY:
            entry = STUDY_ACCURACY[item]
            value = f"{'~' if entry.get('approximate') else ''}{entry['accuracy']:.0%}"
            rows.append({"claim": f"{item} validation accuracy", "the study reports": value, "where": entry["where"]})
            for cls, f1 in entry.get("f1", {}).items():
                rows.append({"claim": f"{item} F1 of {cls}", "the study reports": f"{f1:.2f}", "where": entry["where"]})
        elif item in tables:
            claim, s = tables[item]
            rows.append({"claim": claim, "the study reports": f"accuracy {s['accuracy']:.0%}, macro F1 "
                         f"{s['macro_f1']:.2f}, n {s['n']:,}", "where": f"Table {item[-1]}"})
        else:
            raise KeyError(f"unknown study item {item!r}; known: {', '.join(STUDY_ACCURACY)}, table2, table3")
    return pd.DataFrame(rows).set_index("claim")

# Published single networks on FER-2013's seven classes, trained from scratch on a GPU with their own protocol:
# papers' numbers beside this project's, never measured here.
PUBLISHED_FER2013: tuple[dict[str, object], ...] = (
    {"model": "LHC-Net", "accuracy": 0.7442, "source": "Pecoraro et al. 2022, Sensors 22(1)"},
    {"model": "ResMaskingNet", "accuracy": 0.7414, "source": "Pham et al. 2020, ICPR"},
    {"model": "VGGNet (tuned)", "accuracy": 0.7328, "source": "Khaireddin & Chen 2021, arXiv:2105.03588"},
    {"model": "VGG variant", "accuracy": 0.727, "source": "Pramerdorfer & Kampel 2016, arXiv:1612.02903"},
)
