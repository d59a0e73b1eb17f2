"""The `Example:` blocks of the package's docstrings run and print what they show.

Examples that need a model or the network say `# doctest: +SKIP`; `profiling_ray` needs the `ray` extra
and is left to `tests/test_profiling_ray.py`.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import sgpo_curate

NEEDS_EXTRA = {"sgpo_curate.profiling_ray"}
MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(sgpo_curate.__path__, prefix="sgpo_curate.")
    if info.name not in NEEDS_EXTRA
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} failed"
