"""The codec between the program's process and the judge: plain data in, exact builtin values out.

These run the harness's functions in this process (no sandbox): what the program's process sends is
`to_json(["ok", encode(value)])`, and the judge believes only what `decode(from_json(...))` rebuilds.
"""

from __future__ import annotations

import collections
import math

import pytest

from sgpo_curate.sandbox_harness import (
    MAX_DEPTH,
    MalformedReply,
    _Opaque,
    _seccomp_program,
    decode,
    encode,
    from_json,
    to_json,
)


def round_trip(value):
    handles: list = []
    text = to_json(encode(value, handles))
    return decode(from_json(text), lambda ref: ("handle", handles[ref])), handles


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(10**40),
        2.5,
        -0.0,
        math.inf,
        1 + 2j,
        "a\u00e9\ud800",
        b"\x00\xff",
        bytearray(b"ab"),
        [1, [2, (3, {4, 5})]],
        {"a": 1, (1, 2): frozenset({3})},
        collections.OrderedDict([("b", 1), ("a", 2)]),
        collections.Counter("hello"),
        collections.deque([1, 2]),
        range(1, 10, 3),
    ],
)
def test_plain_values_round_trip_exactly(value):
    back, handles = round_trip(value)
    assert back == value and type(back) is type(value) and handles == []


def test_nan_round_trips():
    back, _ = round_trip(math.nan)
    assert type(back) is float and math.isnan(back)


def test_subclasses_arrive_as_their_builtin_base():
    class Int(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    class Text(str):
        pass

    class Items(list):
        pass

    back, _ = round_trip([Int(3), Text("x"), Items([1])])
    assert back == [3, "x", [1]]
    assert [type(v) for v in back] == [int, str, list]
    assert back[0] != 4  # the subclass's always-true __eq__ did not cross


def test_everything_else_stays_behind_as_a_handle():
    def function():
        return 1

    iterator = iter([1])
    back, handles = round_trip([function, _Opaque(iterator), object])
    assert back == [("handle", function), ("handle", iterator), ("handle", object)]
    assert handles == [function, iterator, object]


def test_values_nested_too_deeply_are_refused():
    deep: list = []
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(ValueError, match="too deeply"):
        encode(deep, [])


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}',  # a JSON object: never produced
        '["L", [1]] trailing',
        '["Z", [1]]',  # an unknown tag
        '["S", [["L", [1]]]]',  # an unhashable member
        '["D", [[1]]]',  # a pair of one
        '["H", "0"]',  # a handle that is not a number
        '["y", "not base64!"]',
        '["R", [1, 2]]',
        "[" * 2000 + "]" * 2000,
        "",
    ],
)
def test_malformed_replies_are_refused(text):
    with pytest.raises(MalformedReply):
        decode(from_json(text), lambda ref: ref)


def test_to_json_refuses_what_encode_never_produces():
    with pytest.raises(TypeError):
        to_json({"a": 1})


def test_seccomp_filter_denies_ptrace_on_both_architectures():
    # Each instruction is 8 bytes: load arch, check arch, load nr, ABI check, one jeq per syscall,
    # allow, deny, kill; the ptrace numbers (101 on x86_64, 117 on aarch64) are among the jeqs.
    import struct

    for arch, ptrace in (("x86_64", 101), ("aarch64", 117)):
        program = _seccomp_program(arch)
        codes = [struct.unpack("HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
        assert codes[-3:] == [(6, 0, 0, 0x7FFF0000), (6, 0, 0, 0x00050001), (6, 0, 0, 0x80000000)]
        jumps = {k: (i, jt) for i, (code, jt, _, k) in enumerate(codes[4:-3], start=4) if code == 0x15}
        index, offset = jumps[ptrace]
        assert index + 1 + offset == len(codes) - 2  # jumps to `deny`
