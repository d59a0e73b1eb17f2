"""`AdaptiveGRPOTrainer`: TRL's GRPOTrainer with a group size per query, curriculum order and compute accounting.

What: each training row carries its own rollout group size G (the `group_size` column of a curated
dataset). The trainer samples G completions for that query, normalises advantages within each *real*
group, keeps the dataset's order when `shuffle_dataset=False` (the curriculum), and records the
rollout tokens, trained tokens and FLOPs of every step (`compute_summary.json` in `output_dir`).

Why a subclass this thin: TRL has one global `num_generations`, used in exactly two places that matter
here: `RepeatSampler` (built in `_get_train_sampler`) repeats every prompt `num_generations` times,
and `_generate_and_score_completions` groups the gathered rewards with `view(-1, num_generations)`.
This class replaces the sampler (`AdaptiveGroupSampler`) and, after calling the parent's
`_generate_and_score_completions` unchanged, recomputes the advantages from the same gathered rewards
(stashed by the `_calculate_rewards` hook) grouped by a row-index column. Nothing of TRL's long
methods is copied; `trl` is pinned to a minor range because these hooks are private.

How groups travel: the sampler yields row `i` `G_i` times in a row and packs whole groups into
generation batches of `generation_batch_size` rollouts (all processes together); no group is ever
split across two batches. Processes take contiguous slices of a batch, so a group may span two
processes: row indices and rewards are gathered before grouping, exactly as TRL gathers rewards.
When the next group does not fit in what is left of a batch, the left-over slots become extra
rollouts of the groups already in that batch (largest groups first, one slot each in turn): every
slot is a real, scored rollout of a real group, batches stay full, order is kept. Padding is logged
(`sgpo/pad_rollouts_frac`) and charged in the compute summary like any rollout.

Plain GRPO is the same code with `group_size_column=None` (every row gets `num_generations`) and
`shuffle_dataset=True`; with a uniform G the advantages equal TRL's own.

Usage (CPU; drop `use_cpu`/`bf16` on a GPU):

    from datasets import load_dataset
    from sgpo_curate import AdaptiveGRPOConfig, AdaptiveGRPOTrainer

    dataset = load_dataset("ORG/NAME", "qwen2.5-0.5b-instruct", split="train")  # curated, curriculum order
    args = AdaptiveGRPOConfig(output_dir="runs/sgpo", shuffle_dataset=False, max_group_size=16,
                              per_device_train_batch_size=64, num_generations=8, use_cpu=True, bf16=False)
    trainer = AdaptiveGRPOTrainer(model="Qwen/Qwen2.5-0.5B-Instruct", reward_funcs=my_reward,
                                  args=args, train_dataset=dataset)
    trainer.train()   # writes runs/sgpo/compute_summary.json

GPU run with vLLM in colocate mode (one process per GPU; server mode assumes one fixed group size
and is refused when group sizes vary):

    accelerate launch --num_processes 8 my_train.py  # with AdaptiveGRPOConfig(use_vllm=True,
        # vllm_mode="colocate", vllm_gpu_memory_utilization=0.3, bf16=True, max_group_size=16,
        # per_device_train_batch_size=16, gradient_accumulation_steps=8, shuffle_dataset=False)

Two CPU processes: `accelerate launch --cpu --num_processes 2 train.py` starts ONE process in
accelerate 1.15 (its CPU path fans out only through mpirun with a hostfile). On a machine without a
visible GPU, `CUDA_VISIBLE_DEVICES= accelerate launch --multi_gpu --num_processes 2 train.py` (or
`torchrun --nproc_per_node 2 train.py`) gives two gloo-connected CPU processes; keep `use_cpu=True`.
Run the tests with `pytest tests/test_trainer.py` (the 2-process test uses that launch).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sgpo_curate._extras import requires
from sgpo_curate.compute import ComputeLedger

with requires("train"):
    import torch
    from accelerate.utils import gather
    from torch.utils.data import Sampler
    from trl import GRPOConfig, GRPOTrainer

logger = logging.getLogger(__name__)

# The column the trainer adds to the training set so every rollout knows which row (group) it came from.
ROW_INDEX_COLUMN = "sgpo_row_index"
QUERY_WEIGHTINGS = ("query", "rollout")


@dataclass
class AdaptiveGRPOConfig(GRPOConfig):
    """`GRPOConfig` plus the fields of adaptive-group training. Only new fields live here.

    `num_generations` stays TRL's field: it is the group size of rows without one (and of every row when
    `group_size_column=None`, i.e. plain GRPO), and TRL still checks that it divides
    `generation_batch_size`. `shuffle_dataset=False` keeps the dataset's order: the curriculum.
    """

    group_size_column: str | None = field(
        default="group_size",
        metadata={
            "help": "Column holding each row's rollout group size G. None (or a dataset without the column) "
            "gives every row `num_generations` rollouts: plain GRPO through the same code."
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
            "produced the group sizes (k samples per profiled query at 2*params*tokens each). Added to the "
            "compute totals and listed apart."
        },
    )
    compute_summary_file: str | None = field(
        default="compute_summary.json",
        metadata={
            "help": "File name (in output_dir) of the JSON compute summary written after training; None: none."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.query_weighting not in QUERY_WEIGHTINGS:
            raise ValueError(
                f"query_weighting must be one of {QUERY_WEIGHTINGS}, got {self.query_weighting!r}"
            )
        if self.min_group_size < 2:
            raise ValueError(f"min_group_size must be >= 2, got {self.min_group_size}")
        if self.max_group_size is None:
            self.max_group_size = self.generation_batch_size
        if not self.min_group_size <= self.max_group_size <= self.generation_batch_size:
            raise ValueError(
                f"need min_group_size ({self.min_group_size}) <= max_group_size ({self.max_group_size}) <= "
                f"generation_batch_size ({self.generation_batch_size}): a group must fit in one generation batch"
            )
        if self.remove_unused_columns:
            raise ValueError(
                "AdaptiveGRPOConfig needs remove_unused_columns=False: rows carry their group size"
            )
        if self.prior_flops < 0:
            raise ValueError(f"prior_flops must be >= 0, got {self.prior_flops}")


# --------------------------------------------------------------------------- packing and sampling


@dataclass(frozen=True, slots=True)
class PackedGroup:
    """One group in a generation batch: `group_size` planned rollouts of `row`, plus `padding` extra ones."""

    row: int
    group_size: int
    padding: int = 0
    epoch: int = 0

    @property
    def rollouts(self) -> int:
        return self.group_size + self.padding


def _pad_batch(groups: list[PackedGroup], free: int) -> list[PackedGroup]:
    """Spread `free` left-over slots over the batch's groups, largest groups first, one slot each in turn.

    Extra draws matter most where a success (or failure) is rarest, i.e. in the largest groups; ties go to
    the later group, the harder one under an easy-to-hard curriculum.
    """
    if free <= 0 or not groups:
        return groups
    ranked = sorted(range(len(groups)), key=lambda i: (-groups[i].group_size, -i))
    extra = [0] * len(groups)
    for slot in range(free):
        extra[ranked[slot % len(ranked)]] += 1
    return [
        PackedGroup(g.row, g.group_size, g.padding + e, g.epoch) if e else g
        for g, e in zip(groups, extra, strict=True)
    ]


def pack_groups(rows: Iterator[tuple[int, int, int]], batch_size: int) -> Iterator[list[PackedGroup]]:
    """Pack `(row, group_size, epoch)` items, in order, into batches of exactly `batch_size` rollouts.

    A group that does not fit in what is left of the current batch starts the next one; the left-over
    slots go to the current batch's groups as padding (see `_pad_batch`). Stops when `rows` runs out
    (a last partial batch is padded the same way).

    Example:
        >>> [[(g.row, g.rollouts) for g in b] for b in pack_groups(iter([(0, 2, 0), (1, 4, 0), (2, 4, 0)]), 8)]
        [[(0, 3), (1, 5)], [(2, 8)]]
    """
    current: list[PackedGroup] = []
    free = batch_size
    for row, size, epoch in rows:
        if size > batch_size:
            raise ValueError(f"row {row}: group size {size} exceeds the generation batch size {batch_size}")
        if size > free:
            yield _pad_batch(current, free)
            current, free = [], batch_size
        current.append(PackedGroup(row, size, 0, epoch))
        free -= size
        if free == 0:
            yield current
            current, free = [], batch_size
    if current:
        yield _pad_batch(current, free)


class AdaptiveGroupSampler(Sampler[int]):
    """Yields row `i` `group_sizes[i]` times in a row, whole groups packed into fixed generation batches.

    The rows form one continuous stream of query epochs (dataset order, or a fresh seeded permutation per
    epoch when `shuffle`); the stream is packed by `pack_groups`, so batches are always full and no group is
    cut or dropped. The Trainer's "epoch" is a window of `num_batches = ceil(sum(G) / batch_size)` batches
    of that stream (the Trainer needs a fixed length); window `e` is batches `[e*num_batches, (e+1)*num_batches)`,
    recomputed from the start, so it depends only on `e` and the seed (resumable, the same on every process).
    Each batch is yielded `repeat_count` times in a row, as TRL's `RepeatSampler` does, because the trainer
    reuses one generation for `steps_per_generation * num_iterations` dataloader steps.

    Args:
        group_sizes (`Sequence[int]`): G per dataset row, already clipped.
        batch_size (`int`): rollouts per generation batch, all processes together (`generation_batch_size`).
        repeat_count (`int`): times each batch is yielded.
        shuffle (`bool`): shuffle rows per query epoch; False keeps dataset order (the curriculum).
        seed (`int`): seed of the permutations; every process must use the same.
    """

    def __init__(
        self,
        group_sizes: Sequence[int],
        batch_size: int,
        repeat_count: int = 1,
        shuffle: bool = False,
        seed: int = 0,
    ):
        if not group_sizes:
            raise ValueError("AdaptiveGroupSampler needs at least one row")
        self.group_sizes = [int(g) for g in group_sizes]
        self.batch_size = batch_size
        self.repeat_count = repeat_count
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.num_batches = max(1, math.ceil(sum(self.group_sizes) / batch_size))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _epoch_order(self, query_epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(len(self.group_sizes)))
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + query_epoch)
        return torch.randperm(len(self.group_sizes), generator=generator).tolist()

    def _row_stream(self) -> Iterator[tuple[int, int, int]]:
        query_epoch, previous_last = 0, None
        while True:
            order = self._epoch_order(query_epoch)
            if previous_last is not None and len(order) > 1 and order[0] == previous_last:
                # Two back-to-back groups of one row would read as one group: move it one place down.
                order[0], order[1] = order[1], order[0]
            for row in order:
                yield row, self.group_sizes[row], query_epoch
            previous_last = order[-1]
            query_epoch += 1

    def plan(self, window: int | None = None) -> list[list[PackedGroup]]:
        """The packed batches of Trainer epoch `window` (default: the current epoch)."""
        window = self.epoch if window is None else window
        batches = pack_groups(self._row_stream(), self.batch_size)
        start = window * self.num_batches
        return [
            batch for i, batch in zip(range(start + self.num_batches), batches, strict=False) if i >= start
        ]

    def __iter__(self) -> Iterator[int]:
        plan = self.plan()
        self.epoch += 1  # the Trainer calls set_epoch before each epoch; this covers callers that do not
        for batch in plan:
            indices = [g.row for g in batch for _ in range(g.rollouts)]
            for _ in range(self.repeat_count):
                yield from indices

    def __len__(self) -> int:
        return self.num_batches * self.batch_size * self.repeat_count


# --------------------------------------------------------------------------- advantages


def group_ids_from_rows(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Group index of every rollout (runs of equal row ids) and each group's size.

    Example:
        >>> group_ids_from_rows(torch.tensor([7, 7, 3, 3, 3, 7]))
        (tensor([0, 0, 1, 1, 1, 2]), tensor([2, 3, 1]))
    """
    _, inverse, counts = torch.unique_consecutive(rows, return_inverse=True, return_counts=True)
    return inverse, counts


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


# --------------------------------------------------------------------------- trainer


class AdaptiveGRPOTrainer(GRPOTrainer):
    """GRPOTrainer with one rollout group size per query (see the module docstring).

    Args: as `trl.GRPOTrainer`; `args` must be an `AdaptiveGRPOConfig`. The training set must be a map-style
    `datasets.Dataset` (the sampler indexes it); a row-index column `sgpo_row_index` is added to it.
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
        self._check_supported()
        num_params = self.accelerator.unwrap_model(self.model).num_parameters()
        self.compute_ledger = ComputeLedger(num_params=num_params, prior_flops=args.prior_flops)
        self._gathered_rewards: torch.Tensor | None = None

    def _check_supported(self) -> None:
        if self.use_vllm and self.args.vllm_mode == "server" and self._group_sizes_vary():
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

    # ---- sampler

    def group_sizes(self, dataset: Any = None) -> list[int]:
        """G per row of `dataset` (default: the training set), clipped to [min_group_size, max_group_size]."""
        dataset = self.train_dataset if dataset is None else dataset
        column = self.args.group_size_column
        if column is None or column not in dataset.column_names:
            if column is not None:
                logger.warning(
                    "column %r not in the training set: every row gets num_generations=%d rollouts",
                    column,
                    self.num_generations,
                )
            return [self.num_generations] * len(dataset)
        sizes = []
        for value in dataset[column]:
            size = (
                self.num_generations
                if value is None or (isinstance(value, float) and math.isnan(value))
                else value
            )
            sizes.append(max(self.args.min_group_size, min(self.args.max_group_size, int(size))))
        return sizes

    def _group_sizes_vary(self) -> bool:
        return len(set(self.group_sizes())) > 1

    def _get_train_sampler(self, dataset: Any = None) -> Sampler:
        # The dataloader may hand us a column-pruned copy; group sizes come from the full training set.
        sizes = self.group_sizes()
        if not self.shuffle_dataset and "curriculum_rank" in self.train_dataset.column_names:
            ranks = self.train_dataset["curriculum_rank"]
            if any(a > b for a, b in zip(ranks, ranks[1:], strict=False)):
                logger.warning(
                    "shuffle_dataset=False but the training set is not sorted by curriculum_rank: "
                    "rows are trained in dataset order"
                )
        sampler = AdaptiveGroupSampler(
            sizes,
            batch_size=self.args.generation_batch_size,
            repeat_count=self.num_iterations * self.args.steps_per_generation,
            shuffle=self.shuffle_dataset,
            seed=self.args.seed,
        )
        logger.info(
            "adaptive sampler: %d rows, %d rollouts per query epoch, %d generation batches per epoch",
            len(sizes),
            sum(sizes),
            sampler.num_batches,
        )
        return sampler

    # ---- advantages

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        # The parent returns the rewards of all processes (gathered); keep them to regroup by real group.
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._gathered_rewards = rewards_per_func
        return rewards_per_func

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        if not self.model.training:
            return output  # evaluation keeps TRL's fixed num_generations_eval groups
        device = self.accelerator.device
        rows = gather(torch.tensor([int(x[ROW_INDEX_COLUMN]) for x in inputs], device=device))
        group_ids, group_counts = group_ids_from_rows(rows)
        rewards_per_func = self._gathered_rewards
        unscorable = torch.isnan(rewards_per_func).all(dim=1)
        rewards = (rewards_per_func * self.reward_weights.to(device).unsqueeze(0)).nansum(dim=1)
        rewards[unscorable] = torch.nan
        advantages, zero_std = group_advantages(rewards, group_ids, self.scale_rewards)
        if self.args.query_weighting == "query":
            advantages = advantages * query_weights(group_ids, group_counts)
        process = self.accelerator.process_index
        output["advantages"] = advantages[process * len(inputs) : (process + 1) * len(inputs)]
        self._replace_logged_advantages(advantages)
        self._log_group_metrics(rows, group_ids, group_counts, zero_std)
        self._account_compute(output, num_groups=group_counts.numel(), num_rollouts=rows.numel())
        return output

    def _replace_logged_advantages(self, advantages: torch.Tensor) -> None:
        logged = self._logs["advantages"]
        for _ in range(min(len(logged), advantages.numel())):
            logged.pop()
        logged.extend(advantages.tolist())

    def _log_group_metrics(
        self, rows: torch.Tensor, group_ids: torch.Tensor, group_counts: torch.Tensor, zero_std: torch.Tensor
    ) -> None:
        metrics = self._metrics["train"]
        zero_rollouts = zero_std[group_ids].float().mean().item()
        # TRL computed this on its fixed-size view of the batch; replace it with the real groups' value.
        if metrics.get("frac_reward_zero_std"):
            metrics["frac_reward_zero_std"][-1] = zero_rollouts
        metrics["sgpo/frac_zero_adv_groups"].append(zero_std.float().mean().item())
        metrics["sgpo/frac_zero_adv_rollouts"].append(zero_rollouts)
        metrics["sgpo/groups_per_batch"].append(float(group_counts.numel()))
        metrics["sgpo/group_size_mean"].append(group_counts.float().mean().item())
        planned = torch.tensor(self._planned_sizes(), device=rows.device)
        group_rows = rows[torch.cumsum(group_counts, 0) - 1]
        padding = (group_counts - planned[group_rows]).clamp(min=0).sum().item()
        metrics["sgpo/pad_rollouts_frac"].append(padding / max(1, rows.numel()))

    def _planned_sizes(self) -> list[int]:
        if getattr(self, "_planned_sizes_cache", None) is None:
            self._planned_sizes_cache = self.group_sizes()
        return self._planned_sizes_cache

    # ---- compute accounting

    def _account_compute(self, output: dict[str, Any], num_groups: int, num_rollouts: int) -> None:
        device = self.accelerator.device
        local = torch.stack([output["prompt_mask"].sum(), output["completion_mask"].sum()]).to(device)
        prompt_tokens, completion_tokens = (int(v) for v in gather(local.unsqueeze(0)).sum(dim=0).tolist())
        record = self.compute_ledger.add_step(
            step=self.state.global_step + 1,
            rollouts=num_rollouts,
            groups=num_groups,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            update_passes=self.num_iterations,
            old_logps="old_per_token_logps" in output,
            ref_logps="ref_per_token_logps" in output,
        )
        totals = self.compute_ledger.totals()
        metrics = self._metrics["train"]
        metrics["compute/step_flops"].append(record.total_flops)
        metrics["compute/step_rollout_tokens"].append(float(record.tokens))
        # Running totals: one value, not averaged over the logging window (like TRL's num_tokens).
        metrics["compute/total_flops"] = [totals["total_flops"]]
        metrics["compute/total_rollouts"] = [totals["rollouts"]]
        metrics["compute/total_trained_tokens"] = [totals["tokens"]]

    def compute_summary(self) -> dict[str, Any]:
        """The JSON-ready compute summary: per-step records, totals and the settings that shaped them."""
        return self.compute_ledger.summary(
            group_size_column=self.args.group_size_column,
            query_weighting=self.args.query_weighting,
            shuffle_dataset=self.shuffle_dataset,
            generation_batch_size=self.args.generation_batch_size,
            num_processes=self.accelerator.num_processes,
        )

    def write_compute_summary(self, path: str | os.PathLike | None = None) -> str | None:
        """Write the summary (main process only) to `path` or `output_dir/compute_summary_file`."""
        if path is None:
            if self.args.compute_summary_file is None:
                return None
            path = os.path.join(self.args.output_dir, self.args.compute_summary_file)
        if self.accelerator.is_main_process:
            self.compute_ledger.write(
                path,
                **{
                    k: v
                    for k, v in self.compute_summary().items()
                    if k not in ("num_params", "formulas", "totals", "steps")
                },
            )
            logger.info("compute summary: %s", path)
        return str(path)

    def train(self, *args: Any, **kwargs: Any):
        result = super().train(*args, **kwargs)
        self.write_compute_summary()
        return result


def _with_row_index(dataset: Any) -> Any:
    from datasets import Dataset

    if dataset is None:
        return None
    if not isinstance(dataset, Dataset):
        raise TypeError(
            f"AdaptiveGRPOTrainer needs a map-style datasets.Dataset (the sampler indexes rows), "
            f"got {type(dataset).__name__}"
        )
    if ROW_INDEX_COLUMN in dataset.column_names:
        dataset = dataset.remove_columns(ROW_INDEX_COLUMN)
    return dataset.add_column(ROW_INDEX_COLUMN, list(range(len(dataset))))
