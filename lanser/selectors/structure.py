"""Tree-sitter definition index of one Python file (structural resolution).

:func:`index_source` parses a decoded file once and lists every definition a
symbol or AST selector can name:

- classes, functions and methods (``async def`` included), nested to any
  depth: a function nested in ``f`` is ``f.inner`` (Python's
  ``f.<locals>.inner`` is accepted too, see :func:`normalize_qualname`);
- definitions inside ``if``/``try``/``with``/``for``/``while``/``match``
  blocks belong to the enclosing scope, as at run time;
- module- and class-level assignments (``x = 1``, ``x: int = 1``, ``x: int``,
  ``a, b = ...``, ``a = b = ...``, ``type X = ...``).  Only the first binding of
  a name is a definition; a later re-binding is not, and an assignment to a
  name that a ``def``/``class`` of the same scope also binds is not indexed;
- ``@overload`` variants share the qualname and are numbered 1..N in source
  order (``overload``); the implementation has ``overload=None``;
- properties: the getter is ``Class.prop``; ``@prop.setter`` and
  ``@prop.deleter`` are indexed as ``Class.prop.setter`` and
  ``Class.prop.deleter`` (kinds ``property.setter``/``property.deleter``), so
  ``Class.prop`` resolves to the getter and the accessors stay addressable.

Spans are tree-sitter points: ``(row, utf8_byte_column)``, 0-based, over the
UTF-8 encoding of ``SourceFile.text`` (not the raw bytes, so PEP 263 files
work); :class:`FileIndex` converts them to any encoding of lanser.codec.

Roles (CONTRACT section 2): ``def`` is the whole definition, decorators
included; ``sig`` runs from the ``def``/``async``/``class`` keyword (decorators
excluded) through the header's ``:``; ``body`` is the block (from its first
statement, so a comment on the lines between the colon and that statement is
not part of it); ``doc`` is the docstring literal (the string of the block's
first statement).  For assignments ``def`` is the statement, ``sig`` the
target and annotation, ``body`` the assigned value and ``doc`` a string
literal statement right after it (an attribute docstring).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterator, Sequence

import tree_sitter_python
from tree_sitter import Language, Node, Parser, Tree

from ..codec import units
from ..workspace import SourceFile

Point = tuple[int, int]          # (row, utf-8 byte column), 0-based
Span = tuple[Point, Point]

KINDS = ("class", "function", "property", "property.setter", "property.deleter", "variable")

_COMPOUND_CLAUSES = ("block",)
_SCOPE_NODES = ("function_definition", "class_definition")


@lru_cache(maxsize=1)
def language() -> Language:
    return Language(tree_sitter_python.language())


_PARSERS = threading.local()


def parser() -> Parser:
    """The tree-sitter Python parser: the one place Lanser builds it (one per thread, since a
    parser is not thread-safe); selectors, edit checks, comment checks and reward identities
    all parse through it."""
    found = getattr(_PARSERS, "parser", None)
    if found is None:
        found = _PARSERS.parser = Parser(language())
    return found


@dataclass(frozen=True)
class Definition:
    """One named definition; spans are tree-sitter points (see module doc)."""

    qualname: str
    name: str
    kind: str                                # one of KINDS
    chain: tuple[tuple[str, str], ...]       # (step kind: class|def|assign, name), outermost first
    overload: int | None                     # 1-based @overload variant, None otherwise
    is_async: bool
    decorators: tuple[str, ...]
    name_span: Span
    def_span: Span
    sig_span: Span
    body_span: Span | None
    doc_span: Span | None
    node: Any = field(compare=False, repr=False)   # function_definition/class_definition/statement

    def role_span(self, role: str) -> Span | None:
        return {"def": self.def_span, "sig": self.sig_span, "body": self.body_span,
                "doc": self.doc_span}[role]


class FileIndex:
    """Definitions of one file plus the position conversions for it."""

    def __init__(self, source: SourceFile, tree: Tree, data: bytes,
                 definitions: list[Definition]) -> None:
        self.source = source
        self.tree = tree
        self.data = data
        self.definitions = definitions
        self._lines_b = data.split(b"\n")
        self._line_start_cp: list[int] | None = None
        self._by_qualname: dict[str, list[Definition]] | None = None
        self._by_name_row: dict[int, list[Definition]] | None = None

    # -- lookup --------------------------------------------------------
    def by_qualname(self, qualname: str) -> list[Definition]:
        if self._by_qualname is None:
            table: dict[str, list[Definition]] = {}
            for d in self.definitions:
                table.setdefault(d.qualname, []).append(d)
            self._by_qualname = table
        return list(self._by_qualname.get(qualname, ()))

    def innermost(self, row: int, bcol: int, attr: str = "name_span") -> Definition | None:
        """The innermost definition whose ``attr`` span contains the point."""
        best: Definition | None = None
        candidates: Sequence[Definition] = self.definitions
        if attr == "name_span":  # names sit on one line: only that line's definitions can hold the point
            if self._by_name_row is None:
                rows: dict[int, list[Definition]] = {}
                for d in self.definitions:
                    rows.setdefault(d.name_span[0][0], []).append(d)
                self._by_name_row = rows
            candidates = self._by_name_row.get(row, ())
        for d in candidates:
            (sr, sc), (er, ec) = getattr(d, attr)
            if (sr, sc) <= (row, bcol) <= (er, ec):
                if best is None or getattr(best, attr)[0] <= (sr, sc):
                    best = d
        return best

    # -- positions -----------------------------------------------------
    def line_bytes(self, row: int) -> bytes:
        return self._lines_b[row] if row < len(self._lines_b) else b""

    def col_in(self, point: Point, enc: str) -> int:
        """A point's column in ``enc`` units (0-based)."""
        row, bcol = point
        if enc == "utf-8":
            return bcol
        prefix = self.line_bytes(row)[:bcol].decode("utf-8")
        return len(prefix) if enc == "codepoint" else units(prefix, enc)

    def range_in(self, span: Span, enc: str) -> list[int]:
        """A span as a flat ``[sL, sC, eL, eC]`` range in ``enc`` units."""
        (sr, _), (er, _) = span
        return [sr, self.col_in(span[0], enc), er, self.col_in(span[1], enc)]

    def point_from_cp(self, row: int, cp_col: int) -> Point:
        line = self.line_bytes(row).decode("utf-8")
        return (row, len(line[:cp_col].encode("utf-8")))

    def offset_cp(self, point: Point) -> int:
        """Absolute code-point offset of a point into ``source.text``."""
        if self._line_start_cp is None:
            starts, total = [], 0
            for lb in self._lines_b:
                starts.append(total)
                total += len(lb.decode("utf-8")) + 1
            self._line_start_cp = starts
        row, bcol = point
        if row >= len(self._line_start_cp):
            return len(self.source.text)
        return self._line_start_cp[row] + len(self.line_bytes(row)[:bcol].decode("utf-8"))

    def module_span(self) -> Span:
        root = self.tree.root_node
        last = len(self._lines_b) - 1
        return ((0, 0), (last, len(self._lines_b[last]))) if root is not None else ((0, 0), (0, 0))

    def module_doc_span(self) -> Span | None:
        return _docstring_span(self.tree.root_node)


def index_source(source: SourceFile) -> FileIndex:
    """Parse ``source.text`` once and list its definitions in source order."""
    data = source.text.encode("utf-8")
    tree = parser().parse(data)
    defs: list[Definition] = []
    _Indexer(defs, data).scope(tree.root_node, (), in_function=False)
    return FileIndex(source, tree, data, defs)


def normalize_qualname(qualname: str) -> str:
    """Drop ``<locals>`` parts, so ``f.<locals>.g`` names the same thing as ``f.g``."""
    return ".".join(p for p in qualname.split(".") if p and p != "<locals>")


# -- indexing ----------------------------------------------------------------

def _pt(p: Any) -> Point:
    return (p.row, p.column)


def _span(node: Node) -> Span:
    return (_pt(node.start_point), _pt(node.end_point))


def _text(node: Node) -> str:
    return node.text.decode("utf-8") if node.text is not None else ""


def _decorator_name(dec: Node) -> str:
    """``@a.b(x)`` → ``a.b``; ``@x`` → ``x``."""
    expr = next((c for c in dec.named_children if c.type != "comment"), None)
    if expr is None:
        return ""
    if expr.type == "call":
        expr = expr.child_by_field_name("function") or expr
    return "".join(_text(expr).split())


def _is_overload(decorators: tuple[str, ...]) -> bool:
    return any(d == "overload" or d.endswith(".overload") for d in decorators)


def _docstring_span(container: Node) -> Span | None:
    """The docstring literal of a module (root) or of a def/class body block."""
    block = container if container.type in ("module", "block") else container.child_by_field_name("body")
    if block is None:
        return None
    first = next((c for c in block.named_children if c.type != "comment"), None)
    if first is None or first.type != "expression_statement" or first.named_child_count != 1:
        return None
    lit = first.named_children[0]
    if lit.type in ("string", "concatenated_string"):
        return _span(lit)
    return None


def _blocks(node: Node) -> Iterator[Node]:
    """Blocks directly governed by a compound statement (through its clauses)."""
    for child in node.named_children:
        if child.type == "block":
            yield child
        elif child.type.endswith("_clause"):
            yield from _blocks(child)


class _Indexer:
    def __init__(self, out: list[Definition], data: bytes) -> None:
        self.out = out
        self.data = data

    def _may_nest(self, body: Node) -> bool:
        """Whether a function body can hold a nested def/class (a fast byte search)."""
        s, e = body.start_byte, body.end_byte
        return self.data.find(b"def", s, e) >= 0 or self.data.find(b"class", s, e) >= 0

    def scope(self, container: Node, chain: tuple[tuple[str, str], ...], *, in_function: bool) -> None:
        """Index one scope's statements (a module root or a block)."""
        stmts = list(self._statements(container))
        bound_by_def: set[str] = set()
        for _stmt, inner, _ in stmts:
            if inner is not None:
                name_node = inner.child_by_field_name("name")
                if name_node is not None:
                    bound_by_def.add(_text(name_node))
        seen_assign: set[str] = set()
        overload_count: dict[str, int] = {}
        getters: dict[str, bool] = {}
        for stmt, inner, decorators in stmts:
            if inner is not None:
                self.definition(stmt, inner, decorators, chain, overload_count, getters)
            elif not in_function:
                self.assignment(stmt, chain, bound_by_def, seen_assign)

    def _statements(self, container: Node) -> Iterator[tuple[Node, Node | None, tuple[str, ...]]]:
        for stmt in container.named_children:
            t = stmt.type
            if t == "decorated_definition":
                inner = stmt.child_by_field_name("definition")
                if inner is not None and inner.type in _SCOPE_NODES:
                    decs = tuple(_decorator_name(c) for c in stmt.named_children if c.type == "decorator")
                    yield stmt, inner, decs
            elif t in _SCOPE_NODES:
                yield stmt, stmt, ()
            elif t in ("expression_statement", "type_alias_statement"):
                yield stmt, None, ()
            elif t.endswith("_statement") or t.endswith("_clause"):
                for block in _blocks(stmt):
                    yield from self._statements(block)

    def definition(self, outer: Node, node: Node, decorators: tuple[str, ...],
                   chain: tuple[tuple[str, str], ...], overload_count: dict[str, int],
                   getters: dict[str, bool]) -> None:
        name_node = node.child_by_field_name("name")
        if name_node is None:
            return
        name = _text(name_node)
        is_class = node.type == "class_definition"
        kind = "class" if is_class else "function"
        qual_name = name
        overload: int | None = None
        if not is_class:
            if _is_overload(decorators):
                overload_count[name] = overload_count.get(name, 0) + 1
                overload = overload_count[name]
            elif any(d in ("property", "abc.abstractproperty", "abstractproperty")
                     or d.endswith(".property") for d in decorators):
                kind = "property"
                getters[name] = True
            elif f"{name}.setter" in decorators:
                kind, qual_name = "property.setter", f"{name}.setter"
            elif f"{name}.deleter" in decorators:
                kind, qual_name = "property.deleter", f"{name}.deleter"
        step = "class" if is_class else "def"
        new_chain = chain + tuple((step, part) for part in qual_name.split("."))
        qualname = ".".join(n for _, n in new_chain)
        body = node.child_by_field_name("body")
        colon_end = None
        for child in node.children:
            if child.type == ":":
                colon_end = child.end_point
            if child.type == "block":
                break
        sig_end = _pt(colon_end) if colon_end is not None else _pt(node.end_point)
        self.out.append(Definition(
            qualname=qualname, name=name, kind=kind, chain=new_chain, overload=overload,
            is_async=bool(node.children) and node.children[0].type == "async",
            decorators=decorators, name_span=_span(name_node), def_span=_span(outer),
            sig_span=(_pt(node.start_point), sig_end),
            body_span=_span(body) if body is not None else None,
            doc_span=_docstring_span(node), node=node))
        if body is not None and (is_class or self._may_nest(body)):
            self.scope(body, new_chain, in_function=not is_class)

    def assignment(self, stmt: Node, chain: tuple[tuple[str, str], ...],
                   bound_by_def: set[str], seen: set[str]) -> None:
        if stmt.type == "type_alias_statement":
            left = stmt.child_by_field_name("left")
            right = stmt.child_by_field_name("right")
            targets = [n for n in _identifiers(left)] if left is not None else []
            sig_end = _pt(left.end_point) if left is not None else _pt(stmt.end_point)
            self._emit_assign(stmt, targets, chain, bound_by_def, seen, sig_end, right)
            return
        if stmt.named_child_count != 1 or stmt.named_children[0].type != "assignment":
            return
        node = stmt.named_children[0]
        targets: list[Node] = []
        right: Node | None = None
        sig_end = _pt(node.end_point)
        cur: Node | None = node
        first = True
        while cur is not None and cur.type == "assignment":
            left = cur.child_by_field_name("left")
            if left is not None:
                targets.extend(_identifiers(left))
            if first:
                typ = cur.child_by_field_name("type")
                sig_end = _pt((typ or left or cur).end_point)
                first = False
            right = cur.child_by_field_name("right")
            cur = right
        self._emit_assign(stmt, targets, chain, bound_by_def, seen, sig_end, right)

    def _emit_assign(self, stmt: Node, targets: list[Node], chain: tuple[tuple[str, str], ...],
                     bound_by_def: set[str], seen: set[str], sig_end: Point, right: Node | None) -> None:
        nxt = stmt.next_named_sibling
        doc = None
        if (nxt is not None and nxt.type == "expression_statement" and nxt.named_child_count == 1
                and nxt.named_children[0].type in ("string", "concatenated_string")):
            doc = _span(nxt.named_children[0])
        for ident in targets:
            name = _text(ident)
            if name in seen or name in bound_by_def:
                continue
            seen.add(name)
            new_chain = chain + (("assign", name),)
            self.out.append(Definition(
                qualname=".".join(n for _, n in new_chain), name=name, kind="variable",
                chain=new_chain, overload=None, is_async=False, decorators=(),
                name_span=_span(ident), def_span=_span(stmt),
                sig_span=(_pt(stmt.start_point), sig_end),
                body_span=_span(right) if right is not None else None,
                doc_span=doc, node=stmt))


def _identifiers(target: Node) -> Iterator[Node]:
    """Plain names bound by an assignment target (``a``, ``a, b``, ``[a, *b]``)."""
    if target.type == "identifier":
        yield target
    elif target.type in ("pattern_list", "tuple_pattern", "list_pattern", "tuple", "list",
                         "list_splat_pattern", "parenthesized_expression", "type"):
        for child in target.named_children:
            yield from _identifiers(child)


def iter_descendants(node: Node, node_type: str) -> Iterator[Node]:
    """Descendants of ``node`` of type ``node_type`` in document order (pre-order)."""
    cursor = node.walk()
    depth = 0
    # Pre-order walk with a TreeCursor: visit, go down, else right, else up.
    while True:
        if depth > 0 and cursor.node is not None and cursor.node.type == node_type:
            yield cursor.node
        if cursor.goto_first_child():
            depth += 1
            continue
        while depth > 0 and not cursor.goto_next_sibling():
            cursor.goto_parent()
            depth -= 1
        if depth == 0:
            return
