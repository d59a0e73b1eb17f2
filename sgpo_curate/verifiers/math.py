"""Math verifier: math-verify, run in a process pool.

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


def check_answers(gold: str, completions: list[str], timeout_s: int) -> list[float | None]:
    """Verify `completions` against one `gold` answer (runs inside a worker process).

    Example:
        >>> check_answers("18", ["$\\\\boxed{18}$", "$\\\\boxed{17}$", "no idea"], 5)
        [1.0, 0.0, 0.0]
    """
    with requires("profile"):
        from math_verify import parse, verify

    gold_parsed = parse(gold if "$" in gold or "\\boxed" in gold else f"${gold}$", parsing_timeout=timeout_s)
    if not gold_parsed:
        return [None] * len(completions)
    rewards: list[float | None] = []
    for completion in completions:
        answer = parse(completion, parsing_timeout=timeout_s)
        ok = bool(answer) and verify(gold_parsed, answer, timeout_seconds=timeout_s)
        rewards.append(1.0 if ok else 0.0)
    return rewards


def _check_group(args: tuple[str, list[str], int]) -> list[float | None]:
    return check_answers(*args)


@VERIFIERS.register("math")
class MathVerifier:
    """Reward 1.0 when a completion's final answer equals the gold answer under math-verify.

    Args:
        workers (`int`, *optional*): worker processes; default: number of cores.
        timeout_s (`int`): per parse/verify timeout inside a worker, in seconds.
    """

    name = "math"

    def __init__(self, workers: int | None = None, timeout_s: float = 5):
        if timeout_s < 1:
            raise ValueError(f"MathVerifier timeout_s must be >= 1 second, got {timeout_s}")
        require("profile", "math_verify")  # here: the workers import it, and fail far from the caller
        self.workers = workers or os.cpu_count() or 1
        self.timeout_s = math.ceil(timeout_s)  # signal.alarm takes whole seconds
        self._pool: Executor | None = None

    @property
    def version(self) -> str:
        # The timeout can turn a slow check into a wrong verdict, so it is part of the version (as in
        # the code verifier's): a resume with another timeout is refused.
        return f"math-verify=={metadata.version('math-verify')} timeout_s={self.timeout_s}"

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
        jobs = [(gold, texts, self.timeout_s) for gold, texts in groups if gold]
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
        return {"workers": self.workers, "timeout_s": self.timeout_s, "_pool": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
