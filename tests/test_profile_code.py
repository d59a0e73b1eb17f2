"""`sgpo-curate profile --dataset humaneval|mbpp` end to end: tiny model, real sources, real sandbox.

The tiny character-level model writes noise, so every reward is expected to be 0.0; what this proves
is the plumbing: exactly k samples per query, every sample judged (0/1, none unverifiable), the code
verifier recorded in run.json, and stored completions re-verify to the stored rewards. A second
test plugs the code verifier into `profile(...)` with a sampler that answers with the reference
solutions half of the time, so real passes are counted: p̂ = 0.5 for every query.
"""

import pytest

from sgpo_curate.cli import main
from sgpo_curate.config import ProfileConfig, SamplingConfig
from sgpo_curate.profiling import load_profiles, load_run_info, profile
from sgpo_curate.samplers import Samples
from sgpo_curate.sources import load_queries
from sgpo_curate.verifiers.code import CodeVerifier

K = 3


@pytest.mark.parametrize(
    ("dataset", "ids"), [("humaneval", ["humaneval/0", "humaneval/1"]), ("mbpp", ["mbpp/11", "mbpp/12"])]
)
def test_profile_code_dataset_end_to_end(dataset, ids, tiny_model_dir, tmp_path):
    out = tmp_path / dataset
    code = main(
        [
            "profile",
            "--model",
            tiny_model_dir,
            "--dataset",
            dataset,
            "--limit",
            "2",
            "--k",
            str(K),
            "--max-new-tokens",
            "24",
            "--out",
            str(out),
            "--verifier-workers",
            "2",
            "--no-progress",
        ]
    )
    assert code == 0
    profiles = sorted(load_profiles(out, completions=True), key=lambda p: p.id)
    assert [p.id for p in profiles] == ids
    for found in profiles:
        assert found.query.domain == "code" and found.query.tests
        assert len(found.rewards) == len(found.completions) == K
        assert all(r in (0.0, 1.0) for r in found.rewards)
        assert found.num_samples == K and found.num_unverifiable == 0
    run = load_run_info(out)
    assert run["verifier"] == "code" and "network_isolated=" in run["verifier_version"]

    verifier = CodeVerifier(workers=2)
    try:
        again = verifier(
            [c for p in profiles for c in p.completions], [p.query for p in profiles for _ in range(K)]
        )
    finally:
        verifier.close()
    assert again == [r for p in profiles for r in p.rewards]


class ReferenceSampler:
    """A user sampler (the `Sampler` protocol): half of each query's k answers are its reference solution."""

    name = "reference"
    model_name = "reference-solutions"
    model_revision = None
    num_parameters = 0

    def sample(self, queries, config, seed):
        out = []
        for query in queries:
            good = f"Here you go:\n```python\n{query.metadata['canonical_solution']}\n```"
            texts = tuple(
                good if i % 2 == 0 else "```python\nraise SystemExit(0)\n```" for i in range(config.k)
            )
            out.append(Samples(texts=texts, completion_tokens=(1,) * config.k, prompt_tokens=1))
        return out


def test_profile_api_with_the_code_verifier_counts_real_passes(tmp_path):
    queries = load_queries("humaneval", limit=2)[0] + load_queries("mbpp", limit=2)[0]
    verifier = CodeVerifier(workers=2)
    try:
        profile(
            queries,
            ReferenceSampler(),
            verifier,
            ProfileConfig(out_dir=str(tmp_path), progress=False),
            SamplingConfig(k=4, batch_queries=2),
            source="humaneval+mbpp",
        )
    finally:
        verifier.close()
    profiles = load_profiles(tmp_path)
    assert len(profiles) == 4
    assert all(p.rewards == (1.0, 0.0, 1.0, 0.0) and p.pass_rate == 0.5 for p in profiles)
