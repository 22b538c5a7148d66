"""What a module shows other files, statement by statement (for the affected-files rule).

Another file sees a module only through the names it binds at module level,
and the type of each name comes from the top-level statement(s) that bind it
(plus, for a class, its body).  So when a module changes, the names whose
binding statements changed are its changed *exports*; a statement that uses a
changed name (outside a sealed body, below) changes the names it binds too.
An importer is affected only if it mentions a changed export; its own exports
change only through its statements that mention one (rewards/affected.py).

A function's body is *sealed* when no other file can see it: the function
has a return annotation (its type is its signature), no ``abstract``
decorator (an abstract method's trivial body matters to ``super()`` calls),
no signature type comment, it is at module level or a method of a
module-level class that does not list ``Protocol`` among its bases (a protocol
method's trivial body matters), and its body declares no ``global`` or
``nonlocal`` and assigns or deletes no attribute (``self.x = ...`` declares a
member).  Sealed bodies are left out of the comparison, except whether they
contain ``yield`` (a generator's type differs).

Each top-level statement is compared as its source text (sealed bodies
masked), by the names it binds: blank lines and comments between statements
and moving statements around do not count; a comment inside one does (that
only costs pulls).  ``# pyright:`` comments anywhere count (they change how
the module is analysed).  Module docstrings do not.  Identifiers are
matched by name, with no scoping: a local variable that shares a changed
name only costs a needless pull.  Any doubt answers ``None``: every export
may have changed (a statement that binds nothing changed or uses a changed
name, with a binding statement after it: it may make it unreachable;
``__getattr__``, ``__all__`` or a wildcard import changed).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DIRECTIVE = re.compile(r"#\s*pyright\s*:.*")
ALL_EXPORTS = None  # "every export may have changed"
# Exports whose change reaches names nobody mentions: ``__getattr__`` answers for any name,
# ``__all__`` decides what a stub re-exports, ``*`` (a wildcard import) brings unnamed names.
_EVERYTHING = frozenset({"__getattr__", "__all__", "*"})


@dataclass(frozen=True)
class Unit:
    """One top-level statement: the names it binds, the names it uses (outside sealed
    bodies), and its source with sealed bodies masked (what is compared)."""

    binds: frozenset[str]
    uses: frozenset[str]
    key: str


@dataclass(frozen=True)
class Interface:
    units: tuple[Unit, ...]
    identifiers: frozenset[str]             # every name the file mentions anywhere
    bare: frozenset[str]                    # names used other than as ``name.attr``
    bindings: tuple[tuple[str, str], ...]   # (name, dotted module it may bind): module objects
    directives: tuple[str, ...]             # ``# pyright:`` comments


def _is_docstring(node: ast.AST) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


@dataclass
class _Walk:
    """What one walk of a subtree found (see :meth:`_Names.walk`)."""

    found: set[str]
    reaches_out: bool = False   # ``global``/``nonlocal``, or an attribute assigned or deleted
    yields: bool = False        # ``yield`` outside nested functions, lambdas and classes


class _Names:
    """Walks subtrees once each, gathering the identifiers they mention (names,
    attributes, imported names, arguments, words of string constants: forward references)
    and the names used other than as ``name.attr``; docstrings and ``skip``ped nodes are
    left out."""

    def __init__(self) -> None:
        self.found: set[str] = set()
        self.bare: set[str] = set()

    def walk(self, nodes: list[ast.AST], skip: frozenset[int] | set[int] = frozenset()) -> _Walk:
        out = _Walk(set())
        found = out.found
        attr_bases: set[int] = set()
        stack: list[tuple[ast.AST, bool]] = [(n, False) for n in nodes]
        while stack:
            n, nested = stack.pop()
            if id(n) in skip or _is_docstring(n):
                continue
            if isinstance(n, ast.Name):
                found.add(n.id)
                if id(n) not in attr_bases:
                    self.bare.add(n.id)
            elif isinstance(n, ast.Attribute):
                found.add(n.attr)
                attr_bases.add(id(n.value))
                if isinstance(n.ctx, (ast.Store, ast.Del)):
                    out.reaches_out = True
            elif isinstance(n, ast.alias):
                found.update(n.name.split("."))
                if n.asname:
                    found.add(n.asname)
            elif isinstance(n, _SCOPES):
                if not isinstance(n, ast.Lambda):
                    found.add(n.name)
                nested_here = True
                stack.extend((c, nested_here) for c in ast.iter_child_nodes(n))
                continue
            elif isinstance(n, ast.arg):
                found.add(n.arg)
            elif isinstance(n, ast.keyword) and n.arg:
                found.add(n.arg)
            elif isinstance(n, (ast.Global, ast.Nonlocal)):
                found.update(n.names)
                out.reaches_out = True
            elif isinstance(n, ast.Constant) and isinstance(n.value, str):
                found.update(_WORD.findall(n.value))
            elif isinstance(n, (ast.Yield, ast.YieldFrom)) and not nested:
                out.yields = True
            stack.extend((c, nested) for c in ast.iter_child_nodes(n))
        self.found |= found
        return out


def _binds(stmt: ast.stmt) -> set[str]:
    """Names a top-level statement binds in the module scope (nested scopes left out,
    except the walrus, which binds outside comprehensions)."""
    out: set[str] = set()
    stack: list[ast.AST] = [stmt]
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(n.name)
            if n is not stmt:
                continue
            stack.extend(n.decorator_list)  # evaluated in the module scope (a walrus binds there)
            if isinstance(n, ast.ClassDef):
                stack.extend([*n.bases, *n.keywords])
            else:
                stack.extend([n.args, *([n.returns] if n.returns else [])])
            continue  # the body is its own scope
        if isinstance(n, ast.Lambda):
            continue
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            out.add(n.id)
        elif isinstance(n, ast.NamedExpr) and isinstance(n.target, ast.Name):
            out.add(n.target.id)
        elif isinstance(n, ast.alias):
            out.add(n.asname or n.name.split(".")[0])
        elif isinstance(n, ast.ExceptHandler) and n.name:
            out.add(n.name)
        elif isinstance(n, (ast.MatchAs, ast.MatchStar)) and n.name:
            out.add(n.name)
        elif isinstance(n, ast.MatchMapping) and n.rest:
            out.add(n.rest)
        stack.extend(ast.iter_child_nodes(n))
    return out


def _is_protocol(cls: ast.ClassDef) -> bool:
    for base in cls.bases:
        node = base.value if isinstance(base, ast.Subscript) else base
        name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
        if not name or name.endswith("Protocol"):
            return True  # (an expression we cannot name: as careful as a protocol)
    return False


def _may_seal(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """The signature half of sealing: a return annotation, no signature type comment, no
    ``abstract`` decorator (the body half is :class:`_Walk`'s ``reaches_out``)."""
    if fn.returns is None or fn.type_comment is not None:
        return False
    for d in fn.decorator_list:
        for n in ast.walk(d):
            name = n.id if isinstance(n, ast.Name) else n.attr if isinstance(n, ast.Attribute) else ""
            if "abstract" in name.lower():
                return False
    return True


def _candidates(stmt: ast.stmt) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Functions of a top-level statement whose body may be sealed (where and signature)."""
    if isinstance(stmt, _FUNCTIONS):
        return [stmt] if _may_seal(stmt) else []
    if isinstance(stmt, ast.ClassDef) and not _is_protocol(stmt):
        return [f for f in stmt.body if isinstance(f, _FUNCTIONS) and _may_seal(f)]
    return []


class _Source:
    """Byte offsets of ``text`` (ast columns are UTF-8 byte offsets)."""

    def __init__(self, text: str) -> None:
        self.data = text.encode("utf-8")
        self.starts = [0]
        for line in self.data.splitlines(keepends=True):
            self.starts.append(self.starts[-1] + len(line))

    def offset(self, line: int, col: int) -> int:
        return self.starts[line - 1] + col

    def key(self, stmt: ast.stmt, sealed: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, bool]]) -> str:
        """The statement's source with each sealed body replaced by a mark (comments inside
        the statement count; a conservative comparison)."""
        first: ast.AST = stmt
        for d in getattr(stmt, "decorator_list", []):  # the statement's position is its ``def``
            if (d.lineno, d.col_offset) < (first.lineno, first.col_offset):  # type: ignore[attr-defined]
                first = d
        pos = self.offset(first.lineno, first.col_offset)  # type: ignore[attr-defined]
        end = self.offset(stmt.end_lineno or stmt.lineno, stmt.end_col_offset or 0)
        parts: list[bytes] = []
        for fn, yields in sealed:
            a = self.offset(fn.body[0].lineno, fn.body[0].col_offset)
            last = fn.body[-1]
            b = self.offset(last.end_lineno or last.lineno, last.end_col_offset or 0)
            parts += [self.data[pos:a], b"<sealed body with yield>" if yields else b"<sealed body>"]
            pos = b
        parts.append(self.data[pos:end])
        return b"".join(parts).decode("utf-8", errors="replace")


def _import_uses(stmt: ast.Import | ast.ImportFrom) -> set[str]:
    """An import uses the names it takes from the module (a module binding is matched by
    rewards/affected.py)."""
    out = set()
    for a in stmt.names:
        out.add(a.name.split(".")[0] if isinstance(stmt, ast.Import) else a.name)
        if a.asname:
            out.add(a.asname)
    return out


def _bindings(nodes: list[ast.Import | ast.ImportFrom], rel: str) -> list[tuple[str, str]]:
    """(bound name, dotted module) for every import that may bind a module object;
    relative modules as dotted paths from the workspace root."""
    here = rel.split("/")[:-1]
    out: set[tuple[str, str]] = set()
    for n in nodes:
        if isinstance(n, ast.Import):
            for a in n.names:
                if a.asname:
                    out.add((a.asname, a.name))
                else:
                    bits = a.name.split(".")
                    out.update((bits[0], ".".join(bits[:i + 1])) for i in range(len(bits)))
        else:
            if n.level:
                if n.level - 1 > len(here):
                    continue
                base = here[: len(here) - (n.level - 1)] + (n.module.split(".") if n.module else [])
            else:
                base = (n.module or "").split(".")
            for a in n.names:
                if a.name != "*":
                    out.add((a.asname or a.name, ".".join([*filter(None, base), a.name])))
    return sorted(out)


def import_statements(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of a module, at any depth (statement blocks only)."""
    out: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.AST] = list(tree.body)
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            out.append(n)
            continue
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            block = getattr(n, field, None)
            if isinstance(block, list):
                stack.extend(block)
    return out


def interface_of(rel: str, text: str, tree: ast.Module,
                 imports: list[ast.Import | ast.ImportFrom] | None = None) -> Interface:
    """The interface of the module at ``rel`` (``tree``: ``text`` parsed with type comments;
    ``imports``: its import statements, if already found)."""
    src = _Source(text)
    names = _Names()
    units = []
    for stmt in tree.body:
        if _is_docstring(stmt):
            continue
        candidates = _candidates(stmt)
        bodies = [s for fn in candidates for s in fn.body]
        uses = names.walk([stmt], {id(s) for s in bodies}).found
        sealed = []
        for fn in candidates:
            body = names.walk(list(fn.body))
            if body.reaches_out:
                uses |= body.found  # not sealed: its body is part of the statement
            else:
                sealed.append((fn, body.yields))
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            uses = _import_uses(stmt)
        units.append(Unit(frozenset(_binds(stmt)), frozenset(uses), src.key(stmt, sealed)))
    return Interface(units=tuple(units), identifiers=frozenset(names.found), bare=frozenset(names.bare),
                     bindings=tuple(_bindings(imports if imports is not None else import_statements(tree), rel)),
                     directives=tuple(m.group(0).strip() for m in _DIRECTIVE.finditer(text)))


def parse_interface(rel: str, text: str) -> Interface | None:
    try:
        return interface_of(rel, text, ast.parse(text, filename=rel, type_comments=True))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _effective(units: tuple[Unit, ...]) -> list[Unit]:
    """The units that matter to other files: all but the statements binding nothing after
    the last one that binds something (``if __name__ == "__main__": main()``: whatever they
    do, no export comes after them)."""
    last = max((i for i, u in enumerate(units) if u.binds), default=-1)
    return [u for i, u in enumerate(units) if u.binds or i < last]


def exports_using(iface: Interface, names: frozenset[str] | set[str]) -> frozenset[str] | None:
    """The names the module binds with statements that use ``names`` (directly or through
    other such names); None when a statement that binds nothing uses one before some
    binding statement (it may make what follows unreachable)."""
    changed: set[str] = set()
    used = set(names)
    pending = _effective(iface.units)
    grew = True
    while grew:
        grew = False
        rest = []
        for unit in pending:
            if unit.uses & used:
                if not unit.binds:
                    return ALL_EXPORTS
                new = unit.binds - changed
                changed |= unit.binds
                used |= new
                grew = grew or bool(new)
            else:
                rest.append(unit)
        pending = rest
    return frozenset(changed)


def changed_exports(old: Interface, new: Interface) -> frozenset[str] | None:
    """The names whose type other files see may differ between ``old`` and ``new``;
    None when any may."""
    if old.directives != new.directives:
        return ALL_EXPORTS

    def index(units: tuple[Unit, ...]) -> tuple[dict[str, list[str]], list[str]]:
        by_name: dict[str, list[str]] = {}
        unnamed: list[str] = []
        for u in _effective(units):
            for name in u.binds:
                by_name.setdefault(name, []).append(u.key)
            if not u.binds:
                unnamed.append(u.key)
        return by_name, unnamed

    old_by, old_unnamed = index(old.units)
    new_by, new_unnamed = index(new.units)
    if old_unnamed != new_unnamed:
        return ALL_EXPORTS
    changed = {n for n in old_by.keys() | new_by.keys() if old_by.get(n) != new_by.get(n)}
    if not changed:
        return frozenset()
    more = exports_using(new, changed)
    if more is None:
        return ALL_EXPORTS
    out = frozenset(changed | more)
    return ALL_EXPORTS if out & _EVERYTHING else out


__all__ = ["ALL_EXPORTS", "Interface", "Unit", "changed_exports", "exports_using", "import_statements",
           "interface_of", "parse_interface"]
