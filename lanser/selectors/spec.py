"""The parsed form of every selector (CONTRACT.md section 2).

One immutable dataclass for all five kinds; fields a kind does not use stay
``None``.  Lines and columns here are 0-based, as in PositionSpec JSON and LSP;
the string grammar's 1-based numbers are converted by the parser.  Columns of
cursor and range selectors are in ``indexing`` units (``utf-8``, ``utf-16`` or
``codepoint``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KINDS = ("cursor", "range", "symbol", "ast", "anchor")
ROLES = ("def", "sig", "body", "doc")


@dataclass(frozen=True)
class SelectorSpec:
    kind: str
    path: str | None = None            # cursor, range, anchor: workspace-relative ('/') or file:// URI
    line: int | None = None            # cursor/range start, 0-based
    col: int | None = None
    end_line: int | None = None        # range end, 0-based
    end_col: int | None = None
    indexing: str = "codepoint"        # units of col/end_col
    module: str | None = None          # symbol: dotted module name ('pkg.mod')
    qualname: str | None = None        # symbol: 'Class.method' inside the module
    role: str = "def"                  # symbol: def | sig | body | doc
    overload: int | None = None        # symbol: 1-based @overload variant
    ast_path: tuple[tuple[str, Any], ...] = field(default_factory=tuple)  # ast: (type, name|index) steps
    snippet: str | None = None         # anchor: the exact text to find
    ctx: int | None = None             # anchor: context characters each side for the hash
    hash: str | None = None            # anchor: context hash (hex) when minted
    doc_version: str | None = None     # git blob id (40 hex) of the file when the selector was made

    def to_json(self) -> dict[str, Any]:
        """PositionSpec JSON (0-based), with only the fields the kind uses."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind in ("cursor", "range"):
            out.update(path=self.path, line=self.line, col=self.col, indexing=self.indexing)
            if self.kind == "range":
                out.update(endLine=self.end_line, endCol=self.end_col)
        elif self.kind == "symbol":
            out.update(module=self.module, qualname=self.qualname, role=self.role)
            if self.overload is not None:
                out["overload"] = self.overload
        elif self.kind == "ast":
            out["path"] = [[t, n] for t, n in self.ast_path]
        elif self.kind == "anchor":
            out.update(path=self.path, snippet=self.snippet)
            if self.ctx is not None:
                out["ctx"] = self.ctx
            if self.hash is not None:
                out["hash"] = self.hash
        if self.doc_version is not None:
            out["docVersion"] = self.doc_version
        return out
