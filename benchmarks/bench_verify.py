"""Math verification throughput (checks/s) with the process pool, 1 worker vs 2 on 2 cores.

Completions are real-looking: GSM8K reference solutions rewritten to end in `\\boxed{answer}`, half of
them with a wrong answer, k per query, so each check parses a multi-line solution and compares.

    python benchmarks/bench_verify.py [--queries 200] [--k 8]
"""

from __future__ import annotations

import argparse
import os

from common import timed, write_table

from sgpo_curate.sources import load_queries
from sgpo_curate.verifiers.math import MathVerifier


def completions_for(query, row_solution: str, k: int) -> list[str]:
    body = row_solution.split("####")[0]
    # Every text distinct (math-verify caches repeated parses); half right, half wrong.
    return [
        f"{body}\nSample {i}: so the answer is $\\boxed{{{query.answer if i % 2 == 0 else query.answer + '1'}}}$."
        for i in range(k)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=8)
    args = parser.parse_args()

    from sgpo_curate.sources import get_source

    source = get_source("gsm8k")
    solutions = [row["answer"] for _, (_key, row) in zip(range(args.queries), source.rows(), strict=False)]
    queries = load_queries("gsm8k", limit=args.queries)[0]
    texts = [t for q, s in zip(queries, solutions, strict=True) for t in completions_for(q, s, args.k)]
    flat = [q for q in queries for _ in range(args.k)]
    rows, base = [], None
    for workers in sorted({1, os.cpu_count() or 1}):
        verifier = MathVerifier(workers=workers)
        verifier(texts[: args.k * workers], flat[: args.k * workers])  # spawn and warm the workers
        seconds = timed(lambda v=verifier: v(texts, flat))
        rewards = verifier(texts, flat)
        verifier.close()
        assert sum(r == 1.0 for r in rewards) == len(texts) // 2, "half the completions are right"
        base = base or seconds
        rows.append([workers, f"{seconds:.1f}", f"{len(texts) / seconds:.0f}", f"{base / seconds:.2f}x"])
    write_table(
        "verify",
        f"Math verification ({len(texts)} checks: {args.queries} GSM8K queries x k={args.k})",
        ["workers", "seconds", "checks/s", "speed-up"],
        rows,
    )


if __name__ == "__main__":
    main()
