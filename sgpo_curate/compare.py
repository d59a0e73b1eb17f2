"""Two models' profiles of the same queries side by side: can one stand in for the other?

What: `compare_profiles(a, b)` takes two configs' rows (id, num_correct, num_samples and, where the raw
config was written, the per-sample rewards) and measures, on the queries both profiled, how well A's p̂
predicts B's: Spearman rank correlation, agreement of difficulty buckets, of the filter decision (trivial /
unsolvable / kept) and of the group size under B's curation settings, and the mean |p̂_A - p̂_B|.

Why a reference: k samples make p̂ noisy, so even B against a second profile of B agrees imperfectly.
With per-sample rewards, the rank correlation of A's first half of samples with B's second half is set next
to that of B's first half with B's second half: the same number of samples on each side, so if the two
match, A predicts B as well as more samples of B itself would.

`load_config_rows(repo_or_dir, config)` reads a config from a curated folder or a Hub dataset repo (its
`<config>-raw` rows when present, so dropped queries count too); `compare(repo_or_dir, a, b)` is the whole
`sgpo-curate compare` job. `write_curated` stores the comparisons of a new config with those already in the
folder in its summary, and the card shows them.

Example:
    >>> a = [ConfigRow("q1", 1, 8), ConfigRow("q2", 8, 8), ConfigRow("q3", 4, 8)]
    >>> b = [ConfigRow("q1", 2, 8), ConfigRow("q2", 7, 8), ConfigRow("q3", 4, 8)]
    >>> compare_profiles(a, b, name_a="small", name_b="large").spearman
    1.0
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sgpo_curate.adaptive import decide
from sgpo_curate.dataset_folder import ComparisonRow, ConfigSummary, DatasetFolder, remote_patterns
from sgpo_curate.errors import InputError
from sgpo_curate.policy import difficulty_bucket, get_group_size_rule


@dataclass(frozen=True, slots=True)
class ConfigRow:
    """One query of a config: its counts and, from a raw config, its rewards in sample order."""

    id: str
    num_correct: int
    num_samples: int
    rewards: tuple[float | None, ...] = ()

    @property
    def pass_rate(self) -> float:
        return self.num_correct / self.num_samples


@dataclass(frozen=True)
class Comparison:
    """How well config A's profile predicts config B's on their shared queries.

    Args:
        config_a (`str`), config_b (`str`): the configs; model_a, model_b: their profiled models.
        shared (`int`): queries profiled (with verified samples) in both; only_a, only_b: in one only.
        spearman (`float`): rank correlation of p̂_A and p̂_B (ties get average ranks).
        bucket_agreement (`float`): share with the same difficulty bucket (trivial/easy/medium/hard/unsolved).
        filter_agreement (`float`): share with the same filter decision (trivial / unsolvable / kept).
        group_size_agreement (`float`): share with the same decision and group size under B's rule and
            bounds (NaN for a budgeted rule).
        mean_abs_difference (`float`): mean |p̂_A - p̂_B|.
        half_spearman_a_b (`float`): A's first half of samples against B's second half (NaN without rewards).
        half_spearman_b_b (`float`): B's first half against B's second half: the reference.
    """

    config_a: str
    config_b: str
    model_a: str
    model_b: str
    shared: int
    only_a: int
    only_b: int
    spearman: float
    bucket_agreement: float
    filter_agreement: float
    group_size_agreement: float
    mean_abs_difference: float
    half_spearman_a_b: float = math.nan
    half_spearman_b_b: float = math.nan
    b_settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in asdict(self).items()
        }

    def format(self) -> str:
        lines = [
            f"{self.config_a} ({self.model_a}) vs {self.config_b} ({self.model_b}): {self.shared} shared queries "
            f"({self.only_a} only in {self.config_a}, {self.only_b} only in {self.config_b})",
            f"  Spearman rank correlation of p̂:        {_fmt(self.spearman)}",
            f"  same difficulty bucket:                {_fmt(self.bucket_agreement)}",
            f"  same filter decision (trivial/unsolvable/kept): {_fmt(self.filter_agreement)}",
            f"  same decision and group size (B's rule): {_fmt(self.group_size_agreement)}",
            f"  mean |p̂_A - p̂_B|:                      {_fmt(self.mean_abs_difference)}",
        ]
        if math.isfinite(self.half_spearman_b_b):
            lines.append(
                f"  at half the samples: A vs B {_fmt(self.half_spearman_a_b)}, B vs B (reference) "
                f"{_fmt(self.half_spearman_b_b)}"
            )
        return "\n".join(lines)


def _fmt(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.3f}"


def compare_profiles(
    rows_a: Sequence[ConfigRow],
    rows_b: Sequence[ConfigRow],
    name_a: str = "A",
    name_b: str = "B",
    model_a: str = "",
    model_b: str = "",
    b_settings: Mapping[str, Any] | None = None,
) -> Comparison:
    """Compare two configs' rows on their shared queries (see the module docstring).

    Args:
        rows_a (`Sequence[ConfigRow]`), rows_b (`Sequence[ConfigRow]`): each config's rows.
        name_a, name_b (`str`): config names; model_a, model_b (`str`): the profiled models.
        b_settings (`Mapping`, *optional*): B's curation settings (`rule`, `g_min`, `g_max`,
            `uniform_group_size`, `coverage_probability`); default: curate's defaults.
    """
    a = {r.id: r for r in rows_a if r.num_samples > 0}
    b = {r.id: r for r in rows_b if r.num_samples > 0}
    ids = sorted(a.keys() & b.keys())
    if len(ids) < 2:
        raise InputError(
            f"configs {name_a!r} and {name_b!r} share {len(ids)} profiled queries; comparing needs at least 2"
        )
    settings = dict(b_settings or {})
    rule = get_group_size_rule(
        settings.get("rule", "inverse"),
        settings.get("uniform_group_size", 8),
        probability=settings.get("coverage_probability", 0.75),
    )
    g_min, g_max = settings.get("g_min", 2), settings.get("g_max", 16)
    pairs = [(a[i], b[i]) for i in ids]
    decisions = [
        (
            decide(x.num_correct, x.num_samples, rule, g_min, g_max),
            decide(y.num_correct, y.num_samples, rule, g_min, g_max),
        )
        for x, y in pairs
    ]
    sized = [d for d in decisions if d[1][-1] is not None or d[1][0] != "kept"]
    return Comparison(
        config_a=name_a,
        config_b=name_b,
        model_a=model_a,
        model_b=model_b,
        shared=len(ids),
        only_a=len(a.keys() - b.keys()),
        only_b=len(b.keys() - a.keys()),
        spearman=spearman([x.pass_rate for x, _ in pairs], [y.pass_rate for _, y in pairs]),
        bucket_agreement=_share(
            _bucket(x.num_correct, x.num_samples) == _bucket(y.num_correct, y.num_samples) for x, y in pairs
        ),
        filter_agreement=_share(da[0] == db[0] for da, db in decisions),
        group_size_agreement=_share(da == db for da, db in sized)
        if len(sized) == len(decisions)
        else math.nan,
        mean_abs_difference=sum(abs(x.pass_rate - y.pass_rate) for x, y in pairs) / len(pairs),
        half_spearman_a_b=_half_spearman([x for x, _ in pairs], [y for _, y in pairs]),
        half_spearman_b_b=_half_spearman([y for _, y in pairs], [y for _, y in pairs]),
        b_settings={k: settings[k] for k in ("rule", "g_min", "g_max") if k in settings},
    )


def _bucket(correct: int, samples: int) -> str:
    return difficulty_bucket(correct, samples)


def _share(flags) -> float:
    flags = list(flags)
    return sum(flags) / len(flags) if flags else math.nan


def _half_spearman(rows_x: Sequence[ConfigRow], rows_y: Sequence[ConfigRow]) -> float:
    """Spearman of p̂ from the first half of x's samples against the second half of y's (disjoint samples
    even when x and y are the same config); NaN when rewards are missing."""
    xs, ys = [], []
    for x, y in zip(rows_x, rows_y, strict=True):
        verified_x, verified_y = _verified(x.rewards), _verified(y.rewards)
        first = verified_x[: len(verified_x) // 2]
        second = verified_y[len(verified_y) // 2 :]
        if first and second:
            xs.append(sum(r >= 0.5 for r in first) / len(first))
            ys.append(sum(r >= 0.5 for r in second) / len(second))
    return spearman(xs, ys) if len(xs) >= 2 else math.nan


def _verified(rewards: Sequence[float | None]) -> list[float]:
    return [r for r in rewards if r is not None]


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either side is constant.

    Example:
        >>> spearman([0.1, 0.5, 0.5, 0.9], [0.0, 0.4, 0.6, 1.0])
        0.9486832980505138
    """
    if len(x) != len(y):
        raise ValueError(f"{len(x)} values against {len(y)}")
    return _pearson(_ranks(x), _ranks(y))


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2
        start = end + 1
    return ranks


def _pearson(x: Sequence[float], y: Sequence[float]) -> float:
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else math.nan


# --------------------------------------------------------------------------- IO edges


@dataclass(frozen=True)
class ConfigData:
    """A config's rows and its summary (`curation/<config>.json`)."""

    name: str
    summary: ConfigSummary
    rows: list[ConfigRow]


def load_config_rows(repo_or_dir: str | os.PathLike, config_name: str) -> ConfigData:
    """A config of a curated folder (or Hub dataset repo `ORG/NAME`): its raw rows when written (every
    profiled query), else its curated rows.

    Raises:
        FileNotFoundError: no such folder or config.
    """
    folder = _local_folder(repo_or_dir, config_name)
    return ConfigData(config_name, folder.read_summary(config_name), _read_rows(folder, config_name))


def _local_folder(repo_or_dir: str | os.PathLike | DatasetFolder, config_name: str) -> DatasetFolder:
    if isinstance(repo_or_dir, DatasetFolder):
        return repo_or_dir
    path = Path(repo_or_dir)
    if path.exists():
        return DatasetFolder(path)
    if str(repo_or_dir).count("/") != 1:
        raise FileNotFoundError(f"{repo_or_dir!r} is neither a folder nor a Hub dataset repo ORG/NAME")
    from huggingface_hub import snapshot_download

    patterns = remote_patterns(config_name)
    return DatasetFolder(snapshot_download(str(repo_or_dir), repo_type="dataset", allow_patterns=patterns))


def _read_rows(folder: DatasetFolder, config_name: str) -> list[ConfigRow]:
    import pyarrow.parquet as pq

    files = folder.raw_files(config_name)
    with_rewards = bool(files)
    files = files or folder.data_files(config_name)
    columns = ["id", "num_correct", "num_samples"] + (["rewards"] if with_rewards else [])
    rows = []
    for f in files:
        for r in pq.read_table(f, columns=columns).to_pylist():
            rewards = tuple(None if v is None else float(v) for v in r.get("rewards") or ())
            rows.append(ConfigRow(str(r["id"]), int(r["num_correct"]), int(r["num_samples"]), rewards))
    return rows


def compare_configs(a: ConfigData, b: ConfigData) -> Comparison:
    """`compare_profiles` on two loaded configs, with B's curation settings."""
    return compare_profiles(
        a.rows,
        b.rows,
        name_a=a.name,
        name_b=b.name,
        model_a=a.summary.model,
        model_b=b.summary.model,
        b_settings=asdict(b.summary.curation),
    )


def compare(repo_or_dir: str | os.PathLike, config_a: str, config_b: str) -> Comparison:
    """The whole `sgpo-curate compare` job: load both configs and compare them on their shared queries.

    Example:
        >>> print(compare("curated/", "SmolLM2-135M-Instruct", "Qwen2.5-0.5B").format())  # doctest: +SKIP
    """
    return compare_configs(load_config_rows(repo_or_dir, config_a), load_config_rows(repo_or_dir, config_b))


def comparisons_with_others(
    out_dir: str | os.PathLike | DatasetFolder, config_name: str
) -> list[ComparisonRow]:
    """This config compared with every other config of a curated folder (as predictor A of each), for its
    summary; pairs with fewer than 2 shared queries are skipped."""
    folder = out_dir if isinstance(out_dir, DatasetFolder) else DatasetFolder(out_dir)
    others = [name for name in folder.config_names() if name != config_name]
    if not others:
        return []
    this = load_config_rows(folder, config_name)
    out = []
    for other in others:
        try:
            out.append(
                ComparisonRow.from_dict(compare_configs(this, load_config_rows(folder, other)).to_dict())
            )
        except InputError:
            continue  # too few shared queries to say anything
    return out
