"""Validate `sgpo-curate simulate` against measured training runs: zero-advantage share and signal ranking.

For every arm of a set of runs, the simulator's prediction from the pool's profile (`simulate`, fitted and
flat priors) is set next to what the trainer measured:
- zero-advantage share of groups and of rollouts (groups whose rewards were all equal);
- signal per rollout, sum over groups of s·f/G over the rollouts (s successes, f failures: an unbiased
  estimate of (G - 1)·p(1-p) per group, the quantity the simulator predicts), and the ranking of the arms
  by it.

Two sources of runs:
- `--study DIR`: the results folder of `examples/reproduce_savings.py` (its `results.json`: each pool's
  per-query counts, each arm's curation, per arm the measured zero-advantage shares over seeds and by fifth
  of training). Its policy learns while it trains, so pass rates drift from the profiled base: the
  prediction is set against the first fifth of training and the whole run. Arms the trainer re-allocates
  while it runs (online p̂, DAPO's dynamic sampling) are listed as not simulated. Runs cached before the
  study recorded per-group successes have no measured signal per rollout; the ranking then uses the
  informative share of rollouts, and the held-out gain at matched FLOPs as the outcome.
- `--run-small`: a few arms trained here by `AdaptiveGRPOTrainer` on a tiny pool (the toy of
  `benchmarks/toy_addition.py`), each for two epochs of its curated rows at a learning rate low enough that
  the pass rates stay where the profile saw them; measured from the trainer's `pass_rate_trace.parquet`.

    python benchmarks/validate_simulator.py --run-small                # ~5 min on 2 cores (toy model cached)
    python benchmarks/validate_simulator.py --study examples/results --readme README.md   # seconds
Writes its section of benchmarks/results/simulator_validation.md and .json (keeping the other one);
`--readme` rewrites the README's marked study-validation block.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import RESULTS, rewrite_readme_block, table_markdown
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

PRIOR_NAMES = ("fitted", "flat")


def unsimulated(trainer: dict[str, Any]) -> str | None:
    """Why the simulator cannot represent an arm from its trainer fields (None when it can): it plans the
    curated rows once, from the profile, as `curate` allocates them."""
    if trainer.get("dynamic"):
        return "dynamic sampling regenerates groups until a batch holds only informative ones"
    if trainer.get("online") or trainer.get("trainer_rule") or trainer.get("budget_group_size"):
        return "online: the trainer re-decides queries and group sizes each batch from its running p̂"
    if trainer.get("selection", "order") != "order":
        return "queries are drawn by the trainer's running estimate of their signal"
    return None


def study_rows(results_dir: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every arm of `examples/reproduce_savings.py`'s results.json that the simulator can represent, with the
    prediction from its pool's profile and what the runs measured; and the arms it cannot, with why.

    Reads per mix `pools[mix]["counts"]` ([id, num_correct, num_samples], the strict k-sample profile the
    arms were curated from) and `second_look_counts`; per arm `curation[arm]` (its `curate_config`, which
    profile it read, its trainer fields); per (mix, arm) `summary[mix][arm]`: measured zero-advantage shares
    over seeds, by fifth of training, signal per rollout (runs that recorded it), held-out gain at matched
    FLOPs. Each seed's allocation is simulated with the run's seed (it picks the kept unsolvable queries),
    and the predictions are averaged over seeds as the measurements are.
    """
    path = results_dir / "results.json"
    results = json.loads(path.read_text())
    if "curation" not in results or "summary" not in results:
        raise ValueError(
            f"{path} has no `curation` or no `summary` block: rerun `python examples/reproduce_savings.py --out "
            f"{results_dir}` (finished runs are reused from its work/ cache) so results.json records each arm's curation"
        )
    rows, skipped = [], {}
    for mix, arms in results["summary"].items():
        for name, summary in arms.items():
            record = results["curation"][name]
            why = unsimulated(record["trainer"])
            if why:
                skipped[name] = why
                continue
            counts = study_counts(results["pools"][mix], record["profile"], mix)
            configs = [CurateConfig(**record["curate_config"], seed=seed) for seed in range(summary["seeds"])]
            predicted = {prior: _seed_mean_prediction(counts, name, configs, prior) for prior in PRIOR_NAMES}
            rows.append(
                {
                    "pool": mix,
                    "arm": name,
                    "curriculum": record["curate_config"]["order"] == "easy-to-hard",
                    "passes": summary["rollouts"] / predicted["fitted"]["rollouts"],
                    "measured": _study_measured(summary, name),
                    **predicted,
                }
            )
    return rows, skipped


def study_counts(pool: dict[str, Any], profile: str, mix: str) -> list[tuple[str, int, int]]:
    """The counts an arm's curation read: the first look, or with the second look's samples added."""
    if "counts" not in pool:
        raise ValueError(
            f"results.json: pool {mix!r} has no per-query `counts` (only {sorted(pool)}); rerun "
            "examples/reproduce_savings.py so results.json records them"
        )
    counts = {str(i): (int(c), int(n)) for i, c, n in pool["counts"]}
    if profile == "first_and_second_look":
        for i, c, n in pool["second_look_counts"]:
            first_c, first_n = counts[str(i)]
            counts[str(i)] = (first_c + int(c), first_n + int(n))
    elif profile != "first_look":
        raise ValueError(f"results.json: unknown profile {profile!r} (first_look, first_and_second_look)")
    return [(i, c, n) for i, (c, n) in counts.items()]


def _seed_mean_prediction(
    counts: list[tuple[str, int, int]], name: str, configs: list[CurateConfig], prior: str
) -> dict[str, float]:
    sim = simulate(counts, [Arm(f"{name}/seed{c.seed}", c) for c in configs], prior=prior)
    keys = ("zero_advantage_groups", "zero_advantage_rollouts", "signal_per_rollout", "rollouts", "queries")
    return {key: _mean([getattr(a, key) for a in sim.arms]) for key in keys}


def _study_measured(summary: dict[str, Any], arm: str) -> dict[str, float]:
    rollouts = summary["zero_adv_rollouts"]
    measured = {
        "zero_advantage_groups": _mean(summary["zero_adv_groups"]),
        "zero_advantage_rollouts": _mean(rollouts),
        "zero_advantage_rollouts_seed_sd": _sd(rollouts),
        "zero_advantage_rollouts_first_fifth": summary["zero_adv_by_fifth"][0],
        "informative_rollouts": 1 - _mean(rollouts),
        "heldout_vs_grpo": 0.0 if arm == "grpo" else summary["matched_tf"]["mean"],
    }
    if "signal_per_rollout" in summary:
        measured["signal_per_rollout"] = _mean(summary["signal_per_rollout"])
        measured["signal_per_rollout_first_fifth"] = summary["signal_by_fifth"][0]
    return measured


def _mean(values) -> float:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return sum(values) / len(values) if values else math.nan


def _sd(values) -> float:
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return math.nan
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


# --------------------------------------------------------------------------- rankings


def ranking(rows: list[dict[str, Any]], source: str, key: str = "signal_per_rollout") -> list[str]:
    present = [r for r in rows if key in r[source] and math.isfinite(r[source][key])]
    return [r["arm"] for r in sorted(present, key=lambda r: -r[source][key])]


def pair_agreement(rows: list[dict[str, Any]], predicted: str, measured: str) -> dict[str, Any]:
    """How many pairs of arms the prediction orders as the measurement does (pairs the prediction ties, e.g.
    arms with the same allocation, are left out), and the two rankings, ties joined by `=`."""
    same = total = 0
    for i, a in enumerate(rows):
        for b in rows[i + 1 :]:
            dp = a["fitted"][predicted] - b["fitted"][predicted]
            if abs(dp) < 1e-12:
                continue
            total += 1
            same += (dp > 0) == (a["measured"][measured] - b["measured"][measured] > 0)
    return {
        "pairs_same_order": same,
        "pairs": total,
        "predicted": _ranked(rows, "fitted", predicted),
        "measured": _ranked(rows, "measured", measured),
    }


def _ranked(rows: list[dict[str, Any]], source: str, key: str) -> str:
    ordered = sorted(rows, key=lambda r: -r[source][key])
    text = ordered[0]["arm"]
    for before, row in zip(ordered, ordered[1:], strict=False):
        tied = abs(before[source][key] - row[source][key]) < 1e-12
        text += (" = " if tied else " > ") + row["arm"]
    return text


# --------------------------------------------------------------------------- reports


def run_small_section(rows: list[dict[str, Any]], source: str) -> tuple[dict[str, Any], str]:
    """The `--run-small` section: its JSON payload and markdown."""
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
    summary = {
        prior: _errors(rows, prior, "zero_advantage_groups", "zero_advantage_groups") for prior in PRIOR_NAMES
    }
    pools = sorted({r["pool"] for r in rows})
    rankings = {
        pool: {
            "measured": ranking([r for r in rows if r["pool"] == pool], "measured"),
            "predicted": ranking([r for r in rows if r["pool"] == pool], "fitted"),
        }
        for pool in pools
    }
    notes = [
        f"Source: {source}. Measured zero-advantage shares carry ± one standard error (groups are Bernoulli). "
        "The trainer pads each generation batch to its budget with extra rollouts where they add most signal; "
        "the simulator plans the curated group sizes without padding."
    ]
    for prior, s in summary.items():
        notes.append(
            f"- {prior} prior: zero-advantage share of groups off by {s['mean_abs_error']:.3f} on "
            f"average, {s['max_abs_error']:.3f} at most."
        )
    for pool, ranks in rankings.items():
        if ranks["measured"]:
            same = "same" if ranks["measured"] == ranks["predicted"] else "different"
            notes.append(
                f"- {pool}: signal ranking measured {' > '.join(ranks['measured'])}; predicted "
                f"{' > '.join(ranks['predicted'])} ({same})."
            )
    markdown = table_markdown(
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
    payload = {"source": source, "rows": rows, "summary": summary, "rankings": rankings}
    return payload, markdown


def _errors(rows: list[dict[str, Any]], prior: str, predicted: str, measured: str) -> dict[str, float]:
    """Mean absolute, largest absolute and mean signed (measured − predicted) error over rows."""
    errors = [r["measured"][measured] - r[prior][predicted] for r in rows]
    if not errors:
        return {"rows": 0, "mean_abs_error": math.nan, "max_abs_error": math.nan, "mean_error": math.nan}
    return {
        "rows": len(errors),
        "mean_abs_error": sum(abs(e) for e in errors) / len(errors),
        "max_abs_error": max(abs(e) for e in errors),
        "mean_error": sum(errors) / len(errors),
    }


def study_section(
    rows: list[dict[str, Any]], skipped: dict[str, str], source: str
) -> tuple[dict[str, Any], str]:
    """The `--study` section: its JSON payload and markdown."""
    table = []
    for r in rows:
        m, f, b = r["measured"], r["fitted"], r["flat"]
        table.append(
            [
                r["pool"],
                r["arm"] + (" (easy-to-hard)" if r["curriculum"] else ""),
                f"{r['passes']:.1f}",
                f"{f['zero_advantage_rollouts']:.3f} / {b['zero_advantage_rollouts']:.3f}",
                f"{m['zero_advantage_rollouts_first_fifth']:.3f}",
                f"{m['zero_advantage_rollouts']:.3f} ± {m['zero_advantage_rollouts_seed_sd']:.3f}",
                f"{f['zero_advantage_groups']:.3f}",
                f"{m['zero_advantage_groups']:.3f}",
                f"{f['signal_per_rollout']:.4f}",
                f"{m['signal_per_rollout']:.4f}" if "signal_per_rollout" in m else "not recorded",
                f"{m['heldout_vs_grpo']:+.3f}",
            ]
        )
    steady = [r for r in rows if not r["curriculum"]]
    summary = {
        prior: {
            "first_fifth_rollouts_non_curriculum": _errors(
                steady, prior, "zero_advantage_rollouts", "zero_advantage_rollouts_first_fifth"
            ),
            "whole_run_rollouts": _errors(rows, prior, "zero_advantage_rollouts", "zero_advantage_rollouts"),
            "whole_run_groups": _errors(rows, prior, "zero_advantage_groups", "zero_advantage_groups"),
        }
        for prior in PRIOR_NAMES
    }
    signal_key = "signal_per_rollout" if all("signal_per_rollout" in r["measured"] for r in rows) else None
    rankings = {}
    for pool in dict.fromkeys(r["pool"] for r in rows):
        mine = [r for r in rows if r["pool"] == pool]
        rankings[pool] = {
            "informative_rollouts": pair_agreement(mine, "signal_per_rollout", "informative_rollouts"),
            "heldout_vs_grpo": pair_agreement(mine, "signal_per_rollout", "heldout_vs_grpo"),
        }
        if signal_key:
            rankings[pool]["signal_per_rollout"] = pair_agreement(mine, "signal_per_rollout", signal_key)
    notes = [
        f"Source: {source}. Zero-advantage shares are of generated rollouts (groups) in all-equal groups, seed "
        "means (± seed SD). The profile describes the base policy, while the study's policy learns: pass rates "
        "drift over a run, so the prediction is compared with the first fifth of training (closest to the profiled "
        "policy) and with the whole run. `passes` = the run's rollouts / the arm's rollouts per pass over its "
        "curated rows. Easy-to-hard arms walk their rows easiest first once over the run (`one-pass`), so their "
        "first fifth is the easy end, not a sample of the rows: they are left out of the first-fifth error. The "
        "trainer pads a batch whose groups do not fill its budget with extra rollouts where they add most signal "
        "(variable group sizes: the sgpo arms); the simulator plans the curated group sizes without padding.",
    ]
    for prior, s in summary.items():
        first, whole, groups = (
            s["first_fifth_rollouts_non_curriculum"],
            s["whole_run_rollouts"],
            s["whole_run_groups"],
        )
        notes.append(
            f"- {prior} prior, zero-advantage share of rollouts: first fifth off by {first['mean_abs_error']:.3f} on "
            f"average ({first['max_abs_error']:.3f} at most, measured − predicted {first['mean_error']:+.3f}, "
            f"{first['rows']} rows); whole run {whole['mean_abs_error']:.3f} ({whole['max_abs_error']:.3f} at most, "
            f"{whole['mean_error']:+.3f}); of groups, whole run {groups['mean_abs_error']:.3f}."
        )
    notes.append(_closest(rows, summary))
    notes.append(
        "- Signal ranking (predicted signal per rollout, fitted prior) against the measured "
        + (
            "signal per rollout (sum of s·f/G over groups per rollout)"
            if signal_key
            else "informative share of rollouts (1 − zero-advantage share, whole run; these runs predate the "
            "per-group signal record)"
        )
        + " and against the outcome, held-out P(answer + EOS) − GRPO's at GRPO's final FLOPs; pairs the "
        "prediction ties (the same allocation) are left out:"
    )
    for pool, ranks in rankings.items():
        proxy = ranks.get("signal_per_rollout", ranks["informative_rollouts"])
        outcome = ranks["heldout_vs_grpo"]
        notes.append(
            f"  - {pool}: predicted {proxy['predicted']}; measured {proxy['measured']} "
            f"({proxy['pairs_same_order']} of {proxy['pairs']} pairs in the same order); by held-out gain "
            f"{outcome['measured']} ({outcome['pairs_same_order']} of {outcome['pairs']})."
        )
    if skipped:
        notes.append(
            "- Not simulated: "
            + "; ".join(f"`{name}` ({why})" for name, why in sorted(skipped.items()))
            + "."
        )
    markdown = table_markdown(
        "Simulator vs the study's runs (examples/reproduce_savings.py)",
        [
            "mix",
            "arm",
            "passes",
            "zero-adv rollouts predicted (fitted / flat)",
            "measured, first fifth",
            "measured, whole run",
            "zero-adv groups predicted (fitted)",
            "measured, whole run",
            "signal/rollout predicted (fitted)",
            "measured",
            "held-out − GRPO at matched FLOPs",
        ],
        table,
        "\n".join(notes),
    )
    payload = {
        "source": source,
        "rows": rows,
        "not_simulated": skipped,
        "summary": summary,
        "rankings": rankings,
    }
    return payload, markdown


def _closest(rows: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    """A generated sentence: which prior is closer at the start and over the run, and the largest miss."""

    def closer(key: str) -> str:
        return min(PRIOR_NAMES, key=lambda prior: summary[prior][key]["mean_abs_error"])

    worst = max(
        rows,
        key=lambda r: abs(r["measured"]["zero_advantage_rollouts"] - r["fitted"]["zero_advantage_rollouts"]),
    )
    return (
        f"- Closer prior: `{closer('first_fifth_rollouts_non_curriculum')}` over the first fifth, "
        f"`{closer('whole_run_rollouts')}` over the whole run. Largest whole-run miss (fitted): `{worst['arm']}` on "
        f"{worst['pool']}, predicted {worst['fitted']['zero_advantage_rollouts']:.3f}, measured "
        f"{worst['measured']['zero_advantage_rollouts']:.3f}."
    )


SECTIONS = ("run_small", "study")
README_START = (
    "<!-- validate_simulator --study: generated by benchmarks/validate_simulator.py --readme; do not edit -->"
)
README_END = "<!-- end of validate_simulator --study -->"


def write_section(name: str, payload: dict[str, Any], markdown: str) -> None:
    """Replace one section of simulator_validation.json and .md, keeping the other."""
    json_path, md_path = RESULTS / "simulator_validation.json", RESULTS / "simulator_validation.md"
    data = json.loads(json_path.read_text()) if json_path.exists() else {}
    if "rows" in data:  # written before sections: it held the run-small results only
        data = {"run_small": dict(data, markdown=md_path.read_text())}
    data[name] = dict(payload, markdown=markdown)
    RESULTS.mkdir(exist_ok=True)
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    md_path.write_text("\n".join(data[s]["markdown"] for s in SECTIONS if s in data))
    sys.stdout.write(markdown)


def rewrite_readme(readme: Path, markdown: str) -> None:
    """Replace the README's marked study-validation block with the generated section (its title dropped)."""
    body = markdown.split("\n", 2)[2]  # drop the '### title' line and the blank after it
    rewrite_readme_block(readme, (README_START, README_END), body)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--study", help="The study's results folder (results.json).")
    parser.add_argument("--readme", help="With --study: README whose marked validation block is rewritten.")
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
    if args.study:
        try:
            rows, skipped = study_rows(Path(args.study))
        except (ValueError, KeyError, FileNotFoundError) as error:
            raise SystemExit(f"--study {args.study}: {error}") from error
        payload, markdown = study_section(rows, skipped, f"the study's measured runs in {args.study}")
        write_section("study", payload, markdown)
        if args.readme:
            rewrite_readme(Path(args.readme), markdown)
    if args.run_small:
        import torch

        torch.set_num_threads(1)
        rows = run_small(Path(args.work), args.pool_size, args.learning_rate, args.epochs)
        source = (
            f"a small run made here: toy model, {args.pool_size}-query broad pool profiled at k=8, each arm trained "
            f"{args.epochs} epochs of its curated rows with AdaptiveGRPOTrainer (64 rollouts per step, lr "
            f"{args.learning_rate}: the pass rates stay put), measured on every trained group"
        )
        write_section("run_small", *run_small_section(rows, source))


if __name__ == "__main__":
    main()
