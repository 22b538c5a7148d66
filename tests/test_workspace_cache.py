"""Workspace.read's cache: never stale, even for same-size rewrites within a timestamp tick."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lanser.errors import FsPermissions, NotFound
from lanser.workspace import RACY_NS, Workspace


def _age(path: Path, seconds: float = 3600) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_unchanged_settled_file_is_served_from_the_cache(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("x = 1\n")
    _age(f)
    time.sleep(RACY_NS / 1e9 + 0.1)  # ctime must settle too (utime sets it to now)
    ws = Workspace(tmp_path)
    first = ws.read("m.py")
    assert ws.read("m.py") is first
    assert first.lines is first.lines  # the line table is computed once per read


def test_same_size_rewrite_right_after_a_read_is_seen(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("x = 1\n")
    ws = Workspace(tmp_path)
    assert ws.read("m.py").text == "x = 1\n"
    f.write_text("x = 2\n")  # same size, likely the same coarse mtime
    assert ws.read("m.py").text == "x = 2\n"


def test_rewrite_with_mtime_forced_back_is_seen(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("x = 1\n")
    _age(f)
    st = f.stat()
    time.sleep(RACY_NS / 1e9 + 0.1)
    ws = Workspace(tmp_path)
    assert ws.read("m.py").text == "x = 1\n"
    f.write_text("x = 3\n")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and mtime; ctime still moves
    assert ws.read("m.py").text == "x = 3\n"


def test_replaced_file_and_deleted_file(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("x = 1\n")
    ws = Workspace(tmp_path)
    ws.read("m.py")
    tmp = tmp_path / "m.py.new"
    tmp.write_text("y = 10\n")
    os.replace(tmp, f)  # an atomic replace, as editors and Lanser's own apply do
    assert ws.read("m.py").text == "y = 10\n"
    f.unlink()
    with pytest.raises(NotFound):
        ws.read("m.py")


def test_symlink_retargeted_outside_is_refused_after_a_cached_read(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "real.py").write_text("x = 1\n")
    outside = tmp_path / "secret.py"
    outside.write_text("token = 1\n")
    link = root / "link.py"
    link.symlink_to(root / "real.py")
    ws = Workspace(root)
    assert ws.read("link.py").text == "x = 1\n"
    link.unlink()
    link.symlink_to(outside)
    with pytest.raises(FsPermissions):
        ws.read("link.py")


def test_resolve_keeps_the_jail_for_prefix_siblings(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    sibling = tmp_path / "ws2"
    sibling.mkdir()
    (sibling / "a.py").write_text("x = 1\n")
    ws = Workspace(root)
    with pytest.raises(FsPermissions):
        ws.resolve("../ws2/a.py")
    with pytest.raises(FsPermissions):
        ws.resolve(str(sibling / "a.py"))
    assert ws.resolve(".")[1] == "."


def test_directory_swapped_for_a_link_outside_after_a_cached_read(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "m.py").write_text("x = 1\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "m.py").write_text("secret = 1\n")
    ws = Workspace(root)
    assert ws.read("pkg/m.py").text == "x = 1\n"
    (root / "pkg").rename(root / "old_pkg")
    (root / "pkg").symlink_to(outside, target_is_directory=True)
    with pytest.raises(FsPermissions):
        ws.read("pkg/m.py")
    # and a link that now points at another file inside gets that file, under its own name
    (root / "pkg").unlink()
    (root / "pkg").symlink_to(root / "old_pkg", target_is_directory=True)
    src = ws.read("pkg/m.py")
    assert src.text == "x = 1\n" and src.rel == "old_pkg/m.py"
