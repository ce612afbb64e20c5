"""The parts `python -m ferlib bench` measures, named where the command line can read them without TensorFlow
(`suite.run` times training, so it imports TensorFlow)."""
from __future__ import annotations

PARTS = ("loading", "feature_cache", "pipeline", "precision", "latency", "crop", "accuracy", "run_all")
