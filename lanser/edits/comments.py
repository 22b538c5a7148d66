"""Comments an edit removes: organize-imports dropping ``# noqa`` is not a safe edit.

:func:`removes_comments` is pure: it compares the comments of each changed
Python file before and after the plan (tree-sitter ``comment`` nodes, so files
that do not parse are read too) as multisets of their text.  A comment counts
as removed when its text is no longer anywhere in the new file: one that moved
(imports re-sorted with their comments) is kept, one whose text changed (a
``# noqa: F401`` merged into another import line, then dropped) is removed.

The comments inside the range an edit claims to change are the edit's
business (``lanser edit`` replacing a body may drop its comments), so a caller
passes those ranges as ``claimed``; a rename claims no comments, and neither
does organize-imports (it claims to reorder imports).  Pragmas (``noqa``,
``type: ignore``, ``pyright: ignore``, ...) are named, since removing one changes
what linters and type checkers report.

Used by the mutating commands (``edits.removedComments``, ``--strict``, S = 0
in their processReward) and meant for the reward runner's safety term.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from .. import codec
from ..workspace import decode_source
from .plan import EditPlan, FileChange

_PRAGMAS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("noqa", re.compile(r"#\s*noqa\b", re.I)),
    ("type: ignore", re.compile(r"#\s*type:\s*ignore\b")),
    ("pyright: ignore", re.compile(r"#\s*pyright:\s*(ignore|basic|strict)\b")),
    ("pylint", re.compile(r"#\s*pylint:")),
    ("mypy", re.compile(r"#\s*mypy:")),
    ("fmt", re.compile(r"#\s*fmt:\s*(off|on|skip)\b")),
    ("isort", re.compile(r"#\s*isort:")),
    ("pragma", re.compile(r"#\s*pragma:")),
)

ClaimedLines = Mapping[str, Sequence[tuple[int, int]]]
"""Path -> inclusive 0-based line spans whose comments an edit may remove."""


@dataclass(frozen=True)
class RemovedComment:
    """A comment of the file before the plan whose text the file after no longer holds."""

    path: str
    range: tuple[int, int, int, int]   # 0-based, in the plan's encoding, in the old text
    text: str                          # from '#', trailing white space dropped
    pragma: str | None                 # the pragma (noqa, type: ignore, pyright: ignore, ...) or None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "range": list(self.range), "text": self.text, "pragma": self.pragma}

    def describe(self) -> str:
        """``path:line:col  # text`` (1-based), for summaries and error messages."""
        return f"{self.path}:{self.range[0] + 1}:{self.range[1] + 1}  {self.text}"


def pragma_of(comment: str) -> str | None:
    """The pragma a comment carries (``# noqa: F401`` is ``noqa``), None for prose."""
    for name, pattern in _PRAGMAS:
        if pattern.search(comment):
            return name
    return None


def _comments(text: str) -> list[tuple[int, int, int, str]]:
    """(0-based line, code-point start, code-point end, text) of every comment of ``text``."""
    from ..selectors.structure import parser

    data = text.encode("utf-8", "surrogatepass")
    tree = parser().parse(data)
    lines = data.split(b"\n")
    out: list[tuple[int, int, int, str]] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "comment":
            row, bcol = node.start_point
            erow, ebcol = node.end_point
            line = lines[row]
            start = len(line[:bcol].decode("utf-8", "replace"))
            end = len(line[:ebcol].decode("utf-8", "replace")) if erow == row else len(line.decode("utf-8", "replace"))
            body = (node.text or b"").decode("utf-8", "replace").rstrip()
            out.append((row, start, end, body))
            continue
        stack.extend(reversed(node.children))
    return sorted(out)


def _text(data: bytes | None, path: str) -> str | None:
    if data is None:
        return None
    try:
        return decode_source(data, path).text
    except Exception:  # noqa: BLE001 - undecodable: not a comment question
        return None


def _base(plan: EditPlan, change: FileChange) -> bytes | None:
    if change.before is not None or change.renamed_from is None:
        return change.before
    source = plan.change(change.renamed_from)
    return source.before if source is not None else None


def _claimed(line: int, spans: Iterable[tuple[int, int]]) -> bool:
    return any(a <= line <= b for a, b in spans)


def removes_comments(plan: EditPlan, claimed: ClaimedLines | None = None) -> list[RemovedComment]:
    """Every comment (and pragma) of a changed Python file that the plan removes outside
    the ``claimed`` line spans, sorted by (path, range).  Pure: reads only the plan.

    A file the plan deletes is not reported (deleting a file is its own decision); a
    renamed file is compared with its source.  An empty list means the plan keeps every
    comment it did not claim to change.
    """
    claimed = claimed or {}
    out: list[RemovedComment] = []
    for c in plan.changes:
        if c.after is None or not c.path.endswith((".py", ".pyi")):
            continue
        before = _text(_base(plan, c), c.renamed_from or c.path)
        after = _text(c.after, c.path)
        if before is None or after is None:
            continue
        kept = Counter(t for _, _, _, t in _comments(after))
        old_lines = before.split("\n")
        spans = claimed.get(c.renamed_from or c.path, ())
        for line, start, end, text in _comments(before):
            if _claimed(line, spans):
                continue  # the edit's own business: it neither counts nor uses up a kept copy
            if kept[text] > 0:
                kept[text] -= 1
                continue
            rng = (line, codec.from_codepoints(old_lines[line], start, plan.encoding), line,
                   codec.from_codepoints(old_lines[line], end, plan.encoding))
            out.append(RemovedComment(c.path, rng, text, pragma_of(text)))
    return sorted(out, key=lambda r: (r.path, r.range))


def claimed_lines(path: str, rng: Sequence[int]) -> dict[str, list[tuple[int, int]]]:
    """The line span of a flat range ``[sL, sC, eL, eC]`` (an end at column 0 of a later
    line does not claim that line)."""
    sl, _, el, ec = rng
    if ec == 0 and el > sl:
        el -= 1
    return {path: [(sl, el)]}


__all__ = ["ClaimedLines", "RemovedComment", "claimed_lines", "pragma_of", "removes_comments"]
