"""Stale selectors after real edits: every definition of several real modules is addressed
by each selector form before an edit and must land on its new place afterwards, or report
E/NOT_FOUND / E/AMBIGUOUS when it was deleted.

The expected new place is found independently of tree-sitter, with Python's ``ast``.
The edited files live in a temporary git repository whose first commit holds the
originals, so ``?v=<blob>`` can read the old text.
"""

from __future__ import annotations

import ast
import random
import re
import shlex
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from lanser.errors import Ambiguous, NotFound
from lanser.selectors import parse_selector, resolve_selector
from lanser.workspace import Workspace, blob_id

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "selectors"
GIT = shutil.which("git")
pytestmark = pytest.mark.skipif(GIT is None, reason="git is not installed")

FORMS = ("symbol", "ast", "anchor", "anchor-v", "cursor-v")


# -- independent truth: Python's ast ---------------------------------------------------------

@dataclass(frozen=True)
class Truth:
    qualname: str
    chain: tuple[tuple[str, str], ...]    # (class|def|var, name)
    line: int                             # 0-based line of the name
    col: int                              # 0-based code-point column of the name
    head_line: int                        # 0-based line of the def/class keyword or statement
    first_line: int                       # 0-based first line incl. decorators
    last_line: int                        # 0-based last line
    alone: bool                           # no other statement shares its lines


def truths(text: str) -> dict[str, Truth]:
    """Unique qualnames of ``text`` (functions, classes, module/class-level names)."""
    lines = text.split("\n")
    found: dict[str, list[Truth]] = {}

    def cp_col(lineno: int, byte_col: int) -> int:
        return len(lines[lineno - 1].encode("utf-8")[:byte_col].decode("utf-8"))

    def add(chain, node, line, col, head) -> None:
        first = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
        stmt_lines = lines[first - 1:node.end_lineno]
        alone = ";" not in "".join(stmt_lines[:1] + stmt_lines[-1:])
        qual = ".".join(n for _, n in chain)
        found.setdefault(qual, []).append(Truth(qual, chain, line, col, head, first - 1,
                                                node.end_lineno - 1, alone))

    def scope(body, chain, in_function) -> None:
        bound_by_def = {s.name for s in _flat(body) if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        seen: set[str] = set()
        for stmt in _flat(body):
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names = [stmt.name]
                decos = [ast.unparse(d) for d in stmt.decorator_list]
                if any(d.endswith("overload") for d in decos):
                    names = [stmt.name, "<overload>"]
                elif f"{stmt.name}.setter" in decos:
                    names = [stmt.name, "setter"]
                elif f"{stmt.name}.deleter" in decos:
                    names = [stmt.name, "deleter"]
                kind = "class" if isinstance(stmt, ast.ClassDef) else "def"
                new_chain = chain + tuple((kind, n) for n in names)
                m = re.compile(r"(?:async\s+)?(?:def|class)\s+(\w+)").match(lines[stmt.lineno - 1],
                                                                            cp_col(stmt.lineno, stmt.col_offset))
                assert m, lines[stmt.lineno - 1]
                add(new_chain, stmt, stmt.lineno - 1, m.start(1), stmt.lineno - 1)
                scope(stmt.body, new_chain, not isinstance(stmt, ast.ClassDef))
            elif not in_function and isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for target in targets:
                    for name in ([target] if isinstance(target, ast.Name) else
                                 [e for e in getattr(target, "elts", []) if isinstance(e, ast.Name)]):
                        if name.id in seen or name.id in bound_by_def:
                            continue
                        seen.add(name.id)
                        add(chain + (("var", name.id),), stmt, name.lineno - 1,
                            cp_col(name.lineno, name.col_offset), stmt.lineno - 1)

    scope(ast.parse(text).body, (), False)
    return {q: ts[0] for q, ts in found.items() if len(ts) == 1 and "<overload>" not in q}


def _flat(body):
    """Statements of a scope, looking through if/try/with/for/while blocks."""
    for stmt in body:
        if isinstance(stmt, (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith)):
            yield from _flat(stmt.body)
            yield from _flat(getattr(stmt, "orelse", []))
        elif isinstance(stmt, ast.Try):
            yield from _flat(stmt.body)
            for h in stmt.handlers:
                yield from _flat(h.body)
            yield from _flat(stmt.orelse)
            yield from _flat(stmt.finalbody)
        else:
            yield stmt


# -- realistic edits -------------------------------------------------------------------------

def _defs(tree) -> list[ast.AST]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def _start(node) -> int:
    return min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno]) - 1


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


class Editor:
    """Random, valid, realistic edits of one file that keep a chosen target alive (or delete it)."""

    def __init__(self, rng: random.Random, target: Truth) -> None:
        self.rng = rng
        self.target = target
        self.serial = 0

    def _target_node(self, tree, lines):
        t = truths("\n".join(lines)).get(self.target.qualname)
        return t

    def insert_function(self, lines: list[str], tree) -> list[str]:
        tops = [s for s in tree.body if isinstance(s, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))]
        if not tops:
            return lines
        at = _start(self.rng.choice(tops))
        self.serial += 1
        new = [f"def _inserted_{self.serial}(value):", '    """Inserted by the test."""',
               "    return value", "", ""]
        return lines[:at] + new + lines[at:]

    def insert_method(self, lines: list[str], tree) -> list[str]:
        classes = [n for n in _defs(tree) if isinstance(n, ast.ClassDef) and n.body[0].lineno > n.lineno]
        if not classes:
            return lines
        cls = self.rng.choice(classes)
        first = cls.body[0]
        at = _start(first)
        ind = _indent(lines[first.lineno - 1])
        self.serial += 1
        new = [f"{ind}def _method_{self.serial}(self):", f"{ind}    return {self.serial}", ""]
        return lines[:at] + new + lines[at:]

    def reorder(self, lines: list[str], tree) -> list[str]:
        pairs = []
        for parent in [tree] + [n for n in _defs(tree) if isinstance(n, ast.ClassDef)]:
            body = parent.body
            for a, b in zip(body, body[1:]):
                if all(isinstance(x, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for x in (a, b)):
                    pairs.append((a, b))
        if not pairs:
            return lines
        a, b = self.rng.choice(pairs)
        a0, a1, b0, b1 = _start(a), a.end_lineno, _start(b), b.end_lineno
        if lines[a0].lstrip().startswith(("@", "def", "class", "async")) is False:
            return lines
        return lines[:a0] + lines[b0:b1] + lines[a1:b0] + lines[a0:a1] + lines[b1:]

    def edit_body(self, lines: list[str], tree) -> list[str]:
        funcs = [n for n in _defs(tree) if not isinstance(n, ast.ClassDef) and n.body[0].lineno > n.lineno]
        if not funcs:
            return lines
        f = self.rng.choice(funcs)
        body = f.body
        stmt = body[1] if (len(body) > 1 and isinstance(body[0], ast.Expr)
                           and isinstance(body[0].value, ast.Constant)) else body[0]
        at = stmt.lineno - 1 if self.rng.random() < 0.5 else body[-1].end_lineno
        ref = stmt if at == stmt.lineno - 1 else body[-1]
        ind = _indent(lines[ref.lineno - 1])
        self.serial += 1
        if at == body[-1].end_lineno and isinstance(body[-1], (ast.Return, ast.Raise)):
            at = body[-1].lineno - 1
        new = [f"{ind}_edited_{self.serial} = {self.serial}  # body edit"]
        return lines[:at] + new + lines[at:]

    def reformat(self, lines: list[str], tree) -> list[str]:
        stmts = [n for n in ast.walk(tree) if isinstance(n, ast.stmt) and n.col_offset == 0]
        out = list(lines)
        for stmt in sorted(self.rng.sample(stmts, min(3, len(stmts))), key=lambda s: -_start(s)):
            at = _start(stmt)
            out[at:at] = ["", "# reformatted: a comment and blank lines", ""]
        return [line.rstrip() for line in out]

    def rename_other(self, lines: list[str], tree) -> list[str]:
        t = self.target
        prefix = t.qualname + "."
        table = truths("\n".join(lines))
        choices = [x for x in table.values()
                   if x.qualname != t.qualname and not t.qualname.startswith(x.qualname + ".")
                   and not x.qualname.startswith(prefix) and x.chain[-1][0] != "var"
                   and x.chain[-1][1] not in ("setter", "deleter")]
        if not choices:
            return lines
        other = self.rng.choice(choices)
        name = other.chain[-1][1]
        line = lines[other.line]
        self.serial += 1
        lines = list(lines)
        lines[other.line] = line[:other.col] + f"{name}_renamed{self.serial}" + line[other.col + len(name):]
        return lines

    def delete_target(self, lines: list[str], tree) -> list[str]:
        t = self._target_node(tree, lines)
        if t is None:
            return lines
        out = lines[:t.first_line] + lines[t.last_line + 1:]
        try:
            ast.parse("\n".join(out))
        except SyntaxError:     # the only statement of its block
            out = lines[:t.first_line] + [f"{_indent(lines[t.first_line])}pass"] + lines[t.last_line + 1:]
        return out

    EDITS = ("insert_function", "insert_method", "reorder", "edit_body", "reformat", "rename_other")

    def apply(self, text: str, n: int, delete: bool) -> str:
        lines = text.split("\n")
        steps = [self.rng.choice(self.EDITS) for _ in range(n)]
        if delete:
            steps.insert(self.rng.randrange(len(steps) + 1), "delete_target")
        for step in steps:
            tree = ast.parse("\n".join(lines))
            candidate = getattr(self, step)(lines, tree)
            try:
                ast.parse("\n".join(candidate))
            except SyntaxError:
                continue
            lines = candidate
        return "\n".join(lines)


# -- the harness -----------------------------------------------------------------------------

def _git(root: Path, *args: str) -> None:
    subprocess.run([GIT, "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=root,
                   check=True, capture_output=True)


def _workspace(tmp_path: Path, sources: dict[str, str]) -> Workspace:
    root = tmp_path / "ws"
    for rel, text in sources.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "originals")
    return Workspace(root)


def _selectors(ws: Workspace, rel: str, module: str, t: Truth) -> dict[str, str]:
    raw = (ws.root / rel).read_bytes()
    v = blob_id(raw)
    kinds = {"def": "def", "class": "class", "var": "var"}
    steps = "/".join(f"[{kinds[k]}={n}]" for k, n in t.chain)
    sym = f"py://{module}#{t.qualname}"
    anchor = resolve_selector(parse_selector(sym), ws, original=sym).anchor
    assert anchor is not None
    return {"symbol": f"{sym}?v={v}", "ast": f"ast://[module={module}]/{steps}?v={v}",
            "anchor": anchor, "anchor-v": f"{anchor}&v={v}",
            "cursor-v": f"{rel}@L{t.line + 1}:C{t.col + 1}?v={v}"}


def _check(ws: Workspace, form: str, selector: str, now: Truth | None) -> str:
    """'hit', 'miss' (wrong place or refused although alive), 'refused' or 'false-hit'."""
    try:
        res = resolve_selector(parse_selector(selector), ws, original=selector, encoding="codepoint")
    except (NotFound, Ambiguous):
        return "refused" if now is None else "miss"
    if now is None:
        return "false-hit"
    if form == "cursor-v":
        ok = res.range[:2] == [now.line, now.col]
    elif form.startswith("anchor"):
        ok = res.range[0] == now.head_line
    else:
        ok = res.selection_range[:2] == [now.line, now.col]
    return "hit" if ok else "miss"


def _corpus_sources() -> dict[str, tuple[str, str]]:
    """rel -> (module, text): real modules (stdlib and the fixture)."""
    out = {}
    for mod in (textwrap, shlex):
        out[f"lib/{mod.__name__}.py"] = (mod.__name__, Path(mod.__file__).read_text(encoding="utf-8"))
    import dataclasses
    import fractions
    for mod in (fractions, dataclasses):
        out[f"lib/{mod.__name__}.py"] = (mod.__name__, Path(mod.__file__).read_text(encoding="utf-8"))
    out["src/shapes/geometry.py"] = ("shapes.geometry", (FIXTURE / "src/shapes/geometry.py").read_text("utf-8"))
    out["plain.py"] = ("plain", (FIXTURE / "plain.py").read_text("utf-8"))
    return out


def run_corpus(tmp_path: Path, trials_per_file: int, seed: int = 20240601) -> dict[str, dict[str, int]]:
    sources = _corpus_sources()
    ws = _workspace(tmp_path, {rel: text for rel, (_, text) in sources.items()})
    (ws.root / "src" / "shapes" / "__init__.py").write_text("")
    rng = random.Random(seed)
    stats = {form: {"hit": 0, "miss": 0, "refused": 0, "false-hit": 0} for form in FORMS}
    failures: list[str] = []
    for rel, (module, original) in sorted(sources.items()):
        table = truths(original)
        targets = sorted(q for q, t in table.items() if t.alone)
        for _ in range(trials_per_file):
            qual = rng.choice(targets)
            target = table[qual]
            (ws.root / rel).write_text(original, encoding="utf-8")
            sels = _selectors(ws, rel, module, target)
            delete = rng.random() < 0.25
            edited = Editor(rng, target).apply(original, rng.randint(1, 4), delete)
            (ws.root / rel).write_text(edited, encoding="utf-8")
            now = truths(edited).get(qual)
            for form, sel in sels.items():
                outcome = _check(ws, form, sel, now)
                stats[form][outcome] += 1
                if outcome in ("miss", "false-hit"):
                    failures.append(f"{form} {outcome}: {sel} (alive={now is not None})")
        (ws.root / rel).write_text(original, encoding="utf-8")
    run_corpus.failures = failures  # type: ignore[attr-defined]
    return stats


# -- hand-written edits on the fixture -------------------------------------------------------------

GEOMETRY = (FIXTURE / "src/shapes/geometry.py").read_text(encoding="utf-8")


@pytest.fixture()
def geo_ws(tmp_path: Path) -> Workspace:
    ws = _workspace(tmp_path, {"src/shapes/geometry.py": GEOMETRY, "src/shapes/__init__.py": ""})
    return ws


def _resolve(ws: Workspace, selector: str):
    return resolve_selector(parse_selector(selector), ws, original=selector, encoding="codepoint")


def _edit(ws: Workspace, old: str, new: str, count: int = 1) -> None:
    path = ws.root / "src/shapes/geometry.py"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == count, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def _all_forms(ws: Workspace, qual: str) -> dict[str, str]:
    t = truths(GEOMETRY)[qual]
    return _selectors(ws, "src/shapes/geometry.py", "shapes.geometry", t)


def _assert_lands(ws: Workspace, sels: dict[str, str], qual: str) -> None:
    now = truths((ws.root / "src/shapes/geometry.py").read_text(encoding="utf-8"))[qual]
    for form, sel in sels.items():
        assert _check(ws, form, sel, now) == "hit", (form, sel)


def test_insert_functions_above(geo_ws: Workspace) -> None:
    sels = _all_forms(geo_ws, "Square.side.setter")
    _edit(geo_ws, "\n\nclass Shape:", "\n\ndef first():\n    return 1\n\n\ndef second():\n    pass\n\n\nclass Shape:")
    _assert_lands(geo_ws, sels, "Square.side.setter")
    res = _resolve(geo_ws, sels["symbol"])
    assert res.relocated and res.relocated["method"] == "structural"
    assert res.confidence == 1.0
    cur = _resolve(geo_ws, sels["cursor-v"])
    assert cur.relocated and cur.relocated["method"] == "diff"


def test_reorder_methods(geo_ws: Workspace) -> None:
    sels = _all_forms(geo_ws, "Circle.unit")
    text = (geo_ws.root / "src/shapes/geometry.py").read_text()
    area = "    @cached\n    def area(self) -> float:\n        return math.pi * self.radius ** 2\n\n"
    unit = ('    @staticmethod\n    @cached\n    def unit() -> Circle:\n        """The unit circle."""\n'
            "        return Circle(1.0)\n\n")
    assert area + unit in text
    _edit(geo_ws, area + unit, unit + area)
    _assert_lands(geo_ws, sels, "Circle.unit")


def test_edit_body_and_reformat(geo_ws: Workspace) -> None:
    sels = _all_forms(geo_ws, "outer.middle.innermost")
    _edit(geo_ws, "            return k + 1", "            k = k * 1\n\n            return (\n                k + 1\n            )")
    _edit(geo_ws, "def outer(n: int) -> int:", "# outer is public\n\n\ndef outer(n: int) -> int:")
    _assert_lands(geo_ws, sels, "outer.middle.innermost")


def test_rename_other_symbols(geo_ws: Workspace) -> None:
    sels = _all_forms(geo_ws, "Square.area")
    _edit(geo_ws, "    def describe(self) -> str:\n        return f", "    def summary(self) -> str:\n        return f")
    _edit(geo_ws, "def download(", "def fetch(")
    _assert_lands(geo_ws, sels, "Square.area")
    # the renamed ones: the symbol selector refuses, never lands on another definition
    with pytest.raises((NotFound, Ambiguous)):
        _resolve(geo_ws, "py://shapes.geometry#download")
    with pytest.raises(Ambiguous) as info:
        _resolve(geo_ws, "py://shapes.geometry#Shape.describe")
    assert "shapes.geometry#Shape.summary" not in [c["label"] for c in info.value.candidates] or \
        all(c["score"] < 1.0 for c in info.value.candidates)


def test_delete_target(geo_ws: Workspace) -> None:
    sels = _all_forms(geo_ws, "Circle.unit")
    _edit(geo_ws, ('    @staticmethod\n    @cached\n    def unit() -> Circle:\n        """The unit circle."""\n'
                   "        return Circle(1.0)\n\n"), "")
    for form, sel in sels.items():
        if form == "anchor":       # without v= an anchor cannot know the text was deleted
            continue
        assert _check(geo_ws, form, sel, None) == "refused", (form, sel)


def test_renamed_target_is_offered_with_its_old_place(geo_ws: Workspace) -> None:
    sels = _all_forms(geo_ws, "download")
    _edit(geo_ws, "async def download(url: str) -> bytes:", "async def download_bytes(url: str) -> bytes:")
    with pytest.raises(NotFound) as info:  # 'download' exists nowhere now: did you mean ...
        _resolve(geo_ws, sels["symbol"])
    best = info.value.details["candidates"][0]
    assert "did you mean: py://shapes.geometry#download_bytes" in info.value.message
    assert best["label"] == "shapes.geometry#download_bytes"
    assert best["features"]["s_prox"] == 1.0 and best["score"] < 1.0


def test_cursor_on_deleted_line_and_missing_version(geo_ws: Workspace) -> None:
    sels = _all_forms(geo_ws, "conditional")
    _edit(geo_ws, 'if math.pi > 3:\n    def conditional() -> str:\n        return "yes"\n', "")
    with pytest.raises(NotFound):
        _resolve(geo_ws, sels["cursor-v"])


# -- the generated corpus --------------------------------------------------------------------------

def test_generated_corpus_accuracy(tmp_path: Path) -> None:
    stats = run_corpus(tmp_path, trials_per_file=35)
    failures = run_corpus.failures  # type: ignore[attr-defined]
    for form, s in stats.items():
        alive = s["hit"] + s["miss"]
        assert alive >= 100, (form, s)
        accuracy = s["hit"] / alive
        assert accuracy > 0.99, (form, s, failures[:10])
        if form == "anchor":
            # A plain anchor has no old text to notice a deletion with: by the contract an
            # exact unique match (a duplicate header elsewhere) or a fuzzy look-alike
            # ('def load_data(' -> 'def load_dataset(') wins.  Measured 5-17% of deletions
            # over seeds; this bound only guards against regressions.  With v= it is 0.
            assert s["false-hit"] <= 0.25 * (s["refused"] + s["false-hit"]), (form, s, failures[:10])
        else:
            assert s["false-hit"] == 0, (form, s, failures[:10])
        assert s["refused"] + s["false-hit"] > 0, (form, s)
