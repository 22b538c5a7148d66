"""Record with --trace-file on the real server, then replay with no server at all.

One module-scoped recording (three lanser processes: a single def, a batch of
mixed queries, a rename dry-run) on a copy of fixtures/srcpkg; every test reads
that trace or a tampered copy of it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from schema_helpers import assert_valid, assert_valid_bundle

from lanser import trace as TR
from lanser.bundles.canonical import canonical_bytes
from lanser.workspace import blob_id

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable  # the venv's python, by absolute path
SEL_DEF = "src/shop/service.py@L7:C18"
SYM = "py://shop.pricing#apply_discount"
BATCH = [
    {"id": "refs", "op": "query", "cmd": "refs", "selector": SYM},
    {"id": "hover", "op": "query", "cmd": "hover", "selector": SEL_DEF},
    {"id": "diag-file", "op": "query", "cmd": "diag", "selector": "src/shop/broken.py"},
    {"id": "diag-ws", "op": "query", "cmd": "diag"},
    {"id": "locate", "op": "query", "cmd": "locate", "selector": "py://shop.models#Cart.total:body"},
    {"id": "symbols", "op": "query", "cmd": "symbols", "selector": "src/shop/models.py"},
    {"id": "missing", "op": "query", "cmd": "def", "selector": "src/shop/nosuch.py@L1:C1"},
]


def lanser(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "lanser", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120)


def has_command(name: str) -> bool:
    from lanser.cli import group
    return name in group.commands


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("trace")
    ws = base / "ws"
    shutil.copytree(ROOT / "fixtures" / "srcpkg", ws, symlinks=True)
    trace = base / "session.jsonl"
    printed: list[dict[str, Any]] = []
    p = lanser("-w", str(ws), "--json", "def", SEL_DEF, "--trace-file", str(trace))
    assert p.returncode == 0, p.stderr
    printed.append(json.loads(p.stdout))
    steps = base / "steps.jsonl"
    steps.write_text("".join(json.dumps(s) + "\n" for s in BATCH))
    p = lanser("-w", str(ws), "batch", str(steps), "--trace-file", str(trace))
    assert p.returncode == 3, p.stderr  # the first failing step: E/NOT_FOUND
    printed += [json.loads(line)["bundle"] for line in p.stdout.splitlines()]
    if has_command("rename"):
        # Recorded into its own file, then appended: traces concatenate (runs are independent).
        # E/LS_TIMEOUT is retryable by contract, and the rename path meets one now and then.
        part = base / "rename-0.jsonl"
        for attempt in range(3):
            part = base / f"rename-{attempt}.jsonl"
            p = lanser("-w", str(ws), "--json", "--timeout", "10", "rename", SYM, "reduce_price", "--dry-run",
                       "--trace-file", str(part))
            if p.returncode != 64:
                break
        assert p.returncode == 0, p.stderr
        printed.append(json.loads(p.stdout))
        with open(trace, "a", encoding="utf-8") as fh:
            fh.write(part.read_text(encoding="utf-8"))
    return {"ws": ws, "trace": trace, "printed": printed, "base": base}


@pytest.mark.server
def test_trace_holds_every_operation(recorded: dict[str, Any]) -> None:
    runs = TR.read_trace(str(recorded["trace"]))
    ops = TR.operations(runs)
    assert len(runs) == (3 if has_command("rename") else 2)
    assert [op.cmd for op in ops][:8] == ["def", "refs", "hover", "diag", "diag", "locate", "symbols", "def"]
    assert [op.bundle for op in ops] == recorded["printed"]
    # the batch run started its server once, in its first server-backed operation
    inits = [fr for op in runs[1].ops for fr in op.frames
             if fr["dir"] == "send" and fr["msg"].get("method") == "initialize"]
    assert len(inits) == 1
    for op in ops:
        assert_valid_bundle(op.bundle)
    for line in recorded["trace"].read_text().splitlines():
        assert_valid("trace-event", json.loads(line))


@pytest.mark.server
def test_workspace_digest_names_what_was_read(recorded: dict[str, Any]) -> None:
    ws: Path = recorded["ws"]
    first = TR.operations(TR.read_trace(str(recorded["trace"])))[0]
    for rel in ("src/shop/service.py", "src/shop/pricing.py", "pyproject.toml"):
        assert first.files[rel] == blob_id((ws / rel).read_bytes())
    diag_ws = TR.operations(TR.read_trace(str(recorded["trace"])))[4]
    assert diag_ws.cmd == "diag" and diag_ws.selector is None
    assert {"src/shop/broken.py", "src/shop/models.py", "src/shop/__init__.py"} <= set(diag_ws.files)


@pytest.mark.server
def test_replay_without_node_or_pyright_is_byte_identical(recorded: dict[str, Any], tmp_path: Path) -> None:
    # /usr/bin may hold a node on some machines: an empty directory is the PATH then
    path = "/usr/bin:/bin" if shutil.which("node", path="/usr/bin:/bin") is None else str(tmp_path)
    env = {"PATH": path}
    assert shutil.which("node", path=env["PATH"]) is None
    assert shutil.which("pyright", path=env["PATH"]) is None
    p = lanser("-w", str(recorded["ws"]), "trace", "replay", str(recorded["trace"]), "--bundles", env=env)
    assert p.returncode == 0, p.stderr
    expected = b"".join(canonical_bytes(b) + b"\n" for b in recorded["printed"])
    assert p.stdout.encode("utf-8") == expected
    p = lanser("-w", str(recorded["ws"]), "--json", "trace", "replay", str(recorded["trace"]), env=env)
    assert p.returncode == 0, p.stderr
    report = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(report) == len(recorded["printed"])
    assert {r["status"] for r in report} == {"identical"}


@pytest.mark.server
def test_replay_in_another_directory(recorded: dict[str, Any], tmp_path: Path) -> None:
    elsewhere = tmp_path / "moved" / "copy"
    shutil.copytree(recorded["ws"], elsewhere, symlinks=True)
    results = TR.replay(str(recorded["trace"]), str(elsewhere))
    assert [r.status for r in results] == ["identical"] * len(recorded["printed"])
    assert [r.bundle for r in results] == recorded["printed"]


@pytest.mark.server
def test_replay_never_starts_a_server(recorded: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*a: Any, **k: Any) -> Any:
        raise AssertionError("replay tried to start a process or locate a server")

    import lanser.engine
    import lanser.server.registry
    import lanser.server.session
    monkeypatch.setattr(asyncio, "create_subprocess_exec", forbidden)
    monkeypatch.setattr(subprocess, "Popen", forbidden)
    monkeypatch.setattr(lanser.engine, "server_spec", forbidden)
    monkeypatch.setattr(lanser.server.registry, "node_binary", forbidden)
    monkeypatch.setattr(lanser.server.session, "LanserLanguageClient", forbidden)
    results = TR.replay(str(recorded["trace"]), str(recorded["ws"]))
    assert all(r.status == "identical" for r in results), [r.reason for r in results]
    one = TR.replay(str(recorded["trace"]), str(recorded["ws"]), only=3)
    assert [r.op.cmd for r in one] == ["hover"] and one[0].status == "identical"


@pytest.mark.server
def test_changed_workspace_file_is_replay_mismatch(recorded: dict[str, Any], tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(recorded["ws"], ws, symlinks=True)
    with open(ws / "src/shop/pricing.py", "a") as fh:
        fh.write("\nEXTRA = 1\n")
    p = lanser("-w", str(ws), "trace", "replay", str(recorded["trace"]))
    assert p.returncode == 76
    assert "E/REPLAY_MISMATCH" in p.stderr and "src/shop/pricing.py changed since the trace" in p.stderr
    assert "Traceback" not in p.stderr + p.stdout


def _rewrite(trace: Path, out: Path, edit: Any) -> None:
    lines = trace.read_text(encoding="utf-8").splitlines()
    out.write_text("\n".join(edit(lines)) + "\n", encoding="utf-8")


def _edit_def_response(lines: list[str], *, reseal: bool) -> list[str]:
    """Move the recorded definition answer one character, optionally recomputing the op check."""
    events = [json.loads(line) for line in lines]
    first = [i for i, e in enumerate(events) if e["event"] == "frame" and e["op"] == 1 and e["run"] == events[0]["run"]]
    def_ids = {events[i]["msg"]["id"] for i in first if events[i]["msg"].get("method") == "textDocument/definition"}
    for i in first:
        e = events[i]
        if e["dir"] == "recv" and e["msg"].get("id") in def_ids and "method" not in e["msg"]:
            res = e["msg"]["result"]
            loc = res[0]
            key = "targetSelectionRange" if "targetSelectionRange" in loc else "range"
            loc[key]["start"]["character"] += 1
            lines[i] = TR._line(e)
    if reseal:
        start = next(i for i, e in enumerate(events) if e["event"] == "op-start")
        end = next(i for i, e in enumerate(events) if e["event"] == "op-end")
        ev = events[end]
        ev["check"] = TR._check(lines[start:end])
        lines[end] = TR._line(ev)
    return lines


@pytest.mark.server
@pytest.mark.parametrize("name, edit, message", [
    ("edited-frame", lambda ls: _edit_def_response(ls, reseal=False), "the trace was edited"),
    ("garbage-line", lambda ls: ls[:3] + ["{not json"] + ls[3:], "not JSON"),
    ("truncated", lambda ls: ls[:-1], "has no end"),
    ("missing-run", lambda ls: ls[1:], "missing run event"),
    ("bundle-edited", lambda ls: [l.replace('"exit_code":0', '"exit_code":5', 1) if '"event":"bundle"' in l else l
                                  for l in ls], "does not match its bundleId"),
    ("empty", lambda ls: [], "no run"),
])
def test_tampered_trace_is_a_clear_error(recorded: dict[str, Any], tmp_path: Path, name: str, edit: Any,
                                         message: str) -> None:
    bad = tmp_path / f"{name}.jsonl"
    _rewrite(recorded["trace"], bad, edit)
    p = lanser("-w", str(recorded["ws"]), "trace", "replay", str(bad))
    assert p.returncode == 76, (p.stdout, p.stderr)
    assert p.stderr.startswith("lanser: E/REPLAY_MISMATCH: corrupt trace") and message in p.stderr
    assert "Traceback" not in p.stderr + p.stdout


@pytest.mark.server
def test_resealed_forgery_is_caught_by_regeneration(recorded: dict[str, Any], tmp_path: Path) -> None:
    forged = tmp_path / "forged.jsonl"
    _rewrite(recorded["trace"], forged, lambda ls: _edit_def_response(ls, reseal=True))
    results = TR.replay(str(forged), str(recorded["ws"]))
    assert results[0].status == "mismatch" and "differs from the recorded one" in (results[0].reason or "")
    regenerated = results[0].bundle
    assert regenerated is not None and regenerated["facts"]["definitions"][0]["range"] == [0, 5, 0, 18]
    assert all(r.status == "identical" for r in results[1:])


@pytest.mark.server
def test_list_and_show(recorded: dict[str, Any]) -> None:
    t = str(recorded["trace"])
    p = lanser("--json", "trace", "list", t)
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert p.returncode == 0 and [r["n"] for r in rows] == list(range(1, len(recorded["printed"]) + 1))
    p = lanser("--json", "trace", "list", t, "--op", "diag")
    assert [r["selector"] for r in map(json.loads, p.stdout.splitlines())] == ["src/shop/broken.py", None]
    p = lanser("--json", "trace", "list", t, "--status", "error")
    errs = [json.loads(line) for line in p.stdout.splitlines()]
    assert [(r["cmd"], r["exitCode"]) for r in errs] == [("def", 3)]
    p = lanser("--json", "trace", "list", t, "--exit-code", "3", "--selector", "nosuch")
    assert len(p.stdout.splitlines()) == 1
    p = lanser("--json", "trace", "show", t, "2")
    shown = json.loads(p.stdout)
    assert shown["bundle"] == recorded["printed"][1] and shown["start"]["cmd"] == "refs"
    p = lanser("trace", "show", t, "2")
    assert p.returncode == 0 and "textDocument/references" in p.stdout
    p = lanser("trace", "show", t, "99")
    assert p.returncode == 3 and "no operation 99" in p.stderr


def test_missing_trace_is_not_found(tmp_path: Path) -> None:
    p = lanser("trace", "replay", str(tmp_path / "nope.jsonl"))
    assert p.returncode == 3 and "E/NOT_FOUND" in p.stderr and "Traceback" not in p.stderr


def test_unwritable_trace_file_is_fs_permissions(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(ROOT / "fixtures" / "clean", ws)
    p = lanser("-w", str(ws), "locate", "app.py@L1:C1", "--trace-file", str(tmp_path / "no" / "dir" / "t.jsonl"))
    assert p.returncode == 71 and "E/FS_PERMISSIONS" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.server
def test_applied_edit_is_skipped_never_rewritten(tmp_path: Path) -> None:
    if not has_command("edit"):
        pytest.skip("no edit command")
    ws = tmp_path / "ws"
    shutil.copytree(ROOT / "fixtures" / "srcpkg", ws, symlinks=True)
    trace = tmp_path / "t.jsonl"
    p = lanser("-w", str(ws), "edit", "py://shop.pricing#format_price:body", "--text", "return str(price)",
               "--apply", "--allow-dirty", "--trace-file", str(trace))
    assert p.returncode == 0, p.stderr
    after = (ws / "src/shop/pricing.py").read_bytes()
    p = lanser("-w", str(ws), "--json", "trace", "replay", str(trace))
    assert p.returncode == 0, p.stderr
    assert [json.loads(line)["status"] for line in p.stdout.splitlines()] == ["skipped"]
    assert (ws / "src/shop/pricing.py").read_bytes() == after
