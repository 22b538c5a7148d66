"""Shared fixtures: fixture workspaces copied to tmp, an in-process engine per module,
and two ways of running the CLI (in-process for speed, as a subprocess for real).

Fixture workspaces are never touched in place: every test works on a copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
FAKESERVERS = Path(__file__).resolve().parent / "fakeservers"
LANSER_BIN = Path(sys.executable).parent / "lanser"


@pytest.fixture(scope="session", autouse=True)
def private_daemon_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test runs with its own daemon runtime directory (``$LANSER_RUNTIME_DIR``), so
    the default ``--daemon auto`` never finds a daemon a developer is running; any daemon a
    test leaves behind in it is stopped at the end of the session.  ``$LANSER_DAEMON`` is
    cleared for the same reason (tests that need a mode set it themselves)."""
    from lanser.daemon import client
    from lanser.daemon.paths import RUNTIME_ENV, all_daemon_files

    saved = {name: os.environ.get(name) for name in (RUNTIME_ENV, client.MODE_ENV)}
    runtime = tmp_path_factory.mktemp("runtime")
    os.environ[RUNTIME_ENV] = str(runtime)
    os.environ.pop(client.MODE_ENV, None)
    try:
        yield runtime
    finally:
        os.environ[RUNTIME_ENV] = str(runtime)
        with contextlib.suppress(Exception):
            for files in all_daemon_files():
                client.stop(files)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def module_daemon_runtime(prefix: str) -> Iterator[Path]:
    """A daemon runtime directory of one test module (short: a socket path has a length
    limit); every daemon started in it is stopped at the end, and checked gone."""
    from lanser.daemon import client as C
    from lanser.daemon.paths import all_daemon_files

    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp")) / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANSER_RUNTIME_DIR", str(path))
        mp.delenv("LANSER_DAEMON", raising=False)
        try:
            yield path
        finally:
            if path.is_dir():  # no daemon outlives the module
                pids = [C.stop(f) for f in all_daemon_files()]
                assert all(p is None or not C.process_alive(p) for p in pids)
            shutil.rmtree(path.parent, ignore_errors=True)


def copy_fixture(name: str, dest: Path) -> Path:
    """Copy ``fixtures/<name>`` to ``dest`` (symlinks kept) and return the copy."""
    shutil.copytree(FIXTURES / name, dest, symlinks=True)
    return dest


@pytest.fixture(scope="session")
def fixture_copy(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``fixture_copy(name)``: a read-only-by-convention copy of a fixture, shared by the session."""
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            made[name] = copy_fixture(name, tmp_path_factory.mktemp("fx") / name)
        return made[name]

    return get


class EngineRunner:
    """One Engine (and so one server session) on its own event loop, shared by a module."""

    def __init__(self, workspace: Path, **options: Any) -> None:
        from lanser.engine import Engine, Options

        self.loop = asyncio.new_event_loop()
        self.engine = Engine(Options(workspace=str(workspace), **options))

    def run(self, cmd: str, selector: str | None = None, args: dict[str, Any] | None = None,
            **option_changes: Any) -> dict[str, Any]:
        """Run one command; ``option_changes`` (e.g. ``index_io="utf-8"``) apply to this call only."""
        saved = self.engine.options
        if option_changes:
            self.engine.options = replace(saved, **option_changes)
        try:
            return self.loop.run_until_complete(self.engine.run(cmd, selector, args))
        finally:
            self.engine.options = saved

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.engine.close())
        finally:
            self.loop.close()


@contextlib.contextmanager
def engine_runner(workspace: Path, **options: Any) -> Iterator[EngineRunner]:
    runner = EngineRunner(workspace, **options)
    try:
        yield runner
    finally:
        runner.close()


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def bundle(self) -> dict[str, Any]:
        return json.loads(self.out)


def run_cli(*argv: str) -> CliResult:
    """Run ``lanser ARGV`` in this process (through ``lanser.cli.main``), capturing output."""
    from lanser.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return CliResult(code, out.getvalue(), err.getvalue())


def run_cli_subprocess(*argv: str, env: dict[str, str] | None = None, timeout: float = 60) -> CliResult:
    """Run the installed ``lanser`` console script as a real process."""
    proc = subprocess.run([str(LANSER_BIN), *argv], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def assert_clean_error(result: CliResult, exit_code: int) -> None:
    """The contract's error path without --json: the code, one stderr line, no traceback."""
    assert result.code == exit_code, (result.code, result.err)
    assert "Traceback" not in result.err and "Traceback" not in result.out
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("lanser: E/"), lines[0]


def assert_error_bundle(result: CliResult, exit_code: int, code: str) -> dict[str, Any]:
    """The contract's error path with --json: an error bundle on stdout."""
    assert result.code == exit_code, (result.code, result.err)
    assert "Traceback" not in result.err
    bundle = result.bundle
    assert bundle["status"] == "error"
    assert bundle["error"]["code"] == code
    assert bundle["error"]["exitCode"] == exit_code
    assert bundle["meta"]["exit_code"] == exit_code
    assert bundle["bundleId"].startswith("sha256:")
    return bundle


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_gone(pid: int, within: float = 3.0) -> bool:
    """Wait (polling) until ``pid`` is gone; False if it is still alive after ``within`` s."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path -> text, UTF-8) below ``root``; returns ``root``."""
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root
