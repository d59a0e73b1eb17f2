"""HumanEval and MBPP read offline from their PyPI packages; malformed rows are rejected with a reason."""

from dataclasses import replace

import pytest

from sgpo_curate.config import PromptConfig
from sgpo_curate.registry import SOURCES
from sgpo_curate.sources import RejectedRow, count_reasons, get_source, load_queries, split_records
from sgpo_curate.sources.code import adapt_humaneval, adapt_mbpp


def test_humaneval_reads_all_164_problems():
    queries, rejects = load_queries("humaneval")
    assert len(queries) == 164 and not rejects
    assert len({q.id for q in queries}) == 164
    first = queries[0]
    assert first.id == "humaneval/0" and first.domain == "code" and first.entry_point == "has_close_elements"
    assert "def check(candidate)" in first.tests
    user = first.prompt[-1][1]
    assert "def has_close_elements(numbers: List[float], threshold: float) -> bool:" in user
    assert user.endswith("in a single ```python code block.")  # PromptConfig's code instruction
    assert first.metadata["canonical_solution"].startswith("    for idx, elem")
    assert first.metadata["code_prompt"].startswith("from typing import List")


def test_mbpp_reads_all_500_problems_with_one_assert_in_the_prompt():
    queries, rejects = load_queries("mbpp")
    assert len(queries) == 500 and not rejects
    assert len({q.id for q in queries}) == 500
    first = queries[0]
    assert first.id == "mbpp/11" and first.entry_point is None
    assert first.tests.count("assert ") == 3
    assert 'assert remove_Occ("hello","l") == "heo"' in first.prompt[-1][1]  # the name the tests call
    assert all("\r" not in q.tests and "\r" not in q.metadata["canonical_solution"] for q in queries)
    with_setup = next(q for q in queries if q.id == "mbpp/367")
    assert with_setup.tests.startswith("root = Node(1)")
    assert "setup code" in with_setup.prompt[-1][1]


def test_sources_are_registered_with_licenses():
    assert {"humaneval", "mbpp"} <= set(SOURCES.names())
    assert get_source("humaneval").license == "MIT"
    assert get_source("mbpp").license == "CC-BY-4.0"
    assert get_source("mbpp").domain == get_source("humaneval").domain == "code"


def test_prompt_config_builds_the_messages():
    prompt = PromptConfig(code_instruction="Solve:\n{problem}", system_prompt="You write Python.")
    query = load_queries("mbpp", prompt=prompt, limit=1)[0][0]
    assert query.prompt[0] == ("system", "You write Python.")
    assert query.prompt[1][1].startswith("Solve:\nWrite a python function")


def test_malformed_rows_are_rejected_with_reasons():
    good = {
        "task_id": 1,
        "text": "Add.",
        "code": "def add(a, b):\r\n    return a + b",
        "test_list": ["assert add(1, 2) == 3"],
        "test_setup_code": "",
    }
    rows = [
        ("1", good),
        ("2", {**good, "test_list": []}),
        ("3", {**good, "text": "  "}),
        ("4", {"request": "no doc"}),
        ("5", {**good, "test_list": ["assert f()", 3]}),
    ]
    source = replace(get_source("mbpp"), rows=lambda: iter(rows))
    queries, rejects = split_records(source.records(PromptConfig()))
    assert [q.id for q in queries] == ["mbpp/1"]
    assert queries[0].metadata["canonical_solution"] == "def add(a, b):\n    return a + b"
    assert count_reasons(rejects) == {
        "field 'test_list' is missing or empty": 2,
        "field 'text' is empty": 1,
        "field 'test_list' holds a non-text or empty test": 1,
    }


def test_humaneval_rows_need_tests_and_an_entry_point():
    row = {
        "task_id": "HumanEval/0",
        "prompt": "def f(x):\n    '''doc'''\n",
        "test": "def check(c):\n    pass\n",
        "entry_point": "f",
        "canonical_solution": "    return x\n",
    }
    assert adapt_humaneval("0", row, PromptConfig()).entry_point == "f"
    for broken, reason in [
        ({"test": ""}, "field 'test' is empty"),
        ({"entry_point": None}, "field 'entry_point' is missing"),
        ({"entry_point": "g"}, "does not define the entry point"),
        ({"test": "assert True"}, r"no check\(candidate\)"),
    ]:
        with pytest.raises(RejectedRow, match=reason):
            adapt_humaneval("0", {**row, **broken}, PromptConfig())
    with pytest.raises(RejectedRow):
        adapt_mbpp("0", {"text": "x", "test_list": "assert True"}, PromptConfig())
