"""ferlib: the library behind the notebooks that reproduce a facial emotion recognition study.

The folders follow the data, and a module imports only from its own folder and the ones listed before it
(tests/test_layout.py checks it):

    runtime/     progress to the terminal, TensorFlow's start-up lines kept quiet, paths as reports show them,
                 atomic writes and caches checked when read
    data/        folder layouts (sources), decoding, manifests, decoded arrays, tf.data, augmentation, embedded data
    viz/         figures (functions that return a matplotlib Figure)
    evaluation/  metrics and intervals, test-time modes, calibration, result files and their schema,
                 study-vs-run tables, verdicts, settings tables
    models/      network builders (V1, transfer backbones, C1), saved models with their cards, LiteRT conversion
                 and inference (Keras only on the Keras backend), the shipped model, Grad-CAM
    audit/       the leakage audit, what it means for an external score, scores split by
                 copies
    training/    the two-phase training loop, one experiment end to end, distillation's teachers
    champion/    C1, the CPU champion: recipe (variants, budgets, names) -> tables -> records -> run -> ablation,
                 distillation -> its commands (champion, ablate, distill, ship, convert)
    photos/      face boxes and the two detectors, EmotionClassifier, `predict` and `evaluate`, videos,
                 out-of-distribution checks, hard examples
    reports/     the notebook helper (run card, figures shown and saved), HTML reports, landing page, checks
    bench/       `python -m ferlib bench`: latency and accuracy beside the fer package

At the top: `classes` (the two class sets, the study's five and FER-2013's seven, and the face preprocessings),
`config` (profiles and run settings), `experiments` (the experiment registry), `study` (the study's numbers),
`plan` (what run_all.sh installs and runs on this machine) and `cli` (`python -m ferlib ...`: it parses and hands
each command to the `commands.py` of the folder that runs it). More: docs/architecture.md.
"""
from ferlib.classes import CLASS_SETS
from ferlib.runtime import quiet

quiet.install()  # before anything imports TensorFlow: keep its start-up log lines out of notebooks

__all__ = ["CLASS_SETS", "EmotionClassifier"]


def __getattr__(name: str):  # the prediction API at the top, loaded only when asked for
    if name == "EmotionClassifier":
        from ferlib.photos.predict import EmotionClassifier  # lazy: `import ferlib` loads no OpenCV or LiteRT

        return EmotionClassifier
    raise AttributeError(f"module 'ferlib' has no attribute {name!r}")
__version__ = "0.1.0"
