"""Cards: pure renders of the packaged templates (the top-level `cards/` folder of the source tree, installed
as `sgpo_curate.card_templates` and read with `importlib.resources`), plus the dataset card's plots.

- Dataset cards render from `ConfigSummary` records (`sgpo_curate.dataset_folder`), one per config, so a card
  can be re-rendered for every config of a folder or a Hub repo without the rows. The YAML header lists one
  `configs` entry per curated config and per `-raw` config (the first curated one marked `default` when there
  are several), the source license, `language`, the paper's `arxiv:` tag, `source_datasets` (Hub ids where
  the source has one) and, under `sgpo_profiles`, how each config was made.
- An existing card is merged, not replaced: metadata keys and `configs` entries this package does not write
  stay as they are, and so does the body outside the markers around our generated section (`GENERATED_START`
  / `GENERATED_END`): a README someone wrote by hand keeps its text, ours is appended once and replaced after.
- Model cards (`render_model_card`) describe a checkpoint trained with `AdaptiveGRPOTrainer` from its compute
  summary: dataset and config, the allocation settings, compute totals and the profiling FLOPs charged.

Nothing here touches the network; `sgpo_curate.hub` downloads and uploads.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sgpo_curate.dataset_folder import (
    HISTOGRAM_BINS,
    PLOT_FILES,
    ConfigSummary,
    RunInfo,
    data_pattern,
    raw_pattern,
)
from sgpo_curate.policy import DIFFICULTIES, DROP_REASONS

TEMPLATES = "sgpo_curate.card_templates"
SOURCE_TREE_TEMPLATES = Path(__file__).resolve().parent.parent / "cards"
DATASET_TEMPLATE = "dataset_card.md"
MODEL_TEMPLATE = "model_card.md"
PLACEHOLDER_REPO = "ORG/NAME"
PAPER_ID = "2606.08854"
PAPER_TAG = f"arxiv:{PAPER_ID}"
TAGS = ("rlvr", "grpo", "sgpo", "difficulty", "pass-rate", "curriculum", PAPER_TAG)
GENERATED_START = (
    "<!-- sgpo-curate:start (generated: replaced on every write; edit outside these markers) -->"
)
GENERATED_END = "<!-- sgpo-curate:end -->"
# Top-level keys of the card's metadata that are rendered afresh on every write; every other key of an
# existing card (dataset_info, another tool's) is kept. Conditional ones are listed too, so a key we wrote
# once (license_name for mixed sources) does not outlive its reason. `language` and `tags` merge instead.
CARD_KEYS = (
    "license",
    "license_name",
    "license_details",
    "pretty_name",
    "task_categories",
    "annotations_creators",
    "size_categories",
    "source_datasets",
    "configs",
    "sgpo_profiles",
)
DEFAULT_LANGUAGE = ["en"]  # every bundled source is English; an existing card's `language` wins
_FRONT_MATTER = re.compile(r"^---\s*\n(.*?\n)?---\s*(?:\n|$)", re.DOTALL)


def load_template(name: str = DATASET_TEMPLATE) -> str:
    """The text of a packaged card template (`cards/<name>` in the source tree)."""
    try:
        templates = resources.files(TEMPLATES)
    except ModuleNotFoundError:
        # `sgpo_curate` imported from a source tree that is not installed (a clone on PYTHONPATH, a
        # script run from the repository root): `cards/` becomes the package only at install time.
        templates = SOURCE_TREE_TEMPLATES
    return templates.joinpath(name).read_text(encoding="utf-8")


def _environment():
    import jinja2

    return jinja2.Environment(
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )


def split_card(text: str | None) -> tuple[dict[str, Any], str]:
    """A README's YAML metadata and its body (`({}, text)` without a YAML header; `({}, "")` for None)."""
    if not text:
        return {}, ""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    meta = yaml.safe_load(match.group(1) or "") or {}
    return (meta if isinstance(meta, dict) else {}), text[match.end() :]


def join_card(meta: Mapping[str, Any], body: str) -> str:
    header = yaml.safe_dump(dict(meta), sort_keys=False, allow_unicode=True, default_flow_style=False)
    return f"---\n{header}---\n\n{body.lstrip(chr(10))}"


def merge_body(existing: str, generated: str, existing_is_ours: bool) -> str:
    """The card body: `generated` between the markers, the rest of `existing` kept.

    Args:
        existing (`str`): the current body ("" when there is no card).
        generated (`str`): our section, without markers.
        existing_is_ours (`bool`): the current card was written by an earlier version of this package
            (its metadata holds `sgpo_profiles`) that put no markers: its whole body is ours to replace.
    """
    section = f"{GENERATED_START}\n{generated.strip(chr(10))}\n{GENERATED_END}\n"
    start, end = existing.find(GENERATED_START), existing.find(GENERATED_END)
    if start != -1 and end > start:
        return existing[:start] + section + existing[end + len(GENERATED_END) :].lstrip("\n")
    if existing_is_ours or not existing.strip():
        return section
    return existing.rstrip("\n") + "\n\n" + section


# --------------------------------------------------------------------------- dataset cards


def render_card(
    summaries: Sequence[ConfigSummary], repo_id: str | None = None, existing: str | None = None
) -> str:
    """README.md text (YAML header + body) for the given configs, merged into an existing card.

    Args:
        summaries (`Sequence[ConfigSummary]`): one per config the card describes (`DatasetFolder.read_summaries`).
        repo_id (`str`, *optional*): the Hub repo, shown in the "Use" section (`ORG/NAME` when unknown).
        existing (`str`, *optional*): the current README of the folder or repo. Its metadata keys outside
            `CARD_KEYS`, its `configs` entries that no summary describes and its body outside our markers are
            kept.

    Example:
        >>> text = render_card(DatasetFolder("curated/").read_summaries(), repo_id="me/gsm8k-sgpo")  # doctest: +SKIP
        >>> DatasetCard(text).data.configs  # doctest: +SKIP
    """
    summaries = sorted(summaries, key=lambda s: s.config_name)
    if not summaries:
        raise ValueError("render_card needs at least one curated config")
    old_meta, old_body = split_card(existing)
    meta = card_metadata(summaries, old_meta)
    foreign = [
        c["config_name"] for c in meta["configs"] if c["config_name"] not in _our_config_names(summaries)
    ]
    # The examples load the default config (the one `load_dataset(repo)` gives), else the first.
    default = _default_config(meta["configs"])
    example = next((s for s in summaries if s.config_name == default), summaries[0])
    body = (
        _environment()
        .from_string(load_template(DATASET_TEMPLATE))
        .render(
            title=meta["pretty_name"],
            package_version=_package_version(),
            configs=[_config_context(s) for s in summaries],
            raw_configs=[_config_context(s) for s in summaries if s.has_raw],
            extra_configs=foreign,
            default_config=default,
            repo_id=repo_id or PLACEHOLDER_REPO,
            comparisons=_comparisons(summaries),
            example_config=example.config_name,
            example=_training_example(example),
            source_citations=_source_citations(summaries),
        )
    )
    return join_card(meta, merge_body(old_body, body, "sgpo_profiles" in old_meta))


def card_metadata(
    summaries: Sequence[ConfigSummary], existing: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The card's YAML metadata as a dict.

    Args:
        summaries (`Sequence[ConfigSummary]`): one per config.
        existing (`Mapping`, *optional*): an existing card's metadata. Its `configs` entries that no summary
            describes are kept as they are (publishing never drops someone else's config; entries named after a
            summary's config or its `-raw` config are ours and rendered afresh), its `default` choice stands while
            that config exists, its keys outside `CARD_KEYS` are kept, its `language` wins, its tags stay.
    """
    existing = dict(existing or {})
    summaries = sorted(summaries, key=lambda s: s.config_name)
    runs = [s.run for s in summaries]
    licenses = sorted({_license_id(r.source_license) for r in runs if r.source_license})
    sources = sorted({r.source_hub_id or r.source for r in runs if r.source_hub_id or r.source})
    ours = _our_config_names(summaries)
    configs = [
        _config_entry(
            s.config_name, data_pattern(s.config_name), s.data_fingerprint, f"sGPO-curated rows of {s.model}"
        )
        for s in summaries
    ]
    configs += [
        _config_entry(
            s.raw_config_name, raw_pattern(s.config_name), s.raw_fingerprint, f"raw profile of {s.model}"
        )
        for s in summaries
        if s.has_raw
    ]
    configs += [
        {k: v for k, v in c.items() if k != "default"}
        for c in existing.get("configs") or []
        if isinstance(c, Mapping) and c.get("config_name") and c["config_name"] not in ours
    ]
    configs = sorted(configs, key=lambda c: str(c["config_name"]))
    _mark_default(configs, _default_config(existing.get("configs") or []), summaries[0].config_name)
    meta: dict[str, Any] = {
        # The Hub takes one license id; configs from sources under different licenses say "other" and
        # name them (each config's own is under sgpo_profiles).
        "license": licenses[0] if len(licenses) == 1 else "other",
        "language": existing.get("language") or list(DEFAULT_LANGUAGE),
        "pretty_name": _title(summaries),
        "task_categories": ["text-generation"],
        "tags": list(dict.fromkeys([*TAGS, *(existing.get("tags") or [])])),
        "annotations_creators": ["machine-generated"],
        "size_categories": [_size_category(max(s.num_rows for s in summaries))],
    }
    if len(licenses) > 1:
        meta["license_name"] = "mixed"
        meta["license_details"] = "Rows keep their source's license: " + ", ".join(licenses)
    if sources:
        meta["source_datasets"] = sources
    meta |= {key: value for key, value in existing.items() if key not in (*CARD_KEYS, *meta)}
    meta["configs"] = configs
    meta["sgpo_profiles"] = {s.config_name: _profile_metadata(s) for s in summaries}
    return meta


def _our_config_names(summaries: Sequence[ConfigSummary]) -> set[str]:
    return {name for s in summaries for name in (s.config_name, s.raw_config_name)}


def _config_entry(name: str, pattern: str, fingerprint: str, what: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"config_name": name, "data_files": [{"split": "train", "path": pattern}]}
    if fingerprint:
        # `datasets` caches a local folder by name and YAML, not content: the fingerprint makes a rewritten
        # folder's configs new to it (a builder config's `description` is part of its cache key).
        entry["description"] = f"{what} (content sha256 {fingerprint})"
    return entry


def _default_config(configs: Sequence[Any]) -> str | None:
    return next((str(c["config_name"]) for c in configs if isinstance(c, Mapping) and c.get("default")), None)


def _mark_default(configs: list[dict[str, Any]], chosen: str | None, fallback: str) -> None:
    """Mark one config `default` when there are several: the existing card's choice while it exists, else ours."""
    if len(configs) < 2:
        return
    names = {c["config_name"] for c in configs}
    default = chosen if chosen in names else fallback
    for c in configs:
        if c["config_name"] == default:
            c["default"] = True


def _comparisons(summaries: Sequence[ConfigSummary]) -> list[dict[str, str]]:
    """The comparisons stored in the summaries (`sgpo_curate.compare`) between configs of this card, one per
    ordered pair, formatted for the table."""
    names = {s.config_name for s in summaries}
    pairs = {
        (c.config_a, c.config_b): c
        for s in summaries
        for c in s.comparisons
        if c.config_a in names and c.config_b in names
    }
    return [
        {
            "config_a": a,
            "config_b": b,
            "shared": str(c.shared),
            "spearman": _fmt(c.spearman),
            "bucket_agreement": _fmt(c.bucket_agreement),
            "filter_agreement": _fmt(c.filter_agreement),
            "group_size_agreement": _fmt(c.group_size_agreement),
            "mean_abs_difference": _fmt(c.mean_abs_difference),
            "halves": f"{_fmt(c.half_spearman_a_b)} / {_fmt(c.half_spearman_b_b)}",
        }
        for (a, b), c in sorted(pairs.items())
    ]


def _license_id(name: str) -> str:
    """A Hub license id from a free-form name: `"CC BY 4.0"` -> `"cc-by-4.0"`, `"MIT"` -> `"mit"`."""
    return re.sub(r"[\s_]+", "-", str(name).strip().lower()) or "unknown"


def _title(summaries: Sequence[ConfigSummary]) -> str:
    sources = sorted({s.run.source for s in summaries if s.run.source})
    return f"{', '.join(sources) if sources else 'RLVR queries'} with sGPO difficulty annotations"


def _size_category(rows: int) -> str:
    for limit, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if rows < limit:
            return label
    return "1M<n<10M"


PROFILE_KEYS = (
    "model",
    "model_hub_id",
    "model_revision",
    "num_parameters",
    "sampling",
    "verifier",
    "verifier_version",
    "verifier_settings",
    "source",
    "source_hub_id",
    "source_license",
    "adaptive",
    "date",
    "package_versions",
)


def _profile_metadata(summary: ConfigSummary) -> dict[str, Any]:
    """How a config was made, for the YAML's `sgpo_profiles` (unrecorded values left out)."""
    run = summary.run.to_dict()
    run["sampling"] = {k: v for k, v in run["sampling"].items() if v is not None}
    out = {key: run[key] for key in PROFILE_KEYS if run.get(key) not in (None, {}, "")}
    out.setdefault("model", summary.model)
    out["curation"] = {k: v for k, v in asdict(summary.curation).items() if k != "config_name"}
    out["num_profiles"] = summary.num_profiles
    out["num_rows"] = summary.num_rows
    out["drops"] = dict(summary.drops)
    return out


def _fmt(value: float | int | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _percent(value: float) -> str:
    return "" if not math.isfinite(value) else f"{100 * value:.0f}%"


def _ordered(counts: Mapping[str, int], known: Sequence[str]) -> list[tuple[str, int]]:
    """`counts` in the order of `known` (the order filters run), unknown keys after."""
    return [(k, counts[k]) for k in known if k in counts] + sorted(
        (k, v) for k, v in counts.items() if k not in known
    )


def _unknown(value: object) -> object:
    return "unknown" if value is None else value


def _config_context(summary: ConfigSummary) -> dict[str, Any]:
    run, sampling, settings, signal = summary.run, summary.run.sampling, summary.curation, summary.signal
    low, high = settings.min_pass_rate, settings.max_pass_rate
    return {
        "name": summary.config_name,
        "raw_name": summary.raw_config_name,
        "model": run.model or summary.model,
        "model_revision": run.model_revision or "unknown",
        "num_parameters": run.num_parameters,
        "k": _unknown(sampling.k),
        "adaptive": _adaptive_description(run),
        "temperature": _unknown(sampling.temperature),
        "top_p": _unknown(sampling.top_p),
        "max_new_tokens": _unknown(sampling.max_new_tokens),
        "sampling_seed": _unknown(sampling.seed),
        "sampler": run.sampler or "unknown",
        "verifier": run.verifier or "unknown",
        "verifier_version": run.verifier_version or "",
        "verifier_settings": ", ".join(f"{k}={v}" for k, v in sorted(run.verifier_settings.items())),
        "reward": _reward_description(run),
        "tampered_samples": run.tampered_samples,
        "source": run.source or "unknown",
        "source_hub_id": run.source_hub_id,
        "source_license": run.source_license or "unknown",
        "date": run.date or "unknown",
        "package_versions": ", ".join(f"{k} {v}" for k, v in sorted(run.package_versions.items())),
        "rule": settings.rule,
        "estimator": settings.estimator,
        "g_min": settings.g_min,
        "g_max": settings.g_max,
        "filtering": _filtering_description(summary),
        "order": settings.order,
        "band": "none"
        if low is None and high is None
        else f"[{_fmt(low or 0.0)}, {_fmt(1.0 if high is None else high)}]",
        "num_profiles": summary.num_profiles,
        "num_rows": summary.num_rows,
        "num_dropped": summary.num_dropped,
        "drops": _ordered(summary.drops, DROP_REASONS),
        "difficulty": ", ".join(f"{k} {v}" for k, v in _ordered(summary.difficulty_counts, DIFFICULTIES)),
        "rollouts": signal.rollouts,
        "informative_groups": _fmt(signal.informative_groups, 1),
        "informative_fraction": _fmt(signal.informative_fraction),
        "uniform_group_size": signal.uniform_group_size,
        "uniform_rollouts": signal.uniform_rollouts,
        "uniform_informative_groups": _fmt(signal.uniform_informative_groups, 1),
        "uniform_informative_fraction": _fmt(signal.uniform_informative_fraction),
        "unfiltered_queries": signal.unfiltered_queries,
        "unfiltered_rollouts": signal.unfiltered_rollouts,
        "unfiltered_informative_groups": _fmt(signal.unfiltered_informative_groups, 1),
        "rollouts_vs_unfiltered": _fmt(signal.rollouts_vs_unfiltered, 2),
        "posterior_informative_fraction": _fmt(summary.posterior_informative_fraction),
        "group_size_uncertain_fraction": _percent(summary.group_size_uncertain_fraction),
        "plots": {name: f"plots/{summary.config_name}/{file}" for name, file in PLOT_FILES.items()},
    }


def _filtering_description(summary: ConfigSummary) -> str:
    settings = summary.curation
    if not settings.filter:
        return "off: every verifiable query kept (trivial and unsolvable ones included)"
    return (
        f"trivial queries dropped; {settings.unsolvable_keep_fraction} of the unsolvable ones kept "
        f"(chosen by a hash of the id, seed {settings.seed})"
    )


def _adaptive_description(run: RunInfo) -> str:
    """How an adaptive run stopped sampling (empty for fixed k)."""
    adaptive = run.adaptive or {}
    if not adaptive:
        return ""
    schedule = ", ".join(str(n) for n in adaptive.get("schedule") or ())
    return (
        f"adaptive, checked after {schedule} samples, a query stopped once its decisions under the "
        f"`{adaptive.get('rule')}` rule were settled with probability {adaptive.get('confidence')}"
    )


def _reward_description(run: RunInfo) -> str:
    """One sentence on what scored a sample 1, for the card (which reward produced the pass rates)."""
    verifier = run.verifier
    extraction = run.verifier_settings.get("extraction")
    if verifier == "math" and extraction == "strict":
        return (
            "strict: the answer must be in `\\boxed{}` or anchored LaTeX (`The final answer is $14$`), the "
            "extraction of TRL's `accuracy_reward`; rescoring with `trl.rewards.accuracy_reward` on the "
            "`solution` column gives the same verdicts"
        )
    if verifier == "math" and extraction == "lenient":
        return (
            "lenient: math-verify's default extraction, which falls back to the last number in the text; "
            "TRL's `accuracy_reward` is stricter and scores such samples 0"
        )
    if verifier == "code":
        return "the completion's code run against the row's `tests` in the sandbox (every assert must hold)"
    return f"verifier `{verifier or 'unknown'}`"


def _source_citations(summaries: Sequence[ConfigSummary]) -> list[tuple[str, str]]:
    cited = {s.run.source: s.run.source_citation for s in summaries if s.run.source and s.run.source_citation}
    return sorted(cited.items())


def _python_literal(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _training_example(summary: ConfigSummary) -> dict[str, Any]:
    """What the card's training code needs: a loadable model, the profiling reward, a batch that fits G."""
    run = summary.run
    arguments = [_python_literal(str(run.verifier or "math"))]
    arguments += [f"{key}={_python_literal(value)}" for key, value in sorted(run.verifier_settings.items())]
    g_max = max(summary.group_size_counts, default=16)
    profiled = run.model or summary.model
    loadable = run.model_hub_id or profiled
    return {
        # A bundled alias (`smollm2-135m-instruct`) is no Hub id: use the upstream repo it was made from.
        "model": loadable,
        "model_note": "the profiled model"
        if loadable == profiled
        else f"upstream of the profiled {profiled}",
        "verifier": f"get_verifier({', '.join(arguments)})",
        "g_max": g_max,
        # TRL's default num_generations (8) must divide the generation batch, and every group must fit in it.
        "batch_size": 8 * math.ceil(g_max / 8),
        "math_strict": run.verifier == "math" and run.verifier_settings.get("extraction") == "strict",
        # Rollouts should come from the policy the pass rates describe: the profile's sampling.
        "temperature": float(_or(run.sampling.temperature, 1.0)),
        "top_p": float(_or(run.sampling.top_p, 1.0)),
    }


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _package_version() -> str:
    from sgpo_curate import __version__

    return __version__


# --------------------------------------------------------------------------- dataset card plots


def render_plots(summary: ConfigSummary, plot_dir: str | Path) -> dict[str, Path]:
    """Draw the card's three PNGs for one config into `plot_dir`, from its summary alone.

    Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend switch) and strips the
    PNG's software tag, so the same summary gives byte-identical files and re-publishing uploads nothing.

    Returns:
        `dict[str, Path]`: plot name (`pass_rate_histogram`, `group_size_distribution`,
        `rollouts_vs_uniform`) to file.
    """
    plot_dir = Path(plot_dir)
    plot_dir.mkdir(parents=True, exist_ok=True)
    drawers = {
        "pass_rate_histogram": _plot_pass_rates,
        "group_size_distribution": _plot_group_sizes,
        "rollouts_vs_uniform": _plot_rollouts,
    }
    paths = {}
    for name, draw in drawers.items():
        fig = _figure()
        draw(fig.subplots(), summary)
        fig.tight_layout()
        paths[name] = plot_dir / PLOT_FILES[name]
        fig.savefig(paths[name], format="png", dpi=100, metadata={"Software": None})
    return paths


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5))
    FigureCanvasAgg(fig)
    return fig


def _plot_pass_rates(ax, summary: ConfigSummary) -> None:
    edges = [i / 20 - 0.025 for i in range(HISTOGRAM_BINS + 1)]
    centres = [i / 20 for i in range(HISTOGRAM_BINS)]
    pool, kept = (
        summary.pool_histogram or (0,) * HISTOGRAM_BINS,
        summary.kept_histogram or (0,) * HISTOGRAM_BINS,
    )
    ax.hist(centres, bins=edges, weights=pool, color="#bbbbbb", label=f"profiled ({sum(pool)})")
    ax.hist(centres, bins=edges, weights=kept, color="#1f77b4", alpha=0.8, label=f"kept ({summary.num_rows})")
    ax.set_xlabel("pass rate p̂ = correct / samples")
    ax.set_ylabel("queries")
    ax.set_title(f"{summary.config_name}: pass rates under the profiled model")
    ax.legend()


def _plot_group_sizes(ax, summary: ConfigSummary) -> None:
    values = sorted(summary.group_size_counts)
    ax.bar(range(len(values)), [summary.group_size_counts[v] for v in values], color="#1f77b4")
    ax.set_xticks(range(len(values)), [str(v) for v in values])
    ax.set_xlabel(f"recommended group size G ({summary.curation.rule} rule)")
    ax.set_ylabel("queries")
    ax.set_title(f"{summary.config_name}: group sizes")


def _plot_rollouts(ax, summary: ConfigSummary) -> None:
    signal = summary.signal
    labels = [
        f"plain GRPO\nG={signal.uniform_group_size}, all",
        f"G={signal.uniform_group_size}\nkept rows",
        f"{summary.curation.rule}\nkept rows",
    ]
    rollouts = [signal.unfiltered_rollouts, signal.uniform_rollouts, signal.rollouts]
    useful = [
        signal.unfiltered_informative_groups * signal.uniform_group_size,
        signal.uniform_informative_groups * signal.uniform_group_size,
        0.0 if math.isnan(summary.informative_rollouts) else summary.informative_rollouts,
    ]
    positions = range(len(labels))
    ax.bar(positions, rollouts, color="#bbbbbb", label="rollouts per epoch")
    ax.bar(positions, useful, color="#1f77b4", label="in informative groups (expected)")
    ax.set_xticks(list(positions), labels)
    ax.set_ylabel("rollouts per epoch")
    ax.set_title(f"{summary.config_name}: expected rollouts vs uniform GRPO")
    ax.legend()


# --------------------------------------------------------------------------- model cards


@dataclass(frozen=True)
class ComputeTotals:
    """The totals of `AdaptiveGRPOTrainer.compute_summary()` a model card shows (`sgpo_curate.compute`)."""

    rollouts: int = 0
    groups: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    rollout_tokens: int = 0
    trained_rollouts: int = 0
    trained_tokens: int = 0
    generation_flops: float = 0.0
    update_flops: float = 0.0
    old_logps_flops: float = 0.0
    ref_logps_flops: float = 0.0
    training_flops: float = 0.0
    prior_flops: float = 0.0
    total_flops: float = 0.0

    @classmethod
    def from_dict(cls, totals: Mapping[str, float]) -> ComputeTotals:
        return cls(**{f.name: totals[f.name] for f in fields(cls) if f.name in totals})


@dataclass(frozen=True)
class AllocationSettings:
    """How the trainer spent rollouts: the compute summary's settings (`planner` is `PlannerSettings`)."""

    group_size_column: str | None = None
    rule: str | None = None
    default_group_size: int = 8
    g_min: int = 2
    g_max: int | None = None
    budget: int = 0
    queries_per_batch: int | None = None
    selection: str = "order"
    schedule: str = "epochs"
    shuffle: bool = False
    online: bool = False
    forgetting: float = 1.0
    park_below: float = 0.0
    reprobe_fraction: float = 0.0
    query_weighting: str = "query"
    drop_zero_advantage_groups: bool = False
    dynamic_sampling: bool = False
    num_processes: int = 1


@dataclass(frozen=True)
class TrainingSummary:
    """What a model card of an `AdaptiveGRPOTrainer` checkpoint is rendered from.

    Args:
        model_name (`str`): the checkpoint's name (its output folder's, or the Hub repo's).
        base_model (`str`, *optional*): the model training started from (a Hub id or a folder).
        base_model_revision (`str`, *optional*): its Hub commit, when it was loaded from the Hub.
        dataset (`str`, *optional*): the training dataset's name; dataset_config: its config (for an sGPO
            dataset, the profiled model's); dataset_rows: its rows.
        allocation (`AllocationSettings`): how rollouts were allocated.
        totals (`ComputeTotals`): what training cost, profiling FLOPs charged included (`prior_flops`).
        num_params (`int`): the policy's parameters; batches (`int`): generation batches recorded.
        formulas (`Mapping[str, str]`): how each FLOP count was estimated.
    """

    model_name: str
    base_model: str | None
    base_model_revision: str | None
    dataset: str | None
    dataset_config: str | None
    dataset_rows: int
    allocation: AllocationSettings
    totals: ComputeTotals
    num_params: int
    batches: int
    formulas: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_compute_summary(cls, summary: Mapping[str, Any], **identity: Any) -> TrainingSummary:
        """From `AdaptiveGRPOTrainer.compute_summary()` plus the run's identity (`model_name`, `base_model`,
        `base_model_revision`, `dataset`, `dataset_config`, `dataset_rows`)."""
        planner = dict(summary.get("planner") or {})
        known = {f.name for f in fields(AllocationSettings)}
        allocation = AllocationSettings(**{k: v for k, v in {**planner, **summary}.items() if k in known})
        return cls(
            allocation=allocation,
            totals=ComputeTotals.from_dict(summary.get("totals") or {}),
            num_params=int(summary.get("num_params") or 0),
            batches=len(summary.get("steps") or ()),
            formulas=dict(summary.get("formulas") or {}),
            **identity,
        )


def render_model_card(summary: TrainingSummary, existing: str | None = None) -> str:
    """README.md text for a checkpoint trained with `AdaptiveGRPOTrainer` (the packaged `model_card.md`),
    merged into `existing` the way dataset cards are (keys and text outside our markers kept)."""
    meta = {
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["sgpo-curate", "sgpo", "grpo", "trl", "rlvr", PAPER_TAG],
    }
    if summary.base_model and not Path(summary.base_model).exists():  # a Hub id, not a local folder
        meta["base_model"] = summary.base_model
    if summary.dataset and "/" in summary.dataset:
        meta["datasets"] = [summary.dataset]
    old_meta, old_body = split_card(existing)
    meta = {**old_meta, **meta, "tags": list(dict.fromkeys([*meta["tags"], *(old_meta.get("tags") or [])]))}
    body = (
        _environment()
        .from_string(load_template(MODEL_TEMPLATE))
        .render(
            s=summary,
            a=summary.allocation,
            t=summary.totals,
            flops=lambda value: f"{value:.3g}",
            count=lambda value: f"{int(value):,}",
            package_version=_package_version(),
        )
    )
    return join_card(meta, merge_body(old_body, body, existing_is_ours=False))


def model_identity(model: Any) -> dict[str, Any]:
    """`base_model` and `base_model_revision` of a `transformers` model for `TrainingSummary`: the name or
    folder it was loaded from, and the Hub commit when it came from the Hub."""
    config = getattr(model, "config", None)
    return {
        "base_model": getattr(config, "_name_or_path", None) or None,
        "base_model_revision": getattr(config, "_commit_hash", None),
    }


def dataset_identity(dataset: Any) -> dict[str, Any]:
    """`dataset`, `dataset_config` and `dataset_rows` of a `datasets.Dataset` for `TrainingSummary`: the Hub
    repo (`ORG/NAME`) when it was loaded from one (its cache folder is named `ORG___NAME`), else its name."""
    info = getattr(dataset, "info", None)
    name = getattr(info, "dataset_name", None)
    for cache in getattr(dataset, "cache_files", None) or ():
        parts = Path(cache.get("filename", "")).parts
        hub = next((p.replace("___", "/") for p in parts if "___" in p), None)
        if hub:
            name = hub
            break
    return {
        "dataset": name,
        "dataset_config": getattr(info, "config_name", None),
        "dataset_rows": len(dataset) if dataset is not None else 0,
    }
