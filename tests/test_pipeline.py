"""`sgpo-curate quickstart` (the main job): profile -> curate -> write, with the reward training uses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sgpo_curate import pipeline
from sgpo_curate.cli import main
from sgpo_curate.sources import load_queries
from sgpo_curate.verifiers.math import MathVerifier, solution_text

TINY_RUN = ["--k", "2", "--max-new-tokens", "8", "--limit", "4", "--unsolvable-keep", "1", "--no-progress"]


def _raw(out_dir, config, tmp_path):
    from datasets import load_dataset

    # A cache of its own: datasets caches a local folder by its name and config, not its content.
    return load_dataset(
        str(out_dir / "dataset"), f"{config}-raw", split="train", cache_dir=str(tmp_path / "c")
    )


def _trl_counts(raw) -> list[int]:
    """`num_correct` of every raw row as TRL's own `accuracy_reward` sees it, from the published columns."""
    from trl.rewards import accuracy_reward

    counts = []
    for row in raw:
        completions = [[{"role": "assistant", "content": c}] for c in row["completions"]]
        rewards = accuracy_reward(completions, [row["solution"]] * len(completions))
        counts.append(sum(r == 1.0 for r in rewards))
    return counts


def test_quickstart_runs_with_an_instruction_holding_braces(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "qs"
    instruction = "{problem}\nEnd with: The final answer is \\boxed{N}."
    code = main(
        ["quickstart", "--model", tiny_model_dir, "--out", str(out), "--instruction", instruction, *TINY_RUN]
    )
    assert code == 0
    printed = capsys.readouterr().out
    for what in (
        "pass-rate histogram",
        "kept 4 of 4",
        "group sizes G (queries): 16 (4)",
        "informative groups",
    ):
        assert what in printed
    run = json.loads((out / "profiles" / "run.json").read_text())
    assert run["source"] == "arithmetic" and run["verifier_settings"] == {"extraction": "strict"}
    config = json.loads(next((out / "dataset" / "curation").glob("*.json")).read_text())["config_name"]
    raw = _raw(out, config, tmp_path)
    prompt = raw[0]["prompt"]
    assert [m["role"] for m in prompt] == ["user", "assistant", "user"]  # the worked example comes first
    assert prompt[-1]["content"].endswith("End with: The final answer is \\boxed{N}.")
    assert _trl_counts(raw) == raw["num_correct"]


def test_quickstart_instruction_without_problem_exits_2(tiny_model_dir, tmp_path, capsys):
    code = main(
        [
            "quickstart",
            "--model",
            tiny_model_dir,
            "--out",
            str(tmp_path / "qs"),
            "--instruction",
            "Solve: \\boxed{N}",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "has no {problem}" in err and "Traceback" not in err
    assert not (tmp_path / "qs" / "profiles").exists()  # refused before any work


RECORDED = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "quickstart_prompts.json"


def test_recorded_quickstart_profile_spreads_and_trl_agrees():
    """SmolLM2's own completions for the shipped default, recorded by benchmarks/bench_quickstart_prompts.py
    (SmolLM2 is too slow for every CI run): re-scored now, the strict reward and TRL's accuracy_reward give
    the same counts per query, and at least 3 queries lie strictly between 0 and 1."""
    from trl.rewards import accuracy_reward

    record = next(r for r in json.loads(RECORDED.read_text()) if r["name"] == "quickstart")
    queries = load_queries(
        pipeline.DEFAULT_DATASET, prompt=pipeline.QUICKSTART_PROMPT, limit=pipeline.DEFAULT_LIMIT
    )[0]
    sampling = pipeline.DEFAULT_SAMPLING
    assert (record["k"], record["temperature"], record["top_p"]) == (
        sampling.k,
        sampling.temperature,
        sampling.top_p,
    )
    assert record["prompt"] == [list(turn) for turn in queries[0].prompt], (
        "default changed: rerun the benchmark"
    )
    assert [q["id"] for q in record["per_query"]] == [q.id for q in queries]
    texts = [t for q in record["per_query"] for t in q["completions"]]
    flat = [q for q, r in zip(queries, record["per_query"], strict=True) for _ in r["completions"]]
    verifier = MathVerifier(workers=1)
    try:
        strict = verifier(texts, flat)
    finally:
        verifier.close()
    trl = accuracy_reward(
        [[{"role": "assistant", "content": t}] for t in texts], [solution_text(q.answer) for q in flat]
    )
    assert strict == trl
    k = sampling.k
    counts = [sum(strict[i : i + k]) for i in range(0, len(strict), k)]
    assert counts == [q["strict"] for q in record["per_query"]]
    assert sum(0 < c < k for c in counts) >= 3


@pytest.mark.slow
def test_quickstart_with_the_bundled_model_spreads_under_the_strict_reward(tmp_path, capsys):
    """README command 1 as a user runs it: real SmolLM2, real sampling (a few minutes on 2 cores)."""
    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out), "--no-progress"]) == 0
    assert "group sizes G" in capsys.readouterr().out
    raw = _raw(out, pipeline.DEFAULT_MODEL, tmp_path)
    counts = raw["num_correct"]
    assert sum(0 < c < pipeline.DEFAULT_SAMPLING.k for c in counts) >= 3
    assert _trl_counts(raw) == counts


def test_readme_reports_the_recorded_quickstart_profile():
    """The README's account of command 1 is the block the benchmark generates from its recorded results,
    so a rerun of the benchmark that is not carried into the README fails here."""
    import importlib.util
    import sys

    benchmarks = RECORDED.parents[1]
    sys.path.insert(0, str(benchmarks))  # the benchmark imports its neighbour `common` by name
    try:
        spec = importlib.util.spec_from_file_location(
            "bench_quickstart_prompts", benchmarks / "bench_quickstart_prompts.py"
        )
        bench = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = bench  # its dataclasses resolve their module by name
        spec.loader.exec_module(bench)
    finally:
        sys.path.remove(str(benchmarks))
    start, end = bench.README_MARKERS
    readme = (benchmarks.parent / "README.md").read_text()
    block = readme.split(start, 1)[1].split(end, 1)[0].strip()
    assert block == bench.readme_block(json.loads(RECORDED.read_text())).strip()
