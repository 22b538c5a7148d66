"""``lanser batch`` on the real server: one server start, one line per input line, in order;
writing steps with the reward runner's semantics."""

from __future__ import annotations

import difflib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from schema_helpers import assert_valid, assert_valid_bundle

from lanser.batch import batch_exit_code, parse_batch, step_call, writes
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
    assert bad["bundle"]["error"]["code"] == "E/BAD_INPUT"
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
def test_reset_with_nothing_to_restore_and_unknown_cmd_on_stdout(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(ROOT / "fixtures" / "srcpkg", ws, symlinks=True)
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"id":1,"op":"query","cmd":"locate","selector":"py://shop.pricing#apply_discount"}\n'
                   "\n"
                   '{"id":2,"op":"reset"}\n'
                   '{"id":3,"op":"query","cmd":"explode","selector":"x"}\n')
    proc = lanser("-w", str(ws), "batch", str(inp))
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["id"], r["line"], r["exitCode"]) for r in records] == [(1, 1, 0), (2, 3, 0), (3, 4, 2)]
    reset = records[1]["bundle"]
    assert reset["request"]["cmd"] == "reward" and reset["request"]["args"]["op"] == "reset"
    assert reset["request"]["args"]["step"] == 2 and reset["edits"] is None
    assert proc.returncode == 2
    for r in records:
        assert_valid_bundle(r["bundle"])


def _patch(ws: Path, rel: str, old: str, new: str) -> str:
    before = (ws / rel).read_text(encoding="utf-8")
    after = before.replace(old, new)
    body = "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), f"a/{rel}", f"b/{rel}"))
    return f"diff --git a/{rel} b/{rel}\n" + body


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".lanser" not in p.relative_to(root).parts}


def _writing_steps(ws: Path) -> list[dict[str, Any]]:
    return [
        {"id": "diag-before", "op": "query", "cmd": "diag"},
        {"id": "new-module", "op": "write", "path": "src/shop/extra.py",
         "content": "from shop.models import Item\n\n\ndef label(item: Item) -> int:\n    return item.name\n"},
        {"id": "fix", "op": "patch", "patch": _patch(ws, "src/shop/broken.py", "return cart.size", "return cart.count")},
        {"id": "def-new", "op": "query", "cmd": "def", "selector": "src/shop/extra.py@L4:C17"},
        {"id": "rename", "op": "rename", "selector": "py://shop.pricing#format_price", "newName": "render_price"},
        {"id": "edit", "op": "edit", "selector": "py://shop.models#Cart.total:body", "text": "return 0.0"},
        {"id": "escape", "op": "write", "path": "../outside.py", "content": "x = 1\n"},
        {"id": "broken", "op": "write", "path": "src/shop/models.py", "content": "def (:\n"},
        {"id": "stale", "op": "patch", "patch": _patch(ws, "src/shop/broken.py", "return cart.size", "return 0")},
        {"id": "diag-mid", "op": "query", "cmd": "diag"},
        {"id": "reset", "op": "reset"},
        {"id": "diag-after", "op": "query", "cmd": "diag"},
    ]


@pytest.mark.server
def test_writing_steps_do_what_they_do_in_reward(tmp_path: Path) -> None:
    """patch/write/rename/edit/reset in a batch: the reward runner's semantics and bundles
    (byte for byte), the safety envelope, reset to where the batch began, a replayable trace."""
    ws = tmp_path / "ws"
    shutil.copytree(ROOT / "fixtures" / "srcpkg", ws, symlinks=True)
    base = _snapshot(ws)
    steps = _writing_steps(ws)
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(s) + "\n" for s in steps))
    trace = tmp_path / "t.jsonl"
    proc = lanser("-w", str(ws), "batch", str(inp), "--trace-file", str(trace))
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["id"], r["exitCode"]) for r in records] == [
        ("diag-before", 0), ("new-module", 0), ("fix", 0), ("def-new", 0), ("rename", 0), ("edit", 0),
        ("escape", 71), ("broken", 70), ("stale", 70), ("diag-mid", 0), ("reset", 0), ("diag-after", 0)]
    assert proc.returncode == 71  # the first failing step's code
    by_id = {r["id"]: r["bundle"] for r in records}
    assert by_id["def-new"]["facts"]["definitions"][0]["path"] == "src/shop/models.py"  # saw the written module
    assert by_id["diag-mid"]["facts"]["counts"]["byFile"]["src/shop/extra.py"]["errors"] == 1
    assert "src/shop/broken.py" in by_id["diag-before"]["facts"]["counts"]["byFile"]
    assert by_id["diag-after"]["bundleId"] == by_id["diag-before"]["bundleId"]  # reset: the base again
    assert _snapshot(ws) == base and not (tmp_path / "outside.py").exists()
    for r in records:
        assert_valid("batch-output", r)
        assert_valid_bundle(r["bundle"])
    # The same steps through `lanser reward`: every writing step's bundle is the same bundle.
    ws2 = tmp_path / "ws2"
    shutil.copytree(ROOT / "fixtures" / "srcpkg", ws2, symlinks=True)
    rew = lanser("-w", str(ws2), "reward", str(inp))
    assert rew.returncode == 0, rew.stderr
    reward = {r["id"]: r for r in map(json.loads, rew.stdout.splitlines())}
    for s in steps:
        if s["op"] != "query":
            assert by_id[s["id"]]["bundleId"] == reward[s["id"]]["bundleId"], s["id"]
            assert by_id[s["id"]]["processReward"] == reward[s["id"]]["processReward"], s["id"]
    # The trace replays (in a scratch copy from the base: the batch wrote), without a server.
    rep = lanser("-w", str(ws), "--json", "trace", "replay", str(trace))
    assert rep.returncode == 0, rep.stderr
    assert [json.loads(line)["status"] for line in rep.stdout.splitlines()] == ["identical"] * len(steps)
    assert _snapshot(ws) == base


@pytest.mark.server
def test_writing_steps_in_a_clean_git_tree_and_refused_on_a_dirty_one(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(ROOT / "fixtures" / "srcpkg", ws, symlinks=True)
    git = ["git", "-C", str(ws), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
        subprocess.run(git + cmd, check=True, capture_output=True)
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"id": "a", "op": "write", "path": "src/shop/a.py", "content": "A = 1\n"}) + "\n"
                   + json.dumps({"id": "b", "op": "write", "path": "src/shop/b.py", "content": "B = 2\n"}) + "\n")
    proc = lanser("-w", str(ws), "batch", str(inp))
    # the second write is not refused for the tree our own first write made dirty
    assert [json.loads(line)["exitCode"] for line in proc.stdout.splitlines()] == [0, 0], proc.stdout
    inp.write_text(json.dumps({"id": "c", "op": "write", "path": "src/shop/c.py", "content": "C = 3\n"}) + "\n")
    proc = lanser("-w", str(ws), "batch", str(inp))  # dirty before the batch: refused
    rec = json.loads(proc.stdout)
    assert rec["exitCode"] == 71 and rec["bundle"]["error"]["details"]["reason"] == "dirty"
    assert not (ws / "src/shop/c.py").exists() and proc.returncode == 71
    proc = lanser("-w", str(ws), "--allow-dirty", "batch", str(inp))
    assert json.loads(proc.stdout)["exitCode"] == 0 and (ws / "src/shop/c.py").exists()


def test_missing_input_is_not_found(tmp_path: Path) -> None:
    proc = lanser("-w", str(tmp_path), "batch", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "out.jsonl"))
    assert proc.returncode == 3 and "E/NOT_FOUND" in proc.stderr
    assert not (tmp_path / "out.jsonl").exists()
    assert "Traceback" not in proc.stderr


def test_step_mapping_is_pure() -> None:
    steps = parse_batch('{"op":"query","cmd":"diag"}\n\n{"op":"rename","selector":"a.py@L1:C1","newName":"b","id":7}\nnope\n')
    assert isinstance(steps[0], Step) and isinstance(steps[1], Step) and isinstance(steps[2], BadLine)
    assert step_call(steps[0]).cmd == "diag" and step_call(steps[0]).selector is None
    call = step_call(steps[1], 2)
    raw = {"op": "rename", "selector": "a.py@L1:C1", "newName": "b", "id": 7}
    assert (call.cmd, call.selector, call.args) == ("rename", "a.py@L1:C1",
                                                   {"step": raw, "line": 3, "n": 2, "apply": True})
    assert writes(steps) and not writes(steps[:1])
    assert steps[2].line == 4
    assert batch_exit_code([0, 0]) == 0 and batch_exit_code([0, 3, 2]) == 3
