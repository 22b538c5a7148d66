"""A class changed only inside its methods: which of its members other files can see changed.

Most edits of a class touch a method's body, and an unannotated method's body is
not sealed (diagnostics/interface.py): it declares members (``self.x = ...``)
and infers the method's return type.  Counting the whole class as changed then
pulls every file that mentions the class, on django the tenth of the tree that
mentions ``Model``.  Yet other files see such a change only through the
members involved: the changed methods' own types and the members their bodies
assign.  When the class statement is otherwise unchanged (its bases, keywords,
decorators and class-level statements, compared as syntax trees), those are
asked of the server before and after the step (hover at the method's name and
at every assignment through ``self``), and the class stands for the members
whose types changed: every file that mentions one of those names (attribute,
string, anything) is pulled and its statements that use one change its exports
(diagnostics/affected.py).

Counted as changed without asking: a method added, removed or re-signed
(decorators, parameters, return annotation), an abstract method's body (its
body matters to ``super()`` calls), a member assigned a different number of
times or over several lines.  A dunder among the changed members (``__init__``
is called through the class name, ``__eq__`` by an operator) makes the whole
class changed, as does ``global`` or ``nonlocal`` in a changed method, or a
protocol.  Inside the class, anything mentioning a changed member (another
method that reads it, a ``property(...)`` of a changed method) changes too
(:func:`settle`).
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass

from .interface import Func, NameWalker, SourcePositions, dump, is_abstract, is_docstring, is_protocol

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass(frozen=True)
class MemberChange:
    """One class's step: members changed for sure, members to ask about (label ``C.m`` ->
    before/after pairs), and per class-body item what it defines and what it mentions."""

    cls: str
    changed: frozenset[str]
    probes: dict[str, list[tuple[Func, Func]]]
    items: tuple[tuple[frozenset[str], frozenset[str]], ...]


def _classes(tree: ast.Module) -> dict[str, list[ast.ClassDef]]:
    out: dict[str, list[ast.ClassDef]] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.ClassDef):
            out.setdefault(stmt.name, []).append(stmt)
    return out


def _frame(cls: ast.ClassDef) -> str:
    """The class without its methods (bases, keywords, decorators, class-level statements)."""
    frame = copy.copy(cls)
    frame.body = [s for s in cls.body if not isinstance(s, _FUNCTIONS) and not is_docstring(s)]
    return dump(frame)


def _methods(cls: ast.ClassDef) -> dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]]:
    out: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
    for s in cls.body:
        if isinstance(s, _FUNCTIONS):
            out.setdefault(s.name, []).append(s)
    return out


def _signature(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    parts: list[ast.AST] = [fn.args, *fn.decorator_list, *([fn.returns] if fn.returns else [])]
    return "|".join([type(fn).__name__, repr(fn.type_comment), *(dump(p) for p in parts)])


def _body(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    return dump(ast.Module(body=[s for i, s in enumerate(fn.body) if i or not is_docstring(s)], type_ignores=[]))


def _assignments(src: SourcePositions, fn: ast.FunctionDef | ast.AsyncFunctionDef,
                 cls: str) -> dict[str, list[Func | None]] | None:
    """Every member assignment through the method's first parameter, in order (None for one
    spread over lines: no single place to ask); None when the method declares ``global`` or
    ``nonlocal``."""
    me = fn.args.posonlyargs[0].arg if fn.args.posonlyargs else fn.args.args[0].arg if fn.args.args else None
    out: dict[str, list[Func | None]] = {}
    nodes = sorted((n for n in ast.walk(fn) if isinstance(n, (ast.Attribute, ast.Global, ast.Nonlocal))),
                   key=lambda n: (n.lineno, n.col_offset))
    for node in nodes:
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            return None
        assert isinstance(node, ast.Attribute)
        if not isinstance(node.ctx, ast.Store) or not (isinstance(node.value, ast.Name) and node.value.id == me):
            continue
        if node.end_lineno != node.lineno:
            out.setdefault(node.attr, []).append(None)
            continue
        line = src.lines[node.lineno - 1]
        start = (node.end_col_offset or 0) - len(node.attr.encode("utf-8"))
        col = len(line[:start].decode("utf-8", errors="replace").encode("utf-16-le")) // 2
        out.setdefault(node.attr, []).append(Func(f"{cls}.{node.attr}", node.lineno - 1, col, "", False, False))
    return out


def _items(cls: ast.ClassDef) -> tuple[tuple[frozenset[str], frozenset[str]], ...]:
    """Per class-body item: the members it defines (a method: its name and the members it
    assigns; a class-level statement: the names it binds) and the names it reads (a member
    it only assigns is not read: its other assignments do not depend on this one)."""
    out = []
    for s in cls.body:
        if is_docstring(s):
            continue
        names = NameWalker()
        names.walk([s])
        stores = {n.attr for n in ast.walk(s) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)}
        reads = {n.attr for n in ast.walk(s) if isinstance(n, ast.Attribute) and not isinstance(n.ctx, ast.Store)}
        reads |= {n.target.attr for n in ast.walk(s) if isinstance(n, ast.AugAssign)
                  and isinstance(n.target, ast.Attribute)}
        if isinstance(s, _FUNCTIONS):
            defines = {s.name} | stores
            mentions = names.found - (stores - reads) - {s.name}
        else:
            defines = {n.id for n in ast.walk(s) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            mentions = names.found - (stores - reads)
        out.append((frozenset(defines), frozenset(mentions)))
    return tuple(out)


def member_changes(rel: str, old_text: str, new_text: str, names: frozenset[str]) -> dict[str, MemberChange]:
    """For each class among ``names`` (a file's directly changed names) that changed only
    inside its methods: what changed and what to ask (see the module's docstring)."""
    try:
        old_tree = ast.parse(old_text, filename=rel, type_comments=True)
        new_tree = ast.parse(new_text, filename=rel, type_comments=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    old_src, new_src = SourcePositions(old_text), SourcePositions(new_text)
    old_classes, new_classes = _classes(old_tree), _classes(new_tree)
    out: dict[str, MemberChange] = {}
    for name in sorted(names):
        olds, news = old_classes.get(name, []), new_classes.get(name, [])
        if len(olds) != 1 or len(news) != 1:
            continue
        old, new = olds[0], news[0]
        if is_protocol(new) or is_protocol(old) or _frame(old) != _frame(new):
            continue
        found = _compare(old, new, old_src, new_src)
        if found is not None:
            changed, probes = found
            out[name] = MemberChange(name, frozenset(changed), probes, _items(new))
    return out


def _compare(old: ast.ClassDef, new: ast.ClassDef, old_src: SourcePositions,
             new_src: SourcePositions) -> tuple[set[str], dict[str, list[tuple[Func, Func]]]] | None:
    changed: set[str] = set()
    probes: dict[str, list[tuple[Func, Func]]] = {}
    old_methods, new_methods = _methods(old), _methods(new)
    for method in sorted(old_methods.keys() | new_methods.keys()):
        before, after = old_methods.get(method, []), new_methods.get(method, [])
        if len(before) != len(after):
            changed.add(method)
            continue
        for fo, fn in zip(before, after):
            if _signature(fo) != _signature(fn):
                changed.add(method)
                continue
            if _body(fo) == _body(fn):
                continue
            if is_abstract(fn):
                changed.add(method)
                continue
            old_members = _assignments(old_src, fo, old.name)
            new_members = _assignments(new_src, fn, new.name)
            if old_members is None or new_members is None:
                return None
            line, col = old_src.name_position(fo)
            line2, col2 = new_src.name_position(fn)
            label = f"{new.name}.{method}"
            deco, is_async = bool(fn.decorator_list), isinstance(fn, ast.AsyncFunctionDef)
            probes.setdefault(label, []).append((Func(label, line, col, _body(fo), deco, is_async),
                                                 Func(label, line2, col2, _body(fn), deco, is_async)))
            for attr in sorted(old_members.keys() | new_members.keys()):
                a, b = old_members.get(attr, []), new_members.get(attr, [])
                if len(a) != len(b) or None in a or None in b:
                    changed.add(attr)
                    continue
                probes.setdefault(f"{new.name}.{attr}", []).extend(
                    (x, y) for x, y in zip(a, b) if x is not None and y is not None)
    return changed, probes


def settle(change: MemberChange, kept: frozenset[str]) -> frozenset[str] | None:
    """The members of ``change``'s class whose types changed, given the labels the server
    confirmed kept their type; grown through the class body (an item mentioning a changed
    member changes what it defines).  None: the whole class changed (a dunder did)."""
    changed = set(change.changed)
    prefix = change.cls + "."
    changed |= {label[len(prefix):] for label in change.probes if label not in kept}
    grew = True
    while grew:
        grew = False
        for defines, mentions in change.items:
            if mentions & changed and not defines <= changed:
                changed |= defines
                grew = True
    if any(m.startswith("__") and m.endswith("__") for m in changed):
        return None
    return frozenset(changed)


__all__ = ["MemberChange", "member_changes", "settle"]
