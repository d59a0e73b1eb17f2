"""curate(): filtering with a reason for every drop, group sizes, curriculum order; write_curated() and the CLI."""

from __future__ import annotations

import json

import curation_helpers as helpers  # tests/ is on pytest's pythonpath
import pandas as pd
import pytest

from sgpo_curate.cli import main
from sgpo_curate.curation import CurateConfig, curate, write_curated
from sgpo_curate.dataset_folder import COLUMNS, dataset_features
from sgpo_curate.policy import DROP_REASONS, inverse_rule
from sgpo_curate.registry import UnknownNameError

RUN_INFO, make_pool, make_profile, write_profile_dir = (
    helpers.RUN_INFO,
    helpers.make_pool,
    helpers.make_profile,
    helpers.write_profile_dir,
)


def test_every_dropped_profile_has_one_counted_reason():
    pool = make_pool()
    result = curate(pool)
    assert result.drops == {
        "duplicate_id": 1,
        "unverifiable": 1,
        "trivial": 4,
        "unsolvable_not_sampled": 6,
        "below_band": 0,
        "above_band": 0,
    }
    assert list(result.drops) == list(DROP_REASONS)
    assert result.num_kept == 10 + 2  # partially solved + a quarter of the 8 unsolvable
    assert result.num_kept + result.num_dropped == len(pool)
    assert len(result.rejects) == result.num_dropped
    kept_ids = set(result.dataset["id"])
    assert {r.stage for r in result.rejects} == {"curation"}
    rejected_ids = [r.key for r in result.rejects if r.reason != "duplicate_id"]
    assert kept_ids.isdisjoint(rejected_ids)
    assert kept_ids | set(rejected_ids) == {p.id for p in pool}


def test_columns_group_sizes_and_buckets():
    result = curate(make_pool(), CurateConfig(g_max=16))
    ds = result.dataset
    assert tuple(ds.column_names) == COLUMNS
    assert ds.features == dataset_features()
    rows = ds.to_list()
    by_id = {r["id"]: r for r in rows}
    assert by_id["toy/13"]["pass_rate"] == 0.125 and by_id["toy/13"]["group_size"] == 8
    assert by_id["toy/13"]["difficulty"] == "hard"
    assert by_id["toy/16"]["group_size"] == 3 and by_id["toy/16"]["difficulty"] == "medium"  # 3/8
    assert by_id["toy/21"]["group_size"] == 2 and by_id["toy/21"]["difficulty"] == "easy"  # 7/8
    assert by_id["toy/13"]["num_correct"] == 1, "the first profile of a duplicated id wins"
    unsolved = [r for r in rows if r["num_correct"] == 0]
    assert len(unsolved) == 2 and all(
        r["group_size"] == 16 and r["difficulty"] == "unsolved" for r in unsolved
    )
    for r in rows:
        if r["num_correct"]:
            assert r["group_size"] == inverse_rule(r["num_correct"] / r["num_samples"], 2, 16)
    code = by_id["toy/22"]
    assert code["domain"] == "code" and code["tests"] == "assert f(1) == 2" and code["answer"] is None
    assert rows[0]["prompt"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": rows[0]["prompt"][1]["content"]},
    ]


def test_rows_are_in_easy_to_hard_order_with_ranks():
    ds = curate(make_pool()).dataset
    rates = ds["pass_rate"]
    assert list(rates) == sorted(rates, reverse=True)
    assert list(ds["curriculum_rank"]) == list(range(len(ds)))
    hard_first = curate(make_pool(), CurateConfig(order="hard-first")).dataset
    assert list(hard_first["pass_rate"]) == sorted(rates)


def test_unsolvable_sub_sample_is_seeded_and_independent_of_input_order():
    pool = make_pool()
    unsolved = {r["id"] for r in curate(pool).dataset.to_list() if r["num_correct"] == 0}
    again = {r["id"] for r in curate(list(reversed(pool))).dataset.to_list() if r["num_correct"] == 0}
    other_seeds = [
        {r["id"] for r in curate(pool, CurateConfig(seed=s)).dataset.to_list() if r["num_correct"] == 0}
        for s in range(1, 6)
    ]
    assert unsolved == again
    assert any(s != unsolved for s in other_seeds)
    assert curate(pool, CurateConfig(unsolvable_keep_fraction=0.0)).drops["unsolvable_not_sampled"] == 8
    assert curate(pool, CurateConfig(unsolvable_keep_fraction=1.0)).drops["unsolvable_not_sampled"] == 0


def test_pass_rate_band_drops_partially_solved_with_reasons():
    result = curate(make_pool(), CurateConfig(min_pass_rate=0.2, max_pass_rate=0.8))
    assert result.drops["below_band"] == 2  # 1/8 twice
    assert result.drops["above_band"] == 2  # 7/8 twice
    assert all(0.2 <= r["pass_rate"] <= 0.8 for r in result.dataset.to_list() if r["num_correct"])
    assert result.drops["unsolvable_not_sampled"] == 6, (
        "the band leaves unsolvable queries to the keep fraction"
    )


def test_expected_signal_against_uniform_grpo():
    result = curate(make_pool(), CurateConfig(uniform_group_size=8))
    signal = result.signal
    assert signal.rollouts == sum(result.dataset["group_size"])
    assert signal.uniform_rollouts == 8 * result.num_kept
    # plain GRPO trains on every verifiable, unique profile: 4 trivial + 8 unsolvable + 10 partial
    assert signal.unfiltered_queries == 22 and signal.unfiltered_rollouts == 176
    assert signal.rollouts < signal.uniform_rollouts < signal.unfiltered_rollouts
    assert 0 < result.posterior_informative_fraction < 1
    assert 0 <= result.group_size_uncertain_fraction <= 1
    uniform = curate(make_pool(), CurateConfig(rule="uniform", uniform_group_size=8)).signal
    assert uniform.rollouts == uniform.uniform_rollouts
    assert uniform.informative_groups == pytest.approx(uniform.uniform_informative_groups)


def test_a_rule_from_user_code_by_dotted_path():
    result = curate(make_pool(), CurateConfig(rule="sgpo_curate.policy:symmetric_rule", g_max=16))
    by_id = {r["id"]: r for r in result.dataset.to_list()}
    assert by_id["toy/21"]["group_size"] == 8  # 7/8: failures are the rare outcome
    assert by_id["toy/13"]["group_size"] == 8  # 1/8


def test_beta_estimator_changes_pass_rates_not_filtering():
    raw = curate(make_pool())
    beta = curate(make_pool(), CurateConfig(estimator="beta"))
    assert beta.drops == raw.drops
    rows = {r["id"]: r for r in beta.dataset.to_list()}
    assert rows["toy/13"]["pass_rate"] == pytest.approx(0.2)  # (1 + 1) / (8 + 2)
    assert rows["toy/13"]["group_size"] == 5


def test_config_checks_and_single_model():
    with pytest.raises(ValueError, match="g_min <= g_max"):
        CurateConfig(g_min=8, g_max=4)
    with pytest.raises(ValueError, match="unsolvable_keep_fraction"):
        CurateConfig(unsolvable_keep_fraction=1.5)
    with pytest.raises(ValueError, match="order"):
        CurateConfig(order="longest-first")
    with pytest.raises(ValueError, match="min_pass_rate"):
        CurateConfig(min_pass_rate=0.9, max_pass_rate=0.1)
    with pytest.raises(
        UnknownNameError, match="valid group-size rules: coverage, inverse, knapsack, symmetric, uniform"
    ):
        CurateConfig(rule="sqrt")
    with pytest.raises(ValueError, match="exactly one model"):
        curate([make_profile(0, 3), make_profile(1, 3, model="other/model")])
    assert all(f.metadata.get("help") for f in CurateConfig.__dataclass_fields__.values())


def test_write_curated_round_trips_through_load_dataset(tmp_path):
    from datasets import load_dataset

    result = curate(make_pool())
    files = write_curated(result, tmp_path / "out", RUN_INFO)
    assert files.data_file == tmp_path / "out" / "data" / "tiny-llama" / "train-00000-of-00001.parquet"
    # A cache of its own: datasets 5.2 caches a local folder by its name and config, not its content.
    loaded = load_dataset(str(tmp_path / "out"), "tiny-llama", split="train", cache_dir=str(tmp_path / "c"))
    assert loaded.to_list() == result.dataset.to_list()
    rejects = [json.loads(line) for line in files.rejects.read_text().splitlines()]
    assert len(rejects) == result.num_dropped
    assert {r["reason"] for r in rejects} == {
        "duplicate_id",
        "unverifiable",
        "trivial",
        "unsolvable_not_sampled",
    }
    assert all(p.stat().st_size > 1000 for p in files.plots.values())


def test_raw_config_keeps_every_profiled_sample(tmp_path):
    from datasets import load_dataset
    from huggingface_hub import DatasetCard

    pool = make_pool()
    result = curate(pool)
    write_curated(result, tmp_path / "out", RUN_INFO, profiles=pool)
    raw = load_dataset(str(tmp_path / "out"), "tiny-llama-raw", split="train", cache_dir=str(tmp_path / "c"))
    assert raw.num_rows == len(pool)  # dropped queries included: the raw config is what profiling saw
    assert sorted((row["id"], row["rewards"]) for row in raw) == sorted(
        (p.id, list(p.rewards)) for p in pool
    )  # the pool's duplicate id appears twice, as profiled
    configs = {c["config_name"] for c in DatasetCard.load(tmp_path / "out" / "README.md").data.configs}
    assert configs == {"tiny-llama", "tiny-llama-raw"}


def test_write_curated_refuses_an_empty_config(tmp_path):
    result = curate([make_profile(i, 8) for i in range(5)])
    assert result.num_kept == 0 and result.drops["trivial"] == 5
    with pytest.raises(ValueError, match="no query of org/tiny-llama survived curation"):
        write_curated(result, tmp_path / "out", RUN_INFO)
    assert not (tmp_path / "out" / "data").exists()


def test_cli_curate_writes_dataset_and_prints_summary(tmp_path, capsys):
    profile_dir = write_profile_dir(tmp_path / "profiles", make_pool())
    code = main(
        [
            "curate",
            str(profile_dir),
            "--out",
            str(tmp_path / "out"),
            "--rule",
            "symmetric",
            "--g-max",
            "8",
            "--unsolvable-keep",
            "0.5",
            "--config-name",
            "tiny",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "kept 14 of 24 profiles" in out  # 10 partial + 4 of 8 unsolvable
    assert "dropped      4  trivial" in out
    assert "rollouts per epoch" in out
    table = pd.read_parquet(tmp_path / "out" / "data" / "tiny" / "train-00000-of-00001.parquet")
    assert len(table) == 14 and table["group_size"].max() == 8
    summary = json.loads((tmp_path / "out" / "curation" / "tiny.json").read_text())
    assert summary["run_info"]["model_revision"] == "0123abcd"
    assert summary["curate_config"]["rule"] == "symmetric"


def test_cli_curate_bad_input_exits_2(tmp_path, capsys):
    profile_dir = write_profile_dir(tmp_path / "profiles", make_pool())
    assert (
        main(["curate", str(profile_dir), "--out", str(tmp_path / "o"), "--g-min", "9", "--g-max", "4"]) == 2
    )
    assert "g_min <= g_max" in capsys.readouterr().err
    assert main(["curate", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2


def test_knapsack_splits_plain_grpo_budget_over_the_kept_queries():
    from sgpo_curate.policy import group_value

    result = curate(make_pool(), CurateConfig(rule="knapsack", uniform_group_size=8, g_max=16))
    rows = result.dataset.to_list()
    assert sum(r["group_size"] for r in rows) == 8 * len(rows)  # the same rollouts as uniform G on them
    assert all(2 <= r["group_size"] <= 16 for r in rows)
    # moving one rollout between any two queries never raises the total expected signal (the split is optimal)
    posterior = [(1 + r["num_correct"], 1 + r["num_samples"] - r["num_correct"]) for r in rows]
    for i, (a, b) in enumerate(posterior):
        for j, (c, d) in enumerate(posterior):
            gi, gj = rows[i]["group_size"], rows[j]["group_size"]
            if i == j or gi <= 2 or gj >= 16:
                continue
            moved = group_value(a, b, gi - 1) + group_value(c, d, gj + 1)
            assert moved <= group_value(a, b, gi) + group_value(c, d, gj) + 1e-12


def test_filtering_is_a_policy_option():
    unfiltered = curate(make_pool(), CurateConfig(filter=False, rule="uniform"))
    kept = {r["id"] for r in unfiltered.dataset}
    assert {f"toy/{i}" for i in range(12)} <= kept  # trivial and every unsolvable query stay
    assert unfiltered.drops["trivial"] == unfiltered.drops["unsolvable_not_sampled"] == 0
    assert unfiltered.drops["unverifiable"] == 1 and unfiltered.drops["duplicate_id"] == 1


def test_coverage_rule_through_curate():
    result = curate(make_pool(), CurateConfig(rule="coverage", coverage_probability=0.5, g_max=16))
    by_id = {r["id"]: r for r in result.dataset}
    assert by_id["toy/17"]["group_size"] == 2  # p̂ = 4/8: a pair is informative half of the time
    assert by_id["toy/13"]["group_size"] == 6  # p̂ = 1/8: 1 - (7/8)^6 - (1/8)^6 >= 0.5, at 5 it is not
