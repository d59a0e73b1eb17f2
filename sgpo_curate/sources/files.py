"""Any local file or Hub dataset as a source, through a column mapping.

    --dataset data.jsonl --columns question=problem,answer=solution --answer-format boxed
    --dataset hf:openai/gsm8k:main@test --columns question=question,answer=answer --answer-format gsm8k

Local `.json`/`.parquet`/`.csv` files (or a folder of them) and Hub datasets load through
`datasets.load_dataset`, streamed so memory stays flat. `.jsonl` files are read line by line here
instead: one malformed line is a counted reject (reason `malformed JSON line`, key `line N`), not
the end of the run, while a file whose lines are mostly not JSON objects stops with a clear error.
Mapped names: `question` (required), `answer` (math), `tests` and `entry_point` (code), `id`
(optional; default: row index). Reject reasons name the file's own columns.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sgpo_curate.config import PromptConfig
from sgpo_curate.errors import InputError
from sgpo_curate.records import Query, stable_id
from sgpo_curate.sources import RejectedRow, Source, Unreadable, require_text
from sgpo_curate.sources.math import gsm8k_answer, last_boxed, number_text

logger = logging.getLogger(__name__)

MAPPABLE = ("question", "answer", "tests", "entry_point", "id")
ANSWER_FORMATS = ("raw", "gsm8k", "boxed")
FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
MALFORMED_LINE = "malformed JSON line"
# A file is judged "mostly bad" once this many lines were read (or at its end): a wrong file type, not a typo.
JUDGE_AFTER_LINES = 20


def parse_columns(text: str | None) -> dict[str, str]:
    """`"question=problem,answer=solution"` -> `{"question": "problem", "answer": "solution"}`."""
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        ours, sep, theirs = part.partition("=")
        if not sep or not theirs:
            raise InputError(f"bad column mapping {part!r}: write OURS=THEIRS, e.g. question=problem")
        if ours not in MAPPABLE:
            raise InputError(f"unknown column {ours!r} in the mapping; valid: {', '.join(MAPPABLE)}")
        mapping[ours] = theirs
    return mapping


def is_file_spec(spec: str) -> bool:
    return spec.startswith("hf:") or Path(spec).suffix in FILE_BUILDERS or Path(spec).is_dir()


def _files(spec: str) -> list[Path]:
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"dataset file {spec!r} does not exist")
    files = sorted(p for p in path.iterdir() if p.suffix in FILE_BUILDERS) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"{spec!r} holds no {'/'.join(FILE_BUILDERS)} files")
    return files


def _load_rows(spec: str) -> Iterable[Mapping[str, Any] | Unreadable]:
    from datasets import load_dataset

    if spec.startswith("hf:"):
        name, _, split = spec[3:].partition("@")
        path, _, config = name.partition(":")
        return load_dataset(path, config or None, split=split or "train", streaming=True)
    files = _files(spec)
    if all(f.suffix == ".jsonl" for f in files):
        return (row for f in files for row in read_jsonl_lines(f, label=f.name if len(files) > 1 else ""))
    builder = FILE_BUILDERS[files[0].suffix]
    return load_dataset(builder, data_files=[str(f) for f in files], split="train", streaming=True)


def read_jsonl_lines(path: Path, label: str = "") -> Iterator[Mapping[str, Any] | Unreadable]:
    """The JSON objects of a JSON-lines file; a line that is not one comes as `Unreadable` (key `line N`).

    Blank lines are skipped. Raises `ValueError` when bad lines outnumber good ones (checked after
    `JUDGE_AFTER_LINES` lines and at the end): that is a file of another format, not a stray typo.

    Example:
        >>> rows = list(read_jsonl_lines(Path("data.jsonl")))  # doctest: +SKIP
        >>> [r.detail["line"] for r in rows if isinstance(r, Unreadable)]  # doctest: +SKIP
        [14]
    """
    good = bad = 0
    first_bad = ""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row = _parse_line(line, number, label)
            if isinstance(row, Unreadable):
                bad += 1
                first_bad = first_bad or f"line {number}: {row.detail['error']}"
                if bad <= 5:  # the rest are counted in the summary and listed in rejects.jsonl
                    logger.warning("%s line %d skipped: %s", path.name, number, row.detail["error"])
            else:
                good += 1
            if good + bad == JUDGE_AFTER_LINES:
                _check_mostly_readable(path, good, bad, first_bad)
            yield row
    _check_mostly_readable(path, good, bad, first_bad)


def _parse_line(line: str, number: int, label: str) -> Mapping[str, Any] | Unreadable:
    where = f"{label} line {number}".strip()
    try:
        row = json.loads(line.strip())
    except json.JSONDecodeError as exc:
        error = f"{exc.msg} at column {exc.colno}"
    else:
        if isinstance(row, dict):
            return row
        error = f"a JSON {type(row).__name__}, not an object"
    return Unreadable(MALFORMED_LINE, {"line": number, "where": where, "error": error, "text": line[:200]})


def _check_mostly_readable(path: Path, good: int, bad: int, first_bad: str) -> None:
    if bad > good:
        raise InputError(
            f"{path}: {bad} of {good + bad} lines read are not JSON objects (first: {first_bad}); "
            "is it a JSON-lines file? Fix or convert it (a few bad lines are skipped and written to rejects.jsonl)"
        )


def _extract_answer(row: Mapping[str, Any], column: str, answer_format: str) -> str:
    if answer_format == "gsm8k":
        return gsm8k_answer(require_text(row, column), column)
    if answer_format == "boxed":
        boxed = last_boxed(require_text(row, column))
        if boxed is None:
            raise RejectedRow(
                f"field {column!r} has no \\boxed{{}} (use --answer-format raw for plain answers)"
            )
        return boxed
    return number_text(row.get(column), column)


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
        raise InputError(f"unknown answer format {answer_format!r}; valid: {', '.join(ANSWER_FORMATS)}")
    mapping = {name: name for name in MAPPABLE} | dict(columns or {})
    required = ["question"] + (["answer"] if domain == "math" else ["tests"])
    name = spec if spec.startswith("hf:") else Path(spec).name

    def rows() -> Iterator[tuple[str, Mapping[str, Any] | Unreadable]]:
        checked = False
        for position, row in enumerate(_load_rows(spec)):
            if isinstance(row, Unreadable):
                yield row.detail["where"], row
                continue
            if not checked:
                _check_columns(row, mapping, required)
                checked = True
            yield str(row.get(mapping["id"], position)), row

    def adapt(key: str, row: Mapping[str, Any], prompt: PromptConfig) -> Query:
        problem = require_text(row, mapping["question"])
        return Query(
            id=stable_id(name, key),
            source=name,
            domain=domain,
            prompt=prompt.messages(domain, problem),
            answer=_extract_answer(row, mapping["answer"], answer_format) if domain == "math" else None,
            tests=require_text(row, mapping["tests"]) if domain == "code" else None,
            entry_point=row.get(mapping["entry_point"]) if domain == "code" else None,
            metadata={"problem": problem},
        )

    return Source(
        name=name,
        domain=domain,
        rows=rows,
        adapt=adapt,
        description=f"file or Hub dataset {spec}",
        hub_id=_hub_id(spec),
    )


def _hub_id(spec: str) -> str | None:
    """`ORG/NAME` of an `hf:ORG/NAME[:config][@split]` spec; None for a local file."""
    return spec[3:].split("@")[0].split(":")[0] if spec.startswith("hf:") else None


def _check_columns(row: Mapping[str, Any], mapping: Mapping[str, str], required: list[str]) -> None:
    missing = [f"{ours} -> {mapping[ours]!r}" for ours in required if mapping[ours] not in row]
    if missing:
        raise InputError(
            f"column(s) not found: {', '.join(missing)}; the data has columns {sorted(row)}; "
            f"map them with --columns question=COL,answer=COL"
        )
