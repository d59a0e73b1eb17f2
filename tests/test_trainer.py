"""Tests of `sgpo_curate.trainer` and `sgpo_curate.compute` through real (tiny-model) CPU training.

What they guard, each against numbers computed here independently of the trainer's code:
- the advantages the trainer actually trains on (what `_generate_and_score_completions` hands TRL's loss) equal
  a per-group reference on the rewards the reward function returned, times the query weights, sliced per
  process, with unscorable rewards left out of their group's statistics; in 1 and in 2 processes;
- both processes of a 2-process run take identical allocation decisions;
- dropping zero-advantage rollouts leaves the parameters after each step as without dropping, for every
  supported loss type (with SGD: Adam's first step would hide a wrong loss scale);
- the ledger charges generated tokens from the generated ids, trained tokens only for what was trained, and the
  old-policy and reference forwards when TRL computes them;
- every allocation mode trains and writes its p̂ trace and compute summary; a resumed run plans as an
  uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest
import torch

from sgpo_curate.compute import COMPONENTS, ComputeLedger
from sgpo_curate.trainer import (
    LOSS_NORMALISERS,
    AdaptiveGRPOConfig,
    AdaptiveGRPOTrainer,
    group_advantages,
    keep_rows,
    loss_correction,
    plan_group_ids,
    query_weights,
)

torch.set_num_threads(1)
TESTS_DIR = str(Path(__file__).parent)


# --------------------------------------------------------------------------- parts


def toy_dataset(n: int = 16, sizes=(2, 4, 6, 4)):
    from datasets import Dataset

    rows = []
    for i in range(n):
        a, b = i % 7, (3 * i) % 5
        rows.append(
            {
                "id": f"toy/{i}",
                "prompt": [{"role": "user", "content": f"{a}+{b}="}],
                "answer": str(a + b),
                "group_size": sizes[i % len(sizes)],
                "num_correct": i % 5,
                "num_samples": 4,
                "curriculum_rank": i,
            }
        )
    return Dataset.from_list(rows)


class RecordingReward:
    """A deterministic reward that records what it returned. Queries whose answer is a multiple of 3 are
    hopeless (always 0: their groups have zero advantage); on the others the reward is a pseudo-random function
    of the completion's text (a CRC), 1 with probability about `rate`, and None (unscorable) for about one
    completion in six."""

    __name__ = "recording"

    def __init__(self, rate: float = 0.5, unscorable: bool = True):
        self.rate, self.unscorable = rate, unscorable
        self.calls: list[dict] = []

    def __call__(self, completions, completion_ids, answer, **kwargs):
        rewards = []
        for completion, gold in zip(completions, answer, strict=True):
            crc = zlib.crc32(completion[0]["content"].encode())
            if int(gold) % 3 == 0:
                rewards.append(0.0)
            elif self.unscorable and crc % 6 == 0:
                rewards.append(None)
            else:
                rewards.append(float((crc // 6) % 100 < 100 * self.rate))
        self.calls.append({"rewards": rewards, "generated": [len(ids) for ids in completion_ids]})
        return rewards


class CapturingTrainer(AdaptiveGRPOTrainer):
    """Records every training batch exactly as TRL's loss receives it, with the plan behind it."""

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        if self.model.training:
            self.captured = getattr(self, "captured", [])
            self.captured.append(
                {
                    "plan": [[g.row, g.rollouts] for g in self.planner.last_plan],
                    "advantages": output["advantages"].tolist(),
                    "tokens": (output["prompt_mask"].sum(1) + output["completion_mask"].sum(1)).tolist(),
                }
            )
        return output


def make_trainer(
    tmp_path, reward=None, dataset=None, trainer_class=CapturingTrainer, name="run", **overrides
):
    from sgpo_curate.models import build_tiny_model, save_tiny_model

    if overrides.get("beta"):  # TRL loads the reference model from the policy's path
        from transformers import AutoTokenizer

        model = str(save_tiny_model(tmp_path / "tiny", hidden_size=32, num_layers=1, num_heads=2, seed=0))
        tokenizer = AutoTokenizer.from_pretrained(model)
    else:
        model, tokenizer = build_tiny_model(hidden_size=32, num_layers=1, num_heads=2, seed=0)
    settings = dict(
        output_dir=str(tmp_path / name),
        use_cpu=True,
        bf16=False,
        report_to=[],
        save_strategy="no",
        max_steps=3,
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=4,
        learning_rate=1e-2,
        logging_steps=1,
        seed=0,
        disable_tqdm=True,
    )
    settings.update(overrides)
    return trainer_class(
        model=model,
        reward_funcs=reward or RecordingReward(),
        args=AdaptiveGRPOConfig(**settings),
        train_dataset=dataset if dataset is not None else toy_dataset(),
        processing_class=tokenizer,
    )


def reference_advantages(rewards: list[float | None], sizes: list[int], weighting: str) -> list[float]:
    """GRPO advantages per group written out by hand: (r - mean) / (std + 1e-4) over the scorable rewards,
    0 for unscorable ones, times n / (K * |group|) when every query weighs the same."""
    out, start, n, k = [], 0, sum(sizes), len(sizes)
    for size in sizes:
        group = rewards[start : start + size]
        valid = [r for r in group if r is not None]
        mean = statistics.fmean(valid) if valid else 0.0
        std = statistics.stdev(valid) if len(valid) > 1 else 0.0
        weight = n / (k * size) if weighting == "query" else 1.0
        out += [0.0 if r is None else weight * (r - mean) / (std + 1e-4) for r in group]
        start += size
    return out


# --------------------------------------------------------------------------- pure helpers


def test_plan_group_ids_and_query_weights():
    from sgpo_curate.allocation import PlannedGroup

    ids = plan_group_ids([PlannedGroup(4, 2), PlannedGroup(4, 3, padding=1), PlannedGroup(0, 2)])
    assert ids.tolist() == [0, 0, 1, 1, 1, 1, 2, 2]  # the same row twice stays two groups
    weights = query_weights(ids, torch.bincount(ids))
    per_group = torch.zeros(3).index_add_(0, ids, weights)
    torch.testing.assert_close(per_group, torch.full((3,), 8 / 3))
    assert weights.mean().item() == pytest.approx(1.0)


def test_group_advantages_equal_trl_formula_for_uniform_groups():
    from trl.trainer.utils import nanstd

    torch.manual_seed(0)
    rewards = torch.randint(0, 2, (24,)).float()
    mean = rewards.view(-1, 4).nanmean(dim=1).repeat_interleave(4)
    std = nanstd(rewards.view(-1, 4), dim=1).repeat_interleave(4)
    ids = torch.arange(6).repeat_interleave(4)
    got, _ = group_advantages(rewards, ids, "group")
    torch.testing.assert_close(got, (rewards - mean) / (std + 1e-4))
    assert torch.all(query_weights(ids, torch.bincount(ids)) == 1.0)


def test_loss_correction_and_kept_rows():
    assert keep_rows(torch.tensor([0.0, 0.5, 0.0, 0.0, -1.0]), 3).tolist() == [0, 1, 4]
    assert keep_rows(torch.tensor([[0.0, 0.0], [0.0, 2.0]]), 1).tolist() == [1]
    assert set(LOSS_NORMALISERS.values()) == {"rows", "tokens", "batch"}
    assert loss_correction("bnpo", 8, 3, tokens=40, kept_tokens=10) == 0.25
    assert loss_correction("dr_grpo", 8, 2, tokens=40, kept_tokens=10) == 0.25


def test_compute_ledger_adds_up():
    ledger = ComputeLedger(num_params=1000, prior_flops=5e6)
    ledger.add_generation(
        1, rollouts=8, groups=2, prompt_tokens=40, completion_tokens=30, old_logps_tokens=70
    )
    ledger.add_trained(rollouts=8, tokens=70)
    ledger.add_trained(rollouts=8, tokens=70)  # a second update pass
    ledger.add_generation(
        2, rollouts=8, groups=3, prompt_tokens=44, completion_tokens=20, ref_logps_tokens=64
    )
    ledger.add_trained(rollouts=3, tokens=25)
    totals = ledger.totals()
    assert totals["generation_flops"] == 2 * 1000 * (70 + 64)
    assert totals["update_flops"] == 6 * 1000 * (140 + 25)
    assert totals["old_logps_flops"] == 2 * 1000 * 70 and totals["ref_logps_flops"] == 2 * 1000 * 64
    assert totals["total_flops"] == 1000 * (2 * 134 + 6 * 165 + 2 * 134) + 5e6
    assert totals["rollouts"] == 16 and totals["trained_rollouts"] == 19 and totals["rollout_tokens"] == 134
    with pytest.raises(RuntimeError):
        ComputeLedger(num_params=1).add_trained(1, 1)


# --------------------------------------------------------------------------- advantages actually used


@pytest.mark.parametrize("weighting", ["query", "rollout"])
def test_trained_advantages_equal_the_per_group_reference(tmp_path, weighting):
    reward = RecordingReward()
    trainer = make_trainer(tmp_path, reward, query_weighting=weighting, shuffle_dataset=False)
    trainer.train()
    assert len(trainer.captured) == len(reward.calls) == 3
    unscorable = 0
    for batch, call in zip(trainer.captured, reward.calls, strict=True):
        sizes = [rollouts for _, rollouts in batch["plan"]]
        assert sum(sizes) == len(call["rewards"]) == 8
        expected = reference_advantages(call["rewards"], sizes, weighting)
        assert batch["advantages"] == pytest.approx(expected, abs=1e-4)
        unscorable += sum(r is None for r in call["rewards"])
    assert unscorable > 0, "the test must exercise unscorable rewards"
    # the curriculum order of the curated column: rows 0, 1 (G=2, 4; the G=6 row does not fit), then row 2
    assert [row for row, _ in trainer.captured[0]["plan"]] == [0, 1]
    assert [row for row, _ in trainer.captured[1]["plan"]] == [2]


TWO_PROCESS_SCRIPT = textwrap.dedent(
    """
    import json, sys, torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests_dir!r})
    from pathlib import Path
    from test_trainer import RecordingReward, make_trainer

    reward = RecordingReward()
    trainer = make_trainer(Path({out!r}), reward, max_steps=3, per_device_train_batch_size=4,
                           group_size_rule="knapsack", online_pass_rate=True, queries_per_batch=3,
                           max_group_size=4, learning_rate=1e-2)
    trainer.train()
    rank = trainer.accelerator.process_index
    Path({out!r}, f"rank{{rank}}.json").write_text(json.dumps({{"captured": trainer.captured, "calls": reward.calls}}))
    # A gloo group left alive at interpreter exit can abort a process ("terminate called without an active
    # exception", seen once in CI after both ranks had finished): close it as a launcher script should.
    trainer.accelerator.wait_for_everyone()
    torch.distributed.destroy_process_group()
    """
)


@pytest.mark.slow
def test_two_cpu_processes_take_the_same_decisions_and_their_own_slice(tmp_path):
    out = tmp_path / "two"
    out.mkdir()
    script = tmp_path / "train_two.py"
    script.write_text(TWO_PROCESS_SCRIPT.format(tests_dir=TESTS_DIR, out=str(out)))
    # `accelerate launch --cpu --num_processes 2` starts ONE process in accelerate 1.15; the torchrun-based
    # launcher with no visible GPU gives two gloo-connected CPU processes.
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "CUDA_VISIBLE_DEVICES": "",
    }
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    command += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(script)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    steps = len(ranks[0]["captured"])
    assert steps == 3
    for step in range(steps):
        plans = [rank["captured"][step]["plan"] for rank in ranks]
        assert plans[0] == plans[1], "the processes planned different batches"
        rewards = ranks[0]["calls"][step]["rewards"] + ranks[1]["calls"][step]["rewards"]
        expected = reference_advantages(rewards, [size for _, size in plans[0]], "query")
        for rank_index, rank in enumerate(ranks):
            local = expected[rank_index * 4 : (rank_index + 1) * 4]
            assert rank["captured"][step]["advantages"] == pytest.approx(local, abs=1e-4)
    summary = json.loads((out / "run" / "compute_summary.json").read_text())
    assert summary["num_processes"] == 2
    assert [s["rollouts"] for s in summary["steps"]] == [8, 8, 8]
    assert summary["totals"]["completion_tokens"] == sum(
        sum(call["generated"]) for rank in ranks for call in rank["calls"]
    )


# --------------------------------------------------------------------------- dropping zero-advantage rollouts


LOSS_SETTINGS = {
    "grpo": {},
    "bnpo": {},
    "dr_grpo": {},
    "dapo": {},
    "cispo": {},
    "sapo": {},
    "luspo": {"importance_sampling_level": "sequence"},
    "vespo": {},
}


@pytest.mark.parametrize("loss_type", sorted(LOSS_SETTINGS))
def test_dropping_zero_advantage_rollouts_leaves_the_update_unchanged(tmp_path, loss_type):
    assert set(LOSS_SETTINGS) == set(LOSS_NORMALISERS)
    common = dict(
        loss_type=loss_type,
        optim="sgd",
        learning_rate=0.5,
        max_steps=2,
        per_device_train_batch_size=16,
        group_size_column=None,
        **LOSS_SETTINGS[loss_type],
    )
    runs = {}
    for drop in (False, True):
        trainer = make_trainer(
            tmp_path,
            RecordingReward(unscorable=False),
            name=f"drop{drop}",
            drop_zero_advantage_groups=drop,
            **common,
        )
        trainer.train()
        runs[drop] = trainer
    kept, full = runs[True], runs[False]
    assert (
        kept.captured[0]["advantages"] == full.captured[0]["advantages"]
    )  # the same rollouts were generated
    for name, value in full.model.state_dict().items():
        torch.testing.assert_close(kept.model.state_dict()[name], value, rtol=1e-5, atol=1e-6, msg=name)
    moved = any(
        not torch.equal(v, make_trainer(tmp_path, name="init").model.state_dict()[k])
        for k, v in full.model.state_dict().items()
    )
    assert moved, "SGD never moved the weights: the comparison would prove nothing"
    totals = kept.compute_summary()["totals"]
    assert totals["trained_rollouts"] < totals["rollouts"], (
        "nothing was dropped: pick a reward with flat groups"
    )
    # trained tokens are exactly those of the rows with a non-zero advantage (at least one row per batch)
    expected = 0
    for batch in kept.captured:
        signal = [t for t, a in zip(batch["tokens"], batch["advantages"], strict=True) if a != 0]
        expected += sum(signal) if signal else batch["tokens"][0]
    assert totals["trained_tokens"] == expected
    assert full.compute_summary()["totals"]["trained_tokens"] == sum(sum(b["tokens"]) for b in full.captured)


def test_drop_refuses_settings_where_it_would_not_be_exact(tmp_path):
    base = dict(
        output_dir=str(tmp_path), use_cpu=True, bf16=False, per_device_train_batch_size=8, num_generations=4
    )
    with pytest.raises(ValueError, match="beta"):
        AdaptiveGRPOConfig(**base, drop_zero_advantage_groups=True, beta=0.04)
    with pytest.raises(ValueError, match="entropy"):
        AdaptiveGRPOConfig(**base, drop_zero_advantage_groups=True, top_entropy_quantile=0.5)


# --------------------------------------------------------------------------- the ledger


def test_ledger_charges_generated_tokens_extra_forwards_and_every_update_pass(tmp_path):
    reward = RecordingReward(unscorable=False)
    trainer = make_trainer(
        tmp_path,
        reward,
        beta=0.04,  # a reference forward
        num_iterations=2,  # old-policy log-probs and two update passes per generation
        max_steps=4,  # two generations, each trained twice
        mask_truncated_completions=True,  # truncated completions leave the loss, not the generation bill
        max_completion_length=3,
        prior_flops=1e6,
    )
    trainer.train()
    summary = json.loads((Path(trainer.args.output_dir) / "compute_summary.json").read_text())
    steps, totals, n = summary["steps"], summary["totals"], summary["num_params"]
    assert n == trainer.model.num_parameters() and trainer.ref_model is not None
    generations = [call for call in reward.calls]
    assert len(steps) == len(generations) == len(trainer.captured)
    for step, call, batch in zip(steps, generations, trainer.captured, strict=True):
        assert step["completion_tokens"] == sum(call["generated"])  # from the generated ids
        scored = sum(batch["tokens"])  # prompt + completion tokens TRL's forwards see
        assert step["old_logps_tokens"] == step["ref_logps_tokens"] == scored
        assert step["trained_tokens"] == 2 * scored and step["trained_rollouts"] == 16
        assert step["generation_flops"] == 2 * n * (step["prompt_tokens"] + step["completion_tokens"])
        assert step["update_flops"] == 6 * n * 2 * scored and step["ref_logps_flops"] == 2 * n * scored
    assert sum(call["generated"][i] for call in generations for i in range(8)) > totals[
        "trained_tokens"
    ] / 2 - sum(step["prompt_tokens"] for step in steps), (
        "some completion must have been truncated and masked out of the loss"
    )
    assert totals["total_flops"] == pytest.approx(sum(s["total_flops"] for s in steps) + 1e6)
    assert set(COMPONENTS) <= set(totals)


# --------------------------------------------------------------------------- allocation modes


MODES = {
    "sgpo-column-one-pass": dict(shuffle_dataset=False, curriculum_schedule="one-pass"),
    "online-uniform": dict(
        group_size_column=None, online_pass_rate=True, park_below=0.2, reprobe_fraction=0.25
    ),
    "knapsack-online": dict(group_size_rule="knapsack", online_pass_rate=True, queries_per_batch=3),
    "coverage-drop": dict(group_size_rule="coverage", drop_zero_advantage_groups=True),
    "signal-selection": dict(group_size_rule="inverse", query_selection="signal", online_pass_rate=True),
    "dynamic-sampling": dict(group_size_column=None, dynamic_sampling=True, dynamic_sampling_max_rounds=3),
}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_each_allocation_mode_trains_and_writes_its_trace_and_summary(tmp_path, mode):
    import pandas as pd

    reward = RecordingReward()
    trainer = make_trainer(tmp_path, reward, max_steps=4, **MODES[mode])
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    out = Path(trainer.args.output_dir)
    summary = json.loads((out / "compute_summary.json").read_text())
    trace = pd.read_parquet(out / "pass_rate_trace.parquet")
    generated = sum(len(call["rewards"]) for call in reward.calls)
    assert summary["totals"]["rollouts"] == generated == trace["rollouts"].sum()
    assert set(trace["step"]) == {1, 2, 3, 4}
    assert (trace.groupby(["step", "round"])["rollouts"].sum() == 8).all()  # every batch exactly full
    assert trace["id"].str.startswith("toy/").all()
    scored = [r for call in reward.calls for r in call["rewards"] if r is not None]
    assert trace["successes"].sum() == sum(scored) and (trace["successes"] + trace["failures"]).sum() == len(
        scored
    )
    assert summary["totals"]["trained_rollouts"] <= summary["totals"]["rollouts"]
    if mode == "dynamic-sampling":
        assert generated > 4 * 8 and summary["totals"]["trained_rollouts"] == 4 * 8
    if mode == "sgpo-column-one-pass":
        starts = trace.groupby("step")["row"].min().tolist()
        assert starts == sorted(starts) and starts[0] == 0 and starts[-1] >= 12  # one walk, easy to hard
    if mode == "knapsack-online":  # posteriors start from the profile's counts, then add the rollouts
        first = trace.drop_duplicates("row")
        prior = (first["alpha"] - 1 - first["successes"]) / trainer.args.pass_rate_forgetting
        assert prior.round(6).tolist() == [i % 5 for i in first["row"]]  # toy_dataset's num_correct
    if mode == "online-uniform":
        assert trace["alpha"].gt(1).any() and trace["parked"].any() and trace["probe"].any()


def test_a_resumed_run_plans_and_charges_as_an_uninterrupted_one(tmp_path):
    mode = dict(group_size_rule="knapsack", online_pass_rate=True, queries_per_batch=3, max_steps=4)
    whole = make_trainer(tmp_path, name="whole", **mode)
    whole.train()
    first = make_trainer(tmp_path, name="parts", save_strategy="steps", save_steps=2, **mode)
    first.train()
    resumed = make_trainer(tmp_path, name="parts", save_strategy="steps", save_steps=2, **mode)
    resumed.train(resume_from_checkpoint=str(tmp_path / "parts" / "checkpoint-2"))
    assert resumed.captured == whole.captured[2:]
    assert resumed.compute_summary()["steps"] == whole.compute_summary()["steps"]


def test_config_checks_name_the_field_and_the_fix(tmp_path):
    base = dict(
        output_dir=str(tmp_path), use_cpu=True, bf16=False, per_device_train_batch_size=8, num_generations=4
    )
    with pytest.raises(ValueError, match="max_group_size"):
        AdaptiveGRPOConfig(**base, max_group_size=16)
    with pytest.raises(ValueError, match="query_weighting"):
        AdaptiveGRPOConfig(**base, query_weighting="token")
    with pytest.raises(ValueError, match="curriculum_schedule"):
        AdaptiveGRPOConfig(**base, curriculum_schedule="sawtooth")
    with pytest.raises(KeyError, match="valid group-size rules"):
        AdaptiveGRPOConfig(**base, group_size_rule="nope")
    with pytest.raises(ValueError, match="queries_per_batch"):
        AdaptiveGRPOConfig(**base, group_size_rule="knapsack", queries_per_batch=5)  # 5 x 2 > 8
    with pytest.raises(ValueError, match="dynamic_sampling"):
        AdaptiveGRPOConfig(**base, dynamic_sampling=True, group_size_rule="inverse")
    with pytest.raises(TypeError, match="map-style"):
        make_trainer(tmp_path, dataset=toy_dataset().to_iterable_dataset())
    assert math.isclose(AdaptiveGRPOConfig(**base).planner_settings().budget, 8)


def test_the_model_card_says_what_data_allocation_and_compute_made_the_checkpoint(tmp_path):
    """README.md beside compute_summary.json: the curated config trained on, the allocation settings, the
    compute totals with the profiling FLOPs charged, all as the compute summary has them."""
    import curation_helpers as helpers
    from datasets import load_dataset
    from huggingface_hub import ModelCard

    from sgpo_curate.curation import CurateConfig, curate, write_curated

    pool = [helpers.make_profile(i, c, k=4) for i, c in enumerate((1, 2, 3, 1, 2, 3, 1, 2))]
    write_curated(curate(pool, CurateConfig(config_name="tiny", g_max=8)), tmp_path / "ds", helpers.RUN_INFO)
    dataset = load_dataset(str(tmp_path / "ds"), "tiny", split="train", cache_dir=str(tmp_path / "cache"))
    dataset = dataset.rename_column("answer", "gold").add_column(
        "answer", [str(i) for i in range(len(dataset))]
    )
    trainer = make_trainer(
        tmp_path, dataset=dataset, prior_flops=2.5e9, max_steps=2, drop_zero_advantage_groups=True
    )
    trainer.train()
    out = Path(trainer.args.output_dir)
    totals = json.loads((out / "compute_summary.json").read_text())["totals"]
    card = ModelCard.load(out / "README.md")
    assert "arxiv:2606.08854" in card.data.tags and "sgpo-curate" in card.data.tags
    text = card.text
    assert "| dataset | `ds` |" in text and "| config | `tiny` |" in text
    assert "the dataset's `group_size` column" in text and "not trained (the update is the same" in text
    assert f"| profiling (charged) | | {totals['prior_flops']:.3g} |" in text and "2.5e+09" in text
    assert f"**{totals['total_flops']:.3g}**" in text
    assert (
        f"| generated rollouts ({int(totals['rollout_tokens']):,} tokens) | {int(totals['rollouts']):,} |"
        in text
    )
