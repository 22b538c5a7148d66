"""Checks before writing: names, globs, confidence, parsing, jail, staleness, case renames."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lanser.edits import checks
from lanser.edits.checks import InvalidNewName, check_new_name, path_allowed
from lanser.edits.plan import plan_from_contents, plan_from_workspace_edit
from lanser.errors import Ambiguous, ApplyConflict, BadInput, BadSelectorSyntax, ContentModified, FsPermissions
from lanser.workspace import Workspace

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.mark.parametrize("name", ["foo", "_x", "Été", "match", "case", "type", "_"])
def test_valid_new_names(name: str) -> None:
    assert check_new_name(name) == name


@pytest.mark.parametrize("name,reason", [("", "empty"), ("1x", "not-identifier"), ("a-b", "not-identifier"),
                                         ("a.b", "not-identifier"), ("class", "keyword"),
                                         ("None", "keyword"), ("ﬁle", "not-nfkc")])
def test_invalid_new_names(name: str, reason: str) -> None:
    with pytest.raises(InvalidNewName) as info:
        check_new_name(name)
    assert isinstance(info.value, BadInput) and not isinstance(info.value, BadSelectorSyntax)
    assert info.value.exit_code == 2 and info.value.code == "E/BAD_INPUT"
    assert info.value.details["reason"] == reason


def test_globs() -> None:
    assert path_allowed("src/a.py")
    assert not path_allowed("src/a.py", deny=["src/*"])
    assert not path_allowed("src/a.py", allow=["src/*"], deny=["*.py"])  # deny wins
    assert not path_allowed("tests/t.py", allow=["src/*"])
    assert path_allowed("src/deep/a.py", allow=["src/"])
    assert path_allowed("a.py", allow=["**/*.py"])
    assert path_allowed("x/a.py", allow=["**/*.py"])
    assert not path_allowed("x/a.txt", allow=["**/*.py"])


def test_confidence() -> None:
    checks.check_confidence(0.5, 0.7, False)
    checks.check_confidence(0.9, 0.7, True)
    checks.check_confidence(None, 0.7, True)
    with pytest.raises(Ambiguous) as info:
        checks.check_confidence(0.5, 0.7, True)
    assert info.value.exit_code == 4


def test_syntax_error_line() -> None:
    assert checks.syntax_error_line(b"def f():\n    return 1\n") is None
    assert checks.syntax_error_line(b"x = 1\ndef f(:\n    pass\n") == 2
    assert checks.syntax_error_line(b"# -*- coding: latin-1 -*-\ns = '\xe9'\n") is None



def test_indentation_errors_tree_sitter_recovers_from_are_syntax_errors() -> None:
    """tree-sitter parses these cleanly; CPython (every version) refuses them with an
    IndentationError, as SWE-agent's linter refused marshmallow-1867's unindented return."""
    from lanser.selectors.structure import parser

    cases = {b"def f(x):\n    if x:\n        y = 1\n            return y\n": 4,   # unexpected indent
             b"def f(x):\n    y = 1\n  return y\n": 3,                           # unindent matches nothing
             b"def f():\n\tif 1:\n        return 2\n": 3}                        # tabs and spaces
    for text, line in cases.items():
        assert not parser().parse(text).root_node.has_error
        assert checks.syntax_error_line(text) == line, text
    assert checks.syntax_error_line(b"type X = int\n") is None  # newer syntax is still tree-sitter's call


def test_parse_check_refuses_only_newly_broken(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text("def f():\n    return 1\n")
    (tmp_path / "bad.py").write_text("def f(:\n")
    ws = Workspace(tmp_path)
    with pytest.raises(ApplyConflict) as info:
        checks.check_parses(plan_from_contents(ws, {"ok.py": b"def f(:\n    return 1\n"}))
    assert info.value.details == {"reason": "syntax", "files": [{"file": "ok.py", "line": 1}]}
    checks.check_parses(plan_from_contents(ws, {"bad.py": b"def g(:\n"}))   # was broken already
    checks.check_parses(plan_from_contents(ws, {"new.py": b"def g(:\n"}))   # new file: nothing broken
    checks.check_parses(plan_from_contents(ws, {"notes.txt": b"def g(:\n"}))


def test_stale_content(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    ws = Workspace(tmp_path)
    plan = plan_from_contents(ws, {"a.py": b"x = 2\n", "b.py": b"y = 1\n"})
    checks.check_unchanged(ws, plan)
    (tmp_path / "b.py").write_text("someone else\n")
    with pytest.raises(ContentModified) as info:
        checks.check_unchanged(ws, plan)
    assert info.value.exit_code == 74
    assert [f["file"] for f in info.value.details["files"]] == ["b.py"]


def test_case_insensitivity_probe(tmp_path: Path) -> None:
    (tmp_path / "file.py").write_text("")
    expected = os.path.exists(tmp_path / "FILE.PY")
    assert checks.is_case_insensitive(tmp_path) is expected


def test_case_only_rename_on_case_insensitive_fs_is_refused(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "file.py").write_text("x = 1\n")
    ws = Workspace(tmp_path)
    edit = {"documentChanges": [{"kind": "rename", "oldUri": (tmp_path / "file.py").as_uri(),
                                 "newUri": (tmp_path / "File.py").as_uri()}]}
    plan = None
    if not checks.is_case_insensitive(tmp_path):
        plan = plan_from_workspace_edit(ws, edit)  # a case-sensitive fs renames fine
        assert [c.action for c in plan.changes] == ["create", "delete"]
    monkeypatch.setattr(checks, "is_case_insensitive", lambda d: True)
    with pytest.raises(FsPermissions) as info:
        plan_from_workspace_edit(ws, edit)
    assert info.value.details["reason"] == "case-only-rename"
    if plan is not None:  # the apply-time check catches a plan built elsewhere
        with pytest.raises(FsPermissions):
            checks.check_case_renames(ws, plan)


def test_a_syntax_error_is_named_at_its_line_not_line_1(tmp_path: Path) -> None:
    """tree-sitter wraps the file from its top in one ERROR node for a colon missing on line
    8; the error names line 8 (issue 12, item 9)."""
    from lanser.edits.checks import check_parses, syntax_error_line
    from lanser.edits.plan import FileChange, make_plan

    src = (FIXTURES / "project" / "calc" / "cli.py").read_bytes()
    broken = src.replace(b"def run(argv: list[str]) -> int:", b"def run(argv: list[str]) -> int")
    assert syntax_error_line(broken, "calc/cli.py") == 8
    with pytest.raises(ApplyConflict) as info:
        check_parses(make_plan([FileChange("calc/cli.py", src, broken)]))
    assert info.value.details["files"] == [{"file": "calc/cli.py", "line": 8}]
    assert "calc/cli.py:8" in info.value.message
