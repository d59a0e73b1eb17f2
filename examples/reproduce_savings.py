"""Reproduce sGPO's compute savings on a CPU toy, through the real pipeline: profile -> curate -> train.

What it measures: held-out accuracy against cumulative training FLOPs for plain GRPO and for sGPO (and
ablations), all trained by `AdaptiveGRPOTrainer` from the same base model with the same seeds, the
profiling pass charged to every arm that uses it. The paper reports 2.5-3.1x less compute; this toy is
NOT tuned to reach that: it reports what it measures.

Steps:
 1. Task family: integer addition `a+b=` with operands of 1-4 digits; a query's level is its longest
    operand. Verifier: the exact sum, then end of sequence. (`--lsb-first` writes numbers least-significant
    digit first; measured worse here: a 0.66M model learned 1-digit sums to 10% instead of 83%.)
 2. Base model: a tiny character-level Llama (`build_tiny_model`) trained supervised offline for a fixed
    number of steps (not a time limit: the profile depends on where it stops) so pass rates spread 0..1.
 3. Pools (a stated input): for each mix (broad, U-shaped, mostly hard) a pool of distinct queries drawn
    with the mix's level weights; one held-out evaluation set from the broad mix, deduplicated against
    every pool.
 4. Profile every pool with `sgpo_curate.profile` (k samples per query under the base model, the exact
    verifier); its FLOPs (2 x params x tokens) become the curated arms' `prior_flops`.
 5. Curate per arm with `sgpo_curate.curate` (filtering, group-size rule from `GROUP_SIZE_RULES`,
    curriculum order); unfiltered ablations use the same registered rules and orders on the whole pool.
 6. Train each (mix, arm, seed) with `AdaptiveGRPOTrainer` for the same number of steps and rollouts per
    step; every few steps evaluate the held-out set: teacher-forced probability of the exact answer+EOS
    (one forward pass, noise-free) and sampled accuracy (temperature 1, fixed sampling seed); and, as an
    in-distribution view, the teacher-forced probability on the whole profiled pool (filtered-out queries
    included, so filtering earns no credit by construction).
 7. Report: per mix, compute ratio GRPO/arm to reach 50%, 75% and 100% of GRPO's final gain, the arm's
    metric at GRPO's final FLOPs, mean and spread over seeds, the profile histogram beside each, the share
    of zero-advantage groups and rollouts (compute that carried no signal);
    `results.md`, `results.json`, `savings.png` and `ablations.png` in `--out`.

Run:
    python examples/reproduce_savings.py --out examples/results            # full: <20 min on 2 cores
    python examples/reproduce_savings.py --quick --out /tmp/sgpo-quick     # smoke run: ~1 min
Options change the stated inputs (`--mixes`, `--arms`, `--ablation-mix`, `--seeds`, `--steps`, ...);
`--help` lists them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import random
import statistics
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from sgpo_curate import (  # noqa: E402
    AdaptiveGRPOConfig,
    AdaptiveGRPOTrainer,
    CurateConfig,
    ProfileConfig,
    Query,
    SamplingConfig,
    curate,
    get_sampler,
    load_profiles,
    profile,
)
from sgpo_curate.models import build_tiny_model  # noqa: E402
from sgpo_curate.policy import curriculum_order, get_group_size_rule  # noqa: E402

logger = logging.getLogger("reproduce_savings")

CHARS = "0123456789+=\n"
MAX_DIGITS = 4
# Level weights (levels 1..4 = longest operand's digits): the pool mixes are a stated input.
MIXES = {
    "broad": (1, 1, 1, 1),
    "u_shaped": (4, 1, 1, 4),
    "mostly_hard": (0.5, 1, 3, 4),
}
TARGET_FRACTIONS = (0.5, 0.75, 1.0)


@dataclass(frozen=True)
class Arm:
    """One training recipe. `rule=None` means plain GRPO's single G (`num_generations`)."""

    filter: bool
    rule: str | None
    curriculum: bool
    note: str


ARMS = {
    "grpo": Arm(False, None, False, "plain GRPO: G=8 for all, shuffled, unfiltered"),
    "sgpo": Arm(True, "inverse", True, "sGPO: filter + G=ceil(1/p) + easy-to-hard"),
    "filter_only": Arm(True, "uniform", False, "filter only (G=8, shuffled)"),
    "group_size_only": Arm(False, "inverse", False, "group size only (inverse rule, unfiltered, shuffled)"),
    "curriculum_only": Arm(False, "uniform", True, "curriculum only (G=8, unfiltered, easy-to-hard)"),
    "rule_symmetric": Arm(True, "symmetric", True, "sGPO with the symmetric rule"),
    "rule_uniform": Arm(True, "uniform", True, "sGPO with the uniform rule (G=8)"),
}


@dataclass(frozen=True)
class Settings:
    """Every stated input of a run (written to results.json)."""

    out: str
    mixes: tuple[str, ...] = ("broad", "u_shaped", "mostly_hard")
    arms: tuple[str, ...] = ("grpo", "sgpo")
    ablation_mix: str = "broad"
    ablation_arms: tuple[str, ...] = (
        "filter_only",
        "group_size_only",
        "curriculum_only",
        "rule_symmetric",
        "rule_uniform",
    )
    seeds: tuple[int, ...] = (0, 1, 2)
    lsb_first: bool = False
    hidden_size: int = 128
    num_layers: int = 4
    pretrain_steps: int = 480
    pretrain_batch: int = 128
    pretrain_lr: float = 3e-3
    pool_size: int = 384
    eval_size: int = 256
    k: int = 8
    g_min: int = 2
    g_max: int = 16
    uniform_group_size: int = 8
    unsolvable_keep_fraction: float = 0.25
    # Budget (measured on the broad pool at lr 1e-4; see results.md): at 100 steps x 64 rollouts plain GRPO's gain
    # was within seed noise (whole-pool P(answer+EOS) 0.322 -> 0.329 +- 0.005), so no ratio was measurable.
    # 100 x 128: 0.322 -> 0.351 for seed 0 (a hand-written token-sum GRPO loop on the same base: 0.350, the same
    # curve; TRL's dapo loss has the same gradient direction, cosine 1.000) and 0.345 +- 0.005 over 3 seeds;
    # 300 x 128 (hand-written loop): 0.40. Higher lr is worse: 2e-4 fell to 0.26-0.28 by step 50 (0.27-0.33 after
    # 150 x 64), 3e-4 to 0.25, 1e-3 collapsed to 0.01. The held-out set does not move with either loop
    # (0.203 -> 0.196-0.21 after up to 300 x 128, also when trained on fresh queries every step): on this toy
    # GRPO's gains are per query and do not transfer to unseen sums, so the pool metric is the one to compare.
    steps: int = 100
    rollouts_per_step: int = 128
    learning_rate: float = 1e-4
    warmup_steps: int = 10
    optimizer: str = "adamw_torch"
    scale_rewards: str = "group"
    eval_every: int = 20  # sampled evaluation is most of a run's cost: every 10 would (estimated) push the full run past 20 min
    eval_samples: int = 4
    workers: int = 2


QUICK = dict(
    mixes=("broad",),
    ablation_arms=("filter_only",),
    seeds=(0, 1),
    hidden_size=64,
    num_layers=2,
    pretrain_steps=200,
    pool_size=96,
    eval_size=64,
    k=4,
    steps=6,
    rollouts_per_step=32,
    eval_every=3,
    warmup_steps=2,
    eval_samples=2,
)


# --------------------------------------------------------------------------- 1. task family


def make_query(a: int, b: int, lsb_first: bool = False) -> Query:
    """The query `a+b=`; with `lsb_first` every number is written least-significant digit first."""

    def write(number: int) -> str:
        return str(number)[::-1] if lsb_first else str(number)

    return Query(
        id=f"add/{a}+{b}",
        source="toy-addition",
        domain="math",
        prompt=(("user", f"{write(a)}+{write(b)}="),),
        answer=write(a + b),
        metadata={"level": max(len(str(a)), len(str(b)))},
    )


def query_from_id(query_id: str, lsb_first: bool) -> Query:
    a, b = query_id.removeprefix("add/").split("+")
    return make_query(int(a), int(b), lsb_first)


def draw_operands(level: int, rng: random.Random) -> tuple[int, int]:
    """One operand with exactly `level` digits, the other with 1..level digits, in random order."""

    def number(digits: int) -> int:
        return rng.randint(10 ** (digits - 1) if digits > 1 else 0, 10**digits - 1)

    a, b = number(level), number(rng.randint(1, level))
    return (a, b) if rng.random() < 0.5 else (b, a)


def draw_queries(
    weights: Sequence[float], n: int, rng: random.Random, exclude: set[str], lsb_first: bool = False
) -> list[Query]:
    """`n` distinct queries with levels drawn by `weights`, none of whose ids is in `exclude`."""
    queries: dict[str, Query] = {}
    levels = list(range(1, MAX_DIGITS + 1))
    while len(queries) < n:
        query = make_query(*draw_operands(rng.choices(levels, weights)[0], rng), lsb_first)
        if query.id not in exclude:
            queries.setdefault(query.id, query)
    return list(queries.values())


class ExactAnswer:
    """Verifier: 1.0 when the completion is exactly the sum (the sampler cuts at end of sequence)."""

    def __call__(self, completions: Sequence[str], queries: Sequence[Query]) -> list[float | None]:
        return [float(text.strip() == query.answer) for text, query in zip(completions, queries, strict=True)]


def exact_match_reward(completions: list, answer: list[str], **kwargs: Any) -> list[float]:
    """TRL reward: the decoded completion (special tokens dropped) equals the answer."""
    return [float(c[0]["content"].strip() == a) for c, a in zip(completions, answer, strict=True)]


# --------------------------------------------------------------------------- 2. base model


# The toy's format: the answer follows `a+b=` directly, as in DESIGN.md's feasibility study. (The
# package's tiny template puts a newline before the answer; with it, the same 480 pretraining steps
# gave a much weaker base: greedy accuracy on 1-2 digit sums 36/60 vs 53/60, held-out tf 0.03 vs 0.20.)
TOY_CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"


def render(tokenizer, content: str) -> str:
    """The prompt exactly as TRL and the profiling sampler show it: through the tokenizer's chat template."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
    )


def _encode(tokenizer, prompt: str, answer: str) -> tuple[list[int], list[int]]:
    prompt_ids = tokenizer(render(tokenizer, prompt), add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids


def _collate(pairs: list[tuple[list[int], list[int]]], pad_id: int) -> tuple[torch.Tensor, ...]:
    length = max(len(ids) for ids, _ in pairs)
    ids = torch.full((len(pairs), length), pad_id)
    labels = torch.full((len(pairs), length), -100)
    mask = torch.zeros((len(pairs), length), dtype=torch.long)
    for i, (x, y) in enumerate(pairs):  # right padding: positions stay those of the unpadded sequence
        ids[i, : len(x)], labels[i, : len(y)], mask[i, : len(x)] = torch.tensor(x), torch.tensor(y), 1
    return ids, labels, mask


def pretrain_base(settings: Settings, path: Path) -> dict[str, Any]:
    """Supervised training on uniformly drawn levels for a fixed step count; saves model + tokenizer."""
    model, tokenizer = build_tiny_model(
        chars=CHARS,
        hidden_size=settings.hidden_size,
        num_layers=settings.num_layers,
        num_heads=4,
        max_positions=64,
        seed=0,
    )
    tokenizer.chat_template = TOY_CHAT_TEMPLATE
    rng = random.Random(12345)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.pretrain_lr, weight_decay=0.0)
    warmup, total = 30, settings.pretrain_steps
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * s / total))
    )
    started = time.perf_counter()
    model.train()
    for _ in range(total):
        pairs = []
        for _ in range(settings.pretrain_batch):
            query = make_query(*draw_operands(rng.randint(1, MAX_DIGITS), rng), settings.lsb_first)
            pairs.append(_encode(tokenizer, query.messages[0]["content"], query.answer))
        ids, labels, mask = _collate(pairs, tokenizer.pad_token_id)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    seconds = time.perf_counter() - started
    logger.info(
        "pretrained %d params for %d steps in %.0fs (final loss %.3f)",
        model.num_parameters(),
        total,
        seconds,
        loss.item(),
    )
    return {"num_params": model.num_parameters(), "seconds": seconds, "final_loss": loss.item()}


FORMAT_VERSION = 2  # bump when the text format changes: cached base models are then retrained
PRETRAIN_FIELDS = (
    "lsb_first",
    "hidden_size",
    "num_layers",
    "pretrain_steps",
    "pretrain_batch",
    "pretrain_lr",
)


def cached_base(settings: Settings, path: Path, stamp: dict[str, Any]) -> dict[str, Any]:
    """Pretrain once per pretraining settings; a rerun into the same --out reuses the base model."""
    record = path / "pretrain.json"
    if record.exists():
        saved = json.loads(record.read_text())
        if saved.get("stamp") == stamp:
            logger.info("reusing base model %s (pretrained in %.0fs)", path, saved["meta"]["seconds"])
            return saved["meta"]
    meta = pretrain_base(settings, path)
    record.write_text(json.dumps({"stamp": stamp, "meta": meta}))
    return meta


# --------------------------------------------------------------------------- 4-5. profile and curate


def profile_pool(pool: list[Query], base: Path, settings: Settings, out_dir: Path) -> dict[str, Any]:
    sampler = get_sampler("transformers", str(base), device="cpu")
    sampling = SamplingConfig(
        k=settings.k, max_new_tokens=MAX_DIGITS + 2, temperature=1.0, top_p=1.0, seed=0, batch_queries=32
    )
    summary = profile(
        pool,
        sampler,
        ExactAnswer(),
        ProfileConfig(out_dir=str(out_dir), progress=False),
        sampling,
        source="toy-addition",
    )
    return {
        "flops": summary.flops,
        "seconds": summary.wall_seconds,
        "histogram": summary.histogram,
        "queries": summary.queries,
        "samples": summary.samples,
    }


def arm_rows(profile_dir: Path, arm: Arm, settings: Settings, seed: int) -> list[dict[str, Any]]:
    """The training rows of an arm, in training order, with `prompt`, `answer`, `group_size`."""
    profiles = load_profiles(profile_dir)
    order = "easy-to-hard" if arm.curriculum else "random"
    if arm.rule is None:  # plain GRPO: every profiled query, the trainer's single G, shuffled by the trainer
        return [{"prompt": p.query.messages, "answer": p.query.answer} for p in profiles]
    if arm.filter:
        config = CurateConfig(
            rule=arm.rule,
            g_min=settings.g_min,
            g_max=settings.g_max,
            uniform_group_size=settings.uniform_group_size,
            unsolvable_keep_fraction=settings.unsolvable_keep_fraction,
            order=order,
            seed=seed,
        )
        dataset = curate(profiles, config).dataset
        return [
            {"prompt": r["prompt"], "answer": r["answer"], "group_size": r["group_size"]} for r in dataset
        ]
    # Unfiltered ablations: `curate` always drops trivial queries, so apply the same registered rule and
    # curriculum order to the whole pool.
    rule = get_group_size_rule(arm.rule, settings.uniform_group_size)
    pass_rates = [p.num_correct / p.num_samples for p in profiles]
    ranked = curriculum_order([p.id for p in profiles], pass_rates, order, seed)
    return [
        {
            "prompt": profiles[i].query.messages,
            "answer": profiles[i].query.answer,
            "group_size": int(rule(pass_rates[i], settings.g_min, settings.g_max)),
        }
        for i in ranked
    ]


# --------------------------------------------------------------------------- 6. train and evaluate


class HeldOut:
    """An evaluation set, pre-tokenized for both metrics (`samples=0`: teacher-forced only)."""

    def __init__(self, queries: list[Query], tokenizer, samples: int):
        self.answers = [q.answer for q in queries]
        self.samples = samples
        pad = tokenizer.pad_token_id
        self.forced = _collate([_encode(tokenizer, q.messages[0]["content"], q.answer) for q in queries], pad)
        tokenizer.padding_side = "left"
        self.prompts = tokenizer(
            [render(tokenizer, q.messages[0]["content"]) for q in queries],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        )
        self.tokenizer = tokenizer

    @torch.no_grad()
    def evaluate(self, model) -> dict[str, float]:
        was_training = model.training
        model.eval()
        ids, labels, mask = self.forced
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        targets = labels[:, 1:]
        logps = torch.log_softmax(logits, -1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        sequence_logp = (logps * (targets != -100)).sum(-1)
        if not self.samples:
            model.train(was_training)
            return {"tf_prob": sequence_logp.exp().mean().item()}
        with torch.random.fork_rng():
            torch.manual_seed(1234)  # the same sampling noise at every evaluation (common random numbers)
            out = model.generate(
                **self.prompts,
                do_sample=True,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                max_new_tokens=MAX_DIGITS + 2,
                num_return_sequences=self.samples,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )
        texts = self.tokenizer.batch_decode(
            out[:, self.prompts["input_ids"].shape[1] :], skip_special_tokens=True
        )
        correct = [t.strip() == self.answers[i // self.samples] for i, t in enumerate(texts)]
        model.train(was_training)
        return {"tf_prob": sequence_logp.exp().mean().item(), "accuracy": sum(correct) / len(correct)}


@dataclass
class Job:
    mix: str
    arm: str
    seed: int
    profile_dir: str
    base: str
    eval_ids: list[str]
    prior_flops: float
    settings: Settings
    out_dir: str


@dataclass
class Curve:
    mix: str
    arm: str
    seed: int
    rows: int
    points: list[dict[str, float]] = field(default_factory=list)
    compute: dict[str, Any] = field(default_factory=dict)
    zero_adv_groups: float = math.nan
    zero_adv_rollouts: float = math.nan
    seconds: float = 0.0


def run_job(job: Job) -> Curve:
    """Train one (mix, arm, seed) and return its evaluation curve."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback

    _quiet()
    started = time.perf_counter()
    settings, arm = job.settings, ARMS[job.arm]
    rows = arm_rows(Path(job.profile_dir), arm, settings, job.seed)
    model = AutoModelForCausalLM.from_pretrained(job.base)
    tokenizer = AutoTokenizer.from_pretrained(job.base)
    held_out = HeldOut(
        [query_from_id(i, settings.lsb_first) for i in job.eval_ids],
        AutoTokenizer.from_pretrained(job.base),
        settings.eval_samples,
    )
    # In-distribution view: the whole profiled pool (filtered-out queries included), teacher-forced.
    pool = HeldOut(
        [p.query for p in load_profiles(job.profile_dir)], AutoTokenizer.from_pretrained(job.base), 0
    )
    args = AdaptiveGRPOConfig(
        output_dir=job.out_dir,
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        report_to=[],
        save_strategy="no",
        logging_steps=settings.eval_every,
        disable_tqdm=True,
        log_level="error",
        max_steps=settings.steps,
        per_device_train_batch_size=settings.rollouts_per_step,
        num_generations=settings.uniform_group_size,
        max_completion_length=MAX_DIGITS + 2,
        temperature=1.0,
        top_k=0,
        optim=settings.optimizer,
        scale_rewards=settings.scale_rewards,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=settings.warmup_steps,
        beta=0.0,
        seed=job.seed,
        data_seed=job.seed,
        group_size_column=None if arm.rule is None else "group_size",
        shuffle_dataset=not arm.curriculum,
        max_group_size=settings.g_max,
        prior_flops=0.0 if arm.rule is None and not arm.filter else job.prior_flops,
    )
    trainer = AdaptiveGRPOTrainer(
        model=model,
        reward_funcs=exact_match_reward,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    trainer.remove_callback(PrinterCallback)  # the curve below is the record; keep the console readable
    curve = Curve(job.mix, job.arm, job.seed, rows=len(rows))

    def record(step: int) -> None:
        metrics = held_out.evaluate(trainer.model)
        metrics["pool_tf"] = pool.evaluate(trainer.model)["tf_prob"]
        curve.points.append(
            {"step": step, "flops": trainer.compute_ledger.totals()["total_flops"], **metrics}
        )

    class Evaluate(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % settings.eval_every == 0 or state.global_step == settings.steps:
                record(state.global_step)

    record(0)
    trainer.add_callback(Evaluate())
    trainer.train()
    curve.compute = trainer.compute_summary()["totals"]
    logged = [e for e in trainer.state.log_history if "sgpo/frac_zero_adv_groups" in e]
    curve.zero_adv_groups = (
        statistics.fmean(e["sgpo/frac_zero_adv_groups"] for e in logged) if logged else math.nan
    )
    curve.zero_adv_rollouts = (
        statistics.fmean(e["sgpo/frac_zero_adv_rollouts"] for e in logged) if logged else math.nan
    )
    curve.seconds = time.perf_counter() - started
    logger.info(
        "%s/%s/seed %d: %d rows, tf %.3f -> %.3f, acc %.3f -> %.3f, %.0fs",
        job.mix,
        job.arm,
        job.seed,
        len(rows),
        curve.points[0]["tf_prob"],
        curve.points[-1]["tf_prob"],
        curve.points[0]["accuracy"],
        curve.points[-1]["accuracy"],
        curve.seconds,
    )
    return curve


# --------------------------------------------------------------------------- 7. report


def flops_to_reach(points: list[dict[str, float]], target: float, metric: str = "tf_prob") -> float | None:
    """FLOPs at the first crossing of `target` (linear interpolation between evaluations); None if never."""
    for before, after in zip(points, points[1:], strict=False):
        if before[metric] >= target:
            return before["flops"]
        if after[metric] >= target:
            share = (target - before[metric]) / (after[metric] - before[metric])
            return before["flops"] + share * (after["flops"] - before["flops"])
    return points[-1]["flops"] if points and points[-1][metric] >= target else None


def value_at(points: list[dict[str, float]], flops: float, metric: str = "tf_prob") -> float:
    """The metric at `flops` (linear interpolation; the last value past the end of the curve)."""
    if flops <= points[0]["flops"]:
        return points[0][metric]
    for before, after in zip(points, points[1:], strict=False):
        if after["flops"] >= flops:
            share = (flops - before["flops"]) / (after["flops"] - before["flops"])
            return before[metric] + share * (after[metric] - before[metric])
    return points[-1][metric]


def final_value(points: list[dict[str, float]], metric: str) -> float:
    """Mean of the last two evaluations: less sensitive to one noisy point."""
    return statistics.fmean(p[metric] for p in points[-2:])


def compare(
    arm: Curve, grpo: Curve, prior_flops: float, metric: str = "tf_prob", prefix: str = ""
) -> dict[str, Any]:
    """Compute ratios GRPO/arm at the target fractions of GRPO's gain, and the arm's value at equal FLOPs."""
    base = grpo.points[0][metric]
    gain = final_value(grpo.points, metric) - base
    out: dict[str, Any] = {f"{prefix}grpo_gain": gain}
    for fraction in TARGET_FRACTIONS:
        target = base + fraction * gain
        reach_grpo = flops_to_reach(grpo.points, target, metric)
        reach_arm = flops_to_reach(arm.points, target, metric)
        ok = gain > 0 and reach_grpo is not None and reach_arm is not None
        out[f"{prefix}ratio@{fraction:g}"] = reach_grpo / reach_arm if ok else None
        # the same without the profiling charge: a consumer of a published profile does not pay it
        out[f"{prefix}ratio_noprof@{fraction:g}"] = (
            reach_grpo / (reach_arm - prior_flops) if ok and reach_arm > prior_flops else None
        )
    budget = grpo.points[-1]["flops"]
    out[f"{prefix}{metric}_at_equal_flops"] = value_at(arm.points, budget, metric)
    if metric == "tf_prob":
        out["acc_at_equal_flops"] = value_at(arm.points, budget, "accuracy")
    return out


def _mean_spread(values: list[float | None], missing: str = "not reached", digits: int = 2) -> str:
    got = [v for v in values if v is not None and not math.isnan(v)]
    if not got:
        return missing
    text = f"{statistics.fmean(got):.{digits}f}"
    text += f" ± {statistics.stdev(got):.{digits}f}" if len(got) > 1 else ""
    return text + (f" ({len(got)}/{len(values)})" if len(got) < len(values) else "")


def _ratio_cell(row: dict[str, Any], prefix: str = ""):
    """A formatter for the ratio columns of one table row: seeds where GRPO did not improve have no target."""

    def cell(key: str) -> str:
        if row["arm"] == "grpo":
            return "1 (ref.)"
        pairs = list(zip(row.get(key, []), row.get(f"{prefix}grpo_gain", []), strict=False))
        usable = [value for value, gain in pairs if gain > 0]
        if not usable:
            return "n/a (no GRPO gain)" if pairs else "n/a"
        return _mean_spread(usable) + (
            f" [{len(usable)}/{len(pairs)} seeds with a GRPO gain]" if len(usable) < len(pairs) else ""
        )

    return cell


def summarize(curves: list[Curve], profiles: dict[str, dict[str, Any]], settings: Settings) -> dict[str, Any]:
    by_key = {(c.mix, c.arm, c.seed): c for c in curves}
    table = []
    for mix in settings.mixes:
        arms = [a for a in settings.arms if a != "grpo"]
        if mix == settings.ablation_mix:
            arms += [a for a in settings.ablation_arms if a not in arms]
        for arm in ["grpo", *arms]:
            seeds = [s for s in settings.seeds if (mix, arm, s) in by_key]
            comparisons = [
                compare(by_key[(mix, arm, s)], by_key[(mix, "grpo", s)], profiles[mix]["flops"])
                | compare(
                    by_key[(mix, arm, s)],
                    by_key[(mix, "grpo", s)],
                    profiles[mix]["flops"],
                    "pool_tf",
                    "pool_",
                )
                for s in seeds
                if (mix, "grpo", s) in by_key
            ]
            curves_here = [by_key[(mix, arm, s)] for s in seeds]
            table.append(
                {
                    "mix": mix,
                    "arm": arm,
                    "seeds": seeds,
                    "rows": curves_here[0].rows if curves_here else 0,
                    "final_tf": [final_value(c.points, "tf_prob") for c in curves_here],
                    "final_acc": [final_value(c.points, "accuracy") for c in curves_here],
                    "base_tf": [c.points[0]["tf_prob"] for c in curves_here],
                    "base_acc": [c.points[0]["accuracy"] for c in curves_here],
                    "total_flops": [c.points[-1]["flops"] for c in curves_here],
                    "zero_adv_groups": [c.zero_adv_groups for c in curves_here],
                    "zero_adv_rollouts": [c.zero_adv_rollouts for c in curves_here],
                    "final_pool_tf": [final_value(c.points, "pool_tf") for c in curves_here],
                    "base_pool_tf": [c.points[0]["pool_tf"] for c in curves_here],
                    **{key: [c[key] for c in comparisons] for key in (comparisons[0] if comparisons else {})},
                }
            )
    return {"table": table}


def write_markdown(
    summary: dict[str, Any],
    profiles: dict[str, dict[str, Any]],
    meta: dict[str, Any],
    settings: Settings,
    path: Path,
) -> None:
    lines = [
        "# sGPO vs plain GRPO on a CPU toy (measured, not tuned to a target)",
        "",
        f"Task: `a+b=` with 1-{MAX_DIGITS} digit operands; base model {meta['base']['num_params']:,} params "
        f"(hidden {settings.hidden_size}, {settings.num_layers} layers), supervised {settings.pretrain_steps} "
        f"steps. Every arm: {settings.steps} steps x {settings.rollouts_per_step} rollouts, lr "
        f"{settings.learning_rate}, no KL, seeds {list(settings.seeds)}. Profile: k={settings.k}, temperature 1; "
        f"sGPO: inverse rule G in [{settings.g_min}, {settings.g_max}], {settings.unsolvable_keep_fraction:.0%} of "
        f"unsolvable kept, easy-to-hard. Held-out: {settings.eval_size} broad-mix queries deduplicated from every "
        f"pool. Wall time: {meta['seconds'] / 60:.1f} min with {settings.workers} workers.",
        "",
        "Ratios are GRPO FLOPs / arm FLOPs to first reach a target on the held-out teacher-forced "
        "P(answer+EOS) (noise-free), target = base + fraction x GRPO's final gain; profiling is charged to every "
        "arm that uses it (`no prof.`: a published profile, not paid by the trainer). `tf/acc @ GRPO FLOPs`: the "
        "arm's metric at GRPO's final FLOPs. Mean ± sd over seeds; `(n/m)`: seeds that reached the target.",
        "",
        "Which table to read: on this toy GRPO's gains are per query and barely transfer to unseen sums (a "
        "hand-written GRPO loop trained on fresh queries every step moved the held-out metric by less than "
        "0.01 in 25k rollouts). The in-distribution table (the whole profiled pool, filtered-out queries "
        "included) is where plain GRPO learns within this budget, and so where the compute ratios mean "
        "something; the held-out table shows that neither arm generalises here.",
        "",
        "## Pools (stated input: level weights) and their profile",
        "",
        "| mix | level weights 1..4 | pool | p=0 | 0<p<1 | p=1 | profiling FLOPs | share of GRPO run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    grpo_flops = {
        row["mix"]: statistics.fmean(row["total_flops"])
        for row in summary["table"]
        if row["arm"] == "grpo" and row["total_flops"]
    }
    for mix in settings.mixes:
        hist = profiles[mix]["histogram"]
        middle = sum(v for k, v in hist.items() if k not in ("p=0", "p=1", "unverifiable"))
        share = profiles[mix]["flops"] / grpo_flops[mix] if mix in grpo_flops else math.nan
        lines.append(
            f"| {mix} | {MIXES[mix]} | {profiles[mix]['queries']} | {hist.get('p=0', 0)} | {middle} | "
            f"{hist.get('p=1', 0)} | {profiles[mix]['flops']:.3g} | {share:.0%} |"
        )
    lines += [
        "",
        "## Held-out (deduplicated) results",
        "",
        "| mix | arm | rows | tf: base -> final | acc final | ratio @50% | @75% | @100% | @100% no prof. | "
        "tf @ GRPO FLOPs | acc @ GRPO FLOPs |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary["table"]:
        cell = _ratio_cell(row)
        lines.append(
            f"| {row['mix']} | {row['arm']} | {row['rows']} | {statistics.fmean(row['base_tf']):.3f} -> "
            f"{_mean_spread(row['final_tf'], digits=3)} | {_mean_spread(row['final_acc'], digits=3)} | "
            f"{cell('ratio@0.5')} | {cell('ratio@0.75')} | {cell('ratio@1')} | {cell('ratio_noprof@1')} | "
            f"{_mean_spread(row.get('tf_prob_at_equal_flops', row['final_tf']), digits=3)} | "
            f"{_mean_spread(row.get('acc_at_equal_flops', row['final_acc']), digits=3)} |"
        )
    lines += [
        "",
        "## In-distribution (the whole profiled pool, teacher-forced) and training signal",
        "",
        "| mix | arm | pool tf: base -> final | ratio @50% | @100% | @100% no prof. | pool tf @ GRPO FLOPs | "
        "zero-adv groups | zero-adv rollouts | total FLOPs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary["table"]:
        cell = _ratio_cell(row, "pool_")
        lines.append(
            f"| {row['mix']} | {row['arm']} | {statistics.fmean(row['base_pool_tf']):.3f} -> "
            f"{_mean_spread(row['final_pool_tf'], digits=3)} | {cell('pool_ratio@0.5')} | {cell('pool_ratio@1')} | "
            f"{cell('pool_ratio_noprof@1')} | "
            f"{_mean_spread(row.get('pool_pool_tf_at_equal_flops', row['final_pool_tf']), digits=3)} | "
            f"{_mean_spread(row['zero_adv_groups'])} | {_mean_spread(row['zero_adv_rollouts'])} | "
            f"{statistics.fmean(row['total_flops']):.3g} |"
        )
    lines += ["", "Arms: " + "; ".join(f"`{name}` {ARMS[name].note}" for name in ARMS), ""]
    path.write_text("\n".join(lines) + "\n")


def plot(curves: list[Curve], profiles: dict[str, dict[str, Any]], settings: Settings, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {name: f"C{i}" for i, name in enumerate(ARMS)}
    mixes = list(settings.mixes)
    fig, axes = plt.subplots(3, len(mixes), figsize=(5 * len(mixes), 11), squeeze=False)
    for column, mix in enumerate(mixes):
        hist = profiles[mix]["histogram"]
        axes[0][column].bar(range(len(hist)), list(hist.values()), color="grey")
        axes[0][column].set_xticks(range(len(hist)), list(hist), rotation=30, fontsize=8)
        axes[0][column].set_title(f"{mix}: profile p̂ (k={settings.k})")
        _plot_curves(axes[1][column], [c for c in curves if c.mix == mix and c.arm in settings.arms], colors)
        axes[1][column].set_title(f"{mix}: held-out P(answer+EOS)")
        _plot_curves(
            axes[2][column],
            [c for c in curves if c.mix == mix and c.arm in settings.arms],
            colors,
            metric="pool_tf",
        )
        axes[2][column].set_title(f"{mix}: whole pool P(answer+EOS) (in-distribution)")
    fig.tight_layout()
    fig.savefig(out / "savings.png", dpi=110)
    plt.close(fig)
    ablation = [c for c in curves if c.mix == settings.ablation_mix]
    if any(c.arm in settings.ablation_arms for c in ablation):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        _plot_curves(axes[0], ablation, colors)
        axes[0].set_title(f"{settings.ablation_mix}: ablations, P(answer+EOS)")
        _plot_curves(axes[1], ablation, colors, metric="accuracy")
        axes[1].set_title(f"{settings.ablation_mix}: ablations, sampled accuracy")
        fig.tight_layout()
        fig.savefig(out / "ablations.png", dpi=110)
        plt.close(fig)


def _plot_curves(ax, curves: list[Curve], colors: dict[str, str], metric: str = "tf_prob") -> None:
    for arm in dict.fromkeys(c.arm for c in curves):
        runs = [c for c in curves if c.arm == arm]
        top = min(c.points[-1]["flops"] for c in runs)
        bottom = max(c.points[0]["flops"] for c in runs)
        grid = [bottom + (top - bottom) * i / 40 for i in range(41)]
        values = [[value_at(c.points, x, metric) for x in grid] for c in runs]
        mean = [statistics.fmean(v) for v in zip(*values, strict=True)]
        low = [min(v) for v in zip(*values, strict=True)]
        high = [max(v) for v in zip(*values, strict=True)]
        ax.plot(grid, mean, color=colors[arm], label=arm)
        ax.fill_between(grid, low, high, color=colors[arm], alpha=0.15)
    ax.set_xlabel("cumulative FLOPs (profiling charged)")
    ax.legend(fontsize=8)


# --------------------------------------------------------------------------- main


def build_jobs(
    settings: Settings, base: Path, work: Path, profiles: dict[str, dict[str, Any]], eval_ids: list[str]
) -> list[Job]:
    jobs = []
    for mix in settings.mixes:
        arms = list(settings.arms) + (list(settings.ablation_arms) if mix == settings.ablation_mix else [])
        for arm in dict.fromkeys(arms):
            for seed in settings.seeds:
                profile_dir = work / "profiles" / f"{mix}-n{settings.pool_size}-k{settings.k}"
                jobs.append(
                    Job(
                        mix,
                        arm,
                        seed,
                        str(profile_dir),
                        str(base),
                        eval_ids,
                        profiles[mix]["flops"],
                        settings,
                        str(work / "runs" / f"{mix}-{arm}-{seed}"),
                    )
                )
    # longest first keeps both workers busy to the end
    return sorted(jobs, key=lambda j: (j.arm == "grpo", j.mix), reverse=True)


def run(settings: Settings) -> dict[str, Any]:
    started = time.perf_counter()
    out = Path(settings.out)
    stamp = {"format": FORMAT_VERSION, **{name: getattr(settings, name) for name in PRETRAIN_FIELDS}}
    work = out / "work" / ("base-" + hashlib.sha1(json.dumps(stamp).encode()).hexdigest()[:8])
    work.mkdir(parents=True, exist_ok=True)
    base = work / "base"
    meta: dict[str, Any] = {"base": cached_base(settings, base, stamp)}
    # Pools and the held-out set depend only on their mix and size, never on which mixes a run selects.
    pools = {
        mix: draw_queries(
            weights, settings.pool_size, random.Random(f"pool-{mix}"), set(), settings.lsb_first
        )
        for mix, weights in MIXES.items()
    }
    taken = {q.id for pool in pools.values() for q in pool}
    eval_queries = draw_queries(
        MIXES["broad"], settings.eval_size, random.Random("held-out"), taken, settings.lsb_first
    )
    profiles = {
        mix: profile_pool(
            pools[mix], base, settings, work / "profiles" / f"{mix}-n{settings.pool_size}-k{settings.k}"
        )
        for mix in settings.mixes
    }
    for mix, info in profiles.items():
        logger.info(
            "profile %s: %s (%.3g FLOPs, %.0fs)", mix, info["histogram"], info["flops"], info["seconds"]
        )
    jobs = build_jobs(settings, base, work, profiles, [q.id for q in eval_queries])
    logger.info("training %d runs on %d workers", len(jobs), settings.workers)
    if settings.workers > 1:
        with ProcessPoolExecutor(settings.workers, mp_context=get_context("spawn")) as pool:
            curves = list(pool.map(run_job, jobs))
    else:
        curves = [run_job(job) for job in jobs]
    meta["seconds"] = time.perf_counter() - started
    summary = summarize(curves, profiles, settings)
    (out / "results.json").write_text(
        json.dumps(
            {
                "settings": asdict(settings),
                "meta": meta,
                "mixes": {m: MIXES[m] for m in settings.mixes},
                "profiles": profiles,
                "summary": summary,
                "curves": [asdict(c) for c in curves],
            },
            indent=1,
        )
    )
    write_markdown(summary, profiles, meta, settings, out / "results.md")
    plot(curves, profiles, settings, out)
    logger.info("done in %.1f min: %s", meta["seconds"] / 60, out / "results.md")
    return summary


def parse_args(argv: Sequence[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="examples/results", help="output folder (results.md, plots, work/)")
    parser.add_argument(
        "--quick", action="store_true", help="~2 minute smoke run: tiny sizes, 1 mix, 2 seeds"
    )
    for name, default in asdict(Settings(out="")).items():
        if name == "out":
            continue
        if isinstance(default, bool):
            parser.add_argument(
                f"--{name.replace('_', '-')}",
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"default: {default}",
            )
        elif isinstance(default, tuple):
            kind = type(default[0])
            parser.add_argument(
                f"--{name.replace('_', '-')}",
                nargs="+",
                type=kind,
                default=None,
                help=f"default: {' '.join(map(str, default))}",
            )
        else:
            parser.add_argument(
                f"--{name.replace('_', '-')}", type=type(default), default=None, help=f"default: {default}"
            )
    args = parser.parse_args(argv)
    settings = Settings(out=args.out)
    if args.quick:
        settings = replace(settings, **QUICK)
    overrides = {
        k: (tuple(v) if isinstance(v, list) else v)
        for k, v in vars(args).items()
        if k not in ("out", "quick") and v is not None
    }
    settings = replace(settings, **overrides)
    unknown = [m for m in settings.mixes if m not in MIXES] + [
        a for a in settings.arms + settings.ablation_arms if a not in ARMS
    ]
    if unknown:
        parser.error(f"unknown mixes/arms {unknown}; mixes: {list(MIXES)}, arms: {list(ARMS)}")
    return settings


def _quiet() -> None:
    """One thread per process, no progress bars, warnings only from the libraries."""
    import datasets
    import transformers

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    for name in ("transformers", "datasets", "sgpo_curate"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    _quiet()
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
