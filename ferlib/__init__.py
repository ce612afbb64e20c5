"""ferlib: the library behind the facial-emotion-recognition reproduction notebooks."""
from ferlib.classes import CLASS_NAMES, NUM_CLASSES

__all__ = ["CLASS_NAMES", "NUM_CLASSES"]
__version__ = "0.1.0"
