"""Online rollout allocation: which queries get rollouts in each generation batch, and how many.

What: a `RolloutPlanner` fills every generation batch with exactly `budget` rollouts, as a list of whole
groups `(row, rollouts)`. It walks the training rows in an order (the dataset's order, which is the
curriculum of a curated set, or seeded shuffles, or a draw weighted by expected signal), sizes each group
(a fixed column, a per-query rule on the current p̂, or a knapsack split of the batch's budget), and gives
left-over slots to the groups where one more rollout adds the most expected signal. With `online=True` it
keeps a Beta posterior of each query's success rate, seeded from the profile's counts and updated from the
query's own training rollouts with a forgetting factor, parks queries whose expected signal is gone
(solved or hopeless) and re-probes parked queries with small groups at a set rate, so a query that becomes
learnable comes back.

Why here and not in a torch `Sampler`: accelerate's dataloader asks its sampler for one or more batches
before they are trained on, so a sampler would decide with stale rewards. The trainer asks the planner
right before it generates, after the previous batch's rewards were observed.

Pure: no torch, no model, no IO. Decisions depend only on the planner's state, its seed and the batch
index, and the state changes only through `observe` with rewards every process has gathered, so all
processes of a distributed run take identical decisions. `state_dict()` is plain JSON for checkpoints.

Example:
    >>> planner = RolloutPlanner(PlannerSettings(budget=8, default_group_size=4, g_max=8), num_rows=3)
    >>> [(g.row, g.rollouts) for g in planner.next_batch()]
    [(0, 4), (1, 4)]
    >>> planner.observe(planner.last_plan, [[1, 1, 1, 1], [0, 1, 0, 0]])
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sgpo_curate.policy import (
    allocate_group_sizes,
    get_group_size_rule,
    group_value,
    is_budgeted,
    reward_variance,
)

SELECTIONS = ("order", "signal")
SCHEDULES = ("epochs", "one-pass")
# The posterior's floor: a flat Beta(1, 1). Forgetting pulls the counts back towards it, never below.
PRIOR_A = PRIOR_B = 1.0


@dataclass(frozen=True)
class PlannerSettings:
    """How a `RolloutPlanner` fills generation batches (the trainer builds it from `AdaptiveGRPOConfig`).

    Args:
        budget (`int`): rollouts per generation batch (all processes together).
        default_group_size (`int`): G of rows without a fixed size when no rule is set (plain GRPO's G).
        g_min (`int`), g_max (`int`): bounds of every planned group size; g_max None means `budget`.
        rule (`str`, *optional*): group-size rule deciding G from the current p̂ (a name in
            `GROUP_SIZE_RULES` or a dotted path); None: the fixed sizes given to the planner, else
            `default_group_size`.
        rule_options (`dict`): constructor options of the rule (e.g. `{"probability": 0.75}` for coverage).
        queries_per_batch (`int`, *optional*): queries sharing a batch's budget under a budgeted rule
            (knapsack); default `budget // default_group_size`.
        selection (`str`): `order` (walk the rows in order) or `signal` (draw without replacement with
            probability proportional to the expected reward variance E[p(1-p)] under the posterior).
        schedule (`str`): `epochs` (the order restarts after the last row, reshuffled when `shuffle`) or
            `one-pass` (the walk is spread over the whole run: batch at progress t starts at row floor(t·N),
            so a curriculum goes once from easy to hard whatever the run's length).
        shuffle (`bool`): shuffle the order per epoch (seeded); False keeps the rows' order.
        online (`bool`): update each query's posterior from its training rollouts; park and re-probe.
        forgetting (`float`): each new observation multiplies a query's past evidence by this (1 = keep all).
        park_below (`float`): park a query whose expected reward variance E[p(1-p)] falls below this
            (0 = never park). Under a flat prior, 0.05 is about 18 equal rewards in a row.
        reprobe_fraction (`float`): share of each batch's rollouts spent re-probing parked queries (least
            recently seen first, g_min rollouts each).
        seed (`int`): seed of shuffles and weighted draws.
    """

    budget: int
    default_group_size: int = 8
    g_min: int = 2
    g_max: int | None = None
    rule: str | None = None
    rule_options: dict[str, float] = field(default_factory=dict)
    queries_per_batch: int | None = None
    selection: str = "order"
    schedule: str = "epochs"
    shuffle: bool = False
    online: bool = False
    forgetting: float = 1.0
    park_below: float = 0.0
    reprobe_fraction: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.g_max is None:
            object.__setattr__(self, "g_max", self.budget)
        if not 1 <= self.g_min <= self.g_max <= self.budget:
            raise ValueError(
                f"need 1 <= g_min ({self.g_min}) <= g_max ({self.g_max}) <= budget ({self.budget}): "
                "a group must fit in one generation batch"
            )
        if not self.g_min <= self.default_group_size <= self.budget:
            raise ValueError(
                f"default_group_size {self.default_group_size} must be in [g_min, budget] = "
                f"[{self.g_min}, {self.budget}]"
            )
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0 < self.forgetting <= 1:
            raise ValueError(f"forgetting must be in (0, 1], got {self.forgetting}")
        if not 0 <= self.park_below < 0.25:
            raise ValueError(f"park_below must be in [0, 0.25) (E[p(1-p)] <= 1/4), got {self.park_below}")
        if not 0 <= self.reprobe_fraction < 1:
            raise ValueError(f"reprobe_fraction must be in [0, 1), got {self.reprobe_fraction}")
        if self.budgeted:
            queries = self.num_budgeted_queries
            if not queries * self.g_min <= self.budget <= queries * self.g_max:
                raise ValueError(
                    f"a budgeted rule splits {self.budget} rollouts over queries_per_batch={queries} queries: "
                    f"need queries_per_batch * g_min <= budget <= queries_per_batch * g_max "
                    f"({queries * self.g_min} <= {self.budget} <= {queries * self.g_max})"
                )

    @property
    def budgeted(self) -> bool:
        return self.rule is not None and is_budgeted(self.make_rule())

    @property
    def num_budgeted_queries(self) -> int:
        return self.queries_per_batch or max(1, self.budget // self.default_group_size)

    def make_rule(self):
        return get_group_size_rule(self.rule, self.default_group_size, **self.rule_options)


@dataclass(frozen=True, slots=True)
class PlannedGroup:
    """One group of a generation batch: `group_size` planned rollouts of `row`, plus `padding` extra ones.

    `probe` marks a parked query re-probed with a small group.
    """

    row: int
    group_size: int
    padding: int = 0
    probe: bool = False

    @property
    def rollouts(self) -> int:
        return self.group_size + self.padding


def pad_groups(
    groups: list[PlannedGroup], free: int, posteriors: Sequence[tuple[float, float]], by_index: bool = False
) -> list[PlannedGroup]:
    """Give `free` left-over slots, one at a time, to the group whose expected signal grows most by one more
    rollout (`group_value(G+1) - group_value(G)` under that query's Beta posterior); ties go to the earlier
    group. `posteriors` is indexed by row, or by position in `groups` when `by_index`.

    Example:
        >>> groups = [PlannedGroup(0, 2), PlannedGroup(1, 4)]
        >>> [g.padding for g in pad_groups(groups, 2, [(1.0, 30.0), (5.0, 5.0)])]
        [0, 2]
    """
    if free <= 0 or not groups:
        return groups
    post = [posteriors[i] if by_index else posteriors[g.row] for i, g in enumerate(groups)]
    sizes = [g.rollouts for g in groups]
    gains = [group_value(*p, n + 1) - group_value(*p, n) for p, n in zip(post, sizes, strict=True)]
    for _ in range(free):
        best = max(range(len(groups)), key=lambda i: (gains[i], -i))
        sizes[best] += 1
        gains[best] = group_value(*post[best], sizes[best] + 1) - group_value(*post[best], sizes[best])
    return [
        PlannedGroup(g.row, g.group_size, size - g.group_size, g.probe)
        for g, size in zip(groups, sizes, strict=True)
    ]


def _stable_seed(*parts: object) -> int:
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass
class _State:
    alpha: list[float]
    beta: list[float]
    last_seen: list[int]
    batches: int = 0
    position: int = 0  # position in the endless row stream (epoch * N + offset)


class RolloutPlanner:
    """Plans every generation batch; see the module docstring.

    Args:
        settings (`PlannerSettings`): how to plan.
        num_rows (`int`): rows of the training set.
        fixed_sizes (`Sequence[int]`, *optional*): G per row (a curated `group_size` column) used when no rule
            is set; clipped to [g_min, g_max].
        prior_counts (`Sequence[tuple[int, int]]`, *optional*): (num_correct, num_samples) per row from the
            profile: the posterior starts at Beta(1 + c, 1 + k - c). None: a flat prior for every row.
    """

    def __init__(
        self,
        settings: PlannerSettings,
        num_rows: int,
        fixed_sizes: Sequence[int] | None = None,
        prior_counts: Sequence[tuple[int, int]] | None = None,
    ):
        if num_rows < 1:
            raise ValueError("the planner needs at least one training row")
        if fixed_sizes is not None and len(fixed_sizes) != num_rows:
            raise ValueError(f"{len(fixed_sizes)} group sizes for {num_rows} rows")
        if prior_counts is not None and len(prior_counts) != num_rows:
            raise ValueError(f"{len(prior_counts)} profile counts for {num_rows} rows")
        self.settings = settings
        self.num_rows = num_rows
        self.rule = settings.make_rule() if settings.rule is not None else None
        self.fixed_sizes = (
            None
            if fixed_sizes is None
            else [min(settings.g_max, max(settings.g_min, int(g))) for g in fixed_sizes]
        )
        counts = prior_counts or [(0, 0)] * num_rows
        for row, (correct, samples) in enumerate(counts):
            if not 0 <= correct <= samples:
                raise ValueError(
                    f"row {row}: profile counts need 0 <= num_correct <= num_samples, got {correct}/{samples}"
                )
        self.state = _State(
            alpha=[PRIOR_A + c for c, _ in counts],
            beta=[PRIOR_B + k - c for c, k in counts],
            last_seen=[-1] * num_rows,
        )
        self.last_plan: list[PlannedGroup] = []
        self.trace: list[dict[str, Any]] = []
        self._order_cache: tuple[int, list[int]] | None = None

    # ---- posteriors

    def posterior(self, row: int) -> tuple[float, float]:
        return self.state.alpha[row], self.state.beta[row]

    def pass_rate(self, row: int) -> float:
        """Posterior mean of the row's success rate."""
        a, b = self.posterior(row)
        return a / (a + b)

    def is_parked(self, row: int) -> bool:
        """True when the query's expected reward variance fell below `park_below` (online planning only)."""
        s = self.settings
        return s.online and s.park_below > 0 and reward_variance(*self.posterior(row)) < s.park_below

    def observe(
        self, plan: Sequence[PlannedGroup], rewards: Sequence[Sequence[float]], **context: Any
    ) -> None:
        """Record each planned group's rewards (in [0, 1]; NaN = unscorable, skipped) and, when online,
        update its query's posterior: evidence so far times `forgetting`, plus successes and failures.
        `context` (e.g. the optimizer step) is added to every trace record."""
        if len(plan) != len(rewards):
            raise ValueError(f"{len(rewards)} reward groups for a plan of {len(plan)} groups")
        s, state = self.settings, self.state
        for group, values in zip(plan, rewards, strict=True):
            scored = [min(1.0, max(0.0, float(r))) for r in values if not math.isnan(float(r))]
            successes = sum(scored)
            failures = len(scored) - successes
            row = group.row
            if s.online:
                state.alpha[row] = PRIOR_A + s.forgetting * (state.alpha[row] - PRIOR_A) + successes
                state.beta[row] = PRIOR_B + s.forgetting * (state.beta[row] - PRIOR_B) + failures
            state.last_seen[row] = state.batches - 1
            self.trace.append(
                {
                    "batch": state.batches - 1,
                    "row": row,
                    "group_size": group.group_size,
                    "rollouts": group.rollouts,
                    "probe": group.probe,
                    "successes": successes,
                    "failures": failures,
                    "alpha": state.alpha[row],
                    "beta": state.beta[row],
                    "pass_rate": self.pass_rate(row),
                    "parked": self.is_parked(row),
                    **context,
                }
            )

    # ---- planning

    def next_batch(self, progress: float | None = None) -> list[PlannedGroup]:
        """The next generation batch: whole groups whose rollouts sum to exactly `budget`.

        Args:
            progress (`float`, *optional*): share of the run done, in [0, 1]; required by `one-pass`.
        """
        s = self.settings
        if s.schedule == "one-pass":
            if progress is None:
                raise ValueError("the one-pass schedule needs the run's progress")
            self.state.position = min(self.num_rows - 1, int(max(0.0, min(1.0, progress)) * self.num_rows))
        rng = random.Random(_stable_seed(s.seed, "batch", self.state.batches))
        groups = self._probes()
        free = s.budget - sum(g.rollouts for g in groups)
        taken = {g.row for g in groups}
        if self.rule is not None and is_budgeted(self.rule):
            groups += self._budgeted(self._upcoming(s.num_budgeted_queries, taken, rng), free)
        else:
            groups += self._sized(self._upcoming(free // s.g_min, taken, rng), free)
        if not groups:  # every row parked and nothing to probe: train the least recently seen anyway
            groups = [PlannedGroup(self._least_recent(), min(s.budget, s.default_group_size), probe=True)]
        free = s.budget - sum(g.rollouts for g in groups)
        plan = pad_groups(groups, free, [self.posterior(g.row) for g in groups], by_index=True)
        self.state.batches += 1
        self.last_plan = plan
        return plan

    def _probes(self) -> list[PlannedGroup]:
        s = self.settings
        slots = int(s.reprobe_fraction * s.budget) // s.g_min
        if not s.online or s.park_below <= 0 or slots == 0:
            return []
        parked = sorted((r for r in range(self.num_rows) if self.is_parked(r)), key=self._recency)
        return [PlannedGroup(row, s.g_min, probe=True) for row in parked[:slots]]

    def _recency(self, row: int) -> tuple[int, int]:
        return self.state.last_seen[row], row

    def _least_recent(self) -> int:
        return min(range(self.num_rows), key=self._recency)

    def _upcoming(self, limit: int, taken: set[int], rng: random.Random) -> list[tuple[int, int]]:
        """Up to `limit` candidate rows, each with the stream position just after it; parked rows and rows
        already in the batch are skipped. `order`: the next rows of the stream; `signal`: a weighted draw."""
        if self.settings.selection == "signal":
            active = [r for r in range(self.num_rows) if r not in taken and not self.is_parked(r)]
            # Efraimidis-Spirakis: the largest u^(1/w) are a weighted draw without replacement.
            keys = {
                r: rng.random() ** (1.0 / max(1e-12, reward_variance(*self.posterior(r)))) for r in active
            }
            return [(r, self.state.position) for r in sorted(active, key=lambda r: -keys[r])[:limit]]
        found = []
        for position in self._scan():
            if len(found) >= limit:
                break
            row = self._row_at(position)
            if row not in taken and not self.is_parked(row):
                found.append((row, position + 1))
        return found

    def _scan(self):
        """Stream positions to look at, once each: forward from the current position; under `one-pass` the
        walk never wraps to the easy end, it takes the nearest rows before the start instead."""
        start = self.state.position
        if self.settings.schedule == "one-pass":
            yield from range(start, self.num_rows)
            yield from range(start - 1, -1, -1)
        else:
            yield from range(start, start + self.num_rows)

    def _row_at(self, position: int) -> int:
        epoch, offset = divmod(position, self.num_rows)
        if not self.settings.shuffle:
            return offset
        if self._order_cache is None or self._order_cache[0] != epoch:
            order = list(range(self.num_rows))
            random.Random(_stable_seed(self.settings.seed, "epoch", epoch)).shuffle(order)
            self._order_cache = (epoch, order)
        return self._order_cache[1][offset]

    def _size_of(self, row: int) -> int:
        s = self.settings
        if self.rule is not None:
            return allocate_group_sizes(self.rule, [self.posterior(row)], s.g_min, s.g_max)[0]
        if self.fixed_sizes is not None:
            return self.fixed_sizes[row]
        return s.default_group_size

    def _sized(self, candidates: list[tuple[int, int]], free: int) -> list[PlannedGroup]:
        """Whole groups in candidate order while they fit; a group that does not fit starts the next batch."""
        groups: list[PlannedGroup] = []
        for row, position_after in candidates:
            size = self._size_of(row)
            if size > free:
                break
            groups.append(PlannedGroup(row, size))
            self.state.position = position_after
            free -= size
            if free == 0:
                break
        return groups

    def _budgeted(self, candidates: list[tuple[int, int]], free: int) -> list[PlannedGroup]:
        """The next queries share the free budget by knapsack (at least g_min each)."""
        s = self.settings
        chosen = candidates[: free // s.g_min]
        if not chosen:
            return []
        self.state.position = chosen[-1][1]
        rows = [row for row, _ in chosen]
        sizes = allocate_group_sizes(
            self.rule, [self.posterior(r) for r in rows], s.g_min, s.g_max, budget=free
        )
        return [PlannedGroup(row, size) for row, size in zip(rows, sizes, strict=True)]

    # ---- checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Plain-JSON state (posteriors, position, batch count) for a checkpoint."""
        return {"settings": asdict(self.settings), "state": asdict(self.state)}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        if saved.get("settings") != asdict(self.settings):
            raise ValueError(
                "the checkpoint's planner settings differ from this run's: resume with the same config"
            )
        self.state = _State(**saved["state"])
        self._order_cache = None
