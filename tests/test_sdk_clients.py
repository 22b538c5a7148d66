"""SyncLanserClient / AsyncLanserClient on the real pinned server: the same bundles as the
CLI, in-process and through a daemon; single-flight, memo invalidation, reconnects."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import module_daemon_runtime

from lanser import AsyncLanserClient, SyncLanserClient
from lanser.daemon import client as C
from lanser.daemon.paths import Identity, files_for

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SEL = "src/shop/service.py@L7:C18"
SEL2 = "src/shop/service.py@L15:C13"

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def runtime() -> Iterator[Path]:
    with module_daemon_runtime("ls") as path:
        yield path


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("sdk") / "ws"
    shutil.copytree(ROOT / "fixtures" / "srcpkg", dest, symlinks=True)
    return dest


@pytest.fixture(scope="module")
def sync_client(ws: Path) -> Iterator[SyncLanserClient]:
    with SyncLanserClient(str(ws)) as lc:
        yield lc


def cli(ws: Path, *args: str) -> dict[str, Any]:
    p = subprocess.run([PY, "-m", "lanser", "-w", str(ws), "--daemon", "never", "--json", *args],
                       capture_output=True, text=True, timeout=120)
    return json.loads(p.stdout)


def test_in_process_bundles_equal_the_cli(sync_client: SyncLanserClient, ws: Path) -> None:
    assert sync_client.definition(SEL) == cli(ws, "def", SEL)
    assert sync_client.rename(SEL2, "apply_disc") == cli(ws, "rename", SEL2, "apply_disc")
    assert sync_client.rename(SEL2, "apply_disc")["edits"]["applied"] is False  # dry run: nothing written
    assert "apply_discount" in (ws / "src/shop/pricing.py").read_text()


def test_every_operation_answers_a_bundle(sync_client: SyncLanserClient) -> None:
    calls = {
        "locate": sync_client.locate("py://shop.pricing#apply_discount"),
        "references": sync_client.references(SEL),
        "hover": sync_client.hover(SEL),
        "symbols": sync_client.symbols("src/shop/models.py"),
        "diagnostics": sync_client.diagnostics(),
        "prepare_rename": sync_client.prepare_rename(SEL),
        "actions": sync_client.actions("src/shop/broken.py@L6:C27"),
        "edit": sync_client.edit("py://shop.pricing#apply_discount:body", "return price\n"),
    }
    for name, bundle in calls.items():
        assert bundle["version"] == "1.2" and bundle["status"] == "ok", (name, bundle.get("error"))
    assert calls["diagnostics"]["facts"]["counts"]["errors"] == 3
    assert calls["edit"]["edits"]["applied"] is False
    bad = sync_client.definition("src/shop/nosuch.py@L1:C1")
    assert bad["status"] == "error" and bad["error"]["code"] == "E/NOT_FOUND"


def test_bad_workspace_is_an_error_bundle_not_an_exception(tmp_path: Path) -> None:
    with SyncLanserClient(str(tmp_path / "missing")) as lc:
        b = lc.definition(SEL)
    assert b["status"] == "error" and b["meta"]["exit_code"] == 3


def test_memo_is_invalidated_by_a_disk_change(sync_client: SyncLanserClient, ws: Path) -> None:
    first = sync_client.definition(SEL)
    before = sync_client.status()
    assert before is not None
    assert sync_client.definition(SEL) == first
    after = sync_client.status()
    assert after is not None and after["memoHits"] == before["memoHits"] + 1
    first["facts"] = None  # callers get their own copies
    assert sync_client.definition(SEL)["facts"] is not None
    pricing = ws / "src/shop/pricing.py"
    old = pricing.read_bytes()
    try:
        pricing.write_bytes(b"\n" + old)
        moved = sync_client.definition(SEL)
        assert moved["facts"]["definitions"][0]["range"] == [1, 4, 1, 18]
    finally:
        pricing.write_bytes(old)
    assert sync_client.definition(SEL)["facts"]["definitions"][0]["range"] == [0, 4, 0, 18]


def test_identical_concurrent_requests_are_coalesced(ws: Path) -> None:
    async def go() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        async with AsyncLanserClient(str(ws)) as ac:
            await ac.hover(SEL)  # warm the server
            bundles = await asyncio.gather(*[ac.references(SEL2) for _ in range(8)])
            status = await ac.status()
            assert status is not None
            return list(bundles), status

    bundles, status = asyncio.run(go())
    assert all(b == bundles[0] and b["status"] == "ok" for b in bundles)
    assert status["coalesced"] == 7 and status["serverStarts"] == 1


def test_daemon_clients_share_one_daemon(runtime: Path, ws: Path, sync_client: SyncLanserClient) -> None:
    expected = sync_client.references(SEL)
    with SyncLanserClient(str(ws), daemon=True, idle_timeout=120) as lc:
        assert lc.references(SEL) == expected
        st = lc.status()
        assert st is not None and st["serverStarts"] == 1

    async def go() -> dict[str, Any]:
        async with AsyncLanserClient(str(ws), daemon=True) as ac:
            return await ac.references(SEL)

    assert asyncio.run(go()) == expected
    files = files_for(Identity.for_options(str(ws), "pyright", None))
    st = C.status(files)
    assert st is not None and st["pid"] and st["requests"] == 2  # the same daemon served both clients
    # the daemon goes away under a client: the next read-only call starts a new one
    with SyncLanserClient(str(ws), daemon=True, idle_timeout=120) as lc:
        assert lc.hover(SEL)["status"] == "ok"
        old_pid = st["pid"]
        assert C.stop(files) == old_pid
        assert lc.references(SEL) == expected
        new = lc.status()
        assert new is not None and new["pid"] != old_pid
    assert C.stop(files) is not None
    assert not os.path.exists(files.socket)
