"""ferlib: the library behind the notebooks that reproduce a facial emotion recognition study.

Folders follow the data (runtime, data, viz, evaluation, models, audit, training, champion, photos, reports,
bench), each importing only from itself and those before it (tests/test_layout.py checks it); at the top:
`classes`, `config`, `experiments`, `study`, `plan` and `cli`. The map: docs/architecture.md.
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
