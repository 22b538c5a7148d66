"""What a module shows other files, statement by statement (for the affected-files rule).

Another file sees a module only through the names it binds at module level,
and the type of each name comes from the top-level statement(s) that bind it
(plus, for a class, its body).  So when a module changes, the names whose
binding statements changed are its changed *exports*; a statement that uses a
changed name (outside a sealed body, below) changes the names it binds too.
An importer is affected only if it mentions a changed export; its own exports
change only through its statements that mention one (diagnostics/affected.py).

A function's body is *sealed* when no other file can see it: the function
has a return annotation (its type is its signature), no ``abstract``
decorator (an abstract method's trivial body matters to ``super()`` calls),
no signature type comment, it is at module level or a method of a
module-level class that does not list ``Protocol`` among its bases (a protocol
method's trivial body matters), and its body declares no ``global`` or
``nonlocal`` and assigns or deletes no attribute (``self.x = ...`` declares a
member).  Sealed bodies are left out of the comparison, except whether they
contain ``yield`` (a generator's type differs).

Each top-level statement is compared as its syntax tree (sealed bodies
masked, docstrings left out), by the names it binds: comments, blank lines,
formatting and moving statements around do not count.  ``# pyright:`` comments
anywhere count (they change how the module is analysed).  Identifiers are
matched by name, with no scoping: a local variable that shares a changed name
only costs a needless pull.  Any doubt answers ``None``: every export may have
changed (a statement that binds nothing changed or uses a changed name, with a
binding statement after it: it may make it unreachable; ``__getattr__``,
``__all__`` or a wildcard import changed).

A changed export whose change lies only inside the bodies of *hoverable*
functions (module-level functions and methods of module-level non-protocol
classes, not abstract, whose bodies reach nothing outside) may still have the
same type: :func:`body_changes` names those functions, and the reward runner
asks the server for their types before and after the step
(:mod:`lanser.diagnostics.exports`); an export whose functions all kept their
type is not a changed export.
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
class Func:
    """A hoverable function of a top-level statement: where its name is (0-based line, UTF-16
    column: where the server is asked for its type) and its body's syntax tree."""

    qualname: str
    line: int
    col: int
    body: str
    decorated: bool
    is_async: bool


@dataclass(frozen=True)
class Unit:
    """One top-level statement: the names it binds, the names it uses (outside sealed
    bodies), its syntax tree with sealed bodies masked (``key``: what is compared) and with
    every hoverable body masked (``shell``), and its hoverable functions."""

    binds: frozenset[str]
    uses: frozenset[str]
    key: str
    shell: str = ""
    funcs: tuple[Func, ...] = ()


@dataclass(frozen=True)
class Interface:
    units: tuple[Unit, ...]
    identifiers: frozenset[str]             # every name the file mentions anywhere
    bare: frozenset[str]                    # names used other than as ``name.attr``
    bindings: tuple[tuple[str, str], ...]   # (name, dotted module it may bind): module objects
    directives: tuple[str, ...]             # ``# pyright:`` comments
    dunder_all: frozenset[str] | None = frozenset()  # ``__all__``'s names (None: not static)
    defines_all: bool = False               # whether the module assigns ``__all__``


def is_docstring(node: ast.AST) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


@dataclass
class _Walk:
    """What one walk of a subtree found (see :meth:`NameWalker.walk`)."""

    found: set[str]
    reaches_out: bool = False   # ``global``/``nonlocal``, or an attribute assigned or deleted
    yields: bool = False        # ``yield`` outside nested functions, lambdas and classes


class NameWalker:
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
            if id(n) in skip or is_docstring(n):
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


def is_protocol(cls: ast.ClassDef) -> bool:
    for base in cls.bases:
        node = base.value if isinstance(base, ast.Subscript) else base
        name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
        if not name or name.endswith("Protocol"):
            return True  # (an expression we cannot name: as careful as a protocol)
    return False


def is_abstract(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """An ``abstract`` decorator (an abstract method's trivial body matters to ``super()``)."""
    for d in fn.decorator_list:
        for n in ast.walk(d):
            name = n.id if isinstance(n, ast.Name) else n.attr if isinstance(n, ast.Attribute) else ""
            if "abstract" in name.lower():
                return True
    return False


def _may_seal(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """The signature half of sealing: a return annotation, no signature type comment (the
    hoverable half is :func:`_candidates`, the body half :class:`_Walk`'s ``reaches_out``)."""
    return fn.returns is not None and fn.type_comment is None


def _candidates(stmt: ast.stmt) -> list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, str]]:
    """(function, qualname) of a top-level statement whose body other files may never see:
    the statement itself, or a method of a non-protocol class; not abstract."""
    if isinstance(stmt, _FUNCTIONS):
        return [] if is_abstract(stmt) else [(stmt, stmt.name)]
    if isinstance(stmt, ast.ClassDef) and not is_protocol(stmt):
        return [(f, f"{stmt.name}.{f.name}") for f in stmt.body if isinstance(f, _FUNCTIONS) and not is_abstract(f)]
    return []


_OWNS_DOCSTRING = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_DEF_PREFIX = re.compile(rb"(?:async\s+)?def\s+")


_CLOSE_NODE, _CLOSE_LIST = object(), object()


def dump(node: ast.AST, masked: dict[int, str] | None = None) -> str:
    """``node``'s syntax tree as text, without positions, comments or docstrings; the body of
    a node whose id is in ``masked`` is replaced by the mark it maps to."""
    masked = masked or {}
    out: list[str] = []
    stack: list[object] = [node]
    while stack:
        x = stack.pop()
        if x is _CLOSE_NODE:
            out.append(")")
        elif x is _CLOSE_LIST:
            out.append("]")
        elif isinstance(x, ast.AST):
            out.append(type(x).__name__ + "(")
            stack.append(_CLOSE_NODE)
            for name in reversed(x._fields):
                v = getattr(x, name, None)
                if name == "body" and id(x) in masked:
                    v = masked[id(x)]
                elif name == "body" and isinstance(x, _OWNS_DOCSTRING) and v is not None:
                    v = _without_docstring(v)
                stack.append(v)
        elif isinstance(x, list):
            out.append("[")
            stack.append(_CLOSE_LIST)
            stack.extend(reversed(x))
        else:
            out.append(repr(x) + ",")
    return "".join(out)


def _without_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    return body[1:] if body and is_docstring(body[0]) else body


class SourcePositions:
    """Where names are in ``text`` (ast columns are UTF-8 byte offsets; the server's are UTF-16)."""

    def __init__(self, text: str) -> None:
        self.lines = text.encode("utf-8").split(b"\n")

    def name_position(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[int, int]:
        """0-based line and UTF-16 column of ``fn``'s name."""
        line = self.lines[fn.lineno - 1]
        m = _DEF_PREFIX.match(line, fn.col_offset)
        start = m.end() if m else fn.col_offset
        return fn.lineno - 1, len(line[:start].decode("utf-8", errors="replace").encode("utf-16-le")) // 2


def _position(src: "SourcePositions", line: int, col: int) -> tuple[int, int]:
    """An ast position (1-based line, UTF-8 byte column) as the server's (0-based, UTF-16)."""
    text = src.lines[line - 1][:col].decode("utf-8", errors="replace")
    return line - 1, len(text.encode("utf-16-le")) // 2


def _name_probe(src: "SourcePositions", node: ast.Name, label: str) -> Func:
    line, col = _position(src, node.lineno, node.col_offset)
    return Func(label, line, col, "", False, False)


def _member_probes(src: "SourcePositions", fn: ast.FunctionDef | ast.AsyncFunctionDef, cls: str) -> list[Func] | None:
    """The method's own type and every member it assigns (``self.x = ...``; pyright declares
    members through the method's first parameter only); None when it declares ``global`` or
    ``nonlocal``."""
    line, col = src.name_position(fn)
    out = [Func(f"{cls}.{fn.name}", line, col, "", bool(fn.decorator_list), isinstance(fn, ast.AsyncFunctionDef))]
    me = fn.args.posonlyargs[0].arg if fn.args.posonlyargs else fn.args.args[0].arg if fn.args.args else None
    seen: set[str] = set()
    for node in ast.walk(fn):
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            return None
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
            if not (isinstance(node.value, ast.Name) and node.value.id == me) or isinstance(node.ctx, ast.Del):
                continue  # pyright declares members by assignments through ``self`` only
            if node.attr not in seen and node.end_lineno == node.lineno:
                seen.add(node.attr)
                end = node.end_col_offset or 0
                line, col = _position(src, node.lineno, end - len(node.attr.encode("utf-8")))
                out.append(Func(f"{cls}.{node.attr}", line, col, "", False, False))
    return out


def _targets(stmt: ast.stmt) -> list[ast.Name] | None:
    """The names an assignment binds (None: a target that is not a plain name)."""
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] \
        if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)) else None
    if not targets or not all(isinstance(t, ast.Name) for t in targets):
        return None
    return list(targets)  # type: ignore[arg-type]


def _unit_probes(stmt: ast.stmt, names: set[str], src: "SourcePositions") -> list[Func] | None:
    """Where to ask the server for the types a top-level statement shows other files, as far
    as they can depend on ``names``; None when that cannot be asked."""
    walk = NameWalker().walk
    if isinstance(stmt, _FUNCTIONS):
        if walk(list(stmt.decorator_list)).found & names:
            return None
        line, col = src.name_position(stmt)
        return [Func(stmt.name, line, col, "", bool(stmt.decorator_list), isinstance(stmt, ast.AsyncFunctionDef))]
    if isinstance(stmt, ast.ClassDef):
        if walk([*stmt.bases, *stmt.keywords, *stmt.decorator_list]).found & names:
            return None
        out: list[Func] = []
        for item in stmt.body:
            if is_docstring(item) or not (walk([item]).found & names):
                continue
            if isinstance(item, _FUNCTIONS):
                probes = _member_probes(src, item, stmt.name)
            else:
                targets = _targets(item)
                probes = None if targets is None else [_name_probe(src, t, f"{stmt.name}.{t.id}") for t in targets]
            if probes is None:
                return None
            out += probes
        return out
    targets = _targets(stmt)
    return None if targets is None else [_name_probe(src, t, t.id) for t in targets]


def probes_for(rel: str, text: str, names: set[str] | frozenset[str]) -> dict[str, list[Func]]:
    """For each name the module binds with statements that use ``names``: where the server can
    be asked for the type other files see (an empty list: an import of another name, which
    keeps its type; a name bound by a statement that cannot be asked about is left out: it
    counts as changed)."""
    try:
        tree = ast.parse(text, filename=rel, type_comments=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    src = SourcePositions(text)
    out: dict[str, list[Func]] = {}
    bad: set[str] = set()
    for stmt in tree.body:
        binds = _binds(stmt)
        if not binds or not (NameWalker().walk([stmt]).found & set(names)):
            continue
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):  # a re-export is what it imports
            for a in stmt.names:
                bound = a.asname or a.name.split(".")[0]
                if a.name.split(".")[0] in names or bound in names:
                    bad.add(bound)
                else:
                    out.setdefault(bound, [])
            continue
        probes = _unit_probes(stmt, set(names), src)
        if probes is None:
            bad |= binds
            continue
        for b in binds:
            out.setdefault(b, []).extend(probes)
    return {name: ps for name, ps in out.items() if name not in bad}


def _import_uses(stmt: ast.Import | ast.ImportFrom) -> set[str]:
    """An import uses the names it takes from the module (a module binding is matched by
    diagnostics/affected.py)."""
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
    src = SourcePositions(text)
    names = NameWalker()
    units = []
    for stmt in tree.body:
        if is_docstring(stmt):
            continue
        candidates = _candidates(stmt)
        bodies = [s for fn, _ in candidates for s in fn.body]
        uses = names.walk([stmt], {id(s) for s in bodies}).found
        hidden: dict[int, str] = {}  # every hoverable body -> a placeholder
        shown: dict[str, str] = {}   # placeholder -> what the key shows there
        funcs = []
        for fn, qualname in candidates:
            body = names.walk(list(fn.body))
            if body.reaches_out:
                uses |= body.found  # its body is part of the statement: a member, a global
                continue
            mark = "<body with yield>" if body.yields else "<body>"
            body_key = dump(ast.Module(body=_without_docstring(fn.body), type_ignores=[]))
            slot = hidden[id(fn)] = f"\x00{len(hidden)}{mark}"
            if _may_seal(fn):
                shown[slot] = mark
            else:
                shown[slot] = body_key
                uses |= body.found
            line, col = src.name_position(fn)
            funcs.append(Func(qualname, line, col, body_key, bool(fn.decorator_list),
                              isinstance(fn, ast.AsyncFunctionDef)))
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            uses = _import_uses(stmt)
        shell = dump(stmt, hidden)
        key = shell
        for slot, shows in shown.items():
            key = key.replace(repr(slot), repr(shows))
        for slot in shown:
            shell = shell.replace(repr(slot), repr(slot[slot.index("<"):]))
        units.append(Unit(frozenset(_binds(stmt)), frozenset(uses), key, shell, tuple(funcs)))
    defines_all, dunder_all = _dunder_all(text, tree)
    return Interface(units=tuple(units), identifiers=frozenset(names.found), bare=frozenset(names.bare),
                     bindings=tuple(_bindings(imports if imports is not None else import_statements(tree), rel)),
                     directives=tuple(m.group(0).strip() for m in _DIRECTIVE.finditer(text)),
                     dunder_all=dunder_all, defines_all=defines_all)


def _strings(node: ast.AST | None) -> list[str] | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.List, ast.Tuple)):
        out = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        return out if len(out) == len(node.elts) else None
    return None


def _dunder_all(text: str, tree: ast.Module) -> tuple[bool, frozenset[str] | None]:
    """Whether the module defines ``__all__`` and, if every mention of it is a literal
    assignment, ``+=``, ``.append``, ``.extend`` or ``.remove`` of strings, the names it may
    hold (None: built some other way, which the server may or may not follow)."""
    if "__all__" not in text:
        return False, frozenset()
    names: set[str] = set()
    defines = False
    literal: set[int] = set()  # the ``__all__`` Name nodes of the literal forms
    mentions: list[ast.Name] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id == "__all__":
                mentions.append(node)
            continue
        target: ast.AST | None = None
        value: ast.AST | None = None
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                defines = True
                target, value = (targets[0] if len(targets) == 1 else None), node.value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and isinstance(node.func.value, ast.Name) and node.func.value.id == "__all__"
              and node.func.attr in ("append", "extend", "remove") and len(node.args) == 1 and not node.keywords):
            target, value = node.func.value, node.args[0]
        found = _strings(value) if target is not None else None
        if found is not None and target is not None:
            literal.add(id(target))
            names.update(found)
    static = all(id(n) in literal for n in mentions)
    return defines, (frozenset(names) if static else None)


def star_visible(iface: Interface | None, names: frozenset[str]) -> frozenset[str] | None:
    """Of a module's changed ``names``, those ``from module import *`` binds in an importer:
    the names of a static ``__all__``, else those without a leading underscore (as the server
    decides); None: cannot tell (``__all__`` changed or is built dynamically)."""
    if iface is None or "__all__" in names:
        return None
    if not iface.defines_all:
        return frozenset(n for n in names if not n.startswith("_"))
    return None if iface.dunder_all is None else names & iface.dunder_all


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


def exports_using(iface: Interface, names: frozenset[str] | set[str],
                  same_type: frozenset[str] = frozenset()) -> frozenset[str] | None:
    """The names the module binds with statements that use ``names`` (directly or through
    other such names); None when a statement that binds nothing uses one before some
    binding statement (it may make what follows unreachable).  A statement binding only
    names in ``same_type`` (the server confirmed they kept their type) changes nothing."""
    changed: set[str] = set()
    used = set(names)
    pending = _effective(iface.units)
    grew = True
    while grew:
        grew = False
        rest = []
        for unit in pending:
            if unit.uses & used:
                if unit.binds and unit.binds <= same_type:
                    continue
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


def _index(units: tuple[Unit, ...]) -> tuple[dict[str, list[Unit]], list[str]]:
    """The effective units binding each name, and the keys of those binding nothing."""
    by_name: dict[str, list[Unit]] = {}
    unnamed: list[str] = []
    for u in _effective(units):
        for name in u.binds:
            by_name.setdefault(name, []).append(u)
        if not u.binds:
            unnamed.append(u.key)
    return by_name, unnamed


def direct_changes(old: Interface, new: Interface) -> frozenset[str] | None:
    """The names whose own binding statements differ (None: any name may have changed)."""
    if old.directives != new.directives:
        return ALL_EXPORTS
    old_by, old_unnamed = _index(old.units)
    new_by, new_unnamed = _index(new.units)
    if old_unnamed != new_unnamed:
        return ALL_EXPORTS
    changed = frozenset(n for n in old_by.keys() | new_by.keys()
                        if [u.key for u in old_by.get(n, ())] != [u.key for u in new_by.get(n, ())])
    return ALL_EXPORTS if changed & _EVERYTHING else changed


def changed_exports(old: Interface, new: Interface, same_type: frozenset[str] = frozenset()) -> frozenset[str] | None:
    """The names whose type other files see may differ between ``old`` and ``new``; None when
    any may.  ``same_type``: changed names the server confirmed kept their type
    (:func:`body_changes`); they change nothing, nor do the statements using them."""
    direct = direct_changes(old, new)
    if direct is None:
        return ALL_EXPORTS
    changed = direct - same_type
    if not changed:
        return frozenset()
    more = exports_using(new, changed)
    if more is None:
        return ALL_EXPORTS
    out = frozenset(changed | more)
    return ALL_EXPORTS if out & _EVERYTHING else out


def body_changes(old: Interface, new: Interface) -> dict[str, list[tuple[Func, Func]]]:
    """For each directly changed name whose binding statements differ only inside hoverable
    function bodies: those functions, as (before, after) pairs.  If every one of them kept
    its type (and no call site re-infers its body), the name did not change."""
    direct = direct_changes(old, new)
    if not direct:
        return {}
    old_by, _ = _index(old.units)
    new_by, _ = _index(new.units)
    out: dict[str, list[tuple[Func, Func]]] = {}
    for name in sorted(direct):
        olds, news = old_by.get(name, []), new_by.get(name, [])
        if not olds or len(olds) != len(news):
            continue
        pairs: list[tuple[Func, Func]] = []
        for uo, un in zip(olds, news):
            if uo.shell != un.shell or [f.qualname for f in uo.funcs] != [f.qualname for f in un.funcs]:
                break
            pairs += [(a, b) for a, b in zip(uo.funcs, un.funcs) if a.body != b.body]
        else:
            if pairs:
                out[name] = pairs
    return out


__all__ = ["ALL_EXPORTS", "Func", "Interface", "NameWalker", "SourcePositions", "Unit", "body_changes",
           "changed_exports", "direct_changes", "dump", "exports_using", "import_statements", "interface_of",
           "is_abstract", "is_docstring", "is_protocol", "parse_interface", "probes_for", "star_visible"]
