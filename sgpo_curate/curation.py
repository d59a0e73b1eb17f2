"""Curation: profiles in, the dataset people download out.

`curate(profiles, config)` applies the sGPO policy (`sgpo_curate.policy`) to one model's profiles:
drop trivial queries (all k samples correct), keep a seeded fraction of unsolvable ones (none correct),
optionally keep only a pass-rate band, give every kept query a recommended GRPO group size and a
curriculum rank, and say what the choice should buy (expected informative groups and rollouts per epoch
against uniform-G GRPO). Every dropped profile becomes a `Reject` with one reason. `CurateConfig(filter=False)`
keeps every verifiable query (an unfiltered baseline).

`write_curated(result, out_dir, run_info)` writes one config into a dataset folder (`sgpo_curate.dataset_folder`
owns its layout: rows, raw profiles, plots, summary, rejects) and re-renders the folder's card
(`sgpo_curate.cards`) for every config in it, so several models curated into one folder sit side by side.

Run it with `sgpo-curate curate PROFILE_DIR --out DIR`.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from sgpo_curate.dataset_folder import (
    COLUMNS,
    ConfigSummary,
    CurationSettings,
    DatasetFolder,
    RunInfo,
    dataset_features,
    pass_rate_histogram,
)
from sgpo_curate.errors import InputError
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
from sgpo_curate.records import QueryProfile, Reject
from sgpo_curate.rewards import verifier_columns

logger = logging.getLogger(__name__)

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
            raise InputError(f"CurateConfig.estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if self.order not in ORDERS:
            raise InputError(f"CurateConfig.order must be one of {ORDERS}, got {self.order!r}")
        if not 1 <= self.g_min <= self.g_max:
            raise InputError(
                f"CurateConfig needs 1 <= g_min <= g_max, got g_min={self.g_min}, g_max={self.g_max}"
            )
        if self.uniform_group_size < 1:
            raise InputError(f"CurateConfig.uniform_group_size must be >= 1, got {self.uniform_group_size}")
        if not 0 <= self.unsolvable_keep_fraction <= 1:
            raise InputError(
                f"CurateConfig.unsolvable_keep_fraction must be in [0, 1], got {self.unsolvable_keep_fraction}"
            )
        low = 0.0 if self.min_pass_rate is None else self.min_pass_rate
        high = 1.0 if self.max_pass_rate is None else self.max_pass_rate
        if not 0 <= low <= high <= 1:
            raise InputError(
                f"CurateConfig needs 0 <= min_pass_rate <= max_pass_rate <= 1, got {self.min_pass_rate}, "
                f"{self.max_pass_rate}"
            )
        if self.config_name is not None and not _CONFIG_NAME_RE.match(self.config_name):
            raise InputError(
                f"CurateConfig.config_name {self.config_name!r}: use letters, digits, '.', '_', '-'"
            )
        self.make_rule()  # unknown names fail here, listing valid ones

    def make_rule(self) -> GroupSizeRule:
        """The configured group-size rule, ready to use."""
        return get_group_size_rule(self.rule, self.uniform_group_size, probability=self.coverage_probability)


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
        rejects (`list[Reject]`): every dropped profile with its reason (stage `curation`, key = query id,
            detail = its counts).
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

    def summary(self, run_info: RunInfo | Mapping[str, Any] | None = None) -> ConfigSummary:
        """What the card and the plots of this config are rendered from (`curation/<config>.json`)."""
        difficulty = Counter(self.dataset["difficulty"])
        group_sizes = list(self.dataset["group_size"])
        pass_rates = list(self.dataset["pass_rate"])
        kept_raw = [
            c / n for c, n in zip(self.dataset["num_correct"], self.dataset["num_samples"], strict=True)
        ]
        run = run_info if isinstance(run_info, RunInfo) else RunInfo.from_dict(run_info)
        return ConfigSummary(
            config_name=self.config_name,
            model=self.model,
            run=run,
            curation=CurationSettings.from_dict(vars(self.config)),
            num_profiles=self.num_profiles,
            num_rows=self.num_kept,
            drops=dict(self.drops),
            difficulty_counts={
                name: difficulty.get(name, 0) for name in ("easy", "medium", "hard", "unsolved")
            },
            group_size_counts=dict(sorted(Counter(group_sizes).items())),
            signal=self.signal,
            posterior_informative_fraction=self.posterior_informative_fraction,
            group_size_uncertain_fraction=self.group_size_uncertain_fraction,
            informative_rollouts=informative_rollouts(pass_rates, group_sizes),
            pool_histogram=pass_rate_histogram(self.pool_pass_rates),
            kept_histogram=pass_rate_histogram(kept_raw),
        )


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
    candidates, unsolved, rejects = _filter(counted, config)
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
        raise InputError(
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
    detail = {"num_correct": item.correct, "num_samples": item.samples}
    return Reject("curation", item.profile.query.source, item.profile.id, reason, detail)


def _filter(
    items: Sequence[_Counted], config: CurateConfig
) -> tuple[list[_Counted], list[_Counted], list[Reject]]:
    """Split into kept partially-solved profiles, unsolvable candidates and rejects (with their reason)."""
    seen: set[str] = set()
    kept: list[_Counted] = []
    unsolved: list[_Counted] = []
    rejects: list[Reject] = []
    for item in items:
        reason = _drop_reason(item, config, seen)
        seen.add(item.profile.id)
        if reason is not None:
            rejects.append(_reject(item, reason))
        elif item.correct == 0:
            unsolved.append(item)
        else:
            kept.append(item)
    return kept, unsolved, rejects


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


def informative_rollouts(pass_rates: Sequence[float], group_sizes: Sequence[int]) -> float:
    """Expected rollouts in informative groups: the sum of G x P(a group of G is not all equal) at p = p̂."""
    from sgpo_curate.policy import informative_probability

    return sum(g * informative_probability(p, g) for p, g in zip(pass_rates, group_sizes, strict=True))


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


@dataclass(frozen=True)
class CuratedFiles:
    """Paths `write_curated` wrote, all under `out_dir` (`sgpo_curate.dataset_folder` names them)."""

    out_dir: Path
    config_name: str
    data_file: Path
    card: Path
    summary: Path
    rejects: Path
    plots: dict[str, Path]
    raw_file: Path | None = None


def write_curated(
    result: CurationResult,
    out_dir: str | os.PathLike,
    run_info: RunInfo | Mapping[str, Any] | None = None,
    profiles: Iterable[QueryProfile] | str | os.PathLike | None = None,
) -> CuratedFiles:
    """Write one curated config (rows, plots, summary, rejects) and re-render the card for every config in
    `out_dir`, so several models curated into the same folder sit side by side. With `profiles`, the
    per-sample rewards and raw completions of every profiled query go to a `<config>-raw` config beside it.

    Args:
        result (`CurationResult`): what `curate` returned.
        out_dir (`str` or `Path`): the dataset folder (created if missing); `load_dataset(out_dir, config)`
            and `publish(out_dir, ...)` read it. A README.md there keeps its text outside our markers.
        run_info (`RunInfo` or `Mapping`, *optional*): how the profiles were made (`load_run_info(profile_dir)`:
            model, revision, sampling, verifier, source, license, date, versions); shown in the card.
        profiles (*optional*): what the `raw` config is written from: the profiling folder (or its
            profiles.parquet), streamed in batches so the completions of a million queries never sit in
            memory at once, or the `QueryProfile`s `result` was curated from.

    Returns:
        `CuratedFiles`: the written paths.

    Raises:
        `InputError`: no row was kept (an empty parquet file is unreadable by `datasets`).
    """
    from sgpo_curate.cards import render_card, render_plots
    from sgpo_curate.compare import comparisons_with_others

    if result.num_kept == 0:
        # `datasets` cannot read a parquet file without rows, so an empty config would break every reader.
        dropped = ", ".join(f"{k} {v}" for k, v in result.drops.items() if v)
        raise InputError(
            f"no query of {result.model} survived curation (dropped: {dropped}); keep more "
            "(e.g. a higher unsolvable_keep_fraction or a wider pass-rate band) or profile more queries"
        )
    folder = DatasetFolder(out_dir)
    name = result.config_name
    # pyarrow directly: same file as `Dataset.to_parquet` (features in the schema metadata), no progress bar
    data_file = folder.write_rows(name, result.dataset.with_format("arrow")[:])
    raw_file = folder.write_raw(name, profiles) if profiles is not None else None
    summary = replace(
        result.summary(run_info),
        has_raw=raw_file is not None,
        data_fingerprint=folder.fingerprint(folder.data_files(name)),
        raw_fingerprint=folder.fingerprint(folder.raw_files(name)) if raw_file else "",
    )
    plots = render_plots(summary, folder.plot_dir(name))
    summary_file = folder.write_summary(summary)
    comparisons = comparisons_with_others(
        folder, name
    )  # several models in one folder: the card compares them
    if comparisons:
        summary_file = folder.write_summary(replace(summary, comparisons=tuple(comparisons)))
    rejects = folder.write_rejects(name, result.rejects)
    card = folder.write_card(render_card(folder.read_summaries(), existing=folder.read_card()))
    logger.info("wrote config %r (%d rows) to %s", name, result.num_kept, folder.root)
    return CuratedFiles(folder.root, name, data_file, card, summary_file, rejects, plots, raw_file)
