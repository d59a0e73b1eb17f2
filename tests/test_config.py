"""Config dataclasses: the prompt template keeps literal braces and says clearly what it misses."""

import pytest

from sgpo_curate.config import DEFAULT_MATH_INSTRUCTION, PromptConfig, fill_template


def test_instruction_keeps_literal_braces():
    prompt = PromptConfig(math_instruction='{problem}\nEnd with \\boxed{N}, e.g. {"answer": 3}.')
    ((role, text),) = prompt.messages("math", "1+1?")
    assert role == "user" and text == '1+1?\nEnd with \\boxed{N}, e.g. {"answer": 3}.'
    # A problem that itself holds "{problem}" or braces is inserted as it is, once.
    assert fill_template("Q: {problem}", "{problem} {x}") == "Q: {problem} {x}"
    assert DEFAULT_MATH_INSTRUCTION.endswith("\\boxed{}.")


def test_instruction_without_problem_is_a_clear_error():
    with pytest.raises(
        ValueError, match=r"the math instruction 'Answer in \\\\boxed\{N\}' has no \{problem\}"
    ):
        PromptConfig(math_instruction="Answer in \\boxed{N}")


def test_worked_examples_come_before_math_problems_only():
    prompt = PromptConfig(system_prompt="Be brief.", math_examples=(("1+1?", "\\boxed{2}"),))
    assert prompt.messages("math", "2+2?") == (
        ("system", "Be brief."),
        ("user", fill_template(prompt.math_instruction, "1+1?")),
        ("assistant", "\\boxed{2}"),
        ("user", fill_template(prompt.math_instruction, "2+2?")),
    )
    assert [role for role, _ in prompt.messages("code", "def f(): ...")] == ["system", "user"]
    with pytest.raises(ValueError, match="pairs"):
        PromptConfig(math_examples=(("only a problem",),))
