"""The reward's counts equal ``pyright --outputjson`` on a workspace whose configuration has
include, exclude, ignore, strict, extraPaths, executionEnvironments and a ``# pyright:``
comment -- step by step, on disk and in memory, while steps edit and create files inside
and outside what the configuration checks (fixtures/configured)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from lanser.diagnostics.config import read_config
from lanser.diagnostics.fileset import FileSet
from lanser.engine import Engine, Options
from lanser.pyright_cli import count_by_severity, run_pyright_json
from lanser.rewards.overlay import OverlayWorkspace
from lanser.rewards.runner import RewardOptions, TrajectoryRunner
from lanser.rewards.steps import Step, parse_steps

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "configured"

STEPS: list[dict[str, Any]] = [
    {"id": "excluded-test", "op": "write", "path": "tests/test_core.py", "content": "a: int = 'x'\nb: int = 'y'\n"},
    {"id": "outside-include-imported", "op": "write", "path": "vendor/lib/helpers.py",
     "content": "def shout(text: str) -> int:\n    return len(text)\n"},
    {"id": "new-checked", "op": "write", "path": "src/app/new.py",
     "content": "from app.core import greet\n\nn: int = greet('x')\n"},
    {"id": "new-excluded", "op": "write", "path": "tests/test_new.py", "content": "c: int = 'z'\n"},
    {"id": "new-excluded-dir", "op": "write", "path": "src/app/generated/gen2.py", "content": "d: int = 'z'\n"},
    {"id": "ignored", "op": "write", "path": "src/app/legacy.py", "content": "x: int = 'a'\ny: int = 'b'\n"},
    {"id": "not-included", "op": "write", "path": "conftest.py", "content": "e: int = 'c'\n"},
    {"id": "strict-reach", "op": "write", "path": "src/app/core.py",
     "content": "from lib.helpers import shout\n\n\ndef greet(name: str) -> str:\n    return str(shout(name))\n\n\n"
                "def count(items: list[int]) -> int:\n    return len(items)\n\n\nBAD: int = 1\n"},
    {"id": "pragma", "op": "write", "path": "src/app/pragma.py",
     "content": "from app.core import greet\n\nvalue: str = greet('x')\nother: int = greet('y')\n"},
    {"id": "config", "op": "write", "path": "pyrightconfig.json",
     "content": '{"include": ["src", "tools"], "exclude": ["**/tests/**"], "strict": ["src/app/strictmod"],'
                ' "extraPaths": ["vendor"]}\n'},
    {"id": "reset", "op": "reset"},
]


def materialize(base: Path, dest: Path, overlay: dict[str, bytes | None]) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(base, dest)
    for rel, data in overlay.items():
        if data is None:
            (dest / rel).unlink(missing_ok=True)
        else:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(data)
    return dest


def test_the_enumeration_is_pyrights():
    files = FileSet(read_config(FIXTURE)).enumerate()
    assert files == ["src/app/__init__.py", "src/app/core.py", "src/app/legacy.py", "src/app/pragma.py",
                     "src/app/strictmod/__init__.py", "src/app/strictmod/typed.py", "tools/check.py"]
    assert run_pyright_json(FIXTURE)["summary"]["filesAnalyzed"] == len(files)


@pytest.mark.server
@pytest.mark.parametrize("in_memory", [False, True], ids=["on-disk", "in-memory"])
def test_every_step_counts_what_the_cli_counts(tmp_path, in_memory):
    ws = Path(shutil.copytree(FIXTURE, tmp_path / "ws"))
    items = parse_steps("".join(json.dumps(s) + "\n" for s in STEPS))

    async def go() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        engine = Engine(Options(workspace=str(ws)))
        out = []
        try:
            runner = TrajectoryRunner(engine, RewardOptions(severities=("error", "warning", "information"),
                                                            by_file="all", in_memory=in_memory))
            await runner.start()
            for item in items:
                assert isinstance(item, Step)
                rec = await runner.run_step(item)
                assert rec["status"] == "ok", (item.id, rec.get("error"))
                if in_memory:
                    assert isinstance(engine.ws, OverlayWorkspace)
                    tree = materialize(FIXTURE, tmp_path / "tree", engine.ws.overlay)
                else:
                    tree = ws
                out.append((str(item.id), rec["diagnostics"], count_by_severity(run_pyright_json(tree), tree)))
        finally:
            await engine.close()
        return out

    results = asyncio.run(go())
    for step_id, ours, cli in results:
        assert ours == cli, step_id
    by_id = {step_id: ours for step_id, ours, _ in results}
    # what the configuration leaves out never counts, whatever a step does to it
    for step_id in ("excluded-test", "new-excluded", "new-excluded-dir", "ignored", "not-included"):
        assert not any(p.startswith(("tests/", "conftest", "src/app/generated", "src/app/legacy"))
                       for p in by_id[step_id]["byFile"]), step_id
    assert "src/app/new.py" in by_id["new-checked"]["byFile"]
    assert "tools/other.py" in by_id["config"]["byFile"]  # the new include is honoured
    assert by_id["reset"] == results[0][1] or by_id["reset"]["errors"] == by_id["excluded-test"]["errors"]


def _chain_package(root: Path, n: int) -> Path:
    """``pkg/m0.py .. m{n-1}.py``, each importing the next and misusing it: one error per
    module but the last, none of them decidable without the next module."""
    pkg = root / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    for i in range(n):
        if i == n - 1:
            body = f"def f{i}() -> str:\n    return 'x'\n"
        else:
            body = (f"from pkg.m{i + 1} import f{i + 1}\n\n\ndef f{i}() -> str:\n    return f{i + 1}()\n\n\n"
                    f"wrong: int = f{i + 1}()\n")
        (pkg / f"m{i}.py").write_text(body, encoding="utf-8")
    return root


@pytest.mark.server
def test_nothing_is_pulled_before_pyright_has_listed_the_workspace(tmp_path):
    """Without ``include`` pyright logs "No include entries specified" while it reads the
    configuration, long before its listing ends; pulls answered in between saw a partial
    program (django: its first files came back unanswered or with fewer errors)."""
    n = 1500
    ws = _chain_package(tmp_path / "ws", n)

    async def go() -> tuple[list[str], dict[str, Any]]:
        engine = Engine(Options(workspace=str(ws)))
        try:
            session = await engine.server()
            assert session.client is not None
            log_at_start = list(session.client.log)
            runner = TrajectoryRunner(engine, RewardOptions(by_file="all"))
            await runner.start()
            return log_at_start, runner.snapshot.counts()
        finally:
            await engine.close()

    log, counts = asyncio.run(go())
    assert any(m == f"Found {n + 1} source files" for m in log), log[-3:]
    assert counts["errors"] == n - 1 == count_by_severity(run_pyright_json(ws), ws)["errors"]
    assert len(counts["byFile"]) == n + 1  # every file answered
    assert sum(1 for c in counts["byFile"].values() if c["errors"] == 1) == n - 1
