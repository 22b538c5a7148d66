"""How often does a reward configuration rank a REAL edit above a CORRUPTED copy of it?

    .venv/bin/python benchmarks/bench_rank_commits.py --repo PATH [--repo PATH ...]
        [--rev REV] [--commits 60] [--limit N] [--seed 0] [--verify 2] [--pyright-settings JSON]
        [--python PY] [--dry-run] [--json OUT] [--keep]

Pairs are built at run time from the git history of each ``--repo`` (a clone or
a bare git directory; nothing of it is copied into this repository):

* **Commits.**  Walking back from ``--rev`` (default ``HEAD``), non-merge
  commits that change ``.py`` files of the repository's packages (the
  directories under ``src/`` with an ``__init__.py`` at ``--rev``, or
  ``--package NAME``; found at ``src/NAME`` or ``NAME`` in each commit), at
  most ``--max-files`` files and ``--max-lines`` changed lines there, with at
  least one added line, whose package files all decode as UTF-8 and parse
  with this interpreter's ``ast``, that change code (not only docstrings,
  comments or layout) and that offer at least one corruption target.  Tests,
  docs and everything else the commit touched is left out.  The first
  ``--commits`` such commits are taken (``--limit N`` for a quick run).
* **Base and real edit.**  Base = the parent's package directories, extracted
  with ``git archive`` into a temporary directory, plus a ``pyrightconfig.json``
  written by this script: ``include`` = the package directories,
  ``extraPaths: ["src"]`` for a src layout, updated with ``--pyright-settings``
  (the repository's own pyright settings are not used: attrs', for instance,
  include only a typing test file).  Imports resolve in an empty virtual environment made for the run
  (``--python`` to choose another), so third-party imports are unresolved.
  The real edit is the commit's change of those ``.py`` files, as one
  ``patch`` step (Lanser's own git-style diff writer).
* **Corruptions** (seeded by ``--seed``, the commit and the kind; each result
  must parse, and each is checked to do what it says), at most one per kind and
  commit, always inside a line the commit added or changed except (c):

  - ``name``: one use of a local or global name (bound in the file; not
    ``self``/``cls``, not a builtin) misspelled to a name bound nowhere;
  - ``attr``: one attribute read (``x.attr``) misspelled to an identifier that
    occurs nowhere in the package;
  - ``import``: one import (an alias of the statement, or the whole statement)
    dropped whose name is used in the file and bound nowhere else; names the
    new lines use are preferred (``needed``), else any used import of a file
    the commit changed;
  - ``arity``: a call, on an added line, of a function or class defined in the
    package (same module, ``from .mod import f``, ``mod.f``, ``self.m``,
    ``cls.m``; undecorated apart from ``staticmethod``/``classmethod``; classes
    without decorators, metaclass or ``__new__``) gets one positional argument
    (``None``) too many, or loses a required positional or keyword argument.

  The corrupted edit is the real edit with that one file's new text replaced.

Each edit is scored as ONE step from the base with ``RewardScorer`` (one warm
server per base tree, in memory).  Configurations compared on the same pairs:

  ``plain``      the paper's count reward: ``diag_term="delta"``, errors (the record's ``r``)
  ``regression`` ``diag_term="regression"``, errors
  ``err+warn``   ``diag_term="delta"``, errors and warnings
  ``ruff-gate``  a flake8-style lint gate: ``-1`` when the step introduces a
                 pyflakes finding (``ruff check --isolated --select F``; a
                 finding is (file, code, message), compared as multisets) else ``+1``
  ``union``      Eq. 5.1 with delta, D = Pyright errors + ruff F findings
  ``union-regr`` Eq. 5.1 with T = Pyright's regression term (errors) minus
                 the number of introduced ruff F findings

``regression``, ``err+warn`` and the two unions are computed from the step's
full diagnostics (the step bundle) with Lanser's own pure functions
(``counted``, ``diag_term``, ``process_reward``: what the record builder
calls); ``--verify N`` also scores the first N base trees of each repository
with scorers built with those options and checks that the rewards agree.
A pair is *won* when r(real) > r(corrupt) strictly.  Printed: wins/ties/losses
per repository, kind and configuration, the overall win rates, real edits that
themselves add Pyright errors, and examples of pairs a configuration did not win.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import json
import keyword
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import venv
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from io import BytesIO
from pathlib import Path
from typing import Any, Callable, Iterable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_line  # noqa: E402

from lanser.edits.diff import file_diff, split_keepends  # noqa: E402
from lanser.rewards.api import RewardScorer  # noqa: E402
from lanser.rewards.formula import process_reward  # noqa: E402
from lanser.rewards.terms import counted, diag_term  # noqa: E402

KINDS = ("name", "attr", "import", "arity")
CONFIGS = ("plain", "regression", "err+warn", "ruff-gate", "union", "union-regr")
SKIP_DIRS = {"tests", "test", "testing", "docs", "doc", "examples", "example", "bench", "benchmarks",
             "scripts", "typing_tests", "changelog.d"}
BUILTIN_NAMES = frozenset(dir(builtins)) | {"__file__", "__name__", "__doc__", "__spec__", "__path__",
                                            "__package__", "__loader__", "__builtins__", "__annotations__",
                                            "__dict__", "__module__", "__qualname__", "__class__"}
WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# -- git ---------------------------------------------------------------------------

class Git:
    """Read-only access to a clone or a bare git directory."""

    def __init__(self, path: str) -> None:
        p = Path(path).resolve()
        out = subprocess.run(["git", "-C", str(p), "rev-parse", "--absolute-git-dir"],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"--repo {path}: not a git repository ({out.stderr.strip()})")
        self.git_dir = out.stdout.strip()
        self.path = str(p)
        self.name = _repo_name(p)

    def run(self, *args: str, text: bool = True) -> Any:
        out = subprocess.run(["git", "--git-dir", self.git_dir, *args], capture_output=True, text=text,
                             check=False)
        if out.returncode != 0:
            err = out.stderr if text else out.stderr.decode("utf-8", "replace")
            raise RuntimeError(f"git {' '.join(args)}: {err.strip()}")
        return out.stdout

    def rev(self, rev: str) -> str:
        return self.run("rev-parse", "--verify", rev + "^{commit}").strip()

    def tree_dirs(self, commit: str, path: str = "") -> list[str]:
        spec = f"{commit}:{path}" if path else f"{commit}"
        try:
            out = self.run("ls-tree", "--name-only", "-d", spec)
        except RuntimeError:
            return []
        return [line for line in out.splitlines() if line]

    def exists(self, commit: str, path: str) -> bool:
        try:
            self.run("cat-file", "-e", f"{commit}:{path}")
            return True
        except RuntimeError:
            return False

    def blob(self, commit: str, path: str) -> bytes:
        return self.run("show", f"{commit}:{path}", text=False)

    def archive(self, commit: str, paths: list[str], dest: Path) -> None:
        data = self.run("archive", "--format=tar", commit, *paths, text=False)
        with tarfile.open(fileobj=BytesIO(data)) as tar:
            if sys.version_info >= (3, 12):
                tar.extractall(dest, filter="data")
            else:
                for member in tar.getmembers():
                    if member.issym() or member.islnk() or member.name.startswith(("/", "..")):
                        raise RuntimeError(f"unexpected archive member {member.name}")
                tar.extractall(dest)


def _repo_name(p: Path) -> str:
    """``click`` for ``/work/.mirror/pallets+click/repo`` or ``~/src/click`` or ``click.git``."""
    for part in (p.name, p.parent.name):
        name = part.removesuffix(".git")
        if name and name not in ("repo", ".git"):
            return name.split("+")[-1]
    return p.name


def packages_at(git: Git, commit: str) -> list[str]:
    """Package names of a repository: dirs under ``src/`` with an ``__init__.py``, else top-level ones."""
    for base in ("src", ""):
        names = []
        for d in git.tree_dirs(commit, base):
            if d in SKIP_DIRS or d.startswith("."):
                continue
            rel = f"{base}/{d}" if base else d
            if git.exists(commit, f"{rel}/__init__.py"):
                names.append(d)
        if names:
            return sorted(names)
    return []


def roots_at(git: Git, commit: str, packages: list[str]) -> list[str]:
    """Where each package lives in ``commit`` (``src/NAME`` or ``NAME``); missing ones left out."""
    out = []
    for name in packages:
        for cand in (f"src/{name}", name):
            if git.exists(commit, f"{cand}/__init__.py"):
                out.append(cand)
                break
    return out


# -- commits ---------------------------------------------------------------------------

@dataclass
class Commit:
    sha: str
    parent: str
    subject: str
    roots: list[str]
    files: dict[str, tuple[str | None, str | None]]  # rel -> (base text, new text)
    added_lines: dict[str, set[int]]                 # rel -> 1-based lines of the new text added/changed
    lines_changed: int


def _under(path: str, roots: list[str]) -> bool:
    return any(path.startswith(r + "/") for r in roots)


def _in_skipped_dir(path: str, root: str) -> bool:
    parts = path[len(root) + 1:].split("/")[:-1]
    return any(p in SKIP_DIRS for p in parts)


def added_lines(old: str | None, new: str) -> set[int]:
    """1-based line numbers of ``new`` that are not in ``old`` (inserted or replaced)."""
    a = split_keepends(old or "")
    b = split_keepends(new)
    out: set[int] = set()
    for tag, _i1, _i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag in ("replace", "insert"):
            out.update(range(j1 + 1, j2 + 1))
    return out


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
        return True
    except (SyntaxError, ValueError, RecursionError):
        return False


def _code_dump(text: str) -> str:
    """The module's syntax tree without docstrings (comments and layout are not in it)."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    return ast.dump(tree)


def candidate_commits(git: Git, rev: str, packages: list[str], max_files: int, max_lines: int,
                      skipped: Counter[str]) -> Iterable[Commit]:
    """Commits that qualify (see the module docstring), newest first."""
    paths = sorted({p for name in packages for p in (f"src/{name}", name)})
    log = git.run("log", "--no-merges", "--format=%H%x00%P%x00%s", rev, "--", *paths)
    for line in log.splitlines():
        sha, parents, subject = line.split("\x00", 2)
        if len(parents.split()) != 1:
            skipped["root commit"] += 1
            continue
        parent = parents.strip()
        roots = roots_at(git, parent, packages)
        if not roots or roots != roots_at(git, sha, packages):
            skipped["package layout changes or missing"] += 1
            continue
        numstat = git.run("diff", "--numstat", "--no-renames", parent, sha, "--", *roots)
        files: list[str] = []
        total = 0
        binary = False
        for row in numstat.splitlines():
            add, rem, path = row.split("\t", 2)
            if not path.endswith(".py") or not _under(path, roots) or \
                    any(_in_skipped_dir(path, r) for r in roots if path.startswith(r + "/")):
                continue
            if add == "-":
                binary = True
                continue
            files.append(path)
            total += int(add) + int(rem)
        if binary or not files:
            skipped["no package .py change"] += 1
            continue
        if len(files) > max_files or total > max_lines:
            skipped["too large"] += 1
            continue
        texts: dict[str, tuple[str | None, str | None]] = {}
        ok = True
        for path in files:
            pair = []
            for c in (parent, sha):
                if not git.exists(c, path):
                    pair.append(None)
                    continue
                try:
                    text = git.blob(c, path).decode("utf-8")
                except UnicodeDecodeError:
                    ok = False
                    break
                if "\r" in text or not _parses(text):
                    ok = False
                    break
                pair.append(text)
            if not ok:
                break
            texts[path] = (pair[0], pair[1])
        if not ok:
            skipped["not UTF-8/LF or does not parse with this Python"] += 1
            continue
        if all(old is not None and new is not None and _code_dump(old) == _code_dump(new)
               for old, new in texts.values()):
            skipped["docstrings/comments/layout only"] += 1
            continue
        adds = {p: added_lines(old, new) for p, (old, new) in texts.items() if new is not None}
        yield Commit(sha, parent, subject, roots, texts, adds, total)


# -- source positions ---------------------------------------------------------------------

class Src:
    """A text with ast positions (UTF-8 byte columns) mapped to string offsets."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = split_keepends(text)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))
        self.tree = ast.parse(text)

    def off(self, lineno: int, col: int) -> int:
        line = self.lines[lineno - 1] if lineno - 1 < len(self.lines) else ""
        return self.starts[lineno - 1] + len(line.encode("utf-8")[:col].decode("utf-8", "replace"))

    def start(self, node: ast.AST) -> int:
        return self.off(node.lineno, node.col_offset)  # type: ignore[attr-defined]

    def end(self, node: ast.AST) -> int:
        return self.off(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]


def splice(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]


def parents_map(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    out: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            out[child] = node
    return out


def bindings(tree: ast.AST) -> Counter[str]:
    """How many times each name is bound anywhere in a module (any scope)."""
    c: Counter[str] = Counter()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            c[node.id] += 1
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            c[node.name] += 1
        elif isinstance(node, ast.arg):
            c[node.arg] += 1
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                if a.name != "*":
                    c[a.asname or a.name.split(".")[0]] += 1
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            for n in node.names:
                c[n] += 1
        elif isinstance(node, ast.ExceptHandler) and node.name:
            c[node.name] += 1
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            c[node.name] += 1
        elif isinstance(node, ast.MatchMapping) and node.rest:
            c[node.rest] += 1
    return c


def misspell(word: str, rng: random.Random, taken: Callable[[str], bool]) -> str | None:
    """A one-edit typo of ``word`` (swap, drop or double a character) that ``taken`` rejects not."""
    for _ in range(40):
        op = rng.choice(("swap", "drop", "double"))
        i = rng.randrange(len(word))
        if op == "swap":
            if len(word) < 2:
                continue
            i = rng.randrange(len(word) - 1)
            if word[i] == word[i + 1]:
                continue
            cand = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        elif op == "drop":
            if len(word) < 4:
                continue
            cand = word[:i] + word[i + 1:]
        else:
            cand = word[:i + 1] + word[i] + word[i + 1:]
        if cand != word and cand.isidentifier() and not keyword.iskeyword(cand) \
                and not keyword.issoftkeyword(cand) and not taken(cand):
            return cand
    return None


# -- the package index (for arity) ----------------------------------------------------------

@dataclass
class Module:
    name: str
    rel: str
    tree: ast.Module
    defs: dict[str, ast.AST] = field(default_factory=dict)       # top-level def/class defined once
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # bound -> (module, attr)


def module_name(rel: str, roots: list[str]) -> str:
    for r in roots:
        if rel.startswith(r + "/"):
            pkg = r.split("/")[-1]
            parts = [pkg] + rel[len(r) + 1:].removesuffix(".py").split("/")
            if parts[-1] == "__init__":
                parts.pop()
            return ".".join(parts)
    return rel.removesuffix(".py").replace("/", ".")


def resolve_from(mod: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.name.split(".")
    is_pkg = mod.rel.endswith("__init__.py")
    keep = len(base) - node.level + (1 if is_pkg else 0)
    prefix = base[:max(keep, 0)]
    return ".".join(prefix + ([node.module] if node.module else []))


def index_module(name: str, rel: str, tree: ast.Module) -> Module:
    mod = Module(name, rel, tree)
    counts: Counter[str] = Counter()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            counts[node.name] += 1
            mod.defs[node.name] = node
    binds = bindings(tree)
    for n in list(mod.defs):
        if counts[n] != 1 or binds[n] != 1:
            del mod.defs[n]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            src = resolve_from(mod, node)
            for a in node.names:
                if a.name != "*":
                    mod.imports[a.asname or a.name] = (src, a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    mod.imports[a.asname] = (a.name, None)
    return mod


class Index:
    def __init__(self, modules: dict[str, Module]) -> None:
        self.modules = modules

    def lookup(self, module: str, attr: str | None, depth: int = 0) -> ast.AST | Module | None:
        """What ``from module import attr`` (or ``import module``) binds, inside the package."""
        if depth > 4:
            return None
        if attr is None:
            return self.modules.get(module)
        sub = self.modules.get(f"{module}.{attr}")
        if sub is not None:
            return sub
        mod = self.modules.get(module)
        if mod is None:
            return None
        if attr in mod.defs:
            return mod.defs[attr]
        if attr in mod.imports:
            src, a = mod.imports[attr]
            return self.lookup(src, a, depth + 1)
        return None


# -- corruptions ------------------------------------------------------------------------------

@dataclass
class Corruption:
    kind: str
    path: str
    line: int
    what: str
    text: str
    needed: bool = True  # import: a name the new lines use (else: one the file uses)


def corrupt_name(path: str, src: Src, added: set[int], rng: random.Random, words: set[str]) -> Corruption | None:
    binds = bindings(src.tree)
    cands = [n for n in ast.walk(src.tree)
             if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.lineno in added
             and n.id in binds and n.id not in ("self", "cls") and n.id not in BUILTIN_NAMES]
    rng.shuffle(cands)
    for n in cands:
        s, e = src.start(n), src.end(n)
        if src.text[s:e] != n.id:
            continue
        new = misspell(n.id, rng, lambda c: c in binds or c in BUILTIN_NAMES or c in words)
        if new is None:
            continue
        text = splice(src.text, s, e, new)
        if _parses(text):
            return Corruption("name", path, n.lineno, f"name {n.id} -> {new}", text)
    return None


def corrupt_attr(path: str, src: Src, added: set[int], rng: random.Random, words: set[str]) -> Corruption | None:
    cands = [n for n in ast.walk(src.tree)
             if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load) and n.end_lineno in added]
    rng.shuffle(cands)
    for n in cands:
        e = src.end(n)
        s = e - len(n.attr)
        if src.text[s:e] != n.attr:
            continue
        new = misspell(n.attr, rng, lambda c: c in words or c in BUILTIN_NAMES)
        if new is None:
            continue
        text = splice(src.text, s, e, new)
        if _parses(text):
            return Corruption("attr", path, n.end_lineno or n.lineno, f"attribute .{n.attr} -> .{new}", text)
    return None


def _stmt_span(src: Src, node: ast.stmt) -> tuple[int, int] | None:
    """The whole lines of a statement, when nothing else shares them."""
    first = src.lines[node.lineno - 1]
    last = src.lines[node.end_lineno - 1]  # type: ignore[index]
    head = first.encode("utf-8")[:node.col_offset].decode("utf-8", "replace")
    tail = last.encode("utf-8")[node.end_col_offset:].decode("utf-8", "replace")  # type: ignore[arg-type]
    if head.strip() or (tail.strip() and not tail.strip().startswith("#")):
        return None
    return src.starts[node.lineno - 1], src.starts[node.end_lineno]  # type: ignore[index]


def corrupt_import(path: str, src: Src, added: set[int], rng: random.Random, words: set[str]) -> Corruption | None:
    binds = bindings(src.tree)
    loads: dict[str, list[int]] = defaultdict(list)
    for n in ast.walk(src.tree):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
            loads[n.id].append(n.lineno)
    parents = parents_map(src.tree)
    tiers: tuple[list[Any], list[Any]] = ([], [])
    for node in ast.walk(src.tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        for alias in node.names:
            if alias.name == "*":
                continue
            bound = alias.asname or (alias.name.split(".")[0] if isinstance(node, ast.Import) else alias.name)
            if binds[bound] != 1 or not loads.get(bound):
                continue
            needed = any(line in added for line in loads[bound])
            tiers[0 if needed else 1].append((node, alias, bound, needed))
    for tier in tiers:
        tier.sort(key=lambda t: (t[0].lineno, t[2]))
        rng.shuffle(tier)
        for node, alias, bound, needed in tier:
            span = _stmt_span(src, node)
            if span is None:
                continue
            indent = src.lines[node.lineno - 1][:len(src.lines[node.lineno - 1])
                                                 - len(src.lines[node.lineno - 1].lstrip())]
            if len(node.names) > 1:
                copy = ast.parse(ast.unparse(node)).body[0]
                assert isinstance(copy, (ast.Import, ast.ImportFrom))
                copy.names = [a for a in copy.names if (a.name, a.asname) != (alias.name, alias.asname)]
                repl = indent + ast.unparse(copy) + "\n"
            else:
                parent = parents.get(node)
                body = None
                for fld in ("body", "orelse", "finalbody", "handlers"):
                    seq = getattr(parent, fld, None)
                    if isinstance(seq, list) and node in seq:
                        body = seq
                repl = indent + "pass\n" if body is not None and len(body) == 1 else ""
            text = splice(src.text, span[0], span[1], repl)
            if not _parses(text):
                continue
            if bound in {n.id for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Name)
                         and isinstance(n.ctx, ast.Store)}:
                continue
            source = ("from " + "." * node.level + (node.module or "") + " "
                      if isinstance(node, ast.ImportFrom) else "")
            shown = f"{source}import {alias.name}{' as ' + alias.asname if alias.asname else ''}"
            return Corruption("import", path, node.lineno, f"dropped `{shown}`", text, needed)
    return None


def _signature(fn: ast.AST, implicit: bool) -> dict[str, Any] | None:
    if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    a = fn.args
    pos = [x.arg for x in a.posonlyargs + a.args]
    if implicit:
        if not pos:
            return None
        pos = pos[1:]
    n_defaults = len(a.defaults)
    required = pos[:len(pos) - n_defaults] if n_defaults else pos
    kwonly_required = [x.arg for x, d in zip(a.kwonlyargs, a.kw_defaults) if d is None]
    posonly = {x.arg for x in a.posonlyargs}
    return {"pos": pos, "required": required, "kwonly_required": kwonly_required,
            "vararg": a.vararg is not None, "kwarg": a.kwarg is not None, "posonly": posonly}


def _method_kind(fn: ast.AST) -> str | None:
    """``plain``, ``static`` or ``class`` for an undecorated (or static/classmethod) function."""
    if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    names = [d.id if isinstance(d, ast.Name) else None for d in fn.decorator_list]
    if not names:
        return "plain"
    if names == ["staticmethod"]:
        return "static"
    if names == ["classmethod"]:
        return "class"
    return None


_NO_INIT_BASES = {"Enum", "IntEnum", "StrEnum", "Flag", "IntFlag", "NamedTuple", "TypedDict", "Protocol"}


def _class_init(cls: ast.ClassDef) -> ast.AST | None:
    if cls.decorator_list or any(k.arg == "metaclass" for k in cls.keywords):
        return None
    for b in cls.bases:
        name = b.id if isinstance(b, ast.Name) else (b.attr if isinstance(b, ast.Attribute) else "")
        if name in _NO_INIT_BASES:
            return None
    found = [s for s in cls.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
             and s.name in ("__init__", "__new__")]
    if len(found) != 1 or found[0].name != "__init__" or _method_kind(found[0]) != "plain":
        return None
    return found[0]


def _callee(call: ast.Call, mod: Module, index: Index,
            parents: dict[ast.AST, ast.AST]) -> tuple[str, dict[str, Any]] | None:
    """(shown name, signature) of the package function or class a call reaches, when certain."""
    func = call.func
    target: Any = None
    shown = ""
    implicit = False
    if isinstance(func, ast.Name):
        shown = func.id
        if func.id in mod.defs:
            target = mod.defs[func.id]
        elif func.id in mod.imports:
            target = index.lookup(*mod.imports[func.id])
    elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        base = func.value.id
        shown = f"{base}.{func.attr}"
        if base in ("self", "cls"):
            node: ast.AST | None = call
            fn = cls = None
            while node is not None:
                node = parents.get(node)
                if fn is None and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    fn = node
                    cls_node = parents.get(node)
                    if isinstance(cls_node, ast.ClassDef):
                        cls = cls_node
                    break
            if fn is None or cls is None or not fn.args.args or fn.args.args[0].arg != base:
                return None
            kind_here = _method_kind(fn)
            if (base == "self") != (kind_here == "plain") or (base == "cls") != (kind_here == "class"):
                return None
            meths = [s for s in cls.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Assign,
                                                            ast.AnnAssign))
                     and (getattr(s, "name", None) == func.attr)]
            if len(meths) != 1 or any(isinstance(t, ast.Name) and t.id == func.attr
                                      for s in cls.body if isinstance(s, ast.Assign) for t in s.targets):
                return None
            mk = _method_kind(meths[0])
            if mk is None or (base == "cls" and mk == "plain"):
                return None
            sig = _signature(meths[0], implicit=mk != "static")
            return (shown, sig) if sig else None
        if base in mod.imports:
            sub = index.lookup(*mod.imports[base])
            if isinstance(sub, Module):
                target = sub.defs.get(func.attr)
    if target is None or isinstance(target, Module):
        return None
    if isinstance(target, ast.ClassDef):
        init = _class_init(target)
        if init is None:
            return None
        target, implicit = init, True
    elif _method_kind(target) != "plain":
        return None
    sig = _signature(target, implicit)
    return (shown, sig) if sig else None


def _arg_nodes(call: ast.Call) -> list[ast.AST]:
    return sorted([*call.args, *call.keywords], key=lambda n: (n.lineno, n.col_offset))  # type: ignore[attr-defined]


def _same_call(text: str, call: ast.Call) -> ast.Call | None:
    for n in ast.walk(ast.parse(text)):
        if isinstance(n, ast.Call) and (n.lineno, n.col_offset) == (call.lineno, call.col_offset):
            return n
    return None


def corrupt_arity(path: str, src: Src, added: set[int], rng: random.Random, mod: Module,
                  index: Index) -> Corruption | None:
    parents = parents_map(src.tree)
    calls = [n for n in ast.walk(src.tree) if isinstance(n, ast.Call) and n.lineno in added
             and not any(isinstance(a, ast.Starred) for a in n.args)
             and not any(k.arg is None for k in n.keywords)]
    rng.shuffle(calls)
    for call in calls:
        found = _callee(call, mod, index, parents)
        if found is None:
            continue
        shown, sig = found
        p = len(call.args)
        kw = {k.arg for k in call.keywords}
        options: list[tuple[str, Any]] = []
        if not sig["vararg"] and (p + 1 > len(sig["pos"]) or sig["pos"][p] in kw):
            options.append(("add", None))
        if p >= 1 and p - 1 < len(sig["required"]):
            options.append(("drop", call.args[-1]))
        for k in call.keywords:
            if k.arg in sig["kwonly_required"] or (k.arg in sig["required"] and k.arg not in sig["posonly"]
                                                   and sig["pos"].index(k.arg) >= p):
                options.append(("dropkw", k))
        rng.shuffle(options)
        for op, node in options:
            args = _arg_nodes(call)
            if op == "add":
                if call.args:
                    at = src.end(call.args[-1])
                    text = splice(src.text, at, at, ", None")
                else:
                    open_at = src.text.find("(", src.end(call.func))
                    if open_at < 0:
                        continue
                    text = splice(src.text, open_at + 1, open_at + 1, "None, " if call.keywords else "None")
                want = (p + 1, len(call.keywords))
                what = f"{shown}(...) called with one positional argument too many"
            else:
                i = args.index(node)
                if i > 0:
                    s, e = src.end(args[i - 1]), src.end(node)
                elif len(args) > 1:
                    s, e = src.start(node), src.start(args[1])
                else:
                    s, e = src.start(node), src.end(node)
                text = splice(src.text, s, e, "")
                want = (p - 1, len(call.keywords)) if op == "drop" else (p, len(call.keywords) - 1)
                label = ast.unparse(node)
                what = f"{shown}(...) without its argument `{label[:40]}`"
            if not _parses(text):
                continue
            again = _same_call(text, call)
            if again is None or (len(again.args), len(again.keywords)) != want:
                continue
            return Corruption("arity", path, call.lineno, what, text)
    return None


def corruptions(commit: Commit, seed: int, index: Index, words: set[str]) -> list[Corruption]:
    out: list[Corruption] = []
    files = sorted(p for p, (_, new) in commit.files.items() if new is not None)
    srcs = {p: Src(commit.files[p][1] or "") for p in files}
    for kind in KINDS:
        rng = random.Random(f"{seed}:{commit.sha}:{kind}")
        order = list(files)
        rng.shuffle(order)
        found = None
        for p in order:
            added = commit.added_lines.get(p, set())
            if kind == "name":
                found = corrupt_name(p, srcs[p], added, rng, words)
            elif kind == "attr":
                found = corrupt_attr(p, srcs[p], added, rng, words)
            elif kind == "import":
                found = corrupt_import(p, srcs[p], added, rng, words)
            else:
                mod = index.modules.get(module_name(p, commit.roots))
                if mod is not None:
                    found = corrupt_arity(p, srcs[p], added, rng, mod, index)
            if found is not None:
                break
        if kind == "import" and found is not None and not found.needed:
            # prefer a file where the new code needs the import
            for p in order:
                c = corrupt_import(p, srcs[p], commit.added_lines.get(p, set()),
                                   random.Random(f"{seed}:{commit.sha}:{kind}:{p}"), words)
                if c is not None and c.needed:
                    found = c
                    break
        if found is not None:
            out.append(found)
    return out


def tree_texts(git: Git, commit: str, roots: list[str]) -> dict[str, str]:
    """``.py``/``.pyi`` texts under ``roots`` in ``commit`` (rel -> text; undecodable files left out)."""
    data = git.run("archive", "--format=tar", commit, *roots, text=False)
    out: dict[str, str] = {}
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        for m in tar.getmembers():
            if m.isfile() and m.name.endswith((".py", ".pyi")):
                f = tar.extractfile(m)
                try:
                    out[m.name] = f.read().decode("utf-8") if f is not None else ""
                except UnicodeDecodeError:
                    continue
    return out


def package_index(commit: Commit, texts: dict[str, str]) -> tuple[Index, set[str]]:
    """Modules of the package after the commit, and every identifier-like word of it, stubs
    included (misspellings must avoid them)."""
    modules: dict[str, Module] = {}
    words: set[str] = set()
    for rel, text in sorted(texts.items()):
        words.update(WORD_RE.findall(text))
        if not rel.endswith(".py"):
            continue
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        name = module_name(rel, commit.roots)
        modules[name] = index_module(name, rel, tree)
    return Index(modules), words


# -- ruff -------------------------------------------------------------------------------------

def ruff_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "ruff"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("ruff")
    if found:
        return [found]
    raise SystemExit("ruff is not installed: `make setup` (it is in the dev extra) or pip install ruff")


RUFF_ARGS = ["check", "--isolated", "--no-cache", "--select", "F", "--output-format", "json", "--exit-zero"]


def _findings(raw: str, root: Path) -> list[tuple[str, str, str]]:
    out = []
    for d in json.loads(raw or "[]"):
        p = Path(d["filename"])
        rel = p.relative_to(root).as_posix() if p.is_absolute() else p.as_posix()
        out.append((rel, d.get("code") or "", d.get("message") or ""))
    return out


def ruff_tree(root: Path, roots: list[str]) -> dict[str, list[tuple[str, str, str]]]:
    out = subprocess.run([*ruff_cmd(), *RUFF_ARGS, *roots], cwd=root, capture_output=True, text=True, check=True)
    by_file: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for f in _findings(out.stdout, root):
        by_file[f[0]].append(f)
    return dict(by_file)


def ruff_file(root: Path, rel: str, text: str) -> list[tuple[str, str, str]]:
    out = subprocess.run([*ruff_cmd(), *RUFF_ARGS, "--stdin-filename", rel, "-"], cwd=root, input=text,
                         capture_output=True, text=True, check=True)
    return [(rel, c, m) for _, c, m in _findings(out.stdout, root)]


# -- scoring ----------------------------------------------------------------------------------

def make_patch(files: dict[str, tuple[str | None, str | None]]) -> str:
    return "".join(file_diff(p, old, new) for p, (old, new) in sorted(files.items()) if old != new)


def empty_python(where: Path) -> str:
    """An interpreter whose environment has nothing installed (stdlib only)."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(where)
    return str(where / "bin" / "python")


def ruff_term(before: Counter[tuple[str, str, str]], after: Counter[tuple[str, str, str]]) -> tuple[int, int]:
    """(introduced, resolved) findings between two multisets."""
    introduced = sum((after - before).values())
    resolved = sum((before - after).values())
    return introduced, resolved


def score_commit(commit: Commit, variants: list[tuple[str, dict[str, tuple[str | None, str | None]]]],
                 tmp: Path, python: str, verify: bool) -> dict[str, Any]:
    """Score the real edit and its corruptions as one step each from the base; every config."""
    base_dir = tmp / "base"
    base_files = {p: old for p, (old, _) in commit.files.items()}
    t0 = time.perf_counter()
    ruff_base = ruff_tree(base_dir, commit.roots)
    base_counter = Counter(f for fs in ruff_base.values() for f in fs)
    bundles: list[dict[str, Any]] = []
    out: dict[str, Any] = {"variants": {}}
    with RewardScorer(str(base_dir), python=python, severities=("error",), diag_term="delta") as scorer:
        runner = scorer._inner.runner
        base_diags = runner.diagnostics
        base_texts = {p: t for p, t in base_files.items() if t is not None}
        runner.on_bundle = bundles.append
        out["cold_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        for label, files in variants:
            bundles.clear()
            rec = scorer.score([{"op": "patch", "patch": make_patch(files), "id": label}])[0]
            # the step bundle carries the diagnostics of the files whose diagnostics changed
            changed = set(bundles[-1]["facts"]["scope"]["files"]) if bundles else set()
            after = [d for d in base_diags if d["path"] not in changed] + \
                (list(bundles[-1]["facts"]["diagnostics"]) if bundles else [])
            new_texts = {p: t for p, (_, t) in files.items() if t is not None}
            texts_before = {**_texts_of(base_dir, base_diags), **base_texts}
            texts_after = {**_texts_of(base_dir, after), **new_texts}
            for p, (_, t) in files.items():
                if t is None:
                    texts_after.pop(p, None)
            safety = rec["processReward"]["components"]["safety"]
            r: dict[str, float] = {"plain": rec["processReward"]["r"]}
            e_before, e_after = counted(base_diags, ("error",)), counted(after, ("error",))
            regr = diag_term(e_before, e_after, mode="regression", texts_before=texts_before,
                             texts_after=texts_after)
            r["regression"] = process_reward(diag_before=len(e_before), diag_after=len(e_after), safety=safety,
                                             diag_term="regression", term=regr.term)["r"]
            ew_b, ew_a = counted(base_diags, ("error", "warning")), counted(after, ("error", "warning"))
            r["err+warn"] = process_reward(diag_before=len(ew_b), diag_after=len(ew_a), safety=safety)["r"]
            # ruff: the files the step changed, re-linted; the others keep the base findings
            after_counter = Counter(base_counter)
            if rec["status"] == "ok":
                for p, (_, t) in files.items():
                    for f in ruff_base.get(p, []):
                        after_counter[f] -= 1
                    if t is not None:
                        after_counter.update(ruff_file(base_dir, p, t))
                after_counter = +after_counter
            intro, _resolved = ruff_term(base_counter, after_counter)
            r["ruff-gate"] = -1.0 if intro or not safety else 1.0
            nb = len(e_before) + sum(base_counter.values())
            na = len(e_after) + sum(after_counter.values())
            r["union"] = process_reward(diag_before=nb, diag_after=na, safety=safety)["r"]
            r["union-regr"] = process_reward(diag_before=nb, diag_after=na, safety=safety, diag_term="regression",
                                             term=regr.term - intro)["r"]
            out["variants"][label] = {
                "status": rec["status"], "r": r,
                "D": {"errors": [len(e_before), len(e_after)], "err+warn": [len(ew_b), len(ew_a)],
                      "ruff": [sum(base_counter.values()), sum(after_counter.values())]},
                "pyright_introduced": [f"{d['path']}:{d['range'][0] + 1} {d.get('code')}: {d['message'][:100]}"
                                       for d in regr.introduced][:6],
                "pyright_resolved": [f"{d['path']}:{d['range'][0] + 1} {d.get('code')}"
                                     f"{' (masked: ' + d['masked'] + ')' if d.get('masked') else ''}"
                                     for d in regr.resolved][:6],
                "ruff_introduced": [f"{p}: {c} {m[:80]}" for (p, c, m) in (after_counter - base_counter)][:6],
                "error": (rec.get("error") or {}).get("message"),
            }
        out["warm_s"] = time.perf_counter() - t1
        out["steps"] = len(variants)
    if verify:
        out["verify"] = verify_configs(commit, variants, base_dir, python, out["variants"])
    return out


def _texts_of(root: Path, diags: Iterable[dict[str, Any]]) -> dict[str, str]:
    out = {}
    for p in {d["path"] for d in diags}:
        try:
            out[p] = (root / p).read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            pass
    return out


def verify_configs(commit: Commit, variants: list[tuple[str, dict[str, tuple[str | None, str | None]]]],
                   base_dir: Path, python: str, got: dict[str, Any]) -> list[str]:
    """Score again with scorers built with the compared options; return mismatches."""
    bad = []
    for name, opts in (("regression", {"diag_term": "regression"}),
                       ("err+warn", {"severities": ("error", "warning")}),
                       # the union through ruff's language server (lanser reward --analyzers pyright,ruff)
                       ("union", {"analyzers": ("pyright", "ruff")})):
        with RewardScorer(str(base_dir), python=python, **opts) as scorer:
            for label, files in variants:
                rec = scorer.score([{"op": "patch", "patch": make_patch(files)}])[0]
                mine = got[label]["r"][name]
                if rec["processReward"]["r"] != mine:
                    bad.append(f"{commit.sha[:10]} {label} {name}: scorer {rec['processReward']['r']} != {mine}")
    return bad


# -- driver -----------------------------------------------------------------------------------

def materialise(git: Git, commit: Commit, dest: Path, settings: dict[str, Any] | None = None) -> None:
    dest.mkdir(parents=True)
    git.archive(commit.parent, commit.roots, dest)
    for junk in dest.rglob("__pycache__"):
        shutil.rmtree(junk)
    config: dict[str, Any] = {"include": commit.roots}
    if any(r.startswith("src/") for r in commit.roots):
        config["extraPaths"] = ["src"]
    config.update(settings or {})
    (dest / "pyrightconfig.json").write_text(json.dumps(config) + "\n", encoding="utf-8")


def run_repo(git: Git, args: argparse.Namespace, python: str, tmp: Path, log: Callable[[str], None]) -> dict[str, Any]:
    rev = git.rev(args.rev)
    packages = args.package or packages_at(git, rev)
    if not packages:
        raise SystemExit(f"{git.path}: no package found under src/ or at the top (use --package)")
    skipped: Counter[str] = Counter()
    want = min(args.commits, args.limit) if args.limit else args.commits
    selected: list[tuple[Commit, list[Corruption]]] = []
    for commit in candidate_commits(git, rev, packages, args.max_files, args.max_lines, skipped):
        index, words = package_index(commit, tree_texts(git, commit.sha, commit.roots))
        corrupt = corruptions(commit, args.seed, index, words)
        if not corrupt:
            skipped["no corruption target"] += 1
            continue
        selected.append((commit, corrupt))
        if len(selected) >= want:
            break
    commits = [c for c, _ in selected]
    log(f"{git.name}: packages {', '.join(packages)}; {len(commits)} commits "
        f"({commits[-1].sha[:10] if commits else '-'}..{rev[:10]}); skipped {dict(skipped)}")
    if args.dry_run:
        for commit, corrupt in selected:
            log(f"  {commit.sha[:10]} {commit.subject[:60]}")
            for c in corrupt:
                log(f"      {c.kind:6} {c.path}:{c.line} {c.what}{'' if c.needed else ' (not needed by new code)'}")
        selected = []
    rows: list[dict[str, Any]] = []
    totals = {"cold_s": 0.0, "warm_s": 0.0, "steps": 0}
    verify_bad: list[str] = []
    for n, (commit, corrupt) in enumerate(selected):
        work = tmp / git.name / commit.sha[:12]
        materialise(git, commit, work / "base", args.pyright_settings)
        variants = [("real", commit.files)]
        for c in corrupt:
            files = dict(commit.files)
            files[c.path] = (commit.files[c.path][0], c.text)
            variants.append((c.kind, files))
        row: dict[str, Any] = {"repo": git.name, "commit": commit.sha, "subject": commit.subject,
                               "files": sorted(commit.files), "linesChanged": commit.lines_changed,
                               "corruptions": [{"kind": c.kind, "path": c.path, "line": c.line, "what": c.what,
                                                "needed": c.needed} for c in corrupt]}
        res = score_commit(commit, variants, work, python, verify=n < args.verify)
        for k in ("cold_s", "warm_s", "steps"):
            totals[k] += res[k]
        verify_bad += res.get("verify", [])
        row["variants"] = res["variants"]
        rows.append(row)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        log(f"  [{n + 1}/{len(commits)}] {commit.sha[:10]} {len(corrupt)} corruptions "
            f"({', '.join(c.kind for c in corrupt)})")
    return {"repo": git.name, "path": git.path, "rev": rev, "packages": packages,
            "range": f"{commits[-1].sha}..{rev}" if commits else None, "oldest": commits[-1].sha if commits else None,
            "skipped": dict(skipped), "skippedCommits": sum(skipped.values()), "commits": rows,
            "timing": totals, "verify": verify_bad}


def pairs_of(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for repo in results:
        for row in repo["commits"]:
            vs = row.get("variants") or {}
            real = vs.get("real")
            if real is None:
                continue
            for c in row["corruptions"]:
                bad = vs[c["kind"]]
                outcome = {}
                for cfg in CONFIGS:
                    a, b = real["r"][cfg], bad["r"][cfg]
                    outcome[cfg] = "win" if a > b else ("tie" if a == b else "loss")
                out.append({"repo": repo["repo"], "commit": row["commit"], "kind": c["kind"], "corruption": c,
                            "real": real, "bad": bad, "outcome": outcome})
    return out


def tally(pairs: list[dict[str, Any]], cfg: str) -> tuple[int, int, int]:
    c = Counter(p["outcome"][cfg] for p in pairs)
    return c["win"], c["tie"], c["loss"]


def print_tables(results: list[dict[str, Any]], pairs: list[dict[str, Any]], examples: int) -> dict[str, Any]:
    repos = [r["repo"] for r in results]
    summary: dict[str, Any] = {}
    head = f"{'repo':12} {'kind':7} {'pairs':>5} | " + " | ".join(f"{c:^17}" for c in CONFIGS)
    print(head)
    print(f"{'':26} | " + " | ".join(f"{'w/t/l':>9} {'win%':>6} " for _ in CONFIGS))
    print("-" * len(head))
    for repo in repos + ["all"]:
        for kind in list(KINDS) + ["all"]:
            sel = [p for p in pairs if (repo == "all" or p["repo"] == repo) and (kind == "all" or p["kind"] == kind)]
            if not sel:
                continue
            cells = []
            for cfg in CONFIGS:
                w, t, lost = tally(sel, cfg)
                summary.setdefault(repo, {}).setdefault(kind, {})[cfg] = {"win": w, "tie": t, "loss": lost,
                                                                         "pairs": len(sel)}
                cells.append(f"{f'{w}/{t}/{lost}':>9} {100.0 * w / len(sel):5.1f}% ")
            print(f"{repo:12} {kind:7} {len(sel):>5} | " + " | ".join(cells))
        print("-" * len(head))
    # real edits that add Pyright errors themselves
    reals = [(r["repo"], row) for r in results for row in r["commits"] if (row.get("variants") or {}).get("real")]
    worse = [(repo, row) for repo, row in reals if row["variants"]["real"]["D"]["errors"][1]
             > row["variants"]["real"]["D"]["errors"][0]]
    intro = [(repo, row) for repo, row in reals if row["variants"]["real"]["pyright_introduced"]]
    ruff_worse = [(repo, row) for repo, row in reals if row["variants"]["real"]["ruff_introduced"]]
    print(f"\nreal edits: {len(reals)}; adding Pyright errors (D up): {len(worse)}; introducing any Pyright error "
          f"(identity): {len(intro)}; introducing a ruff F finding: {len(ruff_worse)}")
    for repo, row in intro[:examples]:
        v = row["variants"]["real"]
        print(f"  {repo} {row['commit'][:10]} D {v['D']['errors'][0]}->{v['D']['errors'][1]}: "
              f"{'; '.join(v['pyright_introduced'][:2])}")
    for repo, row in ruff_worse[:examples]:
        print(f"  {repo} {row['commit'][:10]} ruff: {'; '.join(row['variants']['real']['ruff_introduced'][:2])}")
    for cfg in CONFIGS:
        lost = [p for p in pairs if p["outcome"][cfg] != "win"]
        if not lost:
            continue
        print(f"\n{cfg}: {len(lost)} pairs not won (ties {sum(p['outcome'][cfg] == 'tie' for p in lost)}); "
              f"by kind {dict(Counter(p['kind'] for p in lost))}; examples:")
        for p in lost[:examples]:
            c = p["corruption"]
            print(f"  {p['repo']} {p['commit'][:10]} {c['path']}:{c['line']} {c['what']}: r real "
                  f"{p['real']['r'][cfg]} vs corrupt {p['bad']['r'][cfg]} ({p['outcome'][cfg]}); "
                  f"corrupt adds pyright [{'; '.join(p['bad']['pyright_introduced'][:2])}] "
                  f"ruff [{'; '.join(p['bad']['ruff_introduced'][:2])}]")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", action="append", required=True, help="a clone or bare git directory (repeatable)")
    ap.add_argument("--rev", default="HEAD", help="walk back from this revision (default HEAD)")
    ap.add_argument("--package", action="append", help="package name(s) (default: found under src/)")
    ap.add_argument("--commits", type=int, default=60, help="commits per repository (default 60)")
    ap.add_argument("--limit", type=int, default=0, help="quick run: at most N commits per repository")
    ap.add_argument("--max-files", type=int, default=4, help="skip commits changing more package .py files")
    ap.add_argument("--max-lines", type=int, default=200, help="skip commits changing more lines there")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verify", type=int, default=2,
                    help="re-score the first N commits of each repo with scorers built per config (default 2)")
    ap.add_argument("--python", help="interpreter whose environment pyright resolves imports in "
                                     "(default: an empty venv made for the run)")
    ap.add_argument("--pyright-settings", type=json.loads, default={}, metavar="JSON",
                    help='merged into the pyrightconfig.json written for every base tree, e.g. '
                         '\'{"enableTypeIgnoreComments": false, "pythonPlatform": "All"}\'')
    ap.add_argument("--examples", type=int, default=8, help="examples printed per config")
    ap.add_argument("--json", help="write every pair and the summary here")
    ap.add_argument("--dry-run", action="store_true", help="only select commits and print the corruptions")
    ap.add_argument("--keep", action="store_true", help="keep the temporary trees (printed)")
    args = ap.parse_args(argv)
    ruff_cmd()
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="lanser-rank-"))
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    try:
        python = args.python or empty_python(tmp / "env")
        results = [run_repo(Git(path), args, python, tmp, log) for path in args.repo]
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    pairs = pairs_of(results)
    print(f"pairs: {len(pairs)} from {sum(len(r['commits']) for r in results)} commits; seed {args.seed}; "
          f"pyrightconfig.json: include = the package dirs (+ extraPaths src), "
          f"settings {json.dumps(args.pyright_settings)}; imports resolve in "
          f"{args.python or 'an empty venv'}")
    for r in results:
        print(f"  {r['repo']}: commits skipped on the way: {r['skipped']}")
        t = r["timing"]
        print(f"  {r['repo']}: {r['path']} {r['range']} packages {','.join(r['packages'])}; "
              f"{len(r['commits'])} commits; server start+first check {t['cold_s']:.1f}s total, "
              f"{t['steps']} scored steps {t['warm_s']:.1f}s ({t['warm_s'] / max(t['steps'], 1):.2f}s/step)")
    print()
    summary = print_tables(results, pairs, args.examples)
    bad = [m for r in results for m in r["verify"]]
    verified = sum(min(args.verify, len(r["commits"])) for r in results)
    print(f"\nverify: {verified} base trees re-scored with per-config scorers: "
          f"{'all rewards equal' if not bad else f'{len(bad)} MISMATCHES'}")
    for m in bad[:10]:
        print("  " + m)
    print(f"\ntotal {time.perf_counter() - t0:.0f}s")
    print(machine_line())
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results, "summary": summary,
                                               "pairs": [{k: v for k, v in p.items() if k not in ("real", "bad")}
                                                         | {"r_real": p["real"]["r"], "r_bad": p["bad"]["r"]}
                                                         for p in pairs]}, indent=1) + "\n", encoding="utf-8")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
