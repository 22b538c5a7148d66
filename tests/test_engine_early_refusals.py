"""Refusals that need no plan come before any server starts (issue 12, item 8).

The server is replaced (test-only ``LANSER_TEST_SERVER_ARGV``) by the fake that logs
its pid and exits at once: had Lanser started it, the command would end in
E/LS_CRASH (65) and the log would name a pid.  A refusal that comes first is its
own exit code with an empty log, and takes well under the seconds a server start
costs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FAKESERVERS, assert_clean_error, copy_fixture, run_cli

SYM = "py://calc.core#parse_expr"


@pytest.fixture()
def no_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "server.log"
    monkeypatch.setenv("LANSER_TEST_SERVER_ARGV",
                       json.dumps([sys.executable, str(FAKESERVERS / "fake_lsp.py"), "early", str(log)]))
    monkeypatch.setenv("LANSER_DAEMON", "never")
    return log


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = copy_fixture("project", tmp_path / "project")
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    return root


def started(log: Path) -> bool:
    return log.exists() and "pid" in log.read_text()


def test_the_fake_server_would_be_noticed(no_server: Path, repo: Path) -> None:
    """The check itself can fail: a command that does start the server ends in 65."""
    result = run_cli("-w", str(repo), "rename", SYM, "parse")
    assert result.code == 65 and started(no_server)


@pytest.mark.parametrize("argv,reason", [
    (("rename", SYM, "parse", "--apply"), "dirty"),
    (("edit", SYM + ":body", "--text", "return 1", "--apply"), "dirty"),
    (("actions", "calc/core.py:1:1", "--apply", "0"), "dirty"),
    (("--allow-dirty", "--deny", "calc/*", "rename", SYM, "parse"), "glob"),
    (("--allow-dirty", "rename", SYM, "parse", "--deny", "calc/core.py", "--apply"), "glob"),
    (("--allow", "tests/*", "edit", SYM + ":body", "--text", "return 1"), "glob"),
])
def test_refused_before_the_server_starts(no_server: Path, repo: Path, argv: tuple[str, ...], reason: str) -> None:
    (repo / "calc" / "cli.py").write_text((repo / "calc" / "cli.py").read_text() + "\n# dirty\n")
    started_at = time.monotonic()
    result = run_cli("-w", str(repo), "--json", *argv)
    elapsed = time.monotonic() - started_at
    assert result.code == 71, (result.code, result.out[-500:], result.err)
    assert result.bundle["error"]["details"]["reason"] == reason
    assert not started(no_server)
    assert elapsed < 5, elapsed


def test_the_jail_and_a_bad_new_name_need_no_server(no_server: Path, repo: Path) -> None:
    assert_clean_error(run_cli("-w", str(repo), "rename", "../outside.py@L1:C1", "x", "--apply"), 71)
    assert_clean_error(run_cli("-w", str(repo), "rename", SYM, "not valid", "--apply"), 2)
    assert not started(no_server)


@pytest.mark.parametrize("text,extra", [("", ()), ("\n\n  \n", ()), ("\n\n", ("--reset-between",))])
def test_reward_on_no_steps_starts_no_server(no_server: Path, repo: Path, tmp_path: Path, text: str,
                                             extra: tuple[str, ...]) -> None:
    steps = tmp_path / "steps.jsonl"
    steps.write_text(text)
    out = tmp_path / "out.jsonl"
    result = run_cli("-w", str(repo), "reward", str(steps), *extra)
    assert (result.code, result.out, result.err) == (0, "", "")
    result = run_cli("-w", str(repo), "reward", str(steps), "-o", str(out))
    assert result.code == 0 and out.read_text() == ""
    assert not started(no_server)
