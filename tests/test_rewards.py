"""Tests of `sgpo_curate.rewards`: the trainer's reward gives back the published pass rates.

The re-verification tests go the way a user's data goes: real bundled rows, completions scored by the
profiling verifier, curated and written with `write_curated` (its `-raw` config included), read back with
`datasets.load_dataset`, and re-scored with the reward a trainer would use. Code rows run in the real
sandbox.
"""

from __future__ import annotations

import pickle

import pytest

from sgpo_curate.curation import CurateConfig, curate, write_curated
from sgpo_curate.records import QueryProfile
from sgpo_curate.rewards import VERIFIER_COLUMNS, VerifierReward, query_from_columns, verifier_columns
from sgpo_curate.sources import load_queries
from sgpo_curate.verifiers.code import CodeVerifier
from sgpo_curate.verifiers.math import MathVerifier

MODEL = "org/model"


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
    got = reward(
        prompts,
        completions,
        id=["a", "a", "b"],
        domain=["math"] * 3,
        answer=["2", "2", None],
        trainer_state=object(),  # TRL passes non-column keywords too
    )
    assert got == [1.0, 0.0, None]
    assert reward.__name__ == "echo"


def test_columns_round_trip_to_the_query_a_verifier_reads():
    for name in ("arithmetic", "humaneval", "mbpp"):
        query = load_queries(name, limit=1)[0][0]
        columns = verifier_columns(query)
        assert tuple(columns) == VERIFIER_COLUMNS
        back = query_from_columns(query.messages, columns)
        assert (back.id, back.domain, back.answer, back.tests, back.entry_point) == (
            query.id,
            query.domain,
            query.answer,
            query.tests,
            query.entry_point,
        )
    humaneval = load_queries("humaneval", limit=1)[0][0]
    assert verifier_columns(humaneval)["code_prompt"].startswith("from typing import List")
    assert verifier_columns(load_queries("gsm8k", limit=1)[0][0])["solution"] == "$18$"


def test_reward_from_run_info_uses_the_recorded_settings_and_pickles():
    reward = VerifierReward.from_run_info(
        {"verifier": "math", "verifier_settings": {"extraction": "lenient"}}
    )
    again = pickle.loads(pickle.dumps(reward))
    try:
        assert again.verifier.settings == {"extraction": "lenient"}
        assert again([[{"role": "user", "content": "?"}]], ["it is 3"], answer=["3"]) == [1.0]
    finally:
        again.verifier.close()
        reward.verifier.close()


def _profiles(queries, completions, verifier) -> list[QueryProfile]:
    """Profiles as profiling makes them: each query's completions scored by the profiling verifier."""
    flat_queries = [q for q, texts in zip(queries, completions, strict=True) for _ in texts]
    rewards = iter(verifier([t for texts in completions for t in texts], flat_queries))
    return [
        QueryProfile(
            query=q,
            model=MODEL,
            rewards=tuple(next(rewards) for _ in texts),
            completion_tokens=(10,) * len(texts),
            prompt_tokens=20,
            completions=tuple(texts),
        )
        for q, texts in zip(queries, completions, strict=True)
    ]


def _published_raw(profiles, tmp_path):
    from datasets import load_dataset

    result = curate(profiles, CurateConfig(unsolvable_keep_fraction=1.0, config_name="m"))
    write_curated(result, tmp_path / "out", {"model": MODEL}, profiles=profiles)
    # A cache of its own: datasets 5.2 caches a local folder by its name and config, not its content.
    return load_dataset(str(tmp_path / "out"), "m-raw", split="train", cache_dir=str(tmp_path / "cache"))


def _rescore(reward, row, drop: tuple[str, ...] = ()) -> int:
    """`num_correct` of one raw row as the trainer's reward sees it (TRL's call: one list entry per rollout)."""
    k = len(row["completions"])
    columns = {name: [row[name]] * k for name in VERIFIER_COLUMNS if name not in drop}
    rewards = reward(
        [row["prompt"]] * k, [[{"role": "assistant", "content": c}] for c in row["completions"]], **columns
    )
    return sum(r is not None and r >= 0.5 for r in rewards)


def _math_completions(answer: str, i: int) -> list[str]:
    right = [f"So it is $\\boxed{{{answer}}}$.", f"The final answer is ${answer}$."]
    wrong = [f"So it is $\\boxed{{{answer}9}}$.", f"So the answer is {answer}"]  # the bare number: not strict
    return right[: i % 3] + wrong[: 4 - i % 3]


def test_raw_config_rescored_by_the_trainer_reward_gives_published_counts_math(tmp_path):
    from trl.rewards import accuracy_reward

    queries = [q for name in ("arithmetic", "gsm8k", "math") for q in load_queries(name, limit=3)[0]]
    verifier = MathVerifier(workers=1)
    try:
        profiles = _profiles(
            queries, [_math_completions(q.answer, i) for i, q in enumerate(queries)], verifier
        )
        raw = _published_raw(profiles, tmp_path)
        reward = VerifierReward(verifier)
        assert raw.num_rows == len(queries)
        assert sorted({row["num_correct"] for row in raw}) == [0, 1, 2]  # counts that could go wrong
        for row in raw:
            assert _rescore(reward, row) == row["num_correct"], row["id"]
            completions = [[{"role": "assistant", "content": c}] for c in row["completions"]]
            trl = accuracy_reward(completions, [row["solution"]] * len(completions))
            assert sum(trl) == row["num_correct"], row["id"]  # TRL's own reward, no column mapping
    finally:
        verifier.close()


def _code_completions(query, i: int) -> list[str]:
    canonical = query.metadata["canonical_solution"]
    if query.entry_point is None:  # MBPP: a whole program
        return [f"```python\n{canonical}\n```", "```python\ndef nothing():\n    pass\n```"][: 1 + i % 2]
    signature = next(
        line
        for line in query.metadata["code_prompt"].splitlines()
        if line.startswith(f"def {query.entry_point}(")
    )
    # The body alone continues the stub; the whole function relies on the stub's imports (typing.List).
    return [canonical, f"```python\n{signature}\n{canonical}\n```", "    return None\n"]


def test_raw_config_rescored_by_the_trainer_reward_gives_published_counts_code(tmp_path):
    queries = load_queries("humaneval", limit=3)[0] + load_queries("mbpp", limit=3)[0]
    verifier = CodeVerifier(workers=2, timeout_s=10)
    try:
        profiles = _profiles(queries, [_code_completions(q, i) for i, q in enumerate(queries)], verifier)
        raw = _published_raw(profiles, tmp_path)
        reward = VerifierReward(verifier)
        by_id = {row["id"]: row for row in raw}
        assert [by_id[f"humaneval/{i}"]["num_correct"] for i in range(3)] == [2, 2, 2]
        for row in raw:
            assert _rescore(reward, row) == row["num_correct"], row["id"]
        # Without the published stub the whole-function completion loses `List`: the column is what counts.
        assert _rescore(reward, by_id["humaneval/0"], drop=("code_prompt",)) < 2
    finally:
        verifier.close()


@pytest.mark.parametrize("extraction", ["strict", "lenient"])
def test_profile_settings_travel_to_the_reward(tmp_path, extraction):
    """A lenient profile re-scores as lenient, a strict one as strict: run.json carries the mode."""
    from sgpo_curate.profiling import describe_run

    class _Sampler:  # only what describe_run reads
        model_name, model_revision, num_parameters, name = "smollm2-135m-instruct", None, 1, "transformers"

    from sgpo_curate.config import SamplingConfig

    verifier = MathVerifier(workers=1, extraction=extraction)
    info = describe_run(_Sampler(), verifier, SamplingConfig(), "arithmetic")
    assert info["verifier_settings"] == {"extraction": extraction}
    assert info["model_hub_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    reward = VerifierReward.from_run_info(info, workers=1)
    try:
        got = reward([[{"role": "user", "content": "?"}]], ["so 3"], answer=["3"])
        assert got == ([1.0] if extraction == "lenient" else [0.0])
    finally:
        reward.verifier.close()
