"""Sources: adapters from a dataset's rows to `Query` records.

Each source is a `Source` in the `SOURCES` registry. A source yields `(key, row)` pairs from its
files and turns each row into a `Query`, or raises `RejectedRow` with a reason. `Source.records` streams
both: a `Query` per good row and a `Reject` (`sgpo_curate.records`) per bad one, in row order, so the run
goes on and nothing is silently lost; profiling writes the rejects as they pass, `load_queries` splits them.

    >>> from sgpo_curate.sources import load_queries
    >>> queries, rejects = load_queries("gsm8k", limit=3)
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sgpo_curate.config import PromptConfig
from sgpo_curate.packaged import package_file  # noqa: F401  (re-exported for the source modules)
from sgpo_curate.records import Query, Reject
from sgpo_curate.registry import SOURCES


class RejectedRow(ValueError):
    """A row that cannot become a `Query`; the message is the reason (counted and written out)."""


@dataclass(frozen=True)
class Unreadable:
    """A record a source could not read at all (e.g. a malformed JSON line): yielded in place of a row,
    rejected under `reason`, with `detail` (what was wrong, the start of its text) kept in the reject."""

    reason: str
    detail: Mapping[str, Any]


@dataclass(frozen=True)
class Source:
    """A named dataset and its adapter.

    Args:
        name (`str`): registry name, also the `source` column prefix.
        domain (`str`): `"math"` or `"code"`.
        rows (`Callable[[], Iterable[tuple[str, Mapping]]]`): yields `(key, row)` pairs; a record it could
            not read comes as `(key, Unreadable(...))` and is rejected, not adapted.
        adapt (`Callable[[str, Mapping, PromptConfig], Query]`): one row -> `Query`; raises
            `RejectedRow` for rows it cannot use.
        description (`str`): one line for `sgpo-curate sources`.
        license (`str`): the upstream dataset's license, copied into dataset cards.
        citation (`str`): where the data comes from.
        hub_id (`str`, *optional*): the upstream dataset's Hub id (`openai/gsm8k`), for the card's
            `source_datasets`; None when it has none (generated data, a local file).
    """

    name: str
    domain: str
    rows: Callable[[], Iterable[tuple[str, Mapping[str, Any]]]]
    adapt: Callable[[str, Mapping[str, Any], PromptConfig], Query]
    description: str = ""
    license: str = "unknown"
    citation: str = ""
    hub_id: str | None = None

    def records(self, prompt: PromptConfig) -> Iterator[Query | Reject]:
        """Stream this source: a `Query` for each usable row, a `Reject` (with its reason) for each other one."""
        for key, row in self.rows():
            if isinstance(row, Unreadable):
                yield Reject("source", self.name, str(key), row.reason, row.detail)
                continue
            try:
                yield self.adapt(key, row, prompt)
            except RejectedRow as exc:
                yield Reject("source", self.name, str(key), str(exc), row)

    def queries(self, prompt: PromptConfig) -> Iterator[Query]:
        """Only the queries of `records` (rejected rows are skipped: use `records` or `load_queries` to see them)."""
        return (r for r in self.records(prompt) if isinstance(r, Query))


def register_source(source: Source) -> Source:
    SOURCES.register(source.name, source)
    return source


def get_source(name: str) -> Source:
    """A registered source by name (unknown names list the valid ones)."""
    source = SOURCES.get(name)
    return source() if callable(source) and not isinstance(source, Source) else source


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def require_text(row: Mapping[str, Any], field_name: str) -> str:
    """`row[field_name]` as a non-empty string, or `RejectedRow` naming the field.

    Every reason starts with `field '<name>'`, the row's own column name (for a mapped file, the user's).
    """
    value = row.get(field_name)
    if value is None:
        raise RejectedRow(f"field {field_name!r} is missing")
    if not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        else:
            raise RejectedRow(f"field {field_name!r} is {type(value).__name__}, expected text")
    if not value.strip():
        raise RejectedRow(f"field {field_name!r} is empty")
    return value


def load_queries(
    name: str,
    prompt: PromptConfig | None = None,
    limit: int | None = None,
) -> tuple[list[Query], list[Reject]]:
    """All queries of a source (first `limit` rows when given) and the rejected rows.

    Args:
        name (`str`): a registered source name (see `sgpo-curate sources`) or a dotted path.
        prompt (`PromptConfig`, *optional*): how to build the chat messages.
        limit (`int`, *optional*): stop after this many queries.
    """
    queries: list[Query] = []
    rejects: list[Reject] = []
    for record in get_source(name).records(prompt or PromptConfig()):
        if isinstance(record, Reject):
            rejects.append(record)
            continue
        queries.append(record)
        if limit is not None and len(queries) >= limit:
            break
    return queries, rejects


def split_records(records: Iterable[Query | Reject]) -> tuple[list[Query], list[Reject]]:
    """The queries and the rejects of a `Source.records` stream, each in stream order."""
    queries: list[Query] = []
    rejects: list[Reject] = []
    for record in records:
        (rejects if isinstance(record, Reject) else queries).append(record)
    return queries, rejects


def count_reasons(rejects: Iterable[Reject]) -> Counter:
    return Counter(r.reason for r in rejects)
