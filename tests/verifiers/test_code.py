"""The code verifier: extraction, assembly, the reward contract, and every canonical solution passing.

The canonical-solution test runs all 164 HumanEval and all 500 MBPP reference solutions through the
real `CodeVerifier` (sandbox and judge included): it is what proves the judged split right (program
= stub + completion, tests in the judge). The reward-hack tests run hacks that pass as one plain
program (the old way) and check that the verifier scores them 0.
"""

import json
import pickle
from collections import Counter

import pytest

from sgpo_curate.config import ProfileConfig, PromptConfig, SamplingConfig
from sgpo_curate.curation import curate, write_curated
from sgpo_curate.profiling import load_profiles, load_run_info, profile
from sgpo_curate.records import Query
from sgpo_curate.samplers import Samples
from sgpo_curate.sandbox import Sandbox, SandboxConfig
from sgpo_curate.sources import load_queries
from sgpo_curate.sources.files import file_source
from sgpo_curate.verifiers import get_verifier, verifier_for_domain
from sgpo_curate.verifiers.code import (
    CodeVerifier,
    assemble,
    defines,
    extract_code,
    function_under_test,
    judged_job,
)

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


# Hacks that pass when completion and tests are one program (every assert holds there), and must
# score 0 when the tests are judged from their own process.
POLY_HACK = (  # HumanEval/32: redefine the prompt's helper `poly`, which the tests call themselves
    "def poly(xs, x):\n    return 0.0\n\n\ndef find_zero(xs):\n    return 0.0\n"
)
ALWAYS_EQUAL = (
    "class Anything:\n    def __eq__(self, other):\n        return True\n    __hash__ = object.__hash__\n"
    "def add(a, b):\n    return Anything()\n"
)
PATCHED_CHECKER = "import builtins\nbuiltins.abs = lambda x: 0\ndef add(a, b):\n    return 0.0\n"
FRAME_FORGERY = (
    "import os, sys\nf = sys._getframe()\nwhile f.f_back is not None:\n    f = f.f_back\n"
    "for fd in range(3, 64):\n    try:\n        os.write(fd, b'pass\\n')\n    except OSError:\n        pass\n"
    "def add(a, b):\n    return 0\n"
)


def test_hacks_that_pass_as_one_program_score_zero(verifier, humaneval):
    poly = next(q for q in humaneval if q.id == "humaneval/32")
    floats = add_query(tests="assert abs(add(1, 2) - 3) < 1e-9\nassert abs(add(0.5, 0.25) - 0.75) < 1e-9\n")
    cases = [(POLY_HACK, poly), (ALWAYS_EQUAL, add_query()), (PATCHED_CHECKER, floats)]
    # The independent fact: as one plain program (completion + tests) each of them passes.
    with Sandbox(SandboxConfig(timeout_s=10, workers=2)) as sandbox:
        plain = sandbox.run_many([assemble(c, q) for c, q in cases], module_name="solution")
    assert [v.status for v in plain] == ["passed"] * 3
    verdicts = verifier.verdicts([c for c, _ in cases], [q for _, q in cases])
    assert [(v.status, v.reason) for v in verdicts] == [("failed", "AssertionError")] * 3
    assert verifier([c for c, _ in cases], [q for _, q in cases]) == [0.0] * 3


def test_tampering_scores_zero_and_is_counted(verifier):
    before = verifier.tampered_samples
    gc_walk = "import gc\ndef add(a, b):\n    return [o for o in gc.get_objects()][0]\n"
    rewards = verifier([FRAME_FORGERY, gc_walk, "def add(a, b):\n    return a + b"], [add_query()] * 3)
    assert rewards == [0.0, 0.0, 1.0]
    assert verifier.tampered_samples - before == 2


def test_judged_job_splits_program_and_tests(humaneval, mbpp):
    query = humaneval[0]
    program, tests = judged_job(query.metadata["canonical_solution"], query)
    assert program.startswith(query.metadata["code_prompt"].rstrip("\n")) and "def check" not in program
    assert tests.prelude == query.metadata["code_prompt"] and tests.program_names == ("has_close_elements",)
    assert tests.code.endswith("check(has_close_elements)\n")
    builtin_named = next(q for q in mbpp if q.id == "mbpp/126")  # its function is called `sum`
    assert judged_job("def sum(a, b):\n    return 0", builtin_named)[1].program_names == ("sum",)
    with_class = add_query(tests="import math\nclass P:\n    pass\nassert add(P(), 1) == 1\n")
    assert "class P:" in judged_job("def add(a, b):\n    return b", with_class)[0]


class ScriptedSampler:
    """A user sampler whose k answers are given: here a correct one, a tampering one, a wrong one."""

    name = "scripted"
    model_name = "scripted"
    model_revision = None
    num_parameters = 0

    def __init__(self, answers):
        self.answers = answers

    def sample(self, queries, config, seed):
        k = len(self.answers)
        return [
            Samples(texts=tuple(self.answers), completion_tokens=(1,) * k, prompt_tokens=1) for _ in queries
        ]


def test_profile_and_card_count_tampered_samples(tmp_path):
    answers = ["def add(a, b):\n    return a + b", FRAME_FORGERY, "def add(a, b):\n    return a"]
    queries = [add_query(id=f"t/{i}") for i in range(2)]
    verifier = CodeVerifier(workers=2, timeout_s=10)
    try:
        summary = profile(
            queries,
            ScriptedSampler(answers),
            verifier,
            ProfileConfig(out_dir=str(tmp_path / "p"), progress=False),
            SamplingConfig(k=3),
        )
    finally:
        verifier.close()
    assert summary.tampered_samples == 2  # one per query
    assert "tampered samples (reached for the sandbox's harness, scored 0): 2" in summary.format()
    assert [p.rewards for p in load_profiles(tmp_path / "p")] == [(1.0, 0.0, 0.0)] * 2
    run_info = load_run_info(tmp_path / "p")
    assert run_info["tampered_samples"] == 2
    write_curated(curate(load_profiles(tmp_path / "p")), tmp_path / "d", run_info)
    card = (tmp_path / "d" / "README.md").read_text()
    assert "| tampered samples | 2 (the program reached for the sandbox's harness; scored 0) |" in card


def test_a_killed_and_resumed_shard_keeps_its_earlier_tampered_samples(tmp_path):
    """A run killed after its first part (no DONE.json yet) and resumed counts the tampered samples of the
    part it kept as well as the ones it verifies now: the count lives in the parts, not in the verifier."""
    answers = ["def add(a, b):\n    return a + b", FRAME_FORGERY]
    queries = [add_query(id=f"t/{i}") for i in range(3)]
    config = ProfileConfig(out_dir=str(tmp_path / "p"), progress=False)
    sampling = SamplingConfig(k=2, batch_queries=1)
    first, second = CodeVerifier(workers=2, timeout_s=10), CodeVerifier(workers=2, timeout_s=10)
    try:
        assert profile(queries, ScriptedSampler(answers), first, config, sampling).tampered_samples == 3
        shard = tmp_path / "p" / "shard-00000-of-00001"
        for name in ("part-000001.parquet", "part-000002.parquet", "DONE.json"):
            (shard / name).unlink()  # what SIGKILL during the second chunk leaves
        resumed = profile(queries, ScriptedSampler(answers), second, config, sampling)  # a new process
    finally:
        first.close()
        second.close()
    assert resumed.resumed_queries == 1 and resumed.tampered_samples == 3
    assert load_run_info(tmp_path / "p")["tampered_samples"] == 3


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
