"""Diagnostic identities that survive line shifts, and the per-step diff they allow.

A diagnostic's identity is

    (path, severity, code, message, enclosing symbol, anchor) + occurrence

- ``message`` is Pyright's message with whitespace collapsed and explicit
  ``line N`` references replaced by ``line #``; quoted names and numbers
  (``"foo"``, ``Expected 2 positional arguments``) are kept: they say *which*
  problem it is.
- ``symbol`` is the qualname of the innermost ``def``/``class`` enclosing the
  start of the range (``Class.method``; ``""`` at module level), found with
  tree-sitter in the file's text at that step.
- ``anchor`` is the flagged text (the range's text, whitespace-normalized;
  for an empty range, the stripped line).
- ``occurrence`` numbers diagnostics with the same key in position order, so
  two identical problems in one function stay two.

Diagnostics are matched on the full identity first; then the ones left over
are paired on everything but the message (same code, symbol and flagged
text, in position order): a problem whose message changed because a type
elsewhere changed is the same problem, still there (persisting).  Without a
file's text (no anchor) only the first pass applies.

Nothing here depends on line numbers, so code that only moved keeps its
diagnostics' identities, and pre-existing diagnostics a step did not touch
persist (they cancel out) instead of counting as resolved and re-introduced.

Diagnostics are the bundle's normalized dicts: ``{"path","range":[sL,sC,eL,eC],
"severity","code","message","source"}`` with 0-based ranges in the server's
encoding (UTF-16 for Pyright).  File texts are given as ``{path: text}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence

from tree_sitter import Node, Tree

from .. import codec
from ..selectors.structure import parser

Diag = dict[str, Any]
_WS = re.compile(r"\s+")
_LINE_REF = re.compile(r"\bline (\d+)\b")
ANCHOR_MAX = 200
_SCOPES = ("function_definition", "class_definition")


@lru_cache(maxsize=256)
def parse(text: str) -> Tree:
    """tree-sitter tree of ``text`` (cached by content)."""
    return parser().parse(text.encode("utf-8"))


def normalize_message(message: str) -> str:
    """Whitespace collapsed, ``line N`` references made position-free."""
    return _LINE_REF.sub("line #", _WS.sub(" ", message).strip())


def _byte_col(line: str, col: int, encoding: str) -> int:
    """Byte column of an ``encoding`` column, clamped to the line (never raises)."""
    content = line[:-1] if line.endswith("\r") else line
    try:
        cp = codec.to_codepoints(line, col, encoding)
    except Exception:  # past the end or inside a character: clamp
        cp = len(content)
        for i in range(len(content) + 1):
            if codec.units(content[:i], encoding) >= col:
                cp = i
                break
    return len(content[:cp].encode("utf-8"))


def _cp_col(line: str, col: int, encoding: str) -> int:
    content = line[:-1] if line.endswith("\r") else line
    prefix = content.encode("utf-8")[:_byte_col(line, col, encoding)]
    return len(prefix.decode("utf-8", errors="ignore"))


def anchor_text(text: str, rng: Sequence[int], encoding: str = "utf-16") -> str:
    """The whitespace-normalized text of ``rng`` in ``text`` (the stripped line when
    the range is empty), at most ANCHOR_MAX characters."""
    lines = text.split("\n")
    sl, sc, el, ec = rng
    if not 0 <= sl < len(lines):
        return ""
    el = min(el, len(lines) - 1)
    if (el, ec) <= (sl, sc):
        snippet = lines[sl]
    elif sl == el:
        line = lines[sl]
        snippet = line[_cp_col(line, sc, encoding):_cp_col(line, ec, encoding)]
    else:
        first = lines[sl][_cp_col(lines[sl], sc, encoding):]
        last = lines[el][:_cp_col(lines[el], ec, encoding)]
        snippet = "\n".join([first, *lines[sl + 1:el], last])
    return _WS.sub(" ", snippet).strip()[:ANCHOR_MAX]


def _scope_name(node: Node) -> str:
    name = node.child_by_field_name("name")
    return name.text.decode("utf-8", errors="replace") if name is not None and name.text else "?"


def enclosing_symbol(text: str, line: int, col: int, encoding: str = "utf-16") -> str:
    """Qualname of the innermost def/class whose node contains (line, col), 0-based;
    ``""`` at module level or when the position is outside the text."""
    lines = text.split("\n")
    if not 0 <= line < len(lines):
        return ""
    point = (line, _byte_col(lines[line], col, encoding))
    node: Node | None = parse(text).root_node.descendant_for_point_range(point, point)
    names: list[str] = []
    while node is not None:
        if node.type in _SCOPES:
            names.append(_scope_name(node))
        node = node.parent
    return ".".join(reversed(names))


@dataclass(frozen=True, order=True)
class DiagId:
    """The line-free identity of one diagnostic (see the module docstring)."""

    path: str
    severity: str
    code: str
    message: str
    symbol: str
    anchor: str
    occurrence: int = 0

    def key(self) -> tuple[str, str, str, str, str, str]:
        return (self.path, self.severity, self.code, self.message, self.symbol, self.anchor)


def _sort_key(d: Diag) -> tuple[Any, ...]:
    return (d.get("path", ""), list(d.get("range", [0, 0, 0, 0])), d.get("severity", ""),
            d.get("code") or "", d.get("message", ""))


def annotate(diags: Iterable[Diag], texts: Mapping[str, str] | None = None, *,
             encoding: str = "utf-16") -> list[tuple[DiagId, Diag]]:
    """Each diagnostic with its identity, in (path, range) order.  Without a file's
    text, ``symbol`` and ``anchor`` are empty for its diagnostics."""
    texts = texts or {}
    seen: dict[tuple[str, ...], int] = {}
    out: list[tuple[DiagId, Diag]] = []
    for d in sorted(diags, key=_sort_key):
        path = d.get("path", "")
        rng = list(d.get("range", [0, 0, 0, 0]))
        text = texts.get(path)
        symbol = enclosing_symbol(text, rng[0], rng[1], encoding) if text is not None else ""
        anchor = anchor_text(text, rng, encoding) if text is not None else ""
        base = DiagId(path=path, severity=d.get("severity", ""), code=d.get("code") or "",
                      message=normalize_message(d.get("message", "")), symbol=symbol, anchor=anchor)
        n = seen.get(base.key(), 0)
        seen[base.key()] = n + 1
        ident = DiagId(*base.key(), occurrence=n)
        out.append((ident, d))
    return out


def describe(ident: DiagId, diag: Diag) -> Diag:
    """The record form of a diagnostic: the bundle fields plus ``symbol`` and ``anchor``."""
    return {"path": ident.path, "range": list(diag.get("range", [0, 0, 0, 0])),
            "severity": ident.severity, "code": diag.get("code"), "message": diag.get("message", ""),
            "symbol": ident.symbol, "anchor": ident.anchor}


@dataclass(frozen=True)
class DiagDiff:
    """Result of :func:`diff_diagnostics`; each list is in (path, range) order of the
    tree it belongs to (after for introduced/persisting, before for resolved)."""

    introduced: list[tuple[DiagId, Diag]]
    resolved: list[tuple[DiagId, Diag]]
    persisting: list[tuple[DiagId, Diag]]


def diff_identified(before: Sequence[Diag], after: Sequence[Diag], *,
                    texts_before: Mapping[str, str] | None = None,
                    texts_after: Mapping[str, str] | None = None,
                    encoding: str = "utf-16") -> DiagDiff:
    """Like :func:`diff_diagnostics` but keeps each diagnostic's :class:`DiagId`."""
    b = annotate(before, texts_before, encoding=encoding)
    a = annotate(after, texts_after, encoding=encoding)
    before_ids = {ident for ident, _ in b}
    after_ids = {ident for ident, _ in a}
    # Second pass: the same code on the same flagged text in the same symbol whose
    # message changed (a type elsewhere changed) is the same problem, still there.
    spare: dict[tuple[str, ...], list[int]] = {}
    for n, (i, _) in enumerate(b):
        if i not in after_ids and i.anchor:
            spare.setdefault(_loose(i), []).append(n)
    matched_before: set[int] = set()
    matched_after: set[int] = set()
    for n, (i, _) in enumerate(a):
        if i not in before_ids and i.anchor and spare.get(_loose(i)):
            matched_before.add(spare[_loose(i)].pop(0))
            matched_after.add(n)
    return DiagDiff(
        introduced=[(i, d) for n, (i, d) in enumerate(a)
                    if i not in before_ids and n not in matched_after],
        resolved=[(i, d) for n, (i, d) in enumerate(b)
                  if i not in after_ids and n not in matched_before],
        persisting=[(i, d) for n, (i, d) in enumerate(a) if i in before_ids or n in matched_after],
    )


def _loose(ident: DiagId) -> tuple[str, ...]:
    """The identity without the message, for the second matching pass (anchored only)."""
    return (ident.path, ident.severity, ident.code, ident.symbol, ident.anchor)


def diff_diagnostics(before: Sequence[Diag], after: Sequence[Diag], *,
                     texts_before: Mapping[str, str] | None = None,
                     texts_after: Mapping[str, str] | None = None,
                     encoding: str = "utf-16") -> tuple[list[Diag], list[Diag], list[Diag]]:
    """``(introduced, resolved, persisting)`` between two diagnostic lists, matched by
    identity; entries are :func:`describe` dicts, each list in (path, range) order."""
    diff = diff_identified(before, after, texts_before=texts_before, texts_after=texts_after,
                           encoding=encoding)
    return ([describe(i, d) for i, d in diff.introduced],
            [describe(i, d) for i, d in diff.resolved],
            [describe(i, d) for i, d in diff.persisting])
