"""Dataset cards: a pure render from curation summaries to README.md text, plus the card's plots.

The card's YAML header lists one `configs` entry per profiled model (`config_name` + `data_files`), the
source license, `annotations_creators: machine-generated`, and under `sgpo_profiles` how each config was
made (model and revision, k, sampling, verifier and version, date, curation settings). The body comes
from the packaged template `sgpo_curate/cards/dataset_card.md` (jinja2), read with `importlib.resources`.

Rendering needs no network: `render_card(summaries)` takes the JSON records `CurationResult.summary()`
writes to `curation/<config>.json`, so a card can be re-rendered for every config in a folder or a Hub
repo without the original profiles.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sgpo_curate.policy import DIFFICULTIES, DROP_REASONS

TEMPLATE = "dataset_card.md"
PLACEHOLDER_REPO = "ORG/NAME"
SUMMARY_DIR = "curation"
# Every top-level key the card's metadata may hold; the rest of an existing card's metadata (language,
# dataset_info, another tool's keys) is kept on re-render. Conditional ones are listed too, so a key we
# wrote once (license_name for mixed sources) does not outlive its reason.
CARD_KEYS = (
    "license",
    "license_name",
    "license_details",
    "pretty_name",
    "task_categories",
    "tags",
    "annotations_creators",
    "size_categories",
    "source_datasets",
    "configs",
    "sgpo_profiles",
)


def load_template(name: str = TEMPLATE) -> str:
    """The text of a packaged card template."""
    return resources.files("sgpo_curate").joinpath("cards", name).read_text(encoding="utf-8")


def read_summaries(out_dir: str | Path) -> list[dict[str, Any]]:
    """Every `curation/<config>.json` summary in a dataset folder, sorted by config name."""
    files = sorted((Path(out_dir) / SUMMARY_DIR).glob("*.json"))
    return [json.loads(f.read_text(encoding="utf-8")) for f in files]


def render_card_from_dir(out_dir: str | Path, repo_id: str | None = None) -> str:
    """The card for every config summarized in `out_dir`."""
    return render_card(read_summaries(out_dir), repo_id=repo_id)


def card_metadata(
    summaries: Sequence[Mapping[str, Any]],
    extra_configs: Sequence[Mapping[str, Any]] = (),
    extra_metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The card's YAML metadata as a dict.

    Args:
        summaries (`Sequence[Mapping]`): one `CurationResult.summary()` per config.
        extra_configs (`Sequence[Mapping]`): `configs` entries found in an existing card that no summary
            describes (kept as they are, so publishing never drops someone else's config). Entries named
            after a summary's config or its `-raw` config are ours, rendered from the summary instead.
        extra_metadata (`Mapping`, *optional*): an existing card's metadata; its keys outside `CARD_KEYS`
            are kept as they are.
    """
    summaries = sorted(summaries, key=lambda s: s["config_name"])
    runs = [s.get("run_info") or {} for s in summaries]
    licenses = sorted({_license_id(r["source_license"]) for r in runs if r.get("source_license")})
    sources = sorted({str(r["source"]) for r in runs if r.get("source")})
    rows = max((int(s["num_rows"]) for s in summaries), default=0)
    configs = [
        {"config_name": s["config_name"], "data_files": [{"split": "train", "path": s["data_files"]}]}
        for s in summaries
    ]
    configs += [
        {
            "config_name": f"{s['config_name']}-raw",
            "data_files": [{"split": "train", "path": s["raw_data_files"]}],
        }
        for s in summaries
        if s.get("raw_data_files")
    ]
    ours = {name for s in summaries for name in (s["config_name"], f"{s['config_name']}-raw")}
    configs += [dict(c) for c in extra_configs if c.get("config_name") not in ours]
    meta: dict[str, Any] = {
        # The Hub takes one license id; configs from sources under different licenses say "other" and
        # name them (each config's own is under sgpo_profiles).
        "license": licenses[0] if len(licenses) == 1 else "other",
        "pretty_name": _title(summaries),
        "task_categories": ["text-generation"],
        "tags": ["rlvr", "grpo", "sgpo", "difficulty", "pass-rate", "curriculum"],
        "annotations_creators": ["machine-generated"],
        "size_categories": [_size_category(rows)],
    }
    if len(licenses) > 1:
        meta["license_name"] = "mixed"
        meta["license_details"] = "Rows keep their source's license: " + ", ".join(licenses)
    if sources:
        meta["source_datasets"] = sources
    meta |= {key: value for key, value in (extra_metadata or {}).items() if key not in CARD_KEYS}
    meta["configs"] = sorted(configs, key=lambda c: str(c.get("config_name")))
    meta["sgpo_profiles"] = {s["config_name"]: _profile_metadata(s) for s in summaries}
    return meta


def render_card(
    summaries: Sequence[Mapping[str, Any]],
    repo_id: str | None = None,
    extra_configs: Sequence[Mapping[str, Any]] = (),
    extra_metadata: Mapping[str, Any] | None = None,
) -> str:
    """README.md text (YAML header + body) for the given configs.

    Args:
        summaries (`Sequence[Mapping]`): one `CurationResult.summary()` per config (`curation/*.json`).
        repo_id (`str`, *optional*): the Hub repo, shown in the "Use" section (`ORG/NAME` when unknown).
        extra_configs (`Sequence[Mapping]`): `configs` entries of an existing card to keep.
        extra_metadata (`Mapping`, *optional*): an existing card's metadata; keys this card does not
            write (language, dataset_info, another tool's) are kept.

    Example:
        >>> text = render_card(read_summaries("curated/"), repo_id="me/gsm8k-sgpo")  # doctest: +SKIP
        >>> DatasetCard(text).data.configs  # doctest: +SKIP
    """
    import jinja2

    summaries = sorted(summaries, key=lambda s: s["config_name"])
    if not summaries:
        raise ValueError("render_card needs at least one curated config")
    meta = card_metadata(summaries, extra_configs, extra_metadata)
    env = jinja2.Environment(
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    body = env.from_string(load_template()).render(
        title=meta["pretty_name"],
        package_version=_package_version(),
        configs=[_config_context(s) for s in summaries],
        extra_configs=[
            c["config_name"]
            for c in meta["configs"]
            if c["config_name"] not in {s["config_name"] for s in summaries}
        ],
        repo_id=repo_id or PLACEHOLDER_REPO,
        comparisons=_comparisons(summaries),
        example_config=summaries[0]["config_name"],
        example=_training_example(summaries[0]),
    )
    header = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return f"---\n{header}---\n\n{body}"


def _comparisons(summaries: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The comparisons stored in the summaries (`sgpo_curate.compare`) between configs of this card, one per
    ordered pair, formatted for the table."""
    names = {s["config_name"] for s in summaries}
    pairs: dict[tuple[str, str], Mapping[str, Any]] = {}
    for summary in summaries:
        for c in summary.get("comparisons") or []:
            if c.get("config_a") in names and c.get("config_b") in names:
                pairs[(c["config_a"], c["config_b"])] = c
    keys = ("spearman", "bucket_agreement", "filter_agreement", "group_size_agreement", "mean_abs_difference")
    return [
        {"config_a": a, "config_b": b, "shared": str(c.get("shared"))}
        | {key: _fmt(c.get(key)) for key in keys}
        | {"halves": f"{_fmt(c.get('half_spearman_a_b'))} / {_fmt(c.get('half_spearman_b_b'))}"}
        for (a, b), c in sorted(pairs.items())
    ]


def _license_id(name: Any) -> str:
    """A Hub license id from a free-form name: `"CC BY 4.0"` -> `"cc-by-4.0"`, `"MIT"` -> `"mit"`."""
    return re.sub(r"[\s_]+", "-", str(name).strip().lower()) or "unknown"


def _title(summaries: Sequence[Mapping[str, Any]]) -> str:
    sources = sorted({str((s.get("run_info") or {}).get("source") or "") for s in summaries} - {""})
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


def _profile_metadata(summary: Mapping[str, Any]) -> dict[str, Any]:
    run = summary.get("run_info") or {}
    keys = (
        "model",
        "model_hub_id",
        "model_revision",
        "num_parameters",
        "sampling",
        "verifier",
        "verifier_version",
        "verifier_settings",
        "source",
        "source_license",
        "date",
        "package_versions",
    )
    out = {key: run[key] for key in keys if run.get(key) is not None}
    out.setdefault("model", summary["model"])
    curate_config = summary.get("curate_config") or {}
    out["curation"] = {key: value for key, value in curate_config.items() if key != "config_name"}
    out["num_profiles"] = summary["num_profiles"]
    out["num_rows"] = summary["num_rows"]
    out["drops"] = dict(summary["drops"])
    return out


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _ordered(counts: Mapping[str, int], known: Sequence[str]) -> list[tuple[str, int]]:
    """`counts` in the order of `known` (the order filters run), unknown keys after."""
    return [(k, counts[k]) for k in known if k in counts] + sorted(
        (k, v) for k, v in counts.items() if k not in known
    )


def _config_context(summary: Mapping[str, Any]) -> dict[str, Any]:
    run = summary.get("run_info") or {}
    sampling = run.get("sampling") or {}
    cfg = summary.get("curate_config") or {}
    signal = summary["signal"]
    low, high = cfg.get("min_pass_rate"), cfg.get("max_pass_rate")
    versions = run.get("package_versions") or {}
    return {
        "name": summary["config_name"],
        "model": run.get("model") or summary["model"],
        "model_revision": run.get("model_revision") or "unknown",
        "num_parameters": run.get("num_parameters"),
        "k": sampling.get("k", "unknown"),
        "temperature": sampling.get("temperature", "unknown"),
        "top_p": sampling.get("top_p", "unknown"),
        "max_new_tokens": sampling.get("max_new_tokens", "unknown"),
        "sampling_seed": sampling.get("seed", "unknown"),
        "sampler": run.get("sampler") or "unknown",
        "verifier": run.get("verifier") or "unknown",
        "verifier_version": run.get("verifier_version") or "",
        "verifier_settings": ", ".join(
            f"{k}={v}" for k, v in sorted((run.get("verifier_settings") or {}).items())
        ),
        "reward": _reward_description(run),
        "tampered_samples": run.get("tampered_samples"),
        "source": run.get("source") or "unknown",
        "source_license": run.get("source_license") or "unknown",
        "date": run.get("date") or "unknown",
        "package_versions": ", ".join(f"{k} {v}" for k, v in sorted(versions.items())),
        "rule": cfg.get("rule", "unknown"),
        "estimator": cfg.get("estimator", "unknown"),
        "g_min": cfg.get("g_min"),
        "g_max": cfg.get("g_max"),
        "unsolvable_keep_fraction": cfg.get("unsolvable_keep_fraction"),
        "seed": cfg.get("seed"),
        "order": cfg.get("order", "unknown"),
        "band": "none"
        if low is None and high is None
        else f"[{_fmt(low or 0.0)}, {_fmt(1.0 if high is None else high)}]",
        "num_profiles": summary["num_profiles"],
        "num_rows": summary["num_rows"],
        "num_dropped": sum(summary["drops"].values()),
        "drops": _ordered(summary["drops"], DROP_REASONS),
        "difficulty": ", ".join(f"{k} {v}" for k, v in _ordered(summary["difficulty_counts"], DIFFICULTIES)),
        "rollouts": signal["rollouts"],
        "informative_groups": _fmt(signal["informative_groups"], 1),
        "informative_fraction": _fmt(signal["informative_fraction"]),
        "uniform_group_size": signal["uniform_group_size"],
        "uniform_rollouts": signal["uniform_rollouts"],
        "uniform_informative_groups": _fmt(signal["uniform_informative_groups"], 1),
        "uniform_informative_fraction": _fmt(signal["uniform_informative_fraction"]),
        "unfiltered_queries": signal["unfiltered_queries"],
        "unfiltered_rollouts": signal["unfiltered_rollouts"],
        "unfiltered_informative_groups": _fmt(signal["unfiltered_informative_groups"], 1),
        "rollouts_vs_unfiltered": _fmt(signal["rollouts_vs_unfiltered"], 2),
        "posterior_informative_fraction": _fmt(summary.get("posterior_informative_fraction")),
        "group_size_uncertain_fraction": _percent(summary.get("group_size_uncertain_fraction")),
        "plots": summary["plots"],
    }


def _reward_description(run: Mapping[str, Any]) -> str:
    """One sentence on what scored a sample 1, for the card (which reward produced the pass rates)."""
    verifier = run.get("verifier")
    extraction = (run.get("verifier_settings") or {}).get("extraction")
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


def _python_literal(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _training_example(summary: Mapping[str, Any]) -> dict[str, Any]:
    """What the card's training code needs: a loadable model, the profiling reward, a batch that fits G."""
    run = summary.get("run_info") or {}
    settings = run.get("verifier_settings") or {}
    arguments = [_python_literal(str(run.get("verifier") or "math"))]
    arguments += [f"{key}={_python_literal(value)}" for key, value in sorted(settings.items())]
    g_max = max((int(g) for g in summary["group_size_counts"]), default=16)
    sampling = run.get("sampling") or {}
    profiled = run.get("model") or summary["model"]
    loadable = run.get("model_hub_id") or profiled
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
        "math_strict": run.get("verifier") == "math" and settings.get("extraction") == "strict",
        # Rollouts should come from the policy the pass rates describe: the profile's sampling.
        "temperature": float(sampling.get("temperature", 1.0)),
        "top_p": float(sampling.get("top_p", 1.0)),
    }


def _package_version() -> str:
    from sgpo_curate import __version__

    return __version__


# --------------------------------------------------------------------------- plots


def render_plots(result: Any, plot_dir: str | Path) -> dict[str, Path]:
    """Draw the card's three PNGs for one `CurationResult` into `plot_dir`.

    Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend switch) and strips the
    PNG's software tag, so the same result gives byte-identical files and re-publishing uploads nothing.

    Returns:
        `dict[str, Path]`: plot name (`pass_rate_histogram`, `group_size_distribution`,
        `rollouts_vs_uniform`) to file.
    """
    from sgpo_curate.curation import PLOT_FILES

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
        draw(fig.subplots(), result)
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


def _plot_pass_rates(ax, result) -> None:
    bins = [i / 20 - 0.025 for i in range(22)]
    ax.hist(
        result.pool_pass_rates, bins=bins, color="#bbbbbb", label=f"profiled ({len(result.pool_pass_rates)})"
    )
    kept = [
        c / n
        for c, n in zip(list(result.dataset["num_correct"]), list(result.dataset["num_samples"]), strict=True)
    ]
    ax.hist(kept, bins=bins, color="#1f77b4", alpha=0.8, label=f"kept ({result.num_kept})")
    ax.set_xlabel("pass rate p̂ = correct / samples")
    ax.set_ylabel("queries")
    ax.set_title(f"{result.config_name}: pass rates under the profiled model")
    ax.legend()


def _plot_group_sizes(ax, result) -> None:
    sizes = list(result.dataset["group_size"])
    values = sorted(set(sizes))
    ax.bar(range(len(values)), [sizes.count(v) for v in values], color="#1f77b4")
    ax.set_xticks(range(len(values)), [str(v) for v in values])
    ax.set_xlabel(f"recommended group size G ({result.config.rule} rule)")
    ax.set_ylabel("queries")
    ax.set_title(f"{result.config_name}: group sizes")


def _plot_rollouts(ax, result) -> None:
    signal = result.signal
    labels = [
        f"plain GRPO\nG={signal.uniform_group_size}, all",
        f"G={signal.uniform_group_size}\nkept rows",
        f"{result.config.rule}\nkept rows",
    ]
    rollouts = [signal.unfiltered_rollouts, signal.uniform_rollouts, signal.rollouts]
    useful = [
        signal.unfiltered_informative_groups * signal.uniform_group_size,
        signal.uniform_informative_groups * signal.uniform_group_size,
        sum(
            g * _informative(p, g)
            for p, g in zip(
                list(result.dataset["pass_rate"]), list(result.dataset["group_size"]), strict=True
            )
        ),
    ]
    positions = range(len(labels))
    ax.bar(positions, rollouts, color="#bbbbbb", label="rollouts per epoch")
    ax.bar(positions, useful, color="#1f77b4", label="in informative groups (expected)")
    ax.set_xticks(list(positions), labels)
    ax.set_ylabel("rollouts per epoch")
    ax.set_title(f"{result.config_name}: expected rollouts vs uniform GRPO")
    ax.legend()


def _informative(p: float, g: int) -> float:
    from sgpo_curate.policy import informative_probability

    return informative_probability(p, g)
