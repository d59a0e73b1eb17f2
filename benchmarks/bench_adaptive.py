"""Adaptive profiling on real profiles: samples saved against fixed k, and agreement with fixed k on the same
samples.

Every sample has its own seed (`sample_seed(seed, id, i)`), so an adaptive run draws exactly the first n
samples of a fixed-k run. The benchmark therefore profiles each pool once at fixed k_max with a real model and
verifier, replays the stopping rule on those rewards (`sgpo_curate.adaptive.replay`) for several priors and
confidences, and checks on one pool that a real adaptive run (`profile(..., adaptive=...)`) takes exactly the
samples the replay says.

Pools:
- toy: `benchmarks/toy_addition.py` models (a tiny Llama trained to add, noisy-carry teacher) on a broad and a
  hard pool (`--pool-size` queries each) plus a disjoint pilot pool (`--pilot-size`) to fit the prior from;
- SmolLM2-135M on MAWPS single-op: a fixed-k profiling folder made with `sgpo-curate profile` (`--smollm2`);
  with few queries its prior is cross-fitted (each half's prior fitted on the other half).

Decisions settled: the filter class alone, or the class and the inverse rule's group size. Rounds: doubling
(`--rounds 2,4,8`) or every 2 samples (2, 4, 6, ..., the default). Priors: `flat` (Beta(1, 1)); `pilot` (a
`BetaMixture` fitted to the pilot pool, what a user does with `--prior runs/pilot`).

    sgpo-curate profile --model smollm2-135m-instruct --dataset mawps-singleop --k 16 --max-new-tokens 96 \
        --limit 24 --batch-queries 4 --out runs/smol_t10_k16                  # ~75 min on 2 busy cores
    python benchmarks/bench_adaptive.py --smollm2 runs/smol_t10_k16      # ~5 min (toy models cached)

`--smollm2-adaptive DIR` also checks a real adaptive SmolLM2 run (made with `--adaptive --prior` a parquet of
the other queries' profiles) against the fixed run: same samples, fewer of them.
Writes benchmarks/results/adaptive.md and adaptive.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

from common import RESULTS, write_table
from toy_addition import ExactAnswer, toy_pool, train_toy

from sgpo_curate.adaptive import StoppingRule, replay
from sgpo_curate.config import AdaptiveConfig, ProfileConfig, SamplingConfig
from sgpo_curate.policy import BetaMixture
from sgpo_curate.profiling import load_profiles, profile
from sgpo_curate.samplers import get_sampler

CONFIDENCES = (0.8, 0.9, 0.95)
# Decisions to settle: the filter class only (uniform rule: every kept query the same G), or the class and
# the inverse rule's G = ceil(1/p̂).
RULES = {"class": "uniform", "class + G": "inverse"}


def schedules(k: int) -> dict[str, tuple[int, ...]]:
    """Doubling rounds (`--rounds 2,4,8`) and a check every 2 samples (the default)."""
    doubling = tuple(2**i for i in range(1, k.bit_length()) if 2**i < k)
    return {"2,4,8,..": (*doubling, k), "every 2": AdaptiveConfig().schedule(k)}


def toy_profiles(model_dir: str, queries, k: int, out: Path):
    """A fixed-k profile of `queries` (cached in `out`)."""
    if not (out / "profiles.parquet").exists():
        sampler = get_sampler("transformers", model_dir)
        sampling = SamplingConfig(k=k, max_new_tokens=7, batch_queries=64)
        profile(queries, sampler, ExactAnswer(), ProfileConfig(out_dir=str(out), progress=False), sampling)
    return load_profiles(out)


def counts(profiles, k: int | None = None):
    out = []
    for p in profiles:
        rewards = [r for r in p.rewards[:k] if r is not None]
        out.append((sum(r >= 0.5 for r in rewards), len(rewards)))
    return out


def replay_pool(name: str, pool, priors, k: int) -> list[dict]:
    """Every rule, schedule, prior and confidence on one pool. `priors` maps a name to a list of
    (queries, prior) parts: one part, or two for a cross-fitted prior."""
    rows = []
    for decisions, rule in RULES.items():
        for schedule_name, schedule in schedules(k).items():
            for prior_name, parts in priors.items():
                for confidence in CONFIDENCES:
                    stops = [StoppingRule(prior, k, schedule, confidence, rule) for _, prior in parts]
                    results = [
                        replay([p.rewards for p in part], stop)
                        for (part, _), stop in zip(parts, stops, strict=True)
                    ]
                    tokens = [_tokens(part, stop) for (part, _), stop in zip(parts, stops, strict=True)]
                    queries = sum(r.queries for r in results)
                    rows.append(
                        {
                            "pool": name,
                            "k": k,
                            "decisions": decisions,
                            "schedule": schedule_name,
                            "prior": prior_name,
                            "confidence": confidence,
                            "queries": queries,
                            "saved": 1
                            - sum(r.samples_adaptive for r in results)
                            / sum(r.samples_fixed for r in results),
                            "agreement": sum(r.agreement * r.queries for r in results) / queries,
                            "tokens_saved": 1 - sum(a for a, _ in tokens) / sum(f for _, f in tokens),
                        }
                    )
    return rows


def _tokens(pool, stopping: StoppingRule) -> tuple[int, int]:
    """Tokens processed adaptively and at fixed k: generated tokens of the samples taken, plus the prompt once
    per round (the transformers sampler encodes it again each round; vLLM's prefix cache would not)."""
    adaptive = fixed = 0
    for p in pool:
        n = stopping.samples_needed(p.rewards[: stopping.k])
        rounds = sum(1 for point in stopping.schedule if point <= n)
        adaptive += sum(p.completion_tokens[:n]) + p.prompt_tokens * rounds
        fixed += sum(p.completion_tokens[: stopping.k]) + p.prompt_tokens
    return adaptive, fixed


def independent_agreement(pool, k: int) -> dict[str, float]:
    """How often two independent k/2-sample profiles (samples 1..k/2 and k/2+1..k) take the same decisions:
    the noise any k leaves, for scale."""
    out = {}
    for decisions, rule in RULES.items():
        stopping = StoppingRule(BetaMixture.flat(), k, (k,), rule=rule)
        half = k // 2
        same = [
            stopping.decision(*_count(p.rewards[:half])) == stopping.decision(*_count(p.rewards[half:k]))
            for p in pool
        ]
        out[decisions] = sum(same) / len(same)
    return out


def _count(rewards):
    verified = [r for r in rewards if r is not None]
    return sum(r >= 0.5 for r in verified), len(verified)


def real_adaptive_check(model_dir: str, queries, fixed, prior_dir: Path, k: int, out: Path) -> dict:
    """A real adaptive run: does it take the samples, and exactly the number, that the replay says?"""
    adaptive = AdaptiveConfig(prior=str(prior_dir), confidence=0.95)
    sampler = get_sampler("transformers", model_dir)
    sampling = SamplingConfig(k=k, max_new_tokens=7, batch_queries=64)
    summary = profile(
        queries,
        sampler,
        ExactAnswer(),
        ProfileConfig(out_dir=str(out), progress=False, adaptive=adaptive),
        sampling,
    )
    by_id = {p.id: p for p in fixed}
    stopping = StoppingRule(BetaMixture.fit(counts(load_profiles(prior_dir))), k, adaptive.schedule(k), 0.95)
    taken = load_profiles(out)
    prefixes = all(
        p.rewards == by_id[p.id].rewards[: len(p.rewards)]
        and p.completions == by_id[p.id].completions[: len(p.rewards)]
        for p in taken
    )
    predicted = sum(stopping.samples_needed(by_id[p.id].rewards) for p in taken)
    return {
        "samples": summary.samples,
        "replay_samples": predicted,
        "fixed_samples": summary.fixed_k_samples,
        "prefixes_equal": prefixes,
    }


def check_adaptive_folder(adaptive_dir: str, fixed_dir: str) -> dict:
    """An adaptive run made with `sgpo-curate profile --adaptive` against the fixed-k run of the same
    queries: are its samples the first ones of the fixed run, and how many did it take?"""
    fixed = {p.id: p for p in load_profiles(fixed_dir)}
    taken = load_profiles(adaptive_dir)
    prefixes = all(
        p.completions == fixed[p.id].completions[: len(p.completions)]
        and p.rewards == fixed[p.id].rewards[: len(p.rewards)]
        for p in taken
    )
    return {
        "samples": sum(len(p.rewards) for p in taken),
        "fixed_samples": sum(len(fixed[p.id].rewards) for p in taken),
        "prefixes_equal": prefixes,
        "samples_per_query": {p.id: len(p.rewards) for p in taken},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", default="runs/toy", help="Cache of toy models and profiles.")
    parser.add_argument(
        "--smollm2", help="A fixed-k SmolLM2 profiling folder (sgpo-curate profile ... --k 16)."
    )
    parser.add_argument(
        "--smollm2-adaptive",
        help="An adaptive SmolLM2 run of some of the same queries, checked against --smollm2.",
    )
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--pool-size", type=int, default=384)
    parser.add_argument("--pilot-size", type=int, default=128)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch

    torch.set_num_threads(1)
    work = Path(args.work)
    models = {
        "toy-900": train_toy(work / "h128x900", steps=900, batch_size=64, save_at=(300,)),
        "toy-300": str(work / "h128x900-step300"),
    }
    ks = (args.k, 8) if args.k > 8 else (args.k,)
    rows, checks, noise, histograms = [], {}, {}, {}
    for model_name, model_dir in models.items():
        for mix in ("broad", "hard"):
            pilot_queries = toy_pool(args.pilot_size, seed=7, mix=mix)
            queries = toy_pool(args.pool_size, seed=1, mix=mix, exclude={q.id for q in pilot_queries})
            name = f"{model_name}/{mix}"
            pool = toy_profiles(model_dir, queries, args.k, work / "profiles" / name)
            pilot_dir = work / "profiles" / f"{name}-pilot"
            pilot = toy_profiles(model_dir, pilot_queries, args.k, pilot_dir)
            for k in ks:
                priors = {
                    "flat": [(pool, BetaMixture.flat())],
                    "pilot": [(pool, BetaMixture.fit(counts(pilot, k)))],
                }
                rows += replay_pool(name, pool, priors, k)
            noise[name] = independent_agreement(pool, args.k)
            histograms[name] = _histogram(counts(pool, args.k))
            if model_name == "toy-900" and mix == "broad":
                with tempfile.TemporaryDirectory() as tmp:
                    checks[name] = real_adaptive_check(
                        model_dir, queries, pool, pilot_dir, args.k, Path(tmp) / "run"
                    )
    if args.smollm2:
        smol = load_profiles(args.smollm2)
        k = min(len(p.rewards) for p in smol)
        halves = [smol[0::2], smol[1::2]]
        priors = {
            "flat": [(smol, BetaMixture.flat())],
            "cross-fitted": [
                (halves[0], BetaMixture.fit(counts(halves[1], k))),
                (halves[1], BetaMixture.fit(counts(halves[0], k))),
            ],
        }
        rows += replay_pool("smollm2/mawps", smol, priors, k)
        noise["smollm2/mawps"] = independent_agreement(smol, k)
        histograms["smollm2/mawps"] = _histogram(counts(smol, k))
        if args.smollm2_adaptive:
            checks["smollm2/mawps"] = check_adaptive_folder(args.smollm2_adaptive, args.smollm2)
    (RESULTS / "adaptive.json").write_text(
        json.dumps(
            {
                "rows": rows,
                "real_runs": checks,
                "independent_half_k_agreement": noise,
                "histograms": histograms,
            },
            indent=2,
        )
        + "\n"
    )
    write_table(
        "adaptive",
        "Adaptive profiling vs fixed k on the same samples: samples saved / share of queries with the same decisions",
        [
            "pool",
            "k",
            "decisions",
            "rounds",
            "flat prior, 0.95",
            "pilot prior, 0.8",
            "pilot prior, 0.9",
            "pilot prior, 0.95",
            "two independent k/2 profiles agree",
        ],
        _table(rows, noise),
        _notes(checks, histograms, args, rows),
    )


def _table(rows: list[dict], noise: dict) -> list[list]:
    def cell(r: dict) -> str:
        return f"{r['saved']:.0%} / {r['agreement']:.3f}"

    out = []
    keys = sorted(
        {(r["pool"], r["k"], r["decisions"], r["schedule"]) for r in rows},
        key=lambda t: (t[0], -t[1], t[2], t[3]),
    )
    for pool, k, decisions, schedule in keys:
        match = {
            (r["prior"], r["confidence"]): r
            for r in rows
            if (r["pool"], r["k"], r["decisions"], r["schedule"]) == (pool, k, decisions, schedule)
        }
        fitted = "pilot" if ("pilot", 0.9) in match else "cross-fitted"
        out.append(
            [pool, k, decisions, schedule, cell(match[("flat", 0.95)])]
            + [cell(match[(fitted, c)]) for c in CONFIDENCES]
            + [f"{noise[pool][decisions]:.3f}" if k == max(r["k"] for r in rows if r["pool"] == pool) else ""]
        )
    return out


def _histogram(pool_counts) -> dict[str, int]:
    out = {"p=0": 0, "0<p<1": 0, "p=1": 0}
    for c, n in pool_counts:
        out["p=0" if c == 0 else "p=1" if c == n else "0<p<1"] += 1
    return out


def _token_lines(rows: list[dict]) -> list[str]:
    lines = [
        "\nSamples saved vs tokens saved (prompt encoded once per round, as the transformers sampler does), fitted "
        "prior, confidence 0.95, k = 16:",
        "",
        "| pool | decisions | rounds | samples saved | tokens saved |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        if r["prior"] != "flat" and r["confidence"] == 0.95 and r["k"] == 16:
            lines.append(
                f"| {r['pool']} | {r['decisions']} | {r['schedule']} | {r['saved']:.0%} | {r['tokens_saved']:.0%} |"
            )
    return lines


def _notes(checks: dict, histograms: dict, args, rows: list[dict]) -> str:
    lines = ["Pools at fixed k (queries with p̂ = 0 / between / 1):"]
    lines += [f"- {name}: {h['p=0']} / {h['0<p<1']} / {h['p=1']}" for name, h in histograms.items()]
    for name, check in checks.items():
        predicted = f", the replay predicted {check['replay_samples']}" if "replay_samples" in check else ""
        lines.append(
            f"\nReal adaptive run on {name} (confidence 0.95): {check['samples']} samples drawn{predicted}, fixed k "
            f"draws {check['fixed_samples']}; every query's samples (texts and rewards) equal the first ones of "
            f"the fixed-k profile: {check['prefixes_equal']}."
        )
    lines.append(
        "\nEach cell: samples saved against fixed k / share of queries whose decisions at the stop equal fixed k's "
        "(same samples), at the stated per-query confidence. Decisions: `class` = trivial / unsolvable / kept "
        "(the filter); `class + G` adds the inverse rule's group size. Replays at k = 8 use the first 8 samples of "
        f"each query. `pilot`: prior fitted to a disjoint pool of {args.pilot_size} queries of the same mix "
        "(SmolLM2, too few queries for a pilot: `cross-fitted`, each half with the prior fitted on the other "
        "half). Last column: decisions from samples 1..k/2 against k/2+1..k, two independent profiles."
    )
    lines += _token_lines(rows)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
