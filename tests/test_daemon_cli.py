"""The warm daemon against the real pinned server: transparent CLI use, concurrency,
crash recovery, disk changes behind its back, stale sockets, peer credentials, idle exit.

One daemon (one server) serves the module; every test runs in a private runtime
directory ($LANSER_RUNTIME_DIR), and teardown checks that no daemon is left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SEL_DEF = "src/shop/service.py@L7:C18"        # apply_discount call -> pricing.py
SEL_DEF2 = "src/shop/service.py@L15:C13"

pytestmark = pytest.mark.server


def _alive(pid: int) -> bool:
    """True for a live, non-zombie process."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("State:"):
                    return "Z" not in line.split()[1]
    except OSError:
        return False
    return False


def _wait_dead(pid: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


class Env:
    def __init__(self, runtime: Path, ws: Path) -> None:
        self.runtime = runtime
        self.ws = ws
        self.env = dict(os.environ, LANSER_RUNTIME_DIR=str(runtime))
        self.env.pop("LANSER_DAEMON", None)

    def cmd(self, *args: str, ws: Path | None = None) -> list[str]:
        return [PY, "-m", "lanser", "-w", str(ws or self.ws), *args]

    def run(self, *args: str, ws: Path | None = None, extra: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.cmd(*args, ws=ws), capture_output=True, text=True, timeout=timeout,
                              env={**self.env, **(extra or {})})

    def status(self, ws: Path | None = None) -> dict[str, Any]:
        p = self.run("--json", "daemon", "status", ws=ws)
        return json.loads(p.stdout)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    runtime = Path(tempfile.mkdtemp(prefix="lr", dir="/tmp")) / "run"   # short: sun_path is 108 bytes
    ws = tmp_path_factory.mktemp("daemon") / "ws"
    shutil.copytree(ROOT / "fixtures" / "srcpkg", ws, symlinks=True)
    e = Env(runtime, ws)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANSER_RUNTIME_DIR", str(runtime))  # in-test client calls use it too
        p = e.run("daemon", "start", "--idle-timeout", "600")
        assert p.returncode == 0, p.stderr
        try:
            yield e
        finally:
            pids = [m.get("pid") for m in _metas(runtime)]
            stopped = subprocess.run([PY, "-m", "lanser", "daemon", "stop", "--all"], env=e.env,
                                     capture_output=True, text=True, timeout=60)
            survivors = [pid for pid in pids if pid and not _wait_dead(pid, 5)]
            for pid in survivors:
                os.kill(pid, signal.SIGKILL)
            shutil.rmtree(runtime.parent, ignore_errors=True)
            assert not survivors, f"daemons {survivors} survived 'daemon stop --all': {stopped}"


def _metas(runtime: Path) -> list[dict[str, Any]]:
    out = []
    for p in runtime.glob("*.json"):
        try:
            out.append(json.loads(p.read_text()))
        except (OSError, ValueError):
            pass
    return out


def test_runtime_dir_and_socket_are_private(env: Env) -> None:
    st = env.status()
    assert st["running"] is True
    assert (env.runtime.stat().st_mode & 0o777) == 0o700
    sock = Path(st["socket"])
    assert sock.is_socket() and (sock.stat().st_mode & 0o777) == 0o600
    assert st["rssKb"] > 0 and st["serverProcess"]["rssKb"] > 0 and st["serverProcess"]["alive"]


def test_16_concurrent_cli_calls_match_in_process(env: Env) -> None:
    queries = [("def", SEL_DEF), ("refs", SEL_DEF2), ("hover", SEL_DEF), ("diag", None),
               ("locate", "py://shop.pricing#apply_discount"), ("symbols", "src/shop/models.py")]
    expected: dict[tuple[str, str | None], str] = {}
    procs = {q: subprocess.Popen(env.cmd("--daemon", "never", "--json", q[0], *([q[1]] if q[1] else [])),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env.env)
             for q in queries}
    for q, p in procs.items():
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        expected[q] = out
    before = env.status()
    calls = [queries[i % len(queries)] for i in range(16)]
    running = [(q, subprocess.Popen(env.cmd("--json", q[0], *([q[1]] if q[1] else [])), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=env.env)) for q in calls]
    for q, p in running:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out == expected[q], q  # byte for byte
    after = env.status()
    assert after["requests"] - before["requests"] == 16  # all answered by the daemon
    assert after["serverStarts"] == before["serverStarts"]  # one server for all of them
    assert after["serverProcess"]["pid"] == before["serverProcess"]["pid"]


def test_daemon_path_does_not_import_the_engine_stack(env: Env) -> None:
    p = subprocess.run([PY, "-X", "importtime", "-m", "lanser", "-w", str(env.ws), "--json", "def", SEL_DEF],
                       capture_output=True, text=True, env=env.env, timeout=60)
    assert p.returncode == 0
    imported = {line.split("|")[-1].strip() for line in p.stderr.splitlines() if line.startswith("import time:")}
    assert "lanser.daemon.client" in imported
    heavy = sorted(m for m in imported if m.split(".")[0] in ("pygls", "lsprotocol", "tree_sitter", "cattrs"))
    assert heavy == []


def test_require_mode_and_error_bundles_through_the_daemon(env: Env) -> None:
    p = env.run("--daemon", "require", "--json", "def", "src/shop/nosuch.py@L1:C1")
    q = env.run("--daemon", "never", "--json", "def", "src/shop/nosuch.py@L1:C1")
    assert p.returncode == q.returncode == 3
    assert p.stdout == q.stdout
    p = env.run("--json", "def", "../outside.py@L1:C1")
    assert p.returncode == 71 and json.loads(p.stdout)["error"]["code"] == "E/FS_PERMISSIONS"


def test_killed_server_is_replaced(env: Env) -> None:
    expected = env.run("--daemon", "never", "--json", "hover", SEL_DEF2)
    for round_ in range(2):  # twice: past the session's own single restart
        before = env.status()
        pid = before["serverProcess"]["pid"]
        os.kill(pid, signal.SIGKILL)
        assert _wait_dead(pid)
        sel = f"src/shop/service.py@L{13 + round_}:C10"  # not memoized: needs the server
        p = env.run("--json", "refs", sel)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["status"] == "ok"
        after = env.status()
        assert after["serverProcess"]["pid"] != pid
        assert after["serverStarts"] == before["serverStarts"] + 1  # a replaced server counts
        human = env.run("daemon", "status").stdout
        assert f"starts {after['serverStarts']}" in human
    p = env.run("--json", "hover", SEL_DEF2)
    assert p.returncode == 0 and p.stdout == expected.stdout


def test_human_status_shows_what_the_json_has(env: Env) -> None:
    st = env.status()
    lines = env.run("daemon", "status").stdout
    assert f"watching {st['watching']}  full scans {st['fullScans']}" in lines
    assert f"starts {st['serverStarts']}" in lines and "requests " in lines


def test_file_edited_behind_the_daemons_back(env: Env) -> None:
    first = json.loads(env.run("--json", "def", SEL_DEF).stdout)
    assert first["facts"]["definitions"] == [{"path": "src/shop/pricing.py", "range": [0, 4, 0, 18]}]
    pricing = env.ws / "src/shop/pricing.py"
    service = env.ws / "src/shop/service.py"
    old_p, old_s = pricing.read_bytes(), service.read_bytes()
    try:
        pricing.write_bytes(b"import math\n\n\n" + old_p)  # not open in the server: watched-file notice
        p = env.run("--json", "def", SEL_DEF)
        assert json.loads(p.stdout)["facts"]["definitions"] == [
            {"path": "src/shop/pricing.py", "range": [3, 4, 3, 18]}]
        assert p.stdout == env.run("--daemon", "never", "--json", "def", SEL_DEF).stdout
        # the open document itself: the call moves one line down
        service.write_bytes(b"# moved\n" + old_s)
        moved = "src/shop/service.py@L8:C18"
        p = env.run("--json", "def", moved)
        assert json.loads(p.stdout)["facts"]["definitions"] == [
            {"path": "src/shop/pricing.py", "range": [3, 4, 3, 18]}]
        assert p.stdout == env.run("--daemon", "never", "--json", "def", moved).stdout
        # a new error typed into a file is seen by the next diag
        service.write_bytes(old_s + b"\nbroken: int = 'x'\n")
        p = env.run("--json", "diag", "src/shop/service.py")
        assert json.loads(p.stdout)["facts"]["counts"]["errors"] == 1
    finally:
        pricing.write_bytes(old_p)
        service.write_bytes(old_s)
    p = env.run("--json", "def", SEL_DEF)
    assert json.loads(p.stdout) == first


def test_connection_from_another_uid_is_refused(env: Env) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to run a client as another uid")
    sock_path = env.status()["socket"]

    def as_nobody() -> str:
        """Connect and ping from a forked child that has become uid 65534."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                os.close(r)
                os.setuid(65534)
                s = socket.socket(socket.AF_UNIX)
                try:
                    s.connect(sock_path)
                    try:
                        s.sendall(b'{"cmd":"$ping"}\n')
                    except BrokenPipeError:
                        pass  # refused at once: the answer is already waiting
                    out = s.makefile("rb").readline()
                except PermissionError:
                    out = b"EACCES"
                os.write(w, out)
            finally:
                os._exit(0)
        os.close(w)
        chunks = []
        while chunk := os.read(r, 65536):
            chunks.append(chunk)
        os.close(r)
        os.waitpid(pid, 0)
        return b"".join(chunks).decode().strip()

    assert as_nobody() == "EACCES"  # 0700 directory, 0600 socket
    before = env.status()["refused"]
    for d in (env.runtime.parent, env.runtime):
        os.chmod(d, 0o755)
    os.chmod(sock_path, 0o777)
    try:
        answer = json.loads(as_nobody())  # past the file modes: SO_PEERCRED decides
    finally:
        os.chmod(sock_path, 0o600)
        for d in (env.runtime.parent, env.runtime):
            os.chmod(d, 0o700)
    assert answer["error"]["code"] == "E/FS_PERMISSIONS"
    assert "65534" in answer["error"]["message"]
    assert env.status()["refused"] == before + 1


def test_bad_request_lines_get_an_error(env: Env) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.connect(env.status()["socket"])
    f = s.makefile("rwb")
    f.write(b"not json\n{\"cmd\": 3}\n")
    f.flush()
    assert json.loads(f.readline())["error"]["code"] == "E/BAD_REQUEST"
    assert json.loads(f.readline())["error"]["code"] == "E/BAD_REQUEST"
    s.close()


def test_stale_socket_cleanup_require_start_and_idle_exit(env: Env, tmp_path: Path) -> None:
    ws = tmp_path / "clean"
    shutil.copytree(ROOT / "fixtures" / "clean", ws, symlinks=True)
    sel = "app.py@L1:C1"
    assert env.run("daemon", "start", "--idle-timeout", "600", ws=ws).returncode == 0
    st = env.status(ws)
    sock = Path(st["socket"])
    os.kill(st["pid"], signal.SIGKILL)
    assert _wait_dead(st["pid"])
    os.kill(st["serverProcess"]["pid"], signal.SIGKILL)
    assert sock.exists()  # left behind by the dead daemon
    p = env.run("--json", "locate", sel, ws=ws)  # auto: refused connection -> in-process, socket cleaned
    assert p.returncode == 0, p.stderr
    assert not sock.exists()
    # status on a stale socket also cleans it up
    sock.touch()
    assert env.run("daemon", "status", ws=ws).returncode == 3
    assert not sock.exists()
    # require starts one on demand; a short idle timeout then ends it
    p = env.run("--daemon", "require", "--json", "locate", sel, ws=ws,
                extra={"LANSER_DAEMON_IDLE_TIMEOUT": "1.5"})
    assert p.returncode == 0, p.stderr
    meta = [m for m in _metas(env.runtime) if m["identity"]["workspace"] == str(ws.resolve())]
    assert len(meta) == 1 and meta[0]["idleTimeout"] == 1.5
    assert _wait_dead(meta[0]["pid"], timeout=30)
    assert not sock.exists()
    assert env.run("daemon", "status", ws=ws).returncode == 3


def test_a_refused_request_maps_back_through_the_contract_codes() -> None:
    """The one request loop reads a daemon's refusal through errors.BY_CODE (the CLI path had
    special-cased E/FS_PERMISSIONS by hand, the SDK turned every refusal into E/LS_CRASH)."""
    from lanser.daemon.client import answer
    from lanser.errors import FsPermissions, LsCrash

    assert answer({"bundle": {"status": "ok"}}) == {"status": "ok"}
    with pytest.raises(FsPermissions, match="uid 0 refused"):
        answer({"error": {"code": "E/FS_PERMISSIONS", "message": "connection from uid 0 refused"}})
    with pytest.raises(LsCrash, match="the daemon refused the request: E/BAD_REQUEST: request line too long"):
        answer({"error": {"code": "E/BAD_REQUEST", "message": "request line too long"}})
