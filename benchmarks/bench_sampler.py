"""Batched sampling vs a naive loop of one `generate` call per query, on the tiny model.

Same model, same queries, same k and token budget; each sample runs to `max_new_tokens` (EOS is
suppressed) so both sides generate exactly the same number of tokens. Run side by side in one
process so machine noise hits both.

    python benchmarks/bench_sampler.py [--queries 32] [--k 8] [--max-new-tokens 64]
"""

from __future__ import annotations

import argparse
import tempfile

from common import timed, write_table

from sgpo_curate.config import SamplingConfig
from sgpo_curate.models import save_tiny_model
from sgpo_curate.samplers import get_sampler
from sgpo_curate.sources import load_queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=32)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-queries", type=int, default=16)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    sampler = get_sampler("transformers", str(save_tiny_model(tempfile.mkdtemp())))
    sampler._eos_ids = set()  # fixed-length samples: equal work on both sides
    sampler.model.generation_config.eos_token_id = None
    queries = load_queries("gsm8k", limit=args.queries)[0]
    naive = SamplingConfig(k=args.k, max_new_tokens=args.max_new_tokens, batch_queries=1)
    batched = SamplingConfig(k=args.k, max_new_tokens=args.max_new_tokens, batch_queries=args.batch_queries)
    samples = args.queries * args.k

    def run(config: SamplingConfig) -> None:
        for start in range(0, len(queries), config.batch_queries):
            sampler.sample(queries[start:start + config.batch_queries], config, seed=0)

    naive_s = timed(lambda: run(naive))
    batched_s = timed(lambda: run(batched))
    rows = [
        ["naive: one generate per query (k samples each)", f"{naive_s:.1f}", f"{samples / naive_s:.1f}", "1.0x"],
        [f"batched: {args.batch_queries} queries x k per generate", f"{batched_s:.1f}", f"{samples / batched_s:.1f}",
         f"{naive_s / batched_s:.1f}x"],
    ]
    write_table("sampler", f"Sampler: batched vs naive ({args.queries} GSM8K queries x k={args.k}, "
                f"{args.max_new_tokens} new tokens, tiny {sampler.num_parameters:,}-param Llama, 1 thread)",
                ["mode", "seconds", "samples/s", "speed-up"], rows)


if __name__ == "__main__":
    main()
