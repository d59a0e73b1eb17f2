"""Any local file or Hub dataset as a source, through a column mapping.

    --dataset data.jsonl --columns question=problem,answer=solution --answer-format boxed
    --dataset hf:openai/gsm8k:main@test --columns question=question,answer=answer --answer-format gsm8k

Local `.jsonl`/`.json`/`.parquet`/`.csv` files (or a folder of them) and Hub datasets load through
`datasets.load_dataset`, streamed so memory stays flat. Mapped names: `question` (required), `answer`
(math), `tests` and `entry_point` (code), `id` (optional; default: row index).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sgpo_curate.config import PromptConfig
from sgpo_curate.records import Query, stable_id
from sgpo_curate.sources import RejectedRow, Source, require_text
from sgpo_curate.sources.math import gsm8k_answer, last_boxed, number_text

MAPPABLE = ("question", "answer", "tests", "entry_point", "id")
ANSWER_FORMATS = ("raw", "gsm8k", "boxed")
FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def parse_columns(text: str | None) -> dict[str, str]:
    """`"question=problem,answer=solution"` -> `{"question": "problem", "answer": "solution"}`."""
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        ours, sep, theirs = part.partition("=")
        if not sep or not theirs:
            raise ValueError(f"bad column mapping {part!r}: write OURS=THEIRS, e.g. question=problem")
        if ours not in MAPPABLE:
            raise ValueError(f"unknown column {ours!r} in the mapping; valid: {', '.join(MAPPABLE)}")
        mapping[ours] = theirs
    return mapping


def is_file_spec(spec: str) -> bool:
    return spec.startswith("hf:") or Path(spec).suffix in FILE_BUILDERS or Path(spec).is_dir()


def _load_rows(spec: str):
    from datasets import load_dataset

    if spec.startswith("hf:"):
        name, _, split = spec[3:].partition("@")
        path, _, config = name.partition(":")
        return load_dataset(path, config or None, split=split or "train", streaming=True)
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"dataset file {spec!r} does not exist")
    files = sorted(p for p in path.iterdir() if p.suffix in FILE_BUILDERS) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"{spec!r} holds no {'/'.join(FILE_BUILDERS)} files")
    builder = FILE_BUILDERS[files[0].suffix]
    return load_dataset(builder, data_files=[str(f) for f in files], split="train", streaming=True)


def _extract_answer(value: Any, answer_format: str) -> str:
    if answer_format == "gsm8k":
        return gsm8k_answer(require_text({"answer": value}, "answer"))
    if answer_format == "boxed":
        boxed = last_boxed(require_text({"answer": value}, "answer"))
        if boxed is None:
            raise RejectedRow("answer has no \\boxed{} (use --answer-format raw for plain answers)")
        return boxed
    return number_text(value)


def file_source(
    spec: str,
    columns: Mapping[str, str] | None = None,
    domain: str = "math",
    answer_format: str = "raw",
) -> Source:
    """A `Source` over a local file/folder or `hf:ORG/NAME[:config][@split]`.

    Args:
        spec (`str`): file, folder, or `hf:` dataset.
        columns (`Mapping[str, str]`): our name -> the file's column; unmapped names default to
            themselves (`question` -> `question`).
        domain (`str`): `"math"` or `"code"`.
        answer_format (`str`): how to read the gold answer: `raw`, `gsm8k` (`#### N`), `boxed`.

    Raises:
        ValueError: an unknown answer format, or a mapped column the data does not have (the
            message lists the columns it has).
    """
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"unknown answer format {answer_format!r}; valid: {', '.join(ANSWER_FORMATS)}")
    mapping = {name: name for name in MAPPABLE} | dict(columns or {})
    required = ["question"] + (["answer"] if domain == "math" else ["tests"])
    name = spec if spec.startswith("hf:") else Path(spec).name

    def rows() -> Iterator[tuple[str, Mapping[str, Any]]]:
        for position, row in enumerate(_load_rows(spec)):
            if position == 0:
                _check_columns(row, mapping, required)
            yield str(row.get(mapping["id"], position)), row

    def adapt(key: str, row: Mapping[str, Any], prompt: PromptConfig) -> Query:
        problem = require_text(row, mapping["question"])
        return Query(
            id=stable_id(name, key),
            source=name,
            domain=domain,
            prompt=prompt.messages(domain, problem),
            answer=_extract_answer(row.get(mapping["answer"]), answer_format) if domain == "math" else None,
            tests=require_text(row, mapping["tests"]) if domain == "code" else None,
            entry_point=row.get(mapping["entry_point"]) if domain == "code" else None,
            metadata={"problem": problem},
        )

    return Source(name=name, domain=domain, rows=rows, adapt=adapt, description=f"file or Hub dataset {spec}")


def _check_columns(row: Mapping[str, Any], mapping: Mapping[str, str], required: list[str]) -> None:
    missing = [f"{ours} -> {mapping[ours]!r}" for ours in required if mapping[ours] not in row]
    if missing:
        raise ValueError(
            f"column(s) not found: {', '.join(missing)}; the data has columns {sorted(row)}; "
            f"map them with --columns question=COL,answer=COL"
        )
