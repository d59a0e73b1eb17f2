"""The `arithmetic` source: deterministic, graded, and its gold answers are right."""

from collections import Counter

from sgpo_curate.config import PromptConfig
from sgpo_curate.sources import get_source, load_queries
from sgpo_curate.sources.synthetic import LEVELS, NUM_ROWS, make_problem


def _evaluate(equation: str) -> int:
    tokens = equation.split()
    total = int(tokens[0])
    for sign, number in zip(tokens[1::2], tokens[2::2], strict=True):
        total += int(number) if sign == "+" else -int(number)
    return total


def test_rows_are_deterministic_graded_and_answered_correctly():
    queries, rejects = load_queries("arithmetic")
    assert len(queries) == NUM_ROWS and not rejects
    assert len({q.id for q in queries}) == NUM_ROWS
    levels = [q.metadata["level"] for q in queries[:8]]
    assert levels == [1, 2, 3, 4, 1, 2, 3, 4]  # any prefix holds every level
    assert Counter(q.metadata["level"] for q in queries) == {level: NUM_ROWS // 4 for level in range(1, 5)}
    for q in queries:
        steps, largest = LEVELS[q.metadata["level"] - 1]
        numbers = [int(t) for t in q.metadata["equation"].split()[::2]]
        assert q.metadata["steps"] == steps == len(numbers) - 1 and max(numbers) <= largest
        assert int(q.answer) == _evaluate(q.metadata["equation"]) > 0
        assert q.metadata["problem"].count(".") == steps + 1  # start + one sentence per step
    assert make_problem(123) == make_problem(123)
    assert queries[0].metadata["problem"] == (
        "Zoe has 3 books. She gives 1 book to a friend. How many books does Zoe have now?"
    )  # the same rows on every machine and in every release: profiles resume and compare


def test_source_is_registered_with_its_prompt_applied():
    source = get_source("arithmetic")
    assert source.domain == "math" and source.license == "apache-2.0"
    prompt = PromptConfig(math_examples=(("Ben has 2 pens. He finds 3 more pens. How many?", "\\boxed{5}"),))
    query = load_queries("arithmetic", prompt=prompt, limit=1)[0][0]
    assert [role for role, _ in query.prompt] == ["user", "assistant", "user"]
    assert query.prompt[1][1] == "\\boxed{5}"
    assert query.prompt[2][1].startswith("Zoe has 3 books.")
