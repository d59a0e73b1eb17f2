"""The code verifier: extraction, assembly, the reward contract, and every canonical solution passing.

The canonical-solution test runs all 164 HumanEval and all 500 MBPP reference solutions through the
real `CodeVerifier` (sandbox included): it is what proves program assembly right.
"""

import json
import pickle
from collections import Counter

import pytest

from sgpo_curate.config import PromptConfig
from sgpo_curate.records import Query
from sgpo_curate.sandbox import SandboxConfig
from sgpo_curate.sources import load_queries
from sgpo_curate.sources.files import file_source
from sgpo_curate.verifiers import get_verifier, verifier_for_domain
from sgpo_curate.verifiers.code import CodeVerifier, assemble, defines, extract_code, function_under_test

CONFIG = SandboxConfig(timeout_s=10, workers=2)


@pytest.fixture(scope="module")
def verifier():
    verifier = CodeVerifier(CONFIG)
    yield verifier
    verifier.close()


@pytest.fixture(scope="module")
def humaneval():
    return load_queries("humaneval")[0]


@pytest.fixture(scope="module")
def mbpp():
    return load_queries("mbpp")[0]


def add_query(**fields) -> Query:
    base = dict(
        id="t/0",
        source="t",
        domain="code",
        prompt=(("user", "add"),),
        tests="assert add(1, 2) == 3\nassert add(-1, 1) == 0\n",
    )
    return Query(**{**base, **fields})


def test_every_canonical_solution_passes(humaneval, mbpp):
    # A generous limit: MBPP 123's reference (amicable numbers below 9999) is quadratic and takes
    # 3-10 s on a busy core; every other solution takes well under a second.
    verifier = CodeVerifier(SandboxConfig(timeout_s=60, workers=2))
    queries = humaneval + mbpp
    verdicts = verifier.verdicts([q.metadata["canonical_solution"] for q in queries], queries)
    failures = {q.id: (v.status, v.reason) for q, v in zip(queries, verdicts, strict=True) if not v.passed}
    verifier.close()
    assert failures == {}
    assert len(verdicts) == 164 + 500


def test_solutions_of_other_problems_fail(verifier, humaneval, mbpp):
    for queries in (humaneval[:12], mbpp[:12]):
        shifted = [q.metadata["canonical_solution"] for q in queries[1:] + queries[:1]]
        assert verifier(shifted, queries) == [0.0] * len(queries)


def test_extract_code_from_fences_and_bare_text():
    assert (
        extract_code("Here:\n```python\ndef f():\n    return 1\n```\nThat's it.")
        == "def f():\n    return 1\n"
    )
    two = "```python\nprint(f())\n```\nand\n```py\ndef f():\n    return 2\n```"
    assert extract_code(two, "f") == "def f():\n    return 2\n"  # the block that defines the entry point
    assert extract_code(two) == "print(f())\n"
    assert extract_code("```\nx = 1\n```") == "x = 1\n"
    assert (
        extract_code("```python\ndef f():\n    return 1") == "def f():\n    return 1"
    )  # cut by the token limit
    assert extract_code("    return x + 1\n") == "    return x + 1\n"  # a bare body keeps its indentation
    assert defines("async def g(a):\n    pass", "g") and not defines("    def g(a):", "g")


def test_mbpp_picks_the_block_that_defines_the_function_under_test(verifier, mbpp):
    query = mbpp[0]
    assert function_under_test(query) == "remove_Occ"
    completion = (
        f"Usage:\n```python\nprint(remove_Occ('hello', 'l'))\n```\nCode:\n"
        f"```python\n{query.metadata['canonical_solution']}\n```"
    )
    assert verifier([completion], [query]) == [1.0]


def test_humaneval_body_and_full_function_both_work(verifier, humaneval):
    query = humaneval[0]
    body = query.metadata["canonical_solution"]
    full = (
        "```python\nfrom typing import List\n\ndef has_close_elements(numbers, threshold):\n" + body + "```"
    )
    unindented = "\n".join(line[4:] for line in body.splitlines())
    assert verifier([body, full, unindented, "    return True\n"], [query] * 4) == [1.0, 1.0, 1.0, 0.0]
    program = assemble(extract_code(full, query.entry_point), query)
    assert program.count("def has_close_elements") == 2 and program.endswith("check(has_close_elements)\n")


def test_mbpp_assembly_runs_setup_code_after_the_solution(verifier, mbpp):
    query = next(q for q in mbpp if q.id == "mbpp/367")
    program = assemble(query.metadata["canonical_solution"], query)
    assert program.index("class Node") < program.index("root = Node(1)") < program.index("assert ")
    assert verifier([f"```python\n{query.metadata['canonical_solution']}\n```"], [query]) == [1.0]


def test_generic_check_tests_get_the_entry_point_call(verifier):
    query = add_query(tests="def check(candidate):\n    assert candidate(2, 2) == 4\n", entry_point="add")
    assert assemble("def add(a, b):\n    return a + b", query).endswith("check(add)\n")
    assert verifier(
        ["def add(a, b):\n    return a + b", "def add(a, b):\n    return a - b"], [query, query]
    ) == [1.0, 0.0]


def test_column_mapped_humaneval_file_works_like_the_bundled_source(verifier, humaneval, tmp_path):
    rows = [
        {
            "name": q.metadata["task_id"],
            "prompt": q.metadata["code_prompt"],
            "test": q.tests,
            "entry_point": q.entry_point,
            "solution": q.metadata["canonical_solution"],
        }
        for q in humaneval[:6]
    ]
    data = tmp_path / "humaneval-like.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    source = file_source(str(data), {"question": "prompt", "tests": "test", "id": "name"}, domain="code")
    queries = list(source.queries(PromptConfig()))
    assert [q.entry_point for q in queries] == [r["entry_point"] for r in rows]
    bodies = [r["solution"] for r in rows]  # function bodies: they need the stub from the question
    assert verifier(bodies, queries) == [1.0] * 6
    assert verifier(bodies[1:] + bodies[:1], queries) == [0.0] * 6


def test_reward_hacks_score_zero(verifier):
    query = add_query()
    exits = [
        "import sys\nsys.exit(0)",
        "import os\nos._exit(0)",
        "print('All tests passed')\nimport os\nos._exit(0)",
    ]
    assert verifier(exits, [query] * 3) == [0.0] * 3
    loop = CodeVerifier(SandboxConfig(timeout_s=1.5, workers=1))
    verdicts = loop.verdicts(exits + ["def add(a, b):\n    while True:\n        pass"], [query] * 4)
    loop.close()
    assert [v.status for v in verdicts] == ["failed", "failed", "failed", "timeout"]


def test_main_blocks_do_not_run(verifier):
    completion = (
        "def add(a, b):\n    return a + b\n\nif __name__ == '__main__':\n    print(add(int(input()), 1))\n"
    )
    assert verifier([completion], [add_query()]) == [1.0]


def test_queries_without_tests_are_unverifiable(verifier):
    queries = [add_query(), add_query(tests=None), add_query(tests="  ")]
    assert verifier(["def add(a, b):\n    return a + b"] * 3, queries) == [1.0, None, None]
    assert verifier.verdicts(["x"], [add_query(tests=None)]) == [None]


def test_length_mismatch_raises(verifier):
    with pytest.raises(ValueError):
        verifier(["a", "b"], [add_query()])


def test_picklable_and_registered(verifier):
    verifier([""], [add_query()])  # the sandbox and its threads exist now
    clone = pickle.loads(pickle.dumps(verifier))
    assert clone.config == verifier.config and clone._sandbox is None
    assert clone(["def add(a, b):\n    return a + b"], [add_query()]) == [1.0]
    clone.close()
    assert isinstance(get_verifier("code"), CodeVerifier)
    assert isinstance(verifier_for_domain("code", workers=1), CodeVerifier)
    assert CodeVerifier(workers=3, timeout_s=1.5).config.workers == 3


def test_verdicts_explain_failures(verifier):
    verdicts = verifier.verdicts(
        ["def add(a, b):\n    return a * b", "def add(a, b) return"], [add_query()] * 2
    )
    assert Counter(v.status for v in verdicts) == {"failed": 2}
    assert verdicts[0].reason.startswith("AssertionError") and verdicts[1].reason.startswith("SyntaxError")
