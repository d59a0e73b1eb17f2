"""Optional dependencies: which extra brings what, and the error that says which one to install.

The core install (`pip install sgpo-curate`) curates, renders cards and publishes; it has no torch.
Everything heavier comes with an extra (pyproject.toml `[project.optional-dependencies]`, the same
names as `EXTRAS` below; a test checks that they agree). Heavy modules are imported where they are
used, inside `requires`, so a missing one fails there with the command that fixes it:

    with requires("profile"):
        import torch
        from transformers import AutoModelForCausalLM
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager

# extra -> what needs it, as the error message says it.
EXTRAS = {
    "profile": "sampling and verifying (torch, transformers, math-verify)",
    "train": "AdaptiveGRPOTrainer (trl)",
    "vllm": "the vllm sampler (vLLM on a CUDA GPU)",
    "ray": "the ray profiling engine (Ray Data; or profile with --engine local)",
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def _check_extra(extra: str) -> None:
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; extras: {', '.join(EXTRAS)}")


def missing_extra(extra: str, module: str | None) -> MissingExtraError:
    """The error for `module` missing from an environment without `extra`."""
    _check_extra(extra)
    return MissingExtraError(
        f"{module or 'a module'!r} is not installed: {EXTRAS[extra]} needs the {extra!r} extra. "
        f"Install it with: pip install 'sgpo-curate[{extra}]'",
        name=module,
    )


@contextmanager
def requires(extra: str) -> Iterator[None]:
    """Turn a `ModuleNotFoundError` raised inside the block into a `MissingExtraError` naming `extra`.

    Only a module that is absent is translated: any other error of an installed module propagates
    as it is.

    Args:
        extra (`str`): the extra that installs the modules imported in the block (a key of `EXTRAS`).

    Example:
        >>> with requires("profile"):  # doctest: +SKIP
        ...     import torch
    """
    _check_extra(extra)  # a typo fails even where everything is installed
    try:
        yield
    except ModuleNotFoundError as exc:
        raise missing_extra(extra, exc.name) from exc


def require(extra: str, *modules: str) -> None:
    """Fail early, without importing them, when `modules` are absent (for work done in other processes).

    Args:
        extra (`str`): the extra that installs `modules`.
        *modules (`str`): top-level module names, e.g. `"math_verify"`.

    Raises:
        MissingExtraError: the first module that cannot be found.
    """
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise missing_extra(extra, module)
