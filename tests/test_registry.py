import pytest

from sgpo_curate.registry import SOURCES, Registry, UnknownNameError


def test_duplicate_name_raises():
    registry = Registry("thing")
    registry.register("a", object())
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a", object())


def test_unknown_name_lists_valid_ones():
    registry = Registry("thing")
    registry.register("alpha", 1)
    registry.register("beta", 2)
    with pytest.raises(UnknownNameError, match="valid things: alpha, beta"):
        registry.get("gamma")


def test_dotted_path_loads_user_code():
    registry = Registry("thing")
    assert registry.get("collections:OrderedDict").__name__ == "OrderedDict"
    with pytest.raises(UnknownNameError, match="no attribute"):
        registry.get("collections:Nope")


def test_builtin_sources_are_registered_lazily():
    names = SOURCES.names()
    for name in ("gsm8k", "gsm8k-train", "math", "math500", "mawps", "svamp", "asdiv", "aime24", "aime25"):
        assert name in names
