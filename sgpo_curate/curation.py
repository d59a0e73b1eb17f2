"""Curation: profiles in, the dataset people download out.

`curate(profiles, config)` applies the sGPO policy (`sgpo_curate.policy`) to one model's profiles:
drop trivial queries (all k samples correct), keep a seeded fraction of unsolvable ones (none correct),
optionally keep only a pass-rate band, give every kept query a recommended GRPO group size and a
curriculum rank, and say what the choice should buy (expected informative groups and rollouts per epoch
against uniform-G GRPO). Every dropped profile is counted under one reason and kept in `rejects`.

`write_curated(result, out_dir, run_info)` writes the Hub layout that `load_dataset(out_dir, config)` and
`publish` understand:

    out_dir/README.md                                   card listing every config in out_dir
    out_dir/data/<config>/train-00000-of-00001.parquet  the curated rows, in curriculum order
    out_dir/plots/<config>/*.png                        the card's pictures
    out_dir/curation/<config>.json                      run info + counts the card is rendered from
    out_dir/rejects/<config>.jsonl                      dropped ids with their reason (not published)

Run it with `sgpo-curate curate PROFILE_DIR --out DIR`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from sgpo_curate.policy import (
    DROP_REASONS,
    ESTIMATORS,
    ORDERS,
    ExpectedSignal,
    GroupSizeRule,
    allocate_group_sizes,
    curriculum_order,
    difficulty_bucket,
    estimate_pass_rate,
    expected_signal,
    get_group_size_rule,
    is_budgeted,
    posterior_informative_probability,
    seeded_subset,
    wilson_interval,
)
from sgpo_curate.records import QueryProfile
from sgpo_curate.rewards import verifier_columns

logger = logging.getLogger(__name__)

# Column order of a published config (DESIGN.md, "Column conventions"). `solution` and `code_prompt`
# are what a verifier needs besides `answer`/`tests`/`entry_point` (see `sgpo_curate.rewards`).
COLUMNS = (
    "id",
    "source",
    "domain",
    "prompt",
    "answer",
    "solution",
    "tests",
    "entry_point",
    "code_prompt",
    "num_samples",
    "num_correct",
    "pass_rate",
    "group_size",
    "difficulty",
    "curriculum_rank",
)

DATA_FILE = "train-00000-of-00001.parquet"
_CONFIG_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class CurateConfig:
    """How profiles become a curated dataset. Defaults follow the sGPO paper."""

    estimator: str = field(
        default="raw",
        metadata={
            "help": f"Pass-rate estimator for `pass_rate`, group sizes and order: {', '.join(ESTIMATORS)} "
            "(raw = c/k as in the paper; beta = Beta(1,1) posterior mean)."
        },
    )
    rule: str = field(
        default="inverse",
        metadata={
            "help": "Group-size rule: inverse (G=ceil(1/p̂)), symmetric (G=ceil(1/min(p̂,1-p̂))), "
            "uniform (fixed G), coverage (smallest G with a non-degenerate group with probability "
            "coverage_probability), knapsack (uniform_group_size x kept queries rollouts per epoch split to "
            "maximise the expected signal), or a dotted path 'pkg.mod:obj'."
        },
    )
    g_min: int = field(default=2, metadata={"help": "Smallest group size (GRPO needs 2 to compare)."})
    g_max: int = field(default=16, metadata={"help": "Largest group size; unsolvable queries get it."})
    uniform_group_size: int = field(
        default=8,
        metadata={
            "help": "G of the uniform rule and of the plain-GRPO baseline the expected signal is "
            "compared with."
        },
    )
    coverage_probability: float = field(
        default=0.75,
        metadata={"help": "α of the coverage rule: wanted probability that a group is not all equal."},
    )
    filter: bool = field(
        default=True,
        metadata={
            "help": "Drop trivial queries and all but unsolvable_keep_fraction of the unsolvable ones. False keeps "
            "every verifiable query (an unfiltered baseline, or online allocation that parks queries itself)."
        },
    )
    # Default 0.25, the paper's value. Dropping every unsolvable query loses the ones the policy learns
    # to solve during training (k=8 samples cannot tell "never" from "rarely": the 95% Wilson interval
    # of 0/8 reaches 0.32); keeping all of them spends g_max rollouts each on groups that are nearly
    # always all-wrong. The feasibility study found this fraction and g_max the strongest knobs, so it
    # is a flag to sweep, not a constant.
    unsolvable_keep_fraction: float = field(
        default=0.25,
        metadata={
            "help": "Share of unsolvable queries (0 of k correct) to keep, chosen by a seeded hash of "
            "the id. 0.25 as in the paper: some stay because k samples cannot tell "
            "'never' from 'rarely', few because each costs g_max mostly wasted rollouts."
        },
    )
    min_pass_rate: float | None = field(
        default=None, metadata={"help": "Drop partially solved queries with p̂ below this (optional band)."}
    )
    max_pass_rate: float | None = field(
        default=None, metadata={"help": "Drop partially solved queries with p̂ above this (optional band)."}
    )
    order: str = field(
        default="easy-to-hard",
        metadata={"help": f"Curriculum order: {', '.join(ORDERS)} (the last two for ablations)."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of the unsolvable sub-sample and the random order."})
    config_name: str | None = field(
        default=None,
        metadata={"help": "Name of the dataset config (one per profiled model); default: the model's name."},
    )

    def __post_init__(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"CurateConfig.estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if self.order not in ORDERS:
            raise ValueError(f"CurateConfig.order must be one of {ORDERS}, got {self.order!r}")
        if not 1 <= self.g_min <= self.g_max:
            raise ValueError(
                f"CurateConfig needs 1 <= g_min <= g_max, got g_min={self.g_min}, g_max={self.g_max}"
            )
        if self.uniform_group_size < 1:
            raise ValueError(f"CurateConfig.uniform_group_size must be >= 1, got {self.uniform_group_size}")
        if not 0 <= self.unsolvable_keep_fraction <= 1:
            raise ValueError(
                f"CurateConfig.unsolvable_keep_fraction must be in [0, 1], got {self.unsolvable_keep_fraction}"
            )
        low = 0.0 if self.min_pass_rate is None else self.min_pass_rate
        high = 1.0 if self.max_pass_rate is None else self.max_pass_rate
        if not 0 <= low <= high <= 1:
            raise ValueError(
                f"CurateConfig needs 0 <= min_pass_rate <= max_pass_rate <= 1, got {self.min_pass_rate}, "
                f"{self.max_pass_rate}"
            )
        if self.config_name is not None and not _CONFIG_NAME_RE.match(self.config_name):
            raise ValueError(
                f"CurateConfig.config_name {self.config_name!r}: use letters, digits, '.', '_', '-'"
            )
        self.make_rule()  # unknown names fail here, listing valid ones

    def make_rule(self) -> GroupSizeRule:
        """The configured group-size rule, ready to use."""
        return get_group_size_rule(self.rule, self.uniform_group_size, probability=self.coverage_probability)


@dataclass(frozen=True)
class Reject:
    """A dropped profile and why."""

    id: str
    reason: str
    num_correct: int
    num_samples: int


@dataclass
class CurationResult:
    """What `curate` returns.

    Args:
        dataset (`datasets.Dataset`): kept rows with the DESIGN.md columns, in curriculum order.
        config (`CurateConfig`): the settings used.
        config_name (`str`): the dataset config these rows are published as.
        model (`str`): the profiled model.
        num_profiles (`int`): profiles given to `curate`.
        drops (`dict[str, int]`): dropped profiles per reason (every reason listed, zeros included).
        rejects (`list[Reject]`): every dropped profile with its reason.
        signal (`ExpectedSignal`): rollouts and informative groups per epoch, rule vs uniform G.
        pool_pass_rates (`list[float]`): raw p̂ of every verifiable profile (for the card's histogram).
        posterior_informative_fraction (`float`): informative-group share averaged over the Beta posterior
            of each kept query's p (unlike the plug-in estimate, not zero for unsolvable ones).
        group_size_uncertain_fraction (`float`): share of kept queries whose group size would differ
            between the two ends of the 95% Wilson interval of p: how much k samples leave open.
    """

    dataset: Any
    config: CurateConfig
    config_name: str
    model: str
    num_profiles: int
    drops: dict[str, int]
    rejects: list[Reject]
    signal: ExpectedSignal
    pool_pass_rates: list[float]
    posterior_informative_fraction: float
    group_size_uncertain_fraction: float

    @property
    def num_kept(self) -> int:
        return len(self.dataset)

    @property
    def num_dropped(self) -> int:
        return sum(self.drops.values())

    def write_rejects(self, path: str | Path) -> Path:
        """Write the rejects as JSON lines (`id`, `reason`, `num_correct`, `num_samples`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as fh:
            for reject in self.rejects:
                fh.write(json.dumps(asdict(reject)) + "\n")
        return path

    def summary(self, run_info: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A JSON-able record of this config, what the dataset card is rendered from."""
        difficulty = Counter(self.dataset["difficulty"])
        group_sizes = Counter(self.dataset["group_size"])
        return {
            "config_name": self.config_name,
            "model": self.model,
            "run_info": dict(run_info or {}),
            "curate_config": asdict(self.config),
            "num_profiles": self.num_profiles,
            "num_rows": self.num_kept,
            "drops": dict(self.drops),
            "difficulty_counts": {
                name: difficulty.get(name, 0) for name in ("easy", "medium", "hard", "unsolved")
            },
            "group_size_counts": {str(g): group_sizes[g] for g in sorted(group_sizes)},
            "signal": _finite(self.signal.to_dict()),
            "posterior_informative_fraction": _finite_value(self.posterior_informative_fraction),
            "group_size_uncertain_fraction": _finite_value(self.group_size_uncertain_fraction),
            "data_files": f"data/{self.config_name}/train-*",
            "plots": {name: f"plots/{self.config_name}/{file}" for name, file in PLOT_FILES.items()},
        }


PLOT_FILES = {
    "pass_rate_histogram": "pass_rate_histogram.png",
    "group_size_distribution": "group_size_distribution.png",
    "rollouts_vs_uniform": "rollouts_vs_uniform.png",
}


def _finite_value(value: float) -> float | None:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _finite(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _finite_value(value) for key, value in values.items()}


def default_config_name(model: str) -> str:
    """A config name from a model id or path: its last component with odd characters replaced.

    Example:
        >>> default_config_name("HuggingFaceTB/SmolLM2-135M-Instruct")
        'SmolLM2-135M-Instruct'
    """
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", model.rstrip("/").split("/")[-1]).strip("-._")
    return name or "default"


def curate(profiles: Iterable[QueryProfile], config: CurateConfig | None = None) -> CurationResult:
    """Filter one model's profiles, give each kept query a group size and a curriculum rank.

    Args:
        profiles (`Iterable[QueryProfile]`): profiles of a single model (from `load_profiles`).
        config (`CurateConfig`, *optional*): the policy; defaults to the paper's settings.

    Returns:
        `CurationResult`: the dataset (DESIGN.md columns, curriculum order), drop counts by reason, the
        rejects and the expected signal against uniform-G GRPO.

    Example:
        >>> from sgpo_curate import CurateConfig, curate
        >>> result = curate(profiles, CurateConfig(g_max=8))  # doctest: +SKIP
        >>> result.dataset[0]["group_size"], result.drops["trivial"]  # doctest: +SKIP
    """
    config = config or CurateConfig()
    profiles = list(profiles)
    model = _single_model(profiles)
    counted = [_Counted(p, p.num_correct, p.num_samples) for p in profiles]  # count each reward list once
    rejects: list[Reject] = []
    candidates, unsolved = _filter(counted, config, rejects)
    keep_fraction = config.unsolvable_keep_fraction if config.filter else 1.0
    keep_unsolved = seeded_subset([c.profile.id for c in unsolved], keep_fraction, config.seed)
    for item in unsolved:
        if item.profile.id in keep_unsolved:
            candidates.append(item)
        else:
            rejects.append(_reject(item, "unsolvable_not_sampled"))
    rule = config.make_rule()
    rows = _annotate(candidates, config, _group_sizes(candidates, config, rule))
    order = curriculum_order(
        [r["id"] for r in rows], [r["pass_rate"] for r in rows], config.order, config.seed
    )
    ordered = [rows[i] | {"curriculum_rank": rank} for rank, i in enumerate(order)]
    pool = [c for c in _unique(counted) if c.samples > 0]
    counts = Counter(r.reason for r in rejects)
    result = CurationResult(
        dataset=_to_dataset(ordered),
        config=config,
        config_name=config.config_name or default_config_name(model),
        model=model,
        num_profiles=len(profiles),
        drops={reason: counts.get(reason, 0) for reason in DROP_REASONS},
        rejects=rejects,
        signal=expected_signal(
            [r["pass_rate"] for r in ordered],
            [r["group_size"] for r in ordered],
            config.uniform_group_size,
            unfiltered_pass_rates=[estimate_pass_rate(c.correct, c.samples, config.estimator) for c in pool],
        ),
        pool_pass_rates=[c.correct / c.samples for c in pool],
        posterior_informative_fraction=_mean(
            posterior_informative_probability(r["num_correct"], r["num_samples"], r["group_size"])
            for r in ordered
        ),
        group_size_uncertain_fraction=_mean(_group_size_uncertain(r, rule, config) for r in ordered),
    )
    logger.info(
        "curated %d of %d profiles of %s (dropped: %s)",
        result.num_kept,
        len(profiles),
        model,
        {k: v for k, v in result.drops.items() if v},
    )
    return result


class _Counted(NamedTuple):
    """A profile with its counts computed once (they are properties that walk the reward list)."""

    profile: QueryProfile
    correct: int
    samples: int


def _single_model(profiles: Sequence[QueryProfile]) -> str:
    models = sorted({p.model for p in profiles})
    if len(models) != 1:
        raise ValueError(
            f"curate needs the profiles of exactly one model (one dataset config per model), got {models or 'none'}"
        )
    return models[0]


def _unique(items: Iterable[_Counted]) -> list[_Counted]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item.profile.id not in seen:
            seen.add(item.profile.id)
            out.append(item)
    return out


def _reject(item: _Counted, reason: str) -> Reject:
    return Reject(item.profile.id, reason, item.correct, item.samples)


def _filter(
    items: Sequence[_Counted], config: CurateConfig, rejects: list[Reject]
) -> tuple[list[_Counted], list[_Counted]]:
    """Split into kept partially-solved profiles and unsolvable candidates; append the rest to rejects."""
    seen: set[str] = set()
    kept: list[_Counted] = []
    unsolved: list[_Counted] = []
    for item in items:
        reason = _drop_reason(item, config, seen)
        seen.add(item.profile.id)
        if reason is not None:
            rejects.append(_reject(item, reason))
        elif item.correct == 0:
            unsolved.append(item)
        else:
            kept.append(item)
    return kept, unsolved


def _drop_reason(item: _Counted, config: CurateConfig, seen: set[str]) -> str | None:
    if item.profile.id in seen:
        return "duplicate_id"
    if item.samples == 0:
        return "unverifiable"
    if item.correct == item.samples and config.filter:
        return "trivial"
    if item.correct == 0:
        return None  # decided by the seeded keep fraction
    p_hat = estimate_pass_rate(item.correct, item.samples, config.estimator)
    if config.min_pass_rate is not None and p_hat < config.min_pass_rate:
        return "below_band"
    if config.max_pass_rate is not None and p_hat > config.max_pass_rate:
        return "above_band"
    return None


def _group_sizes(items: Sequence[_Counted], config: CurateConfig, rule: GroupSizeRule) -> list[int]:
    """G per kept query: per-query rules see its p̂; a budgeted rule splits uniform_group_size x the number of
    kept queries (plain GRPO's rollouts per epoch on them) by their Beta(1 + c, 1 + k - c) posteriors."""
    p_hats = [estimate_pass_rate(i.correct, i.samples, config.estimator) for i in items]
    posteriors = [(1.0 + i.correct, 1.0 + i.samples - i.correct) for i in items]
    budget = config.uniform_group_size * len(items)
    return allocate_group_sizes(
        rule, posteriors, config.g_min, config.g_max, budget=budget, pass_rates=p_hats
    )


def _annotate(items: Sequence[_Counted], config: CurateConfig, sizes: Sequence[int]) -> list[dict[str, Any]]:
    rows = []
    for item, size in zip(items, sizes, strict=True):
        query = item.profile.query
        p_hat = estimate_pass_rate(item.correct, item.samples, config.estimator)
        rows.append(
            {
                **verifier_columns(query),
                "prompt": query.messages,
                "num_samples": item.samples,
                "num_correct": item.correct,
                "pass_rate": p_hat,
                "group_size": int(size),
                "difficulty": difficulty_bucket(item.correct, item.samples, p_hat),
            }
        )
    return rows


def _group_size_uncertain(row: Mapping[str, Any], rule: GroupSizeRule, config: CurateConfig) -> float:
    """1 when the rule gives another G at the ends of p̂'s 95% interval; NaN for budgeted rules (no per-query G)."""
    if is_budgeted(rule):
        return math.nan
    low, high = wilson_interval(row["num_correct"], row["num_samples"])
    return float(rule(low, config.g_min, config.g_max) != rule(high, config.g_min, config.g_max))


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else math.nan


def dataset_features():
    """The `datasets.Features` of a curated config (DESIGN.md columns)."""
    from datasets import Features, List, Value

    return Features(
        {
            "id": Value("string"),
            "source": Value("string"),
            "domain": Value("string"),
            "prompt": List({"role": Value("string"), "content": Value("string")}),
            "answer": Value("string"),
            "solution": Value("string"),
            "tests": Value("string"),
            "entry_point": Value("string"),
            "code_prompt": Value("string"),
            "num_samples": Value("int64"),
            "num_correct": Value("int64"),
            "pass_rate": Value("float64"),
            "group_size": Value("int64"),
            "difficulty": Value("string"),
            "curriculum_rank": Value("int64"),
        }
    )


def _to_dataset(rows: Sequence[Mapping[str, Any]]):
    # Build the Arrow table directly: `Dataset.from_dict` re-encodes every nested value in Python,
    # 10x slower at 100k rows. The schema carries the `datasets` features in its metadata.
    import pyarrow as pa
    from datasets import Dataset

    schema = dataset_features().arrow_schema
    return Dataset(
        pa.Table.from_pydict({name: [row[name] for row in rows] for name in COLUMNS}, schema=schema)
    )


# --------------------------------------------------------------------------- writing


RAW_DIR = "raw"
# What profiling saw for every query (kept or not), with the columns a verifier needs to re-score it.
RAW_COLUMNS = (
    "id",
    "source",
    "domain",
    "prompt",
    "answer",
    "solution",
    "tests",
    "entry_point",
    "code_prompt",
    "model",
    "num_samples",
    "num_correct",
    "pass_rate",
    "rewards",
    "completion_tokens",
    "prompt_tokens",
    "completions",
)


def raw_features():
    """The `datasets.Features` of a `-raw` config."""
    from datasets import Features, List, Value

    types = {
        **dataset_features(),
        "model": Value("string"),
        "rewards": List(Value("float64")),
        "completion_tokens": List(Value("int64")),
        "prompt_tokens": Value("int64"),
        "completions": List(Value("string")),
    }
    return Features({name: types[name] for name in RAW_COLUMNS})


def _raw_row(profile: QueryProfile) -> dict[str, Any]:
    return {
        **verifier_columns(profile.query),
        "prompt": profile.query.messages,
        "model": profile.model,
        "num_samples": profile.num_samples,
        "num_correct": profile.num_correct,
        "pass_rate": profile.pass_rate,
        "rewards": list(profile.rewards),
        "completion_tokens": list(profile.completion_tokens),
        "prompt_tokens": profile.prompt_tokens,
        "completions": list(profile.completions),
    }


def _write_raw(profiles: Iterable[QueryProfile], path: Path) -> str:
    """Per-sample rewards and completions of every profiled query (kept or not), in id order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = sorted((_raw_row(p) for p in profiles), key=lambda row: row["id"])
    features = raw_features()
    table = pa.Table.from_pydict(
        {name: [row[name] for row in rows] for name in RAW_COLUMNS}, schema=features.arrow_schema
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return f"{RAW_DIR}/{path.parent.name}/train-*"


@dataclass(frozen=True)
class CuratedFiles:
    """Paths `write_curated` wrote, all under `out_dir`."""

    out_dir: Path
    config_name: str
    data_file: Path
    card: Path
    summary: Path
    rejects: Path
    plots: dict[str, Path]


def write_curated(
    result: CurationResult,
    out_dir: str | Path,
    run_info: Mapping[str, Any] | None = None,
    profiles: Iterable[QueryProfile] | None = None,
) -> CuratedFiles:
    """Write one curated config (parquet, plots, summary, rejects) and re-render the card for every config
    in `out_dir`, so several models curated into the same folder sit side by side. With `profiles`, the
    per-sample rewards and raw completions of every profiled query go to a `<config>-raw` config beside it.

    Args:
        result (`CurationResult`): what `curate` returned.
        out_dir (`str` or `Path`): the dataset folder (created if missing); `load_dataset(out_dir, config)`
            and `publish(out_dir, ...)` read it.
        run_info (`Mapping`, *optional*): how the profiles were made (`load_run_info(profile_dir)`: model,
            revision, sampling, verifier, source, license, date, versions); shown in the card.
        profiles (`Iterable[QueryProfile]`, *optional*): the profiles `result` was curated from; written
            as the `raw` config (`RAW_COLUMNS`: the verifier's columns, per-sample rewards and completions).

    Returns:
        `CuratedFiles`: the written paths.

    Raises:
        `ValueError`: no row was kept (an empty parquet file is unreadable by `datasets`).
    """
    import pyarrow.parquet as pq

    from sgpo_curate.cards import render_card_from_dir, render_plots
    from sgpo_curate.compare import comparisons_with_others

    if result.num_kept == 0:
        # `datasets` cannot read a parquet file without rows, so an empty config would break every reader.
        dropped = ", ".join(f"{k} {v}" for k, v in result.drops.items() if v)
        raise ValueError(
            f"no query of {result.model} survived curation (dropped: {dropped}); keep more "
            "(e.g. a higher unsolvable_keep_fraction or a wider pass-rate band) or profile more queries"
        )
    out_dir = Path(out_dir)
    name = result.config_name
    data_file = out_dir / "data" / name / DATA_FILE
    data_file.parent.mkdir(parents=True, exist_ok=True)
    # pyarrow directly: same file as `Dataset.to_parquet` (features in the schema metadata), no progress bar
    pq.write_table(result.dataset.with_format("arrow")[:], data_file)
    plots = render_plots(result, out_dir / "plots" / name)
    summary_file = out_dir / "curation" / f"{name}.json"
    summary_file.parent.mkdir(parents=True, exist_ok=True)
    summary = result.summary(run_info)
    if profiles is not None:
        summary["raw_data_files"] = _write_raw(profiles, out_dir / RAW_DIR / name / DATA_FILE)
    summary_file.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    comparisons = comparisons_with_others(
        out_dir, name
    )  # several models in one folder: the card compares them
    if comparisons:
        summary["comparisons"] = comparisons
        summary_file.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    rejects = result.write_rejects(out_dir / "rejects" / f"{name}.jsonl")
    card = out_dir / "README.md"
    card.write_text(render_card_from_dir(out_dir), encoding="utf-8")
    logger.info("wrote config %r (%d rows) to %s", name, result.num_kept, out_dir)
    return CuratedFiles(out_dir, name, data_file, card, summary_file, rejects, plots)
