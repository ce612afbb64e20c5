#!/usr/bin/env bash
# The GPU check: within 8 minutes on any NVIDIA GPU, V4, V8, V7 and V13 train under the full profile through the
# real path (tf.data pipeline, augmentation, class weights, both phases, checkpoints, reloading the kept model)
# on a slice of real images (FER-2013 upscaled to 96 px; random weights, no download needed). It writes images/s
# per phase and the whole study's projected wall time per notebook, on this GPU and scaled to a T4, to
# outputs/bench/gpu_check.{json,md}; run_all.sh --dry-run then uses those figures for its GPU estimate.
#
#   bash tools/gpu_check.sh [FER2013_DIR] [MORE BENCH ARGS]      # default: ../shared/data/fer2013
#
# Python: the project's .venv when it exists; else a python3 that already has TensorFlow (Kaggle, a GPU box
# without a package index); else `bash run_all.sh --setup-only` builds .venv for this machine first.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DATA="${1:-$ROOT/../shared/data/fer2013}"
shift || true
[[ -e "$DATA" ]] || { echo "gpu_check: no data at $DATA (pass a FER-2013 folder)" >&2; exit 2; }
if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python
elif python3 -c "import tensorflow, pandas, sklearn" >/dev/null 2>&1; then PY=python3
else bash run_all.sh --setup-only; PY=.venv/bin/python
fi
command -v nvidia-smi >/dev/null && nvidia-smi -L || echo "gpu_check: no NVIDIA GPU listed; the check runs on the CPU"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
exec timeout "${GPU_CHECK_TIMEOUT:-480}" "$PY" tools/gpu_check.py --data "$DATA" "$@"
