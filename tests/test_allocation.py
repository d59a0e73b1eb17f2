"""Tests of `sgpo_curate.allocation`: the planner fills every batch exactly with whole groups, keeps order and
curriculum schedules, splits budgets by knapsack, updates posteriors by hand-checkable arithmetic, parks and
re-probes, and takes the same decisions from the same observations (what every process of a run relies on)."""

from __future__ import annotations

import itertools
import json
import math
import random

import pytest

from sgpo_curate.allocation import PlannedGroup, PlannerSettings, RolloutPlanner, pad_groups
from sgpo_curate.policy import group_value
from sgpo_curate.registry import UnknownNameError


def plans(planner: RolloutPlanner, batches: int, progress=None) -> list[list[PlannedGroup]]:
    out = []
    for i in range(batches):
        out.append(planner.next_batch(None if progress is None else progress(i)))
    return out


def test_every_batch_is_full_and_groups_are_whole_and_in_order():
    sizes = [2, 3, 7, 5, 8, 2, 2, 6, 3, 4, 8, 8, 2]
    planner = RolloutPlanner(PlannerSettings(budget=8, g_max=8), num_rows=len(sizes), fixed_sizes=sizes)
    batches = plans(planner, 12)
    assert all(sum(g.rollouts for g in b) == 8 for b in batches)
    stream = [g for b in batches for g in b]
    # rows come in dataset order, each with its planned size, then the order starts again
    assert [g.row for g in stream][: len(sizes)] == list(range(len(sizes)))
    assert [g.group_size for g in stream][: len(sizes)] == sizes
    for batch, following in zip(batches, batches[1:], strict=False):
        padding = sum(g.padding for g in batch)
        if padding:  # padding only where the next group did not fit in what was left
            assert padding < following[0].group_size


def test_sizes_that_tile_the_budget_get_no_padding():
    sizes = [2, 2, 4, 8, 4, 4, 8, 8, 2, 6, 8]  # 56 rollouts = 7 batches of 8
    planner = RolloutPlanner(PlannerSettings(budget=8, g_max=8), num_rows=len(sizes), fixed_sizes=sizes)
    assert all(g.padding == 0 for b in plans(planner, 7) for g in b)


def test_left_over_slots_go_where_one_more_rollout_adds_most_signal():
    # a near-hopeless query (Beta(1, 30)) gains almost nothing from one more rollout; a p ~ 0.5 one gains most
    padded = pad_groups(
        [PlannedGroup(0, 2), PlannedGroup(1, 2), PlannedGroup(2, 4)], 3, [(1, 30), (5, 5), (5, 5)]
    )
    assert padded[0].padding == 0

    # the greedy choice is a best split: no other split of the 3 slots has more total value
    def total(split):
        return (
            group_value(1, 30, 2 + split[0])
            + group_value(5, 5, 2 + split[1])
            + group_value(5, 5, 4 + split[2])
        )

    best = max(total(s) for s in itertools.product(range(4), repeat=3) if sum(s) == 3)
    assert total([g.padding for g in padded]) == pytest.approx(best, rel=1e-12)


def test_shuffled_epochs_cover_every_row_once_and_are_seeded():
    settings = PlannerSettings(budget=8, default_group_size=4, shuffle=True, seed=3)
    first = [g.row for b in plans(RolloutPlanner(settings, num_rows=12), 6) for g in b]
    again = [g.row for b in plans(RolloutPlanner(settings, num_rows=12), 6) for g in b]
    assert first == again
    assert sorted(first[:12]) == list(range(12)) and first[:12] != list(range(12))
    assert first[12:] != first[:12]  # a fresh permutation per epoch
    other = [
        g.row
        for b in plans(RolloutPlanner(PlannerSettings(**{**settings.__dict__, "seed": 4}), 12), 6)
        for g in b
    ]
    assert other != first


def test_one_pass_schedule_walks_once_from_first_to_last_row():
    planner = RolloutPlanner(
        PlannerSettings(budget=8, default_group_size=4, schedule="one-pass"), num_rows=100
    )
    batches = plans(planner, 10, progress=lambda i: i / 10)
    starts = [b[0].row for b in batches]
    assert starts == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]  # no restart at the easy end (no sawtooth)
    end = planner.next_batch(1.0)
    assert sorted(g.row for g in end) == [98, 99]  # the last batch holds the last rows, not the first ones
    with pytest.raises(ValueError, match="progress"):
        planner.next_batch()


def test_knapsack_batches_split_the_budget_across_queries():
    counts = [(c, 8) for c in (4, 1, 8, 0, 5, 2, 7, 3)]
    settings = PlannerSettings(budget=16, default_group_size=4, rule="knapsack", queries_per_batch=4, g_max=8)
    planner = RolloutPlanner(settings, num_rows=8, prior_counts=counts)
    first, second = plans(planner, 2)
    assert [g.row for g in first] == [0, 1, 2, 3] and [g.row for g in second] == [4, 5, 6, 7]
    assert all(
        sum(g.rollouts for g in b) == 16 and all(2 <= g.rollouts <= 8 for g in b) for b in (first, second)
    )
    # the middle query (4 of 8) gets the most, the solved (8/8) and hopeless (0/8) ones the least
    sizes = {g.row: g.rollouts for g in first}
    assert sizes[0] == max(sizes.values()) and max(sizes[2], sizes[3]) < sizes[0]
    with pytest.raises(ValueError, match="queries_per_batch"):
        PlannerSettings(budget=16, rule="knapsack", queries_per_batch=9)  # 9 x 2 > 16


def test_posterior_update_matches_a_hand_computation():
    settings = PlannerSettings(budget=4, default_group_size=4, online=True, forgetting=0.5)
    planner = RolloutPlanner(settings, num_rows=1, prior_counts=[(2, 6)])  # Beta(3, 5)
    plan = planner.next_batch()
    planner.observe(plan, [[1.0, 0.0, 1.0, math.nan]])
    # a = 1 + 0.5 * (3 - 1) + 2 = 4; b = 1 + 0.5 * (5 - 1) + 1 = 4 (the NaN reward is unscorable: skipped)
    assert planner.posterior(0) == (4.0, 4.0)
    planner.observe(planner.next_batch(), [[0.25, 0.25, 0.25, 0.25]])  # fractional rewards count fractionally
    assert planner.posterior(0) == (1 + 0.5 * 3 + 1.0, 1 + 0.5 * 3 + 3.0)
    assert planner.trace[-1]["successes"] == 1.0 and planner.trace[-1]["failures"] == 3.0


def test_offline_planning_never_moves_the_posterior():
    planner = RolloutPlanner(
        PlannerSettings(budget=4, default_group_size=4), num_rows=1, prior_counts=[(2, 6)]
    )
    planner.observe(planner.next_batch(), [[1.0, 1.0, 1.0, 1.0]])
    assert planner.posterior(0) == (3.0, 5.0)


def test_solved_and_hopeless_queries_are_parked_and_reprobed():
    settings = PlannerSettings(
        budget=16, default_group_size=4, online=True, park_below=0.05, reprobe_fraction=0.25, forgetting=1.0
    )
    planner = RolloutPlanner(settings, num_rows=8)
    solved, hopeless = {0, 1}, {2, 3}
    for _ in range(12):
        plan = planner.next_batch()
        planner.observe(
            plan,
            [
                [1.0 if g.row in solved else 0.0 if g.row in hopeless else r % 2 for r in range(g.rollouts)]
                for g in plan
            ],
        )
    assert {r for r in range(8) if planner.is_parked(r)} == solved | hopeless
    plan = planner.next_batch()
    probes = [g for g in plan if g.probe]
    assert len(probes) == 2 and all(g.row in solved | hopeless and g.group_size == 2 for g in probes)
    assert {g.row for g in plan if not g.probe} <= {4, 5, 6, 7}  # parked rows train only as probes
    # a hopeless query that starts succeeding comes back
    for _ in range(10):
        plan = planner.next_batch()
        planner.observe(plan, [[float(r % 2) for r in range(g.rollouts)] for g in plan])
    assert not any(planner.is_parked(r) for r in range(8))


def test_same_observations_same_decisions_and_state_round_trips_through_json():
    settings = PlannerSettings(
        budget=16,
        default_group_size=4,
        rule="knapsack",
        queries_per_batch=6,
        selection="signal",
        online=True,
        park_below=0.05,
        reprobe_fraction=0.2,
        forgetting=0.8,
        seed=7,
    )
    rng = random.Random(0)
    a, b = RolloutPlanner(settings, num_rows=30), RolloutPlanner(settings, num_rows=30)
    for step in range(20):
        plan_a, plan_b = a.next_batch(), b.next_batch()
        assert plan_a == plan_b
        rewards = [[float(rng.random() < (g.row % 5) / 4) for _ in range(g.rollouts)] for g in plan_a]
        a.observe(plan_a, rewards)
        b.observe(plan_b, rewards)
        if step == 9:  # a checkpoint: b resumes from a's JSON state
            b = RolloutPlanner(settings, num_rows=30)
            b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    other = RolloutPlanner(PlannerSettings(**{**settings.__dict__, "park_below": 0.1}), num_rows=30)
    with pytest.raises(ValueError, match="settings differ"):
        other.load_state_dict(a.state_dict())


def test_signal_selection_prefers_queries_with_signal():
    counts = [(4, 8)] * 10 + [(0, 40)] * 10 + [(40, 40)] * 10
    settings = PlannerSettings(budget=8, default_group_size=4, selection="signal", seed=1)
    planner = RolloutPlanner(settings, num_rows=30, prior_counts=counts)
    rows = [g.row for b in plans(planner, 50) for g in b]
    middle = sum(r < 10 for r in rows)
    assert middle / len(rows) > 0.6  # E[p(1-p)] ~ 0.23 vs ~ 0.02: the middle queries dominate


def test_bad_settings_and_counts_are_refused():
    with pytest.raises(ValueError, match="budget"):
        PlannerSettings(budget=8, g_max=16)  # a group larger than a batch
    with pytest.raises(ValueError, match="selection"):
        PlannerSettings(budget=8, g_max=8, selection="best")
    with pytest.raises(ValueError, match="row 1"):
        RolloutPlanner(PlannerSettings(budget=8, g_max=8), num_rows=2, prior_counts=[(1, 2), (3, 2)])
    with pytest.raises(UnknownNameError, match="valid group-size rules"):
        RolloutPlanner(PlannerSettings(budget=8, g_max=8, rule="nope"), num_rows=2)
