"""A small addition testbed for the planning benchmarks: a tiny Llama trained to add, a pool, a verifier.

The format and teacher follow DESIGN.md ("A testbed that learns"): operands zero-padded to 5 digits and
written least-significant digit first, the answer (6 digits) likewise, then EOS; the supervised targets
come from a teacher that drops each carry with probability `drop_carry`, so the model's success rate falls
with the number of carries and a pool spreads from p = 0 to p = 1. Training stops at a fixed step count:
the profile depends on where it stops.

    model_dir = train_toy("runs/toy/base", hidden_size=128, num_layers=4, steps=600)
    queries = toy_pool(512, seed=1, mix="broad")
    profile(queries, get_sampler("transformers", model_dir), ExactAnswer(), ...)
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from sgpo_curate.records import Query  # noqa: E402

CHARS = "0123456789+=\n"
DIGITS = 5
ANSWER_DIGITS = DIGITS + 1
# Operand lengths drawn per mix (weights for 1..5 digits): `broad` spreads carries, `hard` has many.
MIXES = {"broad": (1, 1, 1, 1, 1), "hard": (0, 0, 1, 2, 4)}


def lsb(value: int, width: int) -> str:
    """`value` zero-padded to `width` digits, least-significant digit first."""
    return str(value).zfill(width)[::-1]


def noisy_sum(a: int, b: int, drop_carry: float, rng: random.Random) -> int:
    """a + b by the digit, each carry dropped with probability `drop_carry` (the teacher's mistakes)."""
    total, carry = 0, 0
    for position in range(ANSWER_DIGITS):
        digit = (a // 10**position) % 10 + (b // 10**position) % 10 + carry
        total += (digit % 10) * 10**position
        carry = digit // 10 if rng.random() >= drop_carry else 0
    return total


def toy_query(a: int, b: int) -> Query:
    return Query(
        id=f"toy/{a}+{b}",
        source="toy-addition",
        domain="math",
        prompt=(("user", f"{lsb(a, DIGITS)}+{lsb(b, DIGITS)}="),),
        answer=lsb(a + b, ANSWER_DIGITS),
    )


def draw_operands(rng: random.Random, mix: str) -> tuple[int, int]:
    weights = MIXES[mix]
    digits = [rng.choices(range(1, DIGITS + 1), weights)[0] for _ in range(2)]
    return tuple(rng.randrange(10 ** (d - 1) if d > 1 else 0, 10**d) for d in digits)


def toy_pool(size: int, seed: int, mix: str = "broad", exclude: set[str] = frozenset()) -> list[Query]:
    """`size` distinct queries drawn from `mix` (ids in `exclude` skipped)."""
    rng = random.Random(f"pool-{seed}-{mix}")
    queries: dict[str, Query] = {}
    while len(queries) < size:
        query = toy_query(*draw_operands(rng, mix))
        if query.id not in exclude:
            queries.setdefault(query.id, query)
    return list(queries.values())


class ExactAnswer:
    """Reward 1 for exactly the answer digits and then EOS (sample with `max_new_tokens = 7`: a sample that
    does not stop after 6 digits has a 7th character and fails)."""

    name = "exact-answer"
    version = "1"

    def __call__(self, completions: list[str], queries: list[Query]) -> list[float]:
        return [float(c == q.answer) for c, q in zip(completions, queries, strict=True)]


def train_toy(
    out_dir: str | Path,
    hidden_size: int = 128,
    num_layers: int = 4,
    steps: int = 600,
    batch_size: int = 96,
    drop_carry: float = 0.5,
    lr: float = 2e-3,
    seed: int = 0,
    save_at: tuple[int, ...] = (),
) -> str:
    """Train (or reuse) a toy model supervised on fresh noisy-teacher sums; returns its folder. Steps in
    `save_at` also save a checkpoint to `<out_dir>-step<N>` (an earlier, weaker model of the same run)."""
    out_dir = Path(out_dir)
    if (out_dir / "config.json").exists():
        return str(out_dir)
    import torch

    from sgpo_curate.models import build_tiny_model

    torch.manual_seed(seed)
    model, tokenizer = build_tiny_model(
        chars=CHARS, hidden_size=hidden_size, num_layers=num_layers, max_positions=64, seed=seed
    )
    rng = random.Random(f"train-{seed}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 8)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * s / steps))
    )
    model.train()
    for step in range(1, steps + 1):
        ids, labels = [], []
        for _ in range(batch_size):
            a, b = draw_operands(rng, "broad")
            prompt = tokenizer.encode(f"{lsb(a, DIGITS)}+{lsb(b, DIGITS)}=\n", add_special_tokens=False)
            target = tokenizer.encode(
                lsb(noisy_sum(a, b, drop_carry, rng), ANSWER_DIGITS), add_special_tokens=False
            )
            target.append(tokenizer.eos_token_id)
            ids.append(prompt + target)
            labels.append([-100] * len(prompt) + target)
        loss = model(input_ids=torch.tensor(ids), labels=torch.tensor(labels)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step in save_at:
            _save(model, tokenizer, out_dir.with_name(f"{out_dir.name}-step{step}"))
    _save(model, tokenizer, out_dir)
    return str(out_dir)


def _save(model, tokenizer, path: Path) -> None:
    staging = path.with_name(path.name + ".partial")
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    staging.replace(path)  # atomic: a killed run leaves no half folder
