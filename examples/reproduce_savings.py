"""Where does GRPO's compute go, and which allocation saves it? A CPU study with a testbed that learns.

What it measures: a held-out metric that plain GRPO measurably raises, against cumulative FLOPs, for plain GRPO
and every allocation mode of `AdaptiveGRPOTrainer` (DAPO dynamic sampling, dropping zero-advantage groups, the
offline sGPO filter / group sizes / curriculum, online p̂ with uniform, knapsack and coverage group sizes, small
groups over more prompts), on pools whose pass-rate mix is a stated input. The paper (arXiv 2606.08854) claims
2.5-3.1x less compute; this study is not tuned to reach that and reports what it measures.

Steps:
 1. Task: padded least-significant-digit-first sums `a+b=` (operands of 2-5 digits, padded to 5; answer padded
    to 6 digits, then end of sequence). Reward = exactly the answer's tokens then EOS (checked on token ids),
    which is also what the teacher-forced metric scores. Subtractions `a-b=` use an operation the base never
    saw: hopeless queries (p = 0 under the base and no signal for GRPO, ever).
 2. Base: an 855k-parameter character Llama (`build_tiny_model` shape, intermediate 384) trained supervised for
    a fixed number of steps on a teacher that drops each carry with probability 0.5, so a sum's success rate
    falls with its carries and learning the carry transfers to unseen sums. One thread, fixed seeds: the
    same base on every rerun (its sha256 goes to results.json); cached in `--out`/work.
 3. Candidates (additions with 0-5 carries, subtractions) profiled once with `sgpo_curate.profile` (k samples,
    temperature 1), then a second look (more samples) at every candidate with p̂ = 0, which tells hopeless from
    hard. Each mix is a stated share of profile bins (hopeless, p̂ = 0, low, high, p̂ = 1); its held-out set and
    its pool are filled bin by bin from a seeded order of the candidates (held-out first), so both come out
    exactly as stated, are i.i.d. from the same distribution, and do not depend on which mixes or arms run.
 4. The gate: plain GRPO on the main mix, every seed. It must raise the held-out metric by `gate_sds` seed
    standard deviations; otherwise the study says so and stops before any ratio.
 5. Arms (same base, seeds, held-out set, rollouts per generation batch): rows come from `sgpo_curate.curate`
    (filter=False for unfiltered arms), the trainer's config fields do the rest. Each arm trains until its
    training FLOPs reach plain GRPO's (mean over seeds), so every comparison is at matched compute;
    profiling is charged on top to the arms that use it (and reported without the charge: a published profile
    is paid once). Two controls run on the main mix only: the filter with drop-zero, and plain GRPO with half
    the rollouts per step (twice the optimizer steps at equal FLOPs).
 6. Statistics: per arm, FLOPs to reach 50/75/100% of GRPO's final held-out gain on seed-mean curves of
    isotonic-smoothed runs (bootstrap 95% intervals over seeds; seeds that never reach it are counted, not
    dropped, and a mean curve that never does gives an upper bound on the ratio); the
    paired difference to GRPO at GRPO's final FLOPs (t interval); tokens; the zero-advantage share and the
    share of GRPO's rollouts spent on hopeless queries, which bounds what any allocation can save.
 7. Report: `results.json` (with the `headline` object), `results.md`, `README_table.md`, `curves.png`;
    `--readme README.md` rewrites the marked results section of the README from results.json.

Run (2 worker processes, one thread each; finished runs are cached, so a killed study resumes):
    nice .venv/bin/python examples/reproduce_savings.py --out examples/results --readme README.md
    nice .venv/bin/python examples/reproduce_savings.py --quick --out /tmp/sgpo-quick   # smoke run, < 2 min
`--help` lists every stated input (mixes, arms, seeds, budget, learning rate, ...).
"""

from __future__ import annotations

import argparse
import hashlib
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
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
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
    QueryProfile,
    SamplingConfig,
    curate,
    get_sampler,
    load_profiles,
    profile,
)
from sgpo_curate.models import build_tiny_model  # noqa: E402

logger = logging.getLogger("reproduce_savings")

# --------------------------------------------------------------------------- stated inputs

WIDTH = 5  # operands are zero-padded to this many digits
ANSWER_WIDTH = WIDTH + 1
CHARS = "0123456789+-="
BINS = ("hopeless", "zero", "low", "high", "one")
BIN_HELP = {
    "hopeless": "a subtraction (an operation the base never saw), p̂ = 0",
    "zero": "an addition with p̂ = 0",
    "low": "an addition with 0 < p̂ < 1/2",
    "high": "an addition with 1/2 <= p̂ < 1",
    "one": "an addition with p̂ = 1",
}
TOY_CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"


@dataclass(frozen=True)
class Mix:
    """A pool's pass-rate mix: the share of each profile bin (`BINS`), filled exactly."""

    shares: dict[str, float]
    note: str

    def counts(self, size: int) -> dict[str, int]:
        """Whole counts per bin summing to `size` (largest remainders)."""
        raw = {name: self.shares.get(name, 0.0) * size for name in BINS}
        counts = {name: math.floor(value) for name, value in raw.items()}
        by_remainder = sorted(BINS, key=lambda name: (counts[name] - raw[name], BINS.index(name)))
        for name in by_remainder[: size - sum(counts.values())]:
            counts[name] += 1
        return counts


MIXES = {
    # SmolLM2-135M-Instruct on MAWPS at k=4 left 10 of 16 queries at p̂ = 0 (DESIGN.md); here 10/16 at p̂ = 0,
    # two thirds of them truly hopeless, the rest hard but learnable.
    "smollm2": Mix(
        {"hopeless": 0.4, "zero": 0.225, "low": 0.2, "high": 0.125, "one": 0.05},
        "shaped like SmolLM2 on MAWPS: 62.5% at p̂ = 0, 40% truly hopeless",
    ),
    "broad": Mix(
        {"hopeless": 0.0, "zero": 0.15, "low": 0.35, "high": 0.35, "one": 0.15},
        "broad: every difficulty, nothing hopeless",
    ),
    "easy": Mix(
        {"hopeless": 0.0, "zero": 0.05, "low": 0.1, "high": 0.35, "one": 0.5},
        "mostly easy: half at p̂ = 1",
    ),
    # --quick only: the smoke run's base is too small to solve anything reliably
    "smoke": Mix({"hopeless": 0.25, "zero": 0.25, "low": 0.5}, "for the --quick smoke run only"),
}


@dataclass(frozen=True)
class Arm:
    """One training recipe: which rows (through `curate`) and which trainer fields.

    Args:
        note: what the arm is, for the report.
        rows: "pool" (every query, no profile columns), "profiled" (every query with its profile counts, for an
            online prior), "filter" (curate's sGPO filter), "filter_2look" (drop p̂ = 1 and every query still
            at 0 after the second look).
        rule: curate's group-size rule written to `group_size` (None: the trainer's `num_generations`).
        order: "random" (shuffled) or "easy-to-hard" (one pass over the run).
        group_size: `num_generations` (prompts per batch = rollouts per batch / group_size).
        trainer_rule: the trainer's `group_size_rule` (decided each batch from the current p̂).
        budget_group_size: under a budgeted rule (knapsack), the batch's rollouts are split over
            rollouts_per_step / budget_group_size queries (`queries_per_batch`).
        online, selection, drop_zero, dynamic, weighting: the trainer's fields.
        batch_fraction: rollouts per generation batch as a share of `rollouts_per_step` (a control: fewer rollouts
            per step means more optimizer steps at equal FLOPs).
        main_only: run on the main mix only (controls).
    """

    note: str
    rows: str = "pool"
    rule: str | None = None
    order: str = "random"
    group_size: int = 8
    trainer_rule: str | None = None
    online: bool = False
    selection: str = "order"
    budget_group_size: int | None = None
    drop_zero: bool = False
    dynamic: bool = False
    weighting: str = "query"
    batch_fraction: float = 1.0
    main_only: bool = False

    @property
    def uses_profile(self) -> bool:
        return self.rows != "pool"

    def spec(self) -> dict[str, Any]:
        """The fields that shape a run (those not at their defaults; the note is only words)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "note" and getattr(self, f.name) != f.default
        }


ARMS = {
    "grpo": Arm("plain GRPO: 16 prompts x G=8, shuffled, every query"),
    "dapo": Arm(
        "DAPO dynamic sampling: regenerate until the batch holds only informative groups", dynamic=True
    ),
    "grpo_drop": Arm("plain GRPO, zero-advantage groups not trained (exact)", drop_zero=True),
    "filter_only": Arm(
        "sGPO filter only (drop p̂=1, keep 25% of p̂=0), G=8, shuffled", rows="filter", rule="uniform"
    ),
    "sgpo": Arm(
        "sGPO as published: filter + G=ceil(1/p̂) in [2,16] + easy-to-hard (one pass)",
        rows="filter",
        rule="inverse",
        order="easy-to-hard",
    ),
    "sgpo_rollout": Arm(
        "sGPO, every rollout weighs the same (query_weighting='rollout')",
        rows="filter",
        rule="inverse",
        order="easy-to-hard",
        weighting="rollout",
    ),
    "filter_2look": Arm(
        "filter with a second look: drop p̂=1 and queries still 0 after the second look, G=8",
        rows="filter_2look",
        rule="uniform",
    ),
    "online_uniform": Arm(
        "online p̂ (profile prior), G=8, queries drawn by expected signal, parking",
        rows="profiled",
        trainer_rule="uniform",
        online=True,
        selection="signal",
    ),
    "online_knapsack": Arm(
        "online p̂ (profile prior), knapsack over 32 queries per batch, drop-zero",
        rows="profiled",
        trainer_rule="knapsack",
        online=True,
        budget_group_size=4,
        drop_zero=True,
    ),
    "coverage": Arm(
        "online p̂ (profile prior), coverage rule (P[informative] >= 0.75)",
        rows="profiled",
        trainer_rule="coverage",
        online=True,
    ),
    "filter_drop": Arm(
        "control: the sGPO filter with zero-advantage groups not trained (main mix)",
        rows="filter",
        rule="uniform",
        drop_zero=True,
        main_only=True,
    ),
    "grpo_half_batch": Arm(
        "control: plain GRPO with half the rollouts per step (8 prompts x G=8), twice the steps (main mix)",
        batch_fraction=0.5,
        main_only=True,
    ),
    "g4_drop": Arm(
        "32 prompts x G=4, drop-zero, no profile (DESIGN.md's best)", group_size=4, drop_zero=True
    ),
}
QUICK_ARMS = ("grpo", "grpo_drop", "sgpo", "online_knapsack")


def _help(text: str, default: Any = None) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class Settings:
    """Every stated input of a study (written to results.json)."""

    out: str = _help(
        "output folder: results.json, results.md, README_table.md, curves.png, work/", "examples/results"
    )
    main_mix: str = _help("the mix of the gate and the headline", "smollm2")
    mixes: tuple[str, ...] = _help("mixes to run", ("smollm2", "broad", "easy"))
    arms: tuple[str, ...] = _help("arms to run (grpo is always run)", tuple(ARMS))
    seeds_main: int = _help("seeds on the main mix", 5)
    seeds_other: int = _help("seeds on the other mixes", 3)
    hidden_size: int = _help("base model width", 128)
    num_layers: int = _help("base model layers", 4)
    intermediate_size: int = _help("base model MLP width", 384)
    pretrain_steps: int = _help("supervised steps of the base (fixed: the profile depends on it)", 800)
    pretrain_batch: int = _help("fresh sums per supervised step", 128)
    pretrain_lr: float = _help("AdamW learning rate of the base (100 warm-up steps, cosine)", 2e-3)
    carry_drop: float = _help("probability that the supervising teacher drops a carry", 0.5)
    candidates_per_carry: int = _help("profiled candidate additions per carry count 0..5", 700)
    hopeless_candidates: int = _help("profiled candidate subtractions", 600)
    k: int = _help("profile samples per query", 8)
    second_look_k: int = _help("extra samples for every candidate at p̂ = 0 (tells hopeless from hard)", 24)
    pool_size: int = _help("training queries per mix", 384)
    heldout_size: int = _help("held-out queries per mix (teacher-forced metric)", 384)
    sampled_eval_queries: int = _help("held-out queries also scored by one sample at temperature 1", 128)
    steps: int = _help("plain GRPO's optimizer steps; its FLOPs are every arm's training budget", 25)
    rollouts_per_step: int = _help("rollouts per generation batch (one optimizer step each)", 128)
    learning_rate: float = _help("AdamW learning rate of every arm (constant after warm-up)", 6e-5)
    warmup_steps: int = _help("learning-rate warm-up steps", 2)
    evaluations: int = _help("held-out evaluations per run, at equal shares of the FLOP budget", 8)
    g_min: int = _help("smallest group size", 2)
    g_max: int = _help("largest group size (sGPO's unsolvable queries get it)", 16)
    unsolvable_keep_fraction: float = _help("share of p̂ = 0 queries the sGPO filter keeps", 0.25)
    gate_sds: float = _help("the gate: GRPO's held-out gain must exceed this many seed SDs", 3.0)
    gate_stop: bool = _help(
        "stop when the gate fails (--no-gate-stop goes on, for smoke tests; the report says so)", True
    )
    targets: tuple[float, ...] = _help("fractions of GRPO's final gain to reach", (0.5, 0.75, 1.0))
    bootstrap: int = _help("bootstrap resamples of seeds for ratio intervals", 1000)
    workers: int = _help("training processes (one torch thread each)", 2)


QUICK = dict(
    mixes=("smoke",),
    main_mix="smoke",
    arms=QUICK_ARMS,
    seeds_main=2,
    seeds_other=2,
    hidden_size=64,
    num_layers=2,
    intermediate_size=192,
    pretrain_steps=400,
    pretrain_batch=64,
    pretrain_lr=3e-3,
    candidates_per_carry=60,
    hopeless_candidates=40,
    second_look_k=8,
    pool_size=48,
    heldout_size=64,
    sampled_eval_queries=32,
    steps=6,
    rollouts_per_step=32,
    learning_rate=3e-5,
    warmup_steps=0,
    evaluations=2,
    bootstrap=200,
    workers=1,
)
PRETRAIN_FIELDS = (
    "hidden_size",
    "num_layers",
    "intermediate_size",
    "pretrain_steps",
    "pretrain_batch",
    "pretrain_lr",
    "carry_drop",
)
FORMAT_VERSION = 3  # bump when the task's text format changes: cached bases and profiles are then rebuilt


def seeds_of(settings: Settings, mix: str) -> list[int]:
    return list(range(settings.seeds_main if mix == settings.main_mix else settings.seeds_other))


# --------------------------------------------------------------------------- 1. the task


def digits_lsb(number: int, width: int) -> str:
    """`number` zero-padded to `width` digits, least-significant digit first: 123 -> '32100'."""
    return str(number).zfill(width)[::-1]


def count_carries(a: int, b: int) -> int:
    carry = carries = 0
    for position in range(WIDTH):
        carry = int((a // 10**position) % 10 + (b // 10**position) % 10 + carry >= 10)
        carries += carry
    return carries


def make_query(a: int, b: int, op: str = "+") -> Query:
    """`a+b=` (or the hopeless `a-b=`, a >= b) in the padded LSB-first format."""
    value = a + b if op == "+" else a - b
    kind = "add" if op == "+" else "sub"
    return Query(
        id=f"{kind}/{a}{op}{b}",
        source="toy-lsb-addition",
        domain="math",
        prompt=(("user", f"{digits_lsb(a, WIDTH)}{op}{digits_lsb(b, WIDTH)}="),),
        answer=digits_lsb(value, ANSWER_WIDTH),
        metadata={"kind": kind, "carries": count_carries(a, b) if op == "+" else -1},
    )


def is_hopeless(query_id: str) -> bool:
    return query_id.startswith("sub/")


def random_operand(rng: random.Random) -> int:
    digits = rng.randint(2, WIDTH)
    return rng.randint(10 ** (digits - 1), 10**digits - 1)


def addition_with_carries(carries: int, rng: random.Random) -> tuple[int, int]:
    """Operands of 2-5 digits whose sum has exactly `carries` carries (rejection sampling)."""
    while True:
        a, b = random_operand(rng), random_operand(rng)
        if count_carries(a, b) == carries:
            return a, b


def teacher_answer(a: int, b: int, carry_drop: float, rng: random.Random) -> str:
    """The supervising teacher's sum: each carry is dropped with probability `carry_drop`."""
    out, carry = [], 0
    for position in range(WIDTH):
        kept = carry if carry and rng.random() >= carry_drop else 0
        total = (a // 10**position) % 10 + (b // 10**position) % 10 + kept
        out.append(total % 10)
        carry = int(total >= 10)
    out.append(carry)
    return "".join(map(str, out))


class ExactAnswerReward:
    """TRL reward: 1.0 when the completion's token ids are exactly the answer's tokens followed by EOS.

    The teacher-forced metric scores the same token sequence, so E[reward] equals the metric's probability:
    an answer without EOS (`579<pad>`, `579` cut by the length limit) or with anything after it scores 0.
    """

    __name__ = "exact_answer_eos"

    def __init__(self, tokenizer):
        self.vocab = {ch: tokenizer.convert_tokens_to_ids(ch) for ch in "0123456789"}
        self.eos = tokenizer.eos_token_id

    def target(self, answer: str) -> list[int]:
        return [self.vocab[ch] for ch in answer] + [self.eos]

    def score(self, completion_ids: Sequence[int], answer: str) -> float:
        return float(list(completion_ids) == self.target(answer))

    def __call__(self, completions, completion_ids, answer, **kwargs: Any) -> list[float]:
        return [self.score(ids, gold) for ids, gold in zip(completion_ids, answer, strict=True)]


class ExactText:
    """Profiling verifier on decoded text (the sampler drops special tokens, EOS included); `strict_profiles`
    then keeps a success only when the sample stopped right after the answer, i.e. on EOS."""

    def __call__(self, completions: Sequence[str], queries: Sequence[Query]) -> list[float | None]:
        return [float(text == query.answer) for text, query in zip(completions, queries, strict=True)]


def strict_profiles(profiles: list[QueryProfile]) -> tuple[list[QueryProfile], int]:
    """Successes that are exactly answer + EOS. With `max_new_tokens = len(answer) + 2`, a sample that matched
    the text in `len(answer) + 1` tokens stopped on EOS right after it; any other length matched only because
    special tokens were dropped from the text. Returns the profiles and how many successes were withdrawn."""
    fixed, withdrawn = [], 0
    for item in profiles:
        wanted = len(item.query.answer) + 1
        rewards = tuple(
            r if r is None or r < 0.5 or n == wanted else 0.0
            for r, n in zip(item.rewards, item.completion_tokens, strict=True)
        )
        withdrawn += sum(a != b for a, b in zip(rewards, item.rewards, strict=True))
        fixed.append(replace(item, rewards=rewards) if rewards != item.rewards else item)
    return fixed, withdrawn


# --------------------------------------------------------------------------- 2. the base model


def new_base_model(settings: Settings):
    """The tiny character Llama of `build_tiny_model` with the study's MLP width, seeded."""
    from transformers import LlamaForCausalLM

    model, tokenizer = build_tiny_model(
        chars=CHARS, hidden_size=settings.hidden_size, num_layers=settings.num_layers, max_positions=32
    )
    config = model.config
    config.intermediate_size = settings.intermediate_size
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    tokenizer.chat_template = TOY_CHAT_TEMPLATE
    return model, tokenizer


def supervised_batch(tokenizer, rng: random.Random, settings: Settings) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh sums (2-5 digit operands) with the noisy-carry teacher's answers; every sequence has one length."""
    ids, labels = [], []
    for _ in range(settings.pretrain_batch):
        a, b = random_operand(rng), random_operand(rng)
        prompt = tokenizer(make_query(a, b).messages[0]["content"], add_special_tokens=False)["input_ids"]
        answer = tokenizer(teacher_answer(a, b, settings.carry_drop, rng), add_special_tokens=False)[
            "input_ids"
        ]
        ids.append(prompt + answer + [tokenizer.eos_token_id])
        labels.append([-100] * len(prompt) + answer + [tokenizer.eos_token_id])
    return torch.tensor(ids), torch.tensor(labels)


def pretrain_base(settings: Settings, path: Path) -> dict[str, Any]:
    """Supervised training for a fixed step count on one thread (bit-identical reruns); saves model + tokenizer."""
    torch.set_num_threads(1)
    model, tokenizer = new_base_model(settings)
    rng = random.Random(12345)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.pretrain_lr, weight_decay=0.0)
    total, warmup = settings.pretrain_steps, min(100, settings.pretrain_steps // 4)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * s / total))
    )
    started, cpu = time.perf_counter(), time.process_time()
    model.train()
    for step in range(total):
        ids, labels = supervised_batch(tokenizer, rng, settings)
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step % 200 == 0:
            logger.info("pretraining step %d/%d, loss %.3f", step, total, loss.item())
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return {
        "num_params": model.num_parameters(),
        "final_loss": loss.item(),
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "torch_threads": torch.get_num_threads(),
    }


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cached_base(settings: Settings, path: Path) -> dict[str, Any]:
    """Pretrain once per pretraining settings; later runs reuse the saved base (and report its hash)."""
    record = path / "pretrain.json"
    if record.exists():
        meta = json.loads(record.read_text())
        logger.info("reusing the base model in %s (pretrained in %.0f s)", path, meta["seconds"])
    else:
        logger.info("pretraining the base model (%d steps, one thread)", settings.pretrain_steps)
        meta = pretrain_base(settings, path)
        record.write_text(json.dumps(meta, indent=1))
    meta = dict(meta, sha256=file_sha256(path / "model.safetensors"), path=str(path))
    logger.info(
        "base: %d params, final loss %.3f, sha256 %s",
        meta["num_params"],
        meta["final_loss"],
        meta["sha256"][:16],
    )
    return meta


# --------------------------------------------------------------------------- 3. candidates, pools, held-out sets


def candidate_queries(settings: Settings) -> list[Query]:
    """Additions with 0..5 carries (equal numbers) and subtractions, distinct, in a seeded order."""
    rng = random.Random("candidates")
    queries: dict[str, Query] = {}
    for carries in range(WIDTH + 1):
        made = 0
        while made < settings.candidates_per_carry:
            query = make_query(*addition_with_carries(carries, rng))
            made += query.id not in queries
            queries.setdefault(query.id, query)
    made = 0
    while made < settings.hopeless_candidates:
        a, b = sorted((random_operand(rng), random_operand(rng)), reverse=True)
        if set(digits_lsb(b, WIDTH)) <= {"0", "5"}:
            continue  # a - b equals a + b with some carries dropped only when every digit of b is 0 or 5
        query = make_query(a, b, "-")
        made += query.id not in queries
        queries.setdefault(query.id, query)
    return list(queries.values())


def sampling_config(k: int, seed: int) -> SamplingConfig:
    # two tokens beyond the answer: a sample that matched the text without stopping on EOS shows a longer length
    return SamplingConfig(
        k=k, max_new_tokens=ANSWER_WIDTH + 2, temperature=1.0, top_p=1.0, seed=seed, batch_queries=64
    )


def run_profile(queries: list[Query], sampler, out_dir: Path, k: int, seed: int) -> list[QueryProfile]:
    """`sgpo_curate.profile` with the exact-text verifier, made strict (answer + EOS); resumes if interrupted."""
    profile(
        queries,
        sampler,
        ExactText(),
        ProfileConfig(out_dir=str(out_dir), progress=False),
        sampling_config(k, seed),
        source="toy-lsb-addition",
    )
    profiles, withdrawn = strict_profiles(load_profiles(out_dir))
    if withdrawn:
        logger.warning("%s: %d text matches did not stop on EOS and were scored 0", out_dir.name, withdrawn)
    return profiles


def profile_flops(num_params: int, profiles: Sequence[QueryProfile]) -> float:
    """What profiling these queries cost (as `ProfileSummary.flops`: each prompt once, every generated token)."""
    tokens = sum(p.prompt_tokens + sum(p.completion_tokens) for p in profiles)
    return 2.0 * num_params * tokens


def bin_of(item: QueryProfile) -> str | None:
    """The profile bin of a candidate; None for a subtraction the base solved (not hopeless after all)."""
    if is_hopeless(item.id):
        return "hopeless" if item.num_correct == 0 else None
    p = item.num_correct / item.num_samples
    return "zero" if p == 0 else "one" if p == 1 else "low" if p < 0.5 else "high"


def compose(
    mix_name: str, candidates: list[QueryProfile], settings: Settings
) -> dict[str, list[QueryProfile]]:
    """The mix's held-out set, then its pool, filled bin by bin from one seeded order of the candidates."""
    mix = MIXES[mix_name]
    order = sorted(candidates, key=lambda p: p.id)
    random.Random(f"mix-{mix_name}").shuffle(order)
    taken: set[str] = set()
    out = {}
    for role, size in (("heldout", settings.heldout_size), ("pool", settings.pool_size)):
        wanted = mix.counts(size)
        chosen: list[QueryProfile] = []
        for item in order:
            name = bin_of(item)
            if item.id not in taken and name is not None and wanted[name] > 0:
                wanted[name] -= 1
                taken.add(item.id)
                chosen.append(item)
        missing = {name: n for name, n in wanted.items() if n}
        if missing:
            raise ValueError(
                f"mix {mix_name!r}, {role}: the candidates cannot fill bins {missing}; raise "
                "--candidates-per-carry / --hopeless-candidates or lower --pool-size / --heldout-size"
            )
        random.Random(f"{mix_name}-{role}").shuffle(chosen)  # bins fill at different rates: mix them again
        out[role] = chosen
    return out


def histogram(profiles: Sequence[QueryProfile]) -> dict[str, int]:
    counts = Counter(bin_of(p) for p in profiles)
    return {name: counts.get(name, 0) for name in BINS}


def pass_rate_levels(profiles: Sequence[QueryProfile]) -> dict[str, int]:
    """The profile histogram at every level c/k (what a user of the pool sees)."""
    counts = Counter(p.num_correct for p in profiles)
    k = max((p.num_samples for p in profiles), default=0)
    return {f"{c}/{k}": counts.get(c, 0) for c in range(k + 1)}


def merged_second_look(first: QueryProfile, second: QueryProfile | None) -> QueryProfile:
    """A profile with the second look's samples appended (unchanged when there was no second look)."""
    if second is None:
        return first
    return replace(
        first,
        rewards=first.rewards + second.rewards,
        completion_tokens=first.completion_tokens + second.completion_tokens,
        completions=(),
    )


@dataclass
class Pools:
    """Everything the arms of one mix share."""

    mix: str
    pool: list[QueryProfile]
    heldout: list[QueryProfile]
    second_look: dict[str, QueryProfile]
    profile_flops: float
    second_look_flops: float
    profiling_cpu_seconds: float

    def summary(self) -> dict[str, Any]:
        zero = [p for p in self.pool if p.num_correct == 0]
        still = [p for p in zero if self.second_look[p.id].num_correct == 0]
        return {
            "stated_shares": MIXES[self.mix].shares,
            "note": MIXES[self.mix].note,
            "pool_bins": histogram(self.pool),
            "pool_levels": pass_rate_levels(self.pool),
            "heldout_bins": histogram(self.heldout),
            "pool_carries": dict(sorted(Counter(p.query.metadata["carries"] for p in self.pool).items())),
            "second_look": {
                "zero_at_k": len(zero),
                "still_zero": len(still),
                "still_zero_hopeless": sum(is_hopeless(p.id) for p in still),
                "still_zero_learnable": sum(not is_hopeless(p.id) for p in still),
                "zero_hopeless": sum(is_hopeless(p.id) for p in zero),
            },
            "profile_flops": self.profile_flops,
            "second_look_flops": self.second_look_flops,
            # what the arms' curation read (strict k-sample profile; the second look of its p̂ = 0 queries):
            # [id, num_correct, num_samples] per query, for `benchmarks/validate_simulator.py --study`
            "counts": [[p.id, p.num_correct, p.num_samples] for p in self.pool],
            "second_look_counts": [[p.id, p.num_correct, p.num_samples] for p in self.second_look.values()],
        }


def build_pools(settings: Settings, base: Path, work: Path, num_params: int) -> dict[str, Pools]:
    """Profile the candidates (and give every p̂ = 0 candidate a second look), then compose every mix."""
    queries = candidate_queries(settings)
    cpu = time.process_time()
    sampler = get_sampler("transformers", str(base), device="cpu")
    version = getattr(sampler, "version", "1")  # how the sampler draws: a new version gives new profiles
    stamp = json.dumps([FORMAT_VERSION, version, settings.k, settings.second_look_k, [q.id for q in queries]])
    work = work / f"profiles-{hashlib.sha256(stamp.encode()).hexdigest()[:10]}"
    cost, fresh = work / "cpu_seconds.json", not work.exists()
    candidates = run_profile(queries, sampler, work / "candidates", settings.k, seed=0)
    zero = [p.query for p in candidates if p.num_correct == 0]
    looks = run_profile(zero, sampler, work / "second-look", settings.second_look_k, seed=1)
    second = {p.id: p for p in looks}
    if fresh:  # what profiling costs from scratch (a resumed pass would under-count it)
        cost.write_text(json.dumps({"cpu_seconds": time.process_time() - cpu}))
    profiling_cpu = json.loads(cost.read_text())["cpu_seconds"] if cost.exists() else math.nan
    logger.info(
        "profiled %d candidates (k=%d), %d at p̂=0 looked at again (k=%d): %d still 0 (%d of them hopeless)",
        len(candidates),
        settings.k,
        len(zero),
        settings.second_look_k,
        sum(p.num_correct == 0 for p in looks),
        sum(p.num_correct == 0 and is_hopeless(p.id) for p in looks),
    )
    pools = {}
    for mix in settings.mixes:
        parts = compose(mix, candidates, settings)
        pool_second = {p.id: second[p.id] for p in parts["pool"] if p.id in second}
        pools[mix] = Pools(
            mix=mix,
            pool=parts["pool"],
            heldout=parts["heldout"],
            second_look=pool_second,
            profile_flops=profile_flops(num_params, parts["pool"]),
            second_look_flops=profile_flops(num_params, list(pool_second.values())),
            profiling_cpu_seconds=profiling_cpu,
        )
        logger.info(
            "mix %s: pool %s, held-out %s", mix, histogram(parts["pool"]), histogram(parts["heldout"])
        )
    return pools


# --------------------------------------------------------------------------- 5. arms: rows and trainer config


PROFILE_COLUMNS = ("num_correct", "num_samples", "pass_rate", "group_size", "difficulty", "curriculum_rank")


def arm_profiles(arm: Arm, pools: Pools) -> list[QueryProfile]:
    """The profiles the arm's curation reads: the first look, with the second look's samples appended for
    `filter_2look`."""
    if arm.rows == "filter_2look":
        return [merged_second_look(p, pools.second_look.get(p.id)) for p in pools.pool]
    return pools.pool


def arm_curation(arm: Arm, settings: Settings, seed: int) -> CurateConfig:
    """The `curate` settings of the arm's rows (the run's seed picks the kept unsolvable queries)."""
    return CurateConfig(
        rule=arm.rule or "uniform",
        g_min=settings.g_min,
        g_max=settings.g_max,
        uniform_group_size=arm.group_size,
        unsolvable_keep_fraction=0.0 if arm.rows == "filter_2look" else settings.unsolvable_keep_fraction,
        filter=arm.rows in ("filter", "filter_2look"),
        order=arm.order,
        seed=seed,
    )


def curation_record(arm: Arm, settings: Settings) -> dict[str, Any]:
    """What results.json says about an arm's allocation, enough to curate its rows again from the pool's counts
    (`pools[mix]["counts"]`, plus `second_look_counts` when `profile` says so) and to tell offline arms from
    those the trainer re-allocates while it runs (`trainer`: the arm's non-default fields)."""
    config = asdict(arm_curation(arm, settings, seed=0))
    del config["seed"], config["config_name"]  # the seed is the run's seed
    return {
        "curate_config": config,
        "curate_seed": "the run's seed",
        "profile": "first_and_second_look" if arm.rows == "filter_2look" else "first_look",
        "trainer": arm.spec(),
    }


def arm_rows(arm: Arm, pools: Pools, settings: Settings, seed: int) -> list[dict[str, Any]]:
    """The arm's training rows through `curate`, in training order; profile columns only if the arm pays for them."""
    dataset = curate(arm_profiles(arm, pools), arm_curation(arm, settings, seed)).dataset
    keep = ["id", "prompt", "answer"] + (list(PROFILE_COLUMNS) if arm.uses_profile else [])
    return [{name: row[name] for name in keep} for row in dataset]


def prior_flops(arm: Arm, pools: Pools) -> float:
    if not arm.uses_profile:
        return 0.0
    return pools.profile_flops + (pools.second_look_flops if arm.rows == "filter_2look" else 0.0)


def prior_tokens(arm: Arm, pools: Pools) -> int:
    if not arm.uses_profile:
        return 0
    looked = list(pools.second_look.values()) if arm.rows == "filter_2look" else []
    return sum(p.prompt_tokens + sum(p.completion_tokens) for p in pools.pool + looked)


def trainer_args(arm: Arm, settings: Settings, seed: int, out_dir: str, prior: float, max_steps: int):
    one_pass = arm.order == "easy-to-hard"
    return AdaptiveGRPOConfig(
        output_dir=out_dir,
        use_cpu=True,
        bf16=False,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        log_level="error",
        max_steps=max_steps,
        per_device_train_batch_size=round(settings.rollouts_per_step * arm.batch_fraction),
        num_generations=arm.group_size,
        max_completion_length=ANSWER_WIDTH + 2,
        temperature=1.0,
        top_k=0,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=settings.warmup_steps,
        beta=0.0,
        seed=seed,
        data_seed=seed,
        shuffle_dataset=not one_pass,
        curriculum_schedule="one-pass" if one_pass else "epochs",
        group_size_column="group_size" if arm.rule is not None else None,
        group_size_rule=arm.trainer_rule,
        min_group_size=settings.g_min,
        max_group_size=settings.g_max,
        queries_per_batch=settings.rollouts_per_step // arm.budget_group_size
        if arm.budget_group_size
        else None,
        query_selection=arm.selection,
        online_pass_rate=arm.online,
        drop_zero_advantage_groups=arm.drop_zero,
        dynamic_sampling=arm.dynamic,
        query_weighting=arm.weighting,
        prior_flops=prior,
        compute_summary_file=None,
        pass_rate_trace_file=None,
    )


# --------------------------------------------------------------------------- 6. train and evaluate one run


class HeldOut:
    """A held-out set scored two ways: teacher-forced P(answer + EOS) (one forward pass, no sampling noise) and
    one sample per query at temperature 1 (fixed seed), rewarded by `ExactAnswerReward`."""

    def __init__(self, queries: Sequence[Query], tokenizer, sampled: int):
        self.reward = ExactAnswerReward(tokenizer)
        prompts = [
            tokenizer(q.messages[0]["content"], add_special_tokens=False)["input_ids"] for q in queries
        ]
        targets = [self.reward.target(q.answer) for q in queries]
        self.ids = torch.tensor(
            [p + t for p, t in zip(prompts, targets, strict=True)]
        )  # one length: no padding
        self.prompt_length = len(prompts[0])
        self.learnable = torch.tensor([not is_hopeless(q.id) for q in queries])
        self.answers = [q.answer for q in queries[:sampled]]
        self.sampled_prompts = torch.tensor(prompts[:sampled])
        self.pad = tokenizer.pad_token_id

    @torch.no_grad()
    def answer_probabilities(self, model) -> torch.Tensor:
        """P(exactly answer + EOS | prompt) per query."""
        logits = model(input_ids=self.ids).logits[:, self.prompt_length - 1 : -1].float()
        targets = self.ids[:, self.prompt_length :]
        logps = torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        return logps.sum(-1).exp()

    @torch.no_grad()
    def sampled_accuracy(self, model) -> float:
        if not self.answers:
            return math.nan
        with torch.random.fork_rng():
            torch.manual_seed(1234)  # the same sampling noise at every evaluation
            out = model.generate(
                input_ids=self.sampled_prompts,
                attention_mask=torch.ones_like(self.sampled_prompts),
                do_sample=True,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                max_new_tokens=ANSWER_WIDTH + 2,
                pad_token_id=self.pad,
                eos_token_id=self.reward.eos,
            )
        rewards = [
            self.reward.score(cut_at_eos(row, self.reward.eos), a)
            for row, a in zip(out[:, self.prompt_length :].tolist(), self.answers, strict=True)
        ]
        return statistics.fmean(rewards)

    def evaluate(self, model) -> dict[str, float]:
        was_training = model.training
        model.eval()
        probabilities = self.answer_probabilities(model)
        metrics = {
            "tf": probabilities.mean().item(),
            "tf_learnable": probabilities[self.learnable].mean().item() if self.learnable.any() else math.nan,
            "acc": self.sampled_accuracy(model),
        }
        model.train(was_training)
        return metrics


def cut_at_eos(ids: Sequence[int], eos: int) -> list[int]:
    """A generated row up to and including its first EOS (as TRL cuts completions)."""
    ids = list(ids)
    return ids[: ids.index(eos) + 1] if eos in ids else ids


@dataclass(frozen=True)
class Job:
    """One (mix, arm, seed) run: everything it needs, picklable for the worker processes."""

    mix: str
    arm: str
    seed: int
    rows: tuple
    heldout: tuple
    base: str
    prior: float
    prior_tokens: int
    budget: float | None  # training FLOPs to spend; None: plain GRPO's `steps` (it sets the budget)
    max_steps: int
    settings: Settings
    path: str

    @property
    def key(self) -> str:
        """What the cached result must match to be reused."""
        spec = {
            "arm": ARMS[self.arm].spec(),
            "rows": hashlib.sha256(json.dumps(self.rows, sort_keys=True).encode()).hexdigest(),
            "heldout": hashlib.sha256(json.dumps(self.heldout).encode()).hexdigest(),
            "base": self.base_hash,
            "prior": self.prior,
            "budget": self.budget,
            "max_steps": self.max_steps,
            "seed": self.seed,
            **{f.name: getattr(self.settings, f.name) for f in fields(Settings) if f.name in RUN_FIELDS},
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()

    @property
    def base_hash(self) -> str:
        return file_sha256(Path(self.base) / "model.safetensors")


RUN_FIELDS = (
    "rollouts_per_step",
    "learning_rate",
    "warmup_steps",
    "evaluations",
    "g_min",
    "g_max",
    "sampled_eval_queries",
    "steps",
)


def cached_run(job: Job) -> dict[str, Any] | None:
    path = Path(job.path)
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("key") == job.key:
            return saved
    return None


def run_job(job: Job) -> dict[str, Any]:
    """Train one run (or reuse its cached result) and return its evaluation curve and compute totals."""
    saved = cached_run(job)
    if saved is not None:
        return dict(saved, reused=True)
    _quiet()
    started, cpu = time.perf_counter(), time.process_time()
    result = train_and_evaluate(job)
    result.update(key=job.key, seconds=time.perf_counter() - started, cpu_seconds=time.process_time() - cpu)
    path = Path(job.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps(result))
    os.replace(scratch, path)
    return result


def train_and_evaluate(job: Job) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback

    settings, arm = job.settings, ARMS[job.arm]
    tokenizer = AutoTokenizer.from_pretrained(job.base)
    model = AutoModelForCausalLM.from_pretrained(job.base)
    heldout = HeldOut([Query.from_row(row) for row in job.heldout], tokenizer, settings.sampled_eval_queries)
    rows = [dict(row) for row in job.rows]
    args = trainer_args(
        arm, settings, job.seed, str(Path(job.path).with_suffix("")), job.prior, job.max_steps
    )
    trainer = AdaptiveGRPOTrainer(
        model=model,
        reward_funcs=ExactAnswerReward(tokenizer),
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    trainer.remove_callback(PrinterCallback)
    recorder = CurveRecorder(trainer, heldout, job)
    trainer.add_callback(recorder.callback())
    recorder.record(0)
    trainer.train()
    if recorder.points[-1]["step"] != trainer.state.global_step:
        recorder.record(trainer.state.global_step)
    return {
        "mix": job.mix,
        "arm": job.arm,
        "seed": job.seed,
        "rows": len(rows),
        "steps": trainer.state.global_step,
        "points": recorder.points,
        "totals": trainer.compute_ledger.totals(),
        **zero_advantage_shares(trainer.state.log_history),
        "hopeless_rollout_share": hopeless_share(trainer.planner.trace, [r["id"] for r in rows]),
        **signal_shares(trainer.planner.trace),
        "prior_tokens": job.prior_tokens,
    }


class CurveRecorder:
    """Evaluates the held-out set at step 0 and each time training FLOPs pass the next equal share of the budget;
    stops training once the budget is spent. Plain GRPO (no budget yet) evaluates at equal shares of its steps."""

    def __init__(self, trainer, heldout: HeldOut, job: Job):
        self.trainer, self.heldout, self.job = trainer, heldout, job
        self.points: list[dict[str, float]] = []
        self.next_evaluation = 1

    def training_flops(self) -> float:
        return self.trainer.compute_ledger.totals()["training_flops"]

    def record(self, step: int) -> None:
        totals = self.trainer.compute_ledger.totals()
        metrics = self.heldout.evaluate(self.trainer.model)
        self.points.append(
            {
                "step": step,
                "training_flops": totals["training_flops"],
                "total_flops": totals["total_flops"],
                "rollouts": totals["rollouts"],
                "rollout_tokens": totals["rollout_tokens"],
                "trained_tokens": totals["trained_tokens"],
                **metrics,
            }
        )

    def due(self, step: int) -> tuple[bool, bool]:
        """(evaluate now, stop now)."""
        n = self.job.settings.evaluations
        if self.job.budget is None:
            every = max(1, self.job.max_steps // n)
            return step % every == 0 or step >= self.job.max_steps, False
        spent = self.training_flops() / self.job.budget
        done = spent >= 1.0 or step >= self.job.max_steps
        if spent >= self.next_evaluation / n or done:
            while self.next_evaluation / n <= spent:
                self.next_evaluation += 1
            return True, done
        return False, done

    def callback(self):
        from transformers import TrainerCallback

        recorder = self

        class Evaluate(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                evaluate, stop = recorder.due(state.global_step)
                if evaluate:
                    recorder.record(state.global_step)
                if stop:
                    control.should_training_stop = True

        return Evaluate()


def zero_advantage_shares(log_history: list[dict[str, Any]]) -> dict[str, float]:
    """Mean over steps of the shares of generated rollouts in all-equal groups, and of rollouts trained."""
    logged = [e for e in log_history if "sgpo/frac_zero_adv_rollouts" in e]
    trained = [e["sgpo/trained_rollouts_frac"] for e in log_history if "sgpo/trained_rollouts_frac" in e]
    return {
        "zero_adv_rollouts": statistics.fmean(e["sgpo/frac_zero_adv_rollouts"] for e in logged)
        if logged
        else math.nan,
        "zero_adv_groups": statistics.fmean(e["sgpo/frac_zero_adv_groups"] for e in logged)
        if logged
        else math.nan,
        "zero_adv_by_fifth": [
            statistics.fmean(e["sgpo/frac_zero_adv_rollouts"] for e in part) if part else math.nan
            for part in (logged[i * len(logged) // 5 : (i + 1) * len(logged) // 5] for i in range(5))
        ],
        "trained_rollouts_frac": statistics.fmean(trained) if trained else 1.0,
    }


def signal_shares(trace: list[dict[str, Any]]) -> dict[str, Any]:
    """Measured gradient signal per generated rollout, sum over groups of s·f/(s + f) over their rollouts (an
    unbiased estimate of (G - 1)·p(1-p) per group, what `sgpo_curate.simulate` predicts), over the run and by
    fifth of its groups."""
    groups = [(t["successes"], t["failures"]) for t in trace if t["successes"] + t["failures"] > 0]

    def signal(part: list[tuple[float, float]]) -> float:
        rollouts = sum(s + f for s, f in part)
        return sum(s * f / (s + f) for s, f in part) / rollouts if rollouts else math.nan

    fifths = [groups[i * len(groups) // 5 : (i + 1) * len(groups) // 5] for i in range(5)]
    return {"signal_per_rollout": signal(groups), "signal_by_fifth": [signal(part) for part in fifths]}


def hopeless_share(trace: list[dict[str, Any]], ids: list[str]) -> float:
    """Share of the run's generated rollouts that went to hopeless queries (the planner's trace)."""
    total = sum(t["rollouts"] for t in trace)
    return sum(t["rollouts"] for t in trace if is_hopeless(ids[t["row"]])) / total if total else math.nan


# --------------------------------------------------------------------------- 7. statistics


GRID_POINTS = 201
AXES = ("flops", "flops_amortised", "tokens")


def monotone(values: Sequence[float]) -> list[float]:
    """The isotonic (non-decreasing) least-squares fit of a curve (pool adjacent violators). A rising curve is left
    as it is, dips from noise are averaged out; unlike a moving average it does not pull the start up or the end
    down, so the base (evaluated exactly) stays the base and a final value stays final."""
    blocks: list[list[float]] = []  # [mean, weight]
    for value in values:
        blocks.append([value, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m2, w2), (m1, w1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2])
    return [mean for mean, weight in blocks for _ in range(int(weight))]


def x_value(point: dict[str, Any], run: dict[str, Any], axis: str) -> float:
    """A point's x: FLOPs with the profile charged, FLOPs without it (a published profile), or tokens processed
    (rollout tokens plus the profile's)."""
    if axis == "flops":
        return point["total_flops"]
    if axis == "flops_amortised":
        return point["training_flops"]
    return point["rollout_tokens"] + run["prior_tokens"]


def curves_on_grid(runs: Sequence[dict], metric: str, axis: str, smoothed: bool = True):
    """Monotone-smoothed curves of `runs` on one grid from 0 to the earliest end among them. Before a run's first point
    the model is the base (profiling does not train), so curves extend flat to the left."""
    import numpy as np

    xs = [[x_value(p, run, axis) for p in run["points"]] for run in runs]
    grid = np.linspace(0.0, min(x[-1] for x in xs), GRID_POINTS)
    values = np.array(
        [np.interp(grid, x, _smoothing(run, metric, smoothed)) for x, run in zip(xs, runs, strict=True)]
    )
    return grid, values


def _smoothing(run: dict[str, Any], metric: str, smoothed: bool) -> list[float]:
    values = [p[metric] for p in run["points"]]
    return monotone(values) if smoothed else values


def first_crossing(grid, ys, target: float) -> float | None:
    """The smallest x where the piecewise-linear curve reaches `target`; None if it never does."""
    import numpy as np

    above = np.nonzero(ys >= target)[0]
    if not len(above):
        return None
    i = int(above[0])
    if i == 0:
        return float(grid[0])
    return float(grid[i - 1] + (target - ys[i - 1]) / (ys[i] - ys[i - 1]) * (grid[i] - grid[i - 1]))


def reach(grpo, arm, fraction: float) -> dict[str, Any]:
    """FLOPs for the seed-mean curves of GRPO and of the arm to reach `fraction` of GRPO's final gain, and their
    ratio. `grpo` and `arm` are (grid, values) pairs. When the arm's mean curve never reaches the target the ratio
    is None and `ratio_below` bounds it (GRPO's FLOPs over the arm's last)."""
    (grpo_grid, grpo_values), (arm_grid, arm_values) = grpo, arm
    reference = grpo_values.mean(axis=0)
    target = float(reference[0] + fraction * (reference[-1] - reference[0]))
    grpo_x = first_crossing(grpo_grid, reference, target)
    arm_x = first_crossing(arm_grid, arm_values.mean(axis=0), target)
    return {
        "target": target,
        "grpo_flops": grpo_x,
        "arm_flops": arm_x,
        "ratio": grpo_x / arm_x if grpo_x is not None and arm_x else None,
        "ratio_below": grpo_x / float(arm_grid[-1]) if grpo_x is not None and arm_x is None else None,
    }


def bootstrap_ratio(grpo, arm, fraction: float, resamples: int, seed: int) -> dict[str, Any]:
    """Percentile 95% interval of the ratio over seed resamples (GRPO's seeds and the arm's, independently).

    A resample whose arm never reaches the target has a ratio below every reached one (its curve ends below the
    target), so it sorts first; when more than 2.5% of resamples are censored the lower end is unknown (None).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(resamples):
        pick_g = rng.integers(0, len(grpo[1]), len(grpo[1]))
        pick_a = rng.integers(0, len(arm[1]), len(arm[1]))
        ratio = reach((grpo[0], grpo[1][pick_g]), (arm[0], arm[1][pick_a]), fraction)["ratio"]
        ratios.append(-math.inf if ratio is None else ratio)
    ratios.sort()
    low, high = ratios[int(0.025 * (resamples - 1))], ratios[math.ceil(0.975 * (resamples - 1))]
    return {
        "ci_low": None if low == -math.inf else low,
        "ci_high": None if high == -math.inf else high,
        "bootstrap_censored": sum(r == -math.inf for r in ratios) / resamples,
    }


T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def mean_interval(values: Sequence[float]) -> tuple[float, float | None, float | None]:
    """Mean and two-sided 95% t interval (n - 1 degrees of freedom); no interval from one value."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None, None
    half = T95.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def value_at(run: dict[str, Any], metric: str, flops: float) -> float:
    import numpy as np

    points = run["points"]
    return float(np.interp(flops, [p["total_flops"] for p in points], [p[metric] for p in points]))


def matched_difference(grpo_runs: list[dict], arm_runs: list[dict], metric: str) -> dict[str, Any]:
    """The arm minus GRPO at GRPO's final FLOPs (mean over its seeds), paired by seed, with a 95% t interval."""
    at = statistics.fmean(run["points"][-1]["total_flops"] for run in grpo_runs)
    by_seed = {run["seed"]: run for run in grpo_runs}
    diffs = [value_at(run, metric, at) - value_at(by_seed[run["seed"]], metric, at) for run in arm_runs]
    mean, low, high = mean_interval(diffs)
    short = [run["seed"] for run in arm_runs if run["points"][-1]["total_flops"] < 0.99 * at]
    return {
        "at_flops": at,
        "mean": mean,
        "ci_low": low,
        "ci_high": high,
        "per_seed": diffs,
        "seeds_ended_before": short,
    }


def gate(grpo_runs: list[dict], settings: Settings) -> dict[str, Any]:
    """GRPO's held-out gain (teacher-forced) must exceed `gate_sds` standard deviations of the gain over seeds."""
    gains = [run["points"][-1]["tf"] - run["points"][0]["tf"] for run in grpo_runs]
    mean = statistics.fmean(gains)
    sd = statistics.stdev(gains) if len(gains) > 1 else math.nan
    passed = len(gains) > 1 and mean > 0 and mean >= settings.gate_sds * sd
    return {
        "passed": bool(passed),
        "grpo_heldout_gain": mean,
        "grpo_heldout_gain_sd": sd,
        "seeds": len(gains),
        "threshold_sds": settings.gate_sds,
        "metric": "held-out teacher-forced P(answer + EOS), last evaluation minus the base",
        "base_tf": grpo_runs[0]["points"][0]["tf"],
        "final_tf": [run["points"][-1]["tf"] for run in grpo_runs],
        "base_acc": grpo_runs[0]["points"][0]["acc"],
        "final_acc": [run["points"][-1]["acc"] for run in grpo_runs],
    }


def summarize_arm(arm_runs: list[dict], grpo_runs: list[dict], settings: Settings) -> dict[str, Any]:
    """Everything the report says about one arm on one mix (GRPO itself included, as the reference)."""
    out: dict[str, Any] = {"seeds": len(arm_runs)}
    for axis in AXES:
        grpo = curves_on_grid(grpo_runs, "tf", axis)
        arm = curves_on_grid(arm_runs, "tf", axis)
        for fraction in settings.targets:
            result = reach(grpo, arm, fraction)
            per_seed = [first_crossing(arm[0], row, result["target"]) for row in arm[1]]
            result.update(per_seed=per_seed, seeds_reached=sum(x is not None for x in per_seed))
            result.update(bootstrap_ratio(grpo, arm, fraction, settings.bootstrap, seed=len(out)))
            out[f"{axis}@{fraction:g}"] = result
    for metric in ("tf", "acc", "tf_learnable"):
        out[f"matched_{metric}"] = matched_difference(grpo_runs, arm_runs, metric)
    for name in (
        "zero_adv_rollouts",
        "zero_adv_groups",
        "trained_rollouts_frac",
        "hopeless_rollout_share",
        "steps",
        "rows",
    ):
        out[name] = [r[name] for r in arm_runs]
    out["zero_adv_by_fifth"] = [
        statistics.fmean(v) for v in zip(*(r["zero_adv_by_fifth"] for r in arm_runs), strict=True)
    ]
    if all("signal_per_rollout" in r for r in arm_runs):  # runs cached before it was recorded lack it
        out["signal_per_rollout"] = [r["signal_per_rollout"] for r in arm_runs]
        out["signal_by_fifth"] = [
            statistics.fmean(v) for v in zip(*(r["signal_by_fifth"] for r in arm_runs), strict=True)
        ]
    for name in (
        "total_flops",
        "training_flops",
        "prior_flops",
        "rollouts",
        "rollout_tokens",
        "trained_tokens",
    ):
        out[name] = statistics.fmean(r["totals"][name] for r in arm_runs)
    out["final_tf"] = [r["points"][-1]["tf"] for r in arm_runs]
    out["final_acc"] = [r["points"][-1]["acc"] for r in arm_runs]
    out["cpu_seconds"] = statistics.fmean(r["cpu_seconds"] for r in arm_runs)
    return out


def headline(summary: dict[str, Any], gate_result: dict[str, Any]) -> dict[str, Any]:
    """The machine-readable claim for the main mix: a ratio is GRPO's FLOPs over the arm's FLOPs to reach 100% of
    GRPO's final held-out gain, profiling charged; the matched difference is in held-out P(answer + EOS)."""
    arms = {}
    for name, arm in summary.items():
        full, matched = arm["flops@1"], arm["matched_tf"]
        arms[name] = {
            "ratio_mean": full["ratio"],
            "ratio_ci_low": full["ci_low"],
            "ratio_ci_high": full["ci_high"],
            "seeds_reached": full["seeds_reached"],
            "seeds": arm["seeds"],
            "matched_flops_diff_mean": matched["mean"],
            "matched_flops_diff_ci_low": matched["ci_low"],
            "matched_flops_diff_ci_high": matched["ci_high"],
        }
    keys = ("passed", "grpo_heldout_gain", "grpo_heldout_gain_sd", "seeds")
    return {"gate": {key: gate_result[key] for key in keys}, "arms": arms}


def saving_bound(grpo: dict[str, Any]) -> dict[str, float]:
    """No allocation can save more than 1 / (1 - z) when a share z of GRPO's rollouts carries no signal: measured
    as GRPO's zero-advantage share (an upper bound on z) and its share on hopeless queries (a lower bound)."""
    zero = statistics.fmean(grpo["zero_adv_rollouts"])
    hopeless = statistics.fmean(grpo["hopeless_rollout_share"])
    return {
        "grpo_zero_adv_rollouts": zero,
        "grpo_hopeless_rollouts": hopeless,
        "max_saving_if_zero_adv_wasted": 1 / (1 - zero) if zero < 1 else math.inf,
        "max_saving_if_hopeless_wasted": 1 / (1 - hopeless) if hopeless < 1 else math.inf,
        "drop_zero_saving_expected": 1 / (1 - 0.75 * zero),
    }


# --------------------------------------------------------------------------- orchestration


@dataclass
class Study:
    """The shared state of one study: settings, base model, pools, where runs are cached."""

    settings: Settings
    work: Path
    base: Path
    base_meta: dict[str, Any]
    pools: dict[str, Pools]

    def job(self, mix: str, arm_name: str, seed: int, budget: float | None, max_steps: int) -> Job:
        arm, pools = ARMS[arm_name], self.pools[mix]
        rows = arm_rows(arm, pools, self.settings, seed)
        return Job(
            mix=mix,
            arm=arm_name,
            seed=seed,
            rows=tuple(json.loads(json.dumps(rows))),
            heldout=tuple(p.query.to_row() for p in pools.heldout),
            base=str(self.base),
            prior=prior_flops(arm, pools),
            prior_tokens=prior_tokens(arm, pools),
            budget=budget,
            max_steps=max_steps,
            settings=self.settings,
            path=str(self.work / "runs" / mix / arm_name / f"seed{seed}.json"),
        )


class InProcess:
    """An executor for `--workers 1`: runs each job when submitted (no worker start-up cost)."""

    def submit(self, function: Callable, *args: Any) -> Future:
        future: Future = Future()
        future.set_result(function(*args))
        return future

    def __enter__(self) -> InProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def executor(workers: int):
    if workers <= 1:
        return InProcess()
    return ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_quiet)


class Runner:
    """Submits runs in order: plain GRPO on every mix first (the main mix's seeds are the gate), then each mix's
    arms once its GRPO runs have set the FLOP budget and the gate has passed."""

    def __init__(self, study: Study, pool):
        self.study, self.pool = study, pool
        self.pending: dict[Future, Job] = {}
        self.runs: dict[tuple[str, str], list[dict]] = {}
        self.gate: dict[str, Any] | None = None
        self.ready: list[str] = []
        self.total = 0
        self.finished = 0

    def submit(self, job: Job) -> None:
        self.pending[self.pool.submit(run_job, job)] = job
        self.total += 1

    def run(self) -> None:
        settings = self.study.settings
        for mix in [settings.main_mix] + [m for m in settings.mixes if m != settings.main_mix]:
            for seed in seeds_of(settings, mix):
                self.submit(self.study.job(mix, "grpo", seed, None, settings.steps))
        while self.pending:
            done = [f for f in self.pending if f.done()] or [next(iter(_wait_first(self.pending)))]
            for future in done:
                self.collect(self.pending.pop(future), future.result())
            if self.stopped:
                for future in self.pending:
                    future.cancel()
                return

    @property
    def stopped(self) -> bool:
        return self.gate is not None and not self.gate["passed"] and self.study.settings.gate_stop

    def collect(self, job: Job, result: dict[str, Any]) -> None:
        self.finished += 1
        self.runs.setdefault((job.mix, job.arm), []).append(result)
        points = result["points"]
        logger.info(
            "[%d/%d] %s/%s/seed %d: held-out P(answer+EOS) %.3f -> %.3f, acc %.3f -> %.3f, %d steps, %.0f cpu-s",
            self.finished,
            self.total,
            job.mix,
            job.arm,
            job.seed,
            points[0]["tf"],
            points[-1]["tf"],
            points[0]["acc"],
            points[-1]["acc"],
            result["steps"],
            result["cpu_seconds"],
        )
        settings = self.study.settings
        if job.arm != "grpo" or len(self.runs[(job.mix, "grpo")]) < len(seeds_of(settings, job.mix)):
            return
        self.ready.append(job.mix)
        if job.mix == settings.main_mix:
            self.gate = gate(self.sorted(job.mix, "grpo"), settings)
            logger.info(
                "GATE %s: GRPO's held-out gain %.3f, seed SD %.3f (%d seeds; needs >= %g SDs)",
                "passed" if self.gate["passed"] else "FAILED",
                self.gate["grpo_heldout_gain"],
                self.gate["grpo_heldout_gain_sd"],
                self.gate["seeds"],
                settings.gate_sds,
            )
        if self.gate is not None and not self.stopped:
            for mix in self.ready:
                self.submit_arms(mix)
            self.ready = []

    def submit_arms(self, mix: str) -> None:
        settings = self.study.settings
        budget = statistics.fmean(r["totals"]["training_flops"] for r in self.runs[(mix, "grpo")])
        for arm in settings.arms:
            if arm == "grpo" or (ARMS[arm].main_only and mix != settings.main_mix):
                continue
            fixed = ARMS[arm].order == "easy-to-hard"  # one pass needs its length in advance
            max_steps = settings.steps if fixed else 4 * settings.steps
            for seed in seeds_of(settings, mix):
                self.submit(self.study.job(mix, arm, seed, budget, max_steps))

    def sorted(self, mix: str, arm: str) -> list[dict]:
        return sorted(self.runs.get((mix, arm), []), key=lambda r: r["seed"])


def _wait_first(pending: dict[Future, Job]):
    from concurrent.futures import FIRST_COMPLETED, wait

    return wait(pending, return_when=FIRST_COMPLETED)[0]


def environment(settings: Settings) -> dict[str, Any]:
    import numpy
    import transformers
    import trl

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read_lines("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "numpy": numpy.__version__,
        "torch_threads_per_process": 1,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "workers": settings.workers,
        "nice": os.nice(0),
    }


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def base_stamp(settings: Settings) -> str:
    stamp = {"format": FORMAT_VERSION, **{name: getattr(settings, name) for name in PRETRAIN_FIELDS}}
    return hashlib.sha256(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:10]


def prepare(settings: Settings) -> Study:
    """Steps 2-3: the cached base, the profiled candidates, every mix's pool and held-out set."""
    work = Path(settings.out) / "work" / f"base-{base_stamp(settings)}"
    base = work / "base"
    base.mkdir(parents=True, exist_ok=True)
    meta = cached_base(settings, base)
    pools = build_pools(settings, base, work, meta["num_params"])
    return Study(settings=settings, work=work, base=base, base_meta=meta, pools=pools)


def timing(results: dict[str, Any], study: Study, started: float, load_before: tuple) -> dict[str, Any]:
    """Wall time as it happened (on a shared machine: see the load average) and CPU time, which does not depend on
    the load: profiling runs in this process, training runs in `workers` processes of one thread each."""
    runs = sum(run["cpu_seconds"] for run in results["runs"])
    profiling = next(iter(study.pools.values())).profiling_cpu_seconds
    workers = max(1, study.settings.workers)
    return {
        "wall_seconds": time.perf_counter() - started,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "runs_reused": sum(bool(run.get("reused")) for run in results["runs"]),
        "run_cpu_seconds": runs,
        "profiling_cpu_seconds": profiling,
        "pretraining_cpu_seconds": study.base_meta["cpu_seconds"],
        "idle_machine_minutes_estimate": (profiling + runs / workers) / 60,
        "idle_machine_minutes_estimate_with_pretraining": (
            study.base_meta["cpu_seconds"] + profiling + runs / workers
        )
        / 60,
    }


def run_study(settings: Settings) -> dict[str, Any]:
    """The whole study; returns (and writes) results.json's content."""
    started, load_before = time.perf_counter(), os.getloadavg()
    study = prepare(settings)
    with executor(settings.workers) as pool:
        runner = Runner(study, pool)
        runner.run()
    results: dict[str, Any] = {
        "settings": asdict(settings),
        "environment": environment(settings),
        "base": study.base_meta,
        "pools": {mix: pools.summary() for mix, pools in study.pools.items()},
        "curation": {name: curation_record(ARMS[name], settings) for name in settings.arms},
        "gate": runner.gate,
    }
    if not runner.stopped:
        summary = {
            mix: {
                arm: summarize_arm(runner.sorted(mix, arm), runner.sorted(mix, "grpo"), settings)
                for arm in ["grpo", *[a for a in settings.arms if a != "grpo"]]
                if runner.runs.get((mix, arm))
            }
            for mix in settings.mixes
        }
        results["headline"] = headline(summary[settings.main_mix], runner.gate)
        results["bounds"] = {mix: saving_bound(summary[mix]["grpo"]) for mix in settings.mixes}
        results["summary"] = summary
    else:
        results["headline"] = {
            "gate": {
                k: runner.gate[k] for k in ("passed", "grpo_heldout_gain", "grpo_heldout_gain_sd", "seeds")
            },
            "arms": {},
        }
    results["runs"] = [
        run for key in sorted(runner.runs) for run in sorted(runner.runs[key], key=lambda r: r["seed"])
    ]
    results["timing"] = timing(results, study, started, load_before)
    write_outputs(results, Path(settings.out))
    return results


# --------------------------------------------------------------------------- 7. report

README_START = (
    "<!-- reproduce_savings results: generated by examples/reproduce_savings.py --readme; do not edit -->"
)
README_END = "<!-- end of reproduce_savings results -->"


def write_outputs(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=_json_default) + "\n")
    (out / "README_table.md").write_text(readme_table(results))
    (out / "results.md").write_text(results_markdown(results))
    if "summary" in results:
        plot(results, out / "curves.png")
    logger.info(
        "wrote %s", ", ".join(str(out / name) for name in ("results.json", "results.md", "README_table.md"))
    )


def load_results(out: Path) -> dict[str, Any]:
    """A finished study's results.json (for `--report-only`), or a clear error saying how to make one."""
    path = out / "results.json"
    if not path.exists():
        raise SystemExit(f"--report-only: no {path}; run the study first (without --report-only)")
    return json.loads(path.read_text())


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def _f(value: float | None, digits: int = 2) -> str:
    return "?" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _signed(value: float | None, digits: int = 3) -> str:
    return "?" if value is None else f"{value:+.{digits}f}"


def ratio_cell(result: dict[str, Any], interval: bool = True) -> str:
    """`1.23 [1.10, 1.40] (5/5)`; `< 0.80 (2/5)` when the seed-mean curve never reached the target."""
    reached = f"({result['seeds_reached']}/{len(result['per_seed'])})"
    if result["ratio"] is None:
        return f"< {_f(result['ratio_below'])} {reached}"
    text = _f(result["ratio"])
    if interval:
        text += f" [{_f(result.get('ci_low'))}, {_f(result.get('ci_high'))}]"
    return f"{text} {reached}"


def diff_cell(matched: dict[str, Any]) -> str:
    return f"{_signed(matched['mean'])} [{_signed(matched['ci_low'])}, {_signed(matched['ci_high'])}]"


def gate_sentence(results: dict[str, Any]) -> str:
    g, s = results["gate"], results["settings"]
    verdict = (
        "passed"
        if g["passed"]
        else "FAILED: the study stopped here and reports no ratios"
        if s["gate_stop"]
        else "FAILED, and the study went on because of --no-gate-stop: the ratios below mean nothing"
    )
    return (
        f"**Gate ({verdict}).** Plain GRPO on the `{s['main_mix']}` mix raised held-out P(answer + EOS) from "
        f"{_f(g['base_tf'], 3)} by {_f(g['grpo_heldout_gain'], 3)} ± {_f(g['grpo_heldout_gain_sd'], 3)} (seed SD, "
        f"{g['seeds']} seeds; needed >= {g['threshold_sds']:g} SDs); sampled accuracy {_f(g['base_acc'], 3)} -> "
        f"{_f(statistics.fmean(g['final_acc']), 3)}."
    )


def pools_table(results: dict[str, Any]) -> list[str]:
    s = results["settings"]
    lines = [
        f"| mix | stated shares hopeless / p̂=0 / low / high / p̂=1 | pool of {s['pool_size']} came out | "
        f"profile histogram c/{s['k']} | p̂=0 still 0 after {s['second_look_k']} more samples (hopeless + learnable) | "
        "profile (+ second look) cost / GRPO run | GRPO rollouts on hopeless | GRPO zero-adv. rollouts z | "
        "no allocation saves more than | drop-zero saving predicted 1/(1 − 0.75 z) / measured |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mix, pool in results["pools"].items():
        shares = " / ".join(f"{pool['stated_shares'].get(name, 0):.3g}" for name in BINS)
        bins = " / ".join(str(pool["pool_bins"][name]) for name in BINS)
        levels = " ".join(str(v) for v in pool["pool_levels"].values())
        look = pool["second_look"]
        lines.append(
            f"| {mix} | {shares} | {bins} | {levels} | {look['zero_at_k']} -> {look['still_zero']} "
            f"({look['still_zero_hopeless']} + {look['still_zero_learnable']}) | {_bound_cells(results, mix, pool)} |"
        )
    return lines


def _bound_cells(results: dict[str, Any], mix: str, pool: dict[str, Any]) -> str:
    """Profile cost, GRPO's wasted shares, the bound and drop-zero's predicted vs measured saving (or `?`)."""
    summary = results.get("summary", {}).get(mix)
    if not summary:
        return " | ".join(["?"] * 5)
    bound, budget = results["bounds"][mix], summary["grpo"]["training_flops"]
    measured = summary.get("grpo_drop", {}).get("flops@1", {}).get("ratio")
    cost = f"{_f(pool['profile_flops'] / budget)} (+ {_f(pool['second_look_flops'] / budget)})"
    return (
        f"{cost} | {_f(bound['grpo_hopeless_rollouts'])} | {_f(bound['grpo_zero_adv_rollouts'])} | "
        f"{_f(bound['max_saving_if_hopeless_wasted'])}x-{_f(bound['max_saving_if_zero_adv_wasted'])}x | "
        f"{_f(bound['drop_zero_saving_expected'])}x / {_f(measured)}x"
    )


def main_table(results: dict[str, Any], mix: str) -> list[str]:
    summary = results["summary"][mix]
    grpo = summary["grpo"]
    lines = [
        "| arm | ratio @50% | @75% | @100% of GRPO's gain [95% CI] (seeds reached) | @100%, profile amortised | "
        "held-out P(ans+EOS) − GRPO at GRPO's FLOPs [95% CI] | sampled acc. − GRPO | zero-adv. rollouts | "
        "generated / trained tokens vs GRPO |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, arm in summary.items():
        full = ratio_cell(arm["flops@1"])
        if name == "grpo":  # the reference: its mean curve ends on the target; say how many seeds got there
            full = f"1 (reference; {arm['flops@1']['seeds_reached']}/{arm['seeds']} seeds reach the mean)"
        lines.append(
            f"| `{name}` | {ratio_cell(arm['flops@0.5'], False)} | {ratio_cell(arm['flops@0.75'], False)} | "
            f"{full} | {ratio_cell(arm['flops_amortised@1'], False)} | "
            f"{diff_cell(arm['matched_tf'])} | {diff_cell(arm['matched_acc'])} | "
            f"{_f(statistics.fmean(arm['zero_adv_rollouts']))} | "
            f"{_f(arm['rollout_tokens'] / grpo['rollout_tokens'])} / {_f(arm['trained_tokens'] / grpo['trained_tokens'])} |"
        )
    return lines


def other_mixes_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| mix | arm | ratio @100% [95% CI] (seeds) | @100%, amortised | held-out − GRPO at GRPO's FLOPs [95% CI] | "
        "zero-adv. rollouts |",
        "|---|---|---|---|---|---|",
    ]
    for mix, summary in results["summary"].items():
        if mix == results["settings"]["main_mix"]:
            continue
        for name, arm in summary.items():
            lines.append(
                f"| {mix} | `{name}` | {ratio_cell(arm['flops@1'])} | {ratio_cell(arm['flops_amortised@1'], False)} | "
                f"{diff_cell(arm['matched_tf'])} | {_f(statistics.fmean(arm['zero_adv_rollouts']))} |"
            )
    return lines


def verdicts(results: dict[str, Any]) -> list[str]:
    """Generated sentences: which arms are ahead of / behind GRPO at matched FLOPs (95% interval excludes 0)."""
    lines = []
    for mix, summary in results["summary"].items():
        ahead, behind, tied = [], [], []
        for name, arm in summary.items():
            if name == "grpo":
                continue
            m = arm["matched_tf"]
            cell = f"`{name}` {_signed(m['mean'])}"
            if m["ci_low"] is not None and m["ci_low"] > 0:
                ahead.append(cell)
            elif m["ci_high"] is not None and m["ci_high"] < 0:
                behind.append(cell)
            else:
                tied.append(cell)
        lines.append(
            f"- **{mix}** (held-out P(answer + EOS) at GRPO's final FLOPs, profile charged): ahead of GRPO "
            f"{', '.join(ahead) or 'none'}; behind {', '.join(behind) or 'none'}; not distinguishable "
            f"{', '.join(tied) or 'none'}."
        )
    lines.extend(bound_verdicts(results))
    return lines


def bound_verdicts(results: dict[str, Any]) -> list[str]:
    """Generated sentences: which arms saved more than re-allocating GRPO's batch could (ratio above the bound)."""
    lines = []
    for mix, summary in results["summary"].items():
        bound = results["bounds"][mix]["max_saving_if_zero_adv_wasted"]
        above = []
        for name, arm in summary.items():
            for key, label in (("flops@1", "profile charged"), ("flops_amortised@1", "profile amortised")):
                ratio = arm[key]["ratio"]
                if name != "grpo" and ratio is not None and ratio > bound + 1e-9:
                    above.append(f"`{name}` {_f(ratio)} ({label})")
                    break
        lines.append(
            f"- **{mix}**: ratios @100% above the re-allocation bound {_f(bound)}x: {', '.join(above) or 'none'}."
        )
    return lines


def readme_table(results: dict[str, Any]) -> str:
    s, base, timing = results["settings"], results["base"], results["timing"]
    env = results["environment"]
    lines = [
        f"Base: {base['num_params']:,} parameters, sha256 `{base['sha256'][:16]}…`, supervised {s['pretrain_steps']} "
        f"steps (final loss {_f(base['final_loss'], 3)}). Every arm: {s['rollouts_per_step']} rollouts per generation "
        f"batch, lr {s['learning_rate']:g}, no KL, trained until its training FLOPs equal plain GRPO's after "
        f"{s['steps']} steps; held-out: {s['heldout_size']} queries per mix drawn like its pool. Ran on {env['cpu']} "
        f"({env['workers']} workers x 1 thread, torch {env['torch']}, trl {env['trl']}). CPU time: profiling "
        f"{timing['profiling_cpu_seconds'] / 60:.1f} min + training runs {timing['run_cpu_seconds'] / 60:.1f} min, "
        f"i.e. about {timing['idle_machine_minutes_estimate']:.0f} min on {env['workers']} idle cores, plus "
        f"{timing['pretraining_cpu_seconds'] / 60:.1f} min once for the base (cached). This report's invocation: "
        f"{timing['wall_seconds'] / 60:.1f} min wall at load average {_f(timing['load_average_before'][0], 1)}-"
        f"{_f(timing['load_average_after'][0], 1)} on a shared machine, {timing['runs_reused']} of "
        f"{len(results['runs'])} runs reused from the cache.",
        "",
        gate_sentence(results),
        "",
        "Pools (stated input and what came out; the bound is 1/(1 − z) for z = GRPO's share of rollouts on hopeless "
        "queries, up to its zero-advantage share):",
        "",
        *pools_table(results),
    ]
    if "summary" not in results:
        return "\n".join(lines) + "\n"
    main = s["main_mix"]
    lines += [
        "",
        f"Main mix `{main}`, {s['seeds_main']} seeds. Ratio = GRPO's FLOPs / the arm's FLOPs to reach a share of "
        "GRPO's final held-out gain (teacher-forced P(answer + EOS), seed means of isotonic-smoothed runs, profiling charged; "
        "`< x`: the arm never got there, x bounds it; CI: bootstrap over seeds, `?` = unbounded):",
        "",
        *main_table(results, main),
        "",
        f"Other mixes ({s['seeds_other']} seeds):",
        "",
        *other_mixes_table(results),
        "",
        *verdicts(results),
    ]
    return "\n".join(lines) + "\n"


def results_markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Where GRPO's compute goes: results (generated by examples/reproduce_savings.py)",
        "",
        readme_table(results),
    ]
    if "summary" not in results:
        return "\n".join(lines)
    lines += ["## Every mix in full", ""]
    for mix in results["summary"]:
        lines += [f"### {mix}", "", *main_table(results, mix), "", *detail_table(results, mix), ""]
    lines += ["## Arms", "", *[f"- `{name}`: {arm.note}" for name, arm in ARMS.items()], ""]
    return "\n".join(lines)


def detail_table(results: dict[str, Any], mix: str) -> list[str]:
    lines = [
        "| arm | final P(ans+EOS) | final sampled acc. | learnable only: − GRPO | tokens ratio @100% | steps | rows | "
        "zero-adv. rollouts by fifth of training | trained share | on hopeless | prior FLOPs / GRPO's | CPU s/run |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    summary = results["summary"][mix]
    budget = summary["grpo"]["training_flops"]
    for name, arm in summary.items():
        fifths = " ".join(_f(v) for v in arm["zero_adv_by_fifth"])
        lines.append(
            f"| `{name}` | {_f(statistics.fmean(arm['final_tf']), 3)} | {_f(statistics.fmean(arm['final_acc']), 3)} | "
            f"{diff_cell(arm['matched_tf_learnable'])} | {ratio_cell(arm['tokens@1'], False)} | "
            f"{statistics.fmean(arm['steps']):.0f} | {statistics.fmean(arm['rows']):.0f} | {fifths} | "
            f"{_f(statistics.fmean(arm['trained_rollouts_frac']))} | {_f(statistics.fmean(arm['hopeless_rollout_share']))} | "
            f"{_f(arm['prior_flops'] / budget)} | {arm['cpu_seconds']:.0f} |"
        )
    return lines


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mixes = list(results["summary"])
    arms = list(results["summary"][mixes[0]])
    colors = {name: plt.get_cmap("tab20")(i % 20) for i, name in enumerate(arms)}
    fig, axes = plt.subplots(len(mixes), 3, figsize=(17, 4.4 * len(mixes)), squeeze=False)
    for row, mix in enumerate(mixes):
        pool = results["pools"][mix]
        axes[row][0].bar(list(pool["pool_levels"]), list(pool["pool_levels"].values()), color="grey")
        axes[row][0].set_title(
            f"{mix}: pool profile (c of k correct); {pool['pool_bins']['hopeless']} hopeless"
        )
        runs = [r for r in results["runs"] if r["mix"] == mix]
        for column, metric in ((1, "tf"), (2, "acc")):
            ax = axes[row][column]
            for arm in arms:
                mine = [r for r in runs if r["arm"] == arm]
                if mine:
                    grid, values = curves_on_grid(mine, metric, "flops", smoothed=False)
                    ax.plot(
                        grid,
                        values.mean(axis=0),
                        color=colors[arm],
                        label=arm,
                        lw=2.2 if arm == "grpo" else 1.2,
                    )
            ax.set_xlabel("cumulative FLOPs (profiling charged)")
            ax.set_title(f"{mix}: held-out {'P(answer+EOS)' if metric == 'tf' else 'sampled accuracy'}")
        axes[row][1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def rewrite_readme(readme: Path, table: str) -> None:
    """Replace the marked results section of the README with the generated table."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise SystemExit(
            f"{readme}: add the lines\n{README_START}\n{README_END}\nwhere the results table goes"
        )
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{table}{README_END}{tail}")
    logger.info("rewrote the results section of %s", readme)


# --------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None = None) -> tuple[Settings, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Run (" + __doc__.split("Run (", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run (< 2 min): tiny base, one mix, 2 seeds, 4 arms"
    )
    parser.add_argument(
        "--readme", default=None, help="README file whose marked results section is rewritten"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: re-render results.md, README_table.md, curves.png (and --readme) from --out's "
        "results.json, e.g. after a change to the report's wording",
    )
    for item in fields(Settings):
        flag = f"--{item.name.replace('_', '-')}"
        help_text = f"{item.metadata['help']} (default: {item.default})"
        if isinstance(item.default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif isinstance(item.default, tuple):
            kind = type(item.default[0])
            parser.add_argument(flag, nargs="+", type=kind, default=None, help=help_text)
        else:
            parser.add_argument(flag, type=type(item.default), default=None, help=help_text)
    args = parser.parse_args(argv)
    settings = replace(Settings(), **QUICK) if args.quick else Settings()
    overrides = {
        item.name: tuple(value) if isinstance(value, list) else value
        for item in fields(Settings)
        if (value := getattr(args, item.name)) is not None
    }
    settings = replace(settings, **overrides)
    problems = [m for m in (*settings.mixes, settings.main_mix) if m not in MIXES]
    problems += [a for a in settings.arms if a not in ARMS]
    if problems:
        parser.error(f"unknown mixes/arms {problems}; mixes: {', '.join(MIXES)}; arms: {', '.join(ARMS)}")
    if settings.main_mix not in settings.mixes:
        parser.error(f"--main-mix {settings.main_mix} must be one of --mixes {' '.join(settings.mixes)}")
    if "grpo" not in settings.arms:
        settings = replace(settings, arms=("grpo", *settings.arms))
    return settings, args


def _quiet() -> None:
    """One torch thread per process, no progress bars, library warnings only."""
    import datasets
    import transformers

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    for name in ("transformers", "datasets", "sgpo_curate", "trl", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    _quiet()
    settings, args = parse_args(argv)
    if args.report_only:
        results = load_results(Path(settings.out))
        write_outputs(results, Path(settings.out))
    else:
        results = run_study(settings)
    if args.readme:
        rewrite_readme(Path(args.readme), readme_table(results))
    if not results["gate"]["passed"]:
        logger.error(
            "the gate failed: plain GRPO did not raise the held-out metric enough%s",
            "" if settings.gate_stop else " (went on: --no-gate-stop)",
        )
        return 2 if settings.gate_stop else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
