"""Small named registries for the pluggable parts: sources, samplers, verifiers, group-size rules,
profiling engines.

A duplicate name raises, an unknown name lists the valid ones, and a dotted path `pkg.mod:obj` loads
user code without forking this package. Entries are registered by the module that defines them; the
registry imports those modules lazily (`lazy_modules`) so `import sgpo_curate` stays fast and the
set of names never depends on import order.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """An unknown registry name. `str()` lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


class Registry(Generic[T]):
    """A name -> object map with clear errors.

    Args:
        kind (`str`): what the entries are, used in messages ("source", "verifier", ...).
        lazy_modules (`Iterable[str]`): modules that register the built-in entries; imported on
            first lookup.

    Example:
        >>> verifiers = Registry("verifier")
        >>> @verifiers.register("exact")
        ... class Exact: ...
        >>> verifiers.get("exact").__name__
        'Exact'
    """

    def __init__(self, kind: str, lazy_modules: Iterable[str] = ()):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._lazy_modules = tuple(lazy_modules)
        self._loaded = False

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register `obj` under `name`; usable as a decorator."""

        def add(value: T) -> T:
            if name in self._entries and self._entries[name] is not value:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = value
            return value

        return add(obj) if obj is not None else add

    def _load_builtins(self) -> None:
        if not self._loaded:
            for module in self._lazy_modules:
                importlib.import_module(module)
            self._loaded = True  # only once every module imported: a failed import is retried, not hidden

    def names(self) -> list[str]:
        self._load_builtins()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load_builtins()
        return name in self._entries

    def get(self, name: str) -> T:
        """The entry called `name`, or the object at a dotted path `pkg.mod:obj`."""
        if ":" in name:
            return load_dotted(name)
        self._load_builtins()
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(self.names()) or "(none)"
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; valid {self.kind}s: {valid} "
                f"(or a dotted path 'package.module:object')"
            ) from None


def load_dotted(path: str):
    """Import `pkg.mod:obj` and return `obj`."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownNameError(f"cannot import {module_name!r} from {path!r}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UnknownNameError(f"module {module_name!r} has no attribute {attr!r}") from None


# The project's registries. Each names the modules whose imports register its built-in entries.
SOURCES: Registry = Registry(
    "source", ["sgpo_curate.sources.math", "sgpo_curate.sources.code", "sgpo_curate.sources.synthetic"]
)
SAMPLERS: Registry = Registry("sampler", ["sgpo_curate.samplers"])
VERIFIERS: Registry = Registry("verifier", ["sgpo_curate.verifiers.math", "sgpo_curate.verifiers.code"])
GROUP_SIZE_RULES: Registry = Registry("group-size rule", ["sgpo_curate.policy"])
ENGINES: Registry = Registry("profiling engine", ["sgpo_curate.profiling", "sgpo_curate.profiling_ray"])
