"""The reward's second analyzer (lanser/diagnostics/lint.py): ruff's language server through
the same session machinery, its pyflakes findings added to D; recorded and replayed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli, write_tree

pytestmark = pytest.mark.server

FILES = {
    "pyrightconfig.json": '{"include": ["pkg"]}\n',
    "pkg/__init__.py": "",
    "pkg/util.py": "import os\n\n\ndef cwd() -> str:\n    return os.getcwd()\n",
    "pkg/user.py": "from pkg.util import cwd\n\n\ndef where() -> str:\n    return cwd()\n",
}


def steps_file(tmp_path: Path, steps: list[dict]) -> Path:
    path = tmp_path / "steps.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in steps), encoding="utf-8")
    return path


STEPS = [
    # an unused import: Pyright is silent (reportUnusedImport is off), pyflakes is not
    {"id": "unused", "op": "write", "path": "pkg/user.py",
     "content": "import sys\nfrom pkg.util import cwd\n\n\ndef where() -> str:\n    return cwd()\n"},
    # the import a body needs is dropped: both see it (undefined name)
    {"id": "dropped", "op": "write", "path": "pkg/util.py", "content": "def cwd() -> str:\n    return os.getcwd()\n"},
    {"op": "reset"},
]


def test_ruff_findings_count_in_d_and_replay(tmp_path):
    ws = write_tree(tmp_path / "ws", FILES)
    steps = steps_file(tmp_path, STEPS)
    trace = tmp_path / "trace.jsonl"
    res = run_cli("reward", str(steps), "-w", str(ws), "--in-memory", "--analyzers", "pyright,ruff",
                  "--trace-file", str(trace))
    assert res.code == 0, res.err
    recs = [json.loads(line) for line in res.out.splitlines()]
    plain = run_cli("reward", str(steps), "-w", str(ws), "--in-memory")
    base = [json.loads(line) for line in plain.out.splitlines()]
    # Pyright alone: the unused import costs nothing; with ruff it is one more in D
    assert base[0]["processReward"]["components"]["diag_delta"] == 0
    assert recs[0]["processReward"]["components"]["diag_delta"] == -1
    assert recs[0]["lint"]["ruff"] == {"findings": 1, "byFile": {"pkg/user.py": 1}}
    assert [d["code"] for d in recs[0]["introduced"]] == ["F401"]
    # both analyzers see the dropped import: D rises by two, one error each
    assert recs[1]["processReward"]["components"]["diag_delta"] == -2
    assert sorted(d["code"] for d in recs[1]["introduced"]) == ["F821", "reportUndefinedVariable"]
    assert recs[1]["diagnostics"]["errors"] == base[1]["diagnostics"]["errors"]  # the Pyright count is unchanged
    assert recs[2]["lint"]["ruff"]["findings"] == 0 and recs[2]["processReward"]["components"]["diag_after"] == 0
    replayed = run_cli("trace", "replay", str(trace), "-w", str(ws), "--records")
    assert replayed.code == 0, replayed.err
    assert replayed.out == res.out


def test_ruff_needs_errors_of_the_whole_workspace(tmp_path):
    ws = write_tree(tmp_path / "ws", FILES)
    steps = steps_file(tmp_path, STEPS[:1])
    res = run_cli("reward", str(steps), "-w", str(ws), "--analyzers", "pyright,ruff", "--severity", "warning")
    assert res.code == 2 and "--analyzers" in res.err
    res = run_cli("reward", str(steps), "-w", str(ws), "--analyzers", "ruff")
    assert res.code == 2
