"""sgpo-curate: model-aware difficulty profiling and sGPO curation for RLVR training data.

    from sgpo_curate import profile, curate, publish

Public names are imported lazily so `import sgpo_curate` stays fast (no torch, no datasets), and so
the core install (no torch) serves every name but those whose extra is missing: `AdaptiveGRPOTrainer`
needs `pip install 'sgpo-curate[train]'`, and says so (`sgpo_curate._extras`).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Query": "sgpo_curate.records",
    "QueryProfile": "sgpo_curate.records",
    "PromptConfig": "sgpo_curate.config",
    "SamplingConfig": "sgpo_curate.config",
    "ProfileConfig": "sgpo_curate.config",
    "AdaptiveConfig": "sgpo_curate.config",
    "load_queries": "sgpo_curate.sources",
    "get_sampler": "sgpo_curate.samplers",
    "get_verifier": "sgpo_curate.verifiers",
    "profile": "sgpo_curate.profiling",
    "merge": "sgpo_curate.profiling",
    "load_profiles": "sgpo_curate.profiling",
    "CurateConfig": "sgpo_curate.curation",
    "curate": "sgpo_curate.curation",
    "write_curated": "sgpo_curate.curation",
    "SimulateConfig": "sgpo_curate.simulate",
    "simulate_pool": "sgpo_curate.simulate",
    "run_pipeline": "sgpo_curate.pipeline",
    "publish": "sgpo_curate.hub",
    "AdaptiveGRPOConfig": "sgpo_curate.trainer",
    "AdaptiveGRPOTrainer": "sgpo_curate.trainer",
    "VerifierReward": "sgpo_curate.rewards",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sgpo_curate' has no attribute {name!r}")
