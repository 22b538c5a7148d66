"""``lanser mcp`` without a language server: published schemas, option parsing, refusals that
need no server (in memory, with the SDK's in-process client)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import click
import pytest
from conftest import FIXTURES, run_cli

pytest.importorskip("mcp")

from jsonschema import Draft202012Validator
from mcp import Client
from referencing import Registry

from lanser.bundles.schema import errors as schema_errors
from lanser.commands.mcp import parse_http
from lanser.mcp_server import schemas as S
from lanser.mcp_server.backend import Backend
from lanser.mcp_server.rewards import RewardDesk
from lanser.mcp_server.settings import McpSettings
from lanser.mcp_server.tools import build_server

GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.mark.parametrize(("value", "expected"), [
    ("127.0.0.1:8765", ("127.0.0.1", 8765)), ("8765", ("127.0.0.1", 8765)), (":0", ("127.0.0.1", 0)),
    ("localhost:9", ("localhost", 9)), ("[::1]:80", ("::1", 80)), ("0.0.0.0:1", ("0.0.0.0", 1)),
])
def test_parse_http(value: str, expected: tuple[str, int]) -> None:
    assert parse_http(value) == expected


@pytest.mark.parametrize("value", ["host", "127.0.0.1:x", "127.0.0.1:70000", ":-1"])
def test_parse_http_refuses(value: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_http(value)


@pytest.mark.parametrize("name", [S.BUNDLE, S.RECORD, S.SUMMARY, S.REPLAY])
def test_published_schemas_are_self_contained(name: str) -> None:
    """Valid 2020-12 schemas whose every $ref resolves with an empty registry (as MCP clients
    validate), accepting what the shipped schemas accept."""
    schema = S.output_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["type"] == "object"
    validator = Draft202012Validator(schema, registry=Registry())
    assert all(not isinstance(v, dict) or "$id" not in v for v in schema["$defs"].values())  # pointers only
    if name == S.BUNDLE:  # accepts exactly what the shipped schema accepts
        for path in sorted(GOLDEN.glob("*.json")):
            bundle = json.loads(path.read_text())
            assert not list(validator.iter_errors(bundle)), path.name
            for broken in (dict(bundle, environment={"x": 1}), dict(bundle, version=1),
                           {k: v for k, v in bundle.items() if k != "meta"},
                           dict(bundle, request={**bundle["request"], "selector": {"kind": "cursor"}}),
                           dict(bundle, facts={"provenance": "lsp", "definitions": [{"path": "a", "range": [0]}]})):
                assert bool(list(validator.iter_errors(broken))) == bool(schema_errors("bundle", broken))
                assert list(validator.iter_errors(broken)), path.name
    record = {"step": 1, "op": "write", "status": "ok", "exitCode": 0,
              "processReward": {"version": "pr-v1", "r": 0.4, "weights": {"alpha": 0.5, "beta": 0.4, "gamma": 0.1},
                                "components": {"diag_before": 0, "diag_after": 0, "diag_delta": 0, "safety": 1,
                                               "alpha_conf": 1, "ambiguity_penalty": 0}}}
    if name == S.RECORD:
        assert S.problems(S.RECORD, record) == []
        assert S.problems(S.RECORD, {**record, "status": "maybe"})
    if name == S.SUMMARY:
        part = {"steps": 1, "return": 0.4, "records": [record]}
        good = {"session": "a", "aggregate": "sum", "preview": part, "applied": part, "closed": False}
        assert S.problems(S.SUMMARY, good) == []
        bad = {**good, "applied": {**part, "records": [{"step": 0}]}}
        assert S.problems(S.SUMMARY, bad)  # the items are checked against reward-record.json


def test_lanser_mcp_usage_errors(tmp_path: Path) -> None:
    assert run_cli("mcp", "--http", "nope").code == 2
    assert run_cli("mcp", "--trace-file", str(tmp_path / "t"), "-w", str(tmp_path)).code == 2
    missing = run_cli("mcp", "-w", str(tmp_path / "missing"))
    assert missing.code == 3 and "E/NOT_FOUND" in missing.err


def test_refusals_need_no_server(tmp_path: Path) -> None:
    """A bad selector, the jail and bad arguments are answered before any server starts."""
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURES / "srcpkg", ws)
    settings = McpSettings(workspace=str(ws), daemon=False)
    backend, desk = Backend(settings), RewardDesk(settings)

    async def go() -> None:
        try:
            async with Client(build_server(settings, backend, desk)) as client:
                r = await client.call_tool("hover", {"selector": "src/shop/service.py@L7:C"})
                assert r.is_error and r.content[0].text.startswith("lanser: E/BAD_SELECTOR_SYNTAX: ")
                assert r.structured_content["error"]["details"]["column"] == 25
                r = await client.call_tool("references", {"selector": "/etc/hostname:1:1"})
                assert r.is_error and "E/FS_PERMISSIONS" in r.content[0].text
                r = await client.call_tool("code_actions", {"selector": "src/shop/broken.py:1:1", "kind": "refactor"})
                assert r.is_error and "E/BAD_INPUT" in r.content[0].text and "kind" in r.content[0].text
                assert r.structured_content["error"]["exitCode"] == 2
                r = await client.call_tool("replay", {"trace": "missing.jsonl"})
                assert r.is_error and "E/NOT_FOUND" in r.content[0].text
                status = await backend.daemon_status()
                assert status is not None and status["serverStarts"] == 0
        finally:
            await desk.close()
            await backend.close()

    asyncio.run(asyncio.wait_for(go(), 60))
