"""The jail around mutations: symlinks leaving the workspace, --deny/--allow globs,
``..`` paths.  Exit 71 and nothing written anywhere (real server)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import pytest

from lanser.engine import Engine, Options
from lanser.engine.planner import outside_paths, portable_workspace_edit
from lanser.workspace import Workspace

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
pytestmark = pytest.mark.server


def digest(root: Path) -> str:
    """Every path, link target and byte below ``root`` (the workspace AND the outside dir);
    lanser's own lock directory ``.lanser/`` is not user content."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".lanser")
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(Path(dirpath) / d)]):
            p = Path(dirpath) / name
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
            h.update(os.readlink(p).encode() if p.is_symlink() else p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("jail")
    ws = base / "ws"
    shutil.copytree(FIXTURES / "srcpkg", ws, symlinks=True)
    outside = base / "outside"
    outside.mkdir()
    (outside / "ext.py").write_text("def helper() -> int:\n    return 1\n")
    os.symlink(outside / "ext.py", ws / "src/shop/ext.py")
    (ws / "src/shop/useext.py").write_text("from shop.ext import helper\n\nvalue = helper()\n")
    return base


@pytest.fixture(scope="module")
def engine(base: Path) -> Iterator[tuple[asyncio.AbstractEventLoop, Engine]]:
    loop = asyncio.new_event_loop()
    eng = Engine(Options(workspace=str(base / "ws"), python=sys.executable))
    yield loop, eng
    loop.run_until_complete(eng.close())
    loop.close()


def run(engine: tuple[asyncio.AbstractEventLoop, Engine], cmd: str, selector: str, args: dict[str, Any],
        **opts: Any) -> dict[str, Any]:
    loop, eng = engine
    saved = eng.options
    eng.options = replace(saved, **opts)
    try:
        return loop.run_until_complete(eng.run(cmd, selector, args))
    finally:
        eng.options = saved


@pytest.mark.parametrize("apply", [False, True])
def test_rename_through_symlink_leaving_the_workspace(engine: Any, base: Path, apply: bool) -> None:
    before = digest(base)
    b = run(engine, "rename", "src/shop/useext.py@L3:C9", {"newName": "assist", "apply": apply})
    # the server proposes an edit through the link; the jail refuses it before any plan exists
    assert b["meta"]["exit_code"] == 71, b["error"]
    assert b["error"]["details"] == {"reason": "outside-workspace", "paths": ["external://ext.py"]}
    assert b["edits"]["applied"] is False
    assert "file://" not in str(b["edits"]) and str(base) not in str(b["edits"])
    assert digest(base) == before


def test_edit_through_symlink_is_refused(engine: Any, base: Path) -> None:
    before = digest(base)
    b = run(engine, "edit", "src/shop/ext.py@L2:C12", {"text": "2", "apply": True})
    assert b["meta"]["exit_code"] == 71, b["error"]
    assert digest(base) == before


@pytest.mark.parametrize("apply", [False, True])
def test_deny_glob_refuses_the_whole_rename(engine: Any, base: Path, apply: bool) -> None:
    before = digest(base)
    b = run(engine, "rename", "py://shop.pricing#apply_discount", {"newName": "discount", "apply": apply},
            deny=("src/shop/broken.py",))
    assert b["meta"]["exit_code"] == 71, b["error"]
    assert b["error"]["details"]["reason"] == "glob"
    assert b["edits"]["applied"] is False
    assert b["processReward"]["components"]["safety"] == 0
    assert digest(base) == before


def test_allow_glob_must_cover_every_file(engine: Any, base: Path) -> None:
    before = digest(base)
    b = run(engine, "rename", "py://shop.pricing#apply_discount", {"newName": "discount", "apply": True},
            allow=("src/shop/pricing.py",), allow_dirty=True)
    assert b["meta"]["exit_code"] == 71, b["error"]
    assert digest(base) == before


@pytest.mark.parametrize("selector", ["../outside/ext.py@L1:C5", "src/../../outside/ext.py@L1:C5"])
@pytest.mark.parametrize("cmd", ["rename", "prepare-rename", "edit", "actions"])
def test_dotdot_paths(engine: Any, base: Path, selector: str, cmd: str) -> None:
    before = digest(base)
    args = {"newName": "x", "apply": True} if cmd == "rename" else {"text": "y", "apply": True} \
        if cmd == "edit" else {}
    b = run(engine, cmd, selector, args)
    assert b["meta"]["exit_code"] == 71, b["error"]
    assert digest(base) == before


def test_outside_paths_and_portable_edit(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    edit = {"changes": {(tmp_path / "a.py").as_uri(): [],
                        "file:///usr/lib/python3.11/os.py": [],
                        "file:///x/site-packages/click/core.py": []}}
    out = outside_paths(edit, ws)
    assert len(out) == 2 and out[-1] == "site-packages://click/core.py" and "/usr/" not in str(out)
    port = portable_workspace_edit(edit, ws.root)
    assert "a.py" in port["changes"] and str(tmp_path) not in str(port)
