"""C1's recipe as data: its key, its goal, the ablation's variants, the budgets and the names of what it trains
(nothing here trains or reads a file)."""
from __future__ import annotations

import dataclasses
from typing import Any

from ferlib.config import Profile, resolve_profile
from ferlib.experiments import DISTILL_TEACHERS as TEACHERS
from ferlib.experiments import DISTILL_WEIGHT, Experiment, get_experiment
from ferlib.runnames import ABLATION_PREFIX, DISTILLED, MEMBER_PREFIX, budget_name, fine_tuned_name, parse_budget

CHAMPION_KEY = "C1"
RECIPE = "champion"  # the ablation's variant that changes nothing: the recipe itself (so named in result files)
GOAL_ACCURACY = 0.76  # this project's goal for C1 on FER-2013's five-class test images
AIM_ACCURACY = 0.78  # and its aim
ABLATION_EPOCHS = 8  # the ablation's short budget: its results carry no budget in their names
DISTILLED_KEY = DISTILLED  # the distilled student's experiment key and result name
FINE_TUNE_EPOCHS = 8  # `champion --fine-tune`: epochs more for a shipped model, in one session of any CPU
FINE_TUNE_RATE = 5e-4  # ... at a quarter of the recipe's peak rate (the network is trained already), warm-up 1

# One part of the recipe dropped (or changed) per variant; "champion" is the recipe itself.
# Flip averaging needs no variant: every variant is scored with and without it.
ABLATIONS: dict[str, dict[str, Any]] = {
    RECIPE: {},
    "no_augmentation": {"augmentation": "none"},
    "no_label_smoothing": {"label_smoothing": 0.0},
    "constant_lr": {"schedule": "constant", "warmup_epochs": 0},
    "peak_lr_1e-3": {"learning_rate": 1e-3},
    "adam_no_weight_decay": {"optimizer": "adam", "weight_decay": 0.0},
    "wider_48_384": {"filters": (48, 96, 192, 384)},
    "narrower_16_128": {"filters": (16, 32, 64, 128)},
    "no_crop_48": {"crop": 0},
    "float32": {"precision": "float32"},
    "sgd_nesterov": {"optimizer": "sgd_nesterov", "learning_rate": 2e-2, "weight_decay": 5e-4},
    "mixup_0.2": {"mixup": 0.2},
    "weight_average_0.999": {"weight_average": 0.999},
}


ABLATION_DESCRIPTIONS = {
    RECIPE: "the full recipe",
    "no_augmentation": "no augmentation (mirror, affine, brightness/contrast, erasing all off)",
    "no_label_smoothing": "plain cross-entropy instead of label smoothing 0.1",
    "constant_lr": "constant learning rate instead of warm-up + cosine decay",
    "peak_lr_1e-3": "peak learning rate 1e-3 instead of 2e-3",
    "adam_no_weight_decay": "Adam without weight decay instead of AdamW",
    "wider_48_384": "widths 48-96-192-384 instead of 32-64-128-256",
    "narrower_16_128": "widths 16-32-64-128 instead of 32-64-128-256",
    "no_crop_48": "the whole 48 px face instead of its moving central 40 px (1.4x the compute)",
    "float32": "float32 throughout instead of mixed bfloat16 (on a CPU with native bfloat16)",
    "sgd_nesterov": "SGD with Nesterov momentum 0.9, peak rate 2e-2, weight decay 5e-4, instead of AdamW",
    "mixup_0.2": "mixup of each batch with a shuffled copy, weights from Beta(0.2, 0.2)",
    "weight_average_0.999": "validation, checkpoints and the kept model use a moving average of the weights "
                            "(momentum 0.999, Polyak averaging) kept beside them",
}


def ablation_result_name(name: str, epochs: int = ABLATION_EPOCHS, max_train: int | None = None) -> str:
    """Return the result name of variant `name` trained for `epochs` epochs on `max_train` images (None: all):
    ``C1_ablation_<name>`` at the short budget on all images, else with ``_<N>epochs`` and ``_<M>images``."""
    if name not in ABLATIONS:
        raise KeyError(f"unknown ablation {name!r}; known: {', '.join(ABLATIONS)}")
    suffix = "" if epochs == ABLATION_EPOCHS else f"_{int(epochs)}epochs"
    return ABLATION_PREFIX + name + suffix + (f"_{int(max_train)}images" if max_train else "")


def ablation_table_name(epochs: int = ABLATION_EPOCHS, max_train: int | None = None) -> str:
    """Return the name of one budget's ablation table (c1_ablation, suffixed as `ablation_result_name`)."""
    return "c1_ablation" + ablation_result_name(RECIPE, epochs, max_train)[len(ABLATION_PREFIX + RECIPE):]


def ablation_variant(name: str, profile: str, epochs: int | None = None, key: str = CHAMPION_KEY,
                     max_train: int | None = None) -> Experiment:
    """Return C1 under `profile` with ablation `name` applied, cut to `epochs` and `max_train` images (when given)."""
    if name not in ABLATIONS:
        raise KeyError(f"unknown ablation {name!r}; known: {', '.join(ABLATIONS)}")
    base = get_experiment(key, profile)
    changes = dict(ABLATIONS[name])
    phase_changes = {k: changes.pop(k) for k in ("learning_rate",) if k in changes}
    if epochs:
        phase_changes["epochs"] = epochs
    phases = tuple(dataclasses.replace(p, **phase_changes) for p in base.phases)
    warmup = changes.pop("warmup_epochs", base.warmup_epochs)
    if epochs:  # keep the warm-up a small share of a shortened budget
        warmup = min(warmup, max(0, epochs // 8))
    if max_train:
        changes["max_train"] = max_train
    return dataclasses.replace(base, phases=phases, warmup_epochs=warmup, **changes)


budget_key = budget_name  # the experiment key of C1's recipe (or a variant) at a budget: ferlib.runnames


def budget_variant(key: str) -> str | None:
    """Return the ablation variant of a budget key (``C1_<variant>_<N>epochs``), else None."""
    parsed = parse_budget(key)
    return parsed[0] if parsed else None


def is_budget_key(key: str, variants: bool = True) -> bool:
    """Return True for the key of one of C1's training budgets: ``C1_<N>epochs``, and with `variants` also a
    budget of one of its ablation variants (``C1_<variant>_<N>epochs``, `champion --variant`)."""
    parsed = parse_budget(key)
    return parsed is not None and (parsed[0] is None or (variants and parsed[0] in ABLATIONS))


def budget_experiment(profile: str | Profile, epochs: int | None = None, variant: str | None = None,
                      classes: str | None = None) -> Experiment:
    """Return C1 under `profile` trained for `epochs` epochs: C1 itself for its own budget (or None), else the
    recipe cut or stretched to `epochs` (capped by the profile's max_epochs) under ``C1_<N>epochs``, changed as
    ablation `variant` changes it under ``C1_<variant>_<N>epochs``, learning `classes` when given."""
    profile = resolve_profile(profile) if isinstance(profile, str) else profile
    base = get_experiment(CHAMPION_KEY, profile)
    if classes is not None and classes != base.classes:
        return dataclasses.replace(budget_experiment(profile, epochs, variant), classes=classes)
    if epochs is not None and epochs < 1:
        raise ValueError(f"a training budget needs at least one epoch, got {epochs}")
    if variant is not None and (variant not in ABLATIONS or variant == RECIPE):
        raise KeyError(f"unknown variant {variant!r}; known: {', '.join(n for n in ABLATIONS if n != RECIPE)}")
    own = sum(phase.epochs for phase in base.phases)
    if epochs is not None and profile.max_epochs:
        epochs = min(epochs, profile.max_epochs)
    if variant is None and (epochs is None or epochs == own):
        return base
    epochs = epochs or own
    changed = ablation_variant(variant or RECIPE, profile, epochs)
    title = f"{base.title}{', ' + variant if variant else ''}, {epochs} epochs"
    return dataclasses.replace(changed, key=budget_key(epochs, variant), title=title)


def fine_tune_experiment(trained: Experiment, start_from: str, preprocessing: str,
                         epochs: int = FINE_TUNE_EPOCHS) -> Experiment:
    """Return the recipe a shipped model was `trained` with (its card's experiment), continued from that model
    (`start_from`) for `epochs` more epochs with faces preprocessed as `preprocessing`: one warm-up epoch, then
    cosine decay from FINE_TUNE_RATE, under the key ``C1_finetuned_<N>ep``."""
    phase = dataclasses.replace(trained.phases[-1], epochs=epochs, learning_rate=FINE_TUNE_RATE)
    return dataclasses.replace(
        trained, key=fine_tuned_name(epochs), title=f"{start_from} fine-tuned {epochs} epochs, {preprocessing}",
        phases=(phase,), warmup_epochs=1, preprocessing=preprocessing, init_from=start_from)


def member_seed(seed: int, index: int) -> int:
    """Return the training seed of ensemble member `index` (0: the champion, trained with the run's seed)."""
    if index < 0:
        raise ValueError(f"member index must be >= 0, got {index}")
    return seed + index


def member_name(index: int) -> str:
    """Return the result name of member `index` (its own name keeps the champion's result file untouched)."""
    return f"{MEMBER_PREFIX}{index}"


def student_experiment(profile: str, teachers: int = TEACHERS, weight: float = DISTILL_WEIGHT) -> Experiment:
    """Return C1's recipe under `profile`, trained on distillation targets from `teachers` members."""
    base = get_experiment(CHAMPION_KEY, profile)
    return dataclasses.replace(base, key=DISTILLED_KEY, title=f"C1 distilled from {teachers} seeds",
                               distill=weight, teachers=teachers,
                               notes=base.notes + f" Distilled: trained on {1 - weight:g} x the one-hot label + "
                                                  f"{weight:g} x the mean probabilities of {teachers} C1 networks "
                                                  "trained on the same split with other seeds.")
