#!/usr/bin/env bash
# The Kaggle-stack lane: this project as a user runs it in Kaggle's notebook image, from a fresh clone.
#
#   bash tools/kaggle_stack.sh                       # Kaggle's current image (requirements/stacks/kaggle.txt)
#   bash tools/kaggle_stack.sh --stack kaggle-next   # Python 3.13 and OpenCV 5 (requirements/stacks/kaggle-next.txt)
#   bash tools/kaggle_stack.sh --keep DIR            # leave the clone and its outputs in DIR
#
# 1. An interpreter like the image's: a copy of the pinned Python (pyenv's, or PYTHON_3_12=/path for another),
#    without ensurepip, holding the stack file's versions; built once and cached in
#    ${FERLIB_STACK_CACHE:-~/.cache/ferlib/stacks}/<stack>-<hash of the file>.
# 2. A fresh clone of this repository's HEAD, run with Kaggle's environment variable set and that interpreter as
#    python3: `bash run_all.sh --setup-only` over the .venv a failed first run leaves (made anew; TensorFlow, keras,
#    numpy and pandas must stay the image's), then `bash run_all.sh --profile smoke --notebooks 01,02,05,06,09` with every report checked.
# 3. `python -m ferlib predict` with both shipped models under the image's Keras and under the oldest Keras the
#    project supports (OLDEST_KERAS): the same faces, labels and probabilities (within 1e-4) as this checkout's
#    .venv, when it has one.
# Ends with one line per step and its seconds, the CPU named; exit status 0 only when every step passed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK=kaggle
KEEP=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stack) STACK="$2"; shift 2 ;;
    --keep) KEEP="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "kaggle_stack.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
PINS="$ROOT/requirements/stacks/$STACK.txt"
[[ -f "$PINS" ]] || { echo "kaggle_stack.sh: no stack file $PINS" >&2; exit 2; }
PY_VERSION="$(sed -n 's/^# python: *\([0-9.]*\).*/\1/p' "$PINS" | head -1)"
[[ -n "$PY_VERSION" ]] || { echo "kaggle_stack.sh: $PINS names no '# python: X.Y' line" >&2; exit 2; }

log() { printf '[kaggle-stack %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
STEPS=()
step_start=$SECONDS
done_step() { STEPS+=("$(printf '%-58s %5ss' "$1" $((SECONDS - step_start)))"); step_start=$SECONDS; }
CPU="$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
CPU="${CPU:-unknown CPU}, $(nproc) cores"

# 1. the interpreter ------------------------------------------------------------------------------------------------
CACHE="${FERLIB_STACK_CACHE:-$HOME/.cache/ferlib/stacks}"
HASH="$( (echo "$PY_VERSION"; sed 's/#.*//' "$PINS" | grep '==') | sha1sum | cut -c1-10)"  # pins, not comments
INTERP="$CACHE/$STACK-$HASH"
var="PYTHON_${PY_VERSION//./_}"
find_python() {  # the Python to copy: $PYTHON_3_12 (say), python3.12 on PATH, or pyenv's newest 3.12.x
  if [[ -n "${!var:-}" ]]; then echo "${!var}"; return; fi
  if "python$PY_VERSION" -c '' 2>/dev/null; then echo "python$PY_VERSION"; return; fi
  if command -v pyenv >/dev/null; then
    local v
    v="$(pyenv versions --bare 2>/dev/null | grep -E "^${PY_VERSION//./\\.}\.[0-9]+$" | sort -V | tail -1)"
    [[ -n "$v" ]] && { echo "$(pyenv root)/versions/$v/bin/python$PY_VERSION"; return; }
  fi
  echo "kaggle_stack.sh: no Python $PY_VERSION found (pyenv install $PY_VERSION, or set $var=/path/to/python)" >&2
  return 1
}
if [[ ! -f "$INTERP/.complete" ]]; then
  SOURCE_PY="$(find_python)" || exit 3  # 3: this machine cannot build the stack (the test suite skips the lane)
  prefix="$("$SOURCE_PY" -c 'import sys; print(sys.base_prefix)')"
  log "building the $STACK interpreter: a copy of Python $PY_VERSION ($prefix) with $(grep -c '==' "$PINS") pinned packages"
  mkdir -p "$CACHE"
  rm -rf "$INTERP" "$INTERP.partial"
  cp -a "$prefix" "$INTERP.partial"
  rm -rf "$INTERP.partial/lib/python$PY_VERSION/ensurepip" "$INTERP.partial/lib/python$PY_VERSION/test"
  "$INTERP.partial/bin/python$PY_VERSION" -m pip install --quiet --disable-pip-version-check -r "$PINS"
  "$INTERP.partial/bin/python$PY_VERSION" -m pip freeze --disable-pip-version-check > "$INTERP.partial/freeze.txt"
  touch "$INTERP.partial/.complete"
  mv "$INTERP.partial" "$INTERP"
  done_step "build the $STACK interpreter (cached for later runs)"
else
  log "using the cached $STACK interpreter $INTERP"
fi
KPY="$INTERP/bin/python$PY_VERSION"
if "$KPY" -c 'import ensurepip' 2>/dev/null; then echo "kaggle_stack.sh: $KPY still has ensurepip" >&2; exit 1; fi
"$KPY" - "$PINS" <<'PY'
import re, sys
from importlib import metadata
wrong = []
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if "==" in line:
        name, version = line.split("==")
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = "missing"
        if have != version:
            wrong.append(f"{name} {have} (pinned {version})")
if wrong:
    sys.exit("the stack interpreter does not hold its pins: " + ", ".join(wrong))
PY

OLDEST_KERAS="$(cd "$ROOT" && "$KPY" -c 'from ferlib.stacks import OLDEST_KERAS; print(OLDEST_KERAS)')"

# 2. a fresh clone, set up and run as on Kaggle --------------------------------------------------------------------
WORK="${KEEP:-$(mktemp -d "${TMPDIR:-/tmp}/kaggle-stack.XXXXXX")}"
[[ -n "$KEEP" ]] || trap 'rm -rf "$WORK"' EXIT
rm -rf "$WORK/fer"
mkdir -p "$WORK"
git -C "$ROOT" diff --quiet HEAD 2>/dev/null \
  || log "note: uncommitted changes in $ROOT are not in the clone (it tests commit $(git -C "$ROOT" rev-parse --short HEAD))"
git clone --quiet "$ROOT" "$WORK/fer"
CLONE="$WORK/fer"
# the image's python3 first on PATH (from its own folder: a venv finds its standard library beside `home`)
[[ -x "$INTERP/bin/python3" ]] || ln -s "python$PY_VERSION" "$INTERP/bin/python3"
export PATH="$INTERP/bin:$PATH"
unset PYTHON FERLIB_DATA_DIR FERLIB_EXTERNAL_DIR FERLIB_PROGRESS_LOG VIRTUAL_ENV
export KAGGLE_KERNEL_RUN_TYPE=Batch FERLIB_CACHE_DIR="$WORK/cache"
before="$("$KPY" -m pip freeze --disable-pip-version-check)"

# what a first run that failed while creating .venv leaves (as `venv` failing in ensurepip did): an environment
# without pip that does not see the image's packages; setup must make it anew
"$KPY" -m venv --without-pip "$CLONE/.venv"
(cd "$CLONE" && bash run_all.sh --setup-only)
protected="$("$CLONE/.venv/bin/python" - <<'PY'
from importlib import metadata
print(" ".join(f"{n}=={metadata.version(n)}" for n in ("tensorflow", "keras", "numpy", "pandas")))
PY
)"
for pin in $protected; do
  grep -qix "${pin}" <(sed 's/#.*//; s/ *$//' "$PINS") \
    || { echo "kaggle_stack.sh: .venv replaced the image's ${pin%%==*} ($pin; the image has $(grep -i "^${pin%%==*}==" "$PINS"))" >&2; exit 1; }
done
[[ "$before" == "$("$KPY" -m pip freeze --disable-pip-version-check)" ]] \
  || { echo "kaggle_stack.sh: setting up .venv changed the image's own packages" >&2; exit 1; }
done_step "run_all.sh --setup-only over a broken .venv (kept: $protected)"

(cd "$CLONE" && bash run_all.sh --profile smoke --notebooks 01,02,05,06,09)
"$CLONE/.venv/bin/python" -m ferlib report --output-dir "$CLONE/outputs" --check --forbid "$WORK"
done_step "run_all.sh --profile smoke --notebooks 01,02,05,06,09, reports checked"

# 3. the shipped model on a photo, under the image's Keras and the oldest supported ----------------------------------
PHOTO="$ROOT/../shared/data/photos/deepface_couple.jpg"
if [[ ! -f "$PHOTO" ]]; then  # not on a development machine: a generated photo with faces
  PHOTO="$WORK/photo.png"
  "$CLONE/.venv/bin/python" -c "import sys, numpy as np; from PIL import Image; from ferlib.photos.synthetic_photos \
import render_photo; Image.fromarray(render_photo(np.random.default_rng(3), 3).rgb).save(sys.argv[1])" "$PHOTO"
fi
OLDEST="$INTERP/keras-$OLDEST_KERAS"  # the oldest Keras alone (no dependencies), put first on the path
if [[ ! -f "$OLDEST/.complete" ]]; then
  "$KPY" -m pip install --quiet --disable-pip-version-check --no-deps --target "$OLDEST" "keras==$OLDEST_KERAS"
  touch "$OLDEST/.complete"
fi
predict() {  # predict MODEL LABEL [PYTHONPATH]: a shipped model's Keras predictions as JSON in $WORK/MODEL-LABEL.json
  # the Keras that this path imports first (read from its metadata: no TensorFlow import needed to name it)
  (cd "$WORK" && PYTHONPATH="${3:-}" "$CLONE/.venv/bin/python" -c \
    'from importlib import metadata; print("keras", metadata.version("keras"))')
  (cd "$WORK" && PYTHONPATH="${3:-}" "$CLONE/.venv/bin/python" -m ferlib predict "$PHOTO" --json --backend keras \
    --model "$1" > "$WORK/$1-$2.json")
}
compare() {  # compare FIRST OTHER...: the same labels, probabilities within 1e-4
"$CLONE/.venv/bin/python" - "$@" <<'PY'
import json, sys

def faces(path):
    return [(f["label"], f["scores"]) for e in json.load(open(path)) for f in e["faces"]]

first = faces(sys.argv[1])
assert first, f"no face found in the photo: {sys.argv[1]}"
for other in sys.argv[2:]:
    got = faces(other)
    assert [l for l, _ in got] == [l for l, _ in first], (other, got, first)
    worst = max(abs(p[c] - q[c]) for (_, p), (_, q) in zip(got, first) for c in p)
    assert worst < 1e-4, f"{other}: probabilities differ by {worst}"
    print(f"{other.rsplit('/', 1)[-1]}: {len(got)} face(s), the same labels, probabilities within {worst:.1e}")
PY
}
for MODEL in fer2013-7 fer2013-5; do  # both shipped models
  keras_image="$(predict "$MODEL" image)"
  keras_oldest="$(predict "$MODEL" oldest "$OLDEST")"
  [[ "$keras_oldest" == "keras $OLDEST_KERAS" ]] || { echo "kaggle_stack.sh: the oldest Keras did not load ($keras_oldest)" >&2; exit 1; }
  references=("$WORK/$MODEL-oldest.json")
  (cd "$WORK" && "$CLONE/.venv/bin/python" -m ferlib predict "$PHOTO" --json --model "$MODEL" > "$WORK/$MODEL-litert.json")
  litert_references=()
  if [[ -x "$ROOT/.venv/bin/python" ]]; then
    (cd "$WORK" && "$ROOT/.venv/bin/python" -m ferlib predict "$PHOTO" --json --backend keras --model "$MODEL" \
      > "$WORK/$MODEL-here.json")
    (cd "$WORK" && "$ROOT/.venv/bin/python" -m ferlib predict "$PHOTO" --json --model "$MODEL" > "$WORK/$MODEL-here_litert.json")
    references+=("$WORK/$MODEL-here.json")
    litert_references+=("$WORK/$MODEL-here_litert.json")
  fi
  compare "$WORK/$MODEL-image.json" "${references[@]}"
  done_step "predict with the shipped $MODEL (--backend keras): $keras_image and $keras_oldest agree"
  compare "$WORK/$MODEL-litert.json" "${litert_references[@]}"
  done_step "predict with the shipped $MODEL on LiteRT (the default) agrees with the main lane's"
done

log "passed on $CPU, Python $PY_VERSION ($STACK stack, $(basename "$INTERP")):"
printf '  %s\n' "${STEPS[@]}"
