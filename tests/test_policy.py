"""The sGPO policy with exact expectations: estimators, group-size rules, buckets, orders, expected signal."""

from __future__ import annotations

import itertools
import math

import pytest

from sgpo_curate.policy import (
    BetaMixture,
    CoverageRule,
    UniformRule,
    allocate_group_sizes,
    beta_moment,
    beta_posterior_mean,
    curriculum_order,
    difficulty_bucket,
    estimate_pass_rate,
    expected_signal,
    get_group_size_rule,
    group_signal,
    group_value,
    id_hash,
    informative_probability,
    inverse_rule,
    knapsack_group_sizes,
    posterior_informative_probability,
    raw_pass_rate,
    seeded_subset,
    symmetric_rule,
    wilson_interval,
    zero_advantage_probability,
)
from sgpo_curate.registry import GROUP_SIZE_RULES, UnknownNameError


@pytest.mark.parametrize(("c", "k", "expected"), [(0, 8, 0.0), (8, 8, 1.0), (1, 8, 0.125), (1, 3, 1 / 3)])
def test_raw_pass_rate_is_c_over_k(c, k, expected):
    assert raw_pass_rate(c, k) == expected


def test_raw_pass_rate_without_samples_is_nan_and_bad_counts_raise():
    assert math.isnan(raw_pass_rate(0, 0))
    with pytest.raises(ValueError):
        raw_pass_rate(3, 2)
    with pytest.raises(ValueError):
        raw_pass_rate(-1, 2)


def test_beta_posterior_mean_never_reaches_zero_or_one():
    assert beta_posterior_mean(0, 8) == 1 / 10
    assert beta_posterior_mean(8, 8) == 9 / 10
    assert beta_posterior_mean(0, 0) == 0.5
    assert beta_posterior_mean(1, 8, alpha=0.5, beta=0.5) == 1.5 / 9
    assert estimate_pass_rate(2, 8, "beta") == 0.3
    with pytest.raises(ValueError, match="valid estimators: raw, beta"):
        estimate_pass_rate(2, 8, "mle")


def test_wilson_interval_contains_p_hat_and_known_values():
    low, high = wilson_interval(0, 8)
    assert low == 0.0 and high == pytest.approx(0.3244, abs=1e-4)
    low, high = wilson_interval(4, 8)
    assert low == pytest.approx(0.2152, abs=1e-4) and high == pytest.approx(0.7848, abs=1e-4)
    low, high = wilson_interval(8, 8)
    assert low == pytest.approx(0.6756, abs=1e-4) and high == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("p", "expected"),
    [(1.0, 2), (0.5, 2), (1 / 3, 3), (0.3, 4), (0.25, 4), (0.125, 8), (1 / 16, 16), (0.01, 16), (0.0, 16)],
)
def test_inverse_rule_clips_to_g_min_and_g_max(p, expected):
    assert inverse_rule(p, 2, 16) == expected


def test_inverse_rule_of_one_over_k_is_k_and_unsolvable_gets_g_max():
    for k in (2, 3, 5, 7, 8, 10, 16):
        assert inverse_rule(raw_pass_rate(1, k), 1, 64) == k
    assert inverse_rule(0.0, 2, 8) == 8
    assert inverse_rule(0.9, 4, 8) == 4  # raised to g_min


@pytest.mark.parametrize(
    ("p", "expected"), [(0.0, 16), (0.125, 8), (0.5, 2), (0.8, 5), (0.875, 8), (0.99, 16), (1.0, 16)]
)
def test_symmetric_rule_sizes_by_the_rarer_outcome(p, expected):
    assert symmetric_rule(p, 2, 16) == expected


def test_symmetric_rule_motivation_g2_on_p08_is_uninformative_two_times_in_three():
    assert 1 - informative_probability(0.8, 2) == pytest.approx(0.68)
    assert informative_probability(0.8, symmetric_rule(0.8, 2, 16)) == pytest.approx(1 - 0.8**5 - 0.2**5)


def test_rules_come_from_the_registry_with_clear_errors():
    assert set(GROUP_SIZE_RULES.names()) >= {"inverse", "symmetric", "uniform"}
    assert get_group_size_rule("inverse") is inverse_rule
    uniform = get_group_size_rule("uniform", uniform_group_size=6)
    assert isinstance(uniform, UniformRule)
    assert [uniform(p, 2, 16) for p in (0.0, 0.5, 1.0)] == [6, 6, 6]
    assert get_group_size_rule("sgpo_curate.policy:symmetric_rule") is symmetric_rule
    with pytest.raises(UnknownNameError, match="coverage, inverse, knapsack, symmetric, uniform"):
        get_group_size_rule("nope")
    with pytest.raises(ValueError, match="already registered"):
        GROUP_SIZE_RULES.register("inverse", symmetric_rule)


@pytest.mark.parametrize(
    ("c", "k", "bucket"),
    [
        (8, 8, "trivial"),
        (7, 8, "easy"),
        (4, 8, "easy"),
        (3, 8, "medium"),
        (2, 10, "medium"),
        (1, 8, "hard"),
        (0, 8, "unsolved"),
        (1, 1, "trivial"),
        (0, 1, "unsolved"),
    ],
)
def test_difficulty_buckets(c, k, bucket):
    assert difficulty_bucket(c, k) == bucket


def test_difficulty_bucket_uses_counts_for_extremes_whatever_the_estimator():
    assert difficulty_bucket(0, 8, p_hat=beta_posterior_mean(0, 8)) == "unsolved"
    assert difficulty_bucket(8, 8, p_hat=beta_posterior_mean(8, 8)) == "trivial"
    with pytest.raises(ValueError):
        difficulty_bucket(0, 0)


def test_seeded_subset_is_stable_exact_in_size_and_nested():
    ids = [f"q{i}" for i in range(40)]
    quarter = seeded_subset(ids, 0.25, seed=0)
    assert len(quarter) == 10
    assert seeded_subset(list(reversed(ids)), 0.25, seed=0) == quarter  # order of the input does not matter
    assert seeded_subset(ids, 0.25, seed=0) == quarter  # same seed, same subset
    assert seeded_subset(ids, 0.25, seed=1) != quarter
    assert quarter <= seeded_subset(ids, 0.5, seed=0)  # a larger fraction keeps a superset
    assert seeded_subset(ids, 0.0, seed=0) == set()
    assert seeded_subset(ids, 1.0, seed=0) == set(ids)
    assert len(seeded_subset(ids[:8], 0.25, seed=3)) == 2
    with pytest.raises(ValueError):
        seeded_subset(ids, 1.5, seed=0)


def test_easy_to_hard_sorts_by_pass_rate_and_breaks_ties_by_id_hash():
    ids = ["a", "b", "c", "d", "e"]
    rates = [0.25, 0.75, 0.25, 1.0, 0.0]
    order = curriculum_order(ids, rates, "easy-to-hard")
    assert [ids[i] for i in order][:2] == ["d", "b"]
    assert [ids[i] for i in order][-1] == "e"
    tied = sorted(["a", "c"], key=id_hash)
    assert [ids[i] for i in order][2:4] == tied
    hard = curriculum_order(ids, rates, "hard-first")
    assert [ids[i] for i in hard][0] == "e" and [ids[i] for i in hard][-1] == "d"
    assert [ids[i] for i in hard][1:3] == tied  # same tie-break


def test_random_order_is_seeded_and_independent_of_input_order():
    ids = [f"q{i}" for i in range(30)]
    rates = [0.5] * 30
    first = [ids[i] for i in curriculum_order(ids, rates, "random", seed=7)]
    again = [ids[i] for i in curriculum_order(ids, rates, "random", seed=7)]
    rev_ids = ids[::-1]
    reversed_input = [rev_ids[i] for i in curriculum_order(rev_ids, rates, "random", seed=7)]
    assert first == again == reversed_input
    assert first != [ids[i] for i in curriculum_order(ids, rates, "random", seed=8)]
    assert sorted(first) == sorted(ids)
    with pytest.raises(ValueError, match="valid orders"):
        curriculum_order(ids, rates, "shortest-first")


def test_informative_probability_closed_form():
    assert informative_probability(0.5, 2) == 0.5
    assert informative_probability(0.0, 8) == 0.0
    assert informative_probability(1.0, 8) == 0.0
    assert informative_probability(0.25, 4) == pytest.approx(1 - 0.25**4 - 0.75**4)
    assert informative_probability(0.3, 1) == pytest.approx(0.0)


def test_posterior_informative_probability_is_positive_for_unsolved():
    # Beta(1, 9) after 0 of 8: E[p^2] = 1*2/(10*11), E[(1-p)^2] = 9*10/(10*11)
    assert posterior_informative_probability(0, 8, 2) == pytest.approx(1 - 2 / 110 - 90 / 110)
    assert posterior_informative_probability(0, 8, 16) > 0


def test_expected_signal_rollouts_and_informative_groups():
    signal = expected_signal(
        [0.5, 0.25, 0.0], [2, 4, 16], uniform_group_size=8, unfiltered_pass_rates=[0.5, 0.25, 0.0, 1.0, 1.0]
    )
    assert signal.rollouts == 22
    assert signal.uniform_rollouts == 24
    assert signal.unfiltered_rollouts == 40
    assert signal.informative_groups == pytest.approx(0.5 + (1 - 0.25**4 - 0.75**4) + 0.0)
    assert signal.uniform_informative_groups == pytest.approx((1 - 2 * 0.5**8) + (1 - 0.25**8 - 0.75**8))
    assert signal.unfiltered_informative_groups == pytest.approx(signal.uniform_informative_groups)
    assert signal.rollouts_vs_uniform == pytest.approx(22 / 24)
    assert signal.rollouts_vs_unfiltered == pytest.approx(22 / 40)
    assert signal.informative_fraction == pytest.approx(signal.informative_groups / 3)
    assert set(signal.to_dict()) >= {"rollouts", "rollouts_vs_uniform", "informative_fraction"}


# --------------------------------------------------------------------------- Beta posteriors and budgets


def _beta_expectation(a: float, b: float, f, steps: int = 20000) -> float:
    """E[f(p)] for p ~ Beta(a, b) by the midpoint rule: an independent check of the closed forms."""
    log_norm = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    total = 0.0
    for i in range(steps):
        p = (i + 0.5) / steps
        total += f(p) * math.exp(log_norm + (a - 1) * math.log(p) + (b - 1) * math.log(1 - p))
    return total / steps


@pytest.mark.parametrize(("a", "b", "m", "n"), [(1, 1, 1, 1), (3, 5, 2, 1), (9, 1, 4, 1), (2.5, 7.5, 1, 6)])
def test_beta_moments_match_numerical_integration(a, b, m, n):
    expected = _beta_expectation(a, b, lambda p: p**m * (1 - p) ** n)
    assert beta_moment(a, b, m, n) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(("a", "b", "g"), [(1, 1, 2), (5, 5, 4), (1, 9, 8), (9, 2, 16)])
def test_group_value_is_expected_informative_probability_times_reward_variance(a, b, g):
    expected = _beta_expectation(a, b, lambda p: (1 - p**g - (1 - p) ** g) * p * (1 - p))
    assert group_value(a, b, g) == pytest.approx(expected, rel=1e-4)
    assert group_value(a, b, 1) == 0.0


@pytest.mark.parametrize("alpha", [0.5, 0.75, 0.9])
def test_coverage_rule_is_the_smallest_group_that_is_informative_often_enough(alpha):
    rule = CoverageRule(alpha)
    for p in (0.02, 0.1, 0.25, 0.5, 0.7, 0.93):
        size = rule(p, 2, 64)
        assert size == 64 or informative_probability(p, size) >= alpha  # 64 = g_max: clipped
        assert size == 2 or informative_probability(p, size - 1) < alpha
        assert rule(1 - p, 2, 64) == size  # symmetric in p and 1 - p
    assert rule(0.0, 2, 16) == rule(1.0, 2, 16) == 16
    assert rule(0.01, 2, 16) == 16  # needs more than g_max: clipped
    assert get_group_size_rule("coverage", probability=alpha) == rule
    with pytest.raises(ValueError, match="probability"):
        CoverageRule(1.0)


@pytest.mark.parametrize("budget", [8, 11, 16, 23])
def test_knapsack_split_is_optimal_against_brute_force(budget):
    posteriors = [(5, 5), (1, 12), (2, 6), (10, 2)]
    g_min, g_max = 2, 8
    sizes = knapsack_group_sizes(posteriors, budget, g_min, g_max)
    assert sum(sizes) == budget and all(g_min <= g <= g_max for g in sizes)

    def total(split):
        return sum(group_value(a, b, g) for (a, b), g in zip(posteriors, split, strict=True))

    splits = [s for s in itertools.product(range(g_min, g_max + 1), repeat=4) if sum(s) == budget]
    assert total(sizes) == pytest.approx(max(total(s) for s in splits), rel=1e-12)


def test_knapsack_refuses_a_budget_below_the_minimum_and_stops_at_the_maximum():
    with pytest.raises(ValueError, match="cannot give 3 queries 2"):
        knapsack_group_sizes([(1, 1)] * 3, 5, 2, 8)
    assert knapsack_group_sizes([(1, 1)] * 2, 40, 2, 8) == [8, 8]  # the rest stays unspent


def test_allocate_group_sizes_handles_per_query_and_budgeted_rules():
    posteriors = [(5, 5), (1, 9), (9, 1)]
    inverse = allocate_group_sizes(get_group_size_rule("inverse"), posteriors, 2, 16)
    assert inverse == [2, 10, 2]  # posterior means 0.5, 0.1, 0.9
    assert allocate_group_sizes(inverse_rule, posteriors, 2, 16, pass_rates=[0.25, 0.0, 1.0]) == [4, 16, 2]
    knapsack = get_group_size_rule("knapsack")
    assert sum(allocate_group_sizes(knapsack, posteriors, 2, 16, budget=24)) == 24
    with pytest.raises(ValueError, match="budget"):
        allocate_group_sizes(knapsack, posteriors, 2, 16)
    with pytest.raises(TypeError, match="allocate_group_sizes"):
        knapsack(0.5, 2, 16)


def _beta_expectation(a, b, fn, points=20000):
    """E[fn(p)] under Beta(a, b) by the midpoint rule (a reference independent of the closed forms)."""
    log_norm = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    total = 0.0
    for i in range(points):
        p = (i + 0.5) / points
        total += fn(p) * math.exp(log_norm + (a - 1) * math.log(p) + (b - 1) * math.log(1 - p))
    return total / points


@pytest.mark.parametrize("a, b, g", [(1.0, 1.0, 2), (2.5, 7.0, 5), (9.0, 1.5, 16)])
def test_zero_advantage_and_group_signal_match_numerical_integration(a, b, g):
    zero = _beta_expectation(a, b, lambda p: p**g + (1 - p) ** g)
    signal = _beta_expectation(a, b, lambda p: (g - 1) * p * (1 - p))
    assert zero_advantage_probability(a, b, g) == pytest.approx(zero, rel=1e-4)
    assert group_signal(a, b, g) == pytest.approx(signal, rel=1e-4)
    assert posterior_informative_probability(3, 7, g) == pytest.approx(
        1 - zero_advantage_probability(4, 5, g)
    )


def test_beta_mixture_posterior_and_predictive_match_brute_force():
    """Bayes' rule on a grid of p: the mixture's posterior mean and its predictive of 4 more draws."""
    mixture = BetaMixture(((0.3, 0.2, 20.0), (0.7, 3.0, 2.0)))
    correct, samples, draws = 2, 5, 4

    def prior_density(p):
        return sum(
            w
            * math.exp(
                math.lgamma(a + b)
                - math.lgamma(a)
                - math.lgamma(b)
                + (a - 1) * math.log(p)
                + (b - 1) * math.log(1 - p)
            )
            for w, a, b in mixture.components
        )

    grid = [(i + 0.5) / 20000 for i in range(20000)]
    weights = [prior_density(p) * p**correct * (1 - p) ** (samples - correct) for p in grid]
    norm = sum(weights)
    posterior = mixture.posterior(correct, samples)
    assert posterior.mean() == pytest.approx(
        sum(w * p for w, p in zip(weights, grid, strict=True)) / norm, rel=1e-4
    )
    expected = [
        sum(
            w * math.comb(draws, x) * p**x * (1 - p) ** (draws - x)
            for w, p in zip(weights, grid, strict=True)
        )
        / norm
        for x in range(draws + 1)
    ]
    assert posterior.predictive(draws) == pytest.approx(expected, rel=1e-4)
    assert sum(posterior.predictive(draws)) == pytest.approx(1.0)


def test_fitted_mixture_learns_that_a_pool_has_never_solved_queries():
    """40% of a pool has p = 0 and the rest p = 0.5: after 4 failures the fitted prior puts p near 0,
    the flat one at 1/6 (Bayes: 0.6 · 2^-4 of the mass stays at 0.5)."""
    import random

    rng = random.Random(0)
    counts = [(0, 8)] * 400 + [(sum(rng.random() < 0.5 for _ in range(8)), 8) for _ in range(600)]
    prior = BetaMixture.fit(counts)
    near_zero = sum(w for w, a, b in prior.components if a / (a + b) <= 0.01)
    assert near_zero == pytest.approx(0.4, abs=0.05)
    assert prior.posterior(0, 4).mean() < 0.06 < BetaMixture.flat().posterior(0, 4).mean()
    assert prior.posterior(4, 8).mean() == pytest.approx(0.5, abs=0.03)


def test_beta_mixture_checks_its_components_and_round_trips():
    with pytest.raises(ValueError, match="sum to 1"):
        BetaMixture(((0.5, 1.0, 1.0),))
    with pytest.raises(ValueError, match="a, b > 0"):
        BetaMixture(((1.0, 0.0, 1.0),))
    with pytest.raises(ValueError, match="at least one query"):
        BetaMixture.fit([(0, 0)])
    prior = BetaMixture.fit([(0, 8), (8, 8), (3, 8)])
    assert BetaMixture.from_list(prior.to_list()) == prior
