"""Math verifier: math-verify, run in a process pool.

Two extraction modes decide what counts as a completion's answer:

- `strict` (default): exactly what TRL's `accuracy_reward` (trl 1.16) scores, the reward most users
  train with. The answer must be LaTeX in `\\boxed{}` (tried first) or in `$...$` after an anchor
  ("The final answer is $14$."); the first match is taken. The gold answer is parsed as TRL parses its
  `solution` column, and `solution_text` is the text we publish in that column, so
  `accuracy_reward(completions, solution=row["solution"])` gives our reward for every published row.
- `lenient`: math-verify's default extraction, which falls back to the last bare number in the text.
  A small model's rambling often ends in a number that happens to equal the gold answer, so a pass rate
  measured this way is not the reward a trainer will see; keep it for models that never box.

Measured with TRL 1.16 (gold `$14$`): `\\boxed{14}` 1, `Answer: $\\boxed{14}$` 1, `The final answer is
$14$.` 1; `The final answer is 14.`, `The answer is 14`, `**Answer:** 14`, a bare `14`: 0 strict, 1 lenient.

math-verify's timeouts use `signal.alarm`, which works only in a process's main thread, so checks run
in worker processes (never threads); each worker handles one query's gold answer and its completions,
so the gold answer is parsed once per query. A gold answer that does not parse makes every sample of
that query `None` ("unverifiable", not "wrong"); a completion without a parseable answer is `0.0`.

    >>> verifier = MathVerifier(workers=1)
    >>> verifier(["so the answer is $\\\\boxed{18}$"], [query])  # doctest: +SKIP
    [1.0]
"""

from __future__ import annotations

import logging
import math
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from importlib import metadata
from itertools import groupby

from sgpo_curate._extras import require, requires
from sgpo_curate.records import Query
from sgpo_curate.registry import VERIFIERS

logger = logging.getLogger(__name__)

EXTRACTION_MODES = ("strict", "lenient")
DEFAULT_EXTRACTION = "strict"


def solution_text(answer: str) -> str:
    """A gold answer as published in the `solution` column: in `$...$` unless it is already math text.

    TRL's `accuracy_reward` parses `solution` with math-verify's default extraction; in `$...$` a LaTeX
    answer (`\\frac{1}{2}`, an interval) parses as a whole rather than as its first number.

    Example:
        >>> solution_text("14"), solution_text("$14$")
        ('$14$', '$14$')
    """
    return answer if "$" in answer or "\\boxed" in answer else f"${answer}$"


def _answer_config(extraction: str):
    """math-verify extraction targets for a completion; `None` = its defaults (lenient)."""
    if extraction == "lenient":
        return None
    with requires("profile"):
        from latex2sympy2_extended import NormalizationConfig
        from math_verify import LatexExtractionConfig

    # TRL 1.16 `accuracy_reward`, verbatim: boxed first, no answer without an anchor or math delimiters.
    return [
        LatexExtractionConfig(
            normalization_config=NormalizationConfig(units=True),
            boxed_match_priority=0,
            try_extract_without_anchor=False,
        )
    ]


def check_answers(
    gold: str, completions: list[str], timeout_s: int, extraction: str = DEFAULT_EXTRACTION
) -> list[float | None]:
    """Verify `completions` against one `gold` answer (runs inside a worker process).

    Args:
        gold (`str`): the gold answer (`Query.answer`).
        completions (`list[str]`): the texts to check.
        timeout_s (`int`): per parse/verify timeout, in whole seconds.
        extraction (`str`): `"strict"` (TRL's `accuracy_reward`) or `"lenient"` (any last number).

    Example:
        >>> check_answers("18", ["$\\\\boxed{18}$", "$\\\\boxed{17}$", "so 18"], 5)
        [1.0, 0.0, 0.0]
        >>> check_answers("18", ["so 18"], 5, extraction="lenient")
        [1.0]
    """
    with requires("profile"):
        from math_verify import parse, verify

    gold_parsed = parse(solution_text(gold), parsing_timeout=timeout_s)
    if not gold_parsed:
        return [None] * len(completions)
    config = _answer_config(extraction)
    options = {"extraction_config": config, "extraction_mode": "first_match"} if config else {}
    rewards: list[float | None] = []
    for completion in completions:
        answer = parse(completion, parsing_timeout=timeout_s, **options)
        ok = bool(answer) and verify(gold_parsed, answer, timeout_seconds=timeout_s)
        rewards.append(1.0 if ok else 0.0)
    return rewards


def _check_group(args: tuple[str, list[str], int, str]) -> list[float | None]:
    return check_answers(*args)


@VERIFIERS.register("math")
class MathVerifier:
    """Reward 1.0 when a completion's final answer equals the gold answer under math-verify.

    Args:
        workers (`int`, *optional*): worker processes; default: number of cores.
        timeout_s (`int`): per parse/verify timeout inside a worker, in seconds.
        extraction (`str`): `"strict"` (default; the answer TRL's `accuracy_reward` extracts: `\\boxed{}`
            or anchored LaTeX) or `"lenient"` (math-verify's default, which falls back to the last number).
    """

    name = "math"

    def __init__(
        self, workers: int | None = None, timeout_s: float = 5, extraction: str = DEFAULT_EXTRACTION
    ):
        if timeout_s < 1:
            raise ValueError(f"MathVerifier timeout_s must be >= 1 second, got {timeout_s}")
        if extraction not in EXTRACTION_MODES:
            raise ValueError(
                f"unknown math extraction {extraction!r}; valid: {', '.join(EXTRACTION_MODES)} "
                "(strict = TRL's accuracy_reward, lenient = any last number)"
            )
        require("profile", "math_verify")  # here: the workers import it, and fail far from the caller
        self.workers = workers or os.cpu_count() or 1
        self.timeout_s = math.ceil(timeout_s)  # signal.alarm takes whole seconds
        self.extraction = extraction
        self._pool: Executor | None = None

    @property
    def version(self) -> str:
        # The timeout can turn a slow check into a wrong verdict, so it is part of the version (as in
        # the code verifier's): a resume with another timeout is refused.
        return f"math-verify=={metadata.version('math-verify')} timeout_s={self.timeout_s}"

    @property
    def settings(self) -> dict[str, str]:
        """What changes the verdicts (recorded in run.json and the card; `get_verifier("math", **settings)`
        rebuilds the same reward for training)."""
        return {"extraction": self.extraction}

    def _executor(self) -> Executor:
        if self._pool is None:
            import multiprocessing

            # spawn, not fork: the parent usually holds torch and its thread pools.
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def __call__(self, completions: list[str], queries: list[Query]) -> list[float | None]:
        if len(completions) != len(queries):
            raise ValueError(f"{len(completions)} completions for {len(queries)} queries")
        groups = []
        for _, run in groupby(zip(completions, queries, strict=True), key=lambda pair: pair[1].id):
            run = list(run)
            gold = run[0][1].answer
            groups.append((gold, [c for c, _ in run]))
        rewards: list[float | None] = []
        jobs = [(gold, texts, self.timeout_s, self.extraction) for gold, texts in groups if gold]
        # Chunks of jobs per task: one query's check is ~ms, so per-task IPC would dominate otherwise.
        chunksize = max(1, len(jobs) // (4 * self.workers))
        results = iter(self._executor().map(_check_group, jobs, chunksize=chunksize))
        for gold, texts in groups:
            rewards.extend(next(results) if gold else [None] * len(texts))
        return rewards

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __getstate__(self) -> dict:
        return {
            "workers": self.workers,
            "timeout_s": self.timeout_s,
            "extraction": self.extraction,
            "_pool": None,
        }

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
