"""Verifiers: completions + queries in, one reward per completion out.

The one contract every verifier keeps (math, code, user-registered):

    verifier(completions: list[str], queries: list[Query]) -> list[float | None]

`completions[i]` answers `queries[i]`; the result has the same length; `1.0` correct, `0.0` wrong,
`None` = cannot verify (e.g. the gold answer does not parse) - excluded from the counts and reported.
Verifiers are callable classes, picklable (tests check it), and own any worker pool they need,
created lazily so pickling never tries to send a pool.
"""

from __future__ import annotations

from typing import Protocol

from sgpo_curate.records import Query
from sgpo_curate.registry import VERIFIERS


class Verifier(Protocol):
    name: str

    def __call__(self, completions: list[str], queries: list[Query]) -> list[float | None]: ...


def get_verifier(name: str, **kwargs) -> Verifier:
    """Build a registered verifier (`"math"`, `"code"`, or a dotted path to a class)."""
    return VERIFIERS.get(name)(**kwargs)


def verifier_for_domain(domain: str, **kwargs) -> Verifier:
    """The default verifier of a domain: `math` -> math-verify, `code` -> sandboxed unit tests."""
    return get_verifier(domain, **kwargs)
