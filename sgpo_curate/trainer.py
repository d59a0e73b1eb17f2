"""`AdaptiveGRPOTrainer`: TRL's GRPOTrainer that decides, batch by batch, which queries get rollouts and how
many, and charges every FLOP it spends.

What: before each generation batch the trainer asks a `RolloutPlanner` (sgpo_curate.allocation) for a list
of whole groups `(row, G)` filling exactly `generation_batch_size` rollouts, generates them through TRL,
normalises advantages within each *real* group, and records rollout tokens, trained tokens and FLOPs
(`compute_summary.json` in `output_dir`). Everything is a config field of `AdaptiveGRPOConfig`; with
everything off it is plain GRPO through the same code:

- group sizes: the curated `group_size` column (sGPO offline), a rule on the current p̂ (`group_size_rule`:
  inverse, symmetric, uniform, coverage, or knapsack, which splits each batch's budget across
  `queries_per_batch` queries), or `num_generations` for every row;
- online p̂ (`online_pass_rate`): a Beta posterior per query, seeded from the profile's counts, updated from
  the query's own rollouts with forgetting; solved or hopeless queries are parked and re-probed; the p̂ trace
  is written to `pass_rate_trace.parquet` (a dataset of difficulty drift in its own right);
- query selection: the rows' order (`shuffle_dataset=False` keeps a curriculum; `curriculum_schedule=
  "one-pass"` spreads one easy-to-hard pass over the whole run) or a draw weighted by expected signal;
- `drop_zero_advantage_groups`: rollouts with zero advantage skip the policy forward and backward; the loss
  keeps its normaliser, so the update is the one without dropping (exact with beta = 0);
- `dynamic_sampling`: DAPO-style: generate, discard all-equal groups, generate again until the batch holds
  only informative groups, every generated rollout charged.

Why a subclass this thin: TRL has one global `num_generations`, used in exactly two places that matter here:
`RepeatSampler` repeats every prompt `num_generations` times, and `_generate_and_score_completions` groups the
gathered rewards with `view(-1, num_generations)`. This class overrides `_generate_and_score_completions`
(it builds the batch from the plan, calls TRL's unchanged, then recomputes the advantages per planned group
from the rewards TRL gathered, stashed by the `_calculate_rewards` hook) and `_compute_loss` (the drop and
the count of trained tokens); `_get_train_sampler` only paces the loop. Nothing of TRL's long methods is
copied; `trl` is pinned to a minor range because these hooks are private.

Why the plan is made at generation time and not in the sampler: accelerate's dataloader asks the sampler for
one or more batches before they are trained on, so a sampler would decide with stale rewards. Processes take
contiguous slices of a planned batch, so a group may span two processes: rewards are gathered before grouping,
exactly as TRL does. Every process builds the same plan (it depends only on gathered rewards and the seed).

Usage (CPU; drop `use_cpu`/`bf16` on a GPU):

    from datasets import load_dataset
    from sgpo_curate import AdaptiveGRPOConfig, AdaptiveGRPOTrainer

    dataset = load_dataset("ORG/NAME", "qwen2.5-0.5b-instruct", split="train")  # curated, curriculum order
    args = AdaptiveGRPOConfig(output_dir="runs/sgpo", group_size_rule="knapsack", online_pass_rate=True,
                              drop_zero_advantage_groups=True, per_device_train_batch_size=64,
                              num_generations=8, use_cpu=True, bf16=False)
    trainer = AdaptiveGRPOTrainer(model="Qwen/Qwen2.5-0.5B-Instruct", reward_funcs=my_reward,
                                  args=args, train_dataset=dataset)
    trainer.train()   # writes runs/sgpo/compute_summary.json, pass_rate_trace.parquet and README.md (model card)

GPU run with vLLM in colocate mode (one process per GPU; server mode assumes one fixed group size and is
refused unless every group has `num_generations` rollouts):

    accelerate launch --num_processes 8 my_train.py  # AdaptiveGRPOConfig(use_vllm=True, vllm_mode="colocate", ...)

Two CPU processes: `accelerate launch --cpu --num_processes 2 train.py` starts ONE process in accelerate 1.15
(its CPU path fans out only through mpirun with a hostfile). On a machine without a visible GPU,
`CUDA_VISIBLE_DEVICES= accelerate launch --multi_gpu --num_processes 2 train.py` (or `torchrun
--nproc_per_node 2 train.py`) gives two gloo-connected CPU processes; keep `use_cpu=True`.
Run the tests with `pytest tests/test_trainer.py` (the 2-process tests use that launch).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sgpo_curate._extras import requires
from sgpo_curate.allocation import SCHEDULES, SELECTIONS, PlannedGroup, PlannerSettings, RolloutPlanner
from sgpo_curate.compute import ComputeLedger
from sgpo_curate.policy import get_group_size_rule

with requires("train"):
    import torch
    from accelerate.utils import gather, pad_across_processes
    from torch.utils.data import Sampler
    from trl import GRPOConfig, GRPOTrainer

logger = logging.getLogger(__name__)

# The column the trainer adds to the training set so every rollout knows which row it came from.
ROW_INDEX_COLUMN = "sgpo_row_index"
# Profile counts of a curated dataset (DESIGN.md columns): the planner's prior for each query's p̂.
PROFILE_COUNT_COLUMNS = ("num_correct", "num_samples")
QUERY_WEIGHTINGS = ("query", "rollout")
# What each TRL loss type divides a micro-batch's summed loss by. Dropping zero-advantage rollouts must keep
# that divisor: "rows" (mean over sequences), "tokens" (the micro-batch's loss tokens), "batch" (the
# generation batch's token count, `num_items_in_batch`, which is left as computed on the full batch).
LOSS_NORMALISERS = {
    "grpo": "rows",
    "sapo": "rows",
    "luspo": "rows",
    "dr_grpo": "rows",
    "bnpo": "tokens",
    "dapo": "batch",
    "cispo": "batch",
    "vespo": "batch",
}
STATE_FILE = "sgpo_state.json"


@dataclass
class AdaptiveGRPOConfig(GRPOConfig):
    """`GRPOConfig` plus the fields of adaptive rollout allocation. Only new fields live here.

    `num_generations` stays TRL's field: it is the group size of rows without one (and of every row in plain
    GRPO), TRL still checks that it divides `generation_batch_size`, and it sets the default number of queries
    per batch of budgeted rules. `shuffle_dataset=False` keeps the dataset's order: the curriculum. Every
    generation batch holds exactly `generation_batch_size` rollouts, so arms compared at equal steps are
    compared at equal rollouts.
    """

    group_size_column: str | None = field(
        default="group_size",
        metadata={
            "help": "Column holding each row's rollout group size G (a curated dataset's `group_size`), used "
            "when `group_size_rule` is None. None (or a dataset without the column) gives every row "
            "`num_generations` rollouts: plain GRPO through the same code."
        },
    )
    group_size_rule: str | None = field(
        default=None,
        metadata={
            "help": "Decide G in the trainer, before every batch, from each query's current p̂ (the profile's "
            "counts, updated during training with online_pass_rate): inverse, symmetric, uniform, coverage "
            "(smallest G with a non-degenerate group with probability coverage_probability), knapsack (split "
            "each batch's rollouts across queries_per_batch queries to maximise E[(1-p^G-(1-p)^G) p(1-p)]), "
            "or a dotted path 'pkg.mod:obj'. None: the group_size_column, else num_generations."
        },
    )
    coverage_probability: float = field(
        default=0.75,
        metadata={"help": "α of the coverage rule: wanted probability that a group is not all equal."},
    )
    queries_per_batch: int | None = field(
        default=None,
        metadata={
            "help": "Queries sharing each generation batch under a budgeted rule (knapsack); None: "
            "generation_batch_size // num_generations, plain GRPO's count. More queries with smaller groups "
            "trade baseline quality for coverage."
        },
    )
    min_group_size: int = field(
        default=2,
        metadata={
            "help": "Group sizes are clipped up to this (>= 2: a group of one always has zero advantage)."
        },
    )
    max_group_size: int | None = field(
        default=None,
        metadata={
            "help": "Group sizes are clipped down to this; None means `generation_batch_size`, the most a "
            "generation batch can hold without splitting a group."
        },
    )
    query_selection: str = field(
        default="order",
        metadata={
            "help": "'order': take queries in the dataset's order (shuffled per epoch when shuffle_dataset); "
            "'signal': draw each batch's queries without replacement with probability proportional to their "
            "expected reward variance E[p(1-p)] under the current posterior (useful with online_pass_rate)."
        },
    )
    curriculum_schedule: str = field(
        default="epochs",
        metadata={
            "help": "'epochs': walk the order and start again after the last row (plain GRPO's epochs); "
            "'one-pass': spread one walk over the whole run (the batch at progress t starts at row t*N), so an "
            "easy-to-hard curriculum goes once from easy to hard whatever the run's length."
        },
    )
    online_pass_rate: bool = field(
        default=False,
        metadata={
            "help": "Keep a Beta posterior of each query's success rate, seeded from the profile's num_correct/"
            "num_samples columns (flat without them), updated from its training rollouts (rewards taken as "
            "success rates, clipped to [0, 1]); rules, selection and parking use it. The per-query trace is "
            "saved as pass_rate_trace.parquet."
        },
    )
    pass_rate_forgetting: float = field(
        default=0.8,
        metadata={
            "help": "Each time a query is rolled out, its past evidence is multiplied by this before the new "
            "rollouts are added (1 = keep everything): old evidence fades as the policy changes."
        },
    )
    park_below: float = field(
        default=0.05,
        metadata={
            "help": "With online_pass_rate: park (stop training) a query whose expected reward variance E[p(1-p)] "
            "falls below this, i.e. one judged solved or hopeless (0.05 is about 18 equal rewards in a row "
            "under a flat prior); 0 never parks."
        },
    )
    reprobe_fraction: float = field(
        default=0.05,
        metadata={
            "help": "With online_pass_rate: share of each batch's rollouts spent re-probing parked queries with "
            "min_group_size rollouts each, least recently seen first, so a query that becomes learnable comes back."
        },
    )
    drop_zero_advantage_groups: bool = field(
        default=False,
        metadata={
            "help": "Skip the policy forward and backward for rollouts whose advantage is exactly 0 (groups whose "
            "rewards are all equal, unscorable rollouts). With beta = 0 they contribute nothing to the gradient; "
            "the loss keeps its normaliser, so the update is the same as without dropping, for less compute."
        },
    )
    dynamic_sampling: bool = field(
        default=False,
        metadata={
            "help": "DAPO-style dynamic sampling: generate a batch, discard groups whose rewards are all equal, "
            "generate more until the batch holds only informative groups (at most dynamic_sampling_max_rounds "
            "generations; then all-equal groups fill the rest). Every generated rollout is charged. Needs one "
            "group size for all queries."
        },
    )
    dynamic_sampling_max_rounds: int = field(
        default=8, metadata={"help": "Most generation rounds per batch under dynamic_sampling."}
    )
    query_weighting: str = field(
        default="query",
        metadata={
            "help": "'query': scale each rollout's advantage by n_rollouts / (n_groups * its group's size), so "
            "every query in a batch weighs the same whatever its G (a 16-rollout hard query does not count 8x a "
            "2-rollout easy one; large groups buy a better chance of a success and a better baseline, not more "
            "weight). With one G for all rows the scale is exactly 1, so plain GRPO is unchanged. 'rollout': "
            "every rollout weighs the same, as in TRL (big groups dominate the loss)."
        },
    )
    prior_flops: float = field(
        default=0.0,
        metadata={
            "help": "FLOPs spent before training that this run is charged with, e.g. the profiling pass that "
            "produced the group sizes (its summary's FLOPs). Added to the compute totals and listed apart."
        },
    )
    compute_summary_file: str | None = field(
        default="compute_summary.json",
        metadata={"help": "File name (in output_dir) of the JSON compute summary; None: none."},
    )
    pass_rate_trace_file: str | None = field(
        default="pass_rate_trace.parquet",
        metadata={
            "help": "File name (in output_dir) of the per-query trace: every planned group's rewards and the "
            "posterior after it; None: none."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_choices()
        if self.max_group_size is None:
            self.max_group_size = self.generation_batch_size
        if not 2 <= self.min_group_size <= self.max_group_size <= self.generation_batch_size:
            raise ValueError(
                f"need 2 <= min_group_size ({self.min_group_size}) <= max_group_size ({self.max_group_size}) <= "
                f"generation_batch_size ({self.generation_batch_size}): a group must fit in one generation batch"
            )
        if self.remove_unused_columns:
            raise ValueError(
                "AdaptiveGRPOConfig needs remove_unused_columns=False: rows carry their group size"
            )
        if self.prior_flops < 0:
            raise ValueError(f"prior_flops must be >= 0, got {self.prior_flops}")
        if self.drop_zero_advantage_groups:
            self._check_drop_is_exact()
        if self.dynamic_sampling and self.dynamic_sampling_max_rounds < 1:
            raise ValueError(
                f"dynamic_sampling_max_rounds must be >= 1, got {self.dynamic_sampling_max_rounds}"
            )
        if self.dynamic_sampling and self.group_size_rule not in (None, "uniform"):
            raise ValueError(
                "dynamic_sampling needs one group size for all queries: group_size_rule None or 'uniform'"
            )
        self.planner_settings()  # constraints of the allocation (rule names, budgets) fail here

    def _check_choices(self) -> None:
        for name, value, valid in (
            ("query_weighting", self.query_weighting, QUERY_WEIGHTINGS),
            ("query_selection", self.query_selection, SELECTIONS),
            ("curriculum_schedule", self.curriculum_schedule, SCHEDULES),
        ):
            if value not in valid:
                raise ValueError(f"{name} must be one of {valid}, got {value!r}")
        if self.group_size_rule is not None:
            get_group_size_rule(self.group_size_rule)  # an unknown name lists the valid ones

    def _check_drop_is_exact(self) -> None:
        reasons = []
        if self.beta != 0.0:
            reasons.append(f"beta={self.beta} (the KL term moves zero-advantage rollouts too)")
        if self.loss_type not in LOSS_NORMALISERS:
            reasons.append(f"loss_type={self.loss_type!r} (supported: {', '.join(LOSS_NORMALISERS)})")
        if self.top_entropy_quantile < 1.0:
            reasons.append("top_entropy_quantile < 1 (the entropy quantile is taken over the batch)")
        if self.entropy_coef != 0.0 or self.use_adaptive_entropy:
            reasons.append("an entropy bonus (it averages over every rollout's tokens)")
        if reasons:
            raise ValueError(
                "drop_zero_advantage_groups=True is exact only when zero-advantage rollouts contribute nothing to "
                "the loss; not with " + "; ".join(reasons)
            )

    def planner_settings(self) -> PlannerSettings:
        """The `PlannerSettings` these fields describe (budget = generation_batch_size)."""
        return PlannerSettings(
            budget=self.generation_batch_size,
            default_group_size=self.num_generations,
            g_min=self.min_group_size,
            g_max=self.max_group_size or self.generation_batch_size,
            rule=self.group_size_rule,
            rule_options={"probability": self.coverage_probability},
            queries_per_batch=self.queries_per_batch,
            selection=self.query_selection,
            schedule=self.curriculum_schedule,
            shuffle=self.shuffle_dataset,
            online=self.online_pass_rate,
            forgetting=self.pass_rate_forgetting,
            park_below=self.park_below if self.online_pass_rate else 0.0,
            reprobe_fraction=self.reprobe_fraction if self.online_pass_rate else 0.0,
            seed=self.seed,
        )


# --------------------------------------------------------------------------- pure helpers


def plan_group_ids(plan: list[PlannedGroup]) -> torch.Tensor:
    """Group index of every rollout of a plan, in rollout order.

    Example:
        >>> plan_group_ids([PlannedGroup(7, 2), PlannedGroup(3, 2, padding=1)])
        tensor([0, 0, 1, 1, 1])
    """
    return torch.tensor([index for index, group in enumerate(plan) for _ in range(group.rollouts)])


def group_advantages(
    rewards: torch.Tensor, group_ids: torch.Tensor, scale_rewards: str = "group", eps: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor]:
    """GRPO advantages with one baseline per real group of any size, as TRL computes them for fixed groups.

    advantage = (r - mean_group(r)) / (std_group(r) + eps) for `scale_rewards="group"`, the batch std for
    `"batch"`, no division for `"none"`. Means and (Bessel-corrected) stds skip NaN rewards (unscorable
    completions), whose advantage is 0.

    Args:
        rewards (`torch.Tensor`): (N,) summed, weighted reward per rollout; NaN = unscorable.
        group_ids (`torch.Tensor`): (N,) group index in [0, num_groups) per rollout.
        scale_rewards (`str`): `"group"`, `"batch"` or `"none"`, TRL's option of the same name.
        eps (`float`): TRL's 1e-4 added to the std.

    Returns:
        `(advantages, zero_std)`: advantages (N,) and a bool (num_groups,) marking groups whose rewards are all
        equal (no learning signal).
    """
    num_groups = int(group_ids.max().item()) + 1 if group_ids.numel() else 0
    valid = ~torch.isnan(rewards)
    filled = torch.where(valid, rewards, torch.zeros_like(rewards)).float()
    count = torch.zeros(num_groups, device=rewards.device).index_add_(0, group_ids, valid.float())
    total = torch.zeros(num_groups, device=rewards.device).index_add_(0, group_ids, filled)
    mean = total / count.clamp(min=1.0)
    deviation = torch.where(valid, filled - mean[group_ids], torch.zeros_like(filled))
    squares = torch.zeros(num_groups, device=rewards.device).index_add_(0, group_ids, deviation**2)
    std = torch.sqrt(squares / (count - 1).clamp(min=1.0))
    zero_std = torch.isclose(std, torch.zeros_like(std))
    advantages = deviation
    if scale_rewards == "group":
        advantages = advantages / (std[group_ids] + eps)
    elif scale_rewards == "batch":
        from trl.trainer.utils import nanstd

        advantages = advantages / (nanstd(rewards) + eps) if rewards.numel() > 1 else advantages
    elif scale_rewards != "none":
        raise ValueError(f"scale_rewards must be 'group', 'batch' or 'none', got {scale_rewards!r}")
    return torch.nan_to_num(torch.where(valid, advantages, torch.zeros_like(advantages)), nan=0.0), zero_std


def query_weights(group_ids: torch.Tensor, group_counts: torch.Tensor) -> torch.Tensor:
    """Per-rollout weight n_rollouts / (n_groups * size of its group): each group's weights sum to n/K.

    Mean weight over rollouts is 1, so the loss scale matches TRL's; with equal groups every weight is 1.
    """
    num_rollouts, num_groups = group_ids.numel(), group_counts.numel()
    return num_rollouts / (num_groups * group_counts[group_ids].float())


def loss_correction(loss_type: str, rows: int, kept_rows: int, tokens: float, kept_tokens: float) -> float:
    """Factor that turns TRL's loss over the kept rows of a micro-batch into its loss over all of them.

    Dropped rows contribute 0 to the summed loss, so only the divisor differs: a mean over rows divides by
    `kept_rows` instead of `rows`, a mean over the micro-batch's loss tokens by `kept_tokens` instead of
    `tokens`; `num_items_in_batch` (dapo, cispo, vespo) is passed through unchanged.

    Example:
        >>> loss_correction("grpo", rows=8, kept_rows=2, tokens=80, kept_tokens=20)
        0.25
        >>> loss_correction("dapo", rows=8, kept_rows=2, tokens=80, kept_tokens=20)
        1.0
    """
    kind = LOSS_NORMALISERS[loss_type]
    if kind == "rows":
        return kept_rows / rows
    if kind == "tokens":
        return max(kept_tokens, 1.0) / max(tokens, 1.0)
    return 1.0


def keep_rows(advantages: torch.Tensor, count: int) -> torch.Tensor:
    """Indices (ascending) of `count` rows: every row with a non-zero advantage first, then zero rows to make up
    the count (all processes must feed the same number of rows to their collectives).

    Example:
        >>> keep_rows(torch.tensor([0.0, 1.0, 0.0, -1.0]), 3)
        tensor([0, 1, 3])
    """
    signal = advantages != 0 if advantages.dim() == 1 else (advantages != 0).any(dim=1)
    ranked = torch.argsort((~signal).int(), stable=True)[:count]
    return torch.sort(ranked).values


def select_rows(batch: dict[str, Any], index: torch.Tensor, num_rows: int) -> dict[str, Any]:
    """The rows `index` of every per-row tensor of a TRL batch (first dimension `num_rows`); the rest as is."""
    return {
        key: value[index]
        if torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == num_rows
        else value
        for key, value in batch.items()
    }


# Per-row tensors of a text-only TRL batch: (padding value or None for the pad token, padded on the left?).
ROW_TENSORS = {
    "prompt_ids": (None, True),
    "prompt_mask": (0, True),
    "completion_ids": (None, False),
    "completion_mask": (0, False),
    "old_per_token_logps": (0.0, False),
    "ref_per_token_logps": (0.0, False),
    "sampling_per_token_logps": (0.0, False),
    "importance_sampling_ratio": (1.0, False),
    "tool_mask": (1, False),
}


def pad_cat(tensors: list[torch.Tensor], value: float, left: bool) -> torch.Tensor:
    """Concatenate row blocks of different widths, padding each to the widest (on the left or right)."""
    width = max(t.shape[1] for t in tensors)
    padded = []
    for t in tensors:
        pad = (width - t.shape[1], 0) if left else (0, width - t.shape[1])
        padded.append(torch.nn.functional.pad(t, pad, value=value))
    return torch.cat(padded, dim=0)


class PacingSampler(Sampler[int]):
    """Paces TRL's training loop; the rows of each batch come from the planner, not from these indices.

    One Trainer epoch is `num_batches` generation batches of `batch_size` rollouts (each yielded
    `repeat_count` times, as TRL's `RepeatSampler` does); indices cycle through the rows so the dataloader
    fetches real, cheap rows it never trains on.
    """

    def __init__(self, num_rows: int, num_batches: int, batch_size: int, repeat_count: int = 1):
        self.num_rows, self.num_batches = num_rows, num_batches
        self.batch_size, self.repeat_count = batch_size, repeat_count

    def __iter__(self) -> Iterator[int]:
        for batch in range(self.num_batches):
            indices = [(batch * self.batch_size + i) % self.num_rows for i in range(self.batch_size)]
            for _ in range(self.repeat_count):
                yield from indices

    def __len__(self) -> int:
        return self.num_batches * self.batch_size * self.repeat_count


@dataclass
class _Round:
    """One generation through TRL: the plan, the gathered rewards, advantages and group statistics."""

    plan: list[PlannedGroup]
    group_ids: torch.Tensor
    rewards: torch.Tensor
    advantages: torch.Tensor
    zero_std: torch.Tensor
    tokens: dict[str, int]


# --------------------------------------------------------------------------- trainer


class AdaptiveGRPOTrainer(GRPOTrainer):
    """GRPOTrainer with planned rollout allocation (see the module docstring).

    Args: as `trl.GRPOTrainer`; `args` must be an `AdaptiveGRPOConfig`. The training set must be a map-style
    `datasets.Dataset` (the planner indexes it); a row-index column `sgpo_row_index` is added to it.
    """

    def __init__(
        self,
        model: Any,
        reward_funcs: Any,
        args: AdaptiveGRPOConfig | None = None,
        train_dataset: Any = None,
        **kwargs: Any,
    ):
        if args is None:
            args = AdaptiveGRPOConfig(output_dir="adaptive-grpo")
        if not isinstance(args, AdaptiveGRPOConfig):
            raise TypeError(f"AdaptiveGRPOTrainer needs an AdaptiveGRPOConfig, got {type(args).__name__}")
        train_dataset = _with_row_index(train_dataset)
        super().__init__(
            model=model, reward_funcs=reward_funcs, args=args, train_dataset=train_dataset, **kwargs
        )
        num_params = self.accelerator.unwrap_model(self.model).num_parameters()
        self.compute_ledger = ComputeLedger(num_params=num_params, prior_flops=args.prior_flops)
        self.planner = self._make_planner() if train_dataset is not None else None
        self._check_supported()
        self._gathered_rewards: torch.Tensor | None = None
        self._generated_lengths: list[int] = []

    def _make_planner(self) -> RolloutPlanner:
        dataset, args = self.train_dataset, self.args
        column = args.group_size_column
        fixed = None
        if column is not None and column in dataset.column_names and args.group_size_rule is None:
            fixed = [self.num_generations if _missing(v) else int(v) for v in dataset[column]]
        elif column is not None and column not in dataset.column_names and args.group_size_rule is None:
            logger.warning(
                "column %r not in the training set: every row gets num_generations rollouts", column
            )
        counts = None
        if all(name in dataset.column_names for name in PROFILE_COUNT_COLUMNS):
            counts = [
                (0, 0) if _missing(c) or _missing(k) else (int(c), int(k))
                for c, k in zip(*(dataset[name] for name in PROFILE_COUNT_COLUMNS), strict=True)
            ]
        if not self.shuffle_dataset and "curriculum_rank" in dataset.column_names:
            ranks = dataset["curriculum_rank"]
            if any(a > b for a, b in zip(ranks, ranks[1:], strict=False)):
                logger.warning(
                    "shuffle_dataset=False but rows are not sorted by curriculum_rank: dataset order"
                )
        return RolloutPlanner(args.planner_settings(), len(dataset), fixed_sizes=fixed, prior_counts=counts)

    def _plans_fixed_groups(self) -> bool:
        """True when every group has exactly num_generations rollouts (what vLLM server mode assumes)."""
        planner, args = self.planner, self.args
        if planner is None:
            return True
        sizes = set(planner.fixed_sizes or [self.num_generations])
        uniform_rule = args.group_size_rule in (None, "uniform")
        return sizes == {self.num_generations} and uniform_rule and not args.online_pass_rate

    def _check_supported(self) -> None:
        if self.use_vllm and self.args.vllm_mode == "server" and not self._plans_fixed_groups():
            raise ValueError(
                "vllm_mode='server' generates a fixed num_generations per prompt; use vllm_mode='colocate' "
                "(one completion per repeated row) for per-query group sizes"
            )
        if self.multi_objective_aggregation != "sum_then_normalize":
            raise NotImplementedError(
                "AdaptiveGRPOTrainer supports multi_objective_aggregation='sum_then_normalize'"
            )
        if self.rollout_func is not None or self.environment_factories is not None:
            raise NotImplementedError("AdaptiveGRPOTrainer does not support rollout_func or environments yet")
        if self.args.drop_zero_advantage_groups and self.aux_loss_enabled:
            raise ValueError("drop_zero_advantage_groups is not exact with a router auxiliary loss (MoE)")
        if (
            self.args.dynamic_sampling
            and self.planner is not None
            and len(set(self.planner.fixed_sizes or [0])) > 1
        ):
            raise ValueError(
                "dynamic_sampling needs one group size for all queries; the group_size column varies"
            )

    # ---- pacing

    def _get_train_sampler(self, dataset: Any = None) -> Sampler:
        planned = (
            sum(self.planner.fixed_sizes)
            if self.planner.fixed_sizes
            else len(self.train_dataset) * self.num_generations
        )
        num_batches = max(1, math.ceil(planned / self.args.generation_batch_size))
        return PacingSampler(
            len(self.train_dataset),
            num_batches,
            self.args.generation_batch_size,
            repeat_count=self.num_iterations * self.args.steps_per_generation,
        )

    # ---- generation and advantages

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        # The parent returns the rewards of all processes (gathered); keep them to regroup by planned group, and
        # the generated lengths (before any loss mask) for the compute ledger.
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._gathered_rewards = rewards_per_func
        self._generated_lengths = [len(ids) for ids in completion_ids_list]
        return rewards_per_func

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        if not self.model.training:
            return super()._generate_and_score_completions(inputs)  # evaluation keeps TRL's fixed groups
        if self.args.dynamic_sampling:
            return self._dynamic_sampling_batch()
        output, result = self._roll_out(self.planner.next_batch(self._progress()), round_index=0)
        self._record_generation([result])
        return output

    def _progress(self) -> float:
        return self.state.global_step / self.state.max_steps if self.state.max_steps else 0.0

    def _training_rows(self, rows: list[int]) -> list[dict[str, Any]]:
        unique = sorted(set(rows))
        fetched = dict(zip(unique, self.train_dataset.select(unique), strict=True))
        return [fetched[row] for row in rows]

    def _local_slice(self, num_rollouts: int) -> slice:
        local = num_rollouts // self.accelerator.num_processes
        return slice(self.accelerator.process_index * local, (self.accelerator.process_index + 1) * local)

    def _roll_out(self, plan: list[PlannedGroup], round_index: int) -> tuple[dict[str, Any], _Round]:
        """Generate and score one planned batch through TRL; replace its advantages with per-group ones."""
        device = self.accelerator.device
        rows = [group.row for group in plan for _ in range(group.rollouts)]
        local = self._local_slice(len(rows))
        output = super()._generate_and_score_completions(self._training_rows(rows[local]))
        group_ids = plan_group_ids(plan).to(device)
        rewards = self._summed_rewards()
        advantages, zero_std = group_advantages(rewards, group_ids, self.scale_rewards)
        if self.args.query_weighting == "query":
            advantages = advantages * query_weights(group_ids, torch.bincount(group_ids))
        output["advantages"] = advantages[local]
        self._replace_logged_advantages(advantages)
        per_group = [rewards[group_ids == i].tolist() for i in range(len(plan))]
        self.planner.observe(plan, per_group, step=self.state.global_step + 1, round=round_index)
        result = _Round(plan, group_ids, rewards, advantages, zero_std, self._round_tokens(output))
        self._log_round(result)
        return output, result

    def _summed_rewards(self) -> torch.Tensor:
        """The gathered rewards summed over reward functions with their weights; NaN where none could score."""
        per_func = self._gathered_rewards
        unscorable = torch.isnan(per_func).all(dim=1)
        rewards = (per_func * self.reward_weights.to(per_func.device).unsqueeze(0)).nansum(dim=1)
        rewards[unscorable] = torch.nan
        return rewards

    def _round_tokens(self, output: dict[str, Any]) -> dict[str, int]:
        """Prompt, generated and extra-forward tokens of one generation, summed over processes."""
        device = self.accelerator.device
        prompt = output["prompt_mask"].sum()
        scored = prompt + output["completion_mask"].sum()
        local = torch.stack(
            [
                prompt,
                torch.tensor(sum(self._generated_lengths), device=device),
                scored if "old_per_token_logps" in output else torch.zeros_like(scored),
                scored if "ref_per_token_logps" in output else torch.zeros_like(scored),
            ]
        ).to(device)
        totals = gather(local.unsqueeze(0)).sum(dim=0).tolist()
        return dict(zip(("prompt", "completion", "old_logps", "ref_logps"), map(int, totals), strict=True))

    def _replace_logged_advantages(self, advantages: torch.Tensor) -> None:
        logged = self._logs["advantages"]
        for _ in range(min(len(logged), advantages.numel())):
            logged.pop()
        logged.extend(advantages.tolist())

    def _log_round(self, result: _Round) -> None:
        metrics = self._metrics["train"]
        plan, zero_std = result.plan, result.zero_std
        sizes = torch.tensor([g.rollouts for g in plan], dtype=torch.float)
        zero_rollouts = float((sizes * zero_std.float().cpu()).sum() / sizes.sum())
        # TRL computed this on its fixed-size view of the batch; replace it with the planned groups' value.
        if metrics.get("frac_reward_zero_std"):
            metrics["frac_reward_zero_std"][-1] = zero_rollouts
        metrics["sgpo/frac_zero_adv_groups"].append(zero_std.float().mean().item())
        metrics["sgpo/frac_zero_adv_rollouts"].append(zero_rollouts)
        metrics["sgpo/groups_per_batch"].append(float(len(plan)))
        metrics["sgpo/group_size_mean"].append(float(sizes.mean()))
        metrics["sgpo/pad_rollouts_frac"].append(sum(g.padding for g in plan) / float(sizes.sum()))
        metrics["sgpo/probe_rollouts_frac"].append(
            sum(g.rollouts for g in plan if g.probe) / float(sizes.sum())
        )
        if self.args.online_pass_rate:
            parked = sum(self.planner.is_parked(r) for r in range(self.planner.num_rows))
            metrics["sgpo/parked_frac"].append(parked / self.planner.num_rows)

    # ---- dynamic sampling (DAPO)

    def _dynamic_sampling_batch(self) -> dict[str, Any]:
        """Generate rounds until the batch holds `generation_batch_size` rollouts of informative groups."""
        target = self.args.generation_batch_size
        informative, spare, rounds = [], [], []
        for round_index in range(self.args.dynamic_sampling_max_rounds):
            output, result = self._roll_out(self.planner.next_batch(self._progress()), round_index)
            rounds.append(result)
            rows = self._gathered_rows(output, result.advantages)
            for index in range(len(result.plan)):
                members = (result.group_ids == index).nonzero().squeeze(1)
                (spare if result.zero_std[index] else informative).append(
                    select_rows(rows, members, len(result.group_ids))
                )
            if sum(len(g["advantages"]) for g in informative) >= target:
                break
        self._record_generation(rounds)
        groups = informative + spare  # all-equal groups only when the rounds ran out (they carry no gradient)
        chosen, total = [], 0
        for group in groups:
            if total + len(group["advantages"]) > target:
                continue
            chosen.append(group)
            total += len(group["advantages"])
        self._metrics["train"]["sgpo/dynamic_rounds"].append(float(len(rounds)))
        return self._local_batch(chosen)

    def _gathered_rows(self, output: dict[str, Any], advantages: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every per-row tensor of all processes, padded to a common width, plus the global advantages."""
        unknown = [
            k
            for k, v in output.items()
            if k not in ROW_TENSORS and k not in ("advantages", "num_items_in_batch")
        ]
        if unknown:
            raise NotImplementedError(f"dynamic_sampling supports text-only batches; got {sorted(unknown)}")
        rows = {"advantages": advantages}
        for key, (value, left) in ROW_TENSORS.items():
            if key in output:
                pad = self._tokenizer.pad_token_id if value is None else value
                tensor = pad_across_processes(output[key], dim=1, pad_index=pad, pad_first=left)
                rows[key] = gather(tensor)
        return rows

    def _local_batch(self, groups: list[dict[str, torch.Tensor]]) -> dict[str, Any]:
        """This process's slice of the concatenated groups, in TRL's batch layout."""
        batch: dict[str, Any] = {"advantages": torch.cat([g["advantages"] for g in groups])}
        for key, (value, left) in ROW_TENSORS.items():
            if key in groups[0]:
                pad = self._tokenizer.pad_token_id if value is None else value
                batch[key] = pad_cat([g[key] for g in groups], pad, left)
        loss_mask = batch["completion_mask"] * batch.get("tool_mask", 1)
        local = self._local_slice(len(batch["advantages"]))
        output = {key: value[local] for key, value in batch.items()}
        output["num_items_in_batch"] = loss_mask.sum()
        return output

    # ---- the update: dropping zero-advantage rollouts, charging trained tokens

    def _compute_loss(self, model, inputs):
        if not self.model.training:
            return super()._compute_loss(model, inputs)
        correction = 1.0
        if self.args.drop_zero_advantage_groups:
            inputs, correction = self._drop_zero_advantage(inputs)
        self._charge_update(inputs)
        loss = super()._compute_loss(model, inputs)
        return loss * correction if correction != 1.0 else loss

    def _drop_zero_advantage(self, inputs: dict[str, Any]) -> tuple[dict[str, Any], float]:
        advantages = inputs["advantages"]
        rows = advantages.shape[0]
        signal = (advantages != 0) if advantages.dim() == 1 else (advantages != 0).any(dim=1)
        # Every process keeps the same number of rows (its collectives need equal shapes), at least one.
        count = int(gather(signal.sum().reshape(1)).max().item())
        index = keep_rows(advantages, max(1, count))
        kept = select_rows(inputs, index, rows)
        mask = inputs["completion_mask"] * inputs.get("tool_mask", 1)
        correction = loss_correction(
            self.loss_type, rows, len(index), float(mask.sum()), float(mask[index].sum())
        )
        self._metrics["train"]["sgpo/trained_rollouts_frac"].append(len(index) / rows)
        return kept, correction

    def _charge_update(self, inputs: dict[str, Any]) -> None:
        tokens = inputs["prompt_mask"].sum() + inputs["completion_mask"].sum()
        local = torch.stack(
            [torch.tensor(float(inputs["prompt_mask"].shape[0]), device=tokens.device), tokens.float()]
        )
        rollouts, trained = gather(local.unsqueeze(0)).sum(dim=0).tolist()
        self.compute_ledger.add_trained(int(rollouts), int(trained))

    # ---- compute accounting and outputs

    def _record_generation(self, rounds: list[_Round]) -> None:
        tokens = {key: sum(r.tokens[key] for r in rounds) for key in rounds[0].tokens}
        record = self.compute_ledger.add_generation(
            step=self.state.global_step + 1,
            rollouts=sum(len(r.group_ids) for r in rounds),
            groups=sum(len(r.plan) for r in rounds),
            prompt_tokens=tokens["prompt"],
            completion_tokens=tokens["completion"],
            old_logps_tokens=tokens["old_logps"],
            ref_logps_tokens=tokens["ref_logps"],
            rounds=len(rounds),
        )
        totals = self.compute_ledger.totals()
        metrics = self._metrics["train"]
        metrics["compute/step_rollout_tokens"].append(float(record.rollout_tokens))
        # Running totals: one value, not averaged over the logging window (like TRL's num_tokens).
        metrics["compute/total_flops"] = [totals["total_flops"]]
        metrics["compute/total_rollouts"] = [totals["rollouts"]]
        metrics["compute/total_trained_tokens"] = [totals["trained_tokens"]]

    def compute_summary(self) -> dict[str, Any]:
        """The JSON-ready compute summary: per-batch records, totals and the settings that shaped them."""
        settings = self.planner.settings
        return self.compute_ledger.summary(
            group_size_column=self.args.group_size_column,
            query_weighting=self.args.query_weighting,
            drop_zero_advantage_groups=self.args.drop_zero_advantage_groups,
            dynamic_sampling=self.args.dynamic_sampling,
            planner=asdict(settings),
            generation_batch_size=self.args.generation_batch_size,
            num_processes=self.accelerator.num_processes,
        )

    def write_outputs(self, directory: str | os.PathLike | None = None) -> None:
        """Write the compute summary, the p̂ trace and the model card `README.md` (main process only) into
        `directory` (default output_dir)."""
        if not self.accelerator.is_main_process:
            return
        directory = Path(directory or self.args.output_dir)
        if self.args.compute_summary_file:
            self.compute_ledger.write(
                directory / self.args.compute_summary_file, **_without_totals(self.compute_summary())
            )
        if self.args.pass_rate_trace_file and self.planner.trace:
            self._write_trace(directory / self.args.pass_rate_trace_file)
        self._write_model_card(directory / "README.md")

    def _write_model_card(self, path: Path) -> None:
        """The card of this checkpoint (`sgpo_curate.cards`), merged into one already there (TRL's draft)."""
        from sgpo_curate.cards import TrainingSummary, dataset_identity, model_identity, render_model_card

        summary = TrainingSummary.from_compute_summary(
            self.compute_summary(),
            model_name=(self.args.hub_model_id or str(self.args.output_dir)).rstrip("/").split("/")[-1],
            **model_identity(self.model),
            **dataset_identity(self.train_dataset),
        )
        existing = path.read_text(encoding="utf-8") if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_model_card(summary, existing), encoding="utf-8")

    def _write_trace(self, path: Path) -> None:
        import pandas as pd

        frame = pd.DataFrame(self.planner.trace)
        if "id" in self.train_dataset.column_names:
            ids = self.train_dataset["id"]
            frame.insert(0, "id", [ids[row] for row in frame["row"]])
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(path.name + ".tmp")
        frame.to_parquet(scratch, index=False)
        os.replace(scratch, path)

    def train(self, *args: Any, **kwargs: Any):
        result = super().train(*args, **kwargs)
        self.write_outputs()
        return result

    # ---- checkpoints: the planner's posteriors and the ledger resume with the model

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
            state = {"planner": self.planner.state_dict(), "ledger": self.compute_ledger.state_dict()}
            (folder / STATE_FILE).write_text(json.dumps(state))
            self.write_outputs(folder)

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        path = Path(checkpoint) / STATE_FILE if checkpoint is not None else None
        if path is not None and path.exists():
            state = json.loads(path.read_text())
            self.planner.load_state_dict(state["planner"])
            self.compute_ledger.load_state_dict(state["ledger"])


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _without_totals(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in ("num_params", "formulas", "totals", "steps")}


def _with_row_index(dataset: Any) -> Any:
    from datasets import Dataset

    if dataset is None:
        return None
    if not isinstance(dataset, Dataset):
        raise TypeError(
            f"AdaptiveGRPOTrainer needs a map-style datasets.Dataset (the planner indexes rows), "
            f"got {type(dataset).__name__}"
        )
    if ROW_INDEX_COLUMN in dataset.column_names:
        dataset = dataset.remove_columns(ROW_INDEX_COLUMN)
    return dataset.add_column(ROW_INDEX_COLUMN, list(range(len(dataset))))
