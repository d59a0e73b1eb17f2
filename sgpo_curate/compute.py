"""Training-compute accounting: rollout tokens, trained tokens and FLOPs, per step and in total.

Why: sGPO's claim is "the same accuracy for less compute, profiling included", so every arm of a
comparison must be charged by the same formula. The usual dense-transformer estimates are used
(Kaplan et al. 2020; Hoffmann et al. 2022), with N the model's parameter count and T tokens:

- generation (prompt prefill + sampled tokens):  2·N·T
- policy update (forward + backward):            6·N·T
- an extra forward (old-policy or reference log-probs): 2·N·T

Padding tokens are not counted; attention's quadratic term is left out (small at the lengths used
here, and the same for every arm). Profiling is charged with `generation_flops` for the k samples of
every profiled query, exactly as rollouts are.

Example:
    >>> ledger = ComputeLedger(num_params=1_000)
    >>> record = ledger.add_step(step=1, rollouts=4, groups=2, prompt_tokens=40, completion_tokens=20,
    ...                          update_passes=1, old_logps=False, ref_logps=False)
    >>> record.total_flops == generation_flops(1_000, 60) + update_flops(1_000, 60)
    True
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FLOP_FORMULAS = {
    "generation": "2 * params * (prompt_tokens + completion_tokens)",
    "policy_update": "6 * params * (prompt_tokens + completion_tokens) * update_passes",
    "old_logps": "2 * params * (prompt_tokens + completion_tokens), when old-policy log-probs are computed",
    "ref_logps": "2 * params * (prompt_tokens + completion_tokens), when reference log-probs are computed (beta > 0)",
}


def generation_flops(num_params: int, tokens: int) -> float:
    """FLOPs to generate (prefill + decode) `tokens` tokens: 2·N·T."""
    return 2.0 * num_params * tokens


def forward_flops(num_params: int, tokens: int) -> float:
    """FLOPs of one scoring forward pass over `tokens` tokens: 2·N·T."""
    return 2.0 * num_params * tokens


def update_flops(num_params: int, tokens: int) -> float:
    """FLOPs of one forward + backward pass over `tokens` tokens: 6·N·T."""
    return 6.0 * num_params * tokens


@dataclass(frozen=True, slots=True)
class StepCompute:
    """What one generation batch cost, from sampling to its last optimisation pass.

    Args:
        step (`int`): the optimizer step at which the batch was generated (1-based).
        rollouts (`int`): completions sampled (all processes).
        groups (`int`): real groups (queries) in the batch.
        prompt_tokens (`int`): prompt tokens over all rollouts, padding excluded.
        completion_tokens (`int`): sampled tokens over all rollouts, padding excluded.
        generation_flops, update_flops, old_logps_flops, ref_logps_flops (`float`): the components.
    """

    step: int
    rollouts: int
    groups: int
    prompt_tokens: int
    completion_tokens: int
    generation_flops: float
    update_flops: float
    old_logps_flops: float
    ref_logps_flops: float

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def total_flops(self) -> float:
        return self.generation_flops + self.update_flops + self.old_logps_flops + self.ref_logps_flops

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tokens": self.tokens, "total_flops": self.total_flops}


COMPONENTS = ("generation_flops", "update_flops", "old_logps_flops", "ref_logps_flops")
COUNTS = ("rollouts", "groups", "prompt_tokens", "completion_tokens")


@dataclass
class ComputeLedger:
    """Per-step compute records and their running totals.

    Args:
        num_params (`int`): parameters N of the policy (all of them, embeddings included).
        prior_flops (`float`): compute spent before training that the run is charged with, e.g. the
            profiling pass that produced the dataset's group sizes. Added to the totals, listed apart.
    """

    num_params: int
    prior_flops: float = 0.0
    steps: list[StepCompute] = field(default_factory=list)

    def add_step(
        self,
        step: int,
        rollouts: int,
        groups: int,
        prompt_tokens: int,
        completion_tokens: int,
        update_passes: int = 1,
        old_logps: bool = False,
        ref_logps: bool = False,
    ) -> StepCompute:
        """Record one generation batch and return its `StepCompute`."""
        tokens = prompt_tokens + completion_tokens
        record = StepCompute(
            step=step,
            rollouts=rollouts,
            groups=groups,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            generation_flops=generation_flops(self.num_params, tokens),
            update_flops=update_flops(self.num_params, tokens) * update_passes,
            old_logps_flops=forward_flops(self.num_params, tokens) if old_logps else 0.0,
            ref_logps_flops=forward_flops(self.num_params, tokens) if ref_logps else 0.0,
        )
        self.steps.append(record)
        return record

    def totals(self) -> dict[str, float]:
        """Sums over all steps of every count and FLOPs component, plus `prior_flops` and `total_flops`."""
        sums: dict[str, float] = {
            name: sum(getattr(s, name) for s in self.steps) for name in COUNTS + COMPONENTS
        }
        sums["tokens"] = sums["prompt_tokens"] + sums["completion_tokens"]
        sums["training_flops"] = sum(sums[name] for name in COMPONENTS)
        sums["prior_flops"] = self.prior_flops
        sums["total_flops"] = sums["training_flops"] + self.prior_flops
        return sums

    def summary(self, **extra: Any) -> dict[str, Any]:
        """A JSON-ready dict: formulas, parameter count, per-step records and totals (plus `extra`)."""
        return {
            "num_params": self.num_params,
            "formulas": FLOP_FORMULAS,
            **extra,
            "totals": self.totals(),
            "steps": [s.to_dict() for s in self.steps],
        }

    def write(self, path: str | os.PathLike, **extra: Any) -> Path:
        """Write `summary(**extra)` as JSON to `path`; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.summary(**extra), indent=2, sort_keys=False) + "\n")
        return path
