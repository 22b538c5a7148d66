"""Pure application of LSP TextEdits (lanser.edits.textedits)."""

from __future__ import annotations

import pytest

from lanser.edits.reindent import reindent
from lanser.edits.textedits import adapt_newlines, apply_text_edits
from lanser.errors import ApplyConflict, IndexingUnsupported, NotFound


def te(sl: int, sc: int, el: int, ec: int, new: str) -> dict:
    return {"range": {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}},
            "newText": new}


def test_replace_in_utf16_after_astral_character() -> None:
    text = "x = '😀' + foo\n"
    # '😀' is 2 UTF-16 units, 4 UTF-8 bytes: foo starts at code point 10
    assert apply_text_edits(text, [te(0, 11, 0, 14, "bar")], "utf-16") == "x = '😀' + bar\n"
    assert apply_text_edits(text, [te(0, 10, 0, 13, "bar")], "codepoint") == "x = '😀' + bar\n"
    assert apply_text_edits(text, [te(0, 13, 0, 16, "bar")], "utf-8") == "x = '😀' + bar\n"


def test_column_inside_surrogate_pair_is_refused() -> None:
    with pytest.raises(IndexingUnsupported):
        apply_text_edits("'😀'\n", [te(0, 2, 0, 2, "x")], "utf-16")


def test_position_past_end_is_refused() -> None:
    with pytest.raises(NotFound):
        apply_text_edits("ab\n", [te(5, 0, 5, 1, "x")], "utf-16")
    with pytest.raises(NotFound):
        apply_text_edits("ab\n", [te(0, 3, 0, 3, "x")], "utf-16")


def test_edits_apply_from_the_end_and_keep_input_order_for_same_point_inserts() -> None:
    text = "a b c\n"
    edits = [te(0, 4, 0, 5, "C"), te(0, 0, 0, 1, "A"), te(0, 2, 0, 2, "1"), te(0, 2, 0, 2, "2")]
    assert apply_text_edits(text, edits, "utf-16") == "A 12b C\n"


def test_touching_edits_are_fine() -> None:
    assert apply_text_edits("abcdef", [te(0, 0, 0, 3, "X"), te(0, 3, 0, 6, "Y")]) == "XY"
    assert apply_text_edits("abcdef", [te(0, 3, 0, 3, "+"), te(0, 0, 0, 3, "X")]) == "X+def"


@pytest.mark.parametrize("edits", [
    [te(0, 0, 0, 4, "X"), te(0, 2, 0, 6, "Y")],          # partial overlap
    [te(0, 0, 0, 6, "X"), te(0, 2, 0, 3, "Y")],          # nested
    [te(0, 1, 0, 3, "X"), te(0, 1, 0, 2, "Y")],          # same start, both non-empty
    [te(0, 0, 0, 5, "X"), te(0, 2, 0, 2, "ins")],        # insertion strictly inside
    [te(0, 0, 1, 0, "X"), te(0, 1, 0, 2, "Y"), te(0, 3, 0, 4, "Z")],
])
def test_overlapping_edits_are_refused(edits: list) -> None:
    with pytest.raises(ApplyConflict) as info:
        apply_text_edits("abcdef\nxyz\n", edits)
    assert info.value.exit_code == 70
    assert info.value.details["reason"] == "overlap"


def test_crlf_inserted_newlines_follow_the_file() -> None:
    text = "def f():\r\n    pass\r\n"
    out = apply_text_edits(text, [te(1, 4, 1, 8, "x = 1\n    return x")])
    assert out == "def f():\r\n    x = 1\r\n    return x\r\n"
    assert adapt_newlines("a\r\nb\nc", "\r\n") == "a\r\nb\r\nc"
    assert adapt_newlines("a\nb", "\n") == "a\nb"


def test_range_to_start_of_next_line_and_end_of_text() -> None:
    assert apply_text_edits("a\nb\n", [te(0, 0, 1, 0, "")]) == "b\n"
    assert apply_text_edits("a\nb\n", [te(2, 0, 2, 0, "c\n")]) == "a\nb\nc\n"


def test_end_before_start_is_refused() -> None:
    with pytest.raises(ApplyConflict):
        apply_text_edits("abc", [te(0, 2, 0, 1, "x")])


def test_reindent() -> None:
    body = "    x = 1\n\n    if x:\n        return x\n"
    assert reindent(body, "        ") == "        x = 1\n\n        if x:\n            return x\n"
    assert reindent("a\n  b", "\t") == "\ta\n\t  b"
    assert reindent("x = 1\n   \ny = 2\n", "  ", newline="\r\n") == "  x = 1\r\n\r\n  y = 2\r\n"
    assert reindent("return 1\n", "    ", first_line=False) == "return 1\n"
