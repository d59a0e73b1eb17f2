"""Profiling pipeline throughput vs the raw sampler on the same work: is verification hidden?

Raw: `sampler.sample` over the same chunks, nothing else. Pipeline: `profile(...)` (sampling, math-verify
in its process pool overlapped with the next chunk's generation, parquet parts, progress). The ratio
pipeline/raw samples/s should be close to 1.

    python benchmarks/bench_pipeline.py [--queries 48] [--k 8] [--max-new-tokens 48]
"""

from __future__ import annotations

import argparse
import tempfile

from common import timed, write_table

from sgpo_curate.config import ProfileConfig, SamplingConfig
from sgpo_curate.models import save_tiny_model
from sgpo_curate.profiling import profile
from sgpo_curate.samplers import get_sampler
from sgpo_curate.sources import load_queries
from sgpo_curate.verifiers.math import MathVerifier


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=48)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-queries", type=int, default=8)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    sampler = get_sampler("transformers", str(save_tiny_model(tempfile.mkdtemp())))
    queries = load_queries("gsm8k", limit=args.queries)[0]
    sampling = SamplingConfig(k=args.k, max_new_tokens=args.max_new_tokens, batch_queries=args.batch_queries)
    verifier = MathVerifier(workers=1)
    verifier([r"$\boxed{1}$"], queries[:1])  # start the worker outside the timing
    samples = args.queries * args.k

    def raw() -> None:
        for start in range(0, len(queries), sampling.batch_queries):
            sampler.sample(queries[start : start + sampling.batch_queries], sampling, sampling.seed)

    def pipeline() -> None:
        profile(
            queries, sampler, verifier, ProfileConfig(out_dir=tempfile.mkdtemp(), progress=False), sampling
        )

    raw_s = timed(raw)
    pipe_s = timed(pipeline)
    verify_s = timed(
        lambda: verifier(
            ["The answer is $\\boxed{" + str(i) + "}$ " * 3 for i in range(samples)],
            [q for q in queries for _ in range(args.k)],
        )
    )
    verifier.close()
    rows = [
        ["raw sampler", f"{raw_s:.1f}", f"{samples / raw_s:.1f}", "1.00"],
        ["profile() pipeline", f"{pipe_s:.1f}", f"{samples / pipe_s:.1f}", f"{raw_s / pipe_s:.2f}"],
        ["(verification alone, 1 worker)", f"{verify_s:.1f}", f"{samples / verify_s:.1f}", "-"],
    ]
    write_table(
        "pipeline",
        f"Profiling pipeline vs raw sampler ({args.queries} GSM8K queries x k={args.k}, "
        f"{args.max_new_tokens} new tokens, tiny model, 1 torch thread + 1 verify worker)",
        ["stage", "seconds", "samples/s", "ratio to raw"],
        rows,
    )


if __name__ == "__main__":
    main()
