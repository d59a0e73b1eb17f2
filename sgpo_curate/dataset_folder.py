"""The dataset folder: where each file of a curated dataset lives, what its summaries hold, which files go
to the Hub. The one module that spells the layout; curation writes through it, cards render from its
summaries, publishing pushes its file list, compare and simulate read through it.

    DIR/README.md                                   the card, for every config in DIR
    DIR/data/<config>/train-00000-of-00001.parquet  the curated rows, in curriculum order (`COLUMNS`)
    DIR/raw/<config>/train-00000-of-00001.parquet   what profiling saw for every query: the `<config>-raw`
                                                    config (`RAW_COLUMNS`)
    DIR/plots/<config>/*.png                        the card's pictures
    DIR/curation/<config>.json                      the config's summary (`ConfigSummary`): the card is
                                                    rendered from these, without the rows
    DIR/rejects/<config>.jsonl                      dropped profiles with their reason (stays local)

Everything but `rejects/` is published. `datasets.load_dataset(DIR, config)` and `hf download` need nothing
of ours: the card's YAML lists each config's `data_files`.

Why typed summaries: a card is re-rendered from the summaries of every config of a folder or a Hub repo
(another model's, written by another version of this package), so `ConfigSummary.from_dict` is the one
reader of that JSON, tolerant of fields an older writer did not know, and nothing downstream indexes dicts.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from sgpo_curate.policy import ExpectedSignal
from sgpo_curate.records import QueryProfile, Reject

CARD_FILE = "README.md"
DATA_DIR = "data"
RAW_DIR = "raw"
PLOTS_DIR = "plots"
SUMMARY_DIR = "curation"
REJECTS_DIR = "rejects"
DATA_FILE = "train-00000-of-00001.parquet"
RAW_SUFFIX = "-raw"
# Folders with one subfolder per config, all published: a republished config's files there are its own.
CONFIG_DIRS = (DATA_DIR, RAW_DIR, PLOTS_DIR)
PLOT_FILES = {
    "pass_rate_histogram": "pass_rate_histogram.png",
    "group_size_distribution": "group_size_distribution.png",
    "rollouts_vs_uniform": "rollouts_vs_uniform.png",
}
# The pass-rate histograms of a summary: 21 bins of width 0.05 centred on 0, 0.05, ..., 1, so the exact
# 0 and 1 (unsolvable, trivial) get bins of their own.
HISTOGRAM_BINS = 21

# What a query is and what a verifier needs to re-score it, the head of both configs' columns: `solution`
# and `code_prompt` are what a verifier needs besides `answer`/`tests`/`entry_point` (`sgpo_curate.rewards`).
QUERY_COLUMNS = (
    "id",
    "source",
    "domain",
    "prompt",
    "answer",
    "solution",
    "tests",
    "entry_point",
    "code_prompt",
)
# Column order of a published config (DESIGN.md, "Column conventions").
COLUMNS = (
    *QUERY_COLUMNS,
    "num_samples",
    "num_correct",
    "pass_rate",
    "group_size",
    "difficulty",
    "curriculum_rank",
)
# What profiling saw for every query (kept or not), with the columns a verifier needs to re-score it.
RAW_COLUMNS = (
    *QUERY_COLUMNS,
    "model",
    "num_samples",
    "num_correct",
    "pass_rate",
    "rewards",
    "completion_tokens",
    "prompt_tokens",
    "completions",
)
# Columns of a profiles.parquet the raw config copies as they are (the rest it derives per row).
_RAW_COPIED = tuple(c for c in RAW_COLUMNS if c not in ("solution", "code_prompt"))
_QUERY_COLUMNS = ("id", "source", "domain", "prompt", "answer", "tests", "entry_point", "metadata")


def dataset_features():
    """The `datasets.Features` of a curated config (`COLUMNS`)."""
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


def raw_features():
    """The `datasets.Features` of a `-raw` config (`RAW_COLUMNS`)."""
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


# --------------------------------------------------------------------------- the summary of a config


def _none_if_nan(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of `data` that are fields of the dataclass `cls` (a newer writer's extras are left out)."""
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in data.items() if key in names}


@dataclass(frozen=True)
class SamplingInfo:
    """The sampling settings a profile was made with, as `run.json` recorded them (None: not recorded)."""

    k: int | None = None
    max_new_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    first_sample: int | None = None
    batch_queries: int | None = None


@dataclass(frozen=True)
class RunInfo:
    """How the profiles of a config were made: `run.json` of the profiling folder (`describe_run`).

    Args:
        model (`str`, *optional*): the profiled model as named (bundled name, folder or Hub id).
        model_hub_id (`str`, *optional*): the Hub repo the model stands for (a bundled model's upstream).
        model_revision (`str`, *optional*): what pins the weights: the Hub commit, or a package version.
        num_parameters (`int`, *optional*): parameters of the model.
        sampler (`str`, *optional*), sampler_version (`str`, *optional*): the sampler and how it seeds.
        sampling (`SamplingInfo`): k and the sampling parameters.
        verifier (`str`, *optional*), verifier_version (`str`, *optional*): what scored the samples.
        verifier_settings (`Mapping[str, str | int | float | bool]`): its verdict-changing settings.
        source (`str`, *optional*), source_license (`str`, *optional*): the source dataset and its license.
        source_hub_id (`str`, *optional*): the source's Hub dataset id.
        source_citation (`str`, *optional*): how the source asks to be cited.
        adaptive (`Mapping`, *optional*): the stopping rule of an adaptive run, as recorded.
        date (`str`, *optional*): the day profiling started.
        package_versions (`Mapping[str, str]`): versions of the packages that shaped the profile.
        tampered_samples (`int`, *optional*): samples scored 0 for reaching for the sandbox's harness.
    """

    model: str | None = None
    model_hub_id: str | None = None
    model_revision: str | None = None
    num_parameters: int | None = None
    sampler: str | None = None
    sampler_version: str | None = None
    sampling: SamplingInfo = field(default_factory=SamplingInfo)
    verifier: str | None = None
    verifier_version: str | None = None
    verifier_settings: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    source: str | None = None
    source_license: str | None = None
    source_hub_id: str | None = None
    source_citation: str | None = None
    adaptive: Mapping[str, Any] | None = None
    date: str | None = None
    package_versions: Mapping[str, str] = field(default_factory=dict)
    tampered_samples: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RunInfo:
        data = _known(cls, data or {})
        data["sampling"] = SamplingInfo(**_known(SamplingInfo, data.get("sampling") or {}))
        data["verifier_settings"] = dict(data.get("verifier_settings") or {})
        data["package_versions"] = dict(data.get("package_versions") or {})
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CurationSettings:
    """The `CurateConfig` a config was curated with, as stored in its summary.

    A record of its own rather than a `CurateConfig`: reading another config's summary (from a Hub repo,
    say) must not check or import its group-size rule, which may be a dotted path to someone's code.
    Field names and defaults are `CurateConfig`'s (a test keeps them in step).
    """

    estimator: str = "raw"
    rule: str = "inverse"
    g_min: int = 2
    g_max: int = 16
    uniform_group_size: int = 8
    coverage_probability: float = 0.75
    filter: bool = True
    unsolvable_keep_fraction: float = 0.25
    min_pass_rate: float | None = None
    max_pass_rate: float | None = None
    order: str = "easy-to-hard"
    seed: int = 0
    config_name: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> CurationSettings:
        return cls(**_known(cls, data or {}))


@dataclass(frozen=True)
class ComparisonRow:
    """One line of the card's "Profiles side by side" table: `sgpo_curate.compare.Comparison` as a summary
    keeps it (NaN where a number cannot be computed)."""

    config_a: str
    config_b: str
    model_a: str = ""
    model_b: str = ""
    shared: int = 0
    spearman: float = math.nan
    bucket_agreement: float = math.nan
    filter_agreement: float = math.nan
    group_size_agreement: float = math.nan
    mean_abs_difference: float = math.nan
    half_spearman_a_b: float = math.nan
    half_spearman_b_b: float = math.nan

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ComparisonRow:
        known = _known(cls, data)
        floats = {f.name for f in fields(cls) if f.type == "float"}
        return cls(**{k: _nan_if_none(v) if k in floats else v for k, v in known.items()})

    def to_dict(self) -> dict[str, Any]:
        return {key: _none_if_nan(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class ConfigSummary:
    """What curation found for one config: everything its part of the card and its plots are rendered from.

    Args:
        config_name (`str`): the dataset config (one per profiled model).
        model (`str`): the profiled model.
        run (`RunInfo`): how the profiles were made.
        curation (`CurationSettings`): the policy's settings.
        num_profiles (`int`): profiles given to curation.
        num_rows (`int`): rows kept.
        drops (`Mapping[str, int]`): dropped profiles per reason.
        difficulty_counts (`Mapping[str, int]`): kept rows per difficulty bucket.
        group_size_counts (`Mapping[int, int]`): kept rows per group size.
        signal (`ExpectedSignal`): rollouts and informative groups per epoch, rule vs uniform G.
        posterior_informative_fraction (`float`): informative share under the rule, averaged over each
            query's Beta posterior (NaN: no kept row).
        group_size_uncertain_fraction (`float`): share of kept rows whose G differs between the ends of the
            95% Wilson interval of p (NaN for a budgeted rule).
        informative_rollouts (`float`): expected rollouts in informative groups under the rule, kept rows.
        pool_histogram (`tuple[int, ...]`): pass rates of every verifiable profile in `HISTOGRAM_BINS` bins.
        kept_histogram (`tuple[int, ...]`): the same for the kept rows.
        has_raw (`bool`): the folder holds this config's `-raw` config.
        data_fingerprint (`str`): sha256 of the curated parquet files (`DatasetFolder.fingerprint`), empty
            when unknown; raw_fingerprint (`str`): the same for the raw files.
        comparisons (`tuple[ComparisonRow, ...]`): this config's profile against the others of the folder.
    """

    config_name: str
    model: str
    run: RunInfo
    curation: CurationSettings
    num_profiles: int
    num_rows: int
    drops: Mapping[str, int]
    difficulty_counts: Mapping[str, int]
    group_size_counts: Mapping[int, int]
    signal: ExpectedSignal
    posterior_informative_fraction: float = math.nan
    group_size_uncertain_fraction: float = math.nan
    informative_rollouts: float = math.nan
    pool_histogram: tuple[int, ...] = ()
    kept_histogram: tuple[int, ...] = ()
    has_raw: bool = False
    data_fingerprint: str = ""
    raw_fingerprint: str = ""
    comparisons: tuple[ComparisonRow, ...] = ()

    @property
    def raw_config_name(self) -> str:
        return self.config_name + RAW_SUFFIX

    @property
    def num_dropped(self) -> int:
        return sum(self.drops.values())

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of `curation/<config>.json`. Its keys are those earlier versions wrote (`run_info`,
        `curate_config`, `data_files`, ...), so they and this version read each other's summaries."""
        signal = {key: _none_if_nan(value) for key, value in self.signal.to_dict().items()}
        return {
            "config_name": self.config_name,
            "model": self.model,
            "run_info": self.run.to_dict(),
            "curate_config": asdict(self.curation),
            "num_profiles": self.num_profiles,
            "num_rows": self.num_rows,
            "drops": dict(self.drops),
            "difficulty_counts": dict(self.difficulty_counts),
            "group_size_counts": {str(g): n for g, n in sorted(self.group_size_counts.items())},
            "signal": signal,
            "posterior_informative_fraction": _none_if_nan(self.posterior_informative_fraction),
            "group_size_uncertain_fraction": _none_if_nan(self.group_size_uncertain_fraction),
            "informative_rollouts": _none_if_nan(self.informative_rollouts),
            "pool_histogram": list(self.pool_histogram),
            "kept_histogram": list(self.kept_histogram),
            "data_files": data_pattern(self.config_name),
            "raw_data_files": raw_pattern(self.config_name) if self.has_raw else None,
            "data_fingerprint": self.data_fingerprint,
            "raw_fingerprint": self.raw_fingerprint,
            "plots": {name: f"{PLOTS_DIR}/{self.config_name}/{file}" for name, file in PLOT_FILES.items()},
            "comparisons": [c.to_dict() for c in self.comparisons],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfigSummary:
        """A summary from its JSON record (this version's, or an earlier one's with fewer fields)."""
        signal_fields = {f.name for f in fields(ExpectedSignal)}
        signal = {
            k: _nan_if_none(v) if isinstance(v, float) or v is None else v for k, v in data["signal"].items()
        }
        return cls(
            config_name=data["config_name"],
            model=data["model"],
            run=RunInfo.from_dict(data.get("run_info")),
            curation=CurationSettings.from_dict(data.get("curate_config")),
            num_profiles=int(data["num_profiles"]),
            num_rows=int(data["num_rows"]),
            drops={str(k): int(v) for k, v in data["drops"].items()},
            difficulty_counts={str(k): int(v) for k, v in (data.get("difficulty_counts") or {}).items()},
            group_size_counts={int(g): int(n) for g, n in (data.get("group_size_counts") or {}).items()},
            signal=ExpectedSignal(**{k: v for k, v in signal.items() if k in signal_fields}),
            posterior_informative_fraction=_nan_if_none(data.get("posterior_informative_fraction")),
            group_size_uncertain_fraction=_nan_if_none(data.get("group_size_uncertain_fraction")),
            informative_rollouts=_nan_if_none(data.get("informative_rollouts")),
            pool_histogram=tuple(int(n) for n in data.get("pool_histogram") or ()),
            kept_histogram=tuple(int(n) for n in data.get("kept_histogram") or ()),
            has_raw=bool(data.get("raw_data_files")),
            data_fingerprint=str(data.get("data_fingerprint") or ""),
            raw_fingerprint=str(data.get("raw_fingerprint") or ""),
            comparisons=tuple(ComparisonRow.from_dict(c) for c in data.get("comparisons") or ()),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ConfigSummary:
        return cls.from_dict(json.loads(text))


def pass_rate_histogram(pass_rates: Iterable[float]) -> tuple[int, ...]:
    """Counts of `pass_rates` in `HISTOGRAM_BINS` bins of width 0.05 centred on 0, 0.05, ..., 1.

    Example:
        >>> pass_rate_histogram([0.0, 0.0, 0.5, 1.0])[:2], pass_rate_histogram([0.5])[10]
        ((2, 0), 1)
    """
    counts = [0] * HISTOGRAM_BINS
    for p in pass_rates:
        counts[min(HISTOGRAM_BINS - 1, max(0, math.floor((p + 0.025) * 20)))] += 1
    return tuple(counts)


# --------------------------------------------------------------------------- paths


def data_pattern(config_name: str) -> str:
    """The `data_files` pattern of a curated config, relative to the folder (what the card's YAML lists)."""
    return f"{DATA_DIR}/{config_name}/train-*"


def raw_pattern(config_name: str) -> str:
    """The `data_files` pattern of a config's `-raw` config."""
    return f"{RAW_DIR}/{config_name}/train-*"


def summary_path(config_name: str) -> str:
    """Where a config's summary lives, relative to the folder (on disk and in a Hub repo)."""
    return f"{SUMMARY_DIR}/{config_name}.json"


def is_summary_path(path: str) -> bool:
    """True for `curation/<config>.json` (a path relative to the folder or repo root)."""
    return path.startswith(f"{SUMMARY_DIR}/") and path.endswith(".json") and path.count("/") == 1


def config_prefixes(config_names: Iterable[str]) -> tuple[str, ...]:
    """Path prefixes of every published file that belongs to these configs alone (their data, raw and plot
    folders): a republished config's remote files under them that it no longer has are stale."""
    return tuple(f"{top}/{name}/" for name in config_names for top in CONFIG_DIRS)


def remote_patterns(config_name: str) -> list[str]:
    """`allow_patterns` that download one config's rows and every summary from a Hub repo."""
    return [f"{SUMMARY_DIR}/*.json", f"{DATA_DIR}/{config_name}/*", f"{RAW_DIR}/{config_name}/*"]


@dataclass(frozen=True)
class DatasetFolder:
    """A dataset folder on disk (see the module docstring for its layout).

    Example:
        >>> folder = DatasetFolder("curated")
        >>> folder.data_file("SmolLM2-135M-Instruct").as_posix()
        'curated/data/SmolLM2-135M-Instruct/train-00000-of-00001.parquet'
    """

    root: Path

    def __init__(self, root: str | os.PathLike):
        object.__setattr__(self, "root", Path(root))

    @property
    def card_file(self) -> Path:
        return self.root / CARD_FILE

    def data_file(self, config_name: str) -> Path:
        return self.root / DATA_DIR / config_name / DATA_FILE

    def raw_file(self, config_name: str) -> Path:
        return self.root / RAW_DIR / config_name / DATA_FILE

    def plot_dir(self, config_name: str) -> Path:
        return self.root / PLOTS_DIR / config_name

    def summary_file(self, config_name: str) -> Path:
        return self.root / summary_path(config_name)

    def rejects_file(self, config_name: str) -> Path:
        return self.root / REJECTS_DIR / f"{config_name}.jsonl"

    # ---- reading

    def config_names(self) -> list[str]:
        """The configs summarized in this folder, sorted."""
        return sorted(p.stem for p in (self.root / SUMMARY_DIR).glob("*.json"))

    def read_summary(self, config_name: str) -> ConfigSummary:
        """One config's summary.

        Raises:
            FileNotFoundError: no such config, naming those the folder holds.
        """
        path = self.summary_file(config_name)
        if not path.exists():
            raise FileNotFoundError(
                f"no config {config_name!r} in {self.root}; configs: {', '.join(self.config_names()) or 'none'}"
            )
        return ConfigSummary.from_json(path.read_text(encoding="utf-8"))

    def read_summaries(self) -> list[ConfigSummary]:
        """Every config's summary, sorted by config name."""
        return [self.read_summary(name) for name in self.config_names()]

    def read_card(self) -> str | None:
        return self.card_file.read_text(encoding="utf-8") if self.card_file.exists() else None

    def data_files(self, config_name: str) -> list[Path]:
        """The curated parquet files of a config (one, or several shards), sorted."""
        return sorted(self.root.glob(data_pattern(config_name)))

    def raw_files(self, config_name: str) -> list[Path]:
        """The `-raw` parquet files of a config, sorted; empty when it was curated without them."""
        return sorted(self.root.glob(raw_pattern(config_name)))

    def profile_files(self, config_name: str) -> list[Path]:
        """What profiling saw of a config: its raw files when written (every profiled query), else its curated
        files (the kept queries only)."""
        return self.raw_files(config_name) or self.data_files(config_name)

    def fingerprint(self, files: Sequence[Path]) -> str:
        """sha256 (16 hex digits) of these files' names and bytes: what changes when a config's rows do.

        `datasets` caches a local folder by its name, config and the card's YAML, not by its files' content,
        so the card puts this in each config's `description` and a rewritten folder loads afresh.
        """
        import hashlib

        digest = hashlib.sha256()
        for path in sorted(files):
            digest.update(path.relative_to(self.root).as_posix().encode() + b"\0")
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()[:16]

    def publish_files(self, config_names: Sequence[str]) -> list[tuple[str, Path]]:
        """(path in the repo, local path) of every file these configs publish: curated and raw parquet, plots,
        summary. Rejects stay local; the card is rendered for the repo by the caller.

        Raises:
            FileNotFoundError: a config without curated parquet files.
        """
        files: list[tuple[str, Path]] = []
        for name in config_names:
            data = self.data_files(name)
            if not data:
                raise FileNotFoundError(
                    f"config {name!r} has no parquet under {self.root / DATA_DIR / name}; run `sgpo-curate curate`"
                )
            plots = sorted(self.plot_dir(name).glob("*.png"))
            for path in [*data, *self.raw_files(name), *plots, self.summary_file(name)]:
                files.append((path.relative_to(self.root).as_posix(), path))
        return files

    # ---- writing (each file whole or absent: written beside, then renamed)

    def write_rows(self, config_name: str, table) -> Path:
        """The curated rows (a `pyarrow.Table` with the `datasets` features in its schema metadata)."""
        import pyarrow.parquet as pq

        path = self.data_file(config_name)
        _atomic(path, lambda tmp: pq.write_table(table, tmp))
        return path

    def write_raw(self, config_name: str, profiles: Iterable[QueryProfile] | str | os.PathLike) -> Path:
        """The `-raw` config: every profiled query with its verifier columns, per-sample rewards and completions.

        Args:
            profiles: the profiles in memory (written in id order), or a profiling folder / profiles.parquet,
                streamed in batches in its own order (id order, as `merge` writes it) so memory stays flat.
        """
        import pyarrow.parquet as pq

        path = self.raw_file(config_name)
        schema = raw_features().arrow_schema

        def write(tmp: Path) -> None:
            with pq.ParquetWriter(tmp, schema) as writer:
                for table in _raw_tables(profiles, schema):
                    writer.write_table(table)

        _atomic(path, write)
        return path

    def write_summary(self, summary: ConfigSummary) -> Path:
        path = self.summary_file(summary.config_name)
        _atomic(path, lambda tmp: tmp.write_text(summary.to_json(), encoding="utf-8"))
        return path

    def write_rejects(self, config_name: str, rejects: Iterable[Reject]) -> Path:
        """The dropped profiles as JSON lines (`Reject.to_dict`)."""
        path = self.rejects_file(config_name)
        text = "".join(reject.to_json() + "\n" for reject in rejects)
        _atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        return path

    def write_card(self, text: str) -> Path:
        _atomic(self.card_file, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        return self.card_file


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


RAW_BATCH_ROWS = 1024


def _raw_tables(profiles: Iterable[QueryProfile] | str | os.PathLike, schema):
    """The raw config as `pyarrow.Table` batches: from profile objects, or streamed from a parquet file."""
    if isinstance(profiles, (str, os.PathLike)):
        yield from _raw_tables_from_parquet(Path(profiles), schema)
        return
    import pyarrow as pa

    rows = sorted((_raw_row(p) for p in profiles), key=lambda row: row["id"])
    yield pa.Table.from_pydict({name: [row[name] for row in rows] for name in RAW_COLUMNS}, schema=schema)


def _raw_row(profile: QueryProfile) -> dict[str, Any]:
    from sgpo_curate.rewards import verifier_columns

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


def _raw_tables_from_parquet(path: Path, schema):
    """Batches of a profiles.parquet as raw-config tables: the copied columns stay Arrow arrays (completions
    never become Python strings); only `solution` and `code_prompt` are derived, row by row, from each
    query's verifier columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sgpo_curate.records import Query
    from sgpo_curate.rewards import verifier_columns

    path = path / "profiles.parquet" if path.is_dir() else path
    source = pq.ParquetFile(path)
    for batch in source.iter_batches(
        batch_size=RAW_BATCH_ROWS, columns=list(dict.fromkeys(_RAW_COPIED + _QUERY_COLUMNS))
    ):
        queries = [Query.from_row(row) for row in batch.select(list(_QUERY_COLUMNS)).to_pylist()]
        derived = [verifier_columns(q) for q in queries]
        columns = {name: batch.column(name) for name in _RAW_COPIED}
        columns["solution"] = pa.array([d["solution"] for d in derived], pa.string())
        columns["code_prompt"] = pa.array([d["code_prompt"] for d in derived], pa.string())
        yield pa.Table.from_pydict({name: columns[name] for name in RAW_COLUMNS}).cast(schema)
