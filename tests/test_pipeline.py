"""`sgpo-curate quickstart` (the main job): profile -> curate -> write, with the reward training uses."""

from __future__ import annotations

import json

from sgpo_curate import pipeline
from sgpo_curate.cli import main

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


def test_quickstart_defaults_are_the_measured_ones():
    """The embedded default is what benchmarks/bench_quickstart_prompts.py measured and the README shows."""
    assert pipeline.DEFAULT_DATASET == "arithmetic" and pipeline.DEFAULT_MODEL == "smollm2-135m-instruct"
    example, answer = pipeline.QUICKSTART_PROMPT.math_examples[0]
    assert answer.endswith("The final answer is \\boxed{4}.")
