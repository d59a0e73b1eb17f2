"""The allocation simulator: arms curated as `curate` does, closed forms, posterior calibration, scale, IO."""

from __future__ import annotations

import json
import random

import curation_helpers as helpers  # tests/ is on pytest's pythonpath
import pytest

from sgpo_curate.cli import main
from sgpo_curate.curation import CurateConfig, curate, write_curated
from sgpo_curate.policy import BetaMixture, zero_advantage_probability
from sgpo_curate.simulate import Arm, default_arms, load_counts, resample, simulate

POOL = [(f"q{i}", c, 8) for i, c in enumerate([0] * 6 + [8] * 3 + [1, 2, 3, 4, 5, 6, 7])]


def test_arms_are_curated_exactly_as_curate_does():
    sim = simulate(POOL, default_arms(), prior="flat")
    by_name = {a.arm: a for a in sim.arms}
    assert by_name["grpo"].queries == len(POOL) and by_name["grpo"].rollouts == 8 * len(POOL)
    profiles = [helpers.make_profile(i, c) for i, (_, c, _) in enumerate(POOL)]
    for name in ("filter", "inverse", "knapsack"):
        kept = curate(profiles, CurateConfig(rule="uniform" if name == "filter" else name))
        assert by_name[name].queries == kept.num_kept
        assert by_name[name].rollouts == sum(kept.dataset["group_size"])
    assert by_name["grpo"].rollouts_vs_baseline == 1.0
    assert by_name["filter"].rollouts_vs_baseline == pytest.approx(
        by_name["filter"].rollouts / (8 * len(POOL))
    )


def test_flat_prior_predictions_are_the_beta_closed_forms():
    """Under the flat prior each query's p is Beta(1 + c, 1 + k - c): plain GRPO's zero-advantage share is
    the mean of E[p^8 + (1-p)^8] and its signal per rollout the mean of (7/8)·E[p(1-p)]."""
    grpo = simulate(POOL, [Arm("grpo", CurateConfig(rule="uniform", filter=False))], prior="flat").arms[0]
    zero = [zero_advantage_probability(1 + c, 1 + n - c, 8) for _, c, n in POOL]
    variance = [(1 + c) * (1 + n - c) / ((2 + n) * (3 + n)) for _, c, n in POOL]
    assert grpo.zero_advantage_groups == pytest.approx(sum(zero) / len(POOL))
    assert grpo.zero_advantage_rollouts == pytest.approx(grpo.zero_advantage_groups)
    assert grpo.signal_per_rollout == pytest.approx(7 / 8 * sum(variance) / len(POOL))
    assert grpo.informative_groups == pytest.approx(len(POOL) - sum(zero))


def test_fitted_prior_predicts_the_zero_advantage_share_of_fresh_groups():
    """A pool whose true p is known: profile it at k = 8, predict plain GRPO's zero-advantage share, then
    draw the groups training would draw (G = 8, true p). The fitted prior lands within 0.02; the flat one,
    which does not know that most 0-of-8 queries are never solved, is further off."""
    rng = random.Random(3)
    truth = [0.0] * 300 + [1.0] * 100 + [rng.uniform(0.05, 0.95) for _ in range(600)]
    pool = [(f"q{i}", sum(rng.random() < p for _ in range(8)), 8) for i, p in enumerate(truth)]
    groups = [[rng.random() < p for _ in range(8)] for p in truth for _ in range(4)]
    measured = sum(all(g) or not any(g) for g in groups) / len(groups)
    arm = [Arm("grpo", CurateConfig(rule="uniform", filter=False))]
    fitted = simulate(pool, arm, prior="fitted").arms[0].zero_advantage_groups
    flat = simulate(pool, arm, prior="flat").arms[0].zero_advantage_groups
    assert fitted == pytest.approx(measured, abs=0.02)
    assert abs(flat - measured) > 2 * abs(fitted - measured)


def test_scale_resamples_the_pool_to_plan_a_large_run():
    sim = simulate(POOL, default_arms(rules=()), prior="flat", scale=2000, seed=1)
    base = simulate(POOL, default_arms(rules=()), prior="flat")
    assert sim.queries == 2000 and sim.pool == len(POOL) and sim.arms[0].rollouts == 16000
    assert sim.arms[0].zero_advantage_groups == pytest.approx(base.arms[0].zero_advantage_groups, abs=0.03)
    assert len({qid for qid, _, _ in resample(POOL, 50)}) == 50  # every draw is its own query
    assert resample(POOL, 50, seed=2) == resample(POOL, 50, seed=2) != resample(POOL, 50, seed=3)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="valid priors: flat, fitted"):
        simulate(POOL, default_arms(), prior="jeffreys")
    with pytest.raises(ValueError, match="no query with verified samples"):
        simulate([("q", 0, 0)], default_arms())


def test_counts_load_from_a_profile_folder_and_a_curated_folder(tmp_path):
    profiles = [p for p in helpers.make_pool() if p.query.domain == "math"]
    helpers.write_profile_dir(tmp_path / "profile", profiles)
    from_profiles = load_counts(tmp_path / "profile")
    assert sorted(from_profiles) == sorted({(p.id, p.num_correct, p.num_samples) for p in profiles})
    write_curated(curate(profiles), tmp_path / "curated", helpers.RUN_INFO, profiles=profiles)
    assert sorted(load_counts(tmp_path / "curated")) == sorted(from_profiles)  # the raw rows: every query
    with pytest.raises(FileNotFoundError, match="neither a profiling folder"):
        load_counts(tmp_path)


def test_cli_prints_the_table_and_writes_json_and_plot(tmp_path, capsys):
    profiles = [helpers.make_profile(i, i % 9) for i in range(40)]
    helpers.write_profile_dir(tmp_path / "profile", profiles)
    code = main(["simulate", str(tmp_path / "profile"), "--group-sizes", "4,8", "--rollouts-per-step", "32"])
    out = capsys.readouterr().out
    assert code == 0 and "| grpo-G4 |" in out and "| knapsack-G8 |" in out and "steps/epoch" in out
    written = json.loads((tmp_path / "profile" / "simulation" / "simulation.json").read_text())
    assert [a["arm"] for a in written["arms"]][:2] == ["grpo-G4", "filter-G4"]
    assert (tmp_path / "profile" / "simulation" / "simulation.png").stat().st_size > 1000
    assert main(["simulate", str(tmp_path / "missing")]) == 2
    assert "neither a profiling folder" in capsys.readouterr().err


def test_beta_mixture_fit_is_what_the_fitted_prior_uses():
    counts = [(c, n) for _, c, n in POOL]
    fitted = BetaMixture.fit(counts)
    arm = [Arm("grpo", CurateConfig(rule="uniform", filter=False))]
    expected = sum(
        fitted.posterior(c, n).expect(lambda a, b: zero_advantage_probability(a, b, 8)) for c, n in counts
    ) / len(counts)
    assert simulate(POOL, arm).arms[0].zero_advantage_groups == pytest.approx(expected)
