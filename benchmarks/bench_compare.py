"""Can one model's profile stand in for another's? `compare` on real profiles of the same queries.

Pairs (predictor -> target), each profiled on the same pool with the same k:
- toy: a small model (hidden 64, 2 layers) -> a larger one (hidden 128, 4 layers), both trained the same way
  on the addition task (`benchmarks/toy_addition.py`); an early checkpoint (step 300) -> the final model (step
  900) of the larger run (a base and a trained checkpoint); the larger model at temperature 0.7 -> the same
  at 1.0;
- SmolLM2-135M on MAWPS single-op: temperature 0.7 -> temperature 1.0 (two `sgpo-curate profile` folders,
  `--smollm2 T07_DIR T10_DIR`; both cut to the first `--smollm2-k` samples so both sides have the same k).

Each pair is curated into one folder as two configs, exactly as a user would (`curate` + `write_curated`
with the raw profiles), so the comparison is the one the card shows; the card of the toy folder is kept.

    python benchmarks/bench_compare.py --smollm2 runs/smol_t07_k8 runs/smol_t10_k16   # ~3 min (toy models cached)
Writes benchmarks/results/compare.md and compare.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
from pathlib import Path

from common import RESULTS, write_table
from toy_addition import ExactAnswer, toy_pool, train_toy

from sgpo_curate.compare import compare
from sgpo_curate.config import ProfileConfig, SamplingConfig
from sgpo_curate.curation import CurateConfig, curate, write_curated
from sgpo_curate.profiling import load_profiles, load_run_info, profile
from sgpo_curate.samplers import get_sampler


def toy_profile(model_dir: str, queries, k: int, temperature: float, out: Path):
    if not (out / "profiles.parquet").exists():
        sampling = SamplingConfig(k=k, max_new_tokens=7, batch_queries=64, temperature=temperature)
        sampler = get_sampler("transformers", model_dir)
        profile(queries, sampler, ExactAnswer(), ProfileConfig(out_dir=str(out), progress=False), sampling)
    return out


def first_samples(profiles, k: int):
    """Profiles cut to their first k samples (every sample has its own seed: a k-sample profile)."""
    return [
        dataclasses.replace(
            p, rewards=p.rewards[:k], completion_tokens=p.completion_tokens[:k], completions=p.completions[:k]
        )
        for p in profiles
    ]


def curated_pair(folder: Path, predictor: tuple[str, Path], target: tuple[str, Path], k: int | None) -> dict:
    """Curate both profiles into `folder` as two configs (the card compares them); return the comparison."""
    shutil.rmtree(folder, ignore_errors=True)
    for name, profile_dir in (target, predictor):  # the predictor last: its summary stores the comparison
        profiles = load_profiles(profile_dir, completions=True)  # the raw config holds them
        profiles = first_samples(profiles, k) if k else profiles
        profiles = [dataclasses.replace(p, model=name) for p in profiles]
        write_curated(
            curate(profiles, CurateConfig(config_name=name)), folder, load_run_info(profile_dir), profiles
        )
    return compare(folder, predictor[0], target[0]).to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", default="runs/toy", help="Cache of toy models and profiles.")
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--pool-size", type=int, default=384)
    parser.add_argument("--smollm2", nargs=2, metavar=("PREDICTOR_DIR", "TARGET_DIR"))
    parser.add_argument("--smollm2-k", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(1)
    work = Path(args.work)
    small = train_toy(
        work / "h64x900", hidden_size=64, num_layers=2, steps=900, batch_size=64, save_at=(300,)
    )
    large = train_toy(work / "h128x900", steps=900, batch_size=64, save_at=(300,))
    queries = toy_pool(args.pool_size, seed=21, mix="broad")
    profiles = work / "profiles" / "compare"
    dirs = {
        "toy-small": toy_profile(small, queries, args.k, 1.0, profiles / "small"),
        "toy-large": toy_profile(large, queries, args.k, 1.0, profiles / "large"),
        "toy-large-step300": toy_profile(
            str(work / "h128x900-step300"), queries, args.k, 1.0, profiles / "early"
        ),
        "toy-large-t0.7": toy_profile(large, queries, args.k, 0.7, profiles / "large-t07"),
    }
    pairs = [
        ("toy: small -> large", ("toy-small", dirs["toy-small"]), ("toy-large", dirs["toy-large"]), None),
        (
            "toy: step 300 -> step 900",
            ("toy-large-step300", dirs["toy-large-step300"]),
            ("toy-large", dirs["toy-large"]),
            None,
        ),
        (
            "toy: T 0.7 -> T 1.0",
            ("toy-large-t0.7", dirs["toy-large-t0.7"]),
            ("toy-large", dirs["toy-large"]),
            None,
        ),
    ]
    if args.smollm2:
        predictor, target = (Path(d) for d in args.smollm2)
        pairs.append(
            (
                "SmolLM2 MAWPS: T 0.7 -> T 1.0",
                ("smollm2-t0.7", predictor),
                ("smollm2-t1.0", target),
                args.smollm2_k,
            )
        )
    results = {}
    for label, a, b, k in pairs:
        folder = work / "compare" / label.split(":")[0].strip().lower() / a[0]
        results[label] = curated_pair(folder, a, b, k)
    (RESULTS / "compare.json").write_text(json.dumps(results, indent=2) + "\n")
    rows = [
        [
            label,
            r["shared"],
            _f(r["spearman"]),
            _f(r["half_spearman_a_b"]),
            _f(r["half_spearman_b_b"]),
            _f(r["bucket_agreement"]),
            _f(r["filter_agreement"]),
            _f(r["group_size_agreement"]),
            _f(r["mean_abs_difference"]),
        ]
        for label, r in results.items()
    ]
    write_table(
        "compare",
        "One profile as a stand-in for another on the same queries (target's curation: inverse rule, G in [2, 16])",
        [
            "predictor -> target",
            "shared",
            "Spearman",
            "half k: predictor vs target",
            "half k: target vs itself",
            "same bucket",
            "same filter decision",
            "same G",
            "mean abs p̂ diff",
        ],
        rows,
        f"Toy pairs at k = {args.k} on {args.pool_size} broad queries; SmolLM2 pairs cut to the first {args.smollm2_k} "
        "samples of each. 'half k': Spearman of the predictor's first half of samples against the target's second "
        "half, next to the target's first half against its own second half (same number of samples each side).",
    )


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
