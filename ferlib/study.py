"""The numbers the study reports, as data, so every table can show "study" beside "this run"."""
from __future__ import annotations

# Accuracy on the internal validation split (Human Face Emotions, 80/20), as printed in the study.
STUDY_ACCURACY: dict[str, dict] = {
    "V1": {"accuracy": 0.68, "approximate": True, "where": "section 2.1 (~68%)"},
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
