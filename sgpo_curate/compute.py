"""Training-compute accounting: rollout tokens, trained tokens and FLOPs, per generation batch and in total.

Why: sGPO's claim is "the same accuracy for less compute, profiling included", so every arm of a
comparison must be charged by the same formula. The usual dense-transformer estimates are used
(Kaplan et al. 2020; Hoffmann et al. 2022), with N the model's parameter count and T tokens:

- generation (prompt prefill + generated tokens, for every rollout generated): 2·N·T
- policy update (forward + backward, for every rollout actually trained, per pass): 6·N·T
- an extra forward (old-policy or reference log-probs, over every rollout they ran on): 2·N·T

Rollout tokens and trained tokens are separate numbers: a rollout generated but not trained (a group with
zero advantage dropped before the update, a group DAPO-style dynamic sampling discarded) costs its
generation and nothing more; a truncated completion masked out of the loss still cost its generation.
Generated tokens are counted from the generated ids, not from the loss mask. Padding is not counted;
attention's quadratic term is left out (small at the lengths used here, and the same for every arm).
Profiling is charged with `generation_flops` for the k samples of every profiled query, its prompt once
per query (the sampler encodes it once).

Example:
    >>> ledger = ComputeLedger(num_params=1_000)
    >>> record = ledger.add_generation(step=1, rollouts=4, groups=2, prompt_tokens=40, completion_tokens=20)
    >>> ledger.add_trained(rollouts=2, tokens=30)
    >>> ledger.totals()["total_flops"] == generation_flops(1_000, 60) + update_flops(1_000, 30)
    True
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

FLOP_FORMULAS = {
    "generation": "2 * params * (prompt_tokens + completion_tokens) of every generated rollout",
    "policy_update": "6 * params * trained_tokens (prompt + completion tokens of every trained rollout, per pass)",
    "old_logps": "2 * params * old_logps_tokens, when old-policy log-probs are computed",
    "ref_logps": "2 * params * ref_logps_tokens, when reference log-probs are computed (beta > 0)",
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


@dataclass
class StepCompute:
    """What one generation batch cost, from sampling to its last optimisation pass.

    Args:
        step (`int`): the optimizer step at which the batch was generated (1-based).
        rollouts (`int`): completions generated (all processes; every round of dynamic sampling).
        groups (`int`): groups (queries) generated.
        prompt_tokens (`int`): prompt tokens over all generated rollouts, padding excluded.
        completion_tokens (`int`): generated tokens over all rollouts (from the generated ids).
        trained_rollouts (`int`): rollouts that went through a policy update, summed over update passes.
        trained_tokens (`int`): their prompt + completion tokens, summed over update passes.
        old_logps_tokens (`int`), ref_logps_tokens (`int`): tokens of the extra scoring forwards.
        rounds (`int`): generation rounds (more than one under dynamic sampling).
    """

    step: int
    rollouts: int
    groups: int
    prompt_tokens: int
    completion_tokens: int
    trained_rollouts: int = 0
    trained_tokens: int = 0
    old_logps_tokens: int = 0
    ref_logps_tokens: int = 0
    rounds: int = 1

    @property
    def rollout_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def flops(self, num_params: int) -> dict[str, float]:
        return {
            "generation_flops": generation_flops(num_params, self.rollout_tokens),
            "update_flops": update_flops(num_params, self.trained_tokens),
            "old_logps_flops": forward_flops(num_params, self.old_logps_tokens),
            "ref_logps_flops": forward_flops(num_params, self.ref_logps_tokens),
        }

    def to_dict(self, num_params: int) -> dict[str, Any]:
        flops = self.flops(num_params)
        return {
            **asdict(self),
            "rollout_tokens": self.rollout_tokens,
            **flops,
            "total_flops": sum(flops.values()),
        }


COMPONENTS = ("generation_flops", "update_flops", "old_logps_flops", "ref_logps_flops")
COUNTS = tuple(f.name for f in fields(StepCompute) if f.name != "step")


@dataclass
class ComputeLedger:
    """Per-generation-batch compute records and their running totals.

    Args:
        num_params (`int`): parameters N of the policy (all of them, embeddings included).
        prior_flops (`float`): compute spent before training that the run is charged with, e.g. the
            profiling pass that produced the dataset's group sizes. Added to the totals, listed apart.
    """

    num_params: int
    prior_flops: float = 0.0
    steps: list[StepCompute] = field(default_factory=list)

    def add_generation(
        self,
        step: int,
        rollouts: int,
        groups: int,
        prompt_tokens: int,
        completion_tokens: int,
        old_logps_tokens: int = 0,
        ref_logps_tokens: int = 0,
        rounds: int = 1,
    ) -> StepCompute:
        """Open the record of a generation batch; its trained tokens come later through `add_trained`."""
        record = StepCompute(
            step=step,
            rollouts=rollouts,
            groups=groups,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            old_logps_tokens=old_logps_tokens,
            ref_logps_tokens=ref_logps_tokens,
            rounds=rounds,
        )
        self.steps.append(record)
        return record

    def add_trained(self, rollouts: int, tokens: int) -> None:
        """Charge one policy-update pass over `rollouts` rollouts of `tokens` tokens to the latest batch."""
        if not self.steps:
            raise RuntimeError("add_trained before any add_generation: nothing was generated to train on")
        self.steps[-1].trained_rollouts += rollouts
        self.steps[-1].trained_tokens += tokens

    def totals(self) -> dict[str, float]:
        """Sums over all steps of every count and FLOPs component, plus `prior_flops` and `total_flops`."""
        records = [s.to_dict(self.num_params) for s in self.steps]
        sums: dict[str, float] = {name: sum(r[name] for r in records) for name in COUNTS + COMPONENTS}
        sums["rollout_tokens"] = sums["prompt_tokens"] + sums["completion_tokens"]
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
            "steps": [s.to_dict(self.num_params) for s in self.steps],
        }

    def write(self, path: str | os.PathLike, **extra: Any) -> Path:
        """Write `summary(**extra)` as JSON to `path` (atomically); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(path.name + ".tmp")
        scratch.write_text(json.dumps(self.summary(**extra), indent=2) + "\n")
        os.replace(scratch, path)
        return path

    def state_dict(self) -> dict[str, Any]:
        return {
            "num_params": self.num_params,
            "prior_flops": self.prior_flops,
            "steps": [asdict(s) for s in self.steps],
        }

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.steps = [StepCompute(**s) for s in saved["steps"]]
