"""`benchmarks/validate_simulator.py --study` on a study-shaped results.json (no study is run).

What it guards: the validator reads what `examples/reproduce_savings.py` writes (each pool's counts from
`Pools.summary`, each arm's curation from `curation_record`, the measured shares of `summarize_arm`), curates
every seed's rows exactly as the study did (the run's seed picks the kept unsolvable queries; `filter_2look`
reads the second look), takes the first fifth of training as measured, and lists the arms the trainer
re-allocates online as not simulated.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from sgpo_curate.records import QueryProfile

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


sys.path.insert(0, str(ROOT / "benchmarks"))  # the validator imports its benchmark neighbours by name
validator = _load("validate_simulator", ROOT / "benchmarks" / "validate_simulator.py")
study = sys.modules.get("reproduce_savings") or _load(
    "reproduce_savings", ROOT / "examples" / "reproduce_savings.py"
)

ARMS = ("grpo", "filter_only", "sgpo", "filter_2look", "online_uniform", "dapo")
SEEDS = 3


def _profile(a: int, b: int, correct: int, samples: int) -> QueryProfile:
    return QueryProfile(
        query=study.make_query(a, b),
        model="toy",
        rewards=(1.0,) * correct + (0.0,) * (samples - correct),
        completion_tokens=(7,) * samples,
        prompt_tokens=12,
    )


@pytest.fixture()
def pools():
    """A broad pool of 24 additions: 6 at 0/8 (three of them solved in the second look), 3 at 8/8, the rest
    in between."""
    correct = [0] * 6 + [8] * 3 + [1, 2, 3, 4, 5, 6, 7] * 2 + [4]
    pool = [_profile(10 + i, 20 + i, c, 8) for i, c in enumerate(correct)]
    second = {p.id: _profile(10 + i, 20 + i, i % 2, 24) for i, p in enumerate(pool) if p.num_correct == 0}
    return study.Pools("broad", pool, [], second, 1.0, 1.0, 1.0)


def _results(pools, tmp_path: Path) -> Path:
    settings = study.Settings()
    measured = {
        name: {
            "seeds": SEEDS,
            "zero_adv_groups": [0.30, 0.32, 0.34],
            "zero_adv_rollouts": [0.30, 0.32, 0.34],
            "zero_adv_by_fifth": [0.41 + i / 100, 0.35, 0.3, 0.3, 0.3],
            "rollouts": 800.0,
            "matched_tf": {"mean": i / 100},
        }
        for i, name in enumerate(ARMS)
    }
    results = {
        "pools": {"broad": pools.summary()},
        "curation": {name: study.curation_record(study.ARMS[name], settings) for name in ARMS},
        "summary": {"broad": measured},
    }
    (tmp_path / "results.json").write_text(json.dumps(results))
    return tmp_path


def test_reads_a_study_and_reproduces_each_arms_allocation(pools, tmp_path):
    rows, skipped = validator.study_rows(_results(pools, tmp_path))
    by_arm = {r["arm"]: r for r in rows}
    assert set(by_arm) == {"grpo", "filter_only", "sgpo", "filter_2look"}
    assert set(skipped) == {"online_uniform", "dapo"} and "dynamic" in skipped["dapo"]
    settings = study.Settings()
    for name, row in by_arm.items():
        seeds = [study.arm_rows(study.ARMS[name], pools, settings, seed) for seed in range(SEEDS)]
        if name == "grpo":  # rows without profile columns: every query at G = 8
            assert row["fitted"]["rollouts"] == 8 * len(pools.pool)
            continue
        rollouts = [sum(r["group_size"] for r in rows_) for rows_ in seeds]
        assert row["fitted"]["rollouts"] == pytest.approx(sum(rollouts) / SEEDS), name
        assert row["fitted"]["queries"] == pytest.approx(sum(map(len, seeds)) / SEEDS), name
        assert row["flat"]["rollouts"] == row["fitted"]["rollouts"]
    # the second look drops the queries still at 0 and keeps those it solved, with all 32 samples
    assert by_arm["filter_2look"]["fitted"]["queries"] == 24 - 3 - 3
    assert by_arm["sgpo"]["curriculum"] and not by_arm["filter_only"]["curriculum"]
    assert by_arm["grpo"]["measured"]["zero_advantage_rollouts_first_fifth"] == pytest.approx(0.41)
    assert by_arm["grpo"]["measured"]["zero_advantage_rollouts"] == pytest.approx(0.32)
    assert by_arm["grpo"]["passes"] == pytest.approx(800 / (8 * 24))
    payload, markdown = validator.study_section(rows, skipped, "a synthetic study")
    assert "`dapo`" in markdown and payload["rankings"]["broad"]["informative_rollouts"]["pairs"] > 0


def test_a_results_json_without_curation_says_how_to_fix_it(pools, tmp_path):
    folder = _results(pools, tmp_path)
    results = json.loads((folder / "results.json").read_text())
    del results["curation"]
    (folder / "results.json").write_text(json.dumps(results))
    with pytest.raises(ValueError, match="reproduce_savings.py"):
        validator.study_rows(folder)
