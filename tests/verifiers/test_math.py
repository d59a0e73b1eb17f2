import pickle

import pytest

from sgpo_curate.records import Query
from sgpo_curate.sources import get_source, load_queries
from sgpo_curate.verifiers import get_verifier
from sgpo_curate.verifiers.math import MathVerifier, check_answers, solution_text


def query(qid, answer):
    return Query(id=qid, source="t", domain="math", prompt=(("user", "q"),), answer=answer)


def test_check_answers_with_real_math_verify():
    assert check_answers(
        "18", [r"so $\boxed{18}$", r"$\boxed{17}$", "no answer here", r"$\boxed{18.0}$"], 5
    ) == [1.0, 0.0, 0.0, 1.0]
    assert check_answers(r"\frac{1}{2}", [r"$\boxed{0.5}$", r"$\boxed{\frac{2}{4}}$"], 5) == [1.0, 1.0]


def test_strict_needs_a_box_or_an_anchor_and_lenient_takes_any_last_number():
    # DESIGN.md "What strict means, measured" (TRL 1.16 accuracy_reward, gold 14).
    texts = [
        r"\boxed{14}",
        r"Answer: $\boxed{14}$",
        "The final answer is $14$.",
        "The final answer is 14.",
        "The answer is 14",
        "**Answer:** 14",
        "So 7+7 = 14 bottle caps.",
        "14",
    ]
    assert check_answers("14", texts, 5) == [1.0] * 3 + [0.0] * 5
    assert check_answers("14", texts, 5, extraction="lenient") == [1.0] * 8


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


def test_extraction_mode_is_a_setting_that_survives_pickling():
    assert MathVerifier().settings == {"extraction": "strict"}
    lenient = pickle.loads(pickle.dumps(get_verifier("math", workers=1, extraction="lenient")))
    try:
        assert lenient.settings == {"extraction": "lenient"}
        assert lenient(["so it is 3"], [query("a", "3")]) == [1.0]
    finally:
        lenient.close()
    with pytest.raises(ValueError, match="valid: strict, lenient"):
        MathVerifier(extraction="loose")


def _variants(answer: str, reasoning: str) -> list[str]:
    """Completions a model writes: boxed, anchored, unanchored LaTeX, a box after a wrong anchored answer, a bare
    number, cut off, wrong, reasoning alone."""
    boxed = f"{reasoning}\nSo the answer is $\\boxed{{{answer}}}$."
    return [
        boxed,
        f"{reasoning}\nThe final answer is ${answer}$.",
        f"{reasoning}\nWe get ${answer}$ in the end.",
        f"{reasoning}\nThe final answer is ${answer}1$. No, it is $\\boxed{{{answer}}}$.",  # the box wins
        f"{reasoning}\nThe answer is {answer}",
        boxed[: boxed.index("\\boxed") + 9],  # truncated by the token limit inside the box
        f"{reasoning}\nSo the answer is $\\boxed{{{answer}1}}$.",
        reasoning,
    ]


def test_default_verifier_gives_trls_accuracy_reward_on_bundled_rows():
    """Parity with trl 1.16 `accuracy_reward` (on the published `solution` text) wherever the gold parses."""
    from trl.rewards import accuracy_reward

    cases = []
    for name, field in (("gsm8k", "answer"), ("math", "solution")):
        queries = load_queries(name, limit=12)[0]
        rows = [row for _, (_, row) in zip(range(12), get_source(name).rows(), strict=False)]
        for q, row in zip(queries, rows, strict=True):
            reasoning = row[field].split("####")[0]  # MATH's own solution keeps its \boxed{}
            cases += [(q, text) for text in _variants(q.answer, reasoning)]
    queries = [q for q, _ in cases]
    texts = [t for _, t in cases]
    verifier = MathVerifier(workers=1)
    try:
        ours = verifier(texts, queries)
    finally:
        verifier.close()
    trl = accuracy_reward(
        [[{"role": "assistant", "content": t}] for t in texts], [solution_text(q.answer) for q in queries]
    )
    parsed = [i for i, r in enumerate(trl) if r is not None]
    assert len(parsed) == len(cases)  # every bundled gold answer parses
    assert [ours[i] for i in parsed] == [trl[i] for i in parsed]
    assert 0 < sum(ours) < len(ours)  # the set tells right from wrong, so equality means something
    lenient = [check_answers(q.answer, [t], 5, extraction="lenient")[0] for q, t in cases[:12]]
    assert lenient != ours[:12]  # bare numbers score under lenient, not under strict
