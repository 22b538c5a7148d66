"""lanser.codec: conversions between code points, UTF-16 and UTF-8 (all 0-based), checked
against Python's own encoders on random text with astral-plane characters."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lanser import codec
from lanser.errors import BadInput, IndexingUnsupported, NotFound

EMOJI_LINE = 'label = "😀😀"; result = grüße(label)'

# Text mixing ASCII, 2- and 3-byte BMP characters and astral characters (no newlines:
# the codec works line by line; no lone surrogates: they are not valid text).
chars = st.one_of(
    st.sampled_from("abc _(=\t"),
    st.sampled_from("üßéЖ中文€"),
    st.sampled_from("😀🐍𝔘𠀋🀄"),
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"),
)
lines = st.text(chars, max_size=40)


def utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def utf8_len(s: str) -> int:
    return len(s.encode("utf-8"))


@settings(max_examples=300, deadline=None)
@given(lines)
def test_every_character_boundary_round_trips(line: str) -> None:
    for i in range(len(line) + 1):
        u16, u8 = codec.from_codepoints(line, i, "utf-16"), codec.from_codepoints(line, i, "utf-8")
        assert u16 == utf16_len(line[:i]) and u8 == utf8_len(line[:i])
        assert codec.to_codepoints(line, u16, "utf-16") == i
        assert codec.to_codepoints(line, u8, "utf-8") == i
        assert codec.to_codepoints(line, i, "codepoint") == i
        assert codec.convert_col(line, u16, "utf-16", "utf-8") == u8
        assert codec.convert_col(line, u8, "utf-8", "utf-16") == u16
        assert codec.convert_col(line, i, "codepoint", "utf-16") == u16
        assert codec.col_to_byte(line, u16, "utf-16") == u8
        assert codec.byte_col_to(line.encode("utf-8"), u8, "utf-16") == u16
        assert codec.byte_col_to(line.encode("utf-8"), u8, "codepoint") == i


@settings(max_examples=200, deadline=None)
@given(lines)
def test_columns_inside_a_character_are_refused(line: str) -> None:
    for enc, width in (("utf-16", utf16_len), ("utf-8", utf8_len)):
        starts = {width(line[:i]) for i in range(len(line) + 1)}
        for col in range(width(line) + 1):
            if col in starts:
                codec.to_codepoints(line, col, enc)
            else:
                with pytest.raises(IndexingUnsupported):
                    codec.to_codepoints(line, col, enc)


@settings(max_examples=100, deadline=None)
@given(lines, st.integers(min_value=1, max_value=5))
def test_columns_past_the_end_are_not_found(line: str, extra: int) -> None:
    for enc, end in (("utf-16", utf16_len(line)), ("utf-8", utf8_len(line)), ("codepoint", len(line))):
        assert codec.units(line, enc) == end
        with pytest.raises(NotFound):
            codec.to_codepoints(line, end + extra, enc)


@settings(max_examples=100, deadline=None)
@given(st.lists(lines, min_size=1, max_size=6), st.data())
def test_convert_range_round_trip(text_lines: list[str], data: st.DataObject) -> None:
    sl = data.draw(st.integers(0, len(text_lines) - 1))
    el = data.draw(st.integers(sl, len(text_lines) - 1))
    sc = data.draw(st.integers(0, len(text_lines[sl])))
    ec = data.draw(st.integers(0, len(text_lines[el])))
    cp = [sl, sc, el, ec]
    u16 = codec.convert_range(text_lines, cp, "codepoint", "utf-16")
    u8 = codec.convert_range(text_lines, u16, "utf-16", "utf-8")
    assert codec.convert_range(text_lines, u8, "utf-8", "codepoint") == cp
    assert u16 == [sl, utf16_len(text_lines[sl][:sc]), el, utf16_len(text_lines[el][:ec])]


def test_the_emoji_line_of_the_fixture() -> None:
    """fixtures/encodings/unicode_names.py line 11: the call is at cp 23, utf-16 25, utf-8 29 (0-based)."""
    start = EMOJI_LINE.index("grüße")
    assert start == 23
    assert codec.from_codepoints(EMOJI_LINE, 23, "utf-16") == 25
    assert codec.from_codepoints(EMOJI_LINE, 23, "utf-8") == 29
    assert codec.convert_range([EMOJI_LINE], [0, 23, 0, 28], "codepoint", "utf-8") == [0, 29, 0, 36]
    assert codec.convert_range([EMOJI_LINE], [0, 25, 0, 30], "utf-16", "codepoint") == [0, 23, 0, 28]
    with pytest.raises(IndexingUnsupported, match="inside the character"):
        codec.to_codepoints(EMOJI_LINE, 10, "utf-16")   # the low surrogate of the first emoji
    with pytest.raises(IndexingUnsupported):
        codec.to_codepoints(EMOJI_LINE, 32, "utf-8")    # the second byte of ü (ü is bytes 31-32)


def test_crlf_line_end_is_not_a_position() -> None:
    line = "x = 1\r"
    assert codec.to_codepoints(line, 5, "utf-16") == 5   # just before the \r: the line's end
    with pytest.raises(NotFound):
        codec.to_codepoints(line, 6, "utf-16")
    with pytest.raises(NotFound):
        codec.to_codepoints(line, 6, "codepoint")
    assert codec.split_lines("a\r\nb\r\n") == ["a\r", "b\r", ""]


def test_lines_past_the_end() -> None:
    text_lines = ["a", "b"]
    assert codec.convert_range(text_lines, [0, 0, 2, 0], "utf-16", "utf-8") == [0, 0, 2, 0]  # after a final newline
    with pytest.raises(NotFound):
        codec.convert_range(text_lines, [0, 0, 3, 0], "utf-16", "utf-8")
    with pytest.raises(NotFound):
        codec.check_position(text_lines, 2, 0, "utf-16")
    with pytest.raises(NotFound):
        codec.to_codepoints("abc", -1, "utf-16")


@pytest.mark.parametrize("enc", ["utf-8", "utf-16", "codepoint"])
def test_known_encodings(enc: str) -> None:
    assert codec.check_encoding(enc) == enc


@pytest.mark.parametrize("enc", ["utf-32", "UTF-8", "utf8", "", "bytes"])
def test_unknown_encodings(enc: str) -> None:
    with pytest.raises(BadInput) as exc:
        codec.check_encoding(enc)
    assert (exc.value.code, exc.value.exit_code) == ("E/BAD_INPUT", 2)  # a bad option value, not 75


def test_lsp_names() -> None:
    assert codec.LSP_NAMES == {"utf-8": "utf-8", "utf-16": "utf-16", "codepoint": "utf-32"}
    assert codec.FROM_LSP["utf-32"] == "codepoint"
