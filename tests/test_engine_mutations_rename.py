"""rename / prepare-rename against the real server on a copy of fixtures/srcpkg (issue 4)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from lanser.engine import Engine, Options

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
LIBUSE = "import json\nfrom lsprotocol.types import Position\n\nprint(len(json.dumps(1)))\np = Position(line=0, character=0)\n"

pytestmark = pytest.mark.server


class Runner:
    """One Engine on its own loop, shared by the module (one server start)."""

    def __init__(self, root: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.engine = Engine(Options(workspace=str(root), python=sys.executable))

    def run(self, cmd: str, selector: str | None, args: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.loop.run_until_complete(self.engine.run(cmd, selector, args or {}))

    def close(self) -> None:
        self.loop.run_until_complete(self.engine.close())
        self.loop.close()


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env={**os.environ, **GIT_ENV})


def tree_digest(root: Path) -> str:
    """sha256 over every path and byte below ``root`` (.git and .lanser excluded)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", ".lanser"))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rename") / "srcpkg"
    shutil.copytree(FIXTURES / "srcpkg", root, symlinks=True)
    (root / "src/shop/libuse.py").write_text(LIBUSE)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "fixture")
    return root


@pytest.fixture(scope="module")
def runner(ws: Path) -> Iterator[Runner]:
    r = Runner(ws)
    yield r
    r.close()


def test_prepare_rename_accepts_a_function(runner: Runner) -> None:
    b = runner.run("prepare-rename", "py://shop.pricing#apply_discount")
    assert b["status"] == "ok", b["error"]
    assert b["facts"]["prepareRename"] == {"path": "src/shop/pricing.py", "range": [0, 4, 0, 18],
                                           "placeholder": "apply_discount"}


@pytest.mark.parametrize("selector, what", [
    ("src/shop/libuse.py@L4:C1", "builtin print"),
    ("src/shop/libuse.py@L4:C7", "builtin len"),
    ("src/shop/libuse.py@L4:C16", "stdlib json.dumps"),
    ("src/shop/libuse.py@L2:C30", "site-packages lsprotocol Position"),
    ("src/shop/libuse.py@L1:C1", "keyword import"),
])
def test_prepare_rename_refuses_what_cannot_be_renamed(runner: Runner, ws: Path, selector: str,
                                                      what: str) -> None:
    before = tree_digest(ws)
    b = runner.run("prepare-rename", selector)
    assert b["error"]["code"] == "E/NOT_FOUND", (what, b["error"])
    assert b["error"]["details"]["reason"] == "prepare-rename-refused"
    r = runner.run("rename", selector, {"newName": "renamed", "apply": True})
    assert r["meta"]["exit_code"] == 3, (what, r["error"])
    assert tree_digest(ws) == before


def test_cross_module_rename_dry_run_writes_nothing(runner: Runner, ws: Path) -> None:
    before = tree_digest(ws)
    b = runner.run("rename", "py://shop.pricing#apply_discount", {"newName": "discount"})
    assert b["status"] == "ok", b["error"]
    assert tree_digest(ws) == before
    edits = b["edits"]
    assert edits["applied"] is False
    assert [f["path"] for f in edits["files"]] == ["src/shop/__init__.py", "src/shop/broken.py",
                                                  "src/shop/pricing.py", "src/shop/service.py"]
    assert "-def apply_discount(price: float, pct: float) -> float:\n+def discount(" in edits["diff"]
    assert "+from shop.pricing import discount, format_price" in edits["diff"]
    assert "+    first = discount(cart.total(), 10)" in edits["diff"]
    assert edits["unrenamedCandidates"] == []
    text = str(edits["workspaceEdit"])
    assert "file://" not in text and str(ws) not in text
    uris = [d["textDocument"]["uri"] for d in edits["workspaceEdit"]["documentChanges"]]
    assert uris == sorted(uris) and uris[0] == "src/shop/__init__.py"
    pred = b["facts"]["predictedDiagnostics"]
    assert pred["before"]["errors"] == 3 and pred["after"]["errors"] == 3
    assert b["processReward"]["components"]["safety"] == 1
    assert b["processReward"]["r"] == pytest.approx(0.4)
    # the in-memory versions were withdrawn: the server sees the disk again
    for rel, doc in runner.engine.session.docs.items():
        assert doc.text == (ws / rel).read_text(), rel
    again = runner.run("rename", "py://shop.pricing#apply_discount", {"newName": "discount"})
    assert again["bundleId"] == b["bundleId"]


def test_dry_run_predicts_a_new_error(runner: Runner, ws: Path) -> None:
    # renaming to an existing name in the same module shadows format_price: calls break
    b = runner.run("rename", "py://shop.pricing#apply_discount", {"newName": "format_price"})
    if b["status"] == "ok":
        assert b["facts"]["predictedDiagnostics"]["after"]["errors"] >= 3
    r = b["processReward"]
    assert r is None or r["components"]["diag_before"] == 3


def test_noop_rename_is_not_a_success(runner: Runner, ws: Path) -> None:
    before = tree_digest(ws)
    b = runner.run("rename", "py://shop.pricing#apply_discount", {"newName": "apply_discount", "apply": True})
    assert b["status"] == "error" and b["meta"]["exit_code"] == 70
    assert b["error"]["details"]["reason"] == "no-op"
    assert b["edits"]["applied"] is False
    assert "changes nothing" in b["edits"]["result"]["message"]
    assert tree_digest(ws) == before


@pytest.mark.parametrize("name", ["class", "1abc", "a-b", ""])
def test_invalid_new_name(runner: Runner, name: str) -> None:
    b = runner.run("rename", "py://shop.pricing#apply_discount", {"newName": name})
    assert b["meta"]["exit_code"] == 2, b["error"]


def _text_at(root: Path, loc: dict[str, Any]) -> str:
    line = (root / loc["path"]).read_text().split("\n")[loc["range"][0]]
    return line[loc["range"][1]: loc["range"][3]]


def test_apply_method_and_function_rename_then_navigate(runner: Runner, ws: Path) -> None:
    b = runner.run("rename", "py://shop.models#Cart.total", {"newName": "grand_total", "apply": True})
    assert b["status"] == "ok", b["error"]
    assert b["edits"]["applied"] is True
    assert b["edits"]["result"]["files"] == ["src/shop/models.py", "src/shop/service.py"]
    assert b["facts"]["observedDiagnostics"]["after"]["errors"] == 3
    assert "def grand_total(self)" in (ws / "src/shop/models.py").read_text()
    assert "cart.total()" not in (ws / "src/shop/service.py").read_text()
    git(ws, "commit", "-qam", "method rename")

    b = runner.run("rename", "src/shop/service.py@L7:C18", {"newName": "discount", "apply": True})
    assert b["status"] == "ok", b["error"]
    git(ws, "commit", "-qam", "function rename")
    for rel in ("src/shop/__init__.py", "src/shop/broken.py", "src/shop/pricing.py", "src/shop/service.py"):
        assert "apply_discount" not in (ws / rel).read_text()

    # the same engine sees the new code
    d = runner.run("def", "src/shop/service.py@L15:C13")
    assert d["status"] == "ok", d["error"]
    assert [(x["path"], _text_at(ws, x)) for x in d["facts"]["definitions"]] == [("src/shop/pricing.py", "discount")]
    refs = runner.run("refs", "py://shop.pricing#discount")["facts"]["references"]
    assert {x["path"] for x in refs} == {"src/shop/__init__.py", "src/shop/broken.py", "src/shop/pricing.py",
                                         "src/shop/service.py"}
    assert all(_text_at(ws, x) == "discount" for x in refs if "__init__" not in x["path"] or x["range"][0] == 3)
    mrefs = runner.run("refs", "py://shop.models#Cart.grand_total")["facts"]["references"]
    assert len(mrefs) == 3 and all(_text_at(ws, x) == "grand_total" for x in mrefs)

    # and so does a fresh engine
    fresh = Runner(ws)
    try:
        d2 = fresh.run("def", "src/shop/service.py@L6:C21")
        assert [(x["path"], _text_at(ws, x)) for x in d2["facts"]["definitions"]] == [
            ("src/shop/models.py", "grand_total")]
        refs2 = fresh.run("refs", "py://shop.pricing#discount")["facts"]["references"]
        assert refs2 == refs
    finally:
        fresh.close()


def test_apply_refused_on_dirty_tree(runner: Runner, ws: Path) -> None:
    (ws / "README.md").write_text("dirty\n")
    try:
        before = tree_digest(ws)
        b = runner.run("rename", "py://shop.pricing#format_price", {"newName": "fmt", "apply": True})
        assert b["meta"]["exit_code"] == 71 and b["error"]["details"]["reason"] == "dirty"
        assert b["processReward"] is None  # refused before any plan existed (issue 12, item 8)
        assert b["edits"] is None
        assert tree_digest(ws) == before
    finally:
        git(ws, "checkout", "--", "README.md")
