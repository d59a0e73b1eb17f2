"""`sgpo-curate`: the command line. No logic lives here: each subcommand parses flags, calls one
public function of the package, and turns known errors into a message and an exit code.

Exit codes: 0 success, 1 a run failed, 2 bad input (unknown name, bad flag, unreadable file).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
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
    parser = sub.add_parser(
        "sources", help="List the registered sources.", epilog="example: sgpo-curate sources"
    )
    parser.set_defaults(func=_run_sources)


def _run_sources(args: argparse.Namespace) -> int:
    from sgpo_curate.registry import SOURCES
    from sgpo_curate.sources import get_source

    for name in SOURCES.names():
        source = get_source(name)
        _out(f"{name:<14} {source.domain:<5} {source.description}")
    return 0


def _add_sampling_flags(
    parser: argparse.ArgumentParser, defaults=None, seed_flags=("--seed", "--sampling-seed")
) -> None:
    from sgpo_curate.config import SamplingConfig

    defaults = defaults or SamplingConfig()
    help_of = {f.name: f.metadata["help"] for f in SamplingConfig.__dataclass_fields__.values()}
    parser.add_argument("--k", type=int, default=defaults.k, help=help_of["k"])
    parser.add_argument(
        "--max-new-tokens", type=int, default=defaults.max_new_tokens, help=help_of["max_new_tokens"]
    )
    parser.add_argument(
        "--temperature", type=float, default=defaults.temperature, help=help_of["temperature"]
    )
    parser.add_argument("--top-p", type=float, default=defaults.top_p, help=help_of["top_p"])
    parser.add_argument(
        *seed_flags, dest="sampling_seed", type=int, default=defaults.seed, help=help_of["seed"]
    )
    parser.add_argument(
        "--batch-queries", type=int, default=defaults.batch_queries, help=help_of["batch_queries"]
    )


def _sampling_config(args: argparse.Namespace):
    from sgpo_curate.config import SamplingConfig

    return SamplingConfig(
        k=args.k,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.sampling_seed,
        batch_queries=args.batch_queries,
    )


def _add_profile(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "profile",
        help="Sample k answers per query, verify them, write one profile per query.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""examples:
  sgpo-curate profile --model smollm2-135m-instruct --dataset mawps-singleop --k 4 --max-new-tokens 128 --out runs/p --limit 16
  sgpo-curate profile --model ./my-model --dataset gsm8k --k 8 --out runs/g --shard-index 0 --num-shards 4
  sgpo-curate profile --model ./my-model --dataset data.jsonl --columns question=problem,answer=solution \\
      --answer-format boxed --out runs/mine
  sgpo-curate profile --engine ray --ray-address auto --sampler vllm --model ORG/MODEL --dataset gsm8k \\
      --k 8 --batch-queries 256 --out runs/big    # on a cluster's head node, after `ray start --head`
  sgpo-curate profile --model ./my-model --dataset gsm8k --k 16 --adaptive --prior runs/pilot --out runs/a
Rerun the same command after a crash or Ctrl-C: finished queries are skipped.""",
    )
    parser.add_argument("--model", required=True, help="Bundled model name, local model folder, or Hub id.")
    parser.add_argument(
        "--dataset",
        required=True,
        help="A source from `sgpo-curate sources`, a .jsonl/.json/.parquet/.csv file, or hf:ORG/NAME.",
    )
    parser.add_argument("--out", required=True, help="Output folder (resumable).")
    parser.add_argument("--limit", type=int, help="Profile only the first N queries.")
    _add_sampling_flags(parser)
    parser.add_argument("--sampler", default="transformers", help="transformers (CPU/GPU) or vllm (GPU).")
    parser.add_argument("--verifier", help="Verifier name; default: the dataset's domain (math or code).")
    parser.add_argument("--verifier-workers", type=int, help="Verifier worker processes (default: cores).")
    parser.add_argument(
        "--verifier-timeout",
        type=float,
        help="Seconds per check (math-verify parse/verify; wall clock per sandboxed program).",
    )
    parser.add_argument("--shard-index", type=int, default=0, help="This worker's shard.")
    parser.add_argument(
        "--num-shards", type=int, default=1, help="Number of workers; merge with `sgpo-curate merge`."
    )
    parser.add_argument(
        "--columns", help="Column mapping for file datasets: question=COL,answer=COL[,id=COL]."
    )
    parser.add_argument("--domain", choices=["math", "code"], help="Domain of a file dataset (default math).")
    parser.add_argument(
        "--answer-format",
        default="raw",
        choices=["raw", "gsm8k", "boxed"],
        help="How a file dataset writes its gold answers.",
    )
    _add_prompt_flags(parser)
    _add_extraction_flag(parser)
    parser.add_argument("--no-completions", action="store_true", help="Do not store raw completions.")
    parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")
    _add_engine_flags(parser)
    _add_adaptive_flags(parser)
    parser.set_defaults(func=_run_profile)


def _add_prompt_flags(parser: argparse.ArgumentParser, with_example: bool = False) -> None:
    parser.add_argument(
        "--instruction",
        help="User-message template; {problem} marks where the problem goes, any other brace is kept "
        "as written (e.g. '{problem} End with \\boxed{N}.'). Default asks for \\boxed{}.",
    )
    if with_example:
        parser.add_argument(
            "--zero-shot",
            action="store_true",
            help="Drop the worked example shown before each math problem.",
        )


def _prompt_config(args: argparse.Namespace, defaults=None):
    from dataclasses import replace

    from sgpo_curate.config import PromptConfig

    prompt = defaults or PromptConfig()
    if args.instruction:
        prompt = replace(prompt, math_instruction=args.instruction, code_instruction=args.instruction)
    if getattr(args, "zero_shot", False):
        prompt = replace(prompt, math_examples=())
    return prompt


def _add_extraction_flag(parser: argparse.ArgumentParser) -> None:
    from sgpo_curate.verifiers.math import DEFAULT_EXTRACTION, EXTRACTION_MODES

    parser.add_argument(
        "--math-extraction",
        choices=EXTRACTION_MODES,
        help=f"Math answer extraction (default {DEFAULT_EXTRACTION}): strict = an answer in \\boxed{{}} or "
        "anchored LaTeX, exactly what TRL's accuracy_reward scores; lenient = math-verify's default, which "
        "also takes the last bare number. Recorded in run.json and the card.",
    )


def _add_engine_flags(parser: argparse.ArgumentParser) -> None:
    from sgpo_curate.profiling_ray import RayEngine

    parser.add_argument(
        "--engine",
        default="local",
        help="Where to generate and verify: local (this process) or ray (a Ray cluster, one sampler "
        "per GPU; pip install 'sgpo-curate[ray]'). Same profiles either way.",
    )
    parser.add_argument("--ray-address", help=RayEngine.__dataclass_fields__["address"].metadata["help"])


def _engine(args: argparse.Namespace):
    from sgpo_curate.profiling import get_engine

    if args.ray_address and args.engine != "ray":
        raise UserError("--ray-address applies to --engine ray")
    return get_engine(args.engine, **({"address": args.ray_address} if args.ray_address else {}))


def _add_adaptive_flags(parser: argparse.ArgumentParser) -> None:
    from sgpo_curate.config import AdaptiveConfig

    defaults = AdaptiveConfig()
    help_of = {f.name: f.metadata["help"] for f in AdaptiveConfig.__dataclass_fields__.values()}
    group = parser.add_argument_group("adaptive profiling (--adaptive)")
    group.add_argument(
        "--adaptive",
        action="store_true",
        help="Sample in rounds (2, 4, 6, ... up to --k) and stop each query once its decisions are settled.",
    )
    group.add_argument("--confidence", type=float, default=defaults.confidence, help=help_of["confidence"])
    group.add_argument("--rounds", help=help_of["rounds"] + " Comma-separated, e.g. 2,4,8.")
    group.add_argument("--prior", default=defaults.prior, help=help_of["prior"])
    group.add_argument("--rule", default=defaults.rule, help=help_of["rule"])
    group.add_argument("--g-min", type=int, default=defaults.g_min, help=help_of["g_min"])
    group.add_argument("--g-max", type=int, default=defaults.g_max, help=help_of["g_max"])


def _adaptive_config(args: argparse.Namespace):
    from sgpo_curate.config import AdaptiveConfig

    if not args.adaptive:
        return None
    return AdaptiveConfig(
        confidence=args.confidence,
        rounds=_int_list(args.rounds, "--rounds") if args.rounds else (),
        prior=args.prior,
        rule=args.rule,
        g_min=args.g_min,
        g_max=args.g_max,
    )


def _int_list(text: str, flag: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError(f"{flag} takes comma-separated integers, got {text!r}") from None


def _run_profile(args: argparse.Namespace) -> int:
    from sgpo_curate.config import ProfileConfig
    from sgpo_curate.profiling import profile_dataset
    from sgpo_curate.sources.files import parse_columns

    prompt = _prompt_config(args)
    config = ProfileConfig(
        out_dir=args.out,
        shard_index=args.shard_index,
        num_shards=args.num_shards,
        limit=args.limit,
        keep_completions=not args.no_completions,
        progress=not args.no_progress,
        adaptive=_adaptive_config(args),
    )
    summary = profile_dataset(
        args.dataset,
        args.model,
        config,
        _sampling_config(args),
        sampler=args.sampler,
        verifier=args.verifier,
        prompt=prompt,
        columns=parse_columns(args.columns),
        domain=args.domain,
        answer_format=args.answer_format,
        verifier_workers=args.verifier_workers,
        verifier_timeout=args.verifier_timeout,
        math_extraction=args.math_extraction,
        engine=_engine(args),
    )
    _out(summary.format())
    if args.num_shards > 1:
        _out(
            f"shard {args.shard_index} of {args.num_shards} done; when all are, run: sgpo-curate merge {args.out}"
        )
    return 0


def _add_merge(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "merge",
        help="Join the shards of a profiling run into profiles.parquet.",
        epilog="example: sgpo-curate merge runs/g",
    )
    parser.add_argument("out", help="The profiling output folder.")
    parser.add_argument(
        "--allow-partial", action="store_true", help="Merge even if some shard is unfinished."
    )
    parser.set_defaults(func=_run_merge)


def _run_merge(args: argparse.Namespace) -> int:
    from sgpo_curate.profiling import merge

    path = merge(args.out, allow_partial=args.allow_partial)
    _out(f"merged profiles: {path}")
    return 0


def _add_curate(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "curate",
        help="Filter profiles, add group sizes and curriculum order, write parquet + dataset card.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""examples:
  sgpo-curate curate runs/p --out curated
  sgpo-curate curate runs/p --out curated --rule symmetric --g-max 8 --unsolvable-keep 0.1
  sgpo-curate curate runs/q --out curated --config-name qwen-0.5b   # a second model, same folder
Writes OUT/data/CONFIG/*.parquet, OUT/README.md (card), OUT/plots/CONFIG/*.png, OUT/rejects/CONFIG.jsonl.""",
    )
    parser.add_argument("profile_dir", help="A profiling output folder (profiles.parquet + run.json).")
    parser.add_argument(
        "--out", required=True, help="Dataset folder to write (several configs may share it)."
    )
    _add_curate_flags(parser)
    parser.set_defaults(func=_run_curate)


def _add_curate_flags(parser: argparse.ArgumentParser) -> None:
    from sgpo_curate.curation import CurateConfig

    help_of = {f.name: f.metadata["help"] for f in CurateConfig.__dataclass_fields__.values()}
    parser.add_argument("--rule", default="inverse", help=help_of["rule"])
    parser.add_argument("--estimator", default="raw", help=help_of["estimator"])
    parser.add_argument("--g-min", type=int, default=2, help=help_of["g_min"])
    parser.add_argument("--g-max", type=int, default=16, help=help_of["g_max"])
    parser.add_argument("--uniform-group-size", type=int, default=8, help=help_of["uniform_group_size"])
    parser.add_argument(
        "--unsolvable-keep", type=float, default=0.25, help=help_of["unsolvable_keep_fraction"]
    )
    parser.add_argument("--min-pass-rate", type=float, help=help_of["min_pass_rate"])
    parser.add_argument("--max-pass-rate", type=float, help=help_of["max_pass_rate"])
    parser.add_argument("--order", default="easy-to-hard", help=help_of["order"])
    parser.add_argument("--seed", type=int, default=0, help=help_of["seed"])
    parser.add_argument("--config-name", help=help_of["config_name"])


def _run_curate(args: argparse.Namespace) -> int:
    from sgpo_curate.curation import curate, write_curated
    from sgpo_curate.profiling import load_profiles, load_run_info

    config = _curate_config(args)
    profiles = load_profiles(args.profile_dir)
    result = curate(profiles, config)
    files = write_curated(result, args.out, load_run_info(args.profile_dir), profiles=profiles)
    _report_curation(result, files, config)
    return 0


def _curate_config(args: argparse.Namespace):
    from sgpo_curate.curation import CurateConfig

    return CurateConfig(
        estimator=args.estimator,
        rule=args.rule,
        g_min=args.g_min,
        g_max=args.g_max,
        uniform_group_size=args.uniform_group_size,
        unsolvable_keep_fraction=args.unsolvable_keep,
        min_pass_rate=args.min_pass_rate,
        max_pass_rate=args.max_pass_rate,
        order=args.order,
        seed=args.seed,
        config_name=args.config_name,
    )


def _report_curation(result, files, config) -> None:
    signal = result.signal
    _out(
        f"config {result.config_name!r} ({result.model}): kept {result.num_kept} of {result.num_profiles} profiles"
    )
    for reason, count in result.drops.items():
        if count:
            _out(f"  dropped {count:>6}  {reason}")
    sizes = Counter(result.dataset["group_size"])
    _out("group sizes G (queries): " + ", ".join(f"{g} ({sizes[g]})" for g in sorted(sizes)))
    _out(
        f"rollouts per epoch: {signal.rollouts} ({config.rule}) vs {signal.uniform_rollouts} "
        f"(uniform G={signal.uniform_group_size} on kept rows) vs {signal.unfiltered_rollouts} (plain GRPO on all); "
        f"expected informative groups {signal.informative_fraction:.2f} vs {signal.uniform_informative_fraction:.2f}"
    )
    _out(
        f"wrote {files.data_file}, {files.card}, plots in {files.data_file.parent.parent.parent / 'plots'}, "
        f"rejects in {files.rejects}"
    )


def _add_publish(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "publish",
        help="Push a curated folder to a Hub dataset repo (one config per profiled model).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""examples:
  sgpo-curate publish curated --repo me/gsm8k-sgpo
  sgpo-curate publish curated --repo me/gsm8k-sgpo --config qwen-0.5b --private
The token comes from HF_TOKEN or `hf auth login`; rerunning with unchanged files pushes nothing.""",
    )
    parser.add_argument("dir", help="A folder written by `sgpo-curate curate`.")
    parser.add_argument("--repo", required=True, help="Dataset repo id, ORG/NAME.")
    parser.add_argument("--config", help="Push only this config (default: every config in DIR).")
    parser.add_argument("--revision", help="Branch to commit to (created if missing); default main.")
    parser.add_argument("--private", action="store_true", help="Create the repo private.")
    parser.set_defaults(func=_run_publish)


def _run_publish(args: argparse.Namespace) -> int:
    from sgpo_curate.hub import HubAuthError, publish

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per HTTP request otherwise
    try:
        result = publish(
            args.dir, args.repo, config_name=args.config, revision=args.revision, private=args.private
        )
    except HubAuthError as exc:
        raise UserError(str(exc)) from None
    state = "pushed" if result.changed else "unchanged, nothing pushed"
    _out(f"{result.repo_id}: {state} config(s) {', '.join(result.configs)} at commit {result.commit[:10]}")
    _out(f"configs in the repo: {', '.join(result.all_configs)}; {result.url}")
    return 0


# Each entry adds one subcommand; a subcommand's module keeps its parser next to its runner.
def _add_quickstart(sub: argparse._SubParsersAction) -> None:
    from sgpo_curate import pipeline

    parser = sub.add_parser(
        "quickstart",
        help="The whole job on an embedded default: profile, curate, write the dataset locally.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"""By default: the bundled {pipeline.DEFAULT_MODEL} on the first {pipeline.DEFAULT_LIMIT} \
{pipeline.DEFAULT_DATASET} problems (generated word problems, 1-3 steps), k={pipeline.DEFAULT_SAMPLING.k} at \
temperature {pipeline.DEFAULT_SAMPLING.temperature:g}, a worked example before each problem, strict rewards (TRL's \
accuracy_reward); no network needed.
examples:
  sgpo-curate quickstart
  sgpo-curate quickstart --out runs/qs --limit 64 --k 8
  sgpo-curate quickstart --dataset mawps-singleop --out runs/mawps   # a real benchmark instead
  sgpo-curate quickstart --push-to-hub me/arithmetic-sgpo   # needs HF_TOKEN or `hf auth login`""",
    )
    parser.add_argument(
        "--out", default="runs/quickstart", help="Run folder (profiles/ and dataset/ inside)."
    )
    parser.add_argument(
        "--model", default=pipeline.DEFAULT_MODEL, help="Bundled model name, folder, or Hub id."
    )
    parser.add_argument("--dataset", default=pipeline.DEFAULT_DATASET, help="Source name or file.")
    parser.add_argument("--limit", type=int, default=pipeline.DEFAULT_LIMIT, help="First N queries.")
    _add_prompt_flags(parser, with_example=True)
    _add_extraction_flag(parser)
    _add_sampling_flags(
        parser, pipeline.DEFAULT_SAMPLING, seed_flags=("--sampling-seed",)
    )  # --seed: curation
    _add_curate_flags(parser)
    parser.add_argument("--push-to-hub", metavar="ORG/NAME", help="Publish the curated dataset to this repo.")
    parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")
    parser.set_defaults(func=_run_quickstart)


def _run_quickstart(args: argparse.Namespace) -> int:
    from sgpo_curate import pipeline
    from sgpo_curate.hub import HubAuthError
    from sgpo_curate.pipeline import run_pipeline

    config = _curate_config(args)
    try:
        result = run_pipeline(
            args.out,
            dataset=args.dataset,
            model=args.model,
            limit=args.limit,
            sampling=_sampling_config(args),
            curate_config=config,
            push_to_hub=args.push_to_hub,
            progress=not args.no_progress,
            prompt=_prompt_config(args, pipeline.QUICKSTART_PROMPT),
            math_extraction=args.math_extraction,
        )
    except HubAuthError as exc:  # profiles and the local dataset are written before publishing
        raise UserError(
            f"{exc} (the dataset is written locally under {args.out}; rerun to publish)"
        ) from None
    _out(result.profile_summary.format())
    _out(result.reward_line())
    _report_curation(result.curation, result.files, config)
    if result.published is not None:
        _out(f"published: {result.published}")
    _out(
        f"next: load it with datasets.load_dataset({str(result.files.out_dir)!r}, {result.curation.config_name!r})"
    )
    return 0


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    from sgpo_curate.simulate import PRIORS, SimulateConfig

    defaults = SimulateConfig()
    help_of = {f.name: f.metadata["help"] for f in SimulateConfig.__dataclass_fields__.values()}
    parser = sub.add_parser(
        "simulate",
        help="Predict rollouts, zero-advantage share and signal per rule and budget, before training.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""examples:
  sgpo-curate simulate runs/p
  sgpo-curate simulate runs/p --group-sizes 4,8,16 --scale 100000 --rollouts-per-step 1024
  sgpo-curate simulate curated --config SmolLM2-135M-Instruct --prior flat
Prints a table and writes OUT/simulation.json and OUT/simulation.png (default OUT: PATH/simulation).""",
    )
    parser.add_argument("path", help="A profiling folder, a profiles.parquet, or a curated dataset folder.")
    parser.add_argument("--config", help="Config of a curated folder that holds several.")
    parser.add_argument("--group-sizes", default="8", help=help_of["group_sizes"] + " Comma-separated.")
    parser.add_argument(
        "--rules", default=",".join(defaults.rules), help=help_of["rules"] + " Comma-separated."
    )
    parser.add_argument("--g-min", type=int, default=defaults.g_min, help=help_of["g_min"])
    parser.add_argument("--g-max", type=int, default=defaults.g_max, help=help_of["g_max"])
    parser.add_argument(
        "--unsolvable-keep",
        type=float,
        default=defaults.unsolvable_keep_fraction,
        help=help_of["unsolvable_keep_fraction"],
    )
    parser.add_argument("--prior", default=defaults.prior, choices=PRIORS, help=help_of["prior"])
    parser.add_argument("--scale", type=int, help=help_of["scale"])
    parser.add_argument("--seed", type=int, default=defaults.seed, help=help_of["seed"])
    parser.add_argument("--rollouts-per-step", type=int, help="Also print optimizer steps per epoch.")
    parser.add_argument("--out", help="Folder for simulation.json and simulation.png.")
    parser.set_defaults(func=_run_simulate)


def _run_simulate(args: argparse.Namespace) -> int:
    from sgpo_curate.simulate import SimulateConfig, simulate_pool

    config = SimulateConfig(
        group_sizes=_int_list(args.group_sizes, "--group-sizes"),
        rules=tuple(r for r in args.rules.split(",") if r),
        g_min=args.g_min,
        g_max=args.g_max,
        unsolvable_keep_fraction=args.unsolvable_keep,
        prior=args.prior,
        scale=args.scale,
        seed=args.seed,
    )
    logging.getLogger("sgpo_curate.curation").setLevel(logging.WARNING)  # one INFO line per arm otherwise
    sim, out = simulate_pool(args.path, config, args.config, args.out)
    _out(f"{sim.queries} queries planned from a pool of {sim.pool} ({sim.prior} prior), per epoch:")
    _out(sim.table(args.rollouts_per_step))
    _out(f"wrote {out / 'simulation.json'} and {out / 'simulation.png'}")
    return 0


def _add_compare(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "compare",
        help="How well one model's profile predicts another's on their shared queries.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""examples:
  sgpo-curate compare curated SmolLM2-135M-Instruct Qwen2.5-7B-Instruct
  sgpo-curate compare me/gsm8k-sgpo small-model large-model --json out.json
`sgpo-curate curate` already writes these comparisons into the card when a folder holds several configs.""",
    )
    parser.add_argument("repo_or_dir", help="A curated folder or a Hub dataset repo ORG/NAME.")
    parser.add_argument("config_a", help="The predictor config (e.g. the small model's).")
    parser.add_argument("config_b", help="The target config (e.g. the large model's).")
    parser.add_argument("--json", help="Also write the comparison to this JSON file.")
    parser.set_defaults(func=_run_compare)


def _run_compare(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from sgpo_curate.compare import compare

    result = compare(args.repo_or_dir, args.config_a, args.config_b)
    _out(result.format())
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    return 0


# Each entry adds one subcommand; a subcommand's module keeps its parser next to its runner.
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_quickstart,
    _add_profile,
    _add_merge,
    _add_curate,
    _add_simulate,
    _add_compare,
    _add_publish,
    _add_sources,
]


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
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
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
