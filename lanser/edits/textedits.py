"""Pure application of LSP ``TextEdit``s to decoded text.

Positions are 0-based LSP positions (line, character) in the encoding the
caller names (``utf-16``, ``utf-8`` or ``codepoint``); they are converted with
:mod:`lanser.codec` only.  Edits are applied to the decoded text (no BOM);
encoding back to bytes is the caller's job (``SourceFile.encode``).

Overlapping edits are refused with E/APPLY_CONFLICT (exit 70): two edits
overlap when their ranges share at least one character, or when an insertion
falls strictly inside another edit's range.  Edits that only touch (one ends
where the next starts) and several insertions at the same position are
allowed; insertions at one position keep their order in the input, as the LSP
specification says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from .. import codec
from ..errors import ApplyConflict, NotFound

_LONE_LF = re.compile(r"(?<!\r)\n")


@dataclass(frozen=True)
class OffsetEdit:
    """One edit in code-point offsets of the whole text: ``text[start:end] = new``."""

    start: int
    end: int
    new: str
    index: int  # position in the input list (stable order for equal starts)
    range: tuple[int, int, int, int]  # the original 0-based LSP range, for error details


def lsp_range(edit: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """The flat ``(sL, sC, eL, eC)`` of an LSP TextEdit (0-based)."""
    try:
        r = edit["range"]
        return (int(r["start"]["line"]), int(r["start"]["character"]),
                int(r["end"]["line"]), int(r["end"]["character"]))
    except (KeyError, TypeError, ValueError):
        raise ApplyConflict(f"malformed TextEdit (no range): {edit!r:.200}") from None


def new_text(edit: Mapping[str, Any]) -> str:
    """The replacement text of a TextEdit, AnnotatedTextEdit or SnippetTextEdit."""
    if "newText" in edit:
        return str(edit["newText"])
    snippet = edit.get("snippet")
    if isinstance(snippet, Mapping) and "value" in snippet:
        return str(snippet["value"])
    raise ApplyConflict(f"malformed TextEdit (no newText): {edit!r:.200}")


def line_starts(text: str) -> list[int]:
    """Code-point offset where each ``\\n``-separated line starts (0-based)."""
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def offset_of(text: str, starts: Sequence[int], lines: Sequence[str], line: int, col: int,
              enc: str) -> int:
    """Code-point offset of the 0-based position (line, col in ``enc`` units).

    The position one past the last line, column 0, is the end of the text.
    Raises NotFound past the end and IndexingUnsupported inside a character.
    """
    if line == len(lines) and col == 0:
        return len(text)
    if line < 0 or line >= len(lines):
        raise NotFound(f"edit position line {line + 1} is past the end of the file "
                       f"({len(lines)} lines)")
    return starts[line] + codec.to_codepoints(lines[line], col, enc)


def to_offsets(text: str, edits: Iterable[Mapping[str, Any]], enc: str) -> list[OffsetEdit]:
    """Convert LSP TextEdits to sorted, checked offset edits (overlaps refused)."""
    codec.check_encoding(enc)
    starts = line_starts(text)
    lines = codec.split_lines(text)
    out: list[OffsetEdit] = []
    for i, edit in enumerate(edits):
        rng = lsp_range(edit)
        start = offset_of(text, starts, lines, rng[0], rng[1], enc)
        end = offset_of(text, starts, lines, rng[2], rng[3], enc)
        if end < start:
            raise ApplyConflict(f"edit {i} has its end before its start: {list(rng)}",
                                details={"edit": i, "range": list(rng)})
        out.append(OffsetEdit(start, end, new_text(edit), i, rng))
    out.sort(key=lambda e: (e.start, e.end, e.index))
    check_overlaps(out)
    return out


def check_overlaps(edits: Sequence[OffsetEdit]) -> None:
    """Raise ApplyConflict when two offset edits, sorted by start, overlap (see module doc)."""
    widest: OffsetEdit | None = None  # the edit reaching furthest so far
    for b in edits:
        if widest is not None:
            a = widest
            inside = b.start < a.end
            same_start = a.start == b.start and a.end > a.start and b.end > b.start
            if inside or same_start:
                raise ApplyConflict(
                    f"overlapping edits: {list(a.range)} and {list(b.range)} (0-based)",
                    details={"reason": "overlap", "ranges": [list(a.range), list(b.range)]})
        if widest is None or b.end >= widest.end:
            widest = b


def adapt_newlines(new: str, newline: str) -> str:
    """Make the newlines of inserted text match the file's (``\\r\\n`` or ``\\n``)."""
    if newline == "\r\n":
        return _LONE_LF.sub("\r\n", new)
    return new


def apply_text_edits(text: str, edits: Iterable[Mapping[str, Any]], enc: str = "utf-16",
                     *, newline: str | None = None) -> str:
    """Apply LSP TextEdits to ``text``; inserted newlines follow ``newline``
    (default: the text's own, CRLF when it contains any)."""
    nl = newline or ("\r\n" if "\r\n" in text else "\n")
    parts: list[str] = []
    pos = 0
    for e in to_offsets(text, edits, enc):
        parts.append(text[pos:e.start])
        parts.append(adapt_newlines(e.new, nl))
        pos = e.end
    parts.append(text[pos:])
    return "".join(parts)
