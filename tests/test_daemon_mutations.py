"""Mutating commands and ``batch`` through a warm daemon, against the real pinned server.

Every case runs the same command twice: through a daemon on workspace copy ``a``
(``--daemon require``, so a silent in-process fallback cannot pass for the
daemon) and in-process on an identical copy ``b`` (``--daemon never``); stdout,
stderr, exit code and every file of the two copies must be identical.  Each
test gets its own copies, daemon and private runtime directory, and teardown
checks that no daemon survives.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from lanser.daemon import client as C
from lanser.daemon import protocol as P
from lanser.daemon.paths import DaemonFiles, Identity, files_for

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SEL_DEF = "src/shop/service.py@L7:C18"      # the apply_discount call -> pricing.py
RENAME = "py://shop.pricing#apply_discount"
BODY = "py://shop.pricing#format_price:body"

pytestmark = pytest.mark.server


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (journal and lock files included) -> its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class Pair:
    """Workspace ``a`` served by a daemon, ``b`` its in-process twin."""

    def __init__(self, base: Path, runtime: Path) -> None:
        self.a, self.b = base / "a", base / "b"
        for ws in (self.a, self.b):
            shutil.copytree(ROOT / "fixtures" / "srcpkg", ws, symlinks=True)
        self.env = dict(os.environ, LANSER_RUNTIME_DIR=str(runtime))
        self.env.pop("LANSER_DAEMON", None)
        self.files: DaemonFiles = files_for(Identity.for_options(str(self.a), "pyright", None))

    def run(self, ws: Path, *args: str, stdin: str | None = None,
            extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PY, "-m", "lanser", "-w", str(ws), *args], input=stdin, capture_output=True,
                              text=True, timeout=180, env={**self.env, **(extra or {})})

    def requests(self) -> int:
        st = C.status(self.files)
        assert st is not None, "the daemon is gone"
        return int(st["requests"])

    def both(self, *args: str, stdin: str | None = None,
             daemon_requests: int | None = 1) -> subprocess.CompletedProcess[str]:
        """Run ``args`` through the daemon on ``a`` and in-process on ``b``; all must agree
        (and the daemon must have answered ``daemon_requests`` requests, unless None)."""
        before = self.requests()
        via = self.run(self.a, "--daemon", "require", *args, stdin=stdin)
        if daemon_requests is not None:
            assert self.requests() - before == daemon_requests, (args, via.stderr)
        local = self.run(self.b, "--daemon", "never", *args, stdin=stdin)
        assert (via.returncode, via.stdout, via.stderr) == (local.returncode, local.stdout, local.stderr), args
        assert tree(self.a) == tree(self.b), args
        return via


@pytest.fixture()
def pair(tmp_path: Path) -> Iterator[Pair]:
    runtime = Path(tempfile.mkdtemp(prefix="lm", dir="/tmp")) / "run"   # short: sun_path is 108 bytes
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("LANSER_RUNTIME_DIR", str(runtime))  # the in-test client calls use it too
            mp.delenv("LANSER_DAEMON", raising=False)
            p = Pair(tmp_path, runtime)
            try:
                started = p.run(p.a, "daemon", "start", "--idle-timeout", "600")
                assert started.returncode == 0, started.stderr
                yield p
            finally:
                meta = C.read_meta(p.files)
                C.stop(p.files)
                pid = int(meta["pid"]) if meta else None
                alive = pid is not None and C.process_alive(pid)
                if alive:
                    os.kill(pid, 9)  # type: ignore[arg-type]
                assert not alive, f"daemon {pid} survived 'daemon stop'"
    finally:
        shutil.rmtree(runtime.parent, ignore_errors=True)


def test_writes_classifies_requests() -> None:
    assert not P.writes("def", {}) and not P.writes("prepare-rename", {})
    assert not P.writes("rename", {"newName": "x", "apply": False}) and P.writes("rename", {"apply": True})
    assert not P.writes("edit", {"text": "x"}) and P.writes("edit", {"text": "x", "apply": True})
    assert not P.writes("actions", {"kind": None}) and P.writes("actions", {"kind": None, "apply": 0})
    assert P.writes("patch", {})  # unknown to the daemon: assumed to write


def test_mutations_through_the_daemon_equal_in_process_runs(pair: Pair) -> None:
    steps: list[tuple[tuple[str, ...], str | None, int]] = [
        (("--json", "prepare-rename", "py://shop.pricing#format_price"), None, 0),
        (("prepare-rename", "py://shop.pricing#format_price"), None, 0),
        (("--json", "rename", RENAME, "disc"), None, 0),                  # dry run (the default)
        (("rename", SEL_DEF, "disc"), None, 0),                            # human summary
        (("--json", "edit", BODY, "--text", "return 1"), None, 0),         # dry run predicts an error
        (("--json", "actions", "src/shop/broken.py@L6:C27"), None, 0),
        (("actions", "src/shop/service.py@L1:C1"), None, 0),
        (("--json", "rename", RENAME, "not valid"), None, 2),
        (("--json", "rename", "py://shop.pricing#nosuch", "x", "--apply"), None, 3),
        (("--json", "rename", RENAME, "disc", "--apply"), None, 0),
        (("--json", "diag"), None, 0),
        (("--json", "edit", BODY, "--from-file", "-", "--apply"), "return 1\n", 0),
        (("--json", "diag", "src/shop/pricing.py"), None, 0),
        (("edit", BODY, "--text", "return 1", "--apply"), None, 70),      # no-op: one line on stderr
    ]
    for args, stdin, code in steps:
        p = pair.both(*args, stdin=stdin)
        assert p.returncode == code, (args, p.stderr)
    applied = (pair.a / "src/shop/pricing.py").read_text()
    assert "def disc(" in applied and "    return 1\n" in applied


def test_reads_after_an_apply_see_the_new_text(pair: Pair) -> None:
    def loc(p: subprocess.CompletedProcess[str]) -> Any:
        return json.loads(p.stdout)["facts"]["definitions"]

    assert loc(pair.both("--json", "def", SEL_DEF)) == [{"path": "src/shop/pricing.py", "range": [0, 4, 0, 18]}]
    errors = json.loads(pair.both("--json", "diag").stdout)["facts"]["counts"]["errors"]
    hits = C.status(pair.files)["memoHits"]  # type: ignore[index]
    pair.both("--json", "def", SEL_DEF)
    pair.both("--json", "diag")
    assert C.status(pair.files)["memoHits"] == hits + 2  # type: ignore[index]  # both memoized now
    pair.both("rename", RENAME, "disc", "--apply")
    assert loc(pair.both("--json", "def", SEL_DEF)) == [{"path": "src/shop/pricing.py", "range": [0, 4, 0, 8]}]
    hover = json.loads(pair.both("--json", "hover", SEL_DEF).stdout)["facts"]["hover"]
    assert "disc" in json.dumps(hover) and "apply_discount" not in json.dumps(hover)
    pair.both("edit", BODY, "--text", "return 1", "--apply")   # format_price -> str now returns an int
    after = json.loads(pair.both("--json", "diag").stdout)["facts"]["counts"]["errors"]
    assert after == errors + 1


def test_untracked_files_are_never_answered_from_a_stale_memo(pair: Pair) -> None:
    """A README is not among the scanned Python files: its bytes join the memo key, and an
    apply drops the memo, so neither an apply nor a write behind the daemon's back is missed."""
    sel = 'anchor://README.md#"zebrapkg"'
    assert pair.both("--json", "locate", sel).returncode == 3
    assert pair.both("--json", "locate", sel).returncode == 3            # memoized: still right
    assert pair.both("edit", "README.md@R(1,3->1,9)", "--text", "zebrapkg", "--apply").returncode == 0
    found = pair.both("--json", "locate", sel)
    assert found.returncode == 0 and json.loads(found.stdout)["resolution"]["resolved"]["range"][:2] == [0, 2]
    for ws in (pair.a, pair.b):  # behind the daemon's back: two lines pushed in front
        readme = ws / "README.md"
        readme.write_bytes(b"\n\n" + readme.read_bytes())
    moved = pair.both("--json", "locate", sel)
    assert json.loads(moved.stdout)["resolution"]["resolved"]["range"][:2] == [2, 2]


def test_batch_uses_a_running_daemon(pair: Pair, tmp_path: Path) -> None:
    queries = [
        {"op": "query", "cmd": "def", "selector": SEL_DEF, "id": 1},
        {"op": "query", "cmd": "diag"},
        {"op": "query", "cmd": "def", "selector": {"kind": "cursor", "path": "src/shop/service.py",
                                                   "line": 6, "col": 17}},
        {"op": "query", "cmd": "prepare-rename", "selector": RENAME},
        {"op": "query", "cmd": "hover", "selector": "py://shop.models#Cart"},
    ]
    path = tmp_path / "queries.jsonl"
    path.write_text("\n".join(json.dumps(s) for s in queries) + "\nnot json\n")
    p = pair.both("batch", str(path), daemon_requests=len(queries))   # every query on the daemon
    assert p.returncode == 2  # the malformed last line
    records = [json.loads(line) for line in p.stdout.splitlines()]
    assert [r["exitCode"] for r in records] == [0] * len(queries) + [2]


def test_batch_with_writing_steps_equals_in_process(pair: Pair, tmp_path: Path) -> None:
    """Wherever a batch's writing steps run (see lanser/batch.py), a daemon on the side
    changes neither its output nor the files it writes."""
    steps = [
        {"op": "query", "cmd": "def", "selector": SEL_DEF},
        {"op": "rename", "selector": RENAME, "newName": "disc"},
        {"op": "query", "cmd": "def", "selector": SEL_DEF},
        {"op": "edit", "selector": BODY, "text": "return 1"},
        {"op": "query", "cmd": "diag", "selector": "src/shop/pricing.py"},
    ]
    path = tmp_path / "steps.jsonl"
    path.write_text("\n".join(json.dumps(s) for s in steps) + "\n")
    p = pair.both("batch", str(path), daemon_requests=None)
    assert p.returncode == 0, p.stderr
    assert "def disc(" in (pair.a / "src/shop/pricing.py").read_text()
    # the daemon, asked afterwards, sees what the batch wrote
    moved = pair.both("--json", "def", SEL_DEF)
    assert json.loads(moved.stdout)["facts"]["definitions"] == [
        {"path": "src/shop/pricing.py", "range": [0, 4, 0, 8]}]


def test_a_traced_mutation_runs_in_process(pair: Pair, tmp_path: Path) -> None:
    trace_a, trace_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    before = pair.requests()
    via = pair.run(pair.a, "--daemon", "require", "--trace-file", str(trace_a), "--json", "rename", RENAME, "disc")
    local = pair.run(pair.b, "--daemon", "never", "--trace-file", str(trace_b), "--json", "rename", RENAME, "disc")
    assert via.returncode == local.returncode == 0, via.stderr
    assert via.stdout == local.stdout
    assert pair.requests() == before  # the trace needs the frames: the daemon was not asked
    assert trace_a.stat().st_size > 0 and trace_b.stat().st_size > 0


def test_mutation_command_path_stays_light(pair: Pair) -> None:
    before = pair.requests()
    p = subprocess.run([PY, "-X", "importtime", "-m", "lanser", "-w", str(pair.a), "--daemon", "require",
                        "--json", "rename", RENAME, "disc"], capture_output=True, text=True, env=pair.env, timeout=60)
    assert p.returncode == 0, p.stderr
    imported = {line.split("|")[-1].strip() for line in p.stderr.splitlines() if line.startswith("import time:")}
    assert "lanser.daemon.client" in imported and pair.requests() == before + 1
    # (lanser.commands.* come through importlib.import_module, which -X importtime does not
    # list; whatever they import at their top level is listed.)
    heavy = sorted(m for m in imported if m.split(".")[0] in ("pygls", "lsprotocol", "tree_sitter", "cattrs")
                   or m in ("lanser.engine", "lanser.engine.core", "lanser.engine.mutations", "lanser.server.session"))
    assert heavy == []


def test_require_when_no_daemon_can_start(tmp_path: Path) -> None:
    """A daemon that holds its lock but never listens (hung at start): ``require`` cannot get
    one and is E/LS_CRASH with nothing written; ``LANSER_DAEMON=start`` falls back in-process."""
    runtime = Path(tempfile.mkdtemp(prefix="lq", dir="/tmp")) / "run"
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("LANSER_RUNTIME_DIR", str(runtime))
            p = Pair(tmp_path, runtime)
            fd = os.open(p.files.lock, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                original = tree(p.a)
                r = p.run(p.a, "--daemon", "require", "--json", "rename", RENAME, "disc", "--apply")
                assert r.returncode == 65, r.stderr
                bundle = json.loads(r.stdout)
                assert bundle["error"]["code"] == "E/LS_CRASH" and bundle["meta"]["exit_code"] == 65
                assert tree(p.a) == original
                r = p.run(p.a, "--daemon", "require", "rename", RENAME, "disc", "--apply")
                assert r.returncode == 65 and r.stdout == ""
                assert r.stderr.startswith("lanser: E/LS_CRASH: ") and "Traceback" not in r.stderr
                steps = tmp_path / "steps.jsonl"
                steps.write_text(json.dumps({"op": "rename", "selector": RENAME, "newName": "disc"}) + "\n")
                r = p.run(p.a, "--daemon", "require", "batch", str(steps))
                assert r.returncode == 65 and r.stderr.startswith("lanser: E/LS_CRASH: ")
                assert tree(p.a) == original
                r = p.run(p.a, "--json", "rename", RENAME, "disc", "--apply", extra={"LANSER_DAEMON": "start"})
                assert r.returncode == 0, r.stderr
                assert json.loads(r.stdout)["edits"]["applied"] is True
            finally:
                os.close(fd)
            assert not p.files.socket.exists()
    finally:
        shutil.rmtree(runtime.parent, ignore_errors=True)
