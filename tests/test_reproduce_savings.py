"""The reproduction study (`examples/reproduce_savings.py`) end to end at smoke size, and its pure parts.

What they guard:
- the reward accepts exactly the answer's tokens followed by EOS, the teacher-forced metric scores exactly that
  sequence, and on a real (tiny, pretrained) base the mean reward of sampled completions matches the metric;
- a profile sample that matched the answer's text without stopping on EOS is not counted as a success;
- `--quick` writes results.json with the gate and the `headline` object in the issue's schema, every run's
  FLOPs grow along its curve, every arm trained until it spent plain GRPO's training FLOPs, profiling is
  charged only to arms that use it; a rerun reuses every finished run; a failed gate reports no ratios;
- the statistics: crossings, censored seeds kept (not dropped), the bound 1/(1 - z).

The quick run takes about a minute on an idle 2-core machine (one torch thread).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "reproduce_savings.py"
HEADLINE_ARM_KEYS = {
    "ratio_mean",
    "ratio_ci_low",
    "ratio_ci_high",
    "seeds_reached",
    "seeds",
    "matched_flops_diff_mean",
    "matched_flops_diff_ci_low",
    "matched_flops_diff_ci_high",
}
GATE_KEYS = {"passed", "grpo_heldout_gain", "grpo_heldout_gain_sd", "seeds"}


def load_study():
    spec = importlib.util.spec_from_file_location("reproduce_savings", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["reproduce_savings"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


study = load_study()


def run_quick(out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out), *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick")
    # The smoke base is too small for GRPO to learn much in seconds: go on past the gate to exercise the report.
    done = run_quick(out, "--no-gate-stop")
    assert done.returncode == 0, done.stderr[-3000:]
    return out, json.loads((out / "results.json").read_text()), done


# --------------------------------------------------------------------------- reward and metric


def tokenizer():
    return study.new_base_model(study.Settings(hidden_size=32, num_layers=1, intermediate_size=64))[1]


def test_reward_accepts_exactly_answer_then_eos():
    tok = tokenizer()
    reward = study.ExactAnswerReward(tok)
    query = study.make_query(478, 65)  # 478 + 65 = 543
    assert query.prompt[0][1] == "87400+56000=" and query.answer == "345000"
    digits = [tok.convert_tokens_to_ids(c) for c in query.answer]
    eos, pad = tok.eos_token_id, tok.pad_token_id
    assert reward.score(digits + [eos], query.answer) == 1.0
    assert reward.score(digits, query.answer) == 0.0  # cut by the length limit: no EOS
    assert reward.score(digits + [pad], query.answer) == 0.0  # the old toy's `579<pad>`
    assert reward.score(digits + [tok.convert_tokens_to_ids("=")], query.answer) == 0.0
    assert reward.score(digits[:-1] + [eos], query.answer) == 0.0
    # TRL's call: completion_ids are cut after the first EOS
    assert reward([None, None], [digits + [eos], digits], [query.answer] * 2) == [1.0, 0.0]


def test_metric_scores_the_sequence_the_reward_accepts():
    tok = tokenizer()
    queries = [study.make_query(a, b) for a, b in ((12, 34), (99999, 1), (500, 77))]
    heldout = study.HeldOut(queries, tok, sampled=0)
    for row, query in zip(heldout.ids.tolist(), queries, strict=True):
        prompt = tok(query.prompt[0][1], add_special_tokens=False)["input_ids"]
        assert row[: len(prompt)] == prompt
        assert row[len(prompt) :] == heldout.reward.target(query.answer)


def test_strict_profiles_withdraw_text_matches_without_eos():
    from sgpo_curate import QueryProfile

    query = study.make_query(12, 34)
    n = len(query.answer) + 1  # answer + EOS
    item = QueryProfile(
        query, "m", rewards=(1.0, 1.0, 0.0, None), completion_tokens=(n, n + 1, n, n), prompt_tokens=12
    )
    fixed, withdrawn = study.strict_profiles([item])
    assert fixed[0].rewards == (1.0, 0.0, 0.0, None) and withdrawn == 1


def test_sampled_reward_matches_the_metric_on_a_pretrained_base(quick):
    """E[reward] = P(answer + EOS): the mean reward of many samples lands within 4 SE of the mean metric."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, results, _ = quick
    base = Path(results["base"]["path"])
    model = AutoModelForCausalLM.from_pretrained(base).eval()
    tok = AutoTokenizer.from_pretrained(base)
    queries = [
        study.make_query(*study.addition_with_carries(c % 3, study.random.Random(c))) for c in range(24)
    ]
    heldout = study.HeldOut(queries, tok, sampled=len(queries))
    metric = heldout.answer_probabilities(model)
    rewards = []
    for seed in range(40):
        heldout_seed = study.HeldOut(queries, tok, sampled=len(queries))
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            out_ids = model.generate(
                input_ids=heldout_seed.sampled_prompts,
                attention_mask=torch.ones_like(heldout_seed.sampled_prompts),
                do_sample=True,
                temperature=1.0,
                top_k=0,
                max_new_tokens=study.ANSWER_WIDTH + 2,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
            )
        for row, query in zip(out_ids[:, heldout.prompt_length :].tolist(), queries, strict=True):
            rewards.append(heldout.reward.score(study.cut_at_eos(row, tok.eos_token_id), query.answer))
    mean_reward, mean_metric = sum(rewards) / len(rewards), metric.mean().item()
    se = math.sqrt(max(mean_metric * (1 - mean_metric), 1e-4) / len(rewards))
    assert mean_metric > 0.01  # the base solves something, so the comparison means something
    assert abs(mean_reward - mean_metric) < 4 * se, (mean_reward, mean_metric)


# --------------------------------------------------------------------------- the quick study


def test_quick_writes_gate_and_headline_in_the_issue_schema(quick):
    out, results, _ = quick
    head = results["headline"]
    assert set(head) == {"gate", "arms"} and set(head["gate"]) == GATE_KEYS
    assert head["gate"]["seeds"] == results["settings"]["seeds_main"]
    assert isinstance(head["gate"]["passed"], bool) and head["gate"]["passed"] == results["gate"]["passed"]
    assert set(head["arms"]) == set(results["settings"]["arms"])
    for name, arm in head["arms"].items():
        assert set(arm) == HEADLINE_ARM_KEYS, name
        assert arm["seeds"] == results["settings"]["seeds_main"]
        assert 0 <= arm["seeds_reached"] <= arm["seeds"]
    assert head["arms"]["grpo"]["matched_flops_diff_mean"] == 0.0
    table = (out / "README_table.md").read_text()
    assert ("Gate (passed)" in table) == head["gate"]["passed"] and "`sgpo`" in table
    if not head["gate"]["passed"]:
        assert "--no-gate-stop: the ratios below mean nothing" in table


def test_quick_results_carry_what_the_simulator_validation_reads(quick):
    """Each pool's per-query counts, each arm's curation and each run's measured signal per rollout, which
    `benchmarks/validate_simulator.py --study` turns into a prediction per offline arm."""
    out, results, _ = quick
    settings = results["settings"]
    pool = results["pools"][settings["main_mix"]]
    assert len(pool["counts"]) == settings["pool_size"] and all(
        n == settings["k"] for _, _, n in pool["counts"]
    )
    assert {i for i, _, _ in pool["second_look_counts"]} == {i for i, c, _ in pool["counts"] if c == 0}
    assert set(results["curation"]) == set(settings["arms"])
    for run in results["runs"]:
        assert 0.0 <= run["signal_per_rollout"] <= 0.25, run["arm"]  # s·f/(s+f) <= (s+f)/4 per group
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(
        "validate_simulator", ROOT / "benchmarks" / "validate_simulator.py"
    )
    validator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(validator)
    rows, skipped = validator.study_rows(out)
    assert {r["arm"] for r in rows} == {"grpo", "grpo_drop", "sgpo"} and set(skipped) == {"online_knapsack"}
    for row in rows:
        assert row["measured"]["signal_per_rollout"] == pytest.approx(
            statistics.fmean(results["summary"][row["pool"]][row["arm"]]["signal_per_rollout"])
        )


def test_quick_curves_and_compute_are_consistent(quick):
    _, results, _ = quick
    runs = results["runs"]
    assert runs, "no runs recorded"
    grpo = [r for r in runs if r["arm"] == "grpo"]
    budget = sum(r["totals"]["training_flops"] for r in grpo) / len(grpo)
    for run in runs:
        flops = [p["total_flops"] for p in run["points"]]
        assert flops == sorted(flops) and len(set(flops)) == len(flops), (run["arm"], flops)
        assert math.isclose(run["points"][-1]["total_flops"], run["totals"]["total_flops"])
        uses_profile = study.ARMS[run["arm"]].uses_profile
        assert (run["totals"]["prior_flops"] > 0) == uses_profile, run["arm"]
        assert math.isclose(run["points"][0]["total_flops"], run["totals"]["prior_flops"])
        if run["arm"] != "grpo" and run["steps"] < 4 * results["settings"]["steps"]:
            one_pass = study.ARMS[run["arm"]].order == "easy-to-hard"
            assert one_pass or run["totals"]["training_flops"] >= budget, run["arm"]
        if study.ARMS[run["arm"]].drop_zero:
            assert run["totals"]["trained_tokens"] <= run["totals"]["rollout_tokens"]
    assert all(r["totals"]["trained_tokens"] == r["totals"]["rollout_tokens"] for r in grpo)


def test_report_only_rerenders_from_results_json_without_running(quick, tmp_path):
    out, results, _ = quick
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "results.json").write_text((out / "results.json").read_text())
    readme = tmp_path / "README.md"
    readme.write_text(f"# mine\n\n{study.README_START}\nold\n{study.README_END}\n\nkept\n")
    done = subprocess.run(
        # the quick study's gate failed; --no-gate-stop: exit 0 for a report of a failed gate
        [
            sys.executable,
            str(SCRIPT),
            "--report-only",
            "--no-gate-stop",
            "--out",
            str(copy),
            "--readme",
            str(readme),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((copy / "results.json").read_text()) == results  # nothing re-run, nothing changed
    assert (copy / "README_table.md").read_text() == (out / "README_table.md").read_text()
    text = readme.read_text()
    assert "old" not in text and text.startswith("# mine") and text.rstrip().endswith("kept")
    assert "re-allocation bound" in text
    assert not (copy / "work").exists()
    missing = subprocess.run(
        [sys.executable, str(SCRIPT), "--report-only", "--out", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode != 0 and "run the study first" in missing.stderr


def test_rerun_reuses_runs_and_a_failed_gate_reports_no_ratios(quick, tmp_path):
    out, results, _ = quick
    done = run_quick(out, "--gate-sds", "1e9")
    assert done.returncode == 2, done.stderr[-2000:]
    failed = json.loads((out / "results.json").read_text())
    assert failed["gate"]["passed"] is False and failed["headline"]["arms"] == {}
    assert "summary" not in failed and "GATE FAILED" in done.stderr
    reused = [r for r in failed["runs"] if r["arm"] == "grpo"]
    original = [r for r in results["runs"] if r["arm"] == "grpo"]
    assert [r["points"] for r in reused] == [r["points"] for r in original]  # cached, not retrained
    assert "pretraining the base model" not in done.stderr


# --------------------------------------------------------------------------- statistics


def run(points, seed=0, prior=0.0):
    return {
        "seed": seed,
        "prior_tokens": 0,
        "points": [
            {
                "total_flops": prior + x,
                "training_flops": x,
                "rollout_tokens": x,
                "tf": y,
                "acc": y,
                "tf_learnable": y,
            }
            for x, y in points
        ],
    }


def test_reach_ratio_and_censoring():
    import numpy as np

    grpo = [run([(0, 0.2), (10, 0.4), (20, 0.6)], s) for s in range(2)]
    fast = [run([(0, 0.2), (5, 0.4), (10, 0.6), (20, 0.7)], s) for s in range(2)]
    slow = [run([(0, 0.2), (10, 0.3), (20, 0.4)], s) for s in range(2)]
    g = study.curves_on_grid(grpo, "tf", "flops")
    f = study.reach(g, study.curves_on_grid(fast, "tf", "flops"), 1.0)
    assert (
        math.isclose(f["grpo_flops"], 20) and math.isclose(f["arm_flops"], 10) and math.isclose(f["ratio"], 2)
    )
    s = study.reach(g, study.curves_on_grid(slow, "tf", "flops"), 1.0)
    assert s["ratio"] is None and math.isclose(s["ratio_below"], 1.0)  # censored, bounded, not dropped
    interval = study.bootstrap_ratio(g, study.curves_on_grid(slow, "tf", "flops"), 1.0, 50, 0)
    assert interval["ci_low"] is None and interval["bootstrap_censored"] == 1.0
    assert study.first_crossing(np.array([0.0, 1.0]), np.array([0.0, 1.0]), 0.25) == 0.25


def test_profile_charge_shifts_the_curve_and_the_amortised_axis_removes_it():
    grpo = [run([(0, 0.2), (10, 0.4), (20, 0.6)], s) for s in range(2)]
    charged = [run([(0, 0.2), (10, 0.6)], s, prior=10.0) for s in range(2)]
    g = study.curves_on_grid(grpo, "tf", "flops")
    assert math.isclose(study.reach(g, study.curves_on_grid(charged, "tf", "flops"), 1.0)["ratio"], 1.0)
    g0 = study.curves_on_grid(grpo, "tf", "flops_amortised")
    free = study.reach(g0, study.curves_on_grid(charged, "tf", "flops_amortised"), 1.0)
    assert math.isclose(free["ratio"], 2.0)


def test_gate_and_bound():
    settings = study.Settings(gate_sds=3.0)
    steady = [run([(0, 0.4), (1, 0.8 + 0.01 * s)], s) for s in range(3)]
    assert study.gate(steady, settings)["passed"]
    noisy = [run([(0, 0.4), (1, y)], s) for s, y in enumerate((0.3, 0.9, 0.45))]
    assert not study.gate(noisy, settings)["passed"]
    bound = study.saving_bound({"zero_adv_rollouts": [0.5, 0.5], "hopeless_rollout_share": [0.4, 0.4]})
    assert math.isclose(bound["max_saving_if_zero_adv_wasted"], 2.0)
    assert math.isclose(bound["max_saving_if_hopeless_wasted"], 1 / 0.6)


def test_mix_counts_are_exact_and_pools_fill_bins_as_stated():
    mix = study.MIXES["smollm2"]
    for size in (16, 384, 511):
        counts = mix.counts(size)
        assert sum(counts.values()) == size
        assert all(abs(counts[b] - mix.shares.get(b, 0) * size) < 1 for b in study.BINS)
    assert mix.counts(16)["hopeless"] + mix.counts(16)["zero"] == 10  # SmolLM2 on MAWPS: 10 of 16 at p̂ = 0


# --------------------------------------------------------------------------- reproducibility


def test_pretraining_is_bit_identical_on_rerun(tmp_path):
    settings = study.Settings(
        hidden_size=32, num_layers=1, intermediate_size=64, pretrain_steps=6, pretrain_batch=16
    )
    hashes = []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        study.pretrain_base(settings, tmp_path / name)
        hashes.append(study.file_sha256(tmp_path / name / "model.safetensors"))
    assert hashes[0] == hashes[1]


def test_a_training_run_is_deterministic(quick, tmp_path):
    """Retraining one finished run from scratch gives the same curve: a rerun reproduces the committed numbers."""
    out, results, _ = quick
    saved = next(r for r in results["runs"] if r["arm"] == "grpo" and r["seed"] == 0)
    settings = study.replace(study.Settings(), **study.QUICK, out=str(out))
    prepared = study.prepare(settings)
    job = prepared.job(settings.main_mix, "grpo", 0, None, settings.steps)
    fresh = study.run_job(study.replace(job, path=str(tmp_path / "seed0.json")))
    assert fresh["points"] == saved["points"]
