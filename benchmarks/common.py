"""Helpers shared by the benchmarks: timing and writing a result table next to its rerun command."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

RESULTS = Path(__file__).parent / "results"


def timed(fn: Callable[[], object], repeats: int = 1) -> float:
    """Best wall time of `repeats` calls (the least disturbed by a noisy machine)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def write_table(name: str, title: str, header: list[str], rows: list[list[object]], notes: str = "") -> str:
    """Print a markdown table and save it to `benchmarks/results/NAME.md` with the command that made it."""
    text = table_markdown(title, header, rows, notes)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.md").write_text(text)
    sys.stdout.write(text)
    return text


def table_markdown(title: str, header: list[str], rows: list[list[object]], notes: str = "") -> str:
    """A titled markdown table, the command that made it (this script's argv) and notes."""
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    command = "python " + " ".join([f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    lines += ["", f"Rerun: `{command}` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores)."]
    if notes:
        lines += ["", notes]
    return "\n".join(lines) + "\n"
