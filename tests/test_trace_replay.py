"""Record with --trace-file on the real server, then replay with no server at all.

One module-scoped recording on a copy of fixtures/srcpkg: three lanser
processes (a single def, a batch of mixed queries, a rename dry-run) make the
read-only ``trace`` (replayed in place); the ``session`` trace is that plus a
``lanser reward`` run that writes to the workspace (patch, write, rename, edit,
a refused write, queries, reset), replayed in a scratch copy.  Every test reads
one of them or a tampered copy.
"""

from __future__ import annotations

import asyncio
import difflib
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
from lanser.trace import format as TF
from lanser.trace.replay import replay
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


# Runs lanser with an audit hook that refuses to start any process: a replay must need none.
NO_PROCESSES = """
import runpy, sys
def refuse(event, args):
    if event in ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.fork", "os.forkpty", "os.system",
                 "os.spawn"):
        raise RuntimeError(f"replay tried to start a process: {event}")
sys.addaudithook(refuse)
sys.argv[0] = "lanser"
runpy.run_module("lanser", run_name="__main__")
"""


def lanser(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "lanser", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120)


def bare_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH holds only the venv's python: no node, pyright or git on it."""
    bare = tmp_path / "bare-bin"
    bare.mkdir(exist_ok=True)
    if not (bare / "python").exists():
        (bare / "python").symlink_to(PY)
    env = {"PATH": str(bare)}
    probe = subprocess.run([PY, "-c", "import shutil; print([shutil.which(n) for n in "
                                      "('node', 'pyright', 'pyright-langserver', 'git', 'python')])"],
                           capture_output=True, text=True, env=env, timeout=60)
    assert probe.stdout.strip() == f"[None, None, None, None, {str(bare / 'python')!r}]", probe.stdout
    return env


def bare_lanser(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """lanser in ``env``, unable to start any process."""
    return subprocess.run([PY, "-c", NO_PROCESSES, *args], capture_output=True, text=True, env=env, timeout=120)


def patch_for(ws: Path, rel: str, old: str, new: str) -> str:
    """A git-style unified diff replacing ``old`` by ``new`` in ``rel``."""
    before = (ws / rel).read_text(encoding="utf-8")
    after = before.replace(old, new)
    assert after != before
    body = "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), f"a/{rel}", f"b/{rel}"))
    return f"diff --git a/{rel} b/{rel}\n" + body


def reward_steps(ws: Path) -> list[dict[str, Any]]:
    """A trajectory on srcpkg that writes (and ends with a reset, so the base is back)."""
    return [
        {"id": "q-def", "op": "query", "cmd": "def", "selector": SEL_DEF},
        {"id": "new-module", "op": "write", "path": "src/shop/extra.py",
         "content": "from shop.models import Item\n\n\ndef label(item: Item) -> int:\n    return item.name\n"},
        {"id": "fix-attribute", "op": "patch",
         "patch": patch_for(ws, "src/shop/broken.py", "return cart.size", "return cart.count")},
        {"id": "rename", "op": "rename", "selector": "py://shop.pricing#format_price", "newName": "render_price"},
        {"id": "edit", "op": "edit", "selector": "py://shop.models#Cart.total:body", "text": "return 0.0"},
        {"id": "escape", "op": "write", "path": "../outside.py", "content": "x = 1\n"},
        {"id": "q-hover", "op": "query", "cmd": "hover",
         "selector": {"kind": "cursor", "path": "src/shop/service.py", "line": 7, "col": 18}},
        {"id": "reset", "op": "reset"},
    ]


def write_steps(path: Path, steps: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(s) + "\n" for s in steps), encoding="utf-8")
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file's bytes, except lanser's own .lanser/ directory."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".lanser" not in p.relative_to(root).parts}


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
    # The session: the same operations, then a reward run that writes (and resets at its end).
    session = base / "session-with-reward.jsonl"
    shutil.copyfile(trace, session)
    steps_file = write_steps(base / "reward-steps.jsonl", reward_steps(ws))
    p = lanser("-w", str(ws), "reward", str(steps_file), "--trace-file", str(session))
    assert p.returncode == 0, p.stderr
    records = [json.loads(line) for line in p.stdout.splitlines()]
    assert [(r["id"], r["status"]) for r in records] == [
        ("q-def", "ok"), ("new-module", "ok"), ("fix-attribute", "ok"), ("rename", "ok"), ("edit", "ok"),
        ("escape", "error"), ("q-hover", "ok"), ("reset", "ok")]
    assert snapshot(ws) == snapshot(ROOT / "fixtures" / "srcpkg")  # the reset put the base back
    return {"ws": ws, "trace": trace, "printed": printed, "base": base, "session": session,
            "reward_out": p.stdout, "records": records}


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
def test_replay_in_another_directory(recorded: dict[str, Any], tmp_path: Path) -> None:
    elsewhere = tmp_path / "moved" / "copy"
    shutil.copytree(recorded["ws"], elsewhere, symlinks=True)
    results = replay(str(recorded["trace"]), str(elsewhere))
    assert [r.status for r in results] == ["identical"] * len(recorded["printed"])
    assert [r.bundle for r in results] == recorded["printed"]


@pytest.mark.server
def test_replay_never_starts_a_server(recorded: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*a: Any, **k: Any) -> Any:
        raise AssertionError("replay tried to start a process or locate a server")

    import lanser.engine.core
    import lanser.server.registry
    import lanser.server.session
    monkeypatch.setattr(asyncio, "create_subprocess_exec", forbidden)
    monkeypatch.setattr(subprocess, "Popen", forbidden)
    monkeypatch.setattr(lanser.engine.core, "server_spec", forbidden)
    monkeypatch.setattr(lanser.server.registry, "node_binary", forbidden)
    monkeypatch.setattr(lanser.server.session, "LanserLanguageClient", forbidden)
    results = replay(str(recorded["trace"]), str(recorded["ws"]))
    assert all(r.status == "identical" for r in results), [r.reason for r in results]
    one = replay(str(recorded["trace"]), str(recorded["ws"]), only=3)
    assert [r.op.cmd for r in one] == ["hover"] and one[0].status == "identical"
    # the session writes: replayed in a scratch copy, the reward runner on the recorded server
    results = replay(str(recorded["session"]), str(recorded["ws"]))
    assert all(r.status == "identical" and r.scratch for r in results), [r.reason for r in results]
    one = replay(str(recorded["session"]), str(recorded["ws"]), only=10)
    assert [(r.op.cmd, len(r.bundles), r.status) for r in one] == [("reward", 8, "identical")]
    assert one[0].records == recorded["records"]


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
            lines[i] = TF.event_line(e)
    if reseal:
        start = next(i for i, e in enumerate(events) if e["event"] == "op-start")
        end = next(i for i, e in enumerate(events) if e["event"] == "op-end")
        ev = events[end]
        run_line = next(lines[i] for i, e in enumerate(events) if e["event"] == "run" and e["run"] == ev["run"])
        ev["check"] = TF.check_digest([run_line, *lines[start:end]])
        lines[end] = TF.event_line(ev)
    return lines


@pytest.mark.server
@pytest.mark.parametrize("name, edit, message", [
    ("edited-frame", lambda ls: _edit_def_response(ls, reseal=False), "the trace was edited"),
    ("garbage-line", lambda ls: ls[:3] + ["{not json"] + ls[3:], "not JSON"),
    ("truncated", lambda ls: ls[:-1], "has no end"),
    ("missing-run", lambda ls: ls[1:], "missing run event"),
    ("bundle-edited", lambda ls: [x.replace('"exit_code":0', '"exit_code":5', 1) if '"event":"bundle"' in x else x
                                  for x in ls], "does not match its bundleId"),
    ("empty", lambda ls: [], "no run"),
    # the run line (root, environment, .lanser/ state) is part of every operation's check
    ("run-line-edited", lambda ls: [x.replace('"lanserDir":', '"lanserDir":null,"x":', 1)
                                    if '"event":"run"' in x else x for x in ls], "the trace was edited"),
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
    results = replay(str(forged), str(recorded["ws"]))
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


@pytest.mark.server
def test_replay_without_node_or_pyright_is_byte_identical(recorded: dict[str, Any], tmp_path: Path) -> None:
    env = bare_env(tmp_path)
    p = bare_lanser(env, "-w", str(recorded["ws"]), "trace", "replay", str(recorded["trace"]), "--bundles")
    assert p.returncode == 0, p.stderr
    expected = b"".join(canonical_bytes(b) + b"\n" for b in recorded["printed"])
    assert p.stdout.encode("utf-8") == expected
    p = bare_lanser(env, "-w", str(recorded["ws"]), "--json", "trace", "replay", str(recorded["trace"]))
    assert p.returncode == 0, p.stderr
    report = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(report) == len(recorded["printed"])
    assert {r["status"] for r in report} == {"identical"}


@pytest.mark.server
def test_session_with_reward_replays_byte_identical_in_a_bare_subprocess(recorded: dict[str, Any],
                                                                        tmp_path: Path) -> None:
    """The issue's must-show: def/refs/hover/diag/rename-dry-run/reward recorded on the real
    server, replayed where no node, pyright or git is on PATH and no process may start."""
    env = bare_env(tmp_path)
    ws, session = recorded["ws"], recorded["session"]
    before = snapshot(ws)
    reward_op = TR.operations(TR.read_trace(str(session)))[-1]
    p = bare_lanser(env, "-w", str(ws), "trace", "replay", str(session), "--bundles")
    assert p.returncode == 0, p.stderr
    expected = b"".join(canonical_bytes(b) + b"\n" for b in recorded["printed"] + reward_op.bundles)
    assert p.stdout.encode("utf-8") == expected
    # the reward records, regenerated: exactly the bytes `lanser reward` printed
    p = bare_lanser(env, "-w", str(ws), "trace", "replay", str(session), "--records")
    assert p.returncode == 0, p.stderr
    assert p.stdout == recorded["reward_out"]
    p = bare_lanser(env, "-w", str(ws), "trace", "replay", str(session))
    assert p.returncode == 0, p.stderr
    assert f"{len(recorded['printed']) + 1} operations replayed, all identical (in a scratch copy" in p.stdout
    assert snapshot(ws) == before  # the replay wrote nothing into the workspace


@pytest.mark.server
def test_session_trace_holds_the_reward_run(recorded: dict[str, Any]) -> None:
    ws: Path = recorded["ws"]
    runs = TR.read_trace(str(recorded["session"]))
    assert len(runs) == len(TR.read_trace(str(recorded["trace"]))) + 1
    op = runs[-1].ops[0]
    assert len(runs[-1].ops) == 1 and op.cmd == "reward" and op.trajectory and op.writes
    assert op.records == recorded["records"]
    assert [b["bundleId"] for b in op.bundles] == [r["bundleId"] for r in recorded["records"]]
    assert [b["request"]["args"]["input"]["id"] for b in op.bundles] == [r["id"] for r in recorded["records"]]
    assert op.end["exitCode"] == 0 and op.end["steps"] == 8 and op.end["bundleId"] == op.bundles[-1]["bundleId"]
    # the digest is the workspace as the run began: every Python file and the config at their
    # base content, and the module the run created as missing
    base = ROOT / "fixtures" / "srcpkg"
    for rel in ("src/shop/__init__.py", "src/shop/broken.py", "src/shop/models.py", "src/shop/pricing.py",
                "src/shop/service.py", "pyproject.toml"):
        assert op.files[rel] == blob_id((base / rel).read_bytes()), rel
    assert op.files["src/shop/extra.py"] is None and op.files["pyrightconfig.json"] is None
    assert "../outside.py" not in op.files
    # git answers (this copy is no git work tree: null), one per apply and one at the start
    assert op.git and all(a is None for a in op.git)
    for b in op.bundles:
        assert_valid_bundle(b)
    for r in op.records:
        assert_valid("reward-record", r)
    for line in recorded["session"].read_text().splitlines():
        assert_valid("trace-event", json.loads(line))
    assert ws.exists()


@pytest.mark.server
def test_session_changed_workspace_file_is_replay_mismatch(recorded: dict[str, Any], tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(recorded["ws"], ws, symlinks=True)
    with open(ws / "src/shop/models.py", "a") as fh:
        fh.write("\nEXTRA = 1\n")
    p = lanser("-w", str(ws), "trace", "replay", str(recorded["session"]))
    assert p.returncode == 76, (p.stdout, p.stderr)
    assert p.stderr.startswith("lanser: E/REPLAY_MISMATCH: src/shop/models.py changed since the trace")
    assert "Traceback" not in p.stderr + p.stdout
    # a file the trace recorded as missing (the run created it) must still be missing
    shutil.rmtree(ws)
    shutil.copytree(recorded["ws"], ws, symlinks=True)
    (ws / "src/shop/extra.py").write_text("X = 1\n")
    p = lanser("-w", str(ws), "trace", "replay", str(recorded["session"]))
    assert p.returncode == 76 and "src/shop/extra.py changed since the trace (recorded blob missing" in p.stderr


def _reward_events(lines: list[str]) -> list[tuple[int, dict[str, Any]]]:
    last_run = json.loads(lines[-1])["run"]
    return [(i, e) for i, e in ((i, json.loads(line)) for i, line in enumerate(lines)) if e["run"] == last_run]


def _reseal(lines: list[str], events: list[tuple[int, dict[str, Any]]]) -> list[str]:
    start = next(i for i, e in events if e["event"] == "op-start")
    end_i, end = next((i, e) for i, e in events if e["event"] == "op-end")
    run_line = next(lines[i] for i, e in events if e["event"] == "run")
    end["check"] = TF.check_digest([run_line, *lines[start:end_i]])
    lines[end_i] = TF.event_line(end)
    return lines


def _edit_record(lines: list[str]) -> list[str]:
    for i, e in _reward_events(lines):
        if e["event"] == "record":
            e["record"]["processReward"]["r"] = 9.0
            lines[i] = TF.event_line(e)
            break
    return lines


def _forge_git(lines: list[str]) -> list[str]:
    events = _reward_events(lines)
    for i, e in events:
        if e["event"] == "git":
            e["dirtyPaths"] = []  # "a clean git work tree" where there was none
            lines[i] = TF.event_line(e)
    return _reseal(lines, events)


def _forge_record(lines: list[str]) -> list[str]:
    events = _reward_events(lines)
    for i, e in events:
        if e["event"] == "record" and e["record"]["id"] == "rename":
            e["record"]["processReward"]["r"] = 1.5
            lines[i] = TF.event_line(e)
    return _reseal(lines, events)


def _drop_git(lines: list[str]) -> list[str]:
    events = _reward_events(lines)
    first = next(i for i, e in events if e["event"] == "git")
    del lines[first]
    return _reseal(lines, _reward_events(lines))


@pytest.mark.server
@pytest.mark.parametrize("name, edit, message", [
    ("edited-record", _edit_record, "corrupt trace"),
    ("forged-git-answers", _forge_git, "operation 10: regenerated bundle"),
    ("forged-record", _forge_record, "operation 10: regenerated reward records differ"),
    ("dropped-git-answer", _drop_git, "operation 10: replay asked git about the work tree more often"),
])
def test_tampered_reward_trace_is_a_clear_error(recorded: dict[str, Any], tmp_path: Path, name: str, edit: Any,
                                                message: str) -> None:
    bad = tmp_path / f"{name}.jsonl"
    _rewrite(recorded["session"], bad, edit)
    p = lanser("-w", str(recorded["ws"]), "trace", "replay", str(bad))
    assert p.returncode == 76, (p.stdout, p.stderr)
    assert p.stderr.startswith("lanser: E/REPLAY_MISMATCH: ") and message in p.stderr, p.stderr
    assert "Traceback" not in p.stderr + p.stdout


@pytest.mark.server
def test_reward_list_and_show(recorded: dict[str, Any]) -> None:
    t = str(recorded["session"])
    p = lanser("trace", "list", t, "--op", "reward")
    assert p.returncode == 0 and p.stdout.startswith("10\treward\t8 steps\texit=0\tok\t")
    rows = [json.loads(line) for line in lanser("--json", "trace", "list", t, "--op", "reward").stdout.splitlines()]
    assert [(r["n"], r["steps"], r["selector"]) for r in rows] == [(10, 8, None)]
    p = lanser("trace", "show", t, "10")
    assert p.returncode == 0
    assert "reward (8 steps)" in p.stdout and "workspace (as the run began):" in p.stdout
    assert "src/shop/extra.py missing" in p.stdout and "git work-tree answers:" in p.stdout
    assert "  6: line 6 write error exit=71" in p.stdout and "E/FS_PERMISSIONS" in p.stdout
    assert p.stdout.endswith(recorded["reward_out"])  # the records, as printed
    shown = json.loads(lanser("--json", "trace", "show", t, "10").stdout)
    assert shown["records"] == recorded["records"] and len(shown["bundles"]) == 8 and shown["git"]


@pytest.mark.server
def test_reward_without_reset_replays_from_its_base(tmp_path: Path) -> None:
    """A disk reward run that leaves its changes: the trace's base is the workspace before step 1."""
    ws = tmp_path / "ws"
    shutil.copytree(ROOT / "fixtures" / "srcpkg", ws, symlinks=True)
    steps = [s for s in reward_steps(ws) if s["id"] in ("new-module", "fix-attribute", "q-hover")]
    trace = tmp_path / "t.jsonl"
    p = lanser("-w", str(ws), "reward", str(write_steps(tmp_path / "s.jsonl", steps)), "--trace-file", str(trace))
    assert p.returncode == 0, p.stderr
    assert (ws / "src/shop/extra.py").exists()
    p2 = lanser("-w", str(ws), "trace", "replay", str(trace))
    assert p2.returncode == 76 and "as it was when the trace began" in p2.stderr
    fresh = tmp_path / "fresh"
    shutil.copytree(ROOT / "fixtures" / "srcpkg", fresh, symlinks=True)
    results = replay(str(trace), str(fresh))
    assert [r.status for r in results] == ["identical"] and results[0].scratch
    assert b"".join(canonical_bytes(r) + b"\n" for r in results[0].records).decode() == p.stdout
    assert snapshot(fresh) == snapshot(ROOT / "fixtures" / "srcpkg")


@pytest.mark.server
def test_in_memory_aggregated_reward_replays_in_place_of_nothing(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(ROOT / "fixtures" / "srcpkg", ws, symlinks=True)
    steps = reward_steps(ws)
    body = [s for s in steps if s["op"] != "reset"]
    text = "".join(json.dumps(s) + "\n" for s in body) + "\n" + "".join(json.dumps(s) + "\n" for s in body[:3])
    (tmp_path / "s.jsonl").write_text(text + "{not json\n")
    trace = tmp_path / "t.jsonl"
    p = lanser("-w", str(ws), "reward", str(tmp_path / "s.jsonl"), "--in-memory", "--reset-between",
               "--aggregate", "min", "--clip", "1", "--trace-file", str(trace))
    assert p.returncode == 2, p.stderr  # the malformed last line
    assert snapshot(ws) == snapshot(ROOT / "fixtures" / "srcpkg")
    op = TR.operations(TR.read_trace(str(trace)))[0]
    assert op.end["exitCode"] == 2 and op.end["status"] == "error" and not op.git  # in memory: git never asked
    p2 = lanser("-w", str(ws), "trace", "replay", str(trace), "--records")
    assert p2.returncode == 0, p2.stderr
    assert p2.stdout == p.stdout


@pytest.mark.server
def test_reward_in_a_git_work_tree_replays_without_git(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(ROOT / "fixtures" / "srcpkg", ws, symlinks=True)
    git = ["git", "-C", str(ws), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
        subprocess.run(git + cmd, check=True, capture_output=True)
    steps = [s for s in reward_steps(ws) if s["id"] in ("new-module", "fix-attribute", "reset")]
    trace = tmp_path / "t.jsonl"
    p = lanser("-w", str(ws), "reward", str(write_steps(tmp_path / "s.jsonl", steps)), "--trace-file", str(trace))
    assert p.returncode == 0, p.stderr
    op = TR.operations(TR.read_trace(str(trace)))[0]
    assert op.git[0] == [] and ["src/shop/extra.py"] in op.git  # clean at the start, then our own write
    assert any(((b.get("edits") or {}).get("result") or {}).get("git", {}).get("git") for b in op.bundles)
    env = bare_env(tmp_path)
    q = bare_lanser(env, "-w", str(ws), "trace", "replay", str(trace), "--records")
    assert q.returncode == 0, q.stderr
    assert q.stdout == p.stdout


@pytest.mark.server
def test_scratch_copy_starts_with_the_lanser_dir_the_run_began_with(tmp_path: Path) -> None:
    """Applying checks more when .lanser/ does not exist yet (it is created by the first apply):
    a run that began with one replays from a scratch copy that has one, and the other way round."""
    ws = tmp_path / "ws"
    shutil.copytree(ROOT / "fixtures" / "srcpkg", ws, symlinks=True)
    (ws / ".lanser").mkdir()
    steps = [s for s in reward_steps(ws) if s["id"] in ("new-module", "fix-attribute", "reset")]
    trace = tmp_path / "t.jsonl"
    p = lanser("-w", str(ws), "reward", str(write_steps(tmp_path / "s.jsonl", steps)), "--trace-file", str(trace))
    assert p.returncode == 0, p.stderr
    header = json.loads(trace.read_text().splitlines()[0])
    assert header["lanserDir"] is True
    results = replay(str(trace), str(ws))
    assert [r.status for r in results] == ["identical"], [r.reason for r in results]
    fresh = tmp_path / "fresh"  # no .lanser/ here: the scratch copy gets one anyway
    shutil.copytree(ROOT / "fixtures" / "srcpkg", fresh, symlinks=True)
    assert [r.status for r in replay(str(trace), str(fresh))] == ["identical"]
    assert not (fresh / ".lanser").exists()


@pytest.mark.server
def test_reward_run_that_fails_as_a_whole_is_recorded_and_replayed(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(ROOT / "fixtures" / "srcpkg", ws, symlinks=True)
    trace = tmp_path / "t.jsonl"
    steps = write_steps(tmp_path / "s.jsonl", reward_steps(ws)[:2])
    p = lanser("-w", str(ws), "--timeout", "0.01", "reward", str(steps), "--trace-file", str(trace))
    assert p.returncode == 64 and p.stdout == "", p.stderr  # node cannot answer initialize in 10 ms
    op = TR.operations(TR.read_trace(str(trace)))[0]
    assert (op.end["exitCode"], op.end["status"], op.end["steps"], op.end["bundleId"]) == (64, "error", 0, None)
    assert op.end["error"]["code"] == "E/LS_TIMEOUT" and not op.bundles and not op.records
    rows = lanser("--json", "trace", "list", str(trace), "--status", "error").stdout.splitlines()
    assert [json.loads(r)["exitCode"] for r in rows] == [64]
    assert [r.status for r in replay(str(trace), str(ws))] == ["identical"]


def test_trace_event_schema_knows_git_and_record_events() -> None:
    from lanser.bundles.schema import errors

    base = {"run": "r1", "op": 1}
    assert not errors("trace-event", {"event": "git", **base, "dirtyPaths": None})
    assert not errors("trace-event", {"event": "git", **base, "dirtyPaths": ["a.py"]})
    assert errors("trace-event", {"event": "git", **base, "dirtyPaths": "a.py"})
    assert errors("trace-event", {"event": "git", **base})
    assert errors("trace-event", {"event": "record", **base, "record": {"step": 1}})
    end = {"event": "op-end", **base, "exitCode": 2, "status": "error", "bundleId": None, "steps": 0,
           "check": "sha256:" + "0" * 64}
    assert not errors("trace-event", end)
    assert errors("trace-event", {**end, "bundleId": "sha256:x"})


def test_replay_session_sets_every_session_attribute(tmp_path: Path) -> None:
    """ReplaySession skips Session.__init__ (no server lookup); it must still set all it sets."""
    from lanser.server.pyenv import PythonEnv
    from lanser.server.registry import ServerSpec
    from lanser.server.session import Session, SessionConfig
    from lanser.trace.replay import ReplaySession
    from lanser.workspace import Workspace

    ws = Workspace(tmp_path)
    real = Session(ws, SessionConfig())
    spec = ServerSpec(name="pyright", version="x", pinned="x", node="", langserver="", cli="")
    replayed = ReplaySession(ws, SessionConfig(), queue=[], old_root="file:///x", spec=spec,
                             python=PythonEnv(None, "replay", "3"))
    assert set(vars(real)) <= set(vars(replayed))


def test_missing_trace_is_not_found(tmp_path: Path) -> None:
    p = lanser("trace", "replay", str(tmp_path / "nope.jsonl"))
    assert p.returncode == 3 and "E/NOT_FOUND" in p.stderr and "Traceback" not in p.stderr


def test_unwritable_trace_file_is_fs_permissions(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(ROOT / "fixtures" / "clean", ws)
    p = lanser("-w", str(ws), "locate", "app.py@L1:C1", "--trace-file", str(tmp_path / "no" / "dir" / "t.jsonl"))
    assert p.returncode == 71 and "E/FS_PERMISSIONS" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.server
def test_applied_edit_replays_in_a_scratch_copy_of_its_base(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(ROOT / "fixtures" / "srcpkg", ws, symlinks=True)
    trace = tmp_path / "t.jsonl"
    p = lanser("-w", str(ws), "--json", "edit", "py://shop.pricing#format_price:body", "--text", "return str(price)",
               "--apply", "--allow-dirty", "--trace-file", str(trace))
    assert p.returncode == 0, p.stderr
    applied = json.loads(p.stdout)
    after = snapshot(ws)
    # The workspace is past the trace's base now: replaying there is refused, nothing written.
    p = lanser("-w", str(ws), "trace", "replay", str(trace))
    assert p.returncode == 76 and "src/shop/pricing.py changed since the trace" in p.stderr
    assert "as it was when the trace began" in p.stderr and "Traceback" not in p.stderr
    assert snapshot(ws) == after
    # Against the base it replays, and the edit is re-applied in a scratch copy only.
    fresh = tmp_path / "fresh"
    shutil.copytree(ROOT / "fixtures" / "srcpkg", fresh, symlinks=True)
    p = lanser("-w", str(fresh), "--json", "trace", "replay", str(trace))
    assert p.returncode == 0, p.stderr
    assert [json.loads(line)["status"] for line in p.stdout.splitlines()] == ["identical"]
    p = lanser("-w", str(fresh), "trace", "replay", str(trace), "--bundles")
    assert p.stdout.encode() == canonical_bytes(applied) + b"\n"
    assert snapshot(fresh) == snapshot(ROOT / "fixtures" / "srcpkg") and not (fresh / ".lanser").exists()


@pytest.mark.server
def test_one_frame_per_json_rpc_message(tmp_path: Path) -> None:
    """A known run (a 3-step reward on srcpkg) records each JSON-RPC message once, whole: no
    nested object of a message is a frame of its own (pygls decodes with an object hook)."""
    ws = tmp_path / "ws"
    shutil.copytree(ROOT / "fixtures" / "srcpkg", ws, symlinks=True)
    steps = write_steps(tmp_path / "steps.jsonl", [
        {"id": "q", "op": "query", "cmd": "refs", "selector": SYM},
        {"id": "w", "op": "write", "path": "src/shop/extra.py",
         "content": "from shop.pricing import apply_discount\n\nX: int = apply_discount(1.0, 2.0)\n"},
        {"id": "r", "op": "reset"}])
    trace = tmp_path / "t.jsonl"
    p = lanser("-w", str(ws), "reward", str(steps), "--trace-file", str(trace))
    assert p.returncode == 0, p.stderr
    frames = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()
              if json.loads(line)["event"] == "frame"]
    for fr in frames:
        msg = fr["msg"]
        assert msg.get("jsonrpc") == "2.0" and ("method" in msg or "id" in msg), msg
    requests = [fr["msg"]["id"] for fr in frames if fr["dir"] == "send" and "method" in fr["msg"]
                and "id" in fr["msg"]]
    responses = [fr["msg"]["id"] for fr in frames if fr["dir"] == "recv" and "method" not in fr["msg"]]
    assert sorted(responses) == sorted(requests) and len(set(requests)) == len(requests)
    sent = [fr["msg"]["method"] for fr in frames if fr["dir"] == "send" and "method" in fr["msg"]]
    assert sent.count("initialize") == 1 and sent.count("textDocument/references") == 1
    # measured: 83 frames and 36 kB (every nested object a frame: 185 frames and 56 kB)
    assert len(frames) <= 120 and trace.stat().st_size <= 48_000, (len(frames), trace.stat().st_size)
    shown = lanser("trace", "show", str(trace), "1")
    assert shown.returncode == 0 and "#None" not in shown.stdout
    assert lanser("trace", "replay", str(trace), "-w", str(ws)).returncode == 0
