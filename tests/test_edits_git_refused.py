"""A repository git refuses to read is never "no git" (issue 12, item 1).

git refuses a checkout owned by another user ("detected dubious ownership", common in
containers and CI) and a repository whose index is corrupt.  Lanser then cannot tell
whether the tree is clean, so an apply is refused (E/FS_PERMISSIONS, nothing written)
unless ``--allow-dirty`` says to write anyway.  The ownership case is made for real:
the tests run as root, and root gets "dubious ownership" for a repository owned by
another uid when no ``safe.directory`` is configured (HOME and the global config are
pointed at an empty directory, the system config is ignored).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import copy_fixture, run_cli

from lanser.edits import apply_plan, git_state, plan_from_contents
from lanser.edits.gitstate import GitUnreadable
from lanser.workspace import Workspace

OTHER_UID = 54321


def git(cwd: Path, *args: str) -> None:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


@pytest.fixture(autouse=True)
def no_safe_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No global or system git configuration (so no safe.directory) for this process and git."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.delenv("GIT_WORK_TREE", raising=False)


def committed(root: Path) -> Path:
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root


def chown_tree(root: Path, uid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            os.lchown(name, uid, uid)


def owned_by_another_user(root: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("making a checkout owned by another uid needs root")
    chown_tree(root, OTHER_UID)
    probe = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True)
    assert probe.returncode != 0 and "dubious ownership" in probe.stderr, probe.stderr
    return root


def corrupt_index(root: Path) -> Path:
    (root / ".git" / "index").write_bytes(b"this is not a git index\n" * 4)
    probe = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True)
    assert probe.returncode != 0, probe.stdout
    return root


BREAKS = {"dubious-ownership": owned_by_another_user, "corrupt-index": corrupt_index}


@pytest.fixture(params=sorted(BREAKS))
def refused(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "a.py").write_text("a = 1\n")
    committed(root)
    return request.param, BREAKS[request.param](root)


def test_state_is_unreadable_and_counts_as_dirty(refused: tuple[str, Path]) -> None:
    kind, root = refused
    state = git_state(Workspace(root))
    assert state["git"] is True and state["dirty"] is True
    assert state["unreadable"].startswith(("fatal:", "error:"))
    if kind == "dubious-ownership":
        assert "dubious ownership" in state["unreadable"]


def test_apply_is_refused_and_writes_nothing(refused: tuple[str, Path]) -> None:
    kind, root = refused
    ws = Workspace(root)
    with pytest.raises(GitUnreadable) as info:
        apply_plan(ws, plan_from_contents(ws, {"a.py": b"a = 2\n"}))
    err = info.value
    assert (err.code, err.exit_code, err.details["reason"]) == ("E/FS_PERMISSIONS", 71, "git-unreadable")
    assert "git refuses to read the repository" in err.message and "--allow-dirty" in err.message
    if kind == "dubious-ownership":
        assert "git config --global --add safe.directory" in err.message
        assert "dubious ownership in repository at <repo>" in err.message
    assert str(root) not in err.message  # bundles carry no machine paths
    assert (root / "a.py").read_text() == "a = 1\n"
    assert not (root / ".lanser").exists()


def test_allow_dirty_is_the_explicit_opt_in(refused: tuple[str, Path]) -> None:
    _, root = refused
    ws = Workspace(root)
    result = apply_plan(ws, plan_from_contents(ws, {"a.py": b"a = 2\n"}), allow_dirty=True)
    assert result.applied and (root / "a.py").read_text() == "a = 2\n"
    assert result.git["git"] is True and "unreadable" in result.git


@pytest.mark.server
def test_rename_apply_twice_on_a_checkout_of_another_user(tmp_path: Path) -> None:
    """The issue's reproduction: chown the repo, `rename --apply` twice.  Both are refused."""
    root = committed(copy_fixture("project", tmp_path / "project"))
    before = {p: p.read_bytes() for p in root.rglob("*.py")}
    owned_by_another_user(root)
    for _ in range(2):
        result = run_cli("-w", str(root), "--json", "rename", "py://calc.core#parse_expr", "parse", "--apply")
        assert result.code == 71, result.err
        bundle = result.bundle
        assert bundle["error"]["code"] == "E/FS_PERMISSIONS"
        assert bundle["error"]["details"]["reason"] == "git-unreadable"
        assert "dubious ownership" in bundle["error"]["message"]
        assert {p: p.read_bytes() for p in root.rglob("*.py")} == before
    plain = run_cli("-w", str(root), "rename", "py://calc.core#parse_expr", "parse", "--apply")
    assert plain.code == 71 and plain.out == ""
    assert plain.err.startswith("lanser: E/FS_PERMISSIONS: git refuses to read the repository")


@pytest.mark.server
def test_reward_steps_on_a_corrupt_index_are_refused(tmp_path: Path) -> None:
    root = committed(copy_fixture("clean", tmp_path / "clean"))
    corrupt_index(root)
    steps = tmp_path / "steps.jsonl"
    steps.write_text(json.dumps({"op": "write", "path": "new.py", "content": "x = 1\n"}) + "\n")
    result = run_cli("-w", str(root), "reward", str(steps))
    assert result.code == 0, result.err
    [record] = [json.loads(line) for line in result.out.splitlines()]
    assert record["status"] == "error" and record["exitCode"] == 71
    assert record["processReward"]["components"]["safety"] == 0
    assert not (root / "new.py").exists()


@pytest.mark.server
def test_a_traced_refusal_replays_without_git(tmp_path: Path) -> None:
    """The trace records git's refusal (a git event with ``unreadable``); the replay, which
    asks no git, refuses the same way and regenerates the same bundle."""
    root = committed(copy_fixture("clean", tmp_path / "clean"))
    corrupt_index(root)
    trace = tmp_path / "t.jsonl"
    result = run_cli("-w", str(root), "--trace-file", str(trace), "--json", "edit", "app.py@L13:C1",
                     "--text", "SQUARES", "--apply")
    assert result.code == 71 and result.bundle["error"]["details"]["reason"] == "git-unreadable"
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    [answer] = [e for e in events if e["event"] == "git"]
    assert answer["dirtyPaths"] is None and answer["unreadable"].startswith(("fatal:", "error:"))
    replay = run_cli("-w", str(root), "trace", "replay", str(trace))
    assert replay.code == 0, replay.out + replay.err
    shown = run_cli("trace", "show", str(trace), "1")
    assert "git refused to read the repository: " in shown.out
