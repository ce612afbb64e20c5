#!/usr/bin/env bash
# Reproduce every notebook headlessly: set up .venv for this machine when needed, run notebooks/NN_*.ipynb
# with papermill, render each to HTML (with code, and code-free) and build outputs/reports/index.html.
#
#   bash run_all.sh                         # auto: full with a GPU, cpu with real data, demo on the embedded data
#   bash run_all.sh --dry-run               # what would run here: TensorFlow build, profile, data, time per notebook
#   bash run_all.sh --profile smoke         # quick check of every notebook
#   bash run_all.sh --data DIR --external DIR --notebooks 01,02
#   open outputs/reports/index.html         # the landing page: every report, its result, the verdicts
#   bash run_all.sh --tests [PYTEST ARGS]   # set up and run the test suite instead
#   bash run_all.sh --bench [BENCH ARGS]    # set up (plus the fer package) and run python -m ferlib bench
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CALLER_PWD="$PWD"  # relative paths in the options are the caller's, not the project's
cd "$ROOT"
VENV="$ROOT/.venv"
OUT="$ROOT/outputs"
FER_PACKAGE="fer==25.10.3"

usage() {
  cat <<'EOF'
Usage: bash run_all.sh [options]
  --profile NAME      auto (default: full with a GPU, cpu with real data, demo on the embedded data),
                      smoke, demo, cpu or full
  --data DIR          internal data (Human Face Emotions folder, FER-2013 folder or CSV; "embedded": the
                      generated set even where real data is configured)
  --external DIR      external test data (default: FER-2013 test split / embedded external set)
  --notebooks LIST    comma-separated notebook numbers or names to run, e.g. 01,02 (default: all)
  --seed N            random seed (default 42)
  --weights W         backbone weights: imagenet, random or a weights file (default: the profile's;
                      full uses imagenet and stops with a clear message offline unless you say random)
  --deterministic     op determinism and seeded everything: the same seed gives the same numbers (slower)
  --allow-cpu         let the full profile run without a GPU (days of training)
  --max-epochs N      cap every training phase at N epochs, --seeds N: seeds per ablation (checks of a
                      profile's code path on a small slice; results say they were capped)
  --multi-gpu         train on every visible GPU (MirroredStrategy; default: one GPU)
  --force             retrain finished experiments instead of reusing them
  --output DIR        where executed notebooks, reports, results and figures go (default: outputs)
  --dry-run           print the plan (Python, TensorFlow build, GPUs, profile, data, weights, notebooks,
                      expected time per notebook) and stop without installing or running anything
  --setup-only        create/refresh .venv and the Jupyter kernel, then stop
  --tests [ARGS...]   set up, check the code with ruff, then run pytest with ARGS (everything after --tests
                      goes to pytest; -m "not slow" is the fast lane)
  --bench [ARGS...]   set up, install the benchmark-only `fer` package (for its side-by-side rows),
                      then run `python -m ferlib bench` with ARGS (see `python -m ferlib bench --help`)
  -h, --help          this help
Environment: PYTHON (interpreter for the venv, default python3.11), FERLIB_DATA_DIR, FERLIB_EXTERNAL_DIR,
FERLIB_CACHE_DIR.
EOF
}

PROFILE=auto; DATA=""; EXTERNAL=""; NOTEBOOKS=""; SEED=42; WEIGHTS=""; FORCE=False; MODE=notebooks; PASS_ARGS=()
OUT_ARG=""; ALLOW_CPU=""; DETERMINISTIC=""; CAPS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --profile) PROFILE="$2"; shift 2 ;;
    --data) DATA="$2"; shift 2 ;;
    --external) EXTERNAL="$2"; shift 2 ;;
    --notebooks) NOTEBOOKS="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --weights) WEIGHTS="$2"; shift 2 ;;
    --deterministic) DETERMINISTIC=1; shift ;;
    --allow-cpu) ALLOW_CPU=--allow-cpu; shift ;;
    --max-epochs) CAPS+=(--max-epochs "$2"); export FERLIB_MAX_EPOCHS="$2"; shift 2 ;;
    --seeds) CAPS+=(--seeds "$2"); export FERLIB_SEEDS="$2"; shift 2 ;;
    --multi-gpu) export FERLIB_MULTI_GPU=1; shift ;;
    --force) FORCE=True; shift ;;
    --output) OUT_ARG="$2"; shift 2 ;;
    --dry-run) MODE=dry-run; shift ;;
    --setup-only) MODE=setup; shift ;;
    --tests) MODE=tests; shift; PASS_ARGS=("$@"); break ;;
    --bench) MODE=bench; shift; PASS_ARGS=("$@"); break ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_all.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

log() { printf '[run_all %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

from_caller() {  # a path option as the caller meant it: relative to where run_all.sh was started
  case "$1" in ""|embedded|imagenet|random|/*) echo "$1" ;; *) echo "$CALLER_PWD/$1" ;; esac
}
DATA="$(from_caller "$DATA")"; EXTERNAL="$(from_caller "$EXTERNAL")"; WEIGHTS="$(from_caller "$WEIGHTS")"
[[ -n "$OUT_ARG" ]] && OUT_ARG="$(from_caller "$OUT_ARG")"

BASE_PYTHON="${PYTHON:-}"
if [[ -z "$BASE_PYTHON" ]]; then
  # on Kaggle, the Python that holds its TensorFlow (ferlib/plan.py's KAGGLE_ENV names these variables)
  if [[ -n "${KAGGLE_KERNEL_RUN_TYPE:-}${KAGGLE_URL_BASE:-}${KAGGLE_DATA_PROXY_TOKEN:-}" ]]; then BASE_PYTHON=python3
  elif command -v python3.11 >/dev/null 2>&1; then BASE_PYTHON=python3.11; else BASE_PYTHON=python3; fi
fi
# the plan needs only the standard library, so it runs before (and without) .venv
plan() {
  "$BASE_PYTHON" -m ferlib.plan --profile "$PROFILE" --data "$DATA" --external "$EXTERNAL" --weights "$WEIGHTS" \
    --notebooks "$NOTEBOOKS" $ALLOW_CPU ${CAPS[@]+"${CAPS[@]}"} "$@"
}

if [[ "$MODE" == dry-run ]]; then
  plan
  exit $?
fi
if [[ "$MODE" == notebooks ]]; then  # refuse what should not start (full without a GPU or data) before installing
  plan --field profile >/dev/null || exit 2
fi
MACHINE="$(plan --field machine)" || exit 2

# One run at a time per output folder: a second run_all.sh writing to the same outputs stops at once. The lock is
# an flock on <output>/.run_all.lock held through file descriptor 9, which the system releases however the run
# ends (even kill -9), so a stale lock never blocks the next run. Setting up .venv takes a second lock (.venv.lock,
# fd 8) and waits for it: runs into other folders share the environment.
flock_fd() {  # flock_fd FD blocking|nonblocking: lock the file open on FD (Python's fcntl: Linux and macOS alike)
  "$BASE_PYTHON" -c 'import fcntl, sys; fcntl.flock(int(sys.argv[1]), fcntl.LOCK_EX | (fcntl.LOCK_NB if sys.argv[2] == "nonblocking" else 0))' "$1" "$2" 2>/dev/null
}
take_output_lock() {
  [[ -n "$OUT_ARG" ]] && OUT="$OUT_ARG"
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
  echo "pid $$, started $(date '+%Y-%m-%d %H:%M:%S'), mode $MODE, profile $PROFILE" >&9
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
  local stamp="$VENV/.ferlib-requirements"
  local want
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
      gpu) "${pip[@]}" --upgrade pip
           "${pip[@]}" -r requirements/gpu.txt ;;
      *) "${pip[@]}" --upgrade pip
         "${pip[@]}" -r requirements.txt ;;
    esac
    "$VENV/bin/python" -m compileall -q -j 0 "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
      >/dev/null 2>&1 || true  # a few packages ship files that do not compile (pip ignores them too)
    "$VENV/bin/python" -m pip install --quiet --no-deps -e .
    "$VENV/bin/python" -m ipykernel install --sys-prefix --name ferlib --display-name "Python (ferlib)" >/dev/null
    echo "$want" > "$stamp"
  fi
}

exec 8>>"$ROOT/.venv.lock"
flock_fd 8 nonblocking || { log "waiting for another run to finish setting up $VENV"; flock_fd 8 blocking; }
setup_venv
exec 8>&-
[[ "$MODE" == setup ]] && { log "environment ready: $VENV (Jupyter kernel 'ferlib')"; exit 0; }
if [[ "$MODE" == tests ]]; then
  log "checking the code with ruff (lint and import order)"
  "$VENV/bin/python" -m ruff check . || { log "ruff found problems (listed above)"; exit 1; }
  log "running tests"
  # two workers (pytest-xdist), each taking whole test files, so a module's notebook run happens once;
  # the notebook runs are mostly single-threaded, so two overlap well even on two cores. -n 0 turns it off.
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

abspath() { [[ -z "$1" || "$1" == embedded ]] && { echo "$1"; return 0; }; "$VENV/bin/python" -c 'import os,sys; print(os.path.abspath(sys.argv[1]))' "$1"; }
DATA="$(abspath "$DATA")"; EXTERNAL="$(abspath "$EXTERNAL")"
[[ -n "$OUT_ARG" ]] && OUT="$(abspath "$OUT_ARG")"
case "$WEIGHTS" in ""|imagenet|random) ;; *) WEIGHTS="$(abspath "$WEIGHTS")" ;; esac
for path in "$DATA" "$EXTERNAL"; do
  [[ -z "$path" || "$path" == embedded || -e "$path" ]] || { echo "run_all.sh: data path not found: $path" >&2; exit 2; }
done

selected=()
for nb in notebooks/[0-9][0-9]_*.ipynb; do
  name="$(basename "$nb" .ipynb)"
  if [[ -z "$NOTEBOOKS" ]]; then selected+=("$name"); continue; fi
  IFS=',' read -ra wanted <<< "$NOTEBOOKS"
  for w in "${wanted[@]}"; do
    [[ "$name" == "$w" || "$name" == "$w"_* ]] && selected+=("$name")
  done
done
[[ ${#selected[@]} -gt 0 ]] || { echo "run_all.sh: no notebook matches '$NOTEBOOKS'" >&2; exit 2; }
# the summary (08) judges what 09 and 10 measured too, so it runs after every other selected notebook
ordered=(); summary_nb=""
for name in "${selected[@]}"; do
  if [[ "$name" == 08_* ]]; then summary_nb="$name"; else ordered+=("$name"); fi
done
[[ -n "$summary_nb" ]] && ordered+=("$summary_nb")
selected=("${ordered[@]}")

mkdir -p "$OUT/notebooks" "$OUT/reports" "$OUT/logs"
# temporary files of a run that was killed (a kill -9 cannot clean up): their targets were never replaced
"$VENV/bin/python" - "$OUT" <<'PY'
import sys
from ferlib.runtime.files import remove_stale_temporaries
if removed := remove_stale_temporaries(sys.argv[1]):
    print(f"[run_all] removed {len(removed)} temporary file(s) an interrupted run left in {sys.argv[1]}")
PY
# paths as the notebooks (run in notebooks/) see them: relative when inside the project or beside it, so the
# reports' parameter cells show no folder of this machine; anything else as given
nbpath() {
  "$VENV/bin/python" - "$1" "$ROOT" <<'PY'
import os, sys
path, root = sys.argv[1], sys.argv[2]
rel = os.path.relpath(path, root)
print(os.path.relpath(path, os.path.join(root, "notebooks")) if rel.split(os.sep).count("..") <= 1 else path)
PY
}
RESOLVED="$(plan --field profile)" || exit 2
params=(-p profile "$RESOLVED" -p seed "$SEED" -p force "$FORCE" -p output_dir "$(nbpath "$OUT")")
nbdata() { [[ "$1" == embedded ]] && echo embedded || nbpath "$1"; }
[[ -n "$DATA" ]] && params+=(-p data_dir "$(nbdata "$DATA")")
[[ -n "$EXTERNAL" ]] && params+=(-p external_dir "$(nbdata "$EXTERNAL")")
[[ -n "$WEIGHTS" ]] && params+=(-p weights "$WEIGHTS")
export TF_CPP_MIN_LOG_LEVEL=2
[[ -n "$DETERMINISTIC" ]] && export FERLIB_DETERMINISTIC=1

log "profile=$RESOLVED (asked: $PROFILE) seed=$SEED data=${DATA:-<default>} external=${EXTERNAL:-<default>} output=$OUT"
log "notebooks: ${selected[*]}"
echo "notebook,seconds,status" > "$OUT/timings.csv"
total_start=$SECONDS
tail_pid=""
stop_tail() {  # let tail print the last lines, then stop it
  [[ -z "$tail_pid" ]] && return 0
  sleep 1; kill "$tail_pid" 2>/dev/null || true; wait "$tail_pid" 2>/dev/null || true; tail_pid=""
}
trap stop_tail EXIT
for name in "${selected[@]}"; do
  log "running $name (progress below; the report keeps results only)"
  start=$SECONDS
  status=ok
  # progress bars, epoch lines, warnings and TensorFlow's logs go to this file, shown here as it grows
  export FERLIB_PROGRESS_LOG="$OUT/logs/$name.log"
  : > "$FERLIB_PROGRESS_LOG"
  tail -n +1 -s 0.5 -F "$FERLIB_PROGRESS_LOG" 2>/dev/null &
  tail_pid=$!
  # papermill saves the notebook cell by cell: it writes to a temporary name and replaces the previous
  # run's notebook only when it stops, so a kill leaves the last finished notebook (and its reports) intact
  running="$OUT/notebooks/.$name.running.ipynb"
  if ! "$VENV/bin/python" -m papermill "notebooks/$name.ipynb" "$running" -k ferlib \
      --cwd notebooks "${params[@]}" --no-progress-bar --log-level WARNING; then
    status=failed
  fi
  [[ -f "$running" ]] && mv -f "$running" "$OUT/notebooks/$name.ipynb"
  stop_tail
  elapsed=$((SECONDS - start))
  unset FERLIB_PROGRESS_LOG
  "$VENV/bin/python" -m ferlib report "$OUT/notebooks/$name.ipynb" --output-dir "$OUT" >/dev/null \
    || log "could not render $name to HTML (see above)"
  echo "$name,$elapsed,$status" >> "$OUT/timings.csv"
  if [[ "$status" != ok ]]; then
    log "FAILED: $name after ${elapsed}s; the failing cell is shown above and in $OUT/reports/$name.html"
    exit 1
  fi
  log "done $name in ${elapsed}s -> $OUT/reports/$name.nocode.html"
done
log "all ${#selected[@]} notebooks finished in $((SECONDS - total_start))s; timings in $OUT/timings.csv"
log "checking the reports (every figure embedded, no log lines)"
"$VENV/bin/python" -m ferlib report --output-dir "$OUT" --check \
  || log "WARNING: some reports are missing figures or show log lines (listed above)"
log "open $OUT/reports/index.html"
column -s, -t "$OUT/timings.csv" 2>/dev/null || cat "$OUT/timings.csv"
[[ -n "$NOTEBOOKS" ]] && exit 0  # only a complete run is a profile's wall time
# one line per finished run, for `python -m ferlib bench` (wall time per profile)
history="$OUT/bench/run_all_history.csv"
mkdir -p "$OUT/bench"
[[ -f "$history" ]] || echo "finished_utc,profile,data,notebooks,seconds,git_commit" > "$history"
cp "$OUT/timings.csv" "$OUT/bench/run_all_timings_$RESOLVED.csv"  # per notebook, latest complete run
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ),$RESOLVED,${DATA:-${FERLIB_DATA_DIR:-embedded}},$(IFS=' '; echo "${selected[*]}"),$((SECONDS - total_start)),$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" >> "$history"
