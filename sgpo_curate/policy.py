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
import heapq
import inspect
import math
import random
from collections import Counter
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


@dataclass(frozen=True)
class CoverageRule:
    """The smallest G whose group is non-degenerate (not all equal) with probability at least `probability`.

    Symmetric in p and 1 - p: G is the least N with 1 - p^N - (1-p)^N >= probability, clipped to
    [g_min, g_max]; p̂ = 0 or 1 (never non-degenerate) and any p̂ that needs more than g_max get g_max.
    Knapsack RL (arXiv 2509.25849) calls this the coverage cost, N ≈ log(1 - α) / log(max(p, 1 - p)).

    Args:
        probability (`float`): α, the wanted chance of a group with signal, in (0, 1).

    Example:
        >>> [CoverageRule(0.75)(p, 2, 16) for p in (0.5, 0.25, 0.9, 0.0)]
        [3, 5, 14, 16]
    """

    probability: float = 0.75

    def __post_init__(self) -> None:
        if not 0 < self.probability < 1:
            raise ValueError(f"CoverageRule.probability must be in (0, 1), got {self.probability}")

    def __call__(self, p_hat: float, g_min: int, g_max: int) -> int:
        if not 0 < p_hat < 1:
            return g_max
        for size in range(max(1, g_min), g_max + 1):
            if informative_probability(p_hat, size) >= self.probability - _EPS:
                return size
        return g_max


@dataclass(frozen=True)
class KnapsackRule:
    """A budgeted rule: split a rollout budget across queries to maximise the expected signal.

    Value of a group of G rollouts for a query whose success rate p has posterior Beta(a, b):

        V(G) = E[(1 - p^G - (1-p)^G) · p(1-p)]

    the probability that the group is informative (not all equal: otherwise its advantage is zero) times the
    reward variance p(1-p), which sets how much an informative group's advantages can move the policy (the
    policy gradient of a binary reward is Cov(r, ∇log π), proportional to p(1-p)). It is the value of
    Knapsack RL (arXiv 2509.25849) without its extra (1-p) factor, which favours hard prompts on purpose; here
    the curriculum or the query selection decides which queries come. V is computed exactly from Beta moments
    and is concave in G (each extra rollout adds p^G(1-p)·p(1-p) + (1-p)^G·p·p(1-p), which shrinks with G), so
    handing out rollouts one at a time to the largest marginal value is the optimal split (no dynamic
    programming needed). Every query gets at least g_min rollouts and at most g_max.
    """

    budgeted = True

    def allocate(
        self, posteriors: Sequence[tuple[float, float]], budget: int, g_min: int, g_max: int
    ) -> list[int]:
        return knapsack_group_sizes(posteriors, budget, g_min, g_max)

    def __call__(self, p_hat: float, g_min: int, g_max: int) -> int:
        raise TypeError("the knapsack rule splits a budget across queries: call allocate_group_sizes(...)")


GROUP_SIZE_RULES.register("inverse", inverse_rule)
GROUP_SIZE_RULES.register("symmetric", symmetric_rule)
GROUP_SIZE_RULES.register("uniform", UniformRule)
GROUP_SIZE_RULES.register("coverage", CoverageRule)
GROUP_SIZE_RULES.register("knapsack", KnapsackRule)


def is_budgeted(rule: object) -> bool:
    """True for rules that split a budget across queries (they have `allocate`), not one query at a time."""
    return bool(getattr(rule, "budgeted", False)) and callable(getattr(rule, "allocate", None))


def get_group_size_rule(name: str, uniform_group_size: int = 8, **options: float) -> GroupSizeRule:
    """The rule called `name` (or at a dotted path), ready to call as `rule(p_hat, g_min, g_max)`.

    Registered classes are instantiated; a class whose constructor takes `group_size` receives
    `uniform_group_size`, and one that takes a name in `options` (e.g. `probability` for `coverage`) receives
    it. A budgeted rule (`knapsack`) is returned as an object with `allocate(...)`; see `allocate_group_sizes`.

    Args:
        name (`str`): a registered name (`inverse`, `symmetric`, `uniform`, `coverage`, `knapsack`) or
            `package.module:object`.
        uniform_group_size (`int`): G for rules that use a fixed group size.
        options (`float`): constructor arguments of rules that take them (unused ones are ignored).

    Example:
        >>> get_group_size_rule("uniform", 4)(0.5, 2, 16)
        4
        >>> get_group_size_rule("coverage", probability=0.5)(0.5, 2, 16)
        2
    """
    obj = GROUP_SIZE_RULES.get(name)
    if isinstance(obj, type):
        params = inspect.signature(obj).parameters
        kwargs = {key: value for key, value in options.items() if key in params}
        if "group_size" in params:
            kwargs["group_size"] = uniform_group_size
        obj = obj(**kwargs)
    if not callable(obj) and not is_budgeted(obj):
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

    Uses E[p^G] = prod_{i<G} (a + i) / (a + b + i) for p ~ Beta(a, b) (`zero_advantage_probability`).
    """
    _check_counts(num_correct, num_samples)
    a, b = alpha + num_correct, beta + num_samples - num_correct
    return max(0.0, 1.0 - zero_advantage_probability(a, b, group_size))


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


# --------------------------------------------------------------------------- Beta posteriors and budgets


def beta_moment(a: float, b: float, m: int, n: int) -> float:
    """E[p^m (1-p)^n] for p ~ Beta(a, b), exactly: prod_{i<m} (a+i)/(a+b+i) · prod_{j<n} (b+j)/(a+b+m+j).

    Example:
        >>> beta_moment(1, 1, 1, 1)  # E[p(1-p)] under a flat prior = 1/6
        0.16666666666666666
    """
    if a <= 0 or b <= 0:
        raise ValueError(f"Beta parameters must be > 0, got a={a}, b={b}")
    value = 1.0
    for i in range(m):
        value *= (a + i) / (a + b + i)
    for j in range(n):
        value *= (b + j) / (a + b + m + j)
    return value


def log_beta_moment(a: float, b: float, m: int, n: int) -> float:
    """log E[p^m (1-p)^n] for p ~ Beta(a, b): log B(a + m, b + n) - log B(a, b), for counts too large for
    `beta_moment`'s products (the likelihood of c successes in k samples, without the binomial factor)."""
    if a <= 0 or b <= 0:
        raise ValueError(f"Beta parameters must be > 0, got a={a}, b={b}")
    return _log_beta(a + m, b + n) - _log_beta(a, b)


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def reward_variance(a: float, b: float) -> float:
    """E[p(1-p)] under Beta(a, b): the expected variance of a binary reward, the signal one rollout can carry."""
    return beta_moment(a, b, 1, 1)


def zero_advantage_probability(a: float, b: float, group_size: int) -> float:
    """E[p^G + (1-p)^G] under Beta(a, b): the chance that a group of G binary rewards is all equal, so its
    GRPO advantages are all zero and its rollouts carry no gradient.

    Example:
        >>> round(zero_advantage_probability(1, 1, 2), 4)  # flat prior: 2 E[p^2] = 2/3
        0.6667
    """
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    return beta_moment(a, b, group_size, 0) + beta_moment(a, b, 0, group_size)


def group_signal(a: float, b: float, group_size: int) -> float:
    """Expected gradient signal of one group of G rollouts with a mean baseline: (G - 1)·E[p(1-p)] under
    Beta(a, b), so (1 - 1/G)·E[p(1-p)] per rollout.

    With binary rewards the group's policy gradient is (G - 1)/G · sum over rollouts of (r - p)∇log π in
    expectation, i.e. (G - 1)·∇p, and ∇p scales with the reward variance p(1-p). It prices what a rollout
    buys: G = 2 keeps half of it, and which queries get rollouts (through p(1-p)) matters most.

    Example:
        >>> round(group_signal(1, 1, 8) / 8, 4)  # flat prior: (7/8) · 1/6
        0.1458
    """
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    return (group_size - 1) * reward_variance(a, b)


def group_value(a: float, b: float, group_size: int) -> float:
    """V(G) = E[(1 - p^G - (1-p)^G) · p(1-p)] under Beta(a, b) (see `KnapsackRule`); 0 for G < 2.

    Example:
        >>> round(group_value(1, 1, 2), 4)  # flat prior: E[2p(1-p) · p(1-p)] = 2 E[p^2 (1-p)^2] = 1/15
        0.0667
    """
    if group_size < 2:
        return 0.0
    return max(
        0.0,
        beta_moment(a, b, 1, 1) - beta_moment(a, b, group_size + 1, 1) - beta_moment(a, b, 1, group_size + 1),
    )


def knapsack_group_sizes(
    posteriors: Sequence[tuple[float, float]], budget: int, g_min: int, g_max: int
) -> list[int]:
    """Split `budget` rollouts across queries (Beta posteriors `(a, b)`) to maximise the sum of `group_value`.

    Every query gets g_min first; each further rollout goes to the query whose value grows most by it
    (ties: the earlier query), never past g_max. Optimal because every V is concave in G. If every query
    reaches g_max the rest of the budget stays unspent (the caller decides what to do with it).

    Args:
        posteriors (`Sequence[tuple[float, float]]`): (a, b) per query.
        budget (`int`): rollouts to hand out; at least g_min per query.
        g_min (`int`), g_max (`int`): bounds of each group size.

    Example:
        >>> knapsack_group_sizes([(5, 5), (1, 30), (30, 1)], budget=12, g_min=2, g_max=8)
        [8, 2, 2]
    """
    if not 1 <= g_min <= g_max:
        raise ValueError(f"need 1 <= g_min <= g_max, got {g_min}, {g_max}")
    if budget < g_min * len(posteriors):
        raise ValueError(
            f"a budget of {budget} rollouts cannot give {len(posteriors)} queries {g_min} rollouts each"
        )
    sizes = [g_min] * len(posteriors)
    heap = []
    for index, (a, b) in enumerate(posteriors):
        if g_min < g_max:
            gain = group_value(a, b, g_min + 1) - group_value(a, b, g_min)
            heapq.heappush(heap, (-gain, index))
    for _ in range(budget - g_min * len(posteriors)):
        if not heap:
            break
        _, index = heapq.heappop(heap)
        sizes[index] += 1
        if sizes[index] < g_max:
            a, b = posteriors[index]
            gain = group_value(a, b, sizes[index] + 1) - group_value(a, b, sizes[index])
            heapq.heappush(heap, (-gain, index))
    return sizes


def allocate_group_sizes(
    rule: GroupSizeRule,
    posteriors: Sequence[tuple[float, float]],
    g_min: int,
    g_max: int,
    budget: int | None = None,
    pass_rates: Sequence[float] | None = None,
) -> list[int]:
    """Group sizes for a set of queries under any rule: per-query rules see each p̂, budgeted ones the budget.

    Args:
        rule (`GroupSizeRule`): from `get_group_size_rule`.
        posteriors (`Sequence[tuple[float, float]]`): Beta (a, b) per query.
        g_min (`int`), g_max (`int`): bounds.
        budget (`int`, *optional*): rollouts to split (budgeted rules only; required for them).
        pass_rates (`Sequence[float]`, *optional*): p̂ per query for per-query rules; default: posterior means.
    """
    if is_budgeted(rule):
        if budget is None:
            raise ValueError("a budgeted rule (knapsack) needs a rollout budget")
        return list(rule.allocate(posteriors, budget, g_min, g_max))
    rates = pass_rates if pass_rates is not None else [a / (a + b) for a, b in posteriors]
    return [int(rule(p, g_min, g_max)) for p in rates]


# --------------------------------------------------------------------------- priors over a query's p

# Means of the components `BetaMixture.fit` weighs: dense near 0 and 1, where pools pile up and where
# "never" and "rarely" must be told apart.
PRIOR_MEANS = (
    0.001,
    0.01,
    0.03,
    0.06,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    0.85,
    0.9,
    0.94,
    0.97,
    0.99,
    0.999,
)
PRIOR_CONCENTRATION = 20.0


@dataclass(frozen=True)
class BetaMixture:
    """A distribution of a query's success rate p: a weighted mixture of Beta(a, b) components.

    The flat prior Beta(1, 1) is what curation and the planner use. A mixture fitted to a profiled pool
    (`fit`) says what that pool looks like, for example that many of its queries are never solved, so k
    failures in a row say more than under a flat prior. Everything is exact: a mixture's posterior after c
    successes in n samples is again a mixture (each component updated, weights times its likelihood), and
    every expectation is a weighted sum of Beta moments (`beta_moment`).

    Args:
        components (`tuple[tuple[float, float, float], ...]`): (weight, a, b) per component; weights sum
            to 1.

    Example:
        >>> BetaMixture.flat().posterior(0, 8).mean()
        0.1
    """

    components: tuple[tuple[float, float, float], ...]

    def __post_init__(self) -> None:
        if not self.components:
            raise ValueError("BetaMixture needs at least one component")
        for weight, a, b in self.components:
            if weight < 0 or a <= 0 or b <= 0:
                raise ValueError(
                    f"BetaMixture component (weight={weight}, a={a}, b={b}): need weight >= 0, a, b > 0"
                )
        total = sum(w for w, _, _ in self.components)
        if not math.isclose(total, 1.0, rel_tol=1e-6):
            raise ValueError(f"BetaMixture weights must sum to 1, got {total}")

    @classmethod
    def flat(cls) -> BetaMixture:
        """The uniform prior Beta(1, 1)."""
        return cls(((1.0, 1.0, 1.0),))

    @classmethod
    def fit(
        cls,
        counts: Sequence[tuple[int, int]],
        means: Sequence[float] = PRIOR_MEANS,
        concentration: float = PRIOR_CONCENTRATION,
        iterations: int = 500,
    ) -> BetaMixture:
        """The mixture of fixed components Beta(κμ, κ(1-μ)) whose weights best explain a pool's counts.

        Only the weights are fitted (maximum likelihood by EM, a convex problem, so the optimum does not
        depend on a starting point); components that explain nothing are dropped.

        Args:
            counts (`Sequence[tuple[int, int]]`): (num_correct, num_samples) per profiled query; queries
                without verified samples are skipped.
            means (`Sequence[float]`): component means μ in (0, 1).
            concentration (`float`): κ = a + b of every component.
            iterations (`int`): EM steps.

        Example:
            >>> prior = BetaMixture.fit([(0, 8)] * 30 + [(8, 8)] * 10)
            >>> prior.posterior(0, 4).mean() < BetaMixture.flat().posterior(0, 4).mean()
            True
        """
        shapes = [(concentration * m, concentration * (1 - m)) for m in means]
        for correct, samples in counts:
            _check_counts(correct, samples)
        # Pools repeat a few (c, k) pairs many times: work on the distinct pairs, weighted by how often.
        distinct = Counter((c, n) for c, n in counts if n > 0)
        if not distinct:
            raise ValueError("BetaMixture.fit needs at least one query with verified samples")
        rows, multiplicity = [], []
        for (correct, samples), times in distinct.items():
            logs = [log_beta_moment(a, b, correct, samples - correct) for a, b in shapes]
            top = max(logs)
            rows.append([math.exp(value - top) for value in logs])
            multiplicity.append(times)
        total = sum(multiplicity)
        weights = [1.0 / len(shapes)] * len(shapes)
        for _ in range(iterations):
            totals = [0.0] * len(shapes)
            for likelihoods, times in zip(rows, multiplicity, strict=True):
                joint = [w * value for w, value in zip(weights, likelihoods, strict=True)]
                norm = sum(joint)
                for j, value in enumerate(joint):
                    totals[j] += times * value / norm
            weights = [t / total for t in totals]
        kept = [(w, a, b) for w, (a, b) in zip(weights, shapes, strict=True) if w > 1e-6]
        norm = sum(w for w, _, _ in kept)
        return cls(tuple((w / norm, a, b) for w, a, b in kept))

    def posterior(self, num_correct: int, num_samples: int) -> BetaMixture:
        """The distribution of p after `num_correct` successes in `num_samples` samples."""
        _check_counts(num_correct, num_samples)
        failures = num_samples - num_correct
        logs = [
            math.log(w) + log_beta_moment(a, b, num_correct, failures) if w > 0 else -math.inf
            for w, a, b in self.components
        ]
        top = max(logs)
        weights = [math.exp(value - top) for value in logs]
        norm = sum(weights)
        return BetaMixture(
            tuple(
                (w / norm, a + num_correct, b + failures)
                for w, (_, a, b) in zip(weights, self.components, strict=True)
                if w > 0
            )
        )

    def expect(self, fn: Callable[[float, float], float]) -> float:
        """E[f] where `fn(a, b)` is f's expectation under one Beta component (e.g. `reward_variance`).

        Example:
            >>> round(BetaMixture.flat().expect(lambda a, b: group_signal(a, b, 2)), 4)
            0.1667
        """
        return sum(w * fn(a, b) for w, a, b in self.components)

    def mean(self) -> float:
        """E[p]."""
        return self.expect(lambda a, b: a / (a + b))

    def predictive(self, draws: int) -> list[float]:
        """P(x successes in `draws` more samples), x = 0..draws (a mixture of beta-binomials).

        Example:
            >>> [round(q, 3) for q in BetaMixture.flat().posterior(0, 2).predictive(2)]
            [0.6, 0.3, 0.1]
        """
        if draws < 0:
            raise ValueError(f"draws must be >= 0, got {draws}")
        return [
            math.comb(draws, x) * self.expect(lambda a, b, x=x: beta_moment(a, b, x, draws - x))
            for x in range(draws + 1)
        ]

    def to_list(self) -> list[list[float]]:
        """Plain JSON: [[weight, a, b], ...] (what `run.json` records)."""
        return [list(c) for c in self.components]

    @classmethod
    def from_list(cls, components: Sequence[Sequence[float]]) -> BetaMixture:
        return cls(tuple((float(w), float(a), float(b)) for w, a, b in components))
