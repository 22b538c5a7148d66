"""The one position codec: every conversion between code points, UTF-16, UTF-8 and bytes.

All positions here are 0-based (LSP convention).  Lines are split on ``\\n``
only, as the LSP specification says for ``\\r\\n``, ``\\r`` and ``\\n``; a
trailing ``\\r`` of a CRLF line is counted as part of the line's text but no
position ever points past it.

Unit counting reuses pygls' ``UnitCounter`` implementations; on top of them
this module is strict: a column inside a character (the middle of a UTF-16
surrogate pair or of a multi-byte UTF-8 sequence) or past the end of a line is
an error, never silently clamped, because a wrong location poisons training
data.
"""

from __future__ import annotations

from typing import Sequence

from pygls.workspace.position_codec import UnitCounter, Utf8, Utf16, Utf32

from .errors import BadInput, IndexingUnsupported, NotFound

ENCODINGS: tuple[str, ...] = ("utf-8", "utf-16", "codepoint")

# LSP's names for the encodings (PositionEncodingKind) and ours.
LSP_NAMES: dict[str, str] = {"utf-8": "utf-8", "utf-16": "utf-16", "codepoint": "utf-32"}
FROM_LSP: dict[str, str] = {v: k for k, v in LSP_NAMES.items()}

_COUNTERS: dict[str, UnitCounter] = {"utf-8": Utf8(), "utf-16": Utf16(), "codepoint": Utf32()}


def check_encoding(enc: str) -> str:
    """Validate an ``--index-io`` value; an unknown one is a bad option value (E/BAD_INPUT,
    exit 2, as click reports a bad option value), not E/INDEXING_UNSUPPORTED, which is
    about a position in a file."""
    if enc not in _COUNTERS:
        raise BadInput(f"unknown index encoding {enc!r} (--index-io); use one of {', '.join(ENCODINGS)}",
                       details={"option": "--index-io", "value": enc})
    return enc


def split_lines(text: str) -> list[str]:
    """Lines of ``text`` without their ``\\n`` (a final empty line is kept)."""
    return text.split("\n")


def _content(line: str) -> str:
    return line[:-1] if line.endswith("\r") else line


def units(text: str, enc: str) -> int:
    """Length of ``text`` in code units of ``enc``."""
    return _COUNTERS[enc].num_units(text)


def to_codepoints(line: str, col: int, enc: str) -> int:
    """Convert a 0-based column in ``enc`` units on ``line`` to a code-point column.

    Raises NotFound when the column is past the line's end and
    IndexingUnsupported when it falls inside one character.
    """
    if enc == "codepoint":
        if col < 0 or col > len(_content(line)):
            raise NotFound(f"column {col + 1} is past the end of the line "
                           f"({len(_content(line))} characters)")
        return col
    counter = _COUNTERS[enc]
    if col < 0:
        raise NotFound(f"negative column {col}")
    content = _content(line)
    if content.isascii():  # one unit per character in every encoding: no walk needed
        if col > len(content):
            raise NotFound(f"column {col + 1} ({enc}) is past the end of the line ({len(content)} {enc} units)")
        return col
    seen = 0
    for i, ch in enumerate(_content(line)):
        if seen == col:
            return i
        seen += counter.code_units_for_char(ch)
        if seen > col:
            raise IndexingUnsupported(
                f"column {col + 1} ({enc}) falls inside the character {ch!r}; "
                f"it starts at {enc} column {seen - counter.code_units_for_char(ch) + 1}")
    if seen == col:
        return len(_content(line))
    raise NotFound(f"column {col + 1} ({enc}) is past the end of the line ({seen} {enc} units)")


def from_codepoints(line: str, col: int, enc: str) -> int:
    """Convert a code-point column on ``line`` to ``enc`` units (0-based)."""
    if enc == "codepoint":
        return col
    prefix = line[:col]
    return len(prefix) if prefix.isascii() else _COUNTERS[enc].num_units(prefix)


def convert_col(line: str, col: int, src: str, dst: str) -> int:
    """Convert a column between two encodings on one line."""
    if src == dst:
        return col
    return from_codepoints(line, to_codepoints(line, col, src), dst)


def convert_range(lines: Sequence[str], rng: Sequence[int], src: str, dst: str) -> list[int]:
    """Convert a flat ``[sL, sC, eL, eC]`` range between encodings."""
    sl, sc, el, ec = rng
    return [sl, convert_col(_line(lines, sl), sc, src, dst), el, convert_col(_line(lines, el), ec, src, dst)]


def _line(lines: Sequence[str], n: int) -> str:
    if 0 <= n < len(lines):
        return lines[n]
    if n == len(lines):  # the position just past a final newline
        return ""
    raise NotFound(f"line {n + 1} is past the end of the file ({len(lines)} lines)")


def check_position(lines: Sequence[str], line: int, col: int, enc: str) -> None:
    """Raise NotFound / IndexingUnsupported unless (line, col) is a real position."""
    if line < 0 or line >= len(lines):
        raise NotFound(f"line {line + 1} is past the end of the file ({len(lines)} lines)")
    to_codepoints(lines[line], col, enc)


def byte_col_to(line_bytes: bytes, byte_col: int, enc: str) -> int:
    """Convert a UTF-8 byte column (tree-sitter's ``point.column``) to ``enc`` units."""
    if enc == "utf-8":
        return byte_col
    prefix = line_bytes[:byte_col].decode("utf-8", errors="strict")
    return units(prefix, enc)


def col_to_byte(line: str, col: int, enc: str) -> int:
    """Convert an ``enc`` column to a UTF-8 byte column."""
    return units(line[: to_codepoints(line, col, enc)], "utf-8")
