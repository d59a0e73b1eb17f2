"""Tests of `sgpo_curate.rewards`: verifiers as TRL reward functions."""

from __future__ import annotations

from sgpo_curate.rewards import VerifierReward


class _EchoVerifier:
    name = "echo"

    def __call__(self, completions, queries):
        return [
            None if q.answer is None else float(c == q.answer)
            for c, q in zip(completions, queries, strict=True)
        ]


def test_verifier_reward_rebuilds_queries_from_curated_columns():
    reward = VerifierReward(_EchoVerifier())
    prompts = [[{"role": "user", "content": "1+1="}]] * 3
    completions = [[{"role": "assistant", "content": text}] for text in ("2", "3", "2")]
    got = reward(prompts, completions, id=["a", "a", "b"], domain=["math"] * 3, answer=["2", "2", None])
    assert got == [1.0, 0.0, None]
    assert reward.__name__ == "echo"
