"""ferlib: the library behind the facial-emotion-recognition reproduction notebooks."""
from ferlib import quiet
from ferlib.classes import CLASS_NAMES, NUM_CLASSES

quiet.install()  # before anything imports TensorFlow: keep its start-up log lines out of notebooks

__all__ = ["CLASS_NAMES", "NUM_CLASSES"]
__version__ = "0.1.0"
