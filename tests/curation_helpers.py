"""Builders of small, exact profile pools for the curation, card and hub tests.

Imported by name (`import curation_helpers`): pyproject puts tests/ on pytest's pythonpath.
"""

from __future__ import annotations

import json

import pandas as pd

from sgpo_curate.records import Query, QueryProfile

MODEL = "org/tiny-llama"
RUN_INFO = {
    "model": MODEL,
    "model_revision": "0123abcd",
    "num_parameters": 700000,
    "sampling": {"k": 8, "max_new_tokens": 64, "temperature": 1.0, "top_p": 1.0, "seed": 0},
    "verifier": "math-verify",
    "verifier_version": "0.9.0",
    "source": "toy/test",
    "source_license": "mit",
    "date": "2026-11-30",
    "package_versions": {"datasets": "5.2.0"},
}


def make_profile(
    index: int, correct: int, k: int = 8, model: str = MODEL, unverifiable: int = 0, domain: str = "math"
) -> QueryProfile:
    query = Query(
        id=f"toy/{index}",
        source="toy/test",
        domain=domain,
        prompt=(("system", "Be brief."), ("user", f"What is {index} + {index}?")),
        answer=str(2 * index) if domain == "math" else None,
        tests="assert f(1) == 2" if domain == "code" else None,
        entry_point="f" if domain == "code" else None,
    )
    rewards = (1.0,) * correct + (0.0,) * (k - correct - unverifiable) + (None,) * unverifiable
    return QueryProfile(
        query=query, model=model, rewards=rewards, completion_tokens=(5,) * k, prompt_tokens=9
    )


def make_pool() -> list[QueryProfile]:
    """4 trivial, 8 unsolvable, 1 unverifiable, 1 duplicate id, 9 partially solved (c = 1..7)."""
    pool = [make_profile(i, 8) for i in range(4)]
    pool += [make_profile(i, 0) for i in range(4, 12)]
    pool += [make_profile(12, 0, unverifiable=8)]
    pool += [make_profile(i, c) for i, c in zip(range(13, 22), (1, 1, 2, 3, 4, 5, 6, 7, 7), strict=True)]
    pool += [make_profile(13, 5)]  # a second profile for an id already seen
    pool += [make_profile(22, 2, domain="code")]
    return pool


def write_profile_dir(path, profiles, run_info=RUN_INFO):
    """A profiling output folder as `sgpo_curate.profiling` writes it: profiles.parquet + run.json."""
    path.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([p.to_row() for p in profiles]).to_parquet(path / "profiles.parquet")
    (path / "run.json").write_text(json.dumps(run_info))
    return path


def broken_rule(p_hat: float, g_min: int, g_max: int) -> int:
    """A user's group-size rule with a bug (plugged in as `curation_helpers:broken_rule`)."""
    return round(1 / (p_hat - p_hat))
