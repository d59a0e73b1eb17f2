"""Shared fixtures: real parts made small.

- `tiny_model_dir`: a ~0.7M-parameter character-level Llama built from config and saved once per
  session (no download; DESIGN.md says why it is a Llama).
- Threads: one per process (`OMP_NUM_THREADS=1`); with two on a busy 2-core machine sampling was
  seen to slow 40x.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A saved tiny character-level Llama (model + tokenizer), shared by the session."""
    from sgpo_curate.models import save_tiny_model

    return str(save_tiny_model(tmp_path_factory.mktemp("tiny-model")))
