"""The diagnostic term ``T`` of Eq. 5.1: ``delta`` and ``regression``.

``delta`` (the contract's reading): ``T = D_prev - D``, counts only.

``regression``: ``T = (genuinely resolved) - (introduced)``, over diagnostic
identities (:mod:`lanser.rewards.identity`).  Every introduced diagnostic is
charged even when others disappeared in the same step, and a disappearance
earns nothing when it is probably *masked* rather than fixed: Pyright stops
reporting a type error once the expression's type became Unknown, which is
what a misspelled name, a dropped import or a broken attribute does.

The masking heuristic (a heuristic: it can be fooled both ways) marks a
resolved diagnostic as masked when, in the same step,

1. an introduced diagnostic in the same file has one of the codes in
   ``UNKNOWN_CODES`` (undefined variable, unresolved import, unknown
   attribute or import symbol); or
2. an import statement of the same file was removed, unless the resolved
   diagnostic sat on that removed import itself (deleting a broken import is a
   real fix); or
3. the resolved diagnostic's enclosing symbol (non-empty qualname) now holds
   an introduced diagnostic (in that symbol or one nested in it).

What it misses: masking across files that does not surface as an error in
the resolved diagnostic's file, and an ``Any`` introduced on purpose (a cast,
a ``# type: ignore``), which hides errors without any new diagnostic.  What
it over-charges: a step that fixes a real error and, independently, breaks
something else in the same file or symbol earns nothing for the fix.
Diagnostics present before and after (persisting) never count either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from .identity import Diag, DiagDiff, DiagId, describe, diff_identified, parse

UNKNOWN_CODES: frozenset[str] = frozenset({
    "reportUndefinedVariable", "reportMissingImports", "reportAttributeAccessIssue",
    "reportMissingModuleSource", "reportPossiblyUnbound",
})
_IMPORT_NODES = ("import_statement", "import_from_statement", "future_import_statement")


def import_statements(text: str) -> list[tuple[str, int, int]]:
    """``(normalized text, first line, last line)`` of every import statement (0-based lines)."""
    out: list[tuple[str, int, int]] = []
    stack = [parse(text).root_node]
    while stack:
        node = stack.pop()
        if node.type in _IMPORT_NODES:
            raw = node.text.decode("utf-8", errors="replace") if node.text else ""
            out.append((" ".join(raw.split()), node.start_point[0], node.end_point[0]))
            continue
        stack.extend(reversed(node.children))
    return out


def removed_imports(before: str, after: str) -> list[tuple[str, int, int]]:
    """Import statements of ``before`` whose text no longer occurs in ``after``
    (as a multiset), with their line spans in ``before``."""
    remaining: dict[str, int] = {}
    for stmt, _, _ in import_statements(after):
        remaining[stmt] = remaining.get(stmt, 0) + 1
    out = []
    for stmt, start, end in import_statements(before):
        if remaining.get(stmt, 0) > 0:
            remaining[stmt] -= 1
        else:
            out.append((stmt, start, end))
    return out


def _inside(symbol: str, scope: str) -> bool:
    return bool(scope) and (symbol == scope or symbol.startswith(scope + "."))


def masking_reason(resolved: DiagId, diag: Diag, introduced: Sequence[tuple[DiagId, Diag]],
                   removed: Mapping[str, list[tuple[str, int, int]]]) -> str | None:
    """Why a resolved diagnostic's disappearance is probably masked (None when genuine):
    ``"unknown-type"``, ``"import-removed"`` or ``"symbol-broken"``."""
    for ident, _ in introduced:
        if ident.path == resolved.path and ident.code in UNKNOWN_CODES:
            return "unknown-type"
    line = list(diag.get("range", [0, 0, 0, 0]))[0]
    spans = removed.get(resolved.path, [])
    if spans and not any(start <= line <= end for _, start, end in spans):
        return "import-removed"
    for ident, _ in introduced:
        if ident.path == resolved.path and _inside(ident.symbol, resolved.symbol):
            return "symbol-broken"
    return None


@dataclass(frozen=True)
class TermResult:
    """The diagnostic term of one step and the evidence behind it."""

    mode: str
    term: int
    introduced: list[Diag]
    resolved: list[Diag]      # each with "masked": null or the reason
    persisting: int


def diag_term(before: Sequence[Diag], after: Sequence[Diag], *, mode: str = "delta",
              texts_before: Mapping[str, str] | None = None,
              texts_after: Mapping[str, str] | None = None,
              encoding: str = "utf-16") -> TermResult:
    """The unclipped diagnostic term between two lists of counted diagnostics.

    ``before``/``after`` must already be filtered to the counted severities
    (and scope).  ``delta`` is ``len(before) - len(after)``; ``regression`` is
    ``genuinely resolved - introduced``.  Both modes report the identity diff.
    """
    if mode not in ("delta", "regression"):
        raise ValueError(f"unknown diag term {mode!r}; use one of delta, regression")
    texts_before = texts_before or {}
    texts_after = texts_after or {}
    diff: DiagDiff = diff_identified(before, after, texts_before=texts_before,
                                     texts_after=texts_after, encoding=encoding)
    removed: dict[str, list[tuple[str, int, int]]] = {}
    for path in sorted({i.path for i, _ in diff.resolved}):
        if path in texts_before:
            spans = removed_imports(texts_before[path], texts_after.get(path, ""))
            if spans:
                removed[path] = spans
    resolved_out: list[Diag] = []
    genuine = 0
    for ident, d in diff.resolved:
        reason = masking_reason(ident, d, diff.introduced, removed)
        genuine += reason is None
        resolved_out.append({**describe(ident, d), "masked": reason})
    introduced_out = [describe(i, d) for i, d in diff.introduced]
    term = len(before) - len(after) if mode == "delta" else genuine - len(introduced_out)
    return TermResult(mode=mode, term=term, introduced=introduced_out, resolved=resolved_out,
                      persisting=len(diff.persisting))


def counted(diags: Sequence[Diag], severities: Sequence[str] = ("error",),
            paths: Sequence[str] | None = None) -> list[Diag]:
    """Diagnostics of the chosen severities (default errors), optionally only in ``paths``
    (``--scope touched``)."""
    keep = set(severities)
    scope = None if paths is None else set(paths)
    return [d for d in diags if d.get("severity") in keep and (scope is None or d.get("path") in scope)]
