import json

import pytest

from sgpo_curate.config import PromptConfig
from sgpo_curate.sources import RejectedRow, count_reasons, load_queries, split_records
from sgpo_curate.sources.files import file_source, parse_columns
from sgpo_curate.sources.math import gsm8k_answer, last_boxed, number_text


@pytest.mark.parametrize(
    ("name", "rows", "first_answer"),
    [
        ("gsm8k", 1319, "18"),
        ("math500", 500, r"\left( 3, \frac{\pi}{2} \right)"),
        ("mawps-singleop", 562, "14"),
        ("svamp", 1000, "145"),
        ("aime24", 30, "204"),
        ("aime25", 15, "70"),
    ],
)
def test_bundled_sources_read_offline(name, rows, first_answer):
    queries, rejects = load_queries(name)
    assert len(queries) == rows and not rejects
    assert queries[0].answer == first_answer
    assert len({q.id for q in queries}) == rows  # stable, unique ids
    assert "\\boxed{}" in queries[0].prompt[-1][1]
    assert queries[0].prompt[-1][1].endswith("within \\boxed{}.")  # braces as written, not "{{}}"


def test_math_source_takes_the_last_boxed_answer():
    queries, rejects = load_queries("math", limit=2)
    assert queries[0].answer == "2"
    assert queries[0].metadata["level"] == "Level 3"


def test_answer_extraction():
    assert gsm8k_answer("so 1,000 + 2\n#### 1,002") == "1002"
    with pytest.raises(RejectedRow):
        gsm8k_answer("no marker")
    assert last_boxed(r"a \boxed{1} then \boxed{\frac{1}{2}} end") == r"\frac{1}{2}"
    assert last_boxed(r"\boxed{unclosed") is None
    assert number_text(43.0) == "43" and number_text(2.5) == "2.5"


def test_prompt_template_is_configurable():
    prompt = PromptConfig(math_instruction="Q: {problem}\nA:", system_prompt="Be brief.")
    query = load_queries("gsm8k", prompt=prompt, limit=1)[0][0]
    assert query.messages[0] == {"role": "system", "content": "Be brief."}
    assert query.messages[1]["content"].startswith("Q: Janet")


def test_malformed_rows_are_rejected_with_reasons(tmp_path):
    rows = [
        {"problem": "1+1?", "solution": "#### 2"},
        {"problem": "", "solution": "#### 3"},
        {"solution": "#### 4"},
        {"problem": "x?", "solution": "no marker"},
        {"problem": ["list"], "solution": "#### 5"},
    ]
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    source = file_source(str(path), parse_columns("question=problem,answer=solution"), answer_format="gsm8k")
    queries, rejects = split_records(source.records(PromptConfig()))
    assert [q.answer for q in queries] == ["2"]
    assert count_reasons(rejects) == {
        "field 'problem' is empty": 1,
        "field 'problem' is missing": 1,
        "field 'solution' has no '#### <number>' line": 1,  # the user's column, not ours ("answer")
        "field 'problem' is list, expected text": 1,
    }


def test_unknown_columns_name_what_the_data_has(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"q": "1+1?", "a": "2"}))
    with pytest.raises(ValueError, match=r"columns \['a', 'q'\]"):
        list(file_source(str(path)).queries(PromptConfig()))
    with pytest.raises(ValueError, match="valid: question"):
        parse_columns("prompt_text=q")


def test_reject_reasons_name_the_mapped_columns(tmp_path):
    """Every reason names the user's own column, the mapped answer column included."""
    rows = [{"word_problem": "", "gold": "3"}, {"word_problem": "x?"}, {"word_problem": "y?", "gold": True}]
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [{"word_problem": "1+1?", "gold": 2}, *rows]))
    source = file_source(str(path), parse_columns("question=word_problem,answer=gold"))
    queries, rejects = split_records(source.records(PromptConfig()))
    assert [q.answer for q in queries] == ["2"]
    assert [r.reason for r in rejects] == [
        "field 'word_problem' is empty",
        "field 'gold' is missing",
        "field 'gold' is a boolean (True), expected a number or text",
    ]
    boxed = file_source(str(path), parse_columns("question=word_problem,answer=gold"), answer_format="boxed")
    _, rejects = split_records(boxed.records(PromptConfig()))
    assert rejects[0].reason.startswith("field 'gold' has no \\boxed{}")


def test_one_malformed_jsonl_line_is_a_counted_reject_with_its_line_number(tmp_path):
    lines = [json.dumps({"q": f"{i} + 1?", "a": i + 1}) for i in range(30)]
    lines[13] = '{"q": "14 + 1?", "a": '  # line 14, cut off
    lines.insert(20, "")  # blank lines are not rows
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n")
    queries, rejects = split_records(
        file_source(str(path), parse_columns("question=q,answer=a")).records(PromptConfig())
    )
    assert len(queries) == 29
    assert [(r.reason, r.key, r.detail["line"]) for r in rejects] == [("malformed JSON line", "line 14", 14)]
    assert "column" in rejects[0].detail["error"] and rejects[0].detail["text"].startswith('{"q": "14')
    # Ids count rows, the bad one included: fixing the line later does not renumber the others.
    assert queries[13].id == "data.jsonl/14" and queries[-1].id == "data.jsonl/29"


def test_a_file_of_mostly_bad_lines_stops_with_a_clear_error(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("q,a\n" + "".join(f"{i}+1?,{i + 1}\n" for i in range(30)))  # a CSV named .jsonl
    with pytest.raises(ValueError, match=r"20 of 20 lines read are not JSON objects \(first: line 1"):
        list(file_source(str(path)).queries(PromptConfig()))
    short = tmp_path / "short.jsonl"
    short.write_text('{"question": "1+1?", "answer": 2}\n[1, 2]\nnot json\n')
    with pytest.raises(ValueError, match="2 of 3 lines"):
        list(file_source(str(short)).queries(PromptConfig()))
