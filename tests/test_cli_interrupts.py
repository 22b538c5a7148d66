"""Ctrl-C at several points of an apply and of a reward run (issue 12, item 3).

Real processes, the real server, SIGINT sent at known points: the apply path's test
hook (``LANSER_TEST_PAUSE_AFTER_REPLACE``/``_AT``/``_SECONDS``) appends a line to a
marker file after each file replacement and sleeps, so the signal arrives between two
replacements (before the commit point) or after the last one.

- ``rename --apply`` interrupted before anything is written: exit 130, nothing written.
- interrupted inside the apply: the apply finishes, the command reports it (exit 0,
  the bundle on stdout, a note on stderr).
- ``reward`` interrupted while a step runs: that step finishes and prints its record,
  later steps do not run, exit 130; every step whose edit landed has its record.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import LANSER_BIN, copy_fixture

pytestmark = pytest.mark.server

SYM = "py://shop.pricing#apply_discount"
RENAMED = ["src/shop/__init__.py", "src/shop/broken.py", "src/shop/pricing.py", "src/shop/service.py"]


def spawn(ws: Path, *argv: str, marker: Path | None = None, pause_at: int = 1,
          seconds: float = 3) -> subprocess.Popen[str]:
    env = dict(os.environ, LANSER_DAEMON="never")
    if marker is not None:
        env.update(LANSER_TEST_PAUSE_AFTER_REPLACE=str(marker), LANSER_TEST_PAUSE_AT=str(pause_at),
                   LANSER_TEST_PAUSE_SECONDS=str(seconds))
    return subprocess.Popen([str(LANSER_BIN), "-w", str(ws), *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_for_lines(marker: Path, n: int, proc: subprocess.Popen[str], timeout: float = 120) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = marker.read_text().splitlines() if marker.exists() else []
        if len(lines) >= n:
            return lines
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError(f"no {n} replacement(s) marked in {timeout}s")


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=180)
    assert "Traceback" not in err, err
    return proc.returncode, out, err


def tree(ws: Path) -> dict[str, bytes]:
    return {p.relative_to(ws).as_posix(): p.read_bytes() for p in sorted(ws.rglob("*"))
            if p.is_file() and ".lanser" not in p.relative_to(ws).parts}


@pytest.fixture()
def ws(tmp_path: Path) -> Path:
    return copy_fixture("srcpkg", tmp_path / "ws")


# -- rename --apply ---------------------------------------------------------------------------

def test_interrupt_before_anything_is_written(ws: Path) -> None:
    before = tree(ws)
    proc = spawn(ws, "--json", "rename", SYM, "cut", "--apply")
    time.sleep(0.5)  # the server is still starting: seconds from any write
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert (code, out) == (130, "") and err.strip() == "lanser: interrupted"
    assert tree(ws) == before
    assert not list((ws / ".lanser" / "journal").glob("*.json")) if (ws / ".lanser").exists() else True


@pytest.mark.parametrize("pause_at,signals", [(1, 1), (len(RENAMED), 1), (2, 2)])
def test_interrupt_inside_the_apply_finishes_and_reports_it(ws: Path, tmp_path: Path, pause_at: int,
                                                            signals: int) -> None:
    """SIGINT after replacement ``pause_at`` of 4 (before the commit point), once or twice."""
    marker = tmp_path / "marker"
    proc = spawn(ws, "--json", "rename", SYM, "cut", "--apply", marker=marker, pause_at=pause_at)
    wait_for_lines(marker, pause_at, proc)
    for _ in range(signals):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
    code, out, err = finish(proc)
    assert code == 0, err
    bundle = json.loads(out)
    assert bundle["status"] == "ok" and bundle["edits"]["applied"] is True
    assert bundle["edits"]["result"]["files"] == RENAMED
    assert "observedDiagnostics" in bundle["facts"]
    assert "interrupted after the edit was written: the apply was finished and is reported" in err
    for rel in RENAMED:
        assert "cut" in (ws / rel).read_text()
    assert not list((ws / ".lanser" / "journal").glob("*.json"))


def test_interrupt_inside_the_apply_human_summary(ws: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    proc = spawn(ws, "rename", SYM, "cut", "--apply", marker=marker, pause_at=1)
    wait_for_lines(marker, 1, proc)
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 0 and "applied: 4 file(s) written" in out


# -- reward --------------------------------------------------------------------------------------

STEPS = [
    {"id": "q", "op": "query", "cmd": "def", "selector": "src/shop/service.py@L7:C18"},
    {"id": "a", "op": "write", "path": "src/shop/a.py", "content": "A = 1\n"},
    {"id": "b", "op": "write", "path": "src/shop/b.py", "content": "B = 2\n"},
    {"id": "c", "op": "write", "path": "src/shop/c.py", "content": "C = 3\n"},
]


def steps_file(tmp_path: Path) -> Path:
    path = tmp_path / "steps.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in STEPS))
    return path


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_reward_interrupted_while_a_step_runs_prints_its_record_and_stops(ws: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    proc = spawn(ws, "reward", str(steps_file(tmp_path)), marker=marker, pause_at=1, seconds=2)
    wait_for_lines(marker, 2, proc)  # step "b" has replaced its file and sleeps
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 130, err
    assert [(r["id"], r["status"]) for r in records(out)] == [("q", "ok"), ("a", "ok"), ("b", "ok")]
    assert "finishing step 3 and printing its record" in err
    assert "interrupted: stopped after step 3; 3 record(s) written" in err
    assert (ws / "src/shop/b.py").exists() and not (ws / "src/shop/c.py").exists()


def test_reward_interrupted_with_o_keeps_the_records(ws: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    out_file = tmp_path / "out.jsonl"
    proc = spawn(ws, "reward", str(steps_file(tmp_path)), "-o", str(out_file), marker=marker, pause_at=1,
                 seconds=2)
    wait_for_lines(marker, 1, proc)  # step "a"
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 130 and out == ""
    assert [r["id"] for r in records(out_file.read_text())] == ["q", "a"]


def wait_for_child(proc: subprocess.Popen[str], timeout: float = 120) -> None:
    """Wait until ``proc`` has started a child process (the language server): by then the command
    runs (its imports, which take more than a second on a loaded machine, are done)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == proc.pid:
                    return
            except (OSError, IndexError, ValueError):
                continue
        time.sleep(0.02)
    raise AssertionError("no child process started")


def test_reward_interrupted_before_the_first_step(ws: Path, tmp_path: Path) -> None:
    before = tree(ws)
    proc = spawn(ws, "reward", str(steps_file(tmp_path)))
    wait_for_child(proc)  # the server is starting
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert (code, out) == (130, "")
    assert "stopped at once; 0 record(s) written" in err
    assert tree(ws) == before


def test_reward_second_interrupt_stops_at_once_and_says_what_may_have_landed(ws: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    proc = spawn(ws, "reward", str(steps_file(tmp_path)), marker=marker, pause_at=1, seconds=2)
    wait_for_lines(marker, 2, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 130
    assert [r["id"] for r in records(out)] == ["q", "a"]
    assert "step 3 was running: if it edited files, its edit may have landed without a record" in err


def test_interrupt_of_a_client_whose_daemon_applies_waits_for_the_report(ws: Path, tmp_path: Path) -> None:
    """Through a daemon the apply runs in the daemon; a Ctrl-C of the client does not
    abandon the request: the client waits for the daemon's report and prints it."""
    import shutil
    import tempfile

    runtime = Path(tempfile.mkdtemp(prefix="li", dir="/tmp")) / "run"  # short: sun_path is 108 bytes
    marker = tmp_path / "marker"
    env = dict(os.environ, LANSER_RUNTIME_DIR=str(runtime), LANSER_TEST_PAUSE_AFTER_REPLACE=str(marker),
               LANSER_TEST_PAUSE_AT="1", LANSER_TEST_PAUSE_SECONDS="2")
    env.pop("LANSER_DAEMON", None)
    started = subprocess.run([str(LANSER_BIN), "-w", str(ws), "daemon", "start", "--idle-timeout", "120"],
                             env=env, capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stderr
    try:
        proc = subprocess.Popen([str(LANSER_BIN), "-w", str(ws), "--daemon", "require", "--json", "rename", SYM,
                                 "cut", "--apply"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        wait_for_lines(marker, 1, proc)
        proc.send_signal(signal.SIGINT)
        code, out, err = finish(proc)
        assert code == 0, err
        assert json.loads(out)["edits"]["applied"] is True
        assert "waited for its report" in err
    finally:
        subprocess.run([str(LANSER_BIN), "-w", str(ws), "daemon", "stop"], env=env, capture_output=True,
                       timeout=60)
        shutil.rmtree(runtime.parent, ignore_errors=True)
