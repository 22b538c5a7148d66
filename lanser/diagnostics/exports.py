"""Ask the server whether a changed export kept its type (for the affected-files rule).

Most functions of real code have no return annotation, so a change in one's
body may change the type other files see (its inferred return type) — or not:
a comment-free refactoring, a new local, a fixed typo inside the body usually
leave it as it was.  The text alone cannot tell; the server can.  For a name
whose binding statements changed only inside the bodies of *hoverable*
functions (:func:`lanser.diagnostics.interface.body_changes`), each such
function's type is asked with ``textDocument/hover`` at its name, before the
step (on the old text) and after it.  The name kept its type when every
function's printed signature is the same, unless a call site may re-infer the
body: pyright infers the return type of a call again from the arguments when
the function's inferred return type is partly ``Unknown``, a parameter's type
is ``Unknown``, and it is neither decorated nor ``async`` (pyright 1.1.407,
``inferReturnTypeIfNecessary``); such a body change counts as a change.

What equal signatures cannot show: two different classes printed with the same
name (a body now returning ``other.Path`` instead of ``pathlib.Path``).
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

from lsprotocol import types as T

from ..server.session import Session
from .interface import Func

MAX_HOVERS = 96  # types asked per step (before and after); beyond, the names count as changed


def signature_of(raw: Any) -> str | None:
    """The code part of a hover answer (what the server printed for the type)."""
    if not isinstance(raw, dict):
        return None
    contents = raw.get("contents")
    value = contents.get("value") if isinstance(contents, dict) else contents if isinstance(contents, str) else None
    if not isinstance(value, str):
        return None
    if value.startswith("```"):
        body = value.split("\n", 1)[1] if "\n" in value else ""
        end = body.find("```")
        return body[:end].strip() if end >= 0 else body.strip()
    return value.split("\n\n", 1)[0].strip()


def call_site_reinfers(signature: str, func: Func) -> bool:
    """Whether a call may infer ``func``'s return type again from its arguments."""
    if func.decorated or func.is_async:
        return False
    params, arrow, ret = signature.rpartition(") -> ")
    return bool(arrow) and "Unknown" in ret and "Unknown" in params


async def signatures(session: Session, rel: str, funcs: Sequence[Func]) -> list[str | None]:
    """The server's signature for each function of ``rel`` (at its name), in order."""
    uri = session.uri(rel)
    answers = await asyncio.gather(*(session.request(T.TEXT_DOCUMENT_HOVER, T.HoverParams(
        text_document=T.TextDocumentIdentifier(uri=uri), position=T.Position(line=f.line, character=f.col)))
        for f in funcs))
    return [signature_of(raw) for raw in answers]


class TypeCheck:
    """One step's question: which changed names (per file) kept their type."""

    def __init__(self, candidates: dict[str, dict[str, list[tuple[Func, Func]]]],
                 unchanged: frozenset[str] = frozenset()) -> None:
        self.candidates = candidates  # rel -> name -> (before, after) function pairs
        self.unchanged = unchanged    # asked files the step does not change (touched before "after")
        self.before: dict[str, list[str | None]] = {}

    @property
    def size(self) -> int:
        return sum(len(pairs) for names in self.candidates.values() for pairs in names.values())

    def _funcs(self, rel: str, side: int) -> list[Func]:
        return [pair[side] for pairs in self.candidates[rel].values() for pair in pairs]

    async def ask_before(self, session: Session) -> None:
        for rel in sorted(self.candidates):
            self.before[rel] = await signatures(session, rel, self._funcs(rel, 0))

    async def ask_after(self, session: Session) -> dict[str, frozenset[str]]:
        """rel -> the changed names that kept their type."""
        out: dict[str, frozenset[str]] = {}
        for rel in sorted(self.unchanged & set(self.candidates)):
            session.touch(rel)  # (a file asked before a change elsewhere: see Session.touch)
        for rel in sorted(self.candidates):
            after = iter(await signatures(session, rel, self._funcs(rel, 1)))
            before = iter(self.before.get(rel, []))
            same: set[str] = set()
            for name, pairs in self.candidates[rel].items():
                kept = True
                for _, new in pairs:
                    old_sig, new_sig = next(before, None), next(after, None)
                    if old_sig is None or new_sig is None or old_sig != new_sig \
                            or call_site_reinfers(new_sig, new):
                        kept = False
                if kept:
                    same.add(name)
            if same:
                out[rel] = frozenset(same)
        return out


def limited(candidates: dict[str, dict[str, list[tuple[Func, Func]]]],
            limit: int = MAX_HOVERS) -> dict[str, dict[str, list[tuple[Func, Func]]]]:
    """Keep whole names, file by file, while the functions to ask stay within ``limit``."""
    out: dict[str, dict[str, list[tuple[Func, Func]]]] = {}
    used = 0
    for rel in sorted(candidates):
        for name in sorted(candidates[rel]):
            pairs = candidates[rel][name]
            if used + len(pairs) > limit:
                continue
            used += len(pairs)
            out.setdefault(rel, {})[name] = pairs
    return out


__all__ = ["MAX_HOVERS", "TypeCheck", "call_site_reinfers", "limited", "signature_of", "signatures"]
