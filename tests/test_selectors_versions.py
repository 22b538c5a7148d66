"""Stale positions: old text from git or the snapshot store, mapped through the change."""

from __future__ import annotations

import os
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lanser.selectors.versions import map_position, map_range, old_text_for, save_snapshot
from lanser.workspace import Workspace, blob_id

OLD = """\
import os


def load_data(path, limit=10):
    rows = read(path)
    return rows[:limit]


def helper():
    return 42
"""

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_CONFIG_NOSYSTEM": "1"}


def _git(cwd, *args: str) -> str:
    env = dict(os.environ, **GIT_ENV)
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def _pos(text: str, needle: str) -> tuple[int, int]:
    offset = text.index(needle)
    before = text[:offset]
    return before.count("\n"), offset - (before.rfind("\n") + 1)


@pytest.fixture
def repo(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(OLD)
    _git(tmp_path, "add", "src/app.py")
    _git(tmp_path, "commit", "-q", "-m", "init")
    return tmp_path


def test_stale_position_maps_through_a_git_blob(repo):
    version = _git(repo, "hash-object", "src/app.py")
    new = "import sys\n" + OLD.replace("limit=10", "limit=100").replace("rows = read(path)",
                                                                         "rows = list(read(path))")
    (repo / "src" / "app.py").write_text(new)
    ws = Workspace(repo)
    old = old_text_for(ws, "src/app.py", version)
    assert old == OLD
    for needle in ("limit):", "read(path)", "return 42", "helper", "rows[:limit]"):
        needle_old = needle if needle != "limit):" else "limit=10):"
        line, col = _pos(OLD, needle_old)
        assert map_position(old, new, line, col) == _pos(new, needle if needle != "limit):" else "limit=100):")


def test_blob_in_a_parent_repository(repo):
    version = _git(repo, "hash-object", "src/app.py")
    assert old_text_for(Workspace(repo / "src"), "app.py", version) == OLD


def test_missing_blob_returns_none(repo):
    ws = Workspace(repo)
    assert old_text_for(ws, "src/app.py", blob_id(b"never committed\n")) is None
    assert old_text_for(ws, "src/app.py", "not-hex") is None
    tree = _git(repo, "rev-parse", "HEAD^{tree}")
    assert old_text_for(ws, "src/app.py", tree) is None        # an object, but not a blob


def test_no_repository_and_no_snapshot(tmp_path):
    assert old_text_for(Workspace(tmp_path), "a.py", blob_id(OLD.encode())) is None


def test_snapshot_store(tmp_path):
    ws = Workspace(tmp_path)
    raw = "x = '\u00e9\U0001F600'\n".encode()
    oid = save_snapshot(ws, raw)
    assert oid == blob_id(raw)
    assert (tmp_path / ".lanser" / "snapshots" / oid).read_bytes() == raw
    assert save_snapshot(ws, raw) == oid                       # idempotent
    assert old_text_for(ws, "a.py", oid.upper()) == raw.decode()


def test_corrupt_snapshot_is_not_trusted(tmp_path):
    ws = Workspace(tmp_path)
    oid = save_snapshot(ws, b"a = 1\n")
    (tmp_path / ".lanser" / "snapshots" / oid).write_bytes(b"a = 2\n")
    assert old_text_for(ws, "a.py", oid) is None


# -- mapping -----------------------------------------------------------------------

def test_deleted_line_maps_to_none():
    new = OLD.replace("    rows = read(path)\n", "")
    assert map_position(OLD, new, *_pos(OLD, "rows = read")) is None
    assert map_position(OLD, new, *_pos(OLD, "return rows")) == _pos(new, "return rows")


def test_change_within_a_line_keeps_unchanged_characters():
    new = OLD.replace("def load_data(path, limit=10):", "def load_data(self, path, limit=10):")
    assert map_position(OLD, new, *_pos(OLD, "path, limit")) == _pos(new, "path, limit")
    assert map_position(OLD, new, *_pos(OLD, "limit=10")) == _pos(new, "limit=10")


def test_position_inside_replaced_characters_stays_in_the_replacement():
    new = OLD.replace("return 42", "return 4242")
    line, col = _pos(OLD, "42\n")
    mapped = map_position(OLD, new, line, col + 1)
    assert mapped is not None
    new_line, new_col = mapped
    assert new_line == line and _pos(new, "4242")[1] <= new_col <= _pos(new, "4242")[1] + 4


def test_map_range_shrinks_on_partial_deletion():
    new = OLD.replace("def load_data(path, limit=10):\n", "")
    start = _pos(OLD, "def load_data")
    end_line, _ = _pos(OLD, "return rows")
    end = (end_line, len(OLD.split("\n")[end_line]))
    mapped = map_range(OLD, new, *start, *end)
    assert mapped == (*_pos(new, "    rows = read"), end_line - 1, len(new.split("\n")[end_line - 1]))
    gone = OLD.replace("def helper():\n    return 42\n", "")
    assert map_range(OLD, gone, *_pos(OLD, "def helper"), *_pos(OLD, "42")) is None


@settings(max_examples=200)
@given(st.lists(st.text("abc xyz", max_size=8), min_size=1, max_size=12), st.data())
def test_inserted_lines_shift_positions(lines, data):
    lines = [f"{i}: {text}" for i, text in enumerate(lines)]  # unique, so the diff is unambiguous
    old = "\n".join(lines)
    at = data.draw(st.integers(0, len(lines)))
    added = data.draw(st.lists(st.just("# new line"), min_size=1, max_size=3))
    new = "\n".join(lines[:at] + added + lines[at:])
    line = data.draw(st.integers(0, len(lines) - 1))
    col = data.draw(st.integers(0, len(lines[line])))
    expected = (line + (len(added) if line >= at else 0), col)
    assert map_position(old, new, line, col) == expected
    assert map_position(old, old, line, col) == (line, col)
