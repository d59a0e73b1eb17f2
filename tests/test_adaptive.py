"""The adaptive stopping rule: exact settle probabilities, calibration under the right prior, replay counts."""

from __future__ import annotations

import math
import random

import pytest

from sgpo_curate.adaptive import StoppingRule, decide, replay
from sgpo_curate.config import AdaptiveConfig
from sgpo_curate.policy import BetaMixture, KnapsackRule, inverse_rule


def test_decisions_are_what_curation_takes_from_the_counts():
    assert decide(8, 8, inverse_rule, 2, 16) == ("trivial",)
    assert decide(0, 8, inverse_rule, 2, 16) == ("unsolvable",)
    assert decide(0, 0, inverse_rule, 2, 16) == ("unverifiable",)
    assert [decide(c, 8, inverse_rule, 2, 16) for c in (1, 2, 3, 4)] == [
        ("kept", 8),
        ("kept", 4),
        ("kept", 3),
        ("kept", 2),
    ]
    assert decide(3, 8, KnapsackRule(), 2, 16) == ("kept", None)


def test_settled_probability_is_the_exact_chance_that_all_k_samples_agree():
    """Against Bayes on a grid of p: flat prior, 3 of 4 correct, k = 8 (the decision G = 2 holds when at
    least 1 of the 4 remaining samples succeeds)."""
    rule = StoppingRule(BetaMixture.flat(), k=8, schedule=(2, 4, 8))
    grid = [(i + 0.5) / 20000 for i in range(20000)]
    posterior = [p**3 * (1 - p) for p in grid]
    agree = [
        sum(
            math.comb(4, x) * p**x * (1 - p) ** (4 - x)
            for x in range(5)
            if rule.decision(3 + x, 8) == rule.decision(3, 4)
        )
        for p in grid
    ]
    expected = sum(w * a for w, a in zip(posterior, agree, strict=True)) / sum(posterior)
    assert rule.settled_probability(3, 4, drawn=4) == pytest.approx(expected, rel=1e-4)
    assert rule.settled_probability(3, 8, drawn=8) == 1.0  # nothing left to draw


def _pool(prior: BetaMixture, size: int, k: int, seed: int) -> list[list[float]]:
    """Queries whose p is drawn from `prior` itself, with k Bernoulli rewards each."""
    rng = random.Random(seed)
    weights = [w for w, _, _ in prior.components]
    pool = []
    for _ in range(size):
        _, a, b = rng.choices(prior.components, weights)[0]
        p = rng.betavariate(a, b)
        pool.append([float(rng.random() < p) for _ in range(k)])
    return pool


def test_with_the_pool_prior_agreement_meets_the_stated_confidence_and_saves_samples():
    """When the prior is how the pool's p is distributed, every stopped query agrees with k_max with
    probability >= confidence, so the pool does too; a flat prior on the same pool saves less."""
    truth = BetaMixture(((0.4, 0.05, 30.0), (0.2, 30.0, 0.05), (0.4, 2.0, 2.0)))
    pool = _pool(truth, 2000, k=8, seed=1)
    fitted = replay(pool, StoppingRule(truth, k=8, schedule=(2, 4, 8), confidence=0.9))
    assert fitted.agreement >= 0.9 - 0.015  # 2000 queries: about 3 standard errors
    assert fitted.saved > 0.2
    flat = replay(pool, StoppingRule(BetaMixture.flat(), k=8, schedule=(2, 4, 8), confidence=0.9))
    assert flat.saved < fitted.saved


def test_replay_counts_samples_stops_and_agreement():
    rule = StoppingRule(BetaMixture.flat(), k=8, schedule=(2, 4, 8), rule="uniform")
    pool = [
        [1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],  # mixed at 2: kept whatever comes, stops at 2
        [0.0] * 8,  # all wrong: a flat prior never settles "unsolvable" before k
        [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0],  # trivial so far, then kept: runs to 8
    ]
    result = replay(pool, rule)
    assert result.stopped_at == {2: 1, 8: 2}
    assert (result.samples_adaptive, result.samples_fixed) == (18, 24)
    assert result.saved == pytest.approx(1 - 18 / 24)
    assert result.agreement == result.filter_agreement == 1.0
    with pytest.raises(ValueError, match="at least k"):
        replay([[1.0] * 4], rule)


def test_a_query_without_verified_samples_stops_after_its_first_round():
    rule = StoppingRule(BetaMixture.flat(), k=8, schedule=(2, 4, 8))
    assert rule.samples_needed([None] * 8) == 2


def test_adaptive_config_schedule_and_checks():
    assert AdaptiveConfig().schedule(8) == (2, 4, 6, 8)
    assert AdaptiveConfig().schedule(7) == (2, 4, 6, 7)
    assert AdaptiveConfig(rounds=(3, 20)).schedule(8) == (3, 8)
    with pytest.raises(ValueError, match="increasing"):
        AdaptiveConfig(rounds=(4, 2))
    with pytest.raises(ValueError, match="confidence"):
        AdaptiveConfig(confidence=1.0)
    with pytest.raises(ValueError, match="increase to k"):
        StoppingRule(BetaMixture.flat(), k=8, schedule=(2, 4))
