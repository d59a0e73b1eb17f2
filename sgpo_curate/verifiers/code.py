"""Code verifier: extract the program from a completion, run it sandboxed, judge it by the query's tests.

The same contract as the math verifier: `verifier(completions, queries) -> list[float | None]`,
`1.0` when the query's tests pass against the completion's code, `0.0` for any other verdict
(failed, timeout, crashed, tampered, sandbox error), `None` when the query has no tests.

The tests never run inside the completion's process: the sandbox's judged mode runs the completion's
code in one process and the tests in another (the judge), which calls the completion's functions
through proxies and gets plain data back (`sgpo_curate.sandbox`). So a completion cannot see the
tests, forge the pass, patch the tests' builtins, or answer with an always-equal object. Verdicts
of `tampered` (the completion reached for the harness) are counted in `tampered_samples`.

Program assembly follows the shape of the tests, not the source's name, so file/Hub sources with
mapped `tests` / `entry_point` columns work the same way:

- HumanEval style (the query carries a function stub: `metadata["code_prompt"]`, or a mapped
  source's problem text that is Python defining the entry point): the stub, then the completion. A completion that is a function *body* completes the stub; one that defines
  the whole function redefines it (the later `def` wins), while the stub's imports and helper
  functions stay available.
- Tests that define `check(candidate)` are followed by `check(<entry_point>)`.
- Otherwise (MBPP): the completion's code, then the tests (setup code and asserts).

In judged mode (`jobs`, what the verifier runs) the same pieces are split: the program is the stub
plus the completion (plus the tests' imports and class definitions, so that objects the tests build
can be passed to it); the judge runs the stub as a trusted prelude (its helpers, such as `poly`,
stay the dataset's), the tests, and the `check` call. `assemble` keeps the single-program form.

Programs run with `__name__ == "solution"`, so a completion's `if __name__ == "__main__":` demo
(often reading stdin) does not run, as in the reference harnesses.

    >>> verifier = CodeVerifier(SandboxConfig(timeout_s=5))
    >>> verifier(["```python\\ndef add(a, b):\\n    return a + b\\n```"], [query])  # doctest: +SKIP
    [1.0]
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re
import textwrap
import threading
from dataclasses import replace

from sgpo_curate.records import Query
from sgpo_curate.registry import VERIFIERS
from sgpo_curate.sandbox import Sandbox, SandboxConfig, Tests, Verdict

MODULE_NAME = "solution"
_FENCE = re.compile(r"```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:^[ \t]*```|\Z)", re.DOTALL | re.MULTILINE)
_PYTHON_TAGS = ("python", "py", "python3", "py3")


def defines(code: str, name: str) -> bool:
    """True when `code` defines function `name` at top level."""
    return re.search(rf"^(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None


def extract_code(completion: str, entry_point: str | None = None) -> str:
    """The Python code in a completion.

    Fenced blocks win: the first one that defines `entry_point`, else the first tagged python (or
    untagged), else the first block. An unclosed fence (a completion cut by the token limit) runs to
    the end. Without fences the whole completion is taken as code.

    Example:
        >>> extract_code("Sure:\\n```python\\ndef f():\\n    return 1\\n```\\nDone.")
        'def f():\\n    return 1\\n'
    """
    blocks = [(tag.lower(), body) for tag, body in _FENCE.findall(completion)]
    if not blocks:
        return completion
    if entry_point:
        for _, body in blocks:
            if defines(body, entry_point):
                return body
    for tag, body in blocks:
        if tag in _PYTHON_TAGS or tag == "":
            return body
    return blocks[0][1]


def function_under_test(query: Query) -> str | None:
    """The function the tests are about: the entry point, else the first non-builtin the asserts call,
    else (every call is to a builtin's name, e.g. MBPP's `sum(10, 15)`) the first name they call.

    Example:
        >>> function_under_test(Query("t/0", "t", "code", (("user", "?"),), tests="assert set(f(1)) == {1}"))
        'f'
    """
    if query.entry_point:
        return query.entry_point.strip()
    called = [n for n in re.findall(r"\b([A-Za-z_]\w*)\s*\(", query.tests or "") if not keyword.iskeyword(n)]
    for name in called:
        if not hasattr(builtins, name):
            return name
    return called[0] if called else None


def _as_body(code: str) -> str:
    """A function body: indented by four spaces unless its first code line already is."""
    first = next((line for line in code.splitlines() if line.strip()), "")
    return code if first[:1] in (" ", "\t") else textwrap.indent(code, "    ")


def function_stub(query: Query) -> str | None:
    """The HumanEval-style stub a completion may be the body of, if the query has one.

    `metadata["code_prompt"]` (the bundled HumanEval source), else the problem text of a mapped
    file/Hub source when it is itself Python that defines the entry point (HumanEval-like data
    whose `prompt` column was mapped to `question`).
    """
    metadata = query.metadata or {}
    if metadata.get("code_prompt"):
        return metadata["code_prompt"]
    problem = metadata.get("problem")
    if not (isinstance(problem, str) and query.entry_point and defines(problem, query.entry_point)):
        return None
    try:
        ast.parse(problem)
    except SyntaxError:
        return None
    return problem


def assemble(code: str, query: Query) -> str:
    """The program that runs `code` (already extracted) against `query`'s tests.

    Example:
        >>> q = Query("t/0", "t", "code", (("user", "add"),), tests="assert add(1, 2) == 3")
        >>> print(assemble("def add(a, b):\\n    return a + b", q))
        def add(a, b):
            return a + b
        <BLANKLINE>
        assert add(1, 2) == 3
        <BLANKLINE>
    """
    entry_point = (query.entry_point or "").strip()
    program = _with_stub(code, query)
    program = program.rstrip() + "\n\n" + (query.tests or "").rstrip() + "\n"
    if entry_point and re.search(r"^def\s+check\s*\(", query.tests or "", re.MULTILINE):
        program += f"\ncheck({entry_point})\n"
    return program


def _with_stub(code: str, query: Query) -> str:
    """The completion behind the query's function stub (imports, signature): a completion that defines
    the entry point follows the whole stub; a bare body is indented under the stub's signature."""
    entry_point = (query.entry_point or "").strip()
    stub = function_stub(query)
    if stub and entry_point and defines(code, entry_point):
        return stub.rstrip() + "\n\n\n" + code
    if stub and entry_point:
        return stub.rstrip("\n") + "\n" + _as_body(code)
    return code


def _test_definitions(tests: str) -> str:
    """The tests' top-level imports and class definitions: the program's process needs them to
    rebuild objects of those classes that the tests pass to it (never the asserts)."""
    try:
        tree = ast.parse(tests)
    except SyntaxError:
        return ""
    keep = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom, ast.ClassDef))]
    return "\n".join(ast.get_source_segment(tests, node) or "" for node in keep)


def judged_job(code: str, query: Query) -> tuple[str, Tests]:
    """The program (stub + completion + the tests' definitions) and the tests that judge it.

    Example:
        >>> q = Query("t/0", "t", "code", (("user", "add"),), tests="assert add(1, 2) == 3")
        >>> program, tests = judged_job("def add(a, b):\\n    return a + b", q)
        >>> tests.code
        'assert add(1, 2) == 3\\n'
    """
    entry_point = (query.entry_point or "").strip()
    program = _with_stub(code, query)
    tests = (query.tests or "").rstrip() + "\n"
    definitions = _test_definitions(tests)
    if definitions:
        program = program.rstrip() + "\n\n" + definitions + "\n"
    if entry_point and re.search(r"^def\s+check\s*\(", query.tests or "", re.MULTILINE):
        tests += f"\ncheck({entry_point})\n"
    stub = function_stub(query)
    prelude = stub if stub and entry_point else ""
    # The function under test comes from the program even where the prelude or a builtin has the
    # name (MBPP 126 defines `sum`); every other name the tests use stays the judge's own.
    under_test = function_under_test(query)
    return program, Tests(tests, prelude=prelude, program_names=(under_test,) if under_test else ())


@VERIFIERS.register("code")
class CodeVerifier:
    """Reward 1.0 when a completion's code passes its query's unit tests in the sandbox.

    Args:
        config (`SandboxConfig`, *optional*): sandbox limits and workers.
        workers (`int`, *optional*), timeout_s (`float`, *optional*): shortcuts that override
            `config.workers` / `config.timeout_s`.

    The sandbox (and its worker threads) is created on first use and dropped when pickled.
    """

    name = "code"

    def __init__(
        self, config: SandboxConfig | None = None, workers: int | None = None, timeout_s: float | None = None
    ):
        config = config or SandboxConfig()
        if workers is not None or timeout_s is not None:
            config = replace(
                config, workers=workers or config.workers, timeout_s=timeout_s or config.timeout_s
            )
        self.config = config
        self._sandbox: Sandbox | None = None
        self.tampered_samples = 0  # verdicts of `tampered` seen by this verifier (profiling reports it)
        self._count_lock = threading.Lock()

    @property
    def version(self) -> str:
        """What verified, for run.json and dataset cards: the sandbox's interpreter and isolation."""
        isolation = self.sandbox.isolation
        return (
            f"sgpo-sandbox/2 judged python-{isolation.python_version} "
            f"network_isolated={isolation.network_isolated} filesystem_isolated={isolation.filesystem_isolated} "
            f"seccomp={isolation.seccomp} uid_isolated={isolation.drop_privileges} "
            f"timeout_s={self.config.timeout_s:g}"
        )

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = Sandbox(self.config)
        return self._sandbox

    def programs(self, completions: list[str], queries: list[Query]) -> list[str | None]:
        """Each completion as one plain program (completion + tests, `assemble`); `None` for a query
        without tests. For reading and for benchmarks; the verifier itself runs `jobs`."""
        if len(completions) != len(queries):
            raise ValueError(f"{len(completions)} completions for {len(queries)} queries")
        return [
            assemble(extract_code(c, function_under_test(q)), q) if (q.tests or "").strip() else None
            for c, q in zip(completions, queries, strict=True)
        ]

    def jobs(self, completions: list[str], queries: list[Query]) -> list[tuple[str, Tests] | None]:
        """What runs in judged mode: per completion, the program and the tests that judge it."""
        if len(completions) != len(queries):
            raise ValueError(f"{len(completions)} completions for {len(queries)} queries")
        return [
            judged_job(extract_code(c, function_under_test(q)), q) if (q.tests or "").strip() else None
            for c, q in zip(completions, queries, strict=True)
        ]

    def verdicts(self, completions: list[str], queries: list[Query]) -> list[Verdict | None]:
        """The sandbox verdict of each completion (for diagnostics); `None` where there are no tests."""
        jobs = self.jobs(completions, queries)
        todo = [job for job in jobs if job is not None]
        found = (
            self.sandbox.run_many([p for p, _ in todo], MODULE_NAME, tests=[t for _, t in todo])
            if todo
            else []
        )
        with self._count_lock:
            self.tampered_samples += sum(v.status == "tampered" for v in found)
        results = iter(found)
        return [next(results) if job is not None else None for job in jobs]

    def __call__(self, completions: list[str], queries: list[Query]) -> list[float | None]:
        return [
            None if v is None else (1.0 if v.passed else 0.0) for v in self.verdicts(completions, queries)
        ]

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    def __getstate__(self) -> dict:
        return {"config": self.config, "_sandbox": None, "tampered_samples": self.tampered_samples}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._count_lock = threading.Lock()
