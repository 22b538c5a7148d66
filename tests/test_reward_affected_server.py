"""The reward runner pulls only the files a step can affect (rewards/affected.py) and keeps
the rest: every step's counts must still equal a fresh ``pyright --outputjson`` on the very
same tree, and the files left out must be the ones the rule says cannot change."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from lanser.engine import Engine, Options
from lanser.pyright_cli import count_by_severity, run_pyright_json
from lanser.rewards.runner import RewardOptions, TrajectoryRunner
from lanser.rewards.steps import Step, parse_steps

pytestmark = pytest.mark.server


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def replay(ws: Path, steps: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[str] | None]]:
    """Run ``steps``; after each, compare the counts with the pinned CLI on the same tree.
    Returns (record, files the step pulled; None = all) per step."""
    items = parse_steps("".join(json.dumps(s) + "\n" for s in steps))

    async def go() -> list[tuple[dict[str, Any], list[str] | None]]:
        engine = Engine(Options(workspace=str(ws)))
        out = []
        try:
            runner = TrajectoryRunner(engine, RewardOptions(severities=("error", "warning")))
            await runner.start()
            assert count_by_severity(runner.diagnostics) == count_by_severity(run_pyright_json(ws), ws)
            for item in items:
                assert isinstance(item, Step)
                rec = await runner.run_step(item)
                assert rec["status"] == "ok", rec.get("error")
                assert rec["diagnostics"] == count_by_severity(run_pyright_json(ws), ws), item.id
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
    assert pulled == [
        {"pkg/base.py", "pkg/uses.py", "pkg/chain.py"},    # not other.py, not app.py
        {"pkg/other.py", "app.py"},
        {"pkg/base.py", "pkg/uses.py", "pkg/chain.py"},
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
    # ns_user.py imports a module found nowhere in the workspace (to the rule: possibly library
    # code, which may import a workspace module), so every Python change pulls it too.
    assert pulled[0] == {"pkg/helper.py", "main.py", "ns_user.py"}
    assert pulled[1] == {"pkg/helper.py", "main.py", "ns_user.py"}
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
    ])
    pulled = [set(p) if p is not None else None for _, p in results]
    assert pulled[0] == {"a.py", "b.py", "c.py", "d.py"}  # b.py may import c; a.py imports b
    assert pulled[1] is None  # the configuration changed
    assert pulled[2] == set()
