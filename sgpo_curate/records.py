"""The records that flow between stages: `Query` (what to profile), `QueryProfile` (what profiling found) and
`Reject` (what was dropped on the way, and why).

Every stage takes and returns these frozen dataclasses rather than loose dicts, so a typo in a field
name fails at once instead of silently writing a wrong column. `to_row` / `from_row` are the only
places that know the parquet layout (column names follow DESIGN.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DOMAINS = ("math", "code")


def stable_id(source: str, key: str | int) -> str:
    """A short id that is stable across runs and machines: the source name plus its row key.

    Example:
        >>> stable_id("gsm8k/test", 3)
        'gsm8k/test/3'
    """
    return f"{source}/{key}"


def freeze_messages(messages: Sequence[Mapping[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((str(m["role"]), str(m["content"])) for m in messages)


@dataclass(frozen=True, slots=True)
class Query:
    """One problem to profile.

    Args:
        id (`str`): stable id, `source/key`, the row's own key or its index.
        source (`str`): source dataset, config and split, e.g. `"gsm8k/test"`.
        domain (`str`): `"math"` or `"code"`.
        prompt (`tuple[tuple[str, str], ...]`): chat messages as `(role, content)` pairs; what the policy
            sees. Use `messages` for the TRL conversational format (list of dicts).
        answer (`str`, *optional*): gold answer (math).
        tests (`str`, *optional*): unit-test code (code).
        entry_point (`str`, *optional*): function name the tests call (code).
        metadata (`Mapping`): anything else the source carries (level, type, raw problem text).
    """

    id: str
    source: str
    domain: str
    prompt: tuple[tuple[str, str], ...]
    answer: str | None = None
    tests: str | None = None
    entry_point: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"Query {self.id!r}: domain must be one of {DOMAINS}, got {self.domain!r}")
        if not self.prompt:
            raise ValueError(f"Query {self.id!r}: prompt has no messages")

    @property
    def messages(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.prompt]

    def to_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "domain": self.domain,
            "prompt": self.messages,
            "answer": self.answer,
            "tests": self.tests,
            "entry_point": self.entry_point,
            "metadata": json.dumps(dict(self.metadata), sort_keys=True, default=str),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Query:
        metadata = row.get("metadata") or "{}"
        return cls(
            id=row["id"],
            source=row["source"],
            domain=row["domain"],
            prompt=freeze_messages(row["prompt"]),
            answer=row.get("answer"),
            tests=row.get("tests"),
            entry_point=row.get("entry_point"),
            metadata=json.loads(metadata) if isinstance(metadata, str) else dict(metadata),
        )


@dataclass(frozen=True, slots=True)
class QueryProfile:
    """What k samples under the initial policy said about one query.

    Args:
        query (`Query`): the profiled query.
        model (`str`): the profiled model (name or path).
        rewards (`tuple[float | None, ...]`): one verdict per sample; `None` = could not be verified
            (e.g. the gold answer does not parse). Unverifiable samples are excluded from the counts.
        completion_tokens (`tuple[int, ...]`): generated tokens per sample.
        prompt_tokens (`int`): tokens of the templated prompt.
        completions (`tuple[str, ...]`): raw sampled texts (they go to the `raw` config when published).
    """

    query: Query
    model: str
    rewards: tuple[float | None, ...]
    completion_tokens: tuple[int, ...]
    prompt_tokens: int
    completions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.rewards) != len(self.completion_tokens):
            raise ValueError(
                f"QueryProfile {self.query.id!r}: {len(self.rewards)} rewards but "
                f"{len(self.completion_tokens)} token counts"
            )

    @property
    def id(self) -> str:
        return self.query.id

    @property
    def num_samples(self) -> int:
        """Samples with a verdict (unverifiable ones excluded)."""
        return sum(r is not None for r in self.rewards)

    @property
    def num_correct(self) -> int:
        # A reward counts as a success when it is at least 0.5 so partial-credit verifiers still map
        # onto a binary pass rate.
        return sum(r is not None and r >= 0.5 for r in self.rewards)

    @property
    def num_unverifiable(self) -> int:
        return sum(r is None for r in self.rewards)

    @property
    def pass_rate(self) -> float:
        """Raw p̂ = num_correct / num_samples; NaN when no sample could be verified."""
        return self.num_correct / self.num_samples if self.num_samples else math.nan

    def to_row(self) -> dict[str, Any]:
        row = self.query.to_row()
        row.update(
            model=self.model,
            num_samples=self.num_samples,
            num_correct=self.num_correct,
            num_unverifiable=self.num_unverifiable,
            pass_rate=self.pass_rate,
            rewards=list(self.rewards),
            completion_tokens=list(self.completion_tokens),
            prompt_tokens=self.prompt_tokens,
            completions=list(self.completions),
        )
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> QueryProfile:
        rewards = tuple(
            None if r is None or (isinstance(r, float) and math.isnan(r)) else float(r)
            for r in row["rewards"]
        )
        return cls(
            query=Query.from_row(row),
            model=row["model"],
            rewards=rewards,
            completion_tokens=tuple(int(t) for t in row["completion_tokens"]),
            prompt_tokens=int(row["prompt_tokens"]),
            completions=tuple(row.get("completions") or ()),
        )


REJECT_STAGES = ("source", "curation")


@dataclass(frozen=True, slots=True)
class Reject:
    """Something dropped on its way to the dataset, and why: every drop has one, counted and written out.

    A source yields one for a row that cannot become a `Query` (it travels through the profiling stream
    beside the queries and lands in the shard's `rejects.jsonl`); curation makes one for every profile the
    policy drops (`rejects/<config>.jsonl` of the dataset folder).

    Args:
        stage (`str`): `"source"` (a source row) or `"curation"` (a profile).
        source (`str`): the source dataset the row or query came from.
        key (`str`): the row's key in its source (`"3"`, `"line 14"`), or the query id for curation.
        reason (`str`): why, e.g. `"field 'q' is empty"` or `"trivial"`.
        detail (`Mapping`): the row as read (source), or the profile's counts (curation).

    Example:
        >>> Reject("curation", "gsm8k", "gsm8k/3", "trivial", {"num_correct": 8, "num_samples": 8}).to_json()
        '{"stage": "curation", "source": "gsm8k", "key": "gsm8k/3", "reason": "trivial", "detail": {"num_correct": 8, "num_samples": 8}}'
    """

    stage: str
    source: str
    key: str
    reason: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.stage not in REJECT_STAGES:
            raise ValueError(f"Reject {self.key!r}: stage must be one of {REJECT_STAGES}, got {self.stage!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "source": self.source,
            "key": self.key,
            "reason": self.reason,
            "detail": dict(self.detail),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=str)
