"""Rename completeness on fixtures/project (pyright checks only ``calc``): the
tests' occurrences are reported as unrenamed candidates, --strict refuses, and
a complete rename keeps the project's own test-suite passing (real server)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from lanser.engine import Engine, Options
from lanser.engine.mutations import name_occurrences

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project") / "project"
    shutil.copytree(FIXTURES / "project", root, symlinks=True)
    return root


@pytest.fixture(scope="module")
def run(ws: Path) -> Iterator[Any]:
    loop = asyncio.new_event_loop()
    eng = Engine(Options(workspace=str(ws), python=sys.executable))

    def go(cmd: str, selector: str, args: dict[str, Any]) -> dict[str, Any]:
        return loop.run_until_complete(eng.run(cmd, selector, args))

    yield go
    loop.run_until_complete(eng.close())
    loop.close()


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".lanser" not in p.parts and "__pycache__" not in p.parts}


def test_unrenamed_candidates_reported(run: Any, ws: Path) -> None:
    before = snapshot(ws)
    b = run("rename", "py://calc.core#parse_expr", {"newName": "tokenize_expr"})
    assert b["status"] == "ok", b["error"]
    assert [f["path"] for f in b["edits"]["files"]] == ["calc/__init__.py", "calc/cli.py", "calc/core.py"]
    cands = b["edits"]["unrenamedCandidates"]
    assert cands == [
        {"path": "tests/test_core.py", "range": [0, 39, 0, 49], "kind": "code"},
        {"path": "tests/test_core.py", "range": [5, 11, 5, 21], "kind": "code"},
        {"path": "tests/test_core.py", "range": [9, 20, 9, 30], "kind": "code"},
    ]
    assert "3 unrenamed candidate occurrence(s)" in b["edits"]["result"]["message"]
    assert "tests/test_core.py:1:40" in b["edits"]["result"]["message"]
    assert snapshot(ws) == before


@pytest.mark.parametrize("apply", [False, True])
def test_strict_refuses_while_candidates_remain(run: Any, ws: Path, apply: bool) -> None:
    before = snapshot(ws)
    b = run("rename", "py://calc.core#parse_expr", {"newName": "tokenize_expr", "strict": True, "apply": apply})
    assert b["meta"]["exit_code"] == 70, b["error"]
    assert b["error"]["details"] == {"reason": "unrenamed-candidates", "count": 3}
    assert b["edits"]["applied"] is False and len(b["edits"]["unrenamedCandidates"]) == 3
    assert b["processReward"]["components"]["safety"] == 0
    assert snapshot(ws) == before


def test_complete_rename_keeps_the_project_tests_passing(run: Any, ws: Path) -> None:
    b = run("rename", "py://calc.cli#run", {"newName": "run_cli", "strict": True, "apply": True})
    assert b["status"] == "ok", b["error"]
    assert b["edits"]["applied"] is True and b["edits"]["unrenamedCandidates"] == []
    assert b["edits"]["result"]["files"] == ["calc/cli.py"]
    text = (ws / "calc/cli.py").read_text()
    assert "def run_cli(argv: list[str]) -> int:" in text and "raise SystemExit(run_cli(sys.argv[1:]))" in text
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=ws,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout


def test_name_occurrences_skip_comments_and_see_strings() -> None:
    text = 'x = parse_expr(1)  # parse_expr here\n__all__ = ["parse_expr"]\ns = """\n a parse_expr"""\nparse_exprs = 1\n'
    assert name_occurrences(text, "parse_expr") == [(0, 4, "code"), (1, 12, "string"), (3, 3, "string")]
    assert name_occurrences("def f(:\n  parse_expr\n", "parse_expr") == [(1, 2, "text")]
