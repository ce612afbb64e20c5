"""The study's five emotion classes and how folder names and FER-2013 codes map onto them."""
from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = ("Angry", "Fear", "Happy", "Sad", "Surprise")
NUM_CLASSES = len(CLASS_NAMES)

# Folder names (lower-cased) that mean one of the study's classes. The Human Face Emotions
# dataset spells Surprise as "Suprise"; FER-2013 uses lower-case names.
FOLDER_ALIASES: dict[str, str] = {
    **{name.lower(): name for name in CLASS_NAMES},
    "suprise": "Surprise",
    "surprised": "Surprise",
    "anger": "Angry",
    "happiness": "Happy",
    "sadness": "Sad",
}

# Classes that real datasets hold but the study leaves out: counted, never used.
EXCLUDED_CLASSES: frozenset[str] = frozenset({"disgust", "neutral", "contempt"})

# The original FER-2013 CSV's `emotion` codes.
FER_CSV_CODES: dict[int, str] = {
    0: "Angry", 1: "disgust", 2: "Fear", 3: "Happy", 4: "Sad", 5: "Surprise", 6: "neutral",
}


def class_from_folder(name: str) -> str | None:
    """Return the study class a folder name stands for, or None when it is not one of the five."""
    return FOLDER_ALIASES.get(name.strip().lower())


def is_excluded_folder(name: str) -> bool:
    """Return True for a known emotion class that the study leaves out (disgust, neutral, ...)."""
    return name.strip().lower() in EXCLUDED_CLASSES
