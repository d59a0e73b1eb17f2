import pickle

import pytest

from sgpo_curate.records import Query
from sgpo_curate.verifiers import get_verifier
from sgpo_curate.verifiers.math import MathVerifier, check_answers


def query(qid, answer):
    return Query(id=qid, source="t", domain="math", prompt=(("user", "q"),), answer=answer)


def test_check_answers_with_real_math_verify():
    assert check_answers(
        "18", [r"so $\boxed{18}$", r"$\boxed{17}$", "no answer here", r"$\boxed{18.0}$"], 5
    ) == [1.0, 0.0, 0.0, 1.0]
    assert check_answers(r"\frac{1}{2}", [r"$\boxed{0.5}$", r"$\boxed{\frac{2}{4}}$"], 5) == [1.0, 1.0]


def test_unparseable_gold_answer_is_unverifiable_not_wrong():
    assert check_answers("", ["$1$"], 5) == [None]
    verifier = MathVerifier(workers=1)
    try:
        assert verifier(["$1$", r"$\boxed{3}$"], [query("a", None), query("b", "3")]) == [None, 1.0]
    finally:
        verifier.close()


def test_verifier_batch_keeps_order_and_is_picklable():
    verifier = pickle.loads(pickle.dumps(get_verifier("math", workers=2)))
    queries = [query("a", "1"), query("a", "1"), query("b", "2"), query("c", "3")]
    try:
        assert verifier([r"$\boxed{1}$", "$5$", r"$\boxed{2}$", r"$\boxed{4}$"], queries) == [
            1.0,
            0.0,
            1.0,
            0.0,
        ]
        with pytest.raises(ValueError, match="completions"):
            verifier(["x"], queries)
    finally:
        verifier.close()
