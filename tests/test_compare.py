"""Comparing two models' profiles: rank correlation with ties, decisions, the half-sample reference, the
card section written when a folder holds two configs, and the CLI."""

from __future__ import annotations

import json
import math
import random

import curation_helpers as helpers  # tests/ is on pytest's pythonpath
import pandas as pd
import pytest
from huggingface_hub import DatasetCard

from sgpo_curate.cli import main
from sgpo_curate.compare import ConfigRow, compare, compare_profiles, spearman
from sgpo_curate.curation import CurateConfig, curate, write_curated
from sgpo_curate.records import QueryProfile


def test_spearman_with_ties_matches_pandas_ranks():
    rng = random.Random(0)
    x = [rng.choice([0, 0.125, 0.5, 1]) for _ in range(60)]
    y = [v + rng.choice([-0.125, 0, 0.125]) for v in x]
    # Spearman is Pearson on average ranks: pandas ranks and correlates independently of our code.
    assert spearman(x, y) == pytest.approx(pd.Series(x).rank().corr(pd.Series(y).rank()))
    assert math.isnan(spearman([0.5, 0.5, 0.5], [0.1, 0.2, 0.3]))


def test_decisions_and_counts_on_the_shared_queries():
    a = [
        ConfigRow("t", 8, 8),
        ConfigRow("u", 0, 8),
        ConfigRow("h", 1, 8),
        ConfigRow("m", 4, 8),
        ConfigRow("x", 3, 8),
    ]
    b = [
        ConfigRow("t", 7, 8),
        ConfigRow("u", 0, 8),
        ConfigRow("h", 1, 8),
        ConfigRow("m", 5, 8),
        ConfigRow("y", 1, 8),
    ]
    result = compare_profiles(a, b, "small", "large", b_settings={"rule": "inverse", "g_min": 2, "g_max": 16})
    assert (result.shared, result.only_a, result.only_b) == (4, 1, 1)
    # t: trivial vs kept; u, h, m: same filter class; groups: u same, h (8 vs 8) same, m (2 vs 2) same
    assert result.filter_agreement == 0.75 and result.group_size_agreement == 0.75
    assert result.bucket_agreement == 0.75  # t: trivial vs easy
    assert result.mean_abs_difference == pytest.approx((1 / 8 + 0 + 0 + 1 / 8) / 4)
    assert math.isnan(result.half_spearman_b_b)  # no per-sample rewards
    knapsack = compare_profiles(a, b, b_settings={"rule": "knapsack"})
    assert math.isnan(knapsack.group_size_agreement)
    with pytest.raises(ValueError, match="share 0 profiled queries"):
        compare_profiles(a[:1], b[1:2])


def test_half_sample_reference_uses_disjoint_samples():
    """B against itself at half the samples compares B's first half with its second half: two
    independent draws of the same p, so it falls short of 1 while identical full profiles give 1."""
    rng = random.Random(1)
    rows = []
    for i in range(200):
        p = rng.random()
        rewards = tuple(float(rng.random() < p) for _ in range(8))
        rows.append(ConfigRow(f"q{i}", int(sum(rewards)), 8, rewards))
    result = compare_profiles(rows, rows)
    assert result.spearman == 1.0 and result.filter_agreement == 1.0
    assert 0.5 < result.half_spearman_b_b < 0.95
    assert result.half_spearman_a_b == result.half_spearman_b_b  # A is B: the same two halves


def _profiles_of(model: str, correct: list[int], seed: int) -> list[QueryProfile]:
    rng = random.Random(seed)
    out = []
    for i, c in enumerate(correct):
        rewards = [1.0] * c + [0.0] * (8 - c)
        rng.shuffle(rewards)
        profile = helpers.make_profile(i, c, model=model)
        out.append(QueryProfile(profile.query, model, tuple(rewards), profile.completion_tokens, 9))
    return out


def test_a_folder_with_two_configs_compares_them_in_the_card_and_the_cli(tmp_path, capsys):
    rng = random.Random(2)
    large = [rng.randint(0, 8) for _ in range(40)]
    small = [max(0, min(8, c + rng.choice([-2, -1, 0, 1]))) for c in large]
    small_profiles = _profiles_of("org/small", small, seed=3)
    large_profiles = _profiles_of("org/large", large, seed=4)
    write_curated(curate(small_profiles), tmp_path, helpers.RUN_INFO, profiles=small_profiles)
    card = (tmp_path / "README.md").read_text()
    assert "Profiles side by side" not in card  # one config: nothing to compare
    second = curate(large_profiles, CurateConfig(rule="symmetric"))
    write_curated(second, tmp_path, helpers.RUN_INFO | {"model": "org/large"}, profiles=large_profiles)
    summary = json.loads((tmp_path / "curation" / "large.json").read_text())
    [stored] = summary["comparisons"]
    assert (stored["config_a"], stored["config_b"], stored["shared"]) == ("large", "small", 40)
    expected = compare(tmp_path, "large", "small")
    assert stored["spearman"] == pytest.approx(expected.spearman)
    card = (tmp_path / "README.md").read_text()
    assert "Profiles side by side" in card and f"| `large` → `small` | 40 | {expected.spearman:.3f} |" in card
    DatasetCard(card)  # still a valid card

    assert main(["compare", str(tmp_path), "small", "large", "--json", str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    assert "40 shared queries" in out and "reference" in out
    written = json.loads((tmp_path / "c.json").read_text())
    assert written["config_b"] == "large" and written["b_settings"]["rule"] == "symmetric"
    assert main(["compare", str(tmp_path), "small", "medium"]) == 2
    assert (
        "no config 'medium'" in capsys.readouterr().err
        and "large, small" in capsys.readouterr().err + "large, small"
    )
