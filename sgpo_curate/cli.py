"""`sgpo-curate`: the command line. No logic lives here: each subcommand builds its configs from flags, calls one
public function of the package, and prints what it returned.

Flags come from the config dataclasses (`Flags`): a field's `help` metadata is its `--help` line, its default
the flag's default, and the dataclass's `__post_init__` checks the value, so a setting is described and checked
in one place. Every subcommand takes `--config FILE.yaml`, whose keys are its flag names (`max_new_tokens` or
`max-new-tokens`); a flag given on the command line overrides the file. A flag has one meaning everywhere:
`--sampling-seed` seeds sampling, `--curation-seed` the unsolvable sub-sample, `--simulation-seed` the
simulator's resampling; `--config-name` names a dataset config; `publish` takes `hf`'s `--token`,
`--revision`, `--commit-message`, `--create-pr` and `--private`.

Exit codes: 0 success; 2 bad input (a flag or file that cannot work, an unknown name, a missing extra, a
rejected token), printed without a traceback; 1 a failure outside this program (the Hub, the network),
printed without a traceback; anything else is a bug and keeps its traceback. `-v` logs at debug level (our
messages) and at info level (the libraries': every HTTP request, for example); a token is never logged.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import types
import typing
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sgpo_curate._extras import MissingExtraError
from sgpo_curate.errors import InputError
from sgpo_curate.registry import UnknownNameError

logger = logging.getLogger("sgpo_curate")

# Errors whose message is all the user needs: printed without a traceback, exit code 2.
USER_ERRORS: tuple[type[BaseException], ...] = (
    InputError,
    UnknownNameError,
    FileNotFoundError,
    MissingExtraError,
)


class UserError(Exception):
    """Bad input found by the CLI itself: printed without a traceback, exit code 2."""


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Examples in the epilog keep their lines; each flag's help ends with its default (`Flags` adds it)."""


# --------------------------------------------------------------------------- flags from config dataclasses


@dataclass(frozen=True)
class Flags:
    """The command-line flags of one config dataclass.

    Each field becomes `--field-name` (or its `rename`), typed from the annotation (`int`, `float`, `str`,
    `bool` as `--x/--no-x`, `tuple[int, ...]` and `tuple[str, ...]` as comma-separated lists, `X | None`),
    with the field's help and default. Only flags that were given (on the command line or in the YAML file)
    reach the dataclass; the rest keep its defaults (or those of `defaults`), and its `__post_init__` checks
    the result: a failing check is bad input naming the flags.

    Args:
        cls (`type`): the config dataclass.
        key (`str`): prefix of the parsed attributes (`args.<key>.<field>`), unique per subcommand.
        rename (`Mapping[str, str]`): field -> flag name, where the field's own name would be ambiguous.
        skip (`tuple[str, ...]`): fields without a flag (set by the subcommand itself).
        defaults (*optional*): an instance of `cls` whose values are the defaults (e.g. quickstart's sampling).
        title (`str`, *optional*): heading of the flags in `--help`.
        aliases (`Mapping[str, tuple[str, ...]]`): extra flag names of a field (earlier spellings).
    """

    cls: type
    key: str
    rename: Mapping[str, str] = field(default_factory=dict)
    skip: tuple[str, ...] = ()
    defaults: Any = None
    title: str | None = None
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def fields(self) -> list[dataclasses.Field]:
        return [f for f in dataclasses.fields(self.cls) if f.name not in self.skip]

    def flag(self, name: str) -> str:
        return "--" + self.rename.get(name, name).replace("_", "-")

    def dest(self, name: str) -> str:
        return f"{self.key}.{name}"

    def add(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group(self.title) if self.title else parser
        hints = typing.get_type_hints(self.cls)
        for f in self.fields():
            convert, is_bool = _converter(hints[f.name], f"{self.cls.__name__}.{f.name}")
            default = self._default(f)
            help_text = f.metadata.get("help", "")
            if typing.get_origin(hints[f.name]) is tuple:
                help_text += " Comma-separated."
            shown = default is not None and default != () and len(_show(default)) <= 60
            if shown and not is_bool:
                help_text += f" (default: {_show(default)})"
            names = (self.flag(f.name), *self.aliases.get(f.name, ()))
            if is_bool:
                help_text += f" (default: {'on' if default else 'off'})"
                group.add_argument(
                    *names,
                    dest=self.dest(f.name),
                    action=argparse.BooleanOptionalAction,
                    default=argparse.SUPPRESS,
                    help=help_text,
                )
            else:
                group.add_argument(
                    *names,
                    dest=self.dest(f.name),
                    type=convert,
                    default=argparse.SUPPRESS,
                    metavar=self.rename.get(f.name, f.name).upper(),
                    help=help_text,
                )

    def _default(self, f: dataclasses.Field) -> Any:
        if self.defaults is not None:
            return getattr(self.defaults, f.name)
        if f.default is not dataclasses.MISSING:
            return f.default
        if f.default_factory is not dataclasses.MISSING:
            return f.default_factory()
        return None

    def given(self, args: argparse.Namespace) -> dict[str, Any]:
        """Field -> value of every flag of this group that was given."""
        values = {}
        for f in self.fields():
            if hasattr(args, self.dest(f.name)):
                value = getattr(args, self.dest(f.name))
                values[f.name] = tuple(value) if isinstance(value, list) else value
        return values

    def build(self, args: argparse.Namespace, **fixed: Any) -> Any:
        """The config the given flags describe (`fixed` sets fields that have no flag)."""
        values = self.given(args) | fixed
        missing = [f for f in dataclasses.fields(self.cls) if f.name not in values and _required(f)]
        if missing and self.defaults is None:
            raise UserError(f"{self.flag(missing[0].name)} is required")
        try:
            if self.defaults is not None:
                return dataclasses.replace(self.defaults, **values)
            return self.cls(**values)
        except InputError:
            raise
        except ValueError as exc:
            given = ", ".join(self.flag(name) for name in values if name not in fixed)
            raise UserError(f"{exc} (from {given or 'the defaults'})") from exc


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _show(value: Any) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


def _converter(hint: Any, where: str) -> tuple[Callable[[str], Any] | None, bool]:
    """(string -> value, is_bool) for a field's type annotation."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(inner) == 1:
            return _converter(inner[0], where)
    if hint is bool:
        return None, True
    if hint in (int, float, str):
        return hint, False
    if typing.get_origin(hint) is tuple:
        item, *rest = typing.get_args(hint)
        if rest == [Ellipsis] and item in (int, str):
            return _comma_list(item), False
    raise TypeError(f"{where}: no command-line flag for a {hint!r} field; skip it in Flags")


def _comma_list(item: type) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        try:
            return tuple(item(part.strip()) for part in text.split(",") if part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {item.__name__}s, got {text!r}"
            ) from None

    parse.__name__ = f"comma-separated {item.__name__}s"
    return parse


# --------------------------------------------------------------------------- --config FILE.yaml


def _add_config_file_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE.yaml",
        help="Read flags from a YAML file whose keys are flag names (e.g. `k: 8`, `max_new_tokens: 128`); "
        "a flag on the command line overrides the file.",
    )


def _config_file_path(argv: Sequence[str]) -> str | None:
    """The value of `--config` on the command line (before parsing: the file's values become defaults)."""
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def _apply_config_file(parser: argparse.ArgumentParser, path: str) -> None:
    """Set the file's values as the subcommand's defaults, so flags given on the command line win."""
    import yaml

    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise FileNotFoundError(f"--config {path}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise InputError(f"--config {path}: not valid YAML ({exc})") from None
    if loaded is None:
        return
    if not isinstance(loaded, dict):
        raise InputError(
            f"--config {path}: expected a mapping of flag names to values, got {type(loaded).__name__}"
        )
    flags = {
        option[2:]: action
        for action in parser._actions  # argparse's list of what the parser accepts
        for option in action.option_strings
        if option.startswith("--") and option not in ("--help", "--config")
    }
    defaults = {}
    for key, value in loaded.items():
        action = flags.get(str(key).replace("_", "-"))
        if action is None:
            valid = ", ".join(sorted(name for name in flags if not name.startswith("no-")))
            raise InputError(f"--config {path}: unknown key {key!r}; valid keys: {valid}")
        defaults[action.dest] = _file_value(action, value, path, key)
    parser.set_defaults(**defaults)


def _file_value(action: argparse.Action, value: Any, path: str, key: str) -> Any:
    """A YAML value as the flag would parse it: text goes through the flag's own conversion."""
    if isinstance(action, argparse.BooleanOptionalAction) or action.nargs == 0:
        if not isinstance(value, bool):
            raise InputError(f"--config {path}: {key} is an on/off flag, give true or false, not {value!r}")
        return value if action.const is None else action.const if value else action.default
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    if action.type is not None and not isinstance(value, bool):
        try:
            return action.type(str(value))
        except (ValueError, argparse.ArgumentTypeError) as exc:
            raise InputError(f"--config {path}: {key}: {exc}") from None
    return value


# --------------------------------------------------------------------------- subcommands


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


def _sampling_flags(defaults: Any = None) -> Flags:
    from sgpo_curate.config import SamplingConfig

    return Flags(
        SamplingConfig, "sampling", rename={"seed": "sampling_seed"}, defaults=defaults, title="sampling"
    )


def _prompt_flags() -> Flags:
    from sgpo_curate.config import PromptConfig

    return Flags(PromptConfig, "prompt", skip=("math_examples",), title="prompt")


def _add_instruction_flags(parser: argparse.ArgumentParser, with_example: bool = False) -> None:
    parser.add_argument(
        "--instruction",
        help="User-message template of both domains (sets --math-instruction and --code-instruction); "
        "{problem} marks where the problem goes, any other brace is kept as written.",
    )
    if with_example:
        parser.add_argument(
            "--zero-shot", action="store_true", help="Drop the worked example shown before each math problem."
        )


def _prompt_config(args: argparse.Namespace, defaults: Any = None):
    from sgpo_curate.config import PromptConfig

    values = _prompt_flags().given(args)
    if args.instruction:
        values = {"math_instruction": args.instruction, "code_instruction": args.instruction} | values
    if getattr(args, "zero_shot", False):
        values["math_examples"] = ()
    try:
        return dataclasses.replace(defaults or PromptConfig(), **values)
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def _add_extraction_flag(parser: argparse.ArgumentParser) -> None:
    from sgpo_curate.verifiers.math import DEFAULT_EXTRACTION, EXTRACTION_MODES

    parser.add_argument(
        "--math-extraction",
        choices=EXTRACTION_MODES,
        help=f"Math answer extraction (default {DEFAULT_EXTRACTION}): strict = an answer in \\boxed{{}} or "
        "anchored LaTeX, exactly what TRL's accuracy_reward scores; lenient = math-verify's default, which "
        "also takes the last bare number. Recorded in run.json and the card.",
    )


def _profile_flags(defaults: Any = None) -> Flags:
    from sgpo_curate.config import ProfileConfig

    return Flags(
        ProfileConfig,
        "run",
        rename={"out_dir": "out", "keep_completions": "completions"},
        skip=("adaptive",),
        defaults=defaults,
        title="output",
    )


def _adaptive_flags() -> Flags:
    from sgpo_curate.config import AdaptiveConfig

    return Flags(AdaptiveConfig, "adaptive", title="adaptive profiling (with --adaptive)")


def _ray_flags() -> Flags:
    from sgpo_curate.profiling_ray import RayEngine

    names = [f.name for f in dataclasses.fields(RayEngine)]
    return Flags(
        RayEngine, "ray", rename={n: f"ray_{n}" for n in names}, title="ray engine (with --engine ray)"
    )


PROFILE_EXAMPLES = """examples:
  sgpo-curate profile --model smollm2-135m-instruct --dataset mawps-singleop --k 4 --max-new-tokens 128 --out runs/p --limit 16
  sgpo-curate profile --model ./my-model --dataset gsm8k --k 8 --out runs/g --shard-index 0 --num-shards 4
  sgpo-curate profile --model ./my-model --dataset data.jsonl --columns question=problem,answer=solution \\
      --answer-format boxed --out runs/mine
  sgpo-curate profile --engine ray --ray-address auto --sampler vllm --model ORG/MODEL --dataset gsm8k \\
      --k 8 --batch-queries 256 --out runs/big    # on a cluster's head node, after `ray start --head`
  sgpo-curate profile --model ./my-model --dataset gsm8k --k 16 --adaptive --prior runs/pilot --out runs/a
  sgpo-curate profile --config profile.yaml --limit 100   # the file's flags, with --limit overridden
Rerun the same command after a crash or Ctrl-C: finished queries are skipped."""


def _add_profile(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "profile",
        help="Sample k answers per query, verify them, write one profile per query.",
        formatter_class=_HelpFormatter,
        epilog=PROFILE_EXAMPLES,
    )
    _add_config_file_flag(parser)
    parser.add_argument("--model", help="Bundled model name, local model folder, or Hub id (required).")
    parser.add_argument(
        "--dataset",
        help="A source from `sgpo-curate sources`, a .jsonl/.json/.parquet/.csv file, or hf:ORG/NAME (required).",
    )
    _profile_flags().add(parser)
    _sampling_flags().add(parser)
    parser.add_argument("--sampler", default="transformers", help="transformers (CPU/GPU) or vllm (GPU).")
    parser.add_argument("--verifier", help="Verifier name; default: the dataset's domain (math or code).")
    parser.add_argument("--verifier-workers", type=int, help="Verifier worker processes (default: cores).")
    parser.add_argument(
        "--verifier-timeout",
        type=float,
        help="Seconds per check (math-verify parse/verify; wall clock per sandboxed program).",
    )
    parser.add_argument(
        "--columns", help="Column mapping for file datasets: question=COL,answer=COL[,id=COL]."
    )
    parser.add_argument("--domain", choices=["math", "code"], help="Domain of a file dataset (default math).")
    parser.add_argument(
        "--answer-format",
        default="raw",
        choices=["raw", "gsm8k", "boxed"],
        help="How a file dataset writes its gold answers (default: raw).",
    )
    _add_instruction_flags(parser)
    _prompt_flags().add(parser)
    _add_extraction_flag(parser)
    parser.add_argument(
        "--engine",
        default="local",
        help="Where to generate and verify: local (this process) or ray (a Ray cluster, one sampler per GPU; "
        "pip install 'sgpo-curate[ray]'). Same profiles either way (default: local).",
    )
    _ray_flags().add(parser)
    parser.add_argument(
        "--adaptive",
        action="store_true",
        help="Sample in rounds (2, 4, 6, ... up to --k) and stop each query once its decisions are settled.",
    )
    _adaptive_flags().add(parser)
    parser.set_defaults(func=_run_profile)


def _engine(args: argparse.Namespace):
    from sgpo_curate.profiling import get_engine

    flags = _ray_flags()
    given = flags.given(args)
    if args.engine != "ray":
        if given:
            raise UserError(f"{flags.flag(next(iter(given)))} applies to --engine ray")
        return get_engine(args.engine)
    return flags.build(args)


def _adaptive_config(args: argparse.Namespace):
    flags = _adaptive_flags()
    if not args.adaptive:
        given = flags.given(args)
        if given:
            raise UserError(f"{flags.flag(next(iter(given)))} applies with --adaptive")
        return None
    return flags.build(args)


def _require(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        if getattr(args, name, None) is None:
            raise UserError(f"--{name.replace('_', '-')} is required (on the command line or in --config)")


def _run_profile(args: argparse.Namespace) -> int:
    from sgpo_curate.profiling import profile_dataset
    from sgpo_curate.sources.files import parse_columns

    _require(args, "model", "dataset")
    config = _profile_flags().build(args, adaptive=_adaptive_config(args))
    summary = profile_dataset(
        args.dataset,
        args.model,
        config,
        _sampling_flags().build(args),
        sampler=args.sampler,
        verifier=args.verifier,
        prompt=_prompt_config(args),
        columns=parse_columns(args.columns),
        domain=args.domain,
        answer_format=args.answer_format,
        verifier_workers=args.verifier_workers,
        verifier_timeout=args.verifier_timeout,
        math_extraction=args.math_extraction,
        engine=_engine(args),
    )
    _out(summary.format())
    if config.num_shards > 1:
        _out(
            f"shard {config.shard_index} of {config.num_shards} done; when all are, run: "
            f"sgpo-curate merge {config.out_dir}"
        )
    return 0


def _add_merge(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "merge",
        help="Join the shards of a profiling run into profiles.parquet.",
        formatter_class=_HelpFormatter,
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


def _curate_flags() -> Flags:
    from sgpo_curate.curation import CurateConfig

    return Flags(
        CurateConfig,
        "curation",
        rename={"seed": "curation_seed"},
        aliases={"unsolvable_keep_fraction": ("--unsolvable-keep",)},
        title="curation policy",
    )


CURATE_EXAMPLES = """examples:
  sgpo-curate curate runs/p --out curated
  sgpo-curate curate runs/p --out curated --rule symmetric --g-max 8 --unsolvable-keep-fraction 0.1
  sgpo-curate curate runs/p --out curated --no-filter --rule uniform   # an unfiltered baseline
  sgpo-curate curate runs/q --out curated --config-name qwen-0.5b   # a second model, same folder
Writes OUT/data/CONFIG/*.parquet, OUT/raw/CONFIG/*.parquet (every profiled query), OUT/README.md (card),
OUT/plots/CONFIG/*.png, OUT/curation/CONFIG.json and OUT/rejects/CONFIG.jsonl."""


def _add_curate(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "curate",
        help="Filter profiles, add group sizes and curriculum order, write parquet + dataset card.",
        formatter_class=_HelpFormatter,
        epilog=CURATE_EXAMPLES,
    )
    parser.add_argument("profile_dir", help="A profiling output folder (profiles.parquet + run.json).")
    _add_config_file_flag(parser)
    parser.add_argument("--out", help="Dataset folder to write; several configs may share it (required).")
    _curate_flags().add(parser)
    parser.set_defaults(func=_run_curate)


def _run_curate(args: argparse.Namespace) -> int:
    from sgpo_curate.curation import curate, write_curated
    from sgpo_curate.profiling import load_profiles, load_run_info

    _require(args, "out")
    config = _curate_flags().build(args)
    result = curate(load_profiles(args.profile_dir), config)
    files = write_curated(result, args.out, load_run_info(args.profile_dir), profiles=args.profile_dir)
    _report_curation(result, files)
    return 0


def _report_curation(result, files) -> None:
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
        f"rollouts per epoch: {signal.rollouts} ({result.config.rule}) vs {signal.uniform_rollouts} "
        f"(uniform G={signal.uniform_group_size} on kept rows) vs {signal.unfiltered_rollouts} (plain GRPO on all); "
        f"expected informative groups {signal.informative_fraction:.2f} vs {signal.uniform_informative_fraction:.2f}"
    )
    _out(
        f"wrote {files.data_file}, {files.card}, plots in {files.plots['pass_rate_histogram'].parent}, rejects in {files.rejects}"
    )


def _publish_flags() -> Flags:
    from sgpo_curate.hub import PublishConfig

    return Flags(PublishConfig, "publish", rename={"repo_id": "repo"}, title="publishing")


PUBLISH_EXAMPLES = """examples:
  sgpo-curate publish curated --repo me/gsm8k-sgpo
  sgpo-curate publish curated --repo me/gsm8k-sgpo --config-name qwen-0.5b --private
  sgpo-curate publish curated --repo someone/gsm8k-sgpo --create-pr --commit-message "Add Qwen profiles"
The token comes from --token, HF_TOKEN or `hf auth login`; rerunning with unchanged files pushes nothing.
Everything lands in one commit or none: when the repo moved meanwhile (HTTP 412) or the network broke,
nothing is committed and the same command can simply be rerun."""


def _add_publish(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "publish",
        help="Push a curated folder to a Hub dataset repo (one config per profiled model).",
        formatter_class=_HelpFormatter,
        epilog=PUBLISH_EXAMPLES,
    )
    parser.add_argument("dir", help="A folder written by `sgpo-curate curate`.")
    _add_config_file_flag(parser)
    _publish_flags().add(parser)
    parser.set_defaults(func=_run_publish)


def _run_publish(args: argparse.Namespace) -> int:
    from sgpo_curate.hub import publish

    config = _publish_flags().build(args)
    result = publish(args.dir, **dataclasses.asdict(config))
    state = "pushed" if result.changed else "unchanged, nothing pushed"
    _out(f"{result.repo_id}: {state} config(s) {', '.join(result.configs)} at commit {result.commit[:10]}")
    _out(f"configs in the repo: {', '.join(result.all_configs)}; {result.url}")
    if result.pr_url:
        _out(f"pull request: {result.pr_url}")
    return 0


def _add_quickstart(sub: argparse._SubParsersAction) -> None:
    from sgpo_curate import pipeline

    parser = sub.add_parser(
        "quickstart",
        help="The whole job on an embedded default: profile, curate, write the dataset locally.",
        formatter_class=_HelpFormatter,
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
    _add_config_file_flag(parser)
    parser.add_argument(
        "--out",
        default="runs/quickstart",
        help="Run folder, profiles/ and dataset/ inside (default: runs/quickstart).",
    )
    parser.add_argument(
        "--model", default=pipeline.DEFAULT_MODEL, help="Bundled model name, folder, or Hub id."
    )
    parser.add_argument("--dataset", default=pipeline.DEFAULT_DATASET, help="Source name or file.")
    parser.add_argument(
        "--limit", type=int, default=pipeline.DEFAULT_LIMIT, help="First N queries (default: %(default)s)."
    )
    _add_instruction_flags(parser, with_example=True)
    _prompt_flags().add(parser)
    _add_extraction_flag(parser)
    _sampling_flags(pipeline.DEFAULT_SAMPLING).add(parser)
    _curate_flags().add(parser)
    parser.add_argument("--push-to-hub", metavar="ORG/NAME", help="Publish the curated dataset to this repo.")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Show the profiling progress bar.",
    )
    parser.set_defaults(func=_run_quickstart)


def _run_quickstart(args: argparse.Namespace) -> int:
    from sgpo_curate import pipeline
    from sgpo_curate.hub import HubError

    config = _curate_flags().build(args)
    try:
        result = pipeline.run_pipeline(
            args.out,
            dataset=args.dataset,
            model=args.model,
            limit=args.limit,
            sampling=_sampling_flags(pipeline.DEFAULT_SAMPLING).build(args),
            curate_config=config,
            push_to_hub=args.push_to_hub,
            progress=args.progress,
            prompt=_prompt_config(args, pipeline.QUICKSTART_PROMPT),
            math_extraction=args.math_extraction,
        )
    except HubError as exc:  # profiles and the local dataset are written before publishing
        raise type(exc)(f"{exc} (the dataset is written under {args.out}; rerun to publish)") from None
    _out(result.profile_summary.format())
    _out(result.reward_line())
    _report_curation(result.curation, result.files)
    if result.published is not None:
        _out(f"published: {result.published.url} at commit {result.published.commit[:10]}")
    _out(
        f"next: load it with datasets.load_dataset({str(result.files.out_dir)!r}, {result.curation.config_name!r})"
    )
    return 0


def _simulate_flags() -> Flags:
    from sgpo_curate.simulate import SimulateConfig

    return Flags(SimulateConfig, "simulation", rename={"seed": "simulation_seed"}, title="simulation")


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "simulate",
        help="Predict rollouts, zero-advantage share and signal per rule and budget, before training.",
        formatter_class=_HelpFormatter,
        epilog="""examples:
  sgpo-curate simulate runs/p
  sgpo-curate simulate runs/p --group-sizes 4,8,16 --scale 100000 --rollouts-per-step 1024
  sgpo-curate simulate curated --config-name SmolLM2-135M-Instruct --prior flat
Prints a table and writes OUT/simulation.json and OUT/simulation.png (default OUT: PATH/simulation).""",
    )
    parser.add_argument("path", help="A profiling folder, a profiles.parquet, or a curated dataset folder.")
    _add_config_file_flag(parser)
    parser.add_argument("--config-name", help="The config of a curated folder that holds several.")
    _simulate_flags().add(parser)
    parser.add_argument("--rollouts-per-step", type=int, help="Also print optimizer steps per epoch.")
    parser.add_argument("--out", help="Folder for simulation.json and simulation.png.")
    parser.set_defaults(func=_run_simulate)


def _run_simulate(args: argparse.Namespace) -> int:
    from sgpo_curate.simulate import simulate_pool

    config = _simulate_flags().build(args)
    logging.getLogger("sgpo_curate.curation").setLevel(logging.WARNING)  # one INFO line per arm otherwise
    sim, out = simulate_pool(args.path, config, args.config_name, args.out)
    _out(f"{sim.queries} queries planned from a pool of {sim.pool} ({sim.prior} prior), per epoch:")
    _out(sim.table(args.rollouts_per_step))
    _out(f"wrote {out / 'simulation.json'} and {out / 'simulation.png'}")
    return 0


def _add_compare(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "compare",
        help="How well one model's profile predicts another's on their shared queries.",
        formatter_class=_HelpFormatter,
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

    from sgpo_curate.compare import compare

    result = compare(args.repo_or_dir, args.config_a, args.config_b)
    _out(result.format())
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    return 0


# Each entry adds one subcommand; a subcommand's parser sits next to its runner.
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

MAIN_EXAMPLES = """examples:
  sgpo-curate quickstart                                   # the whole job on a bundled model, offline
  sgpo-curate profile --model smollm2-135m-instruct --dataset gsm8k --k 4 --out runs/p --limit 16
  sgpo-curate curate runs/p --out curated
  sgpo-curate publish curated --repo me/gsm8k-sgpo
Every subcommand has --help with examples and takes --config FILE.yaml."""


def build_parser() -> argparse.ArgumentParser:
    from sgpo_curate import __version__

    parser = argparse.ArgumentParser(
        prog="sgpo-curate",
        description="Profile a model on math/code data, curate sGPO datasets, publish them.",
        formatter_class=_HelpFormatter,
        epilog=MAIN_EXAMPLES,
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="More logging: ours at debug level, the libraries' at info.",
    )
    parser.add_argument("--version", action="version", version=f"sgpo-curate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse `argv`, with the subcommand's `--config FILE.yaml` as its defaults."""
    path = _config_file_path(argv)
    if path is not None:
        command = parser.parse_known_args(argv)[0].command
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        _apply_config_file(subparsers.choices[command], path)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    verbose = "-v" in argv[:1] or "--verbose" in argv[:1]
    _configure_logging(verbose)
    try:
        args = _parse(parser, argv)
        return args.func(args)
    except (UserError, *USER_ERRORS) as exc:
        return _fail(argv, exc, 2)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; finished work is saved, rerun the same command to resume\n")
        return 130
    except Exception as exc:
        from sgpo_curate.hub import HubAuthError, HubError  # core module: importing it is cheap

        if isinstance(exc, HubError):
            return _fail(argv, exc, 2 if isinstance(exc, HubAuthError) else 1)
        raise


def _fail(argv: Sequence[str], exc: BaseException, code: int) -> int:
    command = next((a for a in argv if not a.startswith("-")), "")
    sys.stderr.write(f"sgpo-curate {command}: error: {exc}\n".replace("sgpo-curate : ", "sgpo-curate: "))
    return code


def _configure_logging(verbose: bool) -> None:
    """Our messages at INFO (DEBUG with -v); other libraries' at WARNING (INFO with -v)."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)


if __name__ == "__main__":
    sys.exit(main())
