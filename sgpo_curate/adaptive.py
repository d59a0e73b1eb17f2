"""Adaptive profiling: how many samples a query needs before the decisions taken from it are settled.

What: a `StoppingRule` looks at a query's rewards after each round (2, 4, 6, ... samples, up to k_max) and
says whether to stop. It stops once the decisions curation will take from the query, which are trivial
(every sample correct), unsolvable (none correct) or otherwise kept with a group size under the chosen
rule, would come out the same after all k_max samples with probability at least `confidence`. That
probability is exact: the query's p has a prior (`BetaMixture`: flat, or fitted to a pilot profile of the
pool), the rewards so far update it, and the remaining k_max - n samples follow a mixture of
beta-binomials.

Why: most queries of a pool are settled early (a query solved 2 of 2 and 4 of 4 times in a pool full of
trivial ones; one that failed 4 times in a pool full of unsolvable ones), while those near a group-size
boundary need every sample. Sampling in rounds spends k_max only where it changes a decision.

`replay(profiles, rule)` runs the rule on a fixed-k profile's rewards, in sample order: because every
sample has its own seed (`sgpo_curate.samplers.sample_seed`), an adaptive run draws exactly those samples
and stops where the replay stops, so a replay measures samples saved and agreement with fixed k on the
same samples. Pure: no model, no IO.

Example:
    >>> rule = StoppingRule(BetaMixture.flat(), k=8, schedule=(2, 4, 8))
    >>> rule.samples_needed([1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    4
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sgpo_curate.policy import BetaMixture, GroupSizeRule, get_group_size_rule, is_budgeted, raw_pass_rate

Decision = tuple
"""What curation takes from a query's counts: ("trivial",), ("unsolvable",), ("kept", G) or
("unverifiable",); G is None under a budgeted rule (it sizes groups across queries, not one at a time)."""


def decide(num_correct: int, num_samples: int, rule: GroupSizeRule, g_min: int, g_max: int) -> Decision:
    """The decisions curation takes from one query's counts (filter class, then group size from p̂ = c/n).

    Example:
        >>> from sgpo_curate.policy import inverse_rule
        >>> [decide(c, 8, inverse_rule, 2, 16) for c in (8, 0, 1, 5)]
        [('trivial',), ('unsolvable',), ('kept', 8), ('kept', 2)]
    """
    if num_samples == 0:
        return ("unverifiable",)
    if num_correct == num_samples:
        return ("trivial",)
    if num_correct == 0:
        return ("unsolvable",)
    if is_budgeted(rule):
        return ("kept", None)
    return ("kept", int(rule(raw_pass_rate(num_correct, num_samples), g_min, g_max)))


@dataclass(frozen=True)
class StoppingRule:
    """When a query has been sampled enough (see the module docstring).

    Args:
        prior (`BetaMixture`): prior of a query's p.
        k (`int`): k_max, the samples a fixed-k profile takes.
        schedule (`tuple[int, ...]`): cumulative samples after each round, ending at k.
        confidence (`float`): stop once the decisions match k_max samples' with this probability.
        rule (`str`): group-size rule whose decision must be settled (a registered name or dotted path).
        g_min (`int`), g_max (`int`): its bounds.
    """

    prior: BetaMixture
    k: int
    schedule: tuple[int, ...]
    confidence: float = 0.95
    rule: str = "inverse"
    g_min: int = 2
    g_max: int = 16
    _rule: GroupSizeRule = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (
            not self.schedule
            or self.schedule[-1] != self.k
            or list(self.schedule) != sorted(set(self.schedule))
        ):
            raise ValueError(f"schedule must increase to k={self.k}, got {self.schedule}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        object.__setattr__(self, "_rule", get_group_size_rule(self.rule))

    @classmethod
    def from_config(cls, config, k: int, prior: BetaMixture) -> StoppingRule:
        """The rule of an `AdaptiveConfig` for k_max = `k` samples, with the prior already loaded."""
        return cls(prior, k, config.schedule(k), config.confidence, config.rule, config.g_min, config.g_max)

    def decision(self, num_correct: int, num_samples: int) -> Decision:
        return decide(num_correct, num_samples, self._rule, self.g_min, self.g_max)

    def settled_probability(self, num_correct: int, num_samples: int, drawn: int) -> float:
        """P(the decisions after k_max samples equal those of the counts so far), `drawn` samples taken
        (`num_samples` of them verified). A query none of whose samples could be verified is settled: its
        gold answer or tests, not the model, are in question."""
        if num_samples == 0:
            return 1.0 if drawn > 0 else 0.0
        remaining = max(0, self.k - drawn)
        now = self.decision(num_correct, num_samples)
        predictive = self.prior.posterior(num_correct, num_samples).predictive(remaining)
        return sum(
            q
            for x, q in enumerate(predictive)
            if self.decision(num_correct + x, num_samples + remaining) == now
        )

    def stops(self, rewards: Sequence[float | None]) -> bool:
        """True when a query with these rewards (in sample order) needs no more samples."""
        drawn = len(rewards)
        if drawn >= self.k:
            return True
        correct, samples = _counts(rewards)
        return self.settled_probability(correct, samples, drawn) >= self.confidence - 1e-12

    def samples_needed(self, rewards: Sequence[float | None]) -> int:
        """Samples an adaptive run takes from a query whose samples, in order, have these rewards."""
        for target in self.schedule:
            if target >= len(rewards) or self.stops(rewards[:target]):
                return min(target, len(rewards))
        return len(rewards)


def _counts(rewards: Iterable[float | None]) -> tuple[int, int]:
    """(num_correct, num_samples) the way `QueryProfile` counts them: a reward >= 0.5 is a success."""
    verified = [r for r in rewards if r is not None]
    return sum(r >= 0.5 for r in verified), len(verified)


@dataclass(frozen=True)
class ReplayResult:
    """An adaptive run replayed on a fixed-k profile.

    Args:
        queries (`int`): queries replayed.
        samples_fixed (`int`): samples of the fixed-k profile (k each).
        samples_adaptive (`int`): samples the adaptive run takes.
        agreement (`float`): share of queries whose decisions (filter class and group size) at the stop
            equal the fixed-k profile's.
        filter_agreement (`float`): the same for the filter class alone (trivial / unsolvable / kept).
        stopped_at (`dict[int, int]`): queries per number of samples taken.
    """

    queries: int
    samples_fixed: int
    samples_adaptive: int
    agreement: float
    filter_agreement: float
    stopped_at: dict[int, int]

    @property
    def saved(self) -> float:
        """Share of the fixed-k samples the adaptive run does not draw."""
        return 1 - self.samples_adaptive / self.samples_fixed if self.samples_fixed else math.nan


def replay(rewards_per_query: Iterable[Sequence[float | None]], rule: StoppingRule) -> ReplayResult:
    """Run `rule` on each query's first k rewards (in sample order) and compare with all k of them.

    Args:
        rewards_per_query (`Iterable[Sequence[float | None]]`): per query, the rewards of a fixed-k profile
            (`QueryProfile.rewards`), at least `rule.k` each.
        rule (`StoppingRule`): the adaptive run to replay.

    Example:
        >>> result = replay([[0.0] * 8, [1.0, 0.0] * 4], StoppingRule(BetaMixture.flat(), 8, (2, 4, 8)))
        >>> result.samples_fixed, result.agreement
        (16, 1.0)
    """
    taken, same, same_class, fixed = Counter(), 0, 0, 0
    queries = 0
    for rewards in rewards_per_query:
        if len(rewards) < rule.k:
            raise ValueError(
                f"a query has {len(rewards)} rewards; replaying k={rule.k} needs at least k per query"
            )
        full = list(rewards[: rule.k])
        n = rule.samples_needed(full)
        stopped = rule.decision(*_counts(full[:n]))
        final = rule.decision(*_counts(full))
        taken[n] += 1
        same += stopped == final
        same_class += stopped[0] == final[0]
        fixed += rule.k
        queries += 1
    return ReplayResult(
        queries=queries,
        samples_fixed=fixed,
        samples_adaptive=sum(n * count for n, count in taken.items()),
        agreement=same / queries if queries else math.nan,
        filter_agreement=same_class / queries if queries else math.nan,
        stopped_at=dict(sorted(taken.items())),
    )
