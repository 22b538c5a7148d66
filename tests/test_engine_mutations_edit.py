"""edit (re-indented replacement of a selector's target) and actions (real server)."""

from __future__ import annotations

import ast
import asyncio
import shutil
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from lanser.engine import Engine, Options
from lanser.engine.mutations import _action_edit
from lanser.engine.planner import replacement_edit
from lanser.errors import UnsupportedCap

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ORGANIZE_ME = "import sys\nimport os\nfrom shop.models import Item\n\nx: Item | None = None\nprint(os.getcwd(), sys.argv)\n"


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("edit")
    shutil.copytree(FIXTURES / "srcpkg", root / "srcpkg", symlinks=True)
    (root / "srcpkg/src/shop/messy.py").write_text(ORGANIZE_ME)
    shutil.copytree(FIXTURES / "encodings", root / "srcpkg/src/enc", symlinks=True)
    return root / "srcpkg"


@pytest.fixture(scope="module")
def runner(ws: Path) -> Iterator[Any]:
    loop = asyncio.new_event_loop()
    eng = Engine(Options(workspace=str(ws), python=sys.executable))

    def go(cmd: str, selector: str, args: dict[str, Any]) -> dict[str, Any]:
        return loop.run_until_complete(eng.run(cmd, selector, args))

    go.loop, go.engine = loop, eng  # type: ignore[attr-defined]
    yield go
    loop.run_until_complete(eng.close())
    loop.close()


@pytest.mark.server
def test_edit_body_dry_run_then_apply(runner: Any, ws: Path) -> None:
    path = ws / "src/shop/pricing.py"
    before = path.read_bytes()
    text = "rate = (100 - pct) / 100\nif rate < 0:\n    raise ValueError(pct)\nreturn price * rate\n"
    dry = runner("edit", "py://shop.pricing#apply_discount:body", {"text": text})
    assert dry["status"] == "ok", dry["error"]
    assert path.read_bytes() == before and dry["edits"]["applied"] is False
    assert dry["facts"]["predictedDiagnostics"]["after"]["errors"] == 3
    b = runner("edit", "py://shop.pricing#apply_discount:body", {"text": text, "apply": True})
    assert b["status"] == "ok", b["error"]
    new = path.read_text()
    assert new.startswith("def apply_discount(price: float, pct: float) -> float:\n"
                          "    rate = (100 - pct) / 100\n    if rate < 0:\n        raise ValueError(pct)\n"
                          "    return price * rate\n\n\ndef format_price")
    ast.parse(new)
    assert b["facts"]["observedDiagnostics"]["after"]["errors"] == 3
    assert b["processReward"]["components"] == {"diag_before": 3, "diag_after": 3, "diag_delta": 0,
                                                "safety": 1, "alpha_conf": 1, "ambiguity_penalty": 0}
    # the server sees the new body at once
    h = runner("hover", "src/shop/pricing.py@L2:C5", {})
    assert "rate" in h["facts"]["hover"]["contents"]


@pytest.mark.server
def test_edit_keeps_crlf(runner: Any, ws: Path) -> None:
    b = runner("edit", "py://enc.crlf#shout:body", {"text": "loud = text.upper()\nreturn loud + '!'\n",
                                                    "apply": True})
    assert b["status"] == "ok", b["error"]
    data = (ws / "src/enc/crlf.py").read_bytes()
    assert b"    loud = text.upper()\r\n    return loud + '!'\r\n" in data
    assert data.count(b"\n") == data.count(b"\r\n")
    ast.parse(data.decode())


@pytest.mark.server
def test_edit_that_breaks_syntax_or_changes_nothing(runner: Any, ws: Path) -> None:
    path = ws / "src/shop/models.py"
    before = path.read_bytes()
    b = runner("edit", "py://shop.models#Cart.add:body", {"text": "self.items.append(item\n", "apply": True})
    assert b["meta"]["exit_code"] == 70 and b["error"]["details"]["reason"] == "syntax"
    same = runner("edit", "py://shop.models#Cart.add:body", {"text": "self.items.append(item)\n", "apply": True})
    assert same["meta"]["exit_code"] == 70 and same["error"]["details"]["reason"] == "no-op"
    assert same["edits"]["applied"] is False
    assert path.read_bytes() == before


@pytest.mark.server
def test_actions_list_and_apply_organize_imports(runner: Any, ws: Path) -> None:
    listing = runner("actions", "src/shop/messy.py@L1:C1", {"kind": "source.organizeImports"})
    assert listing["status"] == "ok", listing["error"]
    acts = listing["facts"]["actions"]
    assert [(a["index"], a["kind"], a["title"]) for a in acts] == [(0, "source.organizeImports", "Organize imports")]
    quick = runner("actions", "src/shop/messy.py@L1:C1", {"kind": "quickfix"})
    assert quick["facts"]["actions"] == []
    missing = runner("actions", "src/shop/messy.py@L1:C1", {"kind": "quickfix", "apply": 0})
    assert missing["meta"]["exit_code"] == 3
    b = runner("actions", "src/shop/messy.py@L1:C1", {"kind": "source.organizeImports", "apply": 0})
    assert b["status"] == "ok", b["error"]
    assert (ws / "src/shop/messy.py").read_text().startswith("import os\nimport sys\n\nfrom shop.models import Item\n")
    again = runner("actions", "src/shop/messy.py@L1:C1", {"kind": "source.organizeImports", "apply": 0})
    assert again["meta"]["exit_code"] == 70 and again["edits"]["applied"] is False


@pytest.mark.server
def test_command_actions_are_unsupported(runner: Any) -> None:
    runner("prepare-rename", "py://shop.pricing#format_price", {})  # make sure the server is up
    action = {"title": "Create Type Stub", "kind": "quickfix",
              "command": {"title": "Create Type Stub", "command": "pyright.createtypestub", "arguments": []}}
    with pytest.raises(UnsupportedCap):
        runner.loop.run_until_complete(_action_edit(runner.engine.session, action))


def test_replacement_edit_reindents() -> None:
    lines = ["class C:", "    def m(self):", "        return 1", ""]
    te = replacement_edit(lines, [2, 8, 2, 16], "x = 1\nreturn x\n", "utf-16", "\n")
    assert te["newText"] == "x = 1\n        return x"
    te = replacement_edit(lines, [1, 0, 3, 0], "def m(self):\n    return 2", "utf-16", "\r\n")
    assert te["newText"] == "def m(self):\r\n    return 2\r\n"
