"""The sGPO policy as pure functions: success-rate estimators, group-size rules, difficulty buckets,
curriculum orders and the expected training signal of a choice of group sizes.

Everything here works on plain numbers and ids (no model, no IO), so it is cheap to test exactly and to
sweep. The paper's rule is `inverse`: G = ceil(1/p̂) clipped to [g_min, g_max], with unsolvable queries
(p̂ = 0) at g_max. Why: with binary rewards a group of size G carries signal (is not all-equal) with
probability 1 - p^G - (1-p)^G, and 1/p is the expected number of draws until the first success.

Group-size rules live in `GROUP_SIZE_RULES` (see `sgpo_curate.registry`); add one with

    from sgpo_curate.registry import GROUP_SIZE_RULES

    @GROUP_SIZE_RULES.register("my-rule")
    def my_rule(p_hat: float, g_min: int, g_max: int) -> int: ...

or pass a dotted path `package.module:object` wherever a rule name is accepted.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sgpo_curate.registry import GROUP_SIZE_RULES

# --------------------------------------------------------------------------- estimators

ESTIMATORS = ("raw", "beta")


def raw_pass_rate(num_correct: int, num_samples: int) -> float:
    """The paper's estimator p̂ = c / k; NaN when no sample could be verified.

    Example:
        >>> raw_pass_rate(1, 8)
        0.125
    """
    _check_counts(num_correct, num_samples)
    return num_correct / num_samples if num_samples else math.nan


def beta_posterior_mean(num_correct: int, num_samples: int, alpha: float = 1.0, beta: float = 1.0) -> float:
    """Posterior mean of p under a Beta(alpha, beta) prior: (c + alpha) / (k + alpha + beta).

    With the default uniform prior this is Laplace's rule of succession; it never returns 0 or 1, so it
    does not call a query impossible after k failures.

    Args:
        num_correct (`int`): successes c.
        num_samples (`int`): verified samples k.
        alpha (`float`): prior successes.
        beta (`float`): prior failures.

    Example:
        >>> beta_posterior_mean(0, 8)
        0.1
    """
    _check_counts(num_correct, num_samples)
    return (num_correct + alpha) / (num_samples + alpha + beta)


def wilson_interval(num_correct: int, num_samples: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for p (95% by default); (0, 1) when there are no samples.

    Reported next to p̂ to show how little k samples say: at k=8 and c=0 the 95% interval is
    [0, 0.32], so "unsolvable" means "rarely solved", not "never".

    Example:
        >>> [round(x, 3) for x in wilson_interval(0, 8)]
        [0.0, 0.324]
    """
    _check_counts(num_correct, num_samples)
    if num_samples == 0:
        return 0.0, 1.0
    n, p = num_samples, num_correct / num_samples
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def estimate_pass_rate(num_correct: int, num_samples: int, estimator: str = "raw") -> float:
    """p̂ by the named estimator (`raw` or `beta`)."""
    if estimator == "raw":
        return raw_pass_rate(num_correct, num_samples)
    if estimator == "beta":
        return beta_posterior_mean(num_correct, num_samples)
    raise ValueError(f"unknown estimator {estimator!r}; valid estimators: {', '.join(ESTIMATORS)}")


def _check_counts(num_correct: int, num_samples: int) -> None:
    if not 0 <= num_correct <= num_samples:
        raise ValueError(f"need 0 <= num_correct <= num_samples, got {num_correct} of {num_samples}")


# --------------------------------------------------------------------------- group-size rules

GroupSizeRule = Callable[[float, int, int], int]
"""A rule maps (p̂, g_min, g_max) to a group size. p̂ = 0 means never solved in profiling."""

# Tolerance so that p̂ = 1/3 computed in floating point still gives ceil(3.0000000000000004) = 3.
_EPS = 1e-9


def _ceil_inverse(p: float) -> int:
    return math.ceil(1.0 / p - _EPS)


def clip(value: int, g_min: int, g_max: int) -> int:
    """`value` clipped to [g_min, g_max]."""
    return max(g_min, min(g_max, value))


def inverse_rule(p_hat: float, g_min: int, g_max: int) -> int:
    """The paper's rule: G = ceil(1/p̂) clipped to [g_min, g_max]; p̂ = 0 gets g_max.

    Example:
        >>> [inverse_rule(p, 2, 16) for p in (1.0, 0.5, 0.3, 0.125, 0.01, 0.0)]
        [2, 2, 4, 8, 16, 16]
    """
    if p_hat <= 0:
        return g_max
    return clip(_ceil_inverse(p_hat), g_min, g_max)


def symmetric_rule(p_hat: float, g_min: int, g_max: int) -> int:
    """G = ceil(1 / min(p̂, 1 - p̂)) clipped: easy queries get large groups too.

    A G=2 group on a p̂=0.8 query is all-correct with probability 0.64 and carries no signal 0.68 of the
    time (two times in three); this rule sizes groups by the rarer outcome, failures on easy queries,
    successes on hard ones. p̂ = 0 or 1 gets g_max.

    Example:
        >>> [symmetric_rule(p, 2, 16) for p in (0.0, 0.125, 0.5, 0.8, 0.875, 1.0)]
        [16, 8, 2, 5, 8, 16]
    """
    rare = min(p_hat, 1.0 - p_hat)
    if rare <= 0:
        return g_max
    return clip(_ceil_inverse(rare), g_min, g_max)


@dataclass(frozen=True)
class UniformRule:
    """Plain GRPO: the same group size for every query, whatever p̂ and the clip bounds.

    Args:
        group_size (`int`): G for every query (the config's `uniform_group_size`).
    """

    group_size: int = 8

    def __post_init__(self) -> None:
        if self.group_size < 1:
            raise ValueError(f"UniformRule.group_size must be >= 1, got {self.group_size}")

    def __call__(self, p_hat: float, g_min: int, g_max: int) -> int:
        return self.group_size


GROUP_SIZE_RULES.register("inverse", inverse_rule)
GROUP_SIZE_RULES.register("symmetric", symmetric_rule)
GROUP_SIZE_RULES.register("uniform", UniformRule)


def get_group_size_rule(name: str, uniform_group_size: int = 8) -> GroupSizeRule:
    """The rule called `name` (or at a dotted path), ready to call as `rule(p_hat, g_min, g_max)`.

    Registered classes are instantiated; a class whose constructor takes `group_size` receives
    `uniform_group_size`.

    Args:
        name (`str`): a registered name (`inverse`, `symmetric`, `uniform`) or `package.module:object`.
        uniform_group_size (`int`): G for rules that use a fixed group size.

    Example:
        >>> get_group_size_rule("uniform", 4)(0.5, 2, 16)
        4
    """
    obj = GROUP_SIZE_RULES.get(name)
    if isinstance(obj, type):
        params = inspect.signature(obj).parameters
        obj = obj(group_size=uniform_group_size) if "group_size" in params else obj()
    if not callable(obj):
        raise TypeError(f"group-size rule {name!r} is not callable: {obj!r}")
    return obj


# --------------------------------------------------------------------------- difficulty buckets

DIFFICULTIES = ("trivial", "easy", "medium", "hard", "unsolved")
# Bucket edges in p̂, chosen to match the inverse rule's group sizes: easy queries need G <= 2,
# medium 3-5, hard 6 or more.
EASY_MIN = 0.5
MEDIUM_MIN = 0.2


def difficulty_bucket(num_correct: int, num_samples: int, p_hat: float | None = None) -> str:
    """Bucket of a profiled query: trivial (all correct), unsolved (none correct), else by p̂.

    Trivial and unsolved are decided by the counts, not by p̂, so estimators that never reach 0 or 1 still
    bucket the extremes. Edges: easy p̂ >= 0.5, medium 0.2 <= p̂ < 0.5, hard p̂ < 0.2.

    Example:
        >>> [difficulty_bucket(c, 8) for c in (8, 4, 2, 1, 0)]
        ['trivial', 'easy', 'medium', 'hard', 'unsolved']
    """
    _check_counts(num_correct, num_samples)
    if num_samples == 0:
        raise ValueError("cannot bucket a query without verified samples")
    if num_correct == num_samples:
        return "trivial"
    if num_correct == 0:
        return "unsolved"
    p = raw_pass_rate(num_correct, num_samples) if p_hat is None else p_hat
    if p >= EASY_MIN:
        return "easy"
    if p >= MEDIUM_MIN:
        return "medium"
    return "hard"


# Why a profile was dropped, in the order the filters run; every reject carries exactly one.
DROP_REASONS = (
    "duplicate_id",  # a second profile with an id already seen
    "unverifiable",  # no sample could be verified (e.g. the gold answer does not parse)
    "trivial",  # solved k of k times: every GRPO group would be all-correct
    "unsolvable_not_sampled",  # solved 0 of k times and not in the seeded keep fraction
    "below_band",  # partially solved, p̂ below min_pass_rate
    "above_band",  # partially solved, p̂ above max_pass_rate
)


# --------------------------------------------------------------------------- seeded choices, orders

ORDERS = ("easy-to-hard", "hard-first", "random")


def id_hash(query_id: str, salt: str = "") -> str:
    """A stable hex digest of an id (plus an optional salt such as a seed); used for tie-breaks and
    seeded choices so results never depend on input order or on Python's hash randomization."""
    return hashlib.sha256(f"{salt}\x00{query_id}".encode()).hexdigest()


def seeded_subset(ids: Sequence[str], fraction: float, seed: int) -> set[str]:
    """Keep `round(fraction * len(ids))` of `ids`, chosen by a seeded hash of each id.

    The choice depends only on the set of ids and the seed: reordering the input gives the same subset,
    and a larger fraction keeps a superset of what a smaller one keeps.

    Args:
        ids (`Sequence[str]`): candidate ids (unique).
        fraction (`float`): share to keep, in [0, 1].
        seed (`int`): selects which ones.

    Example:
        >>> len(seeded_subset([f"q{i}" for i in range(8)], 0.25, seed=0))
        2
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    n_keep = math.floor(fraction * len(ids) + 0.5)
    ranked = sorted(ids, key=lambda i: id_hash(i, f"keep-{seed}"))
    return set(ranked[:n_keep])


def curriculum_order(
    ids: Sequence[str], pass_rates: Sequence[float], order: str = "easy-to-hard", seed: int = 0
) -> list[int]:
    """Indices of `ids` in training order.

    Args:
        ids (`Sequence[str]`): query ids.
        pass_rates (`Sequence[float]`): p̂ per query.
        order (`str`): `easy-to-hard` (p̂ descending, ties broken by a hash of the id), `hard-first`
            (p̂ ascending, same tie-break) or `random` (a seeded permutation).
        seed (`int`): seed of the `random` order.

    Example:
        >>> curriculum_order(["a", "b", "c"], [0.25, 0.75, 0.5])
        [1, 2, 0]
    """
    if len(ids) != len(pass_rates):
        raise ValueError(f"{len(ids)} ids but {len(pass_rates)} pass rates")
    indices = list(range(len(ids)))
    if order == "easy-to-hard":
        return sorted(indices, key=lambda i: (-pass_rates[i], id_hash(ids[i])))
    if order == "hard-first":
        return sorted(indices, key=lambda i: (pass_rates[i], id_hash(ids[i])))
    if order == "random":
        canonical = sorted(indices, key=lambda i: id_hash(ids[i]))
        random.Random(seed).shuffle(canonical)
        return canonical
    raise ValueError(f"unknown order {order!r}; valid orders: {', '.join(ORDERS)}")


# --------------------------------------------------------------------------- expected signal


def informative_probability(p: float, group_size: int) -> float:
    """Probability that a group of `group_size` binary rewards is not all equal: 1 - p^G - (1-p)^G.

    Example:
        >>> round(informative_probability(0.8, 2), 4)
        0.32
    """
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    return max(0.0, 1.0 - p**group_size - (1.0 - p) ** group_size)


def posterior_informative_probability(
    num_correct: int, num_samples: int, group_size: int, alpha: float = 1.0, beta: float = 1.0
) -> float:
    """E[1 - p^G - (1-p)^G] with p ~ Beta(alpha + c, beta + k - c): the informative-group probability
    averaged over what k samples leave unknown about p (non-zero for a query solved 0 of k times).

    Uses E[p^G] = prod_{i<G} (a + i) / (a + b + i) for p ~ Beta(a, b).
    """
    _check_counts(num_correct, num_samples)
    a, b = alpha + num_correct, beta + num_samples - num_correct
    moment_p = moment_q = 1.0
    for i in range(group_size):
        moment_p *= (a + i) / (a + b + i)
        moment_q *= (b + i) / (a + b + i)
    return max(0.0, 1.0 - moment_p - moment_q)


@dataclass(frozen=True)
class ExpectedSignal:
    """What a choice of group sizes should buy before any training, per epoch over the kept queries.

    Args:
        num_queries (`int`): kept queries.
        rollouts (`int`): sum of group sizes (rollouts per epoch) under the chosen rule.
        informative_groups (`float`): expected informative groups per epoch under the chosen rule.
        uniform_group_size (`int`): the plain-GRPO baseline G.
        uniform_rollouts (`int`): rollouts per epoch with the baseline G on the same kept queries.
        uniform_informative_groups (`float`): expected informative groups with the baseline G.
        unfiltered_queries (`int`): all profiled queries (plain GRPO trains on all of them).
        unfiltered_rollouts (`int`): rollouts per epoch of plain GRPO on the unfiltered pool.
        unfiltered_informative_groups (`float`): its expected informative groups.
    """

    num_queries: int
    rollouts: int
    informative_groups: float
    uniform_group_size: int
    uniform_rollouts: int
    uniform_informative_groups: float
    unfiltered_queries: int
    unfiltered_rollouts: int
    unfiltered_informative_groups: float

    @property
    def informative_fraction(self) -> float:
        """Expected share of groups with signal under the chosen rule."""
        return self.informative_groups / self.num_queries if self.num_queries else math.nan

    @property
    def uniform_informative_fraction(self) -> float:
        return self.uniform_informative_groups / self.num_queries if self.num_queries else math.nan

    @property
    def rollouts_vs_uniform(self) -> float:
        """Rollouts under the rule divided by uniform-G rollouts on the kept queries."""
        return self.rollouts / self.uniform_rollouts if self.uniform_rollouts else math.nan

    @property
    def rollouts_vs_unfiltered(self) -> float:
        """Rollouts under the rule divided by plain GRPO's on the whole profiled pool."""
        return self.rollouts / self.unfiltered_rollouts if self.unfiltered_rollouts else math.nan

    def to_dict(self) -> dict[str, float | int]:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name in (
            "informative_fraction",
            "uniform_informative_fraction",
            "rollouts_vs_uniform",
            "rollouts_vs_unfiltered",
        ):
            out[name] = getattr(self, name)
        return out


def expected_signal(
    pass_rates: Sequence[float],
    group_sizes: Sequence[int],
    uniform_group_size: int,
    unfiltered_pass_rates: Sequence[float] | None = None,
) -> ExpectedSignal:
    """Expected rollouts and informative groups per epoch, rule vs uniform G (plug-in p = p̂).

    Args:
        pass_rates (`Sequence[float]`): p̂ of the kept queries.
        group_sizes (`Sequence[int]`): the rule's G for each of them.
        uniform_group_size (`int`): the plain-GRPO baseline G.
        unfiltered_pass_rates (`Sequence[float]`, *optional*): p̂ of every profiled query (plain GRPO
            trains on all); defaults to `pass_rates`.

    Example:
        >>> s = expected_signal([0.5, 0.25], [2, 4], uniform_group_size=8)
        >>> s.rollouts, s.uniform_rollouts
        (6, 16)
    """
    if len(pass_rates) != len(group_sizes):
        raise ValueError(f"{len(pass_rates)} pass rates but {len(group_sizes)} group sizes")
    pool = list(pass_rates if unfiltered_pass_rates is None else unfiltered_pass_rates)
    return ExpectedSignal(
        num_queries=len(pass_rates),
        rollouts=int(sum(group_sizes)),
        informative_groups=sum(
            informative_probability(p, g) for p, g in zip(pass_rates, group_sizes, strict=True)
        ),
        uniform_group_size=uniform_group_size,
        uniform_rollouts=uniform_group_size * len(pass_rates),
        uniform_informative_groups=sum(informative_probability(p, uniform_group_size) for p in pass_rates),
        unfiltered_queries=len(pool),
        unfiltered_rollouts=uniform_group_size * len(pool),
        unfiltered_informative_groups=sum(informative_probability(p, uniform_group_size) for p in pool),
    )
