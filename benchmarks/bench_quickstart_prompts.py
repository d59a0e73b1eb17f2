"""Which embedded default shows a spread of pass rates under the reward training uses?

Profiles the bundled SmolLM2-135M-Instruct (real sampling, k per query) on candidate (source, prompt)
pairs and scores every sample three ways: our math verifier in `strict` mode (the default), TRL 1.16's
`accuracy_reward` on the published `solution` text (must agree with strict on every sample), and our
`lenient` mode (any last number). For each candidate it reports the pass-rate histogram under strict,
how many queries land strictly between 0 and 1 (the ones a GRPO group learns from), how often the
model writes `\\boxed`, tokens and time. The quickstart's default is the candidate named `quickstart`
(`sgpo_curate.pipeline.DEFAULT_DATASET` with `QUICKSTART_PROMPT`), so this measures what ships.

    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/bench_quickstart_prompts.py [--queries 16] [--k 4]
    .venv/bin/python benchmarks/bench_quickstart_prompts.py --report-only --readme README.md   # re-render only

Writes `benchmarks/results/quickstart_prompts.md` (the table) and `quickstart_prompts.json` (per-query
counts, and the completions of the shipped default, which `tests/test_pipeline.py` re-scores). SmolLM2
samples ~80 tokens/s on 2 idle cores: the default run takes ~20-40 minutes.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

from common import RESULTS, readme_markers, rewrite_readme_block, write_table

from sgpo_curate import pipeline
from sgpo_curate.config import PromptConfig, SamplingConfig
from sgpo_curate.profiling import pass_rate_histogram
from sgpo_curate.samplers import get_sampler
from sgpo_curate.sources import load_queries
from sgpo_curate.verifiers.math import MathVerifier, solution_text

ONE_STEP_EXAMPLE = pipeline.QUICKSTART_EXAMPLE

TWO_STEP_EXAMPLE = (
    "Ben has 2 pencils. He finds 3 more pencils. He gives 1 pencil to a friend. How many pencils does Ben have now?",
    "Ben starts with 2 pencils. He finds 3 more: 2 + 3 = 5. He gives 1 away: 5 - 1 = 4. The final answer is \\boxed{4}.",
)
TERSE_ANSWER = "2 + 3 - 1 = 4. The final answer is \\boxed{4}."


@dataclass(frozen=True)
class Candidate:
    name: str
    dataset: str
    prompt: PromptConfig
    note: str
    temperature: float
    top_p: float = pipeline.DEFAULT_SAMPLING.top_p


T = pipeline.DEFAULT_SAMPLING.temperature
CANDIDATES = (
    Candidate("quickstart", pipeline.DEFAULT_DATASET, pipeline.QUICKSTART_PROMPT, "the shipped default", T),
    *(
        Candidate(
            f"arith-one-step-example-t{t}",
            "arithmetic",
            PromptConfig(math_examples=(ONE_STEP_EXAMPLE,)),
            "the shipped prompt, another temperature" + (" (TRL's default)" if t == 1.0 else ""),
            temperature=t,
        )
        for t in (0.7, 1.0)
    ),
    Candidate("arith-zero-shot", "arithmetic", PromptConfig(), "default instruction, no example", T),
    Candidate(
        "arith-two-step-example",
        "arithmetic",
        PromptConfig(math_examples=(TWO_STEP_EXAMPLE,)),
        "default instruction after a two-step worked example",
        T,
    ),
    Candidate(
        "arith-terse-example",
        "arithmetic",
        PromptConfig(math_examples=((TWO_STEP_EXAMPLE[0], TERSE_ANSWER),)),
        "default instruction after a two-step example answered with one equation",
        T,
    ),
    Candidate(
        "arith-example-no-instruction",
        "arithmetic",
        PromptConfig(math_instruction="{problem}", math_examples=(TWO_STEP_EXAMPLE,)),
        "a two-step example, the bare problem as the user message",
        T,
    ),
    Candidate(
        "mawps-with-shipped-prompt",
        "mawps-singleop",
        pipeline.QUICKSTART_PROMPT,
        "MAWPS single-op, the shipped prompt and sampling",
        T,
    ),
    Candidate(
        "mawps-zero-shot-t1.0",
        "mawps-singleop",
        PromptConfig(),
        "the previous quickstart: MAWPS single-op, default instruction",
        temperature=1.0,
    ),
)
# What a plain run measures (the rest with --only NAME ...): ~1 hour on a busy 2-core machine.
DEFAULT_RUN = (
    "quickstart",
    "arith-one-step-example-t0.7",
    "arith-one-step-example-t1.0",
    "arith-zero-shot",
    "arith-two-step-example",
    "mawps-with-shipped-prompt",
    "mawps-zero-shot-t1.0",
)


def measure(candidate: Candidate, sampler, sampling: SamplingConfig, queries_n: int, verifiers) -> dict:
    from trl.rewards import accuracy_reward

    sampling = replace(sampling, temperature=candidate.temperature, top_p=candidate.top_p)
    queries, _ = load_queries(candidate.dataset, prompt=candidate.prompt, limit=queries_n)
    started = time.perf_counter()
    samples = []
    for start in range(0, len(queries), sampling.batch_queries):
        samples += sampler.sample(queries[start : start + sampling.batch_queries], sampling, sampling.seed)
    seconds = time.perf_counter() - started
    texts = [t for s in samples for t in s.texts]
    flat = [q for q, s in zip(queries, samples, strict=True) for _ in s.texts]
    strict = verifiers["strict"](texts, flat)
    lenient = verifiers["lenient"](texts, flat)
    trl = accuracy_reward([[{"content": t}] for t in texts], [solution_text(q.answer) for q in flat])
    k = sampling.k
    per_query = [
        {
            "id": q.id,
            "level": q.metadata.get("level"),
            "strict": sum(r == 1.0 for r in strict[i * k : (i + 1) * k]),
            "trl": sum(r == 1.0 for r in trl[i * k : (i + 1) * k]),
            "lenient": sum(r == 1.0 for r in lenient[i * k : (i + 1) * k]),
            # Kept for the shipped default only: tests/test_pipeline.py re-scores them (TRL parity, spread).
            **({"completions": list(texts[i * k : (i + 1) * k])} if candidate.name == "quickstart" else {}),
        }
        for i, q in enumerate(queries)
    ]
    tokens = sum(sum(s.completion_tokens) for s in samples)
    return {
        "name": candidate.name,
        "dataset": candidate.dataset,
        "note": candidate.note,
        "temperature": candidate.temperature,
        "top_p": candidate.top_p,
        "prompt": [list(m) for m in flat[0].prompt] if flat else [],
        "queries": len(queries),
        "k": k,
        "per_query": per_query,
        "strict_histogram": pass_rate_histogram([q["strict"] / k for q in per_query]),
        "strict_between": sum(0 < q["strict"] < k for q in per_query),
        "lenient_between": sum(0 < q["lenient"] < k for q in per_query),
        "strict_correct": sum(q["strict"] for q in per_query),
        "trl_correct": sum(q["trl"] for q in per_query),
        "trl_disagreements": sum(a != b for a, b in zip(strict, trl, strict=True)),
        "lenient_correct": sum(q["lenient"] for q in per_query),
        "boxed_samples": sum("\\boxed" in t for t in texts),
        "samples": len(texts),
        "completion_tokens": tokens,
        "seconds": round(seconds, 1),
        "example_completion": texts[0] if texts else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=pipeline.DEFAULT_LIMIT)
    parser.add_argument("--k", type=int, default=pipeline.DEFAULT_SAMPLING.k)
    parser.add_argument("--max-new-tokens", type=int, default=pipeline.DEFAULT_SAMPLING.max_new_tokens)
    parser.add_argument(
        "--only",
        nargs="*",
        default=DEFAULT_RUN,
        help=f"Candidate names to run; all: {', '.join(c.name for c in CANDIDATES)}.",
    )
    parser.add_argument(
        "--readme", help="README whose marked quickstart block is rewritten from the results."
    )
    parser.add_argument(
        "--report-only", action="store_true", help="Measure nothing: re-render from quickstart_prompts.json."
    )
    args = parser.parse_args()
    if args.report_only:
        results = json.loads((RESULTS / "quickstart_prompts.json").read_text())
        write_results(results, args)
    else:
        results = run(args)
    if args.readme:
        rewrite_readme_block(Path(args.readme), README_MARKERS, readme_block(results))


def run(args: argparse.Namespace) -> list[dict]:
    import torch

    torch.set_num_threads(1)
    sampling = SamplingConfig(k=args.k, max_new_tokens=args.max_new_tokens, batch_queries=8)
    sampler = get_sampler("transformers", pipeline.DEFAULT_MODEL)
    verifiers = {mode: MathVerifier(workers=1, extraction=mode) for mode in ("strict", "lenient")}
    results = []
    try:
        for candidate in CANDIDATES:
            if candidate.name not in args.only:
                continue
            results.append(measure(candidate, sampler, sampling, args.queries, verifiers))
            print(json.dumps({k: v for k, v in results[-1].items() if k != "per_query"}), flush=True)
            write_results(results, args)  # after every candidate: an hour-long run keeps what it measured
    finally:
        for verifier in verifiers.values():
            verifier.close()
    return results


README_MARKERS = readme_markers("bench_quickstart_prompts", "benchmarks/bench_quickstart_prompts.py")


def readme_block(results: list[dict]) -> str:
    """The README's account of what command 1 shows, from the measured candidates (none typed by hand)."""
    by_name = {r["name"]: r for r in results}
    shipped = by_name["quickstart"]
    bins = " | ".join(str(v) for v in shipped["strict_histogram"].values())
    lines = [
        f"| p̂ of the {shipped['queries']} queries (k={shipped['k']}) | 0 | (0, .25] | (.25, .5] | (.5, .75] "
        "| (.75, 1) | 1 |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| queries | {bins} |",
        "",
        f"{shipped['strict_between']} queries lie strictly between 0 and 1; {shipped['strict_correct']} of "
        f"{shipped['samples']} samples are correct, and TRL's `accuracy_reward` on the published `solution` "
        f"column gives {shipped['trl_correct']}, with {shipped['trl_disagreements']} disagreements sample by "
        "sample (a test re-scores the recorded completions). By level (correct / samples): "
        + ", ".join(f"level {level} {c}/{n}" for level, (c, n) in sorted(_by_level(shipped).items()))
        + ".",
    ]
    contrasts = [
        ("arith-zero-shot", "without the worked example"),
        ("arith-one-step-example-t1.0", "at temperature 1 (TRL's default)"),
        ("mawps-zero-shot-t1.0", "the previous default (MAWPS single-op, no example, temperature 1)"),
        ("mawps-with-shipped-prompt", "MAWPS single-op with the shipped prompt"),
    ]
    sentences = [
        f"{what}: {r['strict_correct']} of {r['samples']} correct under the strict reward "
        f"({r['lenient_correct']} under lenient, any last number), {r['strict_between']} queries in between"
        for name, what in contrasts
        if (r := by_name.get(name))
    ]
    if sentences:
        lines += ["", "The same model and queries, one setting changed: " + "; ".join(sentences) + "."]
    return "\n".join(lines) + "\n"


def _by_level(result: dict) -> dict[object, tuple[int, int]]:
    counts: dict[object, tuple[int, int]] = {}
    for query in result["per_query"]:
        correct, samples = counts.get(query["level"], (0, 0))
        counts[query["level"]] = (correct + query["strict"], samples + result["k"])
    return counts


def write_results(results: list[dict], args: argparse.Namespace) -> None:
    (RESULTS / "quickstart_prompts.json").write_text(json.dumps(results, indent=1) + "\n")
    rows = [
        [
            f"`{r['name']}`",
            r["note"],
            f"{r['temperature']:g} / {r['top_p']:g}",
            " / ".join(str(v) for v in r["strict_histogram"].values()),
            f"**{r['strict_between']}**",
            f"{r['strict_correct']} / {r['trl_correct']} / {r['lenient_correct']}",
            r["trl_disagreements"],
            f"{r['boxed_samples']}/{r['samples']}",
            f"{r['completion_tokens'] / max(r['samples'], 1):.0f}",
            r["seconds"],
        ]
        for r in results
    ]
    write_table(
        "quickstart_prompts",
        f"Embedded-default candidates: bundled SmolLM2-135M-Instruct, {args.queries} queries x k={args.k}, "
        f"max {args.max_new_tokens} new tokens",
        [
            "candidate",
            "what",
            "temperature / top-p",
            "strict histogram (p=0 / ≤.25 / ≤.5 / ≤.75 / <1 / =1)",
            "queries with 0<p<1 (strict)",
            "correct samples strict / TRL accuracy_reward / lenient",
            "strict vs TRL disagreements",
            "samples with \\boxed",
            "tokens per sample",
            "seconds",
        ],
        rows,
        notes="strict = our default reward (TRL's accuracy_reward extraction); TRL = "
        "`trl.rewards.accuracy_reward` on the published `solution` text; lenient = any last number. "
        "Seconds are wall time on a shared machine (other jobs ran too). "
        "Per-query counts: `benchmarks/results/quickstart_prompts.json`.",
    )


if __name__ == "__main__":
    main()
