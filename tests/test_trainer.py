"""Tests of `sgpo_curate.trainer` and `sgpo_curate.compute`: sampler exactness, per-group advantages against
a reference, real (tiny-model) CPU training in both modes, the compute summary, and a 2-process run."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from sgpo_curate.compute import COMPONENTS, ComputeLedger
from sgpo_curate.trainer import (
    AdaptiveGroupSampler,
    group_advantages,
    group_ids_from_rows,
    pack_groups,
    query_weights,
)

torch.set_num_threads(1)


# --------------------------------------------------------------------------- sampler


def _runs(indices: list[int]) -> list[tuple[int, int, int]]:
    """(row, start, length) of every run of equal consecutive indices."""
    runs, start = [], 0
    for i in range(1, len(indices) + 1):
        if i == len(indices) or indices[i] != indices[start]:
            runs.append((indices[start], start, i - start))
            start = i
    return runs


def test_pack_groups_keeps_whole_groups_and_pads_largest_first():
    batches = list(pack_groups(iter([(0, 2, 0), (1, 4, 0), (2, 6, 0), (3, 3, 0)]), 8))
    assert [[(g.row, g.group_size, g.padding) for g in b] for b in batches] == [
        [(0, 2, 1), (1, 4, 1)],  # row 2 (G=6) does not fit in the 2 free slots: one each, largest first
        [(2, 6, 2)],
        [(3, 3, 5)],  # a finite stream's last batch is padded too (the sampler's stream never ends)
    ]
    assert all(sum(g.rollouts for g in b) == 8 for b in batches)


@pytest.mark.parametrize("sizes", [[2, 2, 4, 8, 4, 2, 6, 4], [2, 3, 7, 5, 8, 2, 2, 6, 3, 4, 8, 8, 2]])
def test_sampler_each_row_group_size_times_in_order_batches_full(sizes):
    batch, repeat = 8, 2
    sampler = AdaptiveGroupSampler(sizes, batch_size=batch, repeat_count=repeat, shuffle=False)
    indices = list(sampler)
    assert len(indices) == len(sampler)
    # each generation batch is yielded `repeat` times in a row
    chunks = [indices[i : i + batch] for i in range(0, len(indices), batch)]
    assert all(len(c) == batch for c in chunks)
    assert all(chunks[i] == chunks[i + 1] for i in range(0, len(chunks), repeat))
    batches = chunks[::repeat]
    plan = sampler.plan(0)
    assert len(plan) == len(batches) == sampler.num_batches
    for packed, got in zip(plan, batches, strict=True):
        # no group split: each batch is exactly its groups' contiguous runs
        assert [(row, length) for row, _, length in _runs(got)] == [(g.row, g.rollouts) for g in packed]
        free_before_pad = batch - sum(g.group_size for g in packed)
        assert sum(g.padding for g in packed) == free_before_pad
    # over the stream (several Trainer epochs), query epoch 0 holds every row once, in dataset order, with
    # exactly its group_size planned rollouts; padding appears only where the next group did not fit
    stream_batches = [b for window in range(3) for b in sampler.plan(window)]
    stream = [g for b in stream_batches for g in b]
    first_epoch = [g for g in stream if g.epoch == 0]
    assert [g.row for g in first_epoch] == list(range(len(sizes)))
    assert [g.group_size for g in first_epoch] == sizes
    position = 0
    for b in stream_batches[:-1]:
        position += len(b)
        if any(g.padding for g in b):
            assert sum(g.padding for g in b) < stream[position].group_size


def test_sampler_tiling_sizes_have_no_padding():
    sizes = [2, 2, 4, 8, 4, 4, 8, 8, 2, 6, 8]  # sums to 56 = 7 batches of 8
    sampler = AdaptiveGroupSampler(sizes, batch_size=8, shuffle=False)
    indices = list(sampler)
    counts = {row: indices.count(row) for row in range(len(sizes))}
    assert counts == dict(enumerate(sizes))
    assert [row for row, _, _ in _runs(indices)] == list(range(len(sizes)))


def test_sampler_shuffle_is_seeded_and_covers_every_row_once_per_epoch():
    sizes = [4] * 12
    a = AdaptiveGroupSampler(sizes, batch_size=8, shuffle=True, seed=3)
    b = AdaptiveGroupSampler(sizes, batch_size=8, shuffle=True, seed=3)
    first, again = list(a), list(b)
    assert first == again  # same seed, same order on every process
    assert sorted(r for r, _, _ in _runs(first)) == list(range(12))
    assert [r for r, _, _ in _runs(first)] != list(range(12))
    a.set_epoch(1)
    assert list(a) != first  # a fresh permutation per epoch


# --------------------------------------------------------------------------- advantages


def _reference_advantages(rewards: list[float], sizes: list[int]) -> tuple[list[float], list[bool]]:
    out, zero, start = [], [], 0
    for size in sizes:
        group = rewards[start : start + size]
        valid = [r for r in group if not math.isnan(r)]
        mean = statistics.fmean(valid)
        std = statistics.stdev(valid) if len(valid) > 1 else 0.0
        zero.append(std == 0.0)
        out += [0.0 if math.isnan(r) else (r - mean) / (std + 1e-4) for r in group]
        start += size
    return out, zero


def test_group_advantages_match_per_group_reference():
    sizes = [2, 5, 3, 8, 2, 4]
    rewards = [1, 0, 0, 0, 1, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1, math.nan, 0.5, 0.5, 0, 1, 0.25, 1]
    rows = torch.tensor(
        [row for row, size in zip([4, 9, 1, 7, 4, 2], sizes, strict=True) for _ in range(size)]
    )
    group_ids, counts = group_ids_from_rows(rows)
    assert counts.tolist() == sizes
    got, zero = group_advantages(torch.tensor(rewards, dtype=torch.float32), group_ids, "group")
    expected, expected_zero = _reference_advantages([float(r) for r in rewards], sizes)
    torch.testing.assert_close(got, torch.tensor(expected), rtol=1e-4, atol=1e-4)
    assert zero.tolist() == expected_zero == [False, False, True, False, True, False]


def test_group_advantages_equal_trl_formula_for_uniform_groups():
    from trl.trainer.utils import nanstd

    torch.manual_seed(0)
    rewards = torch.randint(0, 2, (24,)).float()
    G = 4
    mean = rewards.view(-1, G).nanmean(dim=1).repeat_interleave(G)
    std = nanstd(rewards.view(-1, G), dim=1).repeat_interleave(G)
    trl_advantages = (rewards - mean) / (std + 1e-4)
    group_ids, counts = group_ids_from_rows(torch.arange(6).repeat_interleave(G))
    got, _ = group_advantages(rewards, group_ids, "group")
    torch.testing.assert_close(got, trl_advantages)
    assert torch.all(query_weights(group_ids, counts) == 1.0)  # uniform G: the default weighting is a no-op


def test_query_weights_make_every_group_weigh_the_same():
    group_ids, counts = group_ids_from_rows(torch.tensor([0, 0, 1, 1, 1, 1, 1, 1]))
    weights = query_weights(group_ids, counts)
    per_group = torch.zeros(2).index_add_(0, group_ids, weights)
    torch.testing.assert_close(per_group, torch.tensor([4.0, 4.0]))
    assert weights.mean().item() == pytest.approx(1.0)


# --------------------------------------------------------------------------- compute ledger


def test_compute_ledger_adds_up():
    ledger = ComputeLedger(num_params=1000, prior_flops=5e6)
    ledger.add_step(
        1, rollouts=8, groups=2, prompt_tokens=40, completion_tokens=30, update_passes=2, old_logps=True
    )
    ledger.add_step(2, rollouts=8, groups=3, prompt_tokens=44, completion_tokens=20, ref_logps=True)
    totals = ledger.totals()
    assert totals["generation_flops"] == 2 * 1000 * (70 + 64)
    assert totals["update_flops"] == 6 * 1000 * (70 * 2 + 64)
    assert totals["training_flops"] == sum(s.total_flops for s in ledger.steps)
    assert totals["total_flops"] == totals["training_flops"] + 5e6
    assert totals["rollouts"] == 16 and totals["tokens"] == 134


# --------------------------------------------------------------------------- real training on a tiny model


def _toy_dataset(n: int = 16, adaptive: bool = True):
    from datasets import Dataset

    rows = []
    for i in range(n):
        a, b = i % 7, (3 * i) % 5
        row = {"prompt": [{"role": "user", "content": f"{a}+{b}="}], "answer": str(a + b)}
        if adaptive:
            row["group_size"] = [2, 4, 6, 4][i % 4]
            row["curriculum_rank"] = i
        rows.append(row)
    return Dataset.from_list(rows)


def _digit_fraction_reward(completions, **kwargs):
    # Dense on purpose: a random tiny model almost never writes the answer, and a 3-step test needs signal.
    return [sum(ch.isdigit() for ch in c[0]["content"]) / max(1, len(c[0]["content"])) for c in completions]


def _train(tmp_path: Path, adaptive: bool, steps: int = 3):
    from sgpo_curate import AdaptiveGRPOConfig, AdaptiveGRPOTrainer
    from sgpo_curate.models import build_tiny_model

    model, tokenizer = build_tiny_model(hidden_size=32, num_layers=1, num_heads=2, seed=0)
    args = AdaptiveGRPOConfig(
        output_dir=str(tmp_path / ("adaptive" if adaptive else "uniform")),
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        report_to=[],
        save_strategy="no",
        max_steps=steps,
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=4,
        learning_rate=1e-2,
        logging_steps=1,
        seed=0,
        temperature=1.0,
        group_size_column="group_size" if adaptive else None,
        shuffle_dataset=not adaptive,
        prior_flops=1e6 if adaptive else 0.0,
    )
    trainer = AdaptiveGRPOTrainer(
        model=model,
        reward_funcs=_digit_fraction_reward,
        args=args,
        train_dataset=_toy_dataset(adaptive=adaptive),
        processing_class=tokenizer,
    )
    before = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    return trainer, before


@pytest.mark.parametrize("adaptive", [True, False], ids=["adaptive", "uniform"])
def test_three_cpu_steps_change_weights_and_write_a_summary_that_adds_up(tmp_path, adaptive):
    trainer, before = _train(tmp_path, adaptive)
    after = trainer.model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, "no parameter moved in 3 steps"
    logged = [entry for entry in trainer.state.log_history if "sgpo/frac_zero_adv_groups" in entry]
    assert len(logged) == 3 and all(0.0 <= e["sgpo/frac_zero_adv_groups"] <= 1.0 for e in logged)

    summary = json.loads((Path(trainer.args.output_dir) / "compute_summary.json").read_text())
    steps, totals = summary["steps"], summary["totals"]
    assert [s["step"] for s in steps] == [1, 2, 3]
    assert all(s["rollouts"] == 8 for s in steps)
    for s in steps:
        assert s["total_flops"] == pytest.approx(sum(s[c] for c in COMPONENTS))
        assert s["generation_flops"] == pytest.approx(2 * summary["num_params"] * s["tokens"])
        assert s["update_flops"] == pytest.approx(6 * summary["num_params"] * s["tokens"])
    assert totals["training_flops"] == pytest.approx(sum(s["total_flops"] for s in steps))
    assert totals["total_flops"] == pytest.approx(totals["training_flops"] + totals["prior_flops"])
    assert totals["prior_flops"] == (1e6 if adaptive else 0.0)
    assert logged[-1]["compute/total_flops"] == pytest.approx(totals["total_flops"])
    if adaptive:
        # curriculum order, no shuffle: the first batch holds rows 0-2 (G = 2, 4 and 6 -> 2 padded away)
        assert steps[0]["groups"] == 2
    else:
        assert all(s["groups"] == 2 for s in steps)


def test_config_rejects_groups_larger_than_a_generation_batch(tmp_path):
    from sgpo_curate import AdaptiveGRPOConfig

    with pytest.raises(ValueError, match="max_group_size"):
        AdaptiveGRPOConfig(
            output_dir=str(tmp_path),
            use_cpu=True,
            bf16=False,
            per_device_train_batch_size=8,
            num_generations=4,
            max_group_size=16,
        )
    with pytest.raises(ValueError, match="query_weighting"):
        AdaptiveGRPOConfig(
            output_dir=str(tmp_path),
            use_cpu=True,
            bf16=False,
            per_device_train_batch_size=8,
            num_generations=4,
            query_weighting="token",
        )


# --------------------------------------------------------------------------- accelerate, 2 processes

TWO_PROCESS_SCRIPT = textwrap.dedent(
    """
    import json, sys, torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests_dir!r})
    from test_trainer import _toy_dataset, _digit_fraction_reward
    from sgpo_curate import AdaptiveGRPOConfig, AdaptiveGRPOTrainer
    from sgpo_curate.models import build_tiny_model

    model, tokenizer = build_tiny_model(hidden_size=32, num_layers=1, num_heads=2, seed=0)
    args = AdaptiveGRPOConfig(output_dir={out!r}, use_cpu=True, bf16=False, gradient_checkpointing=False,
        report_to=[], save_strategy="no", max_steps=2, per_device_train_batch_size=4, num_generations=4,
        max_completion_length=4, learning_rate=1e-2, logging_steps=1, seed=0, shuffle_dataset=False)
    trainer = AdaptiveGRPOTrainer(model=model, reward_funcs=_digit_fraction_reward, args=args,
                                  train_dataset=_toy_dataset(), processing_class=tokenizer)
    trainer.train()
    plan = trainer._get_train_sampler().plan(0)
    if trainer.accelerator.is_main_process:
        with open({out!r} + "/plan.json", "w") as f:
            json.dump([[g.rollouts for g in b] for b in plan], f)
    """
)


@pytest.mark.slow
def test_accelerate_two_cpu_processes(tmp_path):
    out = str(tmp_path / "run")
    script = tmp_path / "train_two.py"
    script.write_text(TWO_PROCESS_SCRIPT.format(tests_dir=str(Path(__file__).parent), out=out))
    # `accelerate launch --cpu --num_processes 2` starts ONE process in accelerate 1.15 (its CPU launcher only
    # fans out through mpirun with a hostfile); the torchrun-based launcher with no visible GPU gives two
    # gloo-connected CPU processes (DistributedType.MULTI_CPU).
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "CUDA_VISIBLE_DEVICES": "",
    }
    accelerate = [sys.executable, "-m", "accelerate.commands.launch"]
    result = subprocess.run(
        [
            *accelerate,
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            str(script),
        ],
        capture_output=True,
        text=True,
        timeout=110,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads(Path(out, "compute_summary.json").read_text())
    plan = json.loads(Path(out, "plan.json").read_text())
    assert summary["num_processes"] == 2 and summary["generation_batch_size"] == 8
    # the groups each step regrouped from both processes match the sampler's plan
    assert [s["groups"] for s in summary["steps"]] == [len(b) for b in plan[:2]]
    assert all(s["rollouts"] == 8 for s in summary["steps"])
