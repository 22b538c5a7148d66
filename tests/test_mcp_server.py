"""``lanser mcp`` with the real MCP client of the same SDK, against the real pinned server.

Over stdio: the tool list and its schemas, every tool called, the error paths
(a bad selector, a path outside the workspace, a rename on a dirty tree, an
ambiguous and a missing symbol, bad arguments) with nothing written.  Over
streamable HTTP on 127.0.0.1: two clients at once, one applies a rename and the
other then finds the new name.  Each module has its own daemon runtime
directory; every daemon started here is stopped at the end.  No sleeps: every
wait is bounded and waits on an event (a line on stderr, a process exit).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, module_daemon_runtime, run_cli
from jsonschema import Draft202012Validator
from mcp import Client, StdioServerParameters

from lanser.bundles.schema import errors as schema_errors

pytestmark = pytest.mark.server

TOOLS = {"locate", "definition", "references", "hover", "symbols", "diagnostics", "prepare_rename", "rename",
         "code_actions", "edit_symbol", "reward_step", "reward_session_summary", "replay"}
READ_ONLY = {"locate", "definition", "references", "hover", "symbols", "diagnostics", "prepare_rename", "replay"}
DESTRUCTIVE = {"rename", "code_actions", "edit_symbol", "reward_step"}
SELECTOR_TOOLS = {"locate", "definition"}  # the full selector guide; the others carry the short one
DEF_SEL = "src/shop/service.py:7:18"
FIX_SIZE = ("--- a/src/shop/broken.py\n+++ b/src/shop/broken.py\n@@ -10 +10 @@\n"
            "-    return cart.size\n+    return cart.count\n")
FIX_STEP = {"id": "fix", "op": "patch", "patch": FIX_SIZE}
WAIT = 120.0


@pytest.fixture(scope="module")
def runtime() -> Iterator[Path]:
    with module_daemon_runtime("lm") as path:
        yield path


def git_workspace(dest: Path) -> Path:
    """A copy of fixtures/srcpkg committed to a fresh git repository (traces/ ignored)."""
    shutil.copytree(FIXTURES / "srcpkg", dest, symlinks=True)
    (dest / ".gitignore").write_text("traces/\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(git + argv, cwd=dest, check=True, capture_output=True, timeout=60)
    return dest


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file under ``roots`` (but .git) -> sha256 of its bytes."""
    out = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            if p.is_file() and ".git" not in p.relative_to(root).parts:
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def env_for(runtime: Path) -> dict[str, str]:
    return {**os.environ, "LANSER_RUNTIME_DIR": str(runtime)}


def ok(result: Any, kind: str = "bundle") -> dict[str, Any]:
    """A successful tool result: no error, structured content valid against the shipped schema."""
    text = result.content[0].text if result.content else ""
    assert not result.is_error, text
    sc = result.structured_content
    assert isinstance(sc, dict)
    if kind:
        assert schema_errors(kind, sc) == []
    assert "Traceback" not in text and text.strip()
    return sc


def failed(result: Any, code: str) -> dict[str, Any]:
    """A tool error carrying the contract code, its error bundle, and no traceback."""
    text = result.content[0].text
    assert result.is_error, text
    assert f"E/{code}" in text and "Traceback" not in text, text
    bundle = result.structured_content
    assert bundle["status"] == "error" and bundle["error"]["code"] == f"E/{code}"
    assert schema_errors("bundle", bundle) == []
    return bundle


def stdio(ws: Path, runtime: Path, *extra: str) -> Client:
    params = StdioServerParameters(command=sys.executable, args=["-m", "lanser", "mcp", "-w", str(ws), *extra],
                                   env=env_for(runtime), cwd=str(ws))
    return Client(params, read_timeout_seconds=WAIT)


# -- stdio ------------------------------------------------------------------------------------

def test_stdio_lists_tools_answers_every_tool_and_refuses_cleanly(tmp_path: Path, runtime: Path) -> None:
    ws = git_workspace(tmp_path / "ws")
    outside = tmp_path / "outside.py"
    outside.write_text("SECRET = 1\n")
    (ws / "traces").mkdir()
    traced = run_cli("-w", str(ws), "--trace-file", str(ws / "traces" / "t.jsonl"), "locate",
                     "py://shop.pricing#apply_discount")  # a trace to replay (a symbol: no server)
    assert traced.code == 0, traced.err
    cli_def = run_cli("-w", str(ws), "--daemon", "never", "--json", "def", DEF_SEL).bundle
    steps = tmp_path / "steps.jsonl"
    steps.write_text(json.dumps(FIX_STEP) + "\n" + json.dumps({"op": "reset"}) + "\n")
    in_memory = run_cli("-w", str(ws), "reward", "--in-memory", str(steps))
    assert in_memory.code == 0, in_memory.err
    cli_records = [json.loads(line) for line in in_memory.out.splitlines()]

    async def scenario() -> None:
        async with stdio(ws, runtime) as client:
            await tools_and_schemas(client)
            await every_tool(client, ws, cli_def, cli_records)
            await refusals(client, ws, outside)

    asyncio.run(asyncio.wait_for(scenario(), 300))


async def tools_and_schemas(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for name, tool in tools.items():
        for schema in (tool.input_schema, tool.output_schema):
            assert schema is not None and schema.get("type") == "object", name
            Draft202012Validator.check_schema(schema)
        ann = tool.annotations
        assert ann is not None
        assert ann.read_only_hint is (name in READ_ONLY), name
        assert ann.destructive_hint is (name in DESTRUCTIVE), name
        if name in SELECTOR_TOOLS:
            for form in ("src/app.py@L42:C7", "src/app.py:42:7", "src/app.py@R(42,7->44,1)",
                         "py://pkg.mod#Class.method:body", "ast://[module=pkg.mod]/", "anchor://src/app.py#", "?v="):
                assert form in tool.description, (name, form)
        if "selector" in tool.input_schema["properties"]:
            assert "py://" in tool.description and "anchor://" in tool.description, name
    # the published output schemas are the shipped ones, self-contained
    assert tools["definition"].output_schema["$id"] == "https://schemas.lanser.dev/1.2/bundle.json"
    assert tools["reward_step"].output_schema["$id"] == "https://schemas.lanser.dev/1.2/reward-record.json"


async def every_tool(client: Client, ws: Path, cli_def: dict[str, Any], cli_records: list[dict[str, Any]]) -> None:
    before = snapshot(ws)
    b = ok(await client.call_tool("locate", {"selector": "py://shop.pricing#apply_discount"}))
    assert b["resolution"]["resolved"]["path"] == "src/shop/pricing.py"
    b = ok(await client.call_tool("definition", {"selector": DEF_SEL}))
    assert b == cli_def  # the CLI's bundle, byte for byte
    b = ok(await client.call_tool("references", {"selector": {"kind": "cursor", "path": "src/shop/service.py",
                                                              "line": 6, "col": 17}}))
    assert len(b["facts"]["references"]) == 8
    r = await client.call_tool("hover", {"selector": "src/shop/service.py@L14:C12"})
    assert "def add(item: Item) -> None" in ok(r)["facts"]["hover"]["contents"] and "bundleId" in r.content[0].text
    b = ok(await client.call_tool("symbols", {"target": "src/shop/models.py"}))
    assert "Cart.total" in [s["qualname"] for s in b["facts"]["symbols"]]
    b = ok(await client.call_tool("diagnostics", {}))
    assert b["facts"]["counts"]["errors"] == 3
    b = ok(await client.call_tool("prepare_rename", {"selector": "py://shop.pricing#format_price"}))
    assert b["facts"]["prepareRename"]["placeholder"] == "format_price"
    r = await client.call_tool("rename", {"selector": "py://shop.pricing#format_price", "new_name": "render_price"})
    b = ok(r)
    assert b["edits"]["applied"] is False and "+from shop.pricing import apply_discount, render_price" in b["edits"]["diff"]
    assert "dry run: nothing written" in r.content[0].text
    r = await client.call_tool("code_actions", {"selector": "src/shop/broken.py@R(1,1->2,1)",
                                                "kind": "source.organizeImports"})
    assert [a["title"] for a in ok(r)["facts"]["actions"]] == ["Organize imports"]
    assert "[0] source.organizeImports: Organize imports" in r.content[0].text
    b = ok(await client.call_tool("edit_symbol", {"selector": "py://shop.broken#bad_return:body",
                                                  "text": "return item.quantity"}))
    assert b["edits"]["applied"] is False and b["processReward"]["r"] > 0
    assert snapshot(ws) == before  # previews write nothing

    step = FIX_STEP
    preview = ok(await client.call_tool("reward_step", {"step": step, "session": "a"}), "reward-record")
    assert preview["status"] == "ok" and preview["step"] == 1 and preview["processReward"]["r"] == 0.9
    second = ok(await client.call_tool("reward_step", {"step": json.dumps({"op": "reset"}), "session": "a"}),
                "reward-record")
    assert second["step"] == 2 and second["processReward"]["components"]["diag_after"] == 3
    assert [preview, second] == cli_records  # lanser reward --in-memory's records, byte for byte
    assert snapshot(ws) == before  # in memory only
    applied = ok(await client.call_tool("reward_step", {"step": step, "apply": True, "session": "a"}),
                 "reward-record")
    assert applied["status"] == "ok" and applied["step"] == 1
    assert applied["processReward"] == preview["processReward"]
    assert "return cart.count" in (ws / "src/shop/broken.py").read_text()
    b = ok(await client.call_tool("diagnostics", {}))  # the daemon sees the runner's write
    assert b["facts"]["counts"]["errors"] == 2
    s = ok(await client.call_tool("reward_session_summary", {"session": "a", "aggregate": "min", "close": True}),
           "")
    assert (s["applied"]["steps"], s["preview"]["steps"], s["closed"]) == (1, 2, True)
    assert all(schema_errors("reward-record", rec) == [] for rec in s["applied"]["records"])
    failed(await client.call_tool("reward_session_summary", {"session": "a"}), "NOT_FOUND")

    rp = ok(await client.call_tool("replay", {"trace": "traces/t.jsonl"}), "")
    assert rp["status"] == "identical" and len(rp["bundles"]) == 1
    assert schema_errors("bundle", rp["bundles"][0]) == []


async def refusals(client: Client, ws: Path, outside: Path) -> None:
    # the reward step above left broken.py changed: the tree is dirty from here on
    before = snapshot(ws, outside.parent)
    bad = failed(await client.call_tool("definition", {"selector": "src/shop/service.py@L7:"}),
                 "BAD_SELECTOR_SYNTAX")
    assert bad["error"]["details"]["column"] == 24 and "column 24" in bad["error"]["message"]
    failed(await client.call_tool("definition", {"selector": f"{outside}:1:1"}), "FS_PERMISSIONS")
    failed(await client.call_tool("edit_symbol", {"selector": "../outside.py@R(1,1->1,7)", "text": "LEAKED",
                                                  "apply": True}), "FS_PERMISSIONS")
    failed(await client.call_tool("replay", {"trace": str(outside)}), "FS_PERMISSIONS")
    r = await client.call_tool("rename", {"selector": "py://shop.pricing#format_price", "new_name": "render_price",
                                          "apply": True})
    assert "uncommitted changes" in failed(r, "FS_PERMISSIONS")["error"]["message"]
    amb = failed(await client.call_tool("locate", {"selector": "py://shop.service#add"}), "AMBIGUOUS")
    assert amb["resolution"]["disambiguation"]
    assert (await client.call_tool("locate", {"selector": "py://shop.service#add"})).content[0].text.endswith(
        "candidates: py://shop.models#Cart.add")
    nf = await client.call_tool("definition", {"selector": "py://shop.pricing#aply_discount"})
    assert "did you mean: py://shop.pricing#apply_discount" in failed(nf, "NOT_FOUND")["error"]["message"]
    failed(await client.call_tool("rename", {"selector": "py://shop.pricing#format_price"}), "BAD_INPUT")
    failed(await client.call_tool("reward_step", {"step": {"op": "reset"}, "apply": True}), "BAD_INPUT")
    assert snapshot(ws, outside.parent) == before  # nothing written anywhere


# -- streamable HTTP ------------------------------------------------------------------------------

def start_http(ws: Path, runtime: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``lanser mcp --http 127.0.0.1:0 --deny src/shop/models.py``; waits (bounded) for the URL it
    prints on stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "lanser", "mcp", "-w", str(ws), "--http", "127.0.0.1:0",
                             "--deny", "src/shop/models.py"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env_for(runtime), start_new_session=True)
    assert proc.stderr is not None
    buf = b""
    end = time.monotonic() + WAIT
    while b"/mcp\n" not in buf:
        left = end - time.monotonic()
        if left <= 0 or not select.select([proc.stderr], [], [], left)[0]:
            proc.kill()
            raise AssertionError(f"no URL on stderr: {buf!r}")
        chunk = os.read(proc.stderr.fileno(), 4096)
        if not chunk:
            raise AssertionError(f"the server exited: {buf!r}")
        buf += chunk
    line = next(x for x in buf.decode().splitlines() if "/mcp" in x)
    return proc, line[line.index("http://"):].strip()


def test_http_two_clients_share_one_warm_server(tmp_path: Path, runtime: Path) -> None:
    ws = git_workspace(tmp_path / "ws")
    proc, url = start_http(ws, runtime)
    assert url.startswith("http://127.0.0.1:") and url.endswith("/mcp")

    async def scenario() -> None:
        async with Client(url, read_timeout_seconds=WAIT) as a, Client(url, read_timeout_seconds=WAIT) as b:
            da, db = await asyncio.gather(a.call_tool("definition", {"selector": DEF_SEL}),
                                          b.call_tool("definition", {"selector": DEF_SEL}))
            assert ok(da) == ok(db)
            r = ok(await a.call_tool("rename", {"selector": "py://shop.pricing#format_price",
                                                "new_name": "render_price", "apply": True}))
            assert r["edits"]["applied"] is True
            found = ok(await b.call_tool("locate", {"selector": "py://shop.pricing#render_price"}))
            assert found["resolution"]["resolved"]["path"] == "src/shop/pricing.py"
            refs = ok(await b.call_tool("references", {"selector": "py://shop.pricing#render_price"}))
            assert {x["path"] for x in refs["facts"]["references"]} >= {"src/shop/service.py", "src/shop/pricing.py"}
            failed(await b.call_tool("definition", {"selector": "py://shop.pricing#format_price"}), "NOT_FOUND")
            denied = await b.call_tool("edit_symbol", {"selector": "py://shop.models#Cart.total:body",
                                                       "text": "return 0.0", "apply": True})
            assert "--deny" in failed(denied, "FS_PERMISSIONS")["error"]["message"]  # the server's --deny

    try:
        asyncio.run(asyncio.wait_for(scenario(), 300))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            assert proc.stderr is not None
            err = proc.stderr.read().decode(errors="replace")
    assert code == 0, err
    assert "Traceback" not in err, err
    assert "render_price" in (ws / "src/shop/service.py").read_text()
