"""The experiment registry as data: the study's V1 ... V13 and this project's C1, each a frozen `Experiment` of one
or two `Phase`s, with each profile's scaled-down settings (`get_experiment`). Notebooks never restate these numbers.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Literal

from ferlib.classes import CLASS_SETS, PREPROCESSINGS
from ferlib.config import PROFILES, Profile, check_choice, check_positive
from ferlib.weights import choose_weights

Backbone = Literal["custom_cnn", "fer_cnn", "mobilenetv2", "efficientnetb0", "resnet50v2"]
Augmentation = Literal["none", "geometric", "photometric", "fer"]
Optimizer = Literal["adam", "adamw", "sgd_nesterov"]
Precision = Literal["float32", "mixed_bfloat16", "auto"]
Schedule = Literal["constant", "cosine"]
Monitor = Literal["val_loss", "val_accuracy"]


@dataclass(frozen=True)
class Phase:
    """One training phase: how long, how fast, and which backbone layers learn."""

    epochs: int
    learning_rate: float
    trainable_from: int | None = None  # None: backbone frozen; 0: all layers; 140: from layer 140 on
    early_stopping_patience: int | None = None
    monitor: Monitor = "val_loss"

    def __post_init__(self) -> None:
        check_positive("phase", epochs=self.epochs, learning_rate=self.learning_rate,
                       early_stopping_patience=self.early_stopping_patience)
        check_choice("phase", "monitor", self.monitor, Monitor)
        if self.trainable_from is not None and self.trainable_from < 0:
            raise ValueError(f"phase: trainable_from must be None or a layer index >= 0, got {self.trainable_from}")

    @property
    def maximizes(self) -> bool:
        """Return True when the monitored value is better higher (an accuracy), False for a loss."""
        return self.monitor.endswith("accuracy")


@dataclass(frozen=True)
class Experiment:
    """One experiment (the study's V1 ... V13, this project's C1) under one profile."""

    key: str
    title: str
    backbone: Backbone  # custom_cnn and fer_cnn are trained from scratch
    image_size: int
    class_weights: bool
    augmentation: Augmentation
    phases: tuple[Phase, ...]
    max_train: int | None = None  # stratified cap on training images (cpu/smoke scaling)
    max_val: int | None = None  # stratified cap on the images validated on while training (scored on all of them)
    profile: str = "full"
    notes: str = ""
    # Training recipe beyond the study's (C1). At these defaults the study's experiments train as before,
    # and settings() leaves them out, so their run keys do not change.
    filters: tuple[int, ...] = ()  # conv widths per block of "fer_cnn" (empty: the builder's default)
    crop: int = 0  # "fer_cnn": the network sees the central crop x crop pixels (0: the whole image)
    optimizer: Optimizer = "adam"
    weight_decay: float = 0.0  # decoupled weight decay (adamw)
    label_smoothing: float = 0.0
    schedule: Schedule = "constant"  # cosine: per step, over each phase, after a linear warm-up
    warmup_epochs: int = 0
    tta_flip: bool = False  # evaluate as the mean of the image's and its mirror image's predictions
    # mixed_bfloat16: bfloat16 compute on any device; auto: mixed_bfloat16 on a CPU with native bfloat16
    # (AVX512_BF16 or AMX), float32 elsewhere (a GPU run follows the profile's mixed_precision)
    precision: Precision = "float32"
    mixup: float = 0.0  # alpha of mixup's Beta(alpha, alpha) mixing weights (0: off)
    weight_average: float = 0.0  # momentum of a moving average kept beside the weights (Polyak; 0: off)
    distill: float = 0.0  # distillation: targets = (1 - distill) x one-hot label + distill x the teachers' mean
    teachers: int = 0  # ... probabilities, from this many C1 networks of other seeds on the same split (0: off)
    classes: str = "study-5"  # the class set it learns (ferlib.classes.CLASS_SETS)
    from_scratch: bool = False  # a transfer backbone trained whole from random weights, BatchNorm learning too
    # the pooled features times this before the study's head: a constant (no weights) that scales the head's
    # first steps down (from scratch, Adam's first steps on 1,280 all-positive features kill its ReLU units)
    head_scale: float = 1.0
    preprocessing: str = "none"  # what every face goes through, in training and at inference (PREPROCESSINGS)
    init_from: str = ""  # a shipped model (ferlib/assets) whose weights it starts from: fine-tuning it ("": none)

    def __post_init__(self) -> None:
        owner = f"experiment {self.key!r}"
        check_choice(owner, "backbone", self.backbone, Backbone)
        check_choice(owner, "augmentation", self.augmentation, Augmentation)
        check_choice(owner, "optimizer", self.optimizer, Optimizer)
        check_choice(owner, "schedule", self.schedule, Schedule)
        check_choice(owner, "precision", self.precision, Precision)
        if self.mixup < 0 or not 0 <= self.weight_average < 1:
            raise ValueError(f"{owner}: mixup >= 0 and weight_average in [0, 1)")
        if not 0 <= self.distill <= 1 or self.teachers < 0 or (self.distill > 0) != (self.teachers > 0):
            raise ValueError(f"{owner}: distill in [0, 1] and teachers >= 1 go together (both 0: no distillation)")
        check_positive(owner, image_size=self.image_size, max_train=self.max_train, max_val=self.max_val,
                       head_scale=self.head_scale)
        check_choice(owner, "classes", self.classes, CLASS_SETS)
        check_choice(owner, "preprocessing", self.preprocessing, PREPROCESSINGS)
        if not self.phases:
            raise ValueError(f"{owner}: needs at least one phase")
        if not 0 <= self.label_smoothing < 1 or self.weight_decay < 0 or self.warmup_epochs < 0 or self.crop < 0:
            raise ValueError(f"{owner}: label_smoothing in [0, 1), weight_decay, warmup_epochs and crop >= 0")
        if self.crop and self.crop > self.image_size:
            raise ValueError(f"{owner}: crop {self.crop} is larger than the {self.image_size} px input")

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Experiment:
        """Return the experiment that `settings()` (or their JSON, as a card or result holds them) describe."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items() if k in names}
        return cls(**values | {"phases": tuple(Phase(**phase) for phase in settings["phases"])})

    def settings(self) -> dict[str, Any]:
        """Return the settings that determine the result, as plain data (for keys and provenance); recipe fields at
        their defaults are left out, so older experiments keep their run keys."""
        out = dataclasses.asdict(self)
        for name, default in RECIPE_DEFAULTS.items():
            if out[name] == default:
                del out[name]
        return out


RECIPE_FIELDS = ("max_val", "filters", "crop", "optimizer", "weight_decay", "label_smoothing", "schedule",
                 "warmup_epochs", "tta_flip", "precision", "mixup", "weight_average", "distill", "teachers", "classes",
                 "preprocessing", "from_scratch", "head_scale", "init_from")
RECIPE_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Experiment) if f.name in RECIPE_FIELDS}


def first_phase_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Return what an experiment's first phase depends on, from its `settings()` (or their JSON): the same for two
    experiments that train it alike (V12 and V13), whatever their names, prose and later phases."""
    out = {k: v for k, v in settings.items() if k not in ("key", "title", "notes")}
    out["phases"] = list(out.get("phases", []))[:1]
    return json.loads(json.dumps(out))


# The study's settings. Where the study is silent, the value is this project's choice and `notes` says so.
_HEAD = Phase(epochs=30, learning_rate=1e-4)  # study, V13 phase 1: frozen backbone, 30 epochs at 1e-4


def _finetune(trainable_from: int) -> Phase:
    """Return the study's fine-tuning phase (V13 phase 2): 1e-5, EarlyStopping(patience=3) on val_loss."""
    return Phase(epochs=20, learning_rate=1e-5, trainable_from=trainable_from, early_stopping_patience=3)


_ASSUMED_HEAD = ("The study gives this experiment's schedule only by reference to V13; its head phase "
                 "(30 epochs at 1e-4, frozen backbone) is used.")
_ASSUMED_FT = ("The study does not say where fine-tuning starts for this backbone; this project unfreezes "
               "about its top third, like V13's top 50 of ResNet50V2's 190 layers, for at most 20 epochs.")

_STUDY_EXPERIMENTS: dict[str, Experiment] = {e.key: e for e in (
    Experiment("V1", "Custom CNN (baseline)", "custom_cnn", 96, False, "none",
               (Phase(epochs=30, learning_rate=1e-3, early_stopping_patience=5, monitor="val_accuracy"),),
               notes="The study gives neither V1's layers nor its schedule: three conv blocks, a 128-unit dense "
                     "layer and 30 epochs with early stopping on validation accuracy are this project's choice."),
    Experiment("V4", "MobileNetV2 + class weights", "mobilenetv2", 96, True, "none", (_HEAD,),
               notes=_ASSUMED_HEAD),
    Experiment("V5", "MobileNetV2 + class weights + fine-tuning", "mobilenetv2", 96, True, "none",
               (_HEAD, _finetune(100)), notes=_ASSUMED_FT),
    Experiment("V7", "EfficientNetB0 + class weights + fine-tuning", "efficientnetb0", 96, True, "none",
               (_HEAD, _finetune(160)), notes=_ASSUMED_FT),
    Experiment("V8", "MobileNetV2 + class weights + geometric aug.", "mobilenetv2", 96, True, "geometric", (_HEAD,),
               notes=_ASSUMED_HEAD + " Geometric augmentation: rotation up to 36 degrees and zoom up to 20%."),
    Experiment("V9", "MobileNetV2 + geometric aug. (no weights)", "mobilenetv2", 96, False, "geometric", (_HEAD,),
               notes=_ASSUMED_HEAD),
    Experiment("V10", "MobileNetV2 + photometric aug. (no weights)", "mobilenetv2", 96, False, "photometric",
               (_HEAD,), notes="The study lists V10 among the photometric runs but does not report it; its "
                               "configuration (photometric augmentation without class weights) is implied by "
                               "the V8/V9 pair. " + _ASSUMED_HEAD),
    Experiment("V11", "MobileNetV2 + class weights + photometric aug.", "mobilenetv2", 96, True, "photometric",
               (_HEAD,), notes=_ASSUMED_HEAD + " Photometric augmentation: brightness and contrast up to 30%, "
                                               "Gaussian noise of about 13 grey levels (0.05 of the range)."),
    Experiment("V12", "ResNet50V2 + class weights (head only)", "resnet50v2", 96, True, "none", (_HEAD,),
               notes="V13's first phase on its own."),
    Experiment("V13", "ResNet50V2 + class weights + fine-tuning (champion)", "resnet50v2", 96, True, "none",
               (_HEAD, _finetune(140)),
               notes="The study's champion: head for 30 epochs at 1e-4, then layers 140+ at 1e-5 with "
                     "EarlyStopping(patience=3); the better of the two phases is kept."),
)}

# This project's own experiments, not the study's: trained from scratch, so they need no ImageNet weights.
_PROJECT_EXPERIMENTS: dict[str, Experiment] = {e.key: e for e in (
    Experiment("C1", "CPU champion (from scratch)", "fer_cnn", 48, False, "fer",
               (Phase(epochs=60, learning_rate=2e-3, monitor="val_accuracy"),),
               filters=(32, 64, 128, 256), crop=40, optimizer="adamw", weight_decay=0.05, label_smoothing=0.1,
               schedule="cosine", warmup_epochs=2, tta_flip=True, precision="auto", preprocessing="equalize",
               notes="Not the study's: a VGG-style CNN for 48 px faces trained from scratch (conv-BN-ReLU, "
                     "widths 32-256) on their central 40 px, on-the-fly flips, small affine moves (so the "
                     "40 px window moves over the face), brightness/contrast and random "
                     "erasing, label smoothing 0.1, AdamW with a warm-up and cosine decay, and evaluation "
                     "averaged over the image and its mirror image. Every face is histogram-equalized first, "
                     "in training and at inference. It computes in bfloat16 (Keras' "
                     "mixed_bfloat16) where the CPU has native bfloat16, in float32 elsewhere."),
)}
_EXPERIMENTS = _STUDY_EXPERIMENTS | _PROJECT_EXPERIMENTS

# Scaled-down settings per profile: fields replaced in the study's entry (cpu: 48 px, subsets and few epochs for
# fine-tuning and augmented runs, so every notebook together takes about a quarter of an hour on 2 cores).
DISTILL_TEACHERS = 3  # `distill`: ensemble members (the champion and two more seeds) that teach one C1
DISTILL_WEIGHT = 0.5  # `distill`: the teachers' share of the training targets (the one-hot label keeps the rest)
CPU_CHAMPION_EPOCHS = 56  # twice the 28 of the float32 recipe: bfloat16 and a faster CPU pay for it
_CPU_HEAD = Phase(epochs=30, learning_rate=1e-3, early_stopping_patience=5)
_CPU_AUG_HEAD = Phase(epochs=5, learning_rate=1e-3)


def _cpu_finetune(trainable_from: int) -> Phase:
    return Phase(epochs=2, learning_rate=1e-4, trainable_from=trainable_from, early_stopping_patience=3)


_SMOKE_HEAD = Phase(epochs=1, learning_rate=1e-3)
_DEMO_HEAD = Phase(epochs=20, learning_rate=1e-3, early_stopping_patience=5)  # on cached features: seconds


def _smoke_finetune(trainable_from: int) -> Phase:
    return Phase(epochs=1, learning_rate=1e-4, trainable_from=trainable_from)


_PROFILE_OVERRIDES: dict[str, dict[str, dict[str, Any]]] = {
    "cpu": {
        "V1": dict(image_size=48, phases=(Phase(epochs=15, learning_rate=1e-3, early_stopping_patience=4,
                                                monitor="val_accuracy"),)),
        "V4": dict(image_size=48, phases=(_CPU_HEAD,)),
        "V5": dict(image_size=48, phases=(_CPU_HEAD, _cpu_finetune(100)), max_train=1500),
        "V7": dict(image_size=48, phases=(_CPU_HEAD, _cpu_finetune(160)), max_train=1000),
        **{k: dict(image_size=48, phases=(_CPU_AUG_HEAD,), max_train=1500) for k in ("V8", "V9", "V10", "V11")},
        "V12": dict(image_size=48, phases=(_CPU_HEAD,)),
        "V13": dict(image_size=48, phases=(_CPU_HEAD, _cpu_finetune(140)), max_train=1000),
        # sized to train on FER-2013's 18,628 training images in about an hour on 2 CPU cores with native
        # bfloat16 (the learning curve in notebook 10 shows what the longer schedule buys)
        "C1": dict(phases=(Phase(epochs=CPU_CHAMPION_EPOCHS, learning_rate=2e-3, monitor="val_accuracy"),),
                   warmup_epochs=2),
    },
    "demo": {
        "V1": dict(image_size=48, phases=(Phase(epochs=8, learning_rate=1e-3, early_stopping_patience=4,
                                                monitor="val_accuracy"),)),
        **{k: dict(image_size=48, phases=(_DEMO_HEAD,)) for k in ("V4", "V12")},
        # random backbones on generated faces end at chance anyway (03 and 04 say so): a few hundred images run
        # every step of the code path; fine-tuning unfreezes the last few layers, as in smoke
        **{k: dict(image_size=48, phases=(Phase(epochs=2, learning_rate=1e-3),), max_train=300)
           for k in ("V8", "V9", "V10", "V11")},
        "V5": dict(image_size=48, phases=(_DEMO_HEAD, _smoke_finetune(145)), max_train=300),
        "V7": dict(image_size=48, phases=(_DEMO_HEAD, _smoke_finetune(225)), max_train=300),
        "V13": dict(image_size=48, phases=(_DEMO_HEAD, _smoke_finetune(180)), max_train=300),
        "C1": dict(phases=(Phase(epochs=6, learning_rate=2e-3, monitor="val_accuracy"),),
                   filters=(16, 32, 64, 128), warmup_epochs=1),
    },
    "smoke": {
        "V1": dict(image_size=48, phases=(Phase(epochs=1, learning_rate=1e-3),)),
        **{k: dict(image_size=32, phases=(_SMOKE_HEAD,)) for k in ("V4", "V8", "V9", "V10", "V11", "V12")},
        # smoke unfreezes only the last few layers: the same code path, a fraction of the compile time
        "V5": dict(image_size=32, phases=(_SMOKE_HEAD, _smoke_finetune(145))),
        "V7": dict(image_size=32, phases=(_SMOKE_HEAD, _smoke_finetune(225))),
        "V13": dict(image_size=32, phases=(_SMOKE_HEAD, _smoke_finetune(180))),
        "C1": dict(image_size=32, phases=(Phase(epochs=1, learning_rate=2e-3, monitor="val_accuracy"),),
                   filters=(8, 16, 32, 64), crop=28, warmup_epochs=0),
    },
}


# Without ImageNet weights (offline, or --weights random) the cpu profile trains each transfer experiment whole from
# scratch, keeping the study's architectures, class weights, augmentation and second phase (the top layers at a
# tenth of the rate), so each of the study's comparisons is still made.
FROM_SCRATCH = "from scratch, not the study's ImageNet setting"
_SCRATCH_WHY = ("Trained whole from random weights (no ImageNet weights here): every layer learns from the first "
                "epoch at 1e-3, for the budget chosen on validation within the cpu profile's time.")
# Budgets chosen on FER-2013's validation split (2 CPU cores, docs/results.md: smaller ones often stayed at a
# class's share), within 90 minutes for notebooks 01-08 on the slowest of them (AMD EPYC family 25 model 1, AVX2);
# validation while training uses 1,500 images (every image is scored at the end).
_SCRATCH = Phase(epochs=4, learning_rate=1e-3, trainable_from=0, monitor="val_accuracy")
# Notebook 03's five ablations compare MobileNetV2 with itself at 32 px, on every training image: 40-85 s an epoch there
# (a third of the time at 48 px). 5 epochs: V8 (geometric augmentation and class weights), the slowest to learn, was
# below chance after 2 and above it after 5 (seed 42: 35.0%, p = 2e-10; seed 43 after 6: 37.8%). MobileNetV2's head gets
# its pooled features times 0.1: at 1, Adam's first steps kill every unit of the study's 128-unit ReLU layer within an
# epoch and the network answers one class (V4, seed 43: 0 of 128 alive, 13.6%); at 0.1 it learns.
_SCRATCH_ABLATION = dict(image_size=32, phases=(dataclasses.replace(_SCRATCH, epochs=5),), max_train=None,
                         max_val=1500, head_scale=0.1)
# Notebook 04 compares V13 with V5, V7 and V12, so those four train at 32 px too, EfficientNetB0 and ResNet50V2 on
# 6,000 images: about a minute an epoch for ResNet50V2 there (V12, seed 42: 36.3% after 3 of 5, p = 1e-16). V5's
# first phase is V4's and V13's is V12's, copied from their runs (`copy_first_phase`), as the study describes them.
# EfficientNetB0 gets MobileNetV2's head scale: at 32 px it stayed at chance without it (V7, seed 42: 30.7% after
# 6 + 2 epochs with the head at 1; 32.8% after 4 + 2 at 0.1, p = 0.001).
_SCRATCH_SMALL = dict(image_size=32, max_train=6000, max_val=1500, phases=(_SCRATCH,))


def _scratch_finetune(trainable_from: int) -> Phase:
    return Phase(epochs=2, learning_rate=1e-4, trainable_from=trainable_from, monitor="val_accuracy")


_SCRATCH_OVERRIDES: dict[str, dict[str, dict[str, Any]]] = {
    "cpu": {
        **{k: _SCRATCH_ABLATION for k in ("V4", "V8", "V9", "V10", "V11")},
        "V5": _SCRATCH_ABLATION | dict(phases=(*_SCRATCH_ABLATION["phases"], _scratch_finetune(100))),
        "V7": _SCRATCH_SMALL | dict(head_scale=0.1, phases=(_SCRATCH, _scratch_finetune(160))),
        "V12": _SCRATCH_SMALL,
        "V13": _SCRATCH_SMALL | dict(phases=(_SCRATCH, _scratch_finetune(140))),
    },
}


def weights_in_use(asked: str | None, profile: Profile) -> str:
    """Return the backbone weights a run uses, in words for its run card and plan."""
    weights, why = choose_weights(asked, profile.weights)
    if weights in ("random", "none") and profile.name in _SCRATCH_OVERRIDES:
        return f"none: the transfer models are trained {FROM_SCRATCH}; {why}"
    return f"{weights} ({why})"


def experiment_keys(include_project: bool = False) -> list[str]:
    """Return the study's experiment keys in its order (and this project's own after them when asked)."""
    return list(_EXPERIMENTS if include_project else _STUDY_EXPERIMENTS)


def get_experiment(key: str, profile: str | Profile, weights: str | None = None) -> Experiment:
    """Return experiment `key` with the settings of `profile` applied, for a run with backbone `weights` (default:
    the profile's; "auto" resolved by `ferlib.weights.choose_weights`): without ImageNet weights, a profile with
    from-scratch settings (`cpu`) trains its transfer experiments whole from scratch."""
    name = profile.name if isinstance(profile, Profile) else profile
    if key not in _EXPERIMENTS:
        raise KeyError(f"unknown experiment {key!r}; known: {', '.join(experiment_keys(include_project=True))}")
    if name not in PROFILES:
        raise KeyError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")
    base = _EXPERIMENTS[key]
    changes = _PROFILE_OVERRIDES.get(name, {}).get(key, {})
    scratch = _SCRATCH_OVERRIDES.get(name, {}).get(key)
    if scratch and choose_weights(weights, PROFILES[name].weights)[0] in ("random", "none"):
        changes = changes | scratch | {"from_scratch": True,
                                       "notes": base.notes + " " + FROM_SCRATCH + f" {_SCRATCH_WHY}"}
    experiment = dataclasses.replace(base, profile=name, **changes)
    cap = profile.max_epochs if isinstance(profile, Profile) else None
    return dataclasses.replace(experiment, phases=tuple(dataclasses.replace(p, epochs=min(p.epochs, cap))
                                                        for p in experiment.phases)) if cap else experiment
