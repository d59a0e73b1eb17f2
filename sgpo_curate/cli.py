"""`sgpo-curate`: the command line. No logic lives here: each subcommand parses flags, calls one
public function of the package, and turns known errors into a message and an exit code.

Exit codes: 0 success, 1 a run failed, 2 bad input (unknown name, bad flag, unreadable file).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from sgpo_curate.registry import UnknownNameError

logger = logging.getLogger("sgpo_curate")

# Errors that mean "the user asked for something that does not exist or is malformed": exit 2.
USER_ERRORS: tuple[type[BaseException], ...] = (UnknownNameError, FileNotFoundError, ValueError)


class UserError(Exception):
    """An error whose message is all the user needs: printed without a traceback, exit code 2."""


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _add_sources(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sources", help="List the registered sources.",
                            epilog="example: sgpo-curate sources")
    parser.set_defaults(func=_run_sources)


def _run_sources(args: argparse.Namespace) -> int:
    from sgpo_curate.registry import SOURCES
    from sgpo_curate.sources import get_source

    for name in SOURCES.names():
        source = get_source(name)
        _out(f"{name:<14} {source.domain:<5} {source.description}")
    return 0


def _add_sampling_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--k", type=int, default=8, help="Samples per query.")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="Maximum generated tokens per sample.")
    parser.add_argument("--temperature", type=float, default=1.0, help="Sampling temperature.")
    parser.add_argument("--top-p", type=float, default=1.0, help="Nucleus sampling mass.")
    parser.add_argument("--seed", type=int, default=0, help="Base seed: the same seed gives the same profiles.")
    parser.add_argument("--batch-queries", type=int, default=8,
                        help="Queries per generate call (each with k samples).")


def _sampling_config(args: argparse.Namespace):
    from sgpo_curate.config import SamplingConfig

    return SamplingConfig(k=args.k, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                          top_p=args.top_p, seed=args.seed, batch_queries=args.batch_queries)


def _add_profile(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "profile", help="Sample k answers per query, verify them, write one profile per query.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""examples:
  sgpo-curate profile --model smollm2-135m-instruct --dataset mawps-singleop --k 4 --max-new-tokens 128 --out runs/p --limit 16
  sgpo-curate profile --model ./my-model --dataset gsm8k --k 8 --out runs/g --shard-index 0 --num-shards 4
  sgpo-curate profile --model ./my-model --dataset data.jsonl --columns question=problem,answer=solution \\
      --answer-format boxed --out runs/mine
Rerun the same command after a crash or Ctrl-C: finished queries are skipped.""")
    parser.add_argument("--model", required=True, help="Bundled model name, local model folder, or Hub id.")
    parser.add_argument("--dataset", required=True,
                        help="A source from `sgpo-curate sources`, a .jsonl/.json/.parquet/.csv file, or hf:ORG/NAME.")
    parser.add_argument("--out", required=True, help="Output folder (resumable).")
    parser.add_argument("--limit", type=int, help="Profile only the first N queries.")
    _add_sampling_flags(parser)
    parser.add_argument("--sampler", default="transformers", help="transformers (CPU/GPU) or vllm (GPU).")
    parser.add_argument("--verifier", help="Verifier name; default: the dataset's domain (math or code).")
    parser.add_argument("--verifier-workers", type=int, help="Verifier worker processes (default: cores).")
    parser.add_argument("--shard-index", type=int, default=0, help="This worker's shard.")
    parser.add_argument("--num-shards", type=int, default=1, help="Number of workers; merge with `sgpo-curate merge`.")
    parser.add_argument("--columns", help="Column mapping for file datasets: question=COL,answer=COL[,id=COL].")
    parser.add_argument("--domain", choices=["math", "code"], help="Domain of a file dataset (default math).")
    parser.add_argument("--answer-format", default="raw", choices=["raw", "gsm8k", "boxed"],
                        help="How a file dataset writes its gold answers.")
    parser.add_argument("--instruction", help="User-message template with {problem}; default asks for \\boxed{}.")
    parser.add_argument("--no-completions", action="store_true", help="Do not store raw completions.")
    parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")
    parser.set_defaults(func=_run_profile)


def _run_profile(args: argparse.Namespace) -> int:
    from sgpo_curate.config import ProfileConfig, PromptConfig
    from sgpo_curate.profiling import profile_dataset
    from sgpo_curate.sources.files import parse_columns

    prompt = PromptConfig(**({"math_instruction": args.instruction, "code_instruction": args.instruction}
                             if args.instruction else {}))
    config = ProfileConfig(out_dir=args.out, shard_index=args.shard_index, num_shards=args.num_shards,
                           limit=args.limit, keep_completions=not args.no_completions,
                           progress=not args.no_progress)
    summary = profile_dataset(
        args.dataset, args.model, config, _sampling_config(args), sampler=args.sampler, verifier=args.verifier,
        prompt=prompt, columns=parse_columns(args.columns), domain=args.domain,
        answer_format=args.answer_format, verifier_workers=args.verifier_workers,
    )
    _out(summary.format())
    if args.num_shards > 1:
        _out(f"shard {args.shard_index} of {args.num_shards} done; when all are, run: sgpo-curate merge {args.out}")
    return 0


def _add_merge(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("merge", help="Join the shards of a profiling run into profiles.parquet.",
                            epilog="example: sgpo-curate merge runs/g")
    parser.add_argument("out", help="The profiling output folder.")
    parser.add_argument("--allow-partial", action="store_true", help="Merge even if some shard is unfinished.")
    parser.set_defaults(func=_run_merge)


def _run_merge(args: argparse.Namespace) -> int:
    from sgpo_curate.profiling import merge

    path = merge(args.out, allow_partial=args.allow_partial)
    _out(f"merged profiles: {path}")
    return 0


# Each entry adds one subcommand; a subcommand's module keeps its parser next to its runner.
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_sources, _add_profile, _add_merge]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sgpo-curate",
        description="Profile a model on math/code data, curate sGPO datasets, publish them.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="Debug logging.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (UserError, *USER_ERRORS) as exc:
        sys.stderr.write(f"sgpo-curate {args.command}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; finished work is saved, rerun the same command to resume\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
