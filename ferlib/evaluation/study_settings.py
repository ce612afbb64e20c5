"""Each experiment's settings: what the study says, what this project runs (``full`` and this run's profile), why.
The study leaves most settings open; this table keeps its statements apart from this project's choices."""
from __future__ import annotations

import pandas as pd

from ferlib.config import PROFILES, Profile
from ferlib.data.augment import AUGMENTATION_TEXT
from ferlib.experiments import Experiment, get_experiment
from ferlib.study import NOT_STATED, STUDY_DEFAULTS, STUDY_SETTINGS
from ferlib.weights import choose_weights

SETTINGS = ("backbone", "input size", "class weights", "augmentation", "training images", "phase 1 (head)",
            "phase 2 (fine-tuning)", "batch size", "precision")

# Why this project chose what the study leaves open (per setting; V1 has its own reasons).
CHOICE_REASONS: dict[str, str] = {
    "backbone": "the study names the backbones; ImageNet weights as in its V13 code",
    "input size": "the study gives 96x96 only in V13's code; every experiment uses it",
    "phase 1 (head)": "the study gives a schedule only for V13; its head phase is used",
    "phase 2 (fine-tuning)": "about the top third of the backbone (like V13's top 50 of 190 layers), V13's rate "
                             "and patience, at most 20 epochs",
    "augmentation": "magnitudes are not in the study; these are moderate values for faces",
    "training images": "all of the 80% training split, as in the study",
    "batch size": "not in the study; 64 fits a T4 at 96 px for every backbone",
    "precision": "not in the study; mixed float16 and XLA speed up a T4 (weights and softmax stay float32)",
}
V1_REASONS: dict[str, str] = {
    "class weights": "the study mentions none for V1",
    "backbone": "the study gives no layers: three conv blocks and a 128-unit dense layer",
    "input size": "the study gives no input size for V1; 96 px like the transfer models",
    "phase 1 (head)": "the study gives no schedule: 30 epochs at 1e-3, early stopping on validation accuracy",
}


def describe(experiment: Experiment, profile: Profile, weights: str | None = None) -> dict[str, str]:
    """Return one experiment's settings under a profile, in words, for backbone `weights` (None: the profile's)."""
    transfer = experiment.backbone not in ("custom_cnn", "fer_cnn")
    head, *rest = experiment.phases
    first = f"{head.epochs} epochs at {head.learning_rate:g}" + (
        ", the whole network from scratch" if experiment.from_scratch else ", frozen backbone" if transfer else "")
    if experiment.head_scale != 1.0:
        first += f", the pooled features times {experiment.head_scale:g} before the head (keeps its units alive)"
    if head.early_stopping_patience:
        first += f", early stopping (patience {head.early_stopping_patience} on {head.monitor})"
    second = "none"
    if rest:
        p = rest[0]
        second = (f"layers {p.trainable_from} onwards at {p.learning_rate:g}, at most {p.epochs} epochs"
                  + (f", EarlyStopping(patience={p.early_stopping_patience})" if p.early_stopping_patience else ""))
    xla = ", XLA where it is faster" if profile.jit_compile == "auto" else ", XLA" if profile.jit_compile else ""
    return {
        "backbone": (f"{experiment.backbone}, " + ("random weights, trained from scratch" if experiment.from_scratch
                                                     else f"{choose_weights(weights, profile.weights)[0]} weights")
                     if transfer else "custom CNN (from scratch)"),
        "input size": f"{experiment.image_size} px",
        "class weights": "yes (balanced)" if experiment.class_weights else "no",
        "augmentation": AUGMENTATION_TEXT[experiment.augmentation],
        "training images": ("all" if experiment.max_train is None
                            else f"a stratified subset of {experiment.max_train:,}"),
        "phase 1 (head)": first,
        "phase 2 (fine-tuning)": second,
        "batch size": str(profile.batch_size),
        "precision": ("mixed float16 on a GPU" if profile.mixed_precision else "float32") + xla,
    }


def settings_vs_study(keys: list[str], profile: str | Profile, weights: str | None = None) -> pd.DataFrame:
    """Return per experiment and setting the study's word, the ``full`` and this run's values, whose choice, why."""
    run_profile = profile if isinstance(profile, Profile) else PROFILES[profile]
    full = PROFILES["full"]
    rows = []
    for key in keys:
        stated = STUDY_SETTINGS.get(key, {})
        reference = describe(get_experiment(key, full), full)
        this_run = describe(get_experiment(key, run_profile, weights), run_profile, weights)
        reasons = CHOICE_REASONS | (V1_REASONS if key == "V1" else {})
        for setting in SETTINGS:
            study = stated.get(setting) or STUDY_DEFAULTS.get(setting, NOT_STATED)
            if study == NOT_STATED and reference[setting] == "none":
                study = "none mentioned"
            chosen = study == NOT_STATED or "not given" in study or "not mentioned" in study
            rows.append({"experiment": key, "setting": setting, "study says": study,
                         "full profile": reference[setting], f"this run ({run_profile.name})": this_run[setting],
                         "from": "this project" if chosen else "the study",
                         "why": reasons.get(setting, "") if chosen else ""})
    return pd.DataFrame(rows).set_index(["experiment", "setting"])
