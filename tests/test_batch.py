"""``lanser batch`` on the real server: one server start, one line per input line, in order."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from schema_helpers import assert_valid, assert_valid_bundle

from lanser.batch import batch_exit_code, parse_batch, step_call
from lanser.rewards.steps import BadLine, Step

ROOT = Path(__file__).resolve().parent.parent
QUERIES: list[dict[str, Any]] = [
    {"op": "query", "cmd": "def", "selector": "src/shop/service.py@L7:C18"},
    {"op": "query", "cmd": "refs", "selector": "py://shop.pricing#apply_discount"},
    {"op": "query", "cmd": "hover", "selector": "src/shop/service.py@L15:C13"},
    {"op": "query", "cmd": "symbols", "selector": "src/shop/models.py"},
    {"op": "query", "cmd": "diag", "selector": "src/shop/broken.py"},
    {"op": "query", "cmd": "locate", "selector": "py://shop.models#Cart.total:body"},
    {"op": "query", "cmd": "def", "selector": {"kind": "cursor", "path": "src/shop/service.py", "line": 14, "col": 12}},
    {"op": "query", "cmd": "prepare-rename", "selector": "py://shop.pricing#format_price"},
    {"op": "query", "cmd": "diag"},
    {"op": "query", "cmd": "hover", "selector": "py://shop.models#Cart"},
]
MALFORMED_AT = 100  # 1-based line of the malformed step


def lanser(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lanser", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def big_batch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("batch")
    ws = base / "ws"
    shutil.copytree(ROOT / "fixtures" / "srcpkg", ws, symlinks=True)
    lines = []
    for n in range(1, 201):
        if n == MALFORMED_AT:
            lines.append('{"op":"query","cmd":"def","selector":')
        else:
            lines.append(json.dumps({"id": f"q{n}", **QUERIES[n % len(QUERIES)]}))
    inp = base / "in.jsonl"
    inp.write_text("\n".join(lines) + "\n")
    trace = base / "batch.trace.jsonl"
    out = base / "out.jsonl"
    proc = lanser("-w", str(ws), "batch", str(inp), "-o", str(out), "--trace-file", str(trace))
    return {"proc": proc, "out": out, "trace": trace, "ws": ws, "base": base}


@pytest.mark.server
def test_200_queries_one_server_in_order(big_batch: dict[str, Any]) -> None:
    proc = big_batch["proc"]
    assert proc.stdout == ""  # -o: nothing on stdout
    assert "Traceback" not in proc.stderr
    records = [json.loads(line) for line in big_batch["out"].read_text().splitlines()]
    assert len(records) == 200
    assert [r["line"] for r in records] == list(range(1, 201))
    assert [r["id"] for r in records] == [None if n == MALFORMED_AT else f"q{n}" for n in range(1, 201)]
    ok = [r for r in records if r["exitCode"] == 0]
    assert len(ok) == 199
    bad = records[MALFORMED_AT - 1]
    assert bad["exitCode"] == 2 and bad["bundle"]["status"] == "error"
    assert "not JSON" in bad["bundle"]["error"]["message"]
    assert proc.returncode == 2  # the first failing step's code
    for r in records:
        assert_valid("batch-output", r)
        assert_valid_bundle(r["bundle"])
        if r["exitCode"] == 0:
            assert r["bundle"]["request"]["cmd"] == QUERIES[r["line"] % len(QUERIES)]["cmd"]
    # one server start for the whole batch: exactly one initialize in the trace
    events = [json.loads(line) for line in big_batch["trace"].read_text().splitlines()]
    inits = [e for e in events if e["event"] == "frame" and e["dir"] == "send"
             and e["msg"].get("method") == "initialize"]
    assert len(inits) == 1
    assert len({e["run"] for e in events}) == 1
    assert sum(e["event"] == "op-end" for e in events) == 199


@pytest.mark.server
def test_same_query_same_bundle_across_the_batch(big_batch: dict[str, Any]) -> None:
    records = [json.loads(line) for line in big_batch["out"].read_text().splitlines()]
    by_query: dict[str, set[str]] = {}
    for r in records:
        if r["exitCode"] == 0:
            key = json.dumps(QUERIES[r["line"] % len(QUERIES)], sort_keys=True)
            by_query.setdefault(key, set()).add(r["bundle"]["bundleId"])
    assert len(by_query) == len(QUERIES)
    assert all(len(ids) == 1 for ids in by_query.values())


@pytest.mark.server
def test_batch_trace_replays(big_batch: dict[str, Any]) -> None:
    proc = lanser("-w", str(big_batch["ws"]), "trace", "replay", str(big_batch["trace"]))
    assert proc.returncode == 0, proc.stderr
    assert "199 operations replayed, all identical" in proc.stdout


@pytest.mark.server
def test_unsupported_op_and_stdout(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(ROOT / "fixtures" / "srcpkg", ws, symlinks=True)
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"id":1,"op":"query","cmd":"locate","selector":"py://shop.pricing#apply_discount"}\n'
                   "\n"
                   '{"id":2,"op":"reset"}\n'
                   '{"id":3,"op":"query","cmd":"explode","selector":"x"}\n')
    proc = lanser("-w", str(ws), "batch", str(inp))
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["id"], r["line"], r["exitCode"]) for r in records] == [(1, 1, 0), (2, 3, 72), (3, 4, 2)]
    assert records[1]["bundle"]["error"]["code"] == "E/UNSUPPORTED_CAP"
    assert proc.returncode == 72
    for r in records:
        assert_valid_bundle(r["bundle"])


def test_missing_input_is_not_found(tmp_path: Path) -> None:
    proc = lanser("-w", str(tmp_path), "batch", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "out.jsonl"))
    assert proc.returncode == 3 and "E/NOT_FOUND" in proc.stderr
    assert not (tmp_path / "out.jsonl").exists()
    assert "Traceback" not in proc.stderr


def test_step_mapping_is_pure() -> None:
    steps = parse_batch('{"op":"query","cmd":"diag"}\n\n{"op":"rename","selector":"a.py@L1:C1","newName":"b","id":7}\nnope\n')
    assert isinstance(steps[0], Step) and isinstance(steps[1], Step) and isinstance(steps[2], BadLine)
    assert step_call(steps[0]).cmd == "diag" and step_call(steps[0]).selector is None
    call = step_call(steps[1])
    assert (call.cmd, call.selector, call.args) == ("rename", "a.py@L1:C1", {"newName": "b", "apply": True})
    assert steps[2].line == 4
    assert batch_exit_code([0, 0]) == 0 and batch_exit_code([0, 3, 2]) == 3
