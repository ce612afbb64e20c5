#!/usr/bin/env bash
# Reproduce every notebook headlessly: bootstrap .venv for this machine (the plan, ferlib/plan.py, needs only the
# standard library, so it decides before anything is installed), then hand over to Python (ferlib/runner.py),
# which runs the notebooks with papermill and renders their reports. `bash run_all.sh --help` lists the options.
#
#   bash run_all.sh                         # auto: full with a GPU, cpu with real data, demo on the embedded data
#   bash run_all.sh --dry-run               # what would run here: TensorFlow build, profile, data, time per notebook
#   bash run_all.sh --tests [PYTEST ARGS]   # set up and run the test suite instead
#   bash run_all.sh --bench [BENCH ARGS]    # set up (plus the fer package) and run python -m ferlib bench
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export FERLIB_CALLER_PWD="$PWD"  # relative paths in the options are the caller's, not the project's
# TensorFlow's CPU kernels take large scratch buffers on every step; glibc hands freed ones back to the system, and
# the next step faults them in again, page by page: half the CPU time on a 2-core VM (AMD EPYC family 25 model 1).
# Kept instead (no mmap, no trimming): in short benchmarks there V1 trained 2.2 and ResNet50V2 2 times faster, and
# in a real-data run ResNet50V2's epochs took half as long (docs/results.md).
# The notebooks' kernel gets it too (below); a system without glibc ignores it, and a value of your own is kept.
export GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184}"
cd "$ROOT"
VENV="$ROOT/.venv"
FER_PACKAGE="fer==25.10.3"

MODE=notebooks; ARGS=(); PASS_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --tests) MODE=tests; shift; PASS_ARGS=("$@"); break ;;
    --bench) MODE=bench; shift; PASS_ARGS=("$@"); break ;;
    --dry-run) MODE=dry-run; shift ;;
    --setup-only) MODE=setup; shift ;;
    *) ARGS+=("$1"); shift ;;
  esac
done

log() { printf '[run_all %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

BASE_PYTHON="${PYTHON:-}"
if [[ -z "$BASE_PYTHON" ]]; then
  # on Kaggle, the Python that holds its TensorFlow (ferlib/plan.py's KAGGLE_ENV names these variables)
  if [[ -n "${KAGGLE_KERNEL_RUN_TYPE:-}${KAGGLE_URL_BASE:-}${KAGGLE_DATA_PROXY_TOKEN:-}" ]]; then BASE_PYTHON=python3
  elif command -v python3.11 >/dev/null 2>&1; then BASE_PYTHON=python3.11; else BASE_PYTHON=python3; fi
fi
plan() { "$BASE_PYTHON" -m ferlib.plan ${ARGS[@]+"${ARGS[@]}"} "$@"; }

if [[ "$MODE" == dry-run || " ${ARGS[*]-} " == *" -h "* || " ${ARGS[*]-} " == *" --help "* ]]; then
  plan
  exit $?
fi
if [[ "$MODE" == notebooks ]]; then  # refuse what should not start (full without a GPU or data) before installing
  plan --field profile >/dev/null || exit 2
fi
MACHINE="$(plan --field machine)" && OUT="$(plan --field output)" || exit 2

# One run per output folder: an flock on <output>/.run_all.lock (fd 9), released however the run ends (kill -9
# too). Setting up .venv takes a second lock (.venv.lock, fd 8) and waits for it: runs share the environment.
flock_fd() {  # flock_fd FD blocking|nonblocking: lock the file open on FD (Python's fcntl: Linux and macOS alike)
  "$BASE_PYTHON" -c 'import fcntl, sys; fcntl.flock(int(sys.argv[1]), fcntl.LOCK_EX | (fcntl.LOCK_NB if sys.argv[2] == "nonblocking" else 0))' "$1" "$2" 2>/dev/null
}
take_output_lock() {
  mkdir -p "$OUT"
  local lock="$OUT/.run_all.lock"
  exec 9>>"$lock"
  if ! flock_fd 9 nonblocking; then
    echo "run_all.sh: another run_all.sh is already writing to $OUT:" >&2
    echo "  $(cat "$lock" 2>/dev/null || echo 'pid unknown')" >&2
    echo "Wait for it to finish (or stop it), or give this run another --output folder." >&2
    exit 3
  fi
  : > "$lock"
  echo "pid $$, started $(date '+%Y-%m-%d %H:%M:%S'), mode $MODE, options: ${ARGS[*]-}" >&9
}
if [[ "$MODE" == notebooks || "$MODE" == bench ]]; then take_output_lock; fi

venv_usable() {  # .venv runs, has pip (its own, or the system's it sees) and sees the system's packages iff it should
  [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1 || return 1
  local sees_system=false
  grep -qiE '^include-system-site-packages *= *true' "$VENV/pyvenv.cfg" 2>/dev/null && sees_system=true
  [[ "$sees_system" == "$([[ "$MACHINE" == kaggle ]] && echo true || echo false)" ]]
}

make_venv() {
  local flags=()
  [[ "$MACHINE" == kaggle ]] && flags=(--system-site-packages)  # Kaggle's TensorFlow, keras, numpy and pandas
  rm -rf "$VENV"
  log "creating $VENV with $("$BASE_PYTHON" --version 2>&1) ($BASE_PYTHON)${flags[*]:+, on top of the system packages}"
  if "$BASE_PYTHON" -c 'import ensurepip' 2>/dev/null; then
    "$BASE_PYTHON" -m venv ${flags[@]+"${flags[@]}"} "$VENV"
    return
  fi
  # No ensurepip (Kaggle's Python; Debian's without python3-venv): the environment is made without pip, and
  # then uses the system's pip, which it sees through the system's packages or which installs pip into it.
  log "$BASE_PYTHON has no ensurepip (as on Kaggle): creating the environment without pip"
  "$BASE_PYTHON" -m venv --without-pip ${flags[@]+"${flags[@]}"} "$VENV"
  "$VENV/bin/python" -m pip --version >/dev/null 2>&1 && return
  "$BASE_PYTHON" -m pip --python "$VENV/bin/python" install --quiet pip || {
    rm -rf "$VENV"
    echo "run_all.sh: $BASE_PYTHON has neither ensurepip nor a pip that can install into $VENV; install one" \
         "(Debian/Ubuntu: apt-get install python3-venv) or set PYTHON to another interpreter" >&2
    exit 2
  }
}

setup_venv() {
  local stamp="$VENV/.ferlib-requirements" want
  want="$(cat requirements.txt requirements/*.txt pyproject.toml | sha1sum | cut -d' ' -f1)-$MACHINE"
  # a run that failed while creating .venv (no pip, say) or one made for another kind of machine is made anew
  venv_usable || make_venv
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    log "installing requirements for this machine ($MACHINE; the first run takes a few minutes)"
    # --no-compile, then compileall on every core: pip compiles the installed files on one core, which took
    # twice as long on 2 cores (95 s against 51 s for requirements.txt, AMD EPYC, 2026-12-02)
    local pip=("$VENV/bin/python" -m pip install --quiet --no-compile)
    case "$MACHINE" in
      kaggle)
        local files="$VENV/kaggle"
        "$BASE_PYTHON" -m ferlib.plan --kaggle-files "$files"
        if [[ -s "$files/missing.txt" ]]; then
          # pinned first; if a pin needs newer libraries than Kaggle's, any version that fits them
          "${pip[@]}" -r "$files/missing.txt" -c "$files/constraints.txt" \
            || "${pip[@]}" -c "$files/constraints.txt" $(sed 's/==.*//' "$files/missing.txt")
        fi ;;
      gpu) "${pip[@]}" --upgrade pip && "${pip[@]}" -r requirements/gpu.txt ;;
      *) "${pip[@]}" --upgrade pip && "${pip[@]}" -r requirements.txt ;;
    esac
    "$VENV/bin/python" -m compileall -q -j 0 "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
      >/dev/null 2>&1 || true  # a few packages ship files that do not compile (pip ignores them too)
    "$VENV/bin/python" -m pip install --quiet --no-deps -e .
    echo "$want" > "$stamp"
  fi
  "$VENV/bin/python" -m ipykernel install --sys-prefix --name ferlib --display-name "Python (ferlib)" \
    --env GLIBC_TUNABLES "$GLIBC_TUNABLES" >/dev/null
}

exec 8>>"$ROOT/.venv.lock"
flock_fd 8 nonblocking || { log "waiting for another run to finish setting up $VENV"; flock_fd 8 blocking; }
setup_venv
exec 8>&-
[[ "$MODE" == setup ]] && { log "environment ready: $VENV (Jupyter kernel 'ferlib')"; exit 0; }
if [[ "$MODE" == tests ]]; then
  log "checking the code with ruff (lint and import order)"
  "$VENV/bin/python" -m ruff check . || { log "ruff found problems (listed above)"; exit 1; }
  log "running tests"  # two workers, each taking whole test files (a module's notebook run happens once); -n 0: one
  WORKERS=(-n "${FERLIB_TEST_WORKERS:-2}")
  for a in ${PASS_ARGS[@]+"${PASS_ARGS[@]}"}; do [[ "$a" == -n* || "$a" == --numprocesses* ]] && WORKERS=(); done
  exec "$VENV/bin/python" -m pytest "${WORKERS[@]}" ${PASS_ARGS[@]+"${PASS_ARGS[@]}"}
fi
if [[ "$MODE" == bench ]]; then
  # a benchmark-only extra, not a dependency: --no-deps keeps the pinned environment as it is
  "$VENV/bin/python" -c "import fer" 2>/dev/null || {
    log "installing the fer package for the side-by-side rows (pip install --no-deps $FER_PACKAGE)"
    "$VENV/bin/python" -m pip install --quiet --no-deps "$FER_PACKAGE" || log "fer not installed: its rows will say so"
  }
  log "running python -m ferlib bench ${PASS_ARGS[*]}"
  exec "$VENV/bin/python" -m ferlib bench ${PASS_ARGS[@]+"${PASS_ARGS[@]}"}
fi

exec "$VENV/bin/python" -m ferlib.runner ${ARGS[@]+"${ARGS[@]}"}
