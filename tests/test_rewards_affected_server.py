"""The reward runner pulls only the files a step can affect (diagnostics/affected.py) and keeps
the rest: every step's counts must still equal a fresh ``pyright --outputjson`` on the very
same tree, and the files left out must be the ones the rule says cannot change."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli, write_tree

from lanser.diagnostics.workspace import flatten, pull_files
from lanser.engine import Engine, Options
from lanser.pyright_cli import count_by_severity, run_pyright_json
from lanser.rewards.runner import RewardOptions, TrajectoryRunner
from lanser.rewards.steps import Step, parse_steps

pytestmark = pytest.mark.server




def replay(ws: Path, steps: list[dict[str, Any]],
           python: str | None = None) -> list[tuple[dict[str, Any], list[str] | None]]:
    """Run ``steps``; after each, compare the counts with the pinned CLI on the same tree.
    Returns (record, files the step pulled; None = all) per step."""
    items = parse_steps("".join(json.dumps(s) + "\n" for s in steps))

    async def go() -> list[tuple[dict[str, Any], list[str] | None]]:
        engine = Engine(Options(workspace=str(ws)))
        out = []
        try:
            runner = TrajectoryRunner(engine, RewardOptions(severities=("error", "warning"), by_file="all"))
            await runner.start()
            assert count_by_severity(runner.diagnostics) == count_by_severity(run_pyright_json(ws, python_path=python), ws)
            for item in items:
                assert isinstance(item, Step)
                rec = await runner.run_step(item)
                assert rec["status"] == "ok", rec.get("error")
                assert rec["diagnostics"] == count_by_severity(run_pyright_json(ws, python_path=python), ws), item.id
                out.append((rec, runner.last_pulled))
        finally:
            await engine.close()
        return out

    return asyncio.run(go())


def test_a_module_only_some_files_import(tmp_path):
    ws = write_tree(tmp_path / "ws", {
        "pkg/__init__.py": "",
        "pkg/base.py": "def value() -> int:\n    return 1\n",
        "pkg/uses.py": "from pkg.base import value\n\ntotal: int = value()\n",
        "pkg/chain.py": "from .uses import total\n\ndoubled: int = total * 2\n",
        "pkg/other.py": "import os\n\nbad: int = 'x'\nunused = os.getcwd().nope\n",
        "app.py": "import pkg.other\n\nprint(pkg.other.bad + 1)\n",
    })
    results = replay(ws, [
        {"id": "break-base", "op": "write", "path": "pkg/base.py",
         "content": "def value() -> str:\n    return '1'\n"},
        {"id": "fix-other", "op": "patch", "patch": "--- a/pkg/other.py\n+++ b/pkg/other.py\n@@ -2,3 +2,3 @@\n \n"
                                                      "-bad: int = 'x'\n+bad: int = 1\n unused = os.getcwd().nope\n"},
        {"id": "restore-base", "op": "write", "path": "pkg/base.py",
         "content": "def value() -> int:\n    return 1\n"},
        {"id": "break-app", "op": "write", "path": "app.py", "content": "import pkg.other\n\nprint(pkg.other.nah)\n"},
    ])
    errors = [rec["diagnostics"]["errors"] for rec, _ in results]
    assert errors == [3, 2, 1, 2]  # the unpulled file's errors are still counted
    pulled = [set(p) if p is not None else None for _, p in results]
    # uses.py's `total` keeps its declared type (the server says so), so chain.py is not pulled
    assert pulled == [
        {"pkg/base.py", "pkg/uses.py"},    # not chain.py, other.py, app.py
        {"pkg/other.py", "app.py"},
        {"pkg/base.py", "pkg/uses.py"},
        {"app.py"},
    ]
    assert results[0][0]["introduced"] and results[0][0]["introduced"][0]["path"] == "pkg/uses.py"


def test_a_created_file_resolves_an_unresolved_import_elsewhere(tmp_path):
    ws = write_tree(tmp_path / "ws", {
        "main.py": "from pkg import helper\n\nn: int = helper.go()\n",
        "ns_user.py": "import newdir.mod\n\nnewdir.mod.f()\n",
        "pkg/__init__.py": "",
        "pkg/unrelated.py": "x: int = 'no'\n",
        "plain.py": "import pkg.unrelated\n",
    })
    results = replay(ws, [
        {"id": "create-helper", "op": "write", "path": "pkg/helper.py",
         "content": "def go() -> int:\n    return 1\n"},
        {"id": "retype-helper", "op": "write", "path": "pkg/helper.py",
         "content": "def go() -> str:\n    return '1'\n"},
        {"id": "create-namespace", "op": "write", "path": "newdir/mod.py", "content": "def f() -> None:\n    pass\n"},
        {"id": "reset", "op": "reset"},  # deletes both again: the imports fail again
    ])
    errors = [rec["diagnostics"]["errors"] for rec, _ in results]
    assert errors == [2, 3, 2, 3]
    pulled = [set(p) if p is not None else None for _, p in results]
    # ns_user.py imports a module found nowhere (no installed library reaches the workspace
    # through it: diagnostics/libraries.py), so the helper's steps do not pull it.
    assert pulled[0] == {"pkg/helper.py", "main.py"}
    assert pulled[1] == {"pkg/helper.py", "main.py"}
    assert pulled[2] == {"newdir/mod.py", "ns_user.py"}
    assert pulled[3] == {"main.py", "ns_user.py"}
    assert "pkg/unrelated.py" in results[-1][0]["diagnostics"]["byFile"]  # kept from the start


def test_unsure_steps_pull_everything(tmp_path):
    ws = write_tree(tmp_path / "ws", {
        "a.py": "import b\n\nv: int = b.f()\n",
        "b.py": "def f(:\n    return 1\n",  # does not parse: its imports are unknown
        "c.py": "x = 1\n",
        "d.py": "import c\n",
    })
    results = replay(ws, [
        {"id": "other", "op": "write", "path": "c.py", "content": "x = 2\n"},
        {"id": "config", "op": "write", "path": "pyrightconfig.json",
         "content": '{"typeCheckingMode": "strict"}\n'},
        {"id": "data", "op": "write", "path": "notes.txt", "content": "hello\n"},
        {"id": "cycles", "op": "write", "path": "pyrightconfig.json",
         "content": '{"typeCheckingMode": "strict", "reportImportCycles": "error"}\n'},
        {"id": "cycle", "op": "write", "path": "c.py", "content": "import d\n\nx = 3\n"},
    ])
    pulled = [set(p) if p is not None else None for _, p in results]
    # b.py may import c (it does not parse), a.py imports b; d.py imports c but never uses x
    assert pulled[0] == {"a.py", "b.py", "c.py"}
    assert pulled[1] is None  # the configuration changed
    assert pulled[2] == set()
    assert pulled[4] is None  # import cycles are checked: any Python change pulls everything
    assert results[4][0]["diagnostics"]["errors"] > results[3][0]["diagnostics"]["errors"]  # c -> d -> c


def library_venv(ws: Path, files: dict[str, str]) -> str:
    """A virtual environment in the workspace's ``.venv`` (the server analyses with it) whose
    site-packages hold ``files``; returns its interpreter."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(ws / ".venv")], check=True)
    site = next((ws / ".venv" / "lib").glob("python3*/site-packages"))
    write_tree(site, files)
    return str(ws / ".venv" / "bin" / "python")


def test_a_library_that_imports_a_workspace_module(tmp_path):
    ws = write_tree(tmp_path / "ws", {
        "pkg/__init__.py": "",
        "pkg/base.py": "def value() -> int:\n    return 1\n",
        "uses_lib.py": "import mylib\n\nn: int = mylib.twice()\n",   # reaches pkg.base through mylib
        "uses_other.py": "import otherlib\n\nm: int = otherlib.one()\n",  # a library that does not
    })
    python = library_venv(ws, {
        "mylib/__init__.py": "from .impl import twice\n",
        "mylib/impl.py": "from pkg.base import value\n\n\ndef twice():\n    return value() * 2\n",
        "otherlib/__init__.py": "def one():\n    return 1\n",
    })
    results = replay(ws, [
        {"id": "retype", "op": "write", "path": "pkg/base.py", "content": "def value() -> str:\n    return '1'\n"},
    ], python=python)
    assert results[0][0]["diagnostics"]["errors"] == 1  # uses_lib.py: str * 2 is a str now
    assert set(results[0][1] or ()) == {"pkg/base.py", "uses_lib.py"}  # not uses_other.py


def test_the_library_fact_is_recorded_and_replayed_from_the_trace(tmp_path):
    ws = write_tree(tmp_path / "ws", {
        "pkg/__init__.py": "",
        "pkg/base.py": "def value() -> int:\n    return 1\n",
        "uses_lib.py": "import mylib\n\nn: int = mylib.twice()\n",
    })
    library_venv(ws, {"mylib/__init__.py": "from pkg.base import value\n\n\ndef twice():\n    return value() * 2\n"})
    steps = tmp_path / "steps.jsonl"
    steps.write_text(json.dumps({"op": "write", "path": "pkg/base.py",
                                 "content": "def value() -> str:\n    return '1'\n"}) + "\n{\"op\": \"reset\"}\n")
    trace = tmp_path / "trace.jsonl"
    rec = run_cli("reward", str(steps), "-w", str(ws), "--in-memory", "--trace-file", str(trace))
    assert rec.code == 0, rec.err
    events = [json.loads(line) for line in trace.read_text("utf-8").splitlines()]
    facts = [e for e in events if e["event"] == "env"]
    assert [(f["fact"], f["question"], f["answer"]) for f in facts] == [("libraries", ["mylib"], ["mylib"])]
    # The library is gone: a replay that read the environment would pull fewer files and differ.
    shutil.rmtree(next((ws / ".venv" / "lib").glob("python3*/site-packages")) / "mylib")
    out = run_cli("trace", "replay", str(trace), "-w", str(ws), "--records")
    assert out.code == 0, out.err
    assert out.out == rec.out
    # An answer edited in the trace is caught before anything is replayed.
    trace.write_text(trace.read_text("utf-8").replace('"answer":["mylib"]', '"answer":[]'), encoding="utf-8")
    assert run_cli("trace", "replay", str(trace), "-w", str(ws)).code == 76


BASE = ("def value() -> int:\n    return 1\n\n\nclass Box:\n    def get(self) -> int:\n        return 1\n")


def test_a_body_only_edit_pulls_only_its_file(tmp_path):
    ws = write_tree(tmp_path / "ws", {
        "pkg/__init__.py": "",
        "pkg/base.py": BASE,
        "pkg/uses.py": "from pkg.base import Box, value\n\ntotal: int = value() + Box().get()\nlabel: str = Box().size\n",
    })
    results = replay(ws, [
        {"id": "body", "op": "write", "path": "pkg/base.py", "content": BASE.replace("return 1", "return int('2')", 1)},
        {"id": "body-error", "op": "write", "path": "pkg/base.py", "content": BASE.replace("return 1", "return 'x'", 1)},
        # a method body that declares a member: other files see it (uses.py's error goes away)
        {"id": "member", "op": "write", "path": "pkg/base.py",
         "content": BASE.replace("        return 1", "        self.size = 'big'\n        return 1")},
    ])
    assert [rec["diagnostics"]["errors"] for rec, _ in results] == [1, 2, 0]
    assert [set(p) if p is not None else None for _, p in results] == [
        {"pkg/base.py"}, {"pkg/base.py"}, {"pkg/base.py", "pkg/uses.py"}]


def test_a_body_edit_that_changes_a_type_asks_the_importers(tmp_path):
    """A body-only edit that changes a function's inferred type: its importers' names that use
    it are asked before (the server taken back to the old text for a moment) and after; the
    one whose type changed reaches its importers, the one that kept its type does not."""
    ws = write_tree(tmp_path / "ws", {
        "pkg/__init__.py": "",
        "pkg/base.py": "def value():\n    return int('1')\n",
        "pkg/mid.py": ("from pkg.base import value\n\n\ndef twice():\n    return [value(), value()]\n\n\n"
                       "def size():\n    return len([value()])\n"),
        "pkg/top.py": "from pkg.mid import size, twice\n\na: list[int] = twice()\nb: int = size()\n",
        "pkg/other.py": "from pkg.mid import size\n\nc: int = size()\n",
    })
    results = replay(ws, [
        {"id": "type", "op": "write", "path": "pkg/base.py", "content": "def value():\n    return str(1)\n"},
        {"id": "back", "op": "write", "path": "pkg/base.py", "content": "def value():\n    return int('2')\n"},
        {"id": "same", "op": "write", "path": "pkg/base.py", "content": "def value():\n    return int('3')\n"},
    ])
    assert [rec["diagnostics"]["errors"] for rec, _ in results] == [1, 0, 0]
    assert [set(p) if p is not None else None for _, p in results] == [
        {"pkg/base.py", "pkg/mid.py", "pkg/top.py"}, {"pkg/base.py", "pkg/mid.py", "pkg/top.py"}, {"pkg/base.py"}]


def test_a_wildcard_import_passes_on_only_the_names_it_binds(tmp_path):
    """``from m import *`` binds a static ``__all__``'s names, else those without a leading
    underscore: a new private helper reaches no file through the star import; a new public
    name does (it resolves an attribute another file asked for); a name left out of
    ``__all__`` does not (the attribute stays unknown)."""
    listed = "__all__ = ['total']\n\n\ndef total() -> int:\n    return 1\n"
    ws = write_tree(tmp_path / "ws", {
        "pkg/__init__.py": "from .base import *\nfrom .listed import *\n",
        "pkg/base.py": "def value() -> int:\n    return 1\n",
        "pkg/listed.py": listed,
        "app.py": "import pkg\n\nx: int = pkg.value()\ny: int = pkg.extra()\n",
        "more.py": "import pkg\n\nz: int = pkg.hidden()\n",
    })
    base = "def value() -> int:\n    return 1\n"
    results = replay(ws, [
        {"id": "private", "op": "write", "path": "pkg/base.py",
         "content": base + "\n\ndef _helper() -> str:\n    return 'x'\n"},
        {"id": "public", "op": "write", "path": "pkg/base.py",
         "content": base + "\n\ndef _helper() -> str:\n    return 'x'\n\n\ndef extra() -> int:\n    return 2\n"},
        {"id": "unlisted", "op": "write", "path": "pkg/listed.py",
         "content": listed + "\n\ndef hidden() -> int:\n    return 3\n"},
    ])
    assert [rec["diagnostics"]["errors"] for rec, _ in results] == [2, 1, 1]
    assert [set(p) if p is not None else None for _, p in results] == [
        {"pkg/base.py", "pkg/__init__.py"}, {"pkg/base.py", "pkg/__init__.py", "app.py"},
        {"pkg/listed.py", "pkg/__init__.py"}]


SHAPES = ("class Box:\n    def __init__(self):\n        self.width = 1\n\n    def area(self):\n"
          "        return self.width * 2\n")


def test_a_class_changed_inside_its_methods_reaches_only_files_naming_a_changed_member(tmp_path):
    """diagnostics/members.py: a method body's change reaches the files that mention the
    members whose types changed (asked of the server), not every file naming the class."""
    ws = write_tree(tmp_path / "ws", {
        "pkg/__init__.py": "",
        "pkg/shapes.py": SHAPES,
        "pkg/user_area.py": "from pkg.shapes import Box\n\nb: int = Box().area()\n",
        "pkg/user_width.py": "from pkg.shapes import Box\n\nw: int = Box().width\n",
        "pkg/mention.py": "from pkg.shapes import Box\n\nBOXES = [Box()]\n",
    })
    member = SHAPES.replace("        self.width = 1\n", "        self.width = 1\n        self.depth = 2\n")
    wide = member.replace("self.width = 1", "self.width = str(1)")
    same = member.replace("self.width = 1", "self.width = str(2)")
    dunder = same.replace("def __init__(self):", "def __init__(self, w=1):")
    results = replay(ws, [
        {"id": "new-member", "op": "write", "path": "pkg/shapes.py", "content": member},
        {"id": "member-type", "op": "write", "path": "pkg/shapes.py", "content": wide},
        {"id": "same-type", "op": "write", "path": "pkg/shapes.py", "content": same},
        {"id": "dunder", "op": "write", "path": "pkg/shapes.py", "content": dunder},
    ])
    assert [rec["diagnostics"]["errors"] for rec, _ in results] == [0, 2, 2, 2]
    everyone = {"pkg/shapes.py", "pkg/user_area.py", "pkg/user_width.py", "pkg/mention.py"}
    assert [set(p) if p is not None else None for _, p in results] == [
        {"pkg/shapes.py"},                                           # nobody mentions depth
        {"pkg/shapes.py", "pkg/user_area.py", "pkg/user_width.py"},  # width, and area reads it
        {"pkg/shapes.py"},                                           # width is still a str
        everyone]                                                    # __init__ is called as Box()


def test_edits_on_a_real_package_match_a_full_pull(tmp_path):
    """click (17 modules, import cycles): after each step the kept-and-pulled diagnostics
    equal a pull of every file from the same server.  (benchmarks/check_affected.py runs
    long random sequences of the same kinds of edits.)"""
    import click


    ws = tmp_path / "ws"
    shutil.copytree(Path(click.__file__).parent, ws / "click", ignore=shutil.ignore_patterns("__pycache__"))
    (ws / "pyrightconfig.json").write_text('{"include": ["click"]}\n')
    fmt = (ws / "click" / "formatting.py").read_text()
    utils = (ws / "click" / "utils.py").read_text()
    core = (ws / "click" / "core.py").read_text()
    assert "    return tuple(y for x, y in sorted(widths.items()))" in fmt
    assert "def make_str(value: t.Any) -> str:" in utils and "    def get_usage(self, ctx: Context) -> str:" in core
    steps = [
        {"id": "sealed-body", "op": "write", "path": "click/formatting.py",
         "content": fmt.replace("    return tuple(y for x, y in sorted(widths.items()))",
                                "    return [y for x, y in sorted(widths.items())]")},
        {"id": "signature", "op": "write", "path": "click/utils.py",
         "content": utils.replace("def make_str(value: t.Any) -> str:", "def make_str(value: t.Any) -> int:")},
        {"id": "method-rename", "op": "write", "path": "click/core.py",
         "content": core.replace("    def get_usage(self, ctx: Context) -> str:", "    def usage(self, ctx: Context) -> str:")},
        {"id": "new-module", "op": "write", "path": "click/extras.py",
         "content": "from click.utils import make_str\n\nX: str = make_str(1)\n"},
        {"id": "reset", "op": "reset"},
    ]
    items = parse_steps("".join(json.dumps(s) + "\n" for s in steps))

    async def go() -> list[tuple[int, int]]:
        engine = Engine(Options(workspace=str(ws)))
        sizes = []
        try:
            runner = TrajectoryRunner(engine, RewardOptions())
            await runner.start()
            for item in items:
                assert isinstance(item, Step)
                rec = await runner.run_step(item)
                assert rec["status"] == "ok", rec.get("error")
                assert engine.session is not None
                assert runner.checked is not None
                everything = flatten(await pull_files(engine.session, sorted(runner.checked.checked)))
                assert runner.diagnostics == everything, item.id
                sizes.append((len(runner.last_pulled) if runner.last_pulled is not None else -1,
                              len(runner.checked.checked)))
        finally:
            await engine.close()
        return sizes

    sizes = asyncio.run(go())
    assert sizes[0] == (1, 17)  # a sealed body: only formatting.py
    assert all(0 <= pulled < total for pulled, total in sizes[1:])  # never everything
