"""The mutating commands through the CLI: human summary, --json, usage errors."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest

from lanser.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.server
def test_rename_dry_run_summary_names_unrenamed_candidates(tmp_path: Path) -> None:
    ws = shutil.copytree(FIXTURES / "project", tmp_path / "p", symlinks=True)
    code, out, err = cli("rename", "py://calc.core#parse_expr", "tokenize_expr", "-w", str(ws))
    assert code == 0, err
    assert "+def tokenize_expr(text: str) -> list[str]:" in out
    assert "unrenamed candidate (code): tests/test_core.py:6:12" in out
    assert "WARNING: 3 unrenamed candidate occurrence(s)" in out
    assert out.rstrip().splitlines()[-1].startswith("bundleId sha256:")
    code, out, err = cli("--json", "-w", str(ws), "rename", "py://calc.core#parse_expr", "parse_expr", "--apply")
    bundle = json.loads(out)
    assert code == 70 and bundle["error"]["details"]["reason"] == "no-op" and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["edit", "py://calc.core#parse_expr:body"],
    ["edit", "py://calc.core#parse_expr:body", "--text", "x", "--from-file", "-"],
    ["actions", "py://calc.core#parse_expr", "--apply", "-1"],
    ["actions", "py://calc.core#parse_expr", "--kind", "refactor"],
    ["rename", "py://calc.core#parse_expr"],
])
def test_usage_errors_exit_2(argv: list[str]) -> None:
    code, out, err = cli(*argv, "-w", str(FIXTURES / "project"))
    assert code == 2 and "Traceback" not in err


def test_invalid_new_name_exits_2_without_a_server(tmp_path: Path) -> None:
    code, out, err = cli("rename", "py://calc.core#parse_expr", "not valid", "-w", str(FIXTURES / "project"))
    assert code == 2 and err.startswith("lanser: E/BAD_INPUT: ") and len(err.splitlines()) == 1
    assert "identifier" in err
