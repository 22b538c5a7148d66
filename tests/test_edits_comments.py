"""Edits that remove comments outside what they claim to change (issue 12, item 4).

Pure tests of :func:`lanser.edits.removes_comments` on hand-made plans, then the real
server: pyright's organize-imports drops ``# noqa`` and ``# type: ignore`` comments
with the import lines it rewrites; Lanser flags that in the preview, the processReward
calls it unsafe, and ``--strict`` refuses it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli

from lanser.edits import FileChange, claimed_lines, removes_comments
from lanser.edits.comments import pragma_of
from lanser.edits.plan import make_plan

BEFORE = ('"""Doc."""\n'
          "# formerly defined here: helpers\n"
          "import sys  # noqa: F401\n"
          "import os\n"
          "from typing import List  # type: ignore\n"
          "\n"
          "x = '# not a comment'  # a real one\n")


def plan(before: str | None, after: str | None, path: str = "m.py", **kw: object):
    enc = lambda s: None if s is None else s.encode("utf-8")  # noqa: E731
    return make_plan([FileChange(path, enc(before), enc(after), **kw)])  # type: ignore[arg-type]


def test_removed_pragmas_are_named_and_placed() -> None:
    after = BEFORE.replace("  # noqa: F401", "").replace("  # type: ignore", "")
    removed = removes_comments(plan(BEFORE, after))
    assert [(r.path, r.range, r.text, r.pragma) for r in removed] == [
        ("m.py", (2, 12, 2, 24), "# noqa: F401", "noqa"),
        ("m.py", (4, 25, 4, 39), "# type: ignore", "type: ignore")]
    assert removed[0].describe() == "m.py:3:13  # noqa: F401"
    assert removed[0].to_json() == {"path": "m.py", "range": [2, 12, 2, 24], "text": "# noqa: F401",
                                    "pragma": "noqa"}


def test_moved_comments_are_kept_and_strings_are_not_comments() -> None:
    lines = BEFORE.splitlines(keepends=True)
    after = "".join([lines[0], lines[4], lines[3], lines[2], lines[1], lines[5],
                     "x = '# gone from the string'  # a real one\n"])
    assert removes_comments(plan(BEFORE, after)) == []


def test_a_changed_comment_counts_as_removed() -> None:
    after = BEFORE.replace("# formerly defined here: helpers", "# defined here")
    [removed] = removes_comments(plan(BEFORE, after))
    assert removed.text == "# formerly defined here: helpers" and removed.pragma is None


def test_claimed_lines_are_the_edits_business() -> None:
    after = BEFORE.replace("  # noqa: F401", "")
    assert removes_comments(plan(BEFORE, after), claimed_lines("m.py", [2, 0, 3, 0])) == []
    assert len(removes_comments(plan(BEFORE, after), claimed_lines("m.py", [3, 0, 4, 0]))) == 1


def test_duplicates_are_counted() -> None:
    before = "a = 1  # noqa\nb = 2  # noqa\n"
    [removed] = removes_comments(plan(before, "a = 1  # noqa\nb = 2\n"))
    assert removed.pragma == "noqa"


def test_new_deleted_and_non_python_files() -> None:
    assert removes_comments(plan(None, "# new\n")) == []
    assert removes_comments(plan(BEFORE, None)) == []  # deleting a file is its own decision
    assert removes_comments(plan("# a\n", "b\n", path="notes.txt")) == []


def test_utf16_columns_and_unparsable_files() -> None:
    before = "s = '😀'  # noqa\n"
    [removed] = removes_comments(plan(before, "s = '😀'\n"))
    assert removed.range == (0, 10, 0, 16)  # the emoji is two UTF-16 units
    broken = "def f(:\n    pass  # keep me\n"
    assert removes_comments(plan(broken, "def f(:\n    pass\n"))[0].text == "# keep me"


@pytest.mark.parametrize("comment,pragma", [
    ("# noqa", "noqa"), ("# NOQA: E501", "noqa"), ("# type: ignore[attr-defined]", "type: ignore"),
    ("# pyright: ignore[reportGeneralTypeIssues]", "pyright: ignore"), ("# pylint: disable=x", "pylint"),
    ("# fmt: off", "fmt"), ("# isort: skip", "isort"), ("# pragma: no cover", "pragma"), ("# just prose", None)])
def test_pragmas(comment: str, pragma: str | None) -> None:
    assert pragma_of(comment) == pragma


# -- the real server: organize imports -------------------------------------------------------

SOURCE = ('"""Module doc."""\n'
          "# formerly defined here: the helpers below\n"
          "import sys  # noqa: F401\n"
          "import os\n"
          "from typing import List  # type: ignore\n"
          "import collections  # noqa: F401\n"
          "import abc\n"
          "\n"
          "print(os.sep, abc)\n")


@pytest.fixture()
def ws(tmp_path: Path) -> Path:
    (tmp_path / "pyrightconfig.json").write_text("{}\n")
    (tmp_path / "m.py").write_text(SOURCE)
    return tmp_path


@pytest.mark.server
def test_organize_imports_that_drops_pragmas_is_flagged_and_unsafe(ws: Path) -> None:
    result = run_cli("-w", str(ws), "--json", "actions", "m.py:1:1", "--apply", "0")
    assert result.code == 0, result.err
    bundle = result.bundle
    assert bundle["edits"]["applied"] is True
    removed = bundle["edits"]["removedComments"]
    assert [(r["range"][0], r["text"], r["pragma"]) for r in removed] == [
        (2, "# noqa: F401", "noqa"), (4, "# type: ignore", "type: ignore"), (5, "# noqa: F401", "noqa")]
    assert "WARNING: removes 3 comment(s)" in bundle["edits"]["result"]["message"]
    assert bundle["processReward"]["components"]["safety"] == 0
    assert bundle["processReward"]["r"] < 0
    assert "# noqa" not in (ws / "m.py").read_text()  # applied (without --strict): the user's call


@pytest.mark.server
def test_strict_refuses_it_and_writes_nothing(ws: Path) -> None:
    result = run_cli("-w", str(ws), "--json", "actions", "m.py:1:1", "--apply", "0", "--strict")
    assert result.code == 70, result.err
    err = result.bundle["error"]
    assert err["code"] == "E/APPLY_CONFLICT" and err["details"] == {"reason": "removes-comments", "count": 3}
    assert "m.py:3:13  # noqa: F401" in err["message"]
    assert result.bundle["processReward"]["components"]["safety"] == 0
    assert (ws / "m.py").read_text() == SOURCE
    plain = run_cli("-w", str(ws), "actions", "m.py:1:1", "--apply", "0", "--strict")
    assert plain.code == 70 and plain.err.startswith("lanser: E/APPLY_CONFLICT: --strict: the action")


@pytest.mark.server
def test_the_human_preview_warns(ws: Path) -> None:
    result = run_cli("-w", str(ws), "actions", "m.py:1:1", "--apply", "0")
    assert result.code == 0
    assert "WARNING: removes pragma 'noqa': m.py:3:13  # noqa: F401" in result.out.splitlines()


@pytest.mark.server
def test_an_edit_inside_its_range_is_not_flagged(ws: Path) -> None:
    (ws / "f.py").write_text("def f() -> int:\n    # old way\n    return 1  # noqa\n\n\n# keep\n")
    result = run_cli("-w", str(ws), "--json", "edit", "py://f#f:body", "--text", "return 2", "--strict")
    assert result.code == 0, result.err
    assert "removedComments" not in result.bundle["edits"]
    assert result.bundle["processReward"]["components"]["safety"] == 1
