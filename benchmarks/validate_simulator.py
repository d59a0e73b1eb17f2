"""Validate `sgpo-curate simulate` against measured training runs: zero-advantage share and signal ranking.

For every arm of a set of runs, the simulator's prediction from the pool's profile (`simulate`, fitted and
flat priors) is set next to what the trainer measured:
- zero-advantage share of groups and of rollouts (groups whose rewards were all equal);
- signal per rollout, sum over groups of s·f/G over the rollouts (s successes, f failures: an unbiased
  estimate of (G - 1)·p(1-p) per group, the quantity the simulator predicts), and the ranking of the arms
  by it.

Two sources of runs:
- `--study DIR`: the results folder of `examples/reproduce_savings.py` (its `results.json`: per arm the
  measured zero-advantage shares over the run, the pool profiles). The study's shares are averages over the
  whole run, while the policy sharpens: the simulator predicts the start of training.
- `--run-small`: a few arms trained here by `AdaptiveGRPOTrainer` on a tiny pool (the toy of
  `benchmarks/toy_addition.py`), each for two epochs of its curated rows at a learning rate low enough that
  the pass rates stay where the profile saw them; measured from the trainer's `pass_rate_trace.parquet`.

    python benchmarks/validate_simulator.py --run-small                # ~5 min on 2 cores (toy model cached)
    python benchmarks/validate_simulator.py --study examples/results   # once the study's results carry profiles
Writes benchmarks/results/simulator_validation.md and .json.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from common import RESULTS, write_table
from toy_addition import ExactAnswer, toy_pool, train_toy

from sgpo_curate.config import ProfileConfig, SamplingConfig
from sgpo_curate.curation import CurateConfig, curate
from sgpo_curate.profiling import load_profiles, profile
from sgpo_curate.samplers import get_sampler
from sgpo_curate.simulate import Arm, default_arms, simulate

ARMS = ("inverse", "knapsack")


# --------------------------------------------------------------------------- measuring a run


def measured_from_trace(trace: list[dict[str, Any]], first_epoch: bool = True) -> dict[str, float]:
    """Zero-advantage shares and signal per rollout from a planner trace (one record per planned group);
    `first_epoch` keeps each row's first group only."""
    seen: set[int] = set()
    groups = []
    for record in trace:
        if first_epoch and record["row"] in seen:
            continue
        seen.add(record["row"])
        s, f = record["successes"], record["failures"]
        if s + f > 0:
            groups.append((s, f, record["rollouts"] - record["group_size"]))
    rollouts = sum(s + f for s, f, _ in groups)
    zero = [(s, f) for s, f, _ in groups if s == 0 or f == 0]
    share = len(zero) / len(groups)
    return {
        "groups": len(groups),
        "zero_advantage_groups": share,
        "zero_advantage_groups_se": math.sqrt(share * (1 - share) / len(groups)),
        "zero_advantage_rollouts": sum(s + f for s, f in zero) / rollouts,
        "signal_per_rollout": sum(s * f / (s + f) for s, f, _ in groups) / rollouts,
        "padding_share": sum(pad for _, _, pad in groups) / rollouts,
    }


def train_arm(
    model_dir: str, profiles, arm: Arm, out: Path, learning_rate: float, epochs: int
) -> dict[str, float]:
    """`epochs` epochs of the arm's curated rows with `AdaptiveGRPOTrainer`; what its trace measured (every
    group: at a learning rate this low the pass rates stay where the profile saw them)."""
    import pandas as pd

    from sgpo_curate import AdaptiveGRPOConfig, AdaptiveGRPOTrainer, VerifierReward

    dataset = curate(profiles, arm.config).dataset
    budget = 64
    rollouts = sum(dataset["group_size"])
    args = AdaptiveGRPOConfig(
        output_dir=str(out),
        use_cpu=True,
        bf16=False,
        report_to=[],
        save_strategy="no",
        max_steps=math.ceil(epochs * rollouts / budget),
        per_device_train_batch_size=budget,
        num_generations=arm.config.uniform_group_size,
        max_group_size=arm.config.g_max,
        max_completion_length=7,
        temperature=1.0,
        learning_rate=learning_rate,
        logging_strategy="no",
        seed=0,
        disable_tqdm=True,
        shuffle_dataset=True,
    )
    trainer = AdaptiveGRPOTrainer(
        model=model_dir, reward_funcs=VerifierReward(ExactAnswer()), args=args, train_dataset=dataset
    )
    trainer.train()
    trace = pd.read_parquet(out / "pass_rate_trace.parquet").to_dict("records")
    return measured_from_trace(trace, first_epoch=False) | {"steps": args.max_steps}


def run_small(work: Path, pool_size: int, learning_rate: float, epochs: int) -> list[dict[str, Any]]:
    model_dir = train_toy(work / "h128x900", steps=900, batch_size=64, save_at=(300,))
    out = work / "profiles" / f"validation-{pool_size}"
    if not (out / "profiles.parquet").exists():
        sampling = SamplingConfig(k=8, max_new_tokens=7, batch_queries=64)
        sampler = get_sampler("transformers", model_dir)
        queries = toy_pool(pool_size, seed=11, mix="broad")
        profile(queries, sampler, ExactAnswer(), ProfileConfig(out_dir=str(out), progress=False), sampling)
    profiles = load_profiles(out)
    counts = [(p.id, p.num_correct, p.num_samples) for p in profiles]
    arms = default_arms(rules=ARMS)
    predictions = {prior: simulate(counts, arms, prior=prior) for prior in ("fitted", "flat")}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arm in arms:
            measured = train_arm(model_dir, profiles, arm, Path(tmp) / arm.name, learning_rate, epochs)
            rows.append(_row("toy/broad", arm.name, measured, predictions))
    return rows


def _row(pool: str, arm: str, measured: dict[str, float], predictions: dict) -> dict[str, Any]:
    row = {"pool": pool, "arm": arm, "measured": measured}
    for prior, sim in predictions.items():
        predicted = next(a for a in sim.arms if a.arm == arm)
        row[prior] = {
            "zero_advantage_groups": predicted.zero_advantage_groups,
            "zero_advantage_rollouts": predicted.zero_advantage_rollouts,
            "signal_per_rollout": predicted.signal_per_rollout,
        }
    return row


# --------------------------------------------------------------------------- the study's results


def study_rows(results_dir: Path) -> list[dict[str, Any]]:
    """Arms of `examples/reproduce_savings.py`'s results.json with measured shares and the pools' profiles.

    Expects per mix a profile (`profiles[mix]["profile_dir"]`, relative to the results folder, or
    `profiles[mix]["counts"]` as [id, num_correct, num_samples]) and per arm row (`summary.table`) the
    measured `zero_adv_groups` / `zero_adv_rollouts` (lists over seeds) and the arm's curation
    (`curate_config`, or the arm names `grpo`, `sgpo`, `filter_only`, ... with the run's settings).
    """
    results = json.loads((results_dir / "results.json").read_text())
    settings = results.get("settings", {})
    rows = []
    for entry in results["summary"]["table"]:
        counts = _study_counts(results_dir, results["profiles"][entry["mix"]], entry["mix"])
        arm = Arm(entry["arm"], _study_config(entry, settings))
        measured = {
            "zero_advantage_groups": _mean(entry["zero_adv_groups"]),
            "zero_advantage_rollouts": _mean(entry["zero_adv_rollouts"]),
        }
        for key in ("signal_per_rollout", "gain_per_flop", "pool_grpo_gain"):
            if key in entry:
                measured[key] = _mean(entry[key]) if isinstance(entry[key], list) else entry[key]
        predictions = {prior: simulate(counts, [arm], prior=prior) for prior in ("fitted", "flat")}
        rows.append(_row(entry["mix"], entry["arm"], measured, predictions))
    return rows


def _study_counts(results_dir: Path, pool: dict[str, Any], mix: str) -> list[tuple[str, int, int]]:
    if "counts" in pool:
        return [(str(i), int(c), int(n)) for i, c, n in pool["counts"]]
    if "profile_dir" in pool:
        return [
            (p.id, p.num_correct, p.num_samples) for p in load_profiles(results_dir / pool["profile_dir"])
        ]
    raise ValueError(
        f"results.json has no per-query profile of pool {mix!r} (only {sorted(pool)}); the simulator needs "
        "profiles[mix]['profile_dir'] or profiles[mix]['counts']"
    )


STUDY_ARMS = {  # the arms of examples/reproduce_savings.py: filter, rule
    "grpo": (False, "uniform"),
    "sgpo": (True, "inverse"),
    "filter_only": (True, "uniform"),
    "group_size_only": (False, "inverse"),
    "curriculum_only": (False, "uniform"),
    "rule_symmetric": (True, "symmetric"),
    "rule_uniform": (True, "uniform"),
}


def _study_config(entry: dict[str, Any], settings: dict[str, Any]) -> CurateConfig:
    if "curate_config" in entry:
        return CurateConfig(**entry["curate_config"])
    if entry["arm"] not in STUDY_ARMS:
        raise ValueError(f"arm {entry['arm']!r}: no curate_config in results.json and not a known study arm")
    filtering, rule = STUDY_ARMS[entry["arm"]]
    keys = ("g_min", "g_max", "uniform_group_size", "unsolvable_keep_fraction")
    return CurateConfig(filter=filtering, rule=rule, **{k: settings[k] for k in keys if k in settings})


def _mean(values) -> float:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else math.nan


# --------------------------------------------------------------------------- report


def ranking(rows: list[dict[str, Any]], source: str, key: str = "signal_per_rollout") -> list[str]:
    present = [r for r in rows if key in r[source] and math.isfinite(r[source][key])]
    return [r["arm"] for r in sorted(present, key=lambda r: -r[source][key])]


def report(rows: list[dict[str, Any]], source: str) -> None:
    table = []
    for r in rows:
        m, f, b = r["measured"], r["fitted"], r["flat"]
        se = m.get("zero_advantage_groups_se")
        table.append(
            [
                r["pool"],
                r["arm"],
                f"{m['zero_advantage_groups']:.3f}" + (f" ± {se:.3f}" if se is not None else ""),
                f"{f['zero_advantage_groups']:.3f}",
                f"{b['zero_advantage_groups']:.3f}",
                f"{m['zero_advantage_rollouts']:.3f}",
                f"{f['zero_advantage_rollouts']:.3f}",
                f"{m.get('signal_per_rollout', math.nan):.4f}",
                f"{f['signal_per_rollout']:.4f}",
                f"{m['padding_share']:.3f}" if "padding_share" in m else "",
            ]
        )
    summary = {}
    for prior in ("fitted", "flat"):
        errors = [
            abs(r[prior]["zero_advantage_groups"] - r["measured"]["zero_advantage_groups"]) for r in rows
        ]
        summary[prior] = {
            "mean_abs_error_zero_adv_groups": sum(errors) / len(errors),
            "max_abs_error_zero_adv_groups": max(errors),
        }
    pools = sorted({r["pool"] for r in rows})
    rankings = {
        pool: {
            "measured": ranking([r for r in rows if r["pool"] == pool], "measured"),
            "predicted": ranking([r for r in rows if r["pool"] == pool], "fitted"),
        }
        for pool in pools
    }
    (RESULTS / "simulator_validation.json").write_text(
        json.dumps({"source": source, "rows": rows, "summary": summary, "rankings": rankings}, indent=2)
        + "\n"
    )
    notes = [
        f"Source: {source}. Measured zero-advantage shares carry ± one standard error (groups are Bernoulli). "
        "The trainer pads each generation batch to its budget with extra rollouts where they add most signal; "
        "the simulator plans the curated group sizes without padding."
    ]
    for prior, s in summary.items():
        notes.append(
            f"- {prior} prior: zero-advantage share of groups off by {s['mean_abs_error_zero_adv_groups']:.3f} on "
            f"average, {s['max_abs_error_zero_adv_groups']:.3f} at most."
        )
    for pool, ranks in rankings.items():
        if ranks["measured"]:
            same = "same" if ranks["measured"] == ranks["predicted"] else "different"
            notes.append(
                f"- {pool}: signal ranking measured {' > '.join(ranks['measured'])}; predicted "
                f"{' > '.join(ranks['predicted'])} ({same})."
            )
    write_table(
        "simulator_validation",
        "Simulator vs measured runs: zero-advantage share and signal per rollout",
        [
            "pool",
            "arm",
            "zero-adv groups measured",
            "predicted (fitted)",
            "predicted (flat)",
            "zero-adv rollouts measured",
            "predicted (fitted)",
            "signal/rollout measured",
            "predicted (fitted)",
            "padding rollouts (not simulated)",
        ],
        table,
        "\n".join(notes),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--study", help="The study's results folder (results.json).")
    parser.add_argument("--run-small", action="store_true", help="Train a few arms on a tiny pool here.")
    parser.add_argument("--work", default="runs/toy", help="Cache of the toy model and pool profile.")
    parser.add_argument("--pool-size", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=1e-6)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    if not args.study and not args.run_small:
        parser.error("pass --study DIR or --run-small")
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    torch.set_num_threads(1)
    if args.study:
        report(study_rows(Path(args.study)), f"the study's measured runs in {args.study}")
    else:
        rows = run_small(Path(args.work), args.pool_size, args.learning_rate, args.epochs)
        report(
            rows,
            f"a small run made here: toy model, {args.pool_size}-query broad pool profiled at k=8, each arm trained "
            f"{args.epochs} epochs of its curated rows with AdaptiveGRPOTrainer (64 rollouts per step, lr "
            f"{args.learning_rate}: the pass rates stay put), measured on every trained group",
        )


if __name__ == "__main__":
    main()
