"""What a model's input and output mean: the named class sets (the study's five, FER-2013's seven), folder
spellings, FER-2013's codes, and the named face preprocessings (their pixel work: `ferlib.data.preprocess`).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClassSet:
    """A named, ordered set of emotion classes: a model's outputs in this order."""

    name: str
    names: tuple[str, ...]
    description: str

    def __post_init__(self) -> None:
        unknown = [n for n in self.names if n.lower() not in FOLDER_ALIASES]
        if unknown or len(set(self.names)) != len(self.names) or len(self.names) < 2:
            raise ValueError(f"class set {self.name!r}: two or more distinct known emotions, got {self.names}")

    def __len__(self) -> int:
        return len(self.names)

    def label_of(self, folder: str) -> str | None:
        """Return the class a folder (or CSV) name stands for in this set, or None when it is not one of them."""
        name = FOLDER_ALIASES.get(folder.strip().lower())
        return name if name in self.names else None

    def leaves_out(self, folder: str) -> bool:
        """Return True for a known emotion that this set does not hold (counted, never used)."""
        return folder.strip().lower() in FOLDER_ALIASES and self.label_of(folder) is None


# Folder names (lower-cased) of every emotion a dataset may hold. The Human Face Emotions dataset spells
# Surprise as "Suprise"; FER-2013 uses lower-case names; AffectNet-style sets add Contempt.
FOLDER_ALIASES: dict[str, str] = {
    **{name.lower(): name for name in ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise",
                                       "Contempt")},
    "suprise": "Surprise", "surprised": "Surprise", "anger": "Angry", "happiness": "Happy", "sadness": "Sad",
    "disgusted": "Disgust", "fearful": "Fear", "contemptuous": "Contempt",
}

STUDY = ClassSet("study-5", ("Angry", "Fear", "Happy", "Sad", "Surprise"),
                 "the study's five emotions (notebooks 01-08)")
FER2013 = ClassSet("fer2013-7", ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"),
                   "FER-2013's seven emotions, Neutral and Disgust included (the model for photos)")
CLASS_SETS: dict[str, ClassSet] = {s.name: s for s in (STUDY, FER2013)}

# The original FER-2013 CSV's `emotion` codes.
FER_CSV_CODES: dict[int, str] = {0: "Angry", 1: "Disgust", 2: "Fear", 3: "Happy", 4: "Sad", 5: "Surprise", 6: "Neutral"}


def class_set(which: str | ClassSet | tuple[str, ...] | list[str]) -> ClassSet:
    """Return a class set by its name, or the one whose classes a card lists (in that order); raise KeyError."""
    if isinstance(which, ClassSet):
        return which
    if isinstance(which, str):
        if which not in CLASS_SETS:
            raise KeyError(f"unknown class set {which!r}; known: {', '.join(CLASS_SETS)}")
        return CLASS_SETS[which]
    for candidate in CLASS_SETS.values():
        if tuple(which) == candidate.names:
            return candidate
    return ClassSet("custom", tuple(which), "the classes a model card lists")


SMOOTH_SIGMA = 0.5  # px at the input size ("equalize-smooth"): chosen on fer2013-7's validation split (docs/results.md)

# Face preprocessing: what every face goes through before the network sees it, in training and at inference.
# A model's card names one; `ferlib.data.preprocess` does the pixel work.
PREPROCESSINGS: dict[str, str] = {
    "none": "the decoded face as it is (RGB, resized to the input)",
    "equalize": "grey face histogram-equalized (OpenCV equalizeHist of the luma at the input size), "
                "replicated to three channels",
    "equalize-smooth": f"grey face histogram-equalized, then smoothed by a Gaussian of {SMOOTH_SIGMA} px (so a sharp "
                       "copy and a soft one of the same face, as FER-2013's copies are, look alike), replicated to "
                       "three channels",
}
# What a model that learned one preprocessing may be given at inference instead, when it is more accurate with it on
# the validation split the model was chosen on (`ferlib.models.shipping.choose_preprocessing`).
INFERENCE_VARIANTS: dict[str, tuple[str, ...]] = {"equalize": ("equalize-smooth",)}
LEGACY_PREPROCESSING = "equalize"  # cards written before cards named one: FER-2013 models that learned equalized faces
