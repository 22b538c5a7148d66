"""canonical_bytes must be RFC 8785 whichever path it takes (stdlib fast path or rfc8785)."""

from __future__ import annotations

import enum
import math

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from lanser.bundles.canonical import _NotPlain, _plain, canonical_bytes

_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-1e-3, max_value=1e-3),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.1, 1e-4, 9.99e-5, 1e-6, 1e-7, 1e15, 1e16, 1e20, 1e21,
                     2.0**53, 2.0**53 - 1, 0.872, 1.894, -0.438, 1 / 3]),
)
_ints = st.one_of(st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
                  st.sampled_from([0, -1, 2**53 - 1, -(2**53) + 1]))
_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)  # no lone surrogates
_keys = st.one_of(_text, st.sampled_from(["a", "b", "A", "\u00e9", "\uff61", "\U0001f600", "\ue000", ""]))
_scalars = st.one_of(st.none(), st.booleans(), _ints, _floats, _text)
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(_keys, inner, max_size=5)), max_leaves=30)


@settings(max_examples=600, deadline=None)
@given(_values)
def test_same_bytes_as_rfc8785(value: object) -> None:
    assert canonical_bytes(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("value", [1e-5, 1e21, 2.0**60, 2.0**53, -(2.0**53)])
def test_values_outside_the_fast_path_still_canonical(value: object) -> None:
    with pytest.raises(_NotPlain):
        _plain(value)
    assert canonical_bytes({"x": value}) == rfc8785.dumps({"x": value})


def test_key_order_is_utf16_not_code_points() -> None:
    # U+1F600 sorts before U+FF61 in UTF-16 (surrogate D83D < FF61), after it by code point.
    doc = {"\uff61": 1, "\U0001f600": 2}
    assert canonical_bytes(doc) == rfc8785.dumps(doc)
    assert canonical_bytes(doc).index("\U0001f600".encode()) < canonical_bytes(doc).index("\uff61".encode())


def test_integral_floats_lose_their_fraction_and_minus_zero_its_sign() -> None:
    assert canonical_bytes([1.0, -0.0, 1e15, 0.5]) == b"[1,0,1000000000000000,0.5]"


def test_escapes_control_characters_like_rfc8785() -> None:
    doc = {"s": "\x00\x1f\b\f\n\r\t\"\\/\u2028\x7f"}
    assert canonical_bytes(doc) == rfc8785.dumps(doc)


def test_enum_and_tuple_values_go_the_same_way_as_rfc8785() -> None:
    class Kind(str, enum.Enum):
        A = "a"

    doc = {"k": Kind.A, "t": (1, 2)}
    assert canonical_bytes(doc) == rfc8785.dumps(doc)


@pytest.mark.parametrize("bad", [math.nan, math.inf, 2**60, {1: 2}, "\ud800", object()])
def test_uncanonicalizable_values_fail_as_rfc8785_does(bad: object) -> None:
    with pytest.raises(rfc8785.CanonicalizationError):
        rfc8785.dumps({"x": bad})
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_bytes({"x": bad})


@pytest.mark.parametrize("value", [1.0, -0.0, 1e-7, 1e21, 123.0, [1e16], {"a": 2.0**53}, 1e15 + 0.5,
                                   {"s": "x:1.0,"}, {"s": "sha256:1234567890123456789,"}])
def test_number_tokens_orjson_writes_differently_are_caught(value: object) -> None:
    assert canonical_bytes(value) == rfc8785.dumps(value)


def test_non_ascii_strings_and_keys() -> None:
    doc = {"h\u00e9": "\u00e9\u2028\U0001f600", "z": ["\u00ff"], "\U0001f600": {"\uff61": 1.5}}
    assert canonical_bytes(doc) == rfc8785.dumps(doc)
