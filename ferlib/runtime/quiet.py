"""Keep TensorFlow's start-up chatter out of notebooks and reports.

TensorFlow prints C++ log lines while it loads (``oneDNN custom operations are on``, CPU feature notes) straight
to file descriptor 2, before ``TF_CPP_MIN_LOG_LEVEL`` can act on them, and a Jupyter kernel shows fd 2 in the
notebook; so the first ``import tensorflow`` runs with fd 2 captured (`captured_fd2`): known start-up lines go
to the progress log, anything else to stderr, so real errors still show.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Iterator

NOISE = re.compile(
    r"absl::InitializeLog|oneDNN custom operations|cpu_feature_guard|To enable the following instructions|"
    r"rebuild TensorFlow with the appropriate compiler flags|Unable to register cu(DNN|FFT|BLAS) factory|"
    r"computation placer already registered|TF-TRT Warning|could not open file to read NUMA node|"
    r"Could not find cuda drivers|cuda_executor|disabling MLIR crash reproducer|"
    r"Created TensorFlow Lite XNNPACK delegate|failed call to cuInit|^WARNING:(tensorflow|absl):|"
    r"triggered tf.function retracing|^\s*$"
)


def install() -> None:
    """Quiet TensorFlow's C++ logs (level 2: errors only) and its start-up lines, once per process."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


@contextlib.contextmanager
def captured_fd2() -> Iterator[None]:
    """Point file descriptor 2 at a temporary file inside the block; then sort what was written there."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded interpreters): nothing to do
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines = tmp.read().decode("utf-8", errors="replace").splitlines()
            from ferlib.runtime import progress  # lazy: tqdm; run_all.sh imports ferlib with a bare Python first

            noise = [line for line in lines if NOISE.search(line)]
            other = [line for line in lines if not NOISE.search(line)]
            if noise and progress.log_path() is not None:
                progress.stream().write("\n".join(noise) + "\n")
            if other:
                sys.stderr.write("\n".join(other) + "\n")


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Find `tensorflow` as usual, but run its loader with fd 2 captured; then step aside."""

    def find_spec(self, name: str, path=None, target=None):  # noqa: ANN001, ANN201 (importlib protocol)
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            load = spec.loader.exec_module

            def exec_module(module) -> None:  # noqa: ANN001
                with captured_fd2():
                    load(module)
                    # Devices first listed here print their lines (a GPU build without a GPU: "failed call to
                    # cuInit") into the capture; physical devices only, so memory growth can still be set.
                    with contextlib.suppress(Exception):
                        module.config.list_physical_devices()

            spec.loader.exec_module = exec_module
        return spec
