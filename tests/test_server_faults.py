"""Server faults against deliberately broken fake servers (tests/fakeservers/fake_lsp.py):
a server that hangs is E/LS_TIMEOUT (64), one that dies mid-request is E/LS_CRASH
(65) after one automatic restart has also died; no server process outlives Lanser,
including after Ctrl-C.

The fake replaces the real server through the test-only ``LANSER_TEST_SERVER_ARGV``
override in ``lanser/server/registry.py``; everything else is the real session.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import (
    FAKESERVERS,
    LANSER_BIN,
    assert_clean_error,
    assert_error_bundle,
    copy_fixture,
    engine_runner,
    run_cli,
    run_cli_subprocess,
    wait_gone,
)

FAKE = FAKESERVERS / "fake_lsp.py"


def fake_env(monkeypatch: pytest.MonkeyPatch, mode: str, log: Path) -> None:
    monkeypatch.setenv("LANSER_TEST_SERVER_ARGV", json.dumps([sys.executable, str(FAKE), mode, str(log)]))


def events(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def pids(log: Path) -> list[int]:
    return [int(line.split()[1]) for line in events(log) if line.startswith("pid ")]


@pytest.fixture()
def ws(tmp_path: Path) -> Path:
    return copy_fixture("clean", tmp_path / "ws")


def test_hanging_server_times_out(ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "fake.log"
    fake_env(monkeypatch, "hang", log)
    started = time.monotonic()
    with engine_runner(ws, timeout=0.5) as runner:
        bundle = runner.run("def", "app.py@L1:C1")
    elapsed = time.monotonic() - started
    assert bundle["status"] == "error"
    assert bundle["error"]["code"] == "E/LS_TIMEOUT" and bundle["meta"]["exit_code"] == 64
    assert bundle["error"]["retryable"] is True
    assert "textDocument/definition" in bundle["error"]["message"]
    assert "request textDocument/definition" in events(log)
    assert "notify $/cancelRequest" in events(log)  # the timed-out request is cancelled
    assert len(pids(log)) == 1  # a timeout is not a crash: no restart
    assert all(wait_gone(pid) for pid in pids(log)), "the hung fake server outlived the engine"
    assert elapsed < 15


def test_crashing_server_restarts_once_then_fails(ws: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "fake.log"
    fake_env(monkeypatch, "crash", log)
    with engine_runner(ws, timeout=10) as runner:
        bundle = runner.run("hover", "app.py@L1:C1")
    assert bundle["status"] == "error"
    assert bundle["error"]["code"] == "E/LS_CRASH" and bundle["meta"]["exit_code"] == 65
    assert len(pids(log)) == 2, events(log)  # the first start plus exactly one restart
    assert events(log).count("request textDocument/hover") == 2  # the request was retried once
    assert all(wait_gone(pid) for pid in pids(log))


def test_crash_through_cli_is_one_line_and_json_bundle(ws: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "fake.log"
    fake_env(monkeypatch, "crash", log)
    plain = run_cli("-w", str(ws), "def", "app.py@L1:C1")
    assert_clean_error(plain, 65)
    assert "E/LS_CRASH" in plain.err
    as_json = run_cli("-w", str(ws), "def", "app.py@L1:C1", "--json")
    assert_error_bundle(as_json, 65, "E/LS_CRASH")
    assert len(pids(log)) == 4
    assert all(wait_gone(pid) for pid in pids(log))


def test_hang_through_cli_json(ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "fake.log"
    fake_env(monkeypatch, "hang", log)
    result = run_cli("--json", "--timeout", "0.5", "-w", str(ws), "refs", "app.py@L1:C1")
    assert_error_bundle(result, 64, "E/LS_TIMEOUT")
    assert all(wait_gone(pid) for pid in pids(log))


def test_ctrl_c_during_hanging_request_leaves_no_process(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "fake.log"
    env = {**os.environ, "LANSER_TEST_SERVER_ARGV": json.dumps([sys.executable, str(FAKE), "hang", str(log)])}
    proc = subprocess.Popen([str(LANSER_BIN), "-w", str(ws), "--timeout", "60", "def", "app.py@L1:C1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while "request textDocument/definition" not in events(log):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "lanser never sent the request"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (proc.returncode, err)
    assert "Traceback" not in err
    assert err.strip().splitlines() == ["lanser: interrupted"]
    assert pids(log) and all(wait_gone(pid) for pid in pids(log)), "fake server orphaned by Ctrl-C"


@pytest.mark.server
def test_no_node_process_left_after_real_session(fixture_copy) -> None:
    """The real pinned server: after close, its process (group) is gone."""
    with engine_runner(fixture_copy("clean")) as runner:
        assert runner.run("hover", "app.py@L1:C1")["status"] in ("ok", "error")
        pid = runner.engine.session.pid if runner.engine.session else None
    assert pid is not None
    assert wait_gone(pid)


def test_server_that_cannot_start(ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "fake.log"
    fake_env(monkeypatch, "early", log)
    result = run_cli("-w", str(ws), "--json", "hover", "app.py@L1:C1")
    bundle = assert_error_bundle(result, 65, "E/LS_CRASH")
    assert "initialize" in bundle["error"]["message"]
    assert all(wait_gone(pid) for pid in pids(log))


def test_malformed_frames_are_a_crash_without_traceback(ws: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A frame whose body is not JSON: E/LS_CRASH after one restart (not a timeout), and
    pygls' logged traceback never reaches the user's stderr."""
    log = tmp_path / "fake.log"
    fake_env(monkeypatch, "garbage", log)
    started = time.monotonic()
    # a real process: under pytest, logging is captured and a leaked traceback would not show
    result = run_cli_subprocess("-w", str(ws), "--timeout", "20", "def", "app.py@L1:C1")
    assert_clean_error(result, 65)
    assert "malformed message" in result.err
    assert time.monotonic() - started < 10  # neither the 20 s timeout nor a shutdown handshake
    assert len(pids(log)) == 2
    assert all(wait_gone(pid) for pid in pids(log))


@pytest.mark.server
def test_no_node_process_left_after_a_cli_run(ws: Path) -> None:
    """A real `lanser` process on the real server: the node pid it reports is gone when it exits."""
    result = run_cli_subprocess("-w", str(ws), "--json", "--verbose", "def", "app.py@L3:C22")
    assert result.code == 0, result.err
    assert result.bundle["facts"]["definitions"] == [
        {"path": "geometry.py", "range": [6, 6, 6, 11], "ioRange": [6, 6, 6, 11]}]
    pid = result.bundle["meta"]["volatile"]["serverPid"]
    assert isinstance(pid, int) and wait_gone(pid)


@pytest.mark.server
def test_unsendable_request_fails_at_once_and_the_session_stays_usable(ws: Path) -> None:
    """A message pygls cannot serialize is Lanser's bug: InternalError now, not a wait for the
    timeout, and not a server crash (the next request is answered)."""
    from lanser.errors import InternalError

    with engine_runner(ws, timeout=20) as runner:
        assert runner.run("hover", "app.py@L1:C1")["status"] == "ok"
        session = runner.engine.session
        assert session is not None

        class Opaque:
            __slots__ = ()

        started = time.monotonic()
        with pytest.raises(InternalError, match="could not send textDocument/hover"):
            runner.loop.run_until_complete(session.request("textDocument/hover", Opaque()))
        assert time.monotonic() - started < 5
        assert not session.client.protocol_error.is_set()
        assert runner.run("hover", "app.py@L1:C1")["status"] == "ok"


def test_daemon_status_counts_every_server_it_started(ws: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that dies under a request is restarted by the session itself; the daemon's
    ``serverStarts`` counts that start too (it said 1 after its server was replaced)."""
    import asyncio

    from lanser.daemon.service import Service

    log = tmp_path / "fake.log"
    fake_env(monkeypatch, "crash", log)

    async def go() -> tuple[dict, dict]:
        service = Service(str(ws), cache=False)
        try:
            bundle = await service.run("def", "app.py@L1:C1")
            return bundle, service.status()
        finally:
            await service.close()

    bundle, status = asyncio.run(go())
    assert bundle["error"]["code"] == "E/LS_CRASH"
    # per try: a server and the session's one restart; the daemon retries a read once
    assert len(pids(log)) == 4
    assert status["serverStarts"] == len(pids(log))


def test_node_gets_room_so_pyright_never_empties_its_cache_by_chance(monkeypatch: pytest.MonkeyPatch) -> None:
    """Server and CLI run with the same old-space limit: the default, or $LANSER_NODE_HEAP_MB."""
    from lanser.errors import BadInput
    from lanser.pyright_cli import pyright_command
    from lanser.server.registry import MAX_DEFAULT_HEAP_MB, NODE_HEAP_ENV, node_heap_mb, server_spec

    monkeypatch.delenv(NODE_HEAP_ENV, raising=False)
    default = node_heap_mb()
    assert 4096 <= default <= MAX_DEFAULT_HEAP_MB
    spec = server_spec("pyright")
    assert spec.argv[:2] == [spec.node, f"--max-old-space-size={default}"]
    assert pyright_command() == [spec.node, f"--max-old-space-size={default}", spec.cli]
    monkeypatch.setenv(NODE_HEAP_ENV, "6000")
    assert "--max-old-space-size=6000" in spec.argv and "--max-old-space-size=6000" in pyright_command()
    for bad in ("lots", "12.5", "100"):
        monkeypatch.setenv(NODE_HEAP_ENV, bad)
        with pytest.raises(BadInput):
            node_heap_mb()


@pytest.mark.server
def test_the_running_server_has_the_heap_limit(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flag reaches the Node process that runs pyright (read from its command line)."""
    import asyncio

    from lanser.engine import Engine, Options

    monkeypatch.setenv("LANSER_NODE_HEAP_MB", "5120")

    async def go() -> list[str]:
        async with Engine(Options(workspace=str(ws))) as eng:
            session = await eng.server()
            return Path(f"/proc/{session.pid}/cmdline").read_bytes().decode().split("\0")

    argv = asyncio.run(go())
    assert "--max-old-space-size=5120" in argv
    assert any(a.endswith("langserver.index.js") for a in argv)
