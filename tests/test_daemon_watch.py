"""The scanner's watcher: a quiet workspace is not re-stat'ed, any change is seen at once."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lanser.daemon.cache import Scanner
from lanser.daemon.watch import INotify
from lanser.workspace import Workspace

pytestmark = pytest.mark.skipif(INotify is None, reason="inotify is Linux-only; elsewhere every scan is full")


def _ws(tmp_path: Path) -> Workspace:
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("y = 2\n")
    return Workspace(tmp_path)


def test_quiet_workspace_reuses_the_last_scan(tmp_path: Path) -> None:
    sc = Scanner(_ws(tmp_path))
    first = sc.scan()
    assert sc.watcher.active and sc.full_scans == 1
    for _ in range(5):
        assert sc.scan() == first
    assert sc.full_scans == 1


@pytest.mark.parametrize("change", ["same-size rewrite", "touch", "create in new dir", "delete", "rename",
                                    "config created", "replace atomically"])
def test_every_kind_of_change_is_seen_by_the_next_scan(tmp_path: Path, change: str) -> None:
    ws = _ws(tmp_path)
    sc = Scanner(ws)
    before = sc.scan()
    a = tmp_path / "pkg" / "a.py"
    if change == "same-size rewrite":
        a.write_text("x = 9\n")
    elif change == "touch":
        os.utime(a, ns=(time.time_ns(), time.time_ns() + 10**9))
    elif change == "create in new dir":
        (tmp_path / "pkg" / "new").mkdir()
        (tmp_path / "pkg" / "new" / "c.py").write_text("z = 3\n")
    elif change == "delete":
        (tmp_path / "pkg" / "sub" / "b.py").unlink()
    elif change == "rename":
        a.rename(tmp_path / "pkg" / "a2.py")
    elif change == "config created":
        (tmp_path / "pyrightconfig.json").write_text("{}\n")
    elif change == "replace atomically":
        tmp = tmp_path / "pkg" / ".a.tmp"
        tmp.write_text("x = 2\n")
        os.replace(tmp, a)
    after = sc.scan()
    assert sc.full_scans == 2
    if change != "touch":
        assert after != before
    if change == "create in new dir":
        # the new directory is watched from now on: a change inside it is seen too
        assert sc.scan() == after and sc.full_scans == 2
        (tmp_path / "pkg" / "new" / "c.py").write_text("z = 4\n")
        assert sc.scan()["pkg/new/c.py"] != after["pkg/new/c.py"]


def test_symlinked_file_turns_reuse_off(tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "gen.py").write_text("g = 1\n")  # build/ is never walked, so never watched
    (tmp_path / "pkg" / "gen.py").symlink_to(tmp_path / "build" / "gen.py")
    sc = Scanner(ws)
    first = sc.scan()
    (tmp_path / "build" / "gen.py").write_text("g = 2\n")
    assert sc.scan()["pkg/gen.py"] != first["pkg/gen.py"]
    assert sc.full_scans == 2


def test_watching_off_by_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANSER_WATCH", "0")
    sc = Scanner(_ws(tmp_path))
    sc.scan()
    sc.scan()
    assert not sc.watcher.active and sc.full_scans == 2


def test_closed_watcher_falls_back_to_full_scans(tmp_path: Path) -> None:
    sc = Scanner(_ws(tmp_path))
    sc.scan()
    sc.watcher.close()
    sc.scan()
    sc.scan()
    assert sc.full_scans == 3
