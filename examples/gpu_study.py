"""The savings study's main arms on a real instruct model and real bundled data, on one GPU.

What it measures: held-out accuracy under the project's math reward against cumulative FLOPs and tokens for
the main arms of the CPU study (`examples/reproduce_savings.py`), all trained by `AdaptiveGRPOTrainer`
through TRL's plain transformers generation (HF `generate`, no vLLM), from the same base model, with the same
seeds, the same held-out set and the same rollouts per step:

- `grpo`: plain GRPO, G = `group_size` for every query of the whole pool, shuffled;
- `grpo_drop_zero`: the same, zero-advantage groups skip the forward and backward (`drop_zero_advantage_groups`);
- `sgpo`: sGPO as published: offline profile -> `curate` (drop p̂ = 1, keep 25% of p̂ = 0, G = ceil(1/p̂),
  easy-to-hard) -> the `group_size` column, one pass through the curriculum; the profile is charged;
- `knapsack`: online p̂ from a flat prior (no profile) and a knapsack split of every batch's rollouts;
- `dapo`: DAPO dynamic sampling (all-equal groups discarded and regenerated, every rollout charged).

Steps:
 1. Data: a pool (training queries) and an i.i.d. held-out set drawn disjointly from one bundled source (default
    `arithmetic`, generated word problems) with a seeded permutation, in the quickstart's prompt: one worked
    example that ends in `\\boxed{}`, the form the strict reward (TRL's accuracy_reward) extracts.
 2. Base: the bundled SmolLM2-135M-Instruct (converted from its GGUF once), or a tiny Llama built from config
    (`--tiny`, the test path).
 3. Profile the pool with `profile` (k samples per query, the transformers sampler, the math verifier):
    histogram and FLOPs, charged to `sgpo` (results also give every ratio without it: a published profile
    is paid once).
 4. Train every (arm, seed) in its own process, several at once on the one GPU (a 135M model leaves it mostly
    idle). Every `eval_every` steps: held-out accuracy at the rollouts' temperature (`eval_samples` per query,
    the same sampling seed at every evaluation) and greedy, scored by the training reward. A deadline stops every run
    at the same wall-clock time (recorded), so the command ends inside its limit.
 5. Report like the CPU study: a go/no-go gate (GRPO's held-out gain >= 3 seed SDs), FLOPs and tokens to reach
    50/75/100% of GRPO's final gain (censored seeds counted, not dropped), the paired difference to GRPO at
    GRPO's final FLOPs with a 95% interval, zero-advantage shares, the `headline` object; `results.json`,
    `results.md` and `savings.png` in `--out` (three files: they come back from the GPU machine).

Run:
    python examples/gpu_study.py --out runs/gpu-study                      # needs CUDA: ~8.5 min on one H200
    python examples/gpu_study.py --tiny --device cpu --out /tmp/gpu-tiny   # any machine, ~30 s: the test's path
On the GPU machine (no network, wheels and the model carried in two commands): README "On a GPU",
`scripts/gpu_pack.sh` here and `scripts/gpu_device.sh` there. `--help` lists every stated input.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import random
import statistics
import sys
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from sgpo_curate import (  # noqa: E402
    AdaptiveGRPOConfig,
    AdaptiveGRPOTrainer,
    CurateConfig,
    ProfileConfig,
    Query,
    SamplingConfig,
    VerifierReward,
    curate,
    get_sampler,
    get_verifier,
    load_profiles,
    load_queries,
    profile,
)
from sgpo_curate.pipeline import QUICKSTART_PROMPT  # noqa: E402

logger = logging.getLogger("gpu_study")

ARMS = {
    "grpo": "plain GRPO: one G for every query of the whole pool, shuffled",
    "grpo_drop_zero": "plain GRPO, zero-advantage groups not trained (exact with beta = 0)",
    "sgpo": "sGPO as published: profile -> curate (filter, G = ceil(1/p̂), easy-to-hard) -> group_size, one pass",
    "knapsack": "online p̂ from a flat prior, knapsack split of each batch (no profile)",
    "dapo": "DAPO dynamic sampling: all-equal groups regenerated, every rollout charged",
}
CURATED_ARMS = ("sgpo",)  # arms that train on the curated set and are charged the profile
TARGET_FRACTIONS = (0.5, 0.75, 1.0)
METRICS = ("accuracy", "greedy_accuracy")
EVAL_SEED = 1234  # the same sampling noise at every evaluation (common random numbers)


@dataclass(frozen=True)
class Settings:
    """Every stated input of a run (written to results.json). Defaults: one H200, about 8.5 minutes."""

    out: str
    work: str | None = None  # scratch (profiles, trainer folders); default OUT/work
    model: str = "smollm2-135m-instruct"
    tiny: bool = False
    device: str = "cuda"
    source: str = "arithmetic"
    pool_size: int = 512
    eval_size: int = 160
    k: int = 8
    arms: tuple[str, ...] = tuple(ARMS)
    seeds: tuple[int, ...] = (0, 1)
    steps: int = 50
    rollouts_per_step: int = 256
    micro_batch: int = 32
    group_size: int = 8
    g_min: int = 2
    g_max: int = 16
    unsolvable_keep_fraction: float = 0.25
    knapsack_queries: int = 64
    dapo_max_rounds: int = 4
    learning_rate: float = 1e-5
    warmup_steps: int = 5
    max_completion_length: int = 128
    # The quickstart's measured choice: at 0.5 this model's pass rates on `arithmetic` spread across (0, 1)
    # far more than at 1.0 (benchmarks/results/quickstart_prompts.md has the measured histograms).
    temperature: float = 0.5
    eval_every: int = 10
    eval_samples: int = 4
    eval_greedy: bool = True
    eval_batch_queries: int = 80
    profile_batch_queries: int = 64
    workers: int = 10
    verifier_workers: int = 1
    profile_verifier_workers: int = 4
    deadline_s: float = 450.0

    def __post_init__(self) -> None:
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown:
            raise ValueError(f"unknown arms {unknown}; valid: {', '.join(ARMS)}")
        if "grpo" not in self.arms:
            raise ValueError("the arms must include 'grpo': every comparison is to plain GRPO")
        if self.rollouts_per_step % self.micro_batch:
            raise ValueError(
                f"rollouts_per_step ({self.rollouts_per_step}) must be a multiple of micro_batch ({self.micro_batch})"
            )
        if self.eval_every < 1 or self.steps < 1:
            raise ValueError("steps and eval_every must be >= 1")
        if not 2 <= self.g_min <= self.group_size <= self.g_max <= self.rollouts_per_step:
            raise ValueError(
                f"need 2 <= g_min ({self.g_min}) <= group_size ({self.group_size}) <= g_max ({self.g_max}) <= "
                f"rollouts_per_step ({self.rollouts_per_step}): a group must fit in one generation batch"
            )
        if self.rollouts_per_step % self.group_size:
            raise ValueError(
                f"group_size ({self.group_size}) must divide rollouts_per_step ({self.rollouts_per_step})"
            )
        if (
            not self.knapsack_queries * self.g_min
            <= self.rollouts_per_step
            <= self.knapsack_queries * self.g_max
        ):
            raise ValueError(
                f"knapsack splits {self.rollouts_per_step} rollouts over knapsack_queries={self.knapsack_queries}: "
                f"need knapsack_queries * g_min <= rollouts_per_step <= knapsack_queries * g_max"
            )


# A few queries, two steps per arm, a character-level model built from config: the whole code path in
# seconds (the test runs it on CPU; stage 1 on the GPU machine runs it on CUDA before the long command).
TINY = dict(
    tiny=True,
    pool_size=8,
    eval_size=4,
    k=2,
    seeds=(0,),
    steps=2,
    rollouts_per_step=8,
    micro_batch=4,
    group_size=4,
    g_max=8,
    knapsack_queries=4,
    dapo_max_rounds=2,
    max_completion_length=8,
    eval_every=2,
    eval_samples=2,
    eval_batch_queries=4,
    profile_batch_queries=4,
    workers=1,
    profile_verifier_workers=1,
    deadline_s=600.0,
)


# --------------------------------------------------------------------------- 1-2. data and base model


def study_queries(settings: Settings) -> tuple[list[Query], list[Query]]:
    """(pool, held-out): disjoint, drawn from one seeded permutation of the source's verifiable rows."""
    # The quickstart's prompt: one worked example in the chat that ends in "The final answer is \\boxed{4}.",
    # the form the strict reward extracts (without it SmolLM2-135M-Instruct rarely boxes an answer).
    queries, rejects = load_queries(settings.source, prompt=QUICKSTART_PROMPT)
    queries = [q for q in queries if q.answer]
    need = settings.pool_size + settings.eval_size
    if len(queries) < need:
        raise SystemExit(
            f"source {settings.source!r} has {len(queries)} usable queries ({len(rejects)} rejected), fewer than "
            f"pool_size + eval_size = {need}: lower --pool-size / --eval-size"
        )
    order = list(range(len(queries)))
    random.Random(f"gpu-study/{settings.source}").shuffle(order)
    held_out = [queries[i] for i in order[: settings.eval_size]]
    pool = [queries[i] for i in order[settings.eval_size : need]]
    return pool, held_out


def base_model(settings: Settings, work: Path) -> str:
    """A model folder: a tiny Llama saved from config (`tiny`), else the bundled or given model."""
    from sgpo_curate.models import resolve_model, save_tiny_model

    if settings.tiny:
        path = work / "tiny-base"
        if not (path / "config.json").exists():
            save_tiny_model(path, hidden_size=32, num_layers=2, num_heads=2, seed=0)
        return str(path)
    return trainable(resolve_model(settings.model), work)


def trainable(path: str, work: Path) -> str:
    """The model folder, or a view of it without a GGUF `quantization_config`.

    A folder converted from a GGUF file (`sgpo_curate.models`) holds plain float32 weights but keeps the
    GGUF's `quantization_config`; transformers then marks the model quantized and its Trainer refuses to
    fine-tune it ("purely quantized models"). The view links the weights and drops that entry.
    """
    config = json.loads((Path(path) / "config.json").read_text())
    if (config.get("quantization_config") or {}).get("quant_method") != "gguf":
        return path
    view = work / "base"
    view.mkdir(parents=True, exist_ok=True)
    for item in Path(path).iterdir():
        if item.name != "config.json" and not (view / item.name).exists():
            (view / item.name).symlink_to(item.resolve())
    del config["quantization_config"]
    (view / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return str(view)


# --------------------------------------------------------------------------- 3. profile


def math_verifier(workers: int):
    """The project's math reward (strict: an answer in \\boxed{} or anchored LaTeX, as TRL's accuracy_reward)."""
    return get_verifier("math", workers=workers)


def profile_pool(pool: list[Query], sampler, verifier, settings: Settings, work: Path) -> dict[str, Any]:
    """Profile the pool under the base model; what the study reports of it."""
    sampling = SamplingConfig(
        k=settings.k,
        max_new_tokens=settings.max_completion_length,
        temperature=settings.temperature,
        seed=0,
        batch_queries=settings.profile_batch_queries,
    )
    summary = profile(
        pool,
        sampler,
        verifier,
        ProfileConfig(out_dir=str(work / "profile"), progress=False, keep_completions=False),
        sampling,
        source=settings.source,
    )
    return {
        "dir": str(work / "profile"),
        "flops": summary.flops,
        "seconds": summary.wall_seconds,
        "histogram": summary.histogram,
        "queries": summary.queries,
        "samples": summary.samples,
        "prompt_tokens": summary.prompt_tokens,
        "completion_tokens": summary.completion_tokens,
    }


def training_rows(arm: str, pool: list[Query], profile_dir: str, settings: Settings, seed: int) -> list[dict]:
    """The rows an arm trains on, in training order: the curated set for sGPO, else the whole pool."""
    if arm not in CURATED_ARMS:
        return [
            {"id": q.id, "source": q.source, "domain": q.domain, "prompt": q.messages, "answer": q.answer}
            for q in pool
        ]
    config = CurateConfig(
        rule="inverse",
        g_min=settings.g_min,
        g_max=settings.g_max,
        uniform_group_size=settings.group_size,
        unsolvable_keep_fraction=settings.unsolvable_keep_fraction,
        order="easy-to-hard",
        seed=seed,
    )
    return curate(load_profiles(profile_dir), config).dataset.to_list()


# --------------------------------------------------------------------------- 4. train and evaluate


class HeldOut:
    """Held-out accuracy under the training reward, through the project's sampler.

    The sampler holds its own copy of the model (bf16 on a GPU); `evaluate(policy)` first copies the policy's
    weights into it, so evaluation never touches the trainer's model or its RNG.
    """

    def __init__(self, queries: list[Query], sampler, verifier, settings: Settings):
        self.queries, self.sampler, self.verifier, self.settings = queries, sampler, verifier, settings

    def evaluate(self, policy=None) -> dict[str, float]:
        import torch

        if policy is not None:
            with torch.no_grad():
                self.sampler.model.load_state_dict(policy.state_dict())
        s = self.settings
        metrics = {"accuracy": self._accuracy(s.eval_samples, s.temperature)}
        if s.eval_greedy:
            metrics["greedy_accuracy"] = self._accuracy(1, 0.0)
        return metrics

    def _accuracy(self, k: int, temperature: float) -> float:
        config = SamplingConfig(
            k=k,
            max_new_tokens=self.settings.max_completion_length,
            temperature=temperature,
            seed=EVAL_SEED,
            batch_queries=self.settings.eval_batch_queries,
        )
        texts, queries = [], []
        for start in range(0, len(self.queries), config.batch_queries):
            chunk = self.queries[start : start + config.batch_queries]
            for query, samples in zip(chunk, self.sampler.sample(chunk, config, EVAL_SEED), strict=True):
                texts += samples.texts
                queries += [query] * len(samples.texts)
        rewards = self.verifier(texts, queries)
        return sum(r or 0.0 for r in rewards) / len(rewards)


@dataclass
class Job:
    arm: str
    seed: int
    rows: list[dict]
    base: str
    held_out: list[Query]
    prior_flops: float
    prior_tokens: int
    baseline: dict[str, float]
    deadline: float
    settings: Settings
    out_dir: str


@dataclass
class Curve:
    arm: str
    seed: int
    rows: int
    points: list[dict[str, float]] = field(default_factory=list)
    steps: list[dict[str, float]] = field(default_factory=list)
    compute: dict[str, Any] = field(default_factory=dict)
    zero_adv_groups: float = math.nan
    zero_adv_rollouts: float = math.nan
    steps_done: int = 0
    stopped_by_deadline: bool = False
    seconds: float = 0.0


def arm_config(job: Job) -> AdaptiveGRPOConfig:
    """The trainer config of an arm: shared settings plus the arm's own fields."""
    s = job.settings
    on_cpu = s.device == "cpu"
    own: dict[str, Any] = {
        "grpo": {},
        "grpo_drop_zero": {"drop_zero_advantage_groups": True},
        "sgpo": {
            "group_size_column": "group_size",
            "shuffle_dataset": False,
            "curriculum_schedule": "one-pass",
            "prior_flops": job.prior_flops,
        },
        "knapsack": {
            "group_size_rule": "knapsack",
            "online_pass_rate": True,
            "queries_per_batch": s.knapsack_queries,
        },
        "dapo": {"dynamic_sampling": True, "dynamic_sampling_max_rounds": s.dapo_max_rounds},
    }[job.arm]
    shared = dict(
        output_dir=job.out_dir,
        use_cpu=on_cpu,
        bf16=not on_cpu,
        gradient_checkpointing=False,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        log_level="error",
        max_steps=s.steps,
        per_device_train_batch_size=s.micro_batch,
        gradient_accumulation_steps=s.rollouts_per_step // s.micro_batch,
        num_generations=s.group_size,
        min_group_size=s.g_min,
        max_group_size=s.g_max,
        max_completion_length=s.max_completion_length,
        temperature=s.temperature,
        top_p=1.0,
        top_k=0,
        learning_rate=s.learning_rate,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=s.warmup_steps,
        optim="adamw_torch",
        beta=0.0,
        seed=job.seed,
        data_seed=job.seed,
        group_size_column=None,
        shuffle_dataset=True,
    )
    return AdaptiveGRPOConfig(**(shared | own))


def run_job(job: Job, verifier=None) -> Curve:
    """Train one (arm, seed), evaluating the held-out set along the way; returns its curve.

    `verifier`: a math verifier to share (runs in one process reuse one worker pool); None makes one.
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback

    _quiet()
    torch.set_num_threads(1)
    started = time.perf_counter()
    settings = job.settings
    model = AutoModelForCausalLM.from_pretrained(job.base, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(job.base)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    own_verifier = verifier is None
    verifier = verifier or math_verifier(settings.verifier_workers)  # one pool: reward and evaluation
    held_out = HeldOut(
        job.held_out, get_sampler("transformers", job.base, device=settings.device), verifier, settings
    )
    reward = VerifierReward(verifier)
    trainer = AdaptiveGRPOTrainer(
        model=model,
        reward_funcs=reward,
        args=arm_config(job),
        train_dataset=Dataset.from_list(job.rows),
        processing_class=tokenizer,
    )
    trainer.remove_callback(PrinterCallback)
    curve = Curve(job.arm, job.seed, rows=len(job.rows))
    curve.points.append(_point(trainer, job, 0, job.baseline, time.perf_counter() - started))

    class Record(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "sgpo/frac_zero_adv_rollouts" in logs:
                curve.steps.append(
                    {
                        "step": state.global_step,
                        "zero_adv_rollouts": logs["sgpo/frac_zero_adv_rollouts"],
                        "zero_adv_groups": logs["sgpo/frac_zero_adv_groups"],
                        "rounds": logs.get("sgpo/dynamic_rounds", 1.0),
                        "seconds": time.perf_counter() - started,
                    }
                )

        def on_step_end(self, args, state, control, **kwargs):
            late = time.time() > job.deadline
            if state.global_step % settings.eval_every == 0 or state.global_step == settings.steps or late:
                metrics = held_out.evaluate(trainer.accelerator.unwrap_model(trainer.model))
                curve.points.append(
                    _point(trainer, job, state.global_step, metrics, time.perf_counter() - started)
                )
            if late and state.global_step < settings.steps:
                curve.stopped_by_deadline = True
                control.should_training_stop = True

    trainer.add_callback(Record())
    try:
        trainer.train()
    finally:
        if own_verifier:
            verifier.close()
    curve.compute = trainer.compute_summary()["totals"]
    curve.steps_done = trainer.state.global_step
    if curve.steps:
        curve.zero_adv_groups = statistics.fmean(s["zero_adv_groups"] for s in curve.steps)
        curve.zero_adv_rollouts = statistics.fmean(s["zero_adv_rollouts"] for s in curve.steps)
    curve.seconds = time.perf_counter() - started
    logger.info(
        "%s/seed %d: %d rows, %d steps%s, accuracy %.3f -> %.3f, %.0fs",
        job.arm,
        job.seed,
        curve.rows,
        curve.steps_done,
        " (deadline)" if curve.stopped_by_deadline else "",
        curve.points[0]["accuracy"],
        curve.points[-1]["accuracy"],
        curve.seconds,
    )
    return curve


def _point(trainer, job: Job, step: int, metrics: dict[str, float], seconds: float) -> dict[str, float]:
    """One evaluation point: the run's cumulative compute (`flops` and `tokens` with the profile charged)."""
    totals = trainer.compute_ledger.totals()
    return {
        "step": step,
        "flops": totals["total_flops"],
        "flops_no_profile": totals["training_flops"],
        "tokens": totals["rollout_tokens"] + job.prior_tokens,
        "rollouts": totals["rollouts"],
        "rollout_tokens": totals["rollout_tokens"],
        "trained_tokens": totals["trained_tokens"],
        "seconds": seconds,
        **metrics,
    }


# --------------------------------------------------------------------------- 5. statistics


def smoothed(points: list[dict[str, float]], metric: str) -> list[float]:
    """The metric averaged over each evaluation and its neighbours (window 3): one noisy point moves less."""
    values = [p[metric] for p in points]
    return [statistics.fmean(values[max(0, i - 1) : i + 2]) for i in range(len(values))]


def cost_to_reach(
    points: list[dict[str, float]], target: float, metric: str, cost: str = "flops"
) -> float | None:
    """`cost` at the first crossing of `target` by the smoothed metric (linear interpolation); None: never."""
    values = smoothed(points, metric)
    if values[0] >= target:
        return points[0][cost]
    for i in range(1, len(points)):
        if values[i] >= target:
            share = (target - values[i - 1]) / (values[i] - values[i - 1])
            return points[i - 1][cost] + share * (points[i][cost] - points[i - 1][cost])
    return None


def value_at(points: list[dict[str, float]], flops: float, metric: str) -> float:
    """The metric at `flops` (linear interpolation; the last value past the end of the curve)."""
    if flops <= points[0]["flops"]:
        return points[0][metric]
    for before, after in zip(points, points[1:], strict=False):
        if after["flops"] >= flops:
            share = (flops - before["flops"]) / (after["flops"] - before["flops"]) if after != before else 1.0
            return before[metric] + share * (after[metric] - before[metric])
    return points[-1][metric]


def final_value(points: list[dict[str, float]], metric: str) -> float:
    """Mean of the last two evaluations, as in the CPU study."""
    return statistics.fmean(p[metric] for p in points[-2:])


# Two-sided 95% Student t quantiles by degrees of freedom (normal beyond the table).
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def interval(values: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    """(mean, low, high) of a 95% t interval; the bounds are None with fewer than two values."""
    if not values:
        return None, None, None
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None, None
    half = T95.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def compare(arm: Curve, grpo: Curve, prior_flops: float, metric: str) -> dict[str, Any]:
    """One seed's comparison of an arm with GRPO (same seed): costs to reach fractions of GRPO's final gain,
    and the arm's metric at GRPO's final FLOPs."""
    base = grpo.points[0][metric]
    gain = final_value(grpo.points, metric) - base
    out: dict[str, Any] = {"grpo_gain": gain}
    for fraction in TARGET_FRACTIONS:
        target = base + fraction * gain
        for cost, key in (("flops", "ratio"), ("tokens", "token_ratio")):
            reach_grpo = cost_to_reach(grpo.points, target, metric, cost)
            reach_arm = cost_to_reach(arm.points, target, metric, cost)
            ok = gain > 0 and reach_grpo is not None and reach_arm is not None and reach_arm > 0
            out[f"{key}@{fraction:g}"] = reach_grpo / reach_arm if ok else None
            if cost == "flops":
                free = ok and reach_arm > prior_flops
                out[f"ratio_noprof@{fraction:g}"] = reach_grpo / (reach_arm - prior_flops) if free else None
    budget = grpo.points[-1]["flops"]
    out["at_grpo_flops"] = value_at(arm.points, budget, metric)
    out["diff_at_grpo_flops"] = out["at_grpo_flops"] - value_at(grpo.points, budget, metric)
    out["covers_grpo_flops"] = arm.points[-1]["flops"] >= budget
    return out


def summarize(curves: list[Curve], profile_info: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Per-arm table for each metric, the gate and the headline (same schema as the CPU study's)."""
    by_key = {(c.arm, c.seed): c for c in curves}
    grpo = [by_key[("grpo", s)] for s in settings.seeds if ("grpo", s) in by_key]
    metric = METRICS[0]
    gains = [final_value(c.points, metric) - c.points[0][metric] for c in grpo]
    gain_sd = statistics.stdev(gains) if len(gains) > 1 else None
    passed = bool(gains) and gain_sd is not None and statistics.fmean(gains) > 0
    passed = passed and statistics.fmean(gains) >= 3 * gain_sd
    gate = {
        "passed": passed,
        "grpo_heldout_gain": statistics.fmean(gains) if gains else None,
        "grpo_heldout_gain_sd": gain_sd,
        "seeds": len(gains),
        "metric": metric,
        "rule": "GRPO's held-out gain (final minus base) >= 3 seed SDs over >= 2 seeds",
    }
    measured = METRICS if settings.eval_greedy else METRICS[:1]
    table = {
        m: [_arm_row(arm, by_key, profile_info["flops"], m, settings) for arm in settings.arms]
        for m in measured
    }
    # No allocation can save more than GRPO's rollouts on zero-signal groups allow: 1 / (1 - that share).
    shares = [c.zero_adv_rollouts for c in grpo if not math.isnan(c.zero_adv_rollouts)]
    share = statistics.fmean(shares) if shares else None
    bound = {
        "grpo_zero_adv_rollouts": share,
        "max_saving": 1 / (1 - share) if share is not None and share < 1 else None,
    }
    headline: dict[str, Any] = {"gate": gate, "arms": {}}
    for row in table[metric]:
        if row["arm"] == "grpo":
            continue
        ratios = [r for r in row.get("ratio@1", []) if r is not None]
        mean, low, high = interval(ratios) if passed else (None, None, None)
        diff_mean, diff_low, diff_high = interval(row.get("diff_at_grpo_flops", []))
        headline["arms"][row["arm"]] = {
            "ratio_mean": mean,
            "ratio_ci_low": low,
            "ratio_ci_high": high,
            "seeds_reached": len(ratios),
            "seeds": len(row["seeds"]),
            "matched_flops_diff_mean": diff_mean,
            "matched_flops_diff_ci_low": diff_low,
            "matched_flops_diff_ci_high": diff_high,
        }
    return {"gate": gate, "bound": bound, "table": table, "headline": headline}


def _arm_row(
    arm: str, by_key: dict[tuple[str, int], Curve], prior_flops: float, metric: str, settings: Settings
) -> dict[str, Any]:
    seeds = [s for s in settings.seeds if (arm, s) in by_key and ("grpo", s) in by_key]
    curves = [by_key[(arm, s)] for s in seeds]
    charged = prior_flops if arm in CURATED_ARMS else 0.0
    comparisons = [compare(by_key[(arm, s)], by_key[("grpo", s)], charged, metric) for s in seeds]
    row: dict[str, Any] = {
        "arm": arm,
        "seeds": seeds,
        "rows": curves[0].rows if curves else 0,
        "base": [c.points[0][metric] for c in curves],
        "final": [final_value(c.points, metric) for c in curves],
        "total_flops": [c.points[-1]["flops"] for c in curves],
        "tokens": [c.points[-1]["tokens"] for c in curves],
        "trained_tokens": [c.points[-1]["trained_tokens"] for c in curves],
        "steps_done": [c.steps_done for c in curves],
        "zero_adv_groups": [c.zero_adv_groups for c in curves],
        "zero_adv_rollouts": [c.zero_adv_rollouts for c in curves],
    }
    for key in comparisons[0] if comparisons else ():
        row[key] = [c[key] for c in comparisons]
    return row


# --------------------------------------------------------------------------- report


def environment(settings: Settings) -> dict[str, Any]:
    """Versions, machine and threads: what a rerun must match."""
    import torch

    versions = {}
    for name in ("torch", "transformers", "trl", "datasets", "accelerate", "huggingface_hub", "math-verify"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    gpu = torch.cuda.get_device_name(0) if settings.device.startswith("cuda") else None
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "cuda": torch.version.cuda,
        "versions": versions,
    }


def write_results(path: Path, payload: dict[str, Any]) -> None:
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(json.dumps(payload, indent=1, default=_json_default) + "\n")
    os.replace(scratch, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


def _fmt(values: Sequence[float | None], digits: int = 3, missing: str = "n/a") -> str:
    got = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not got:
        return missing
    text = f"{statistics.fmean(got):.{digits}f}"
    text += f" ± {statistics.stdev(got):.{digits}f}" if len(got) > 1 else ""
    return text + (f" ({len(got)}/{len(values)})" if len(got) < len(values) else "")


def _ratio_cell(row: dict[str, Any]):
    """Formatter of one table row's ratio columns: GRPO is the reference, unreached targets say so."""

    def cell(key: str) -> str:
        return "1 (ref.)" if row["arm"] == "grpo" else _fmt(row.get(key, []), 2, "not reached")

    return cell


def write_markdown(payload: dict[str, Any], path: Path) -> None:
    """results.md, generated from the payload (never typed by hand)."""
    settings, summary, prof = payload["settings"], payload["summary"], payload["profile"]
    gate = summary["gate"]
    lines = [
        f"# GPU study: {settings['model']} on {settings['source']} ({payload['environment']['gpu'] or 'CPU'})",
        "",
        f"Pool {prof['queries']} queries, held-out {settings['eval_size']} (disjoint, same source); every arm "
        f"{settings['steps']} steps x {settings['rollouts_per_step']} rollouts, lr {settings['learning_rate']}, "
        f"no KL, seeds {settings['seeds']}. Profile: k={settings['k']}, {prof['flops']:.3g} FLOPs, charged to "
        f"{', '.join(CURATED_ARMS)}. Metric: held-out accuracy under the training reward at temperature "
        f"{settings['temperature']} ({settings['eval_samples']} samples per query)"
        f"{', and greedy' if settings['eval_greedy'] else ''}. "
        f"Wall time {payload['seconds'] / 60:.1f} min.",
        "",
        "Profile of the pool: " + ", ".join(f"{k}: {v}" for k, v in prof["histogram"].items()),
        "",
        f"Gate (GRPO's held-out gain >= 3 seed SDs): **{'passed' if gate['passed'] else 'not passed'}**, gain "
        f"{_fmt([gate['grpo_heldout_gain']])} (SD {_fmt([gate['grpo_heldout_gain_sd']])}, {gate['seeds']} seeds)."
        + (
            "" if gate["passed"] else " Ratios below are not a finding: GRPO itself did not measurably learn."
        ),
        "",
    ]
    bound = summary["bound"]
    if bound["max_saving"] is not None:
        lines += [
            f"Bound: {bound['grpo_zero_adv_rollouts']:.2f} of GRPO's rollouts fell in all-equal groups, so no "
            f"allocation can save more than {bound['max_saving']:.2f}x on this pool (1 / (1 - that share)).",
            "",
        ]
    if payload["failed"]:
        failed = "; ".join(f"{f['arm']}/seed {f['seed']}: {f['error']}" for f in payload["failed"])
        lines += [f"**Failed runs** (left out of every table): {failed}", ""]
    for metric, rows in summary["table"].items():
        lines += [
            f"## {metric}",
            "",
            "| arm | rows | base -> final | ratio @50% | @75% | @100% | @100% no prof. | token ratio @100% | "
            "diff @ GRPO FLOPs | zero-adv rollouts | steps | total FLOPs |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in rows:
            cell = _ratio_cell(row)
            flops = f"{statistics.fmean(row['total_flops']):.3g}" if row["total_flops"] else "n/a"
            lines.append(
                f"| {row['arm']} | {row['rows']} | {_fmt(row['base'])} -> {_fmt(row['final'])} | "
                f"{cell('ratio@0.5')} | {cell('ratio@0.75')} | {cell('ratio@1')} | {cell('ratio_noprof@1')} | "
                f"{cell('token_ratio@1')} | {_fmt(row.get('diff_at_grpo_flops', []))} | "
                f"{_fmt(row['zero_adv_rollouts'], 2)} | {_fmt(row['steps_done'], 0)} | "
                f"{flops} |"
            )
        lines.append("")
    lines += [
        "Ratios: GRPO's FLOPs (or tokens: prompt + generated, profile included) over the arm's to first reach the fraction of GRPO's final gain "
        "on the smoothed curve, paired by seed; `(n/m)`: seeds that reached it (the others are censored, not "
        "dropped). `diff @ GRPO FLOPs`: the arm's metric minus GRPO's at GRPO's final FLOPs.",
        "",
        "Arms: " + "; ".join(f"`{a}` {ARMS[a]}" for a in settings["arms"]),
        "",
    ]
    path.write_text("\n".join(lines))


def plot(curves: list[Curve], profile_info: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(20, 4.2))
    hist = profile_info["histogram"]
    axes[0].bar(range(len(hist)), list(hist.values()), color="grey")
    axes[0].set_xticks(range(len(hist)), list(hist), rotation=30, fontsize=8)
    axes[0].set_title("pool profile p̂ under the base")
    panels = (("flops", "accuracy"), ("tokens", "accuracy"), ("flops", "greedy_accuracy"))
    for ax, (cost, metric) in zip(axes[1:], panels, strict=True):
        for i, arm in enumerate(dict.fromkeys(c.arm for c in curves)):
            for j, curve in enumerate(c for c in curves if c.arm == arm):
                if metric in curve.points[0]:
                    xs = [p[cost] for p in curve.points]
                    ax.plot(
                        xs, [p[metric] for p in curve.points], color=f"C{i}", label=arm if j == 0 else None
                    )
        ax.set_xlabel(f"cumulative {cost} (profiling charged)")
        ax.set_title(f"held-out {metric.replace('_', ' ')}")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------- main


def run(settings: Settings) -> dict[str, Any]:
    started = time.time()
    deadline = started + settings.deadline_s
    out = Path(settings.out)
    work = Path(settings.work or out / "work")
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    pool, held_out = study_queries(settings)
    base = base_model(settings, work)
    sampler = get_sampler("transformers", base, device=settings.device)
    verifier = math_verifier(settings.profile_verifier_workers)
    try:
        profile_info = profile_pool(pool, sampler, verifier, settings, work)
        logger.info("profile: %s (%.3g FLOPs)", profile_info["histogram"], profile_info["flops"])
        baseline = HeldOut(held_out, sampler, verifier, settings).evaluate()  # every arm starts here: once
    finally:
        verifier.close()
    del sampler
    _free_gpu_cache()
    logger.info("base model on the held-out set: %s", baseline)
    payload: dict[str, Any] = {
        "settings": asdict(settings),
        "environment": environment(settings),
        "base": base,
        "profile": profile_info,
        "baseline": baseline,
        "curves": [],
        "failed": [],
    }
    jobs = [
        Job(
            arm,
            seed,
            training_rows(arm, pool, profile_info["dir"], settings, seed),
            base,
            held_out,
            profile_info["flops"] if arm in CURATED_ARMS else 0.0,
            profile_info["prompt_tokens"] + profile_info["completion_tokens"] if arm in CURATED_ARMS else 0,
            baseline,
            deadline,
            settings,
            str(work / "runs" / f"{arm}-{seed}"),
        )
        for seed in settings.seeds
        for arm in settings.arms
    ]
    curves = []
    for job, curve, error in _run_all(jobs, settings.workers):
        if curve is None:
            payload["failed"].append({"arm": job.arm, "seed": job.seed, "error": error})
        else:
            curves.append(curve)
        payload["curves"] = [asdict(c) for c in curves]
        payload["seconds"] = time.time() - started
        write_results(out / "results.json", payload)  # finished runs survive a command cut short
    payload["summary"] = summarize(curves, profile_info, settings)
    payload["seconds"] = time.time() - started
    write_results(out / "results.json", payload)
    write_markdown(payload, out / "results.md")
    plot(curves, profile_info, out / "savings.png")
    logger.info("done in %.1f min: %s", payload["seconds"] / 60, out / "results.md")
    return payload


def _run_all(jobs: list[Job], workers: int):
    """Yield `(job, curve, None)` as runs finish, or `(job, None, error)` for a run that failed (the others
    go on): in this process (workers=1) or in spawned processes sharing the GPU."""
    if workers <= 1:
        verifier = math_verifier(jobs[0].settings.verifier_workers)
        try:
            for job in jobs:
                try:
                    yield job, run_job(job, verifier), None
                except Exception as error:  # one broken run must not lose the others
                    logger.exception("%s/seed %d failed", job.arm, job.seed)
                    yield job, None, f"{type(error).__name__}: {error}"
        finally:
            verifier.close()
        return
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=get_context("spawn")) as executor:
        futures = {executor.submit(run_job, job): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                yield job, future.result(), None
            except Exception as error:
                logger.error("%s/seed %d failed: %s", job.arm, job.seed, error)
                yield job, None, f"{type(error).__name__}: {error}"


def _free_gpu_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def parse_args(argv: Sequence[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", default="runs/gpu-study", help="folder of results.json, results.md, savings.png"
    )
    for name, default in asdict(Settings(out="")).items():
        if name in ("out", "tiny"):
            continue
        flag = f"--{name.replace('_', '-')}"
        if isinstance(default, bool):
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=f"default: {default}"
            )
        elif isinstance(default, tuple):
            kind = type(default[0])
            parser.add_argument(
                flag, nargs="+", type=kind, default=None, help=f"default: {' '.join(map(str, default))}"
            )
        else:
            kind = str if default is None else type(default)
            parser.add_argument(flag, type=kind, default=None, help=f"default: {default}")
    parser.add_argument(
        "--tiny", action="store_true", help="a model built from config and a handful of queries"
    )
    args = parser.parse_args(argv)
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in vars(args).items() if v is not None}
    values.pop("tiny")
    base = TINY if args.tiny else {}
    try:
        return Settings(**(base | values))
    except ValueError as error:
        parser.error(str(error))


def _quiet() -> None:
    """No progress bars; warnings only from the libraries; this script's progress at INFO."""
    import datasets
    import transformers

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    for name in ("transformers", "datasets", "sgpo_curate", "trl"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    _quiet()
    if settings.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            logger.error(
                "--device %s but torch sees no CUDA device; use --device cpu (with --tiny)", settings.device
            )
            return 2
    payload = run(settings)
    if payload["failed"]:
        logger.error("%d runs failed: %s", len(payload["failed"]), payload["failed"])
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
