"""Git state (clean tree required) and ``--via-git`` (git apply --3way)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from lanser.edits import apply_plan, git_state, plan_from_contents, plan_from_unified_diff, preview
from lanser.errors import ApplyConflict, FsPermissions
from lanser.workspace import Workspace

ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
           GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True).stdout.decode()


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    git(root, "init", "-q")
    (root / "src" / "m.py").write_text("".join(f"x{i} = {i}\n" for i in range(12)))
    (root / "src" / "n.py").write_text("n = 1\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root


def test_not_a_git_repo_is_allowed_and_reported(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("a = 1\n")
    ws = Workspace(tmp_path)
    assert git_state(ws) == {"git": False}
    result = apply_plan(ws, plan_from_contents(ws, {"a.py": b"a = 2\n"}))
    assert result.applied and result.to_json()["git"] == {"git": False}


def test_dirty_tree_refused_unless_allowed(repo: Path) -> None:
    ws = Workspace(repo)
    assert git_state(ws) == {"git": True, "dirty": False}
    (repo / ".lanser").mkdir()
    (repo / ".lanser" / "something").write_text("ours\n")
    assert git_state(ws)["dirty"] is False  # lanser's own directory never counts
    (repo / "src" / "n.py").write_text("n = 2\n")
    (repo / "untracked.txt").write_text("u\n")
    state = git_state(ws)
    assert state["dirty"] and state["dirtyPaths"] == ["src/n.py", "untracked.txt"]
    plan = plan_from_contents(ws, {"src/m.py": b"x = 0\n"})
    with pytest.raises(FsPermissions) as info:
        apply_plan(ws, plan)
    assert info.value.details == {"reason": "dirty", "paths": ["src/n.py", "untracked.txt"]}
    assert (repo / "src" / "m.py").read_text().startswith("x0 = 0\n")
    result = apply_plan(ws, plan, allow_dirty=True)
    assert result.applied and result.git["dirty"] is True


def test_workspace_in_a_subdirectory_of_the_repo(repo: Path) -> None:
    (repo / "other.txt").write_text("dirty outside the workspace\n")
    ws = Workspace(repo / "src")
    assert git_state(ws) == {"git": True, "dirty": False}
    (repo / "src" / "n.py").write_text("n = 3\n")
    assert git_state(ws)["dirtyPaths"] == ["n.py"]


def test_via_git_clean_and_merging(repo: Path) -> None:
    ws = Workspace(repo)
    old = (repo / "src" / "m.py").read_text()
    plan = plan_from_contents(ws, {"src/m.py": old.replace("x10 = 10\n", "x10 = 'ten'\n").encode()})
    # someone changed another part of the file after the plan was built: 3-way merges it
    (repo / "src" / "m.py").write_text(old.replace("x1 = 1\n", "x1 = 'one'\n"))
    result = apply_plan(ws, plan, via_git=True, allow_dirty=True)
    assert result.applied and result.via == "git-apply-3way"
    assert (repo / "src" / "m.py").read_text() == old.replace("x1 = 1\n", "x1 = 'one'\n").replace(
        "x10 = 10\n", "x10 = 'ten'\n")
    assert git(repo, "status", "--porcelain") == " M src/m.py\n"  # the real index is untouched


def test_via_git_conflict_gives_hunks_and_writes_nothing(repo: Path) -> None:
    ws = Workspace(repo)
    old = (repo / "src" / "m.py").read_text()
    plan = plan_from_contents(ws, {"src/m.py": old.replace("x5 = 5\n", "x5 = 'theirs'\n").encode(),
                                   "src/n.py": b"n = 'fine'\n"})
    (repo / "src" / "m.py").write_text(old.replace("x5 = 5\n", "x5 = 'ours'\n"))
    before = {p: (repo / p).read_bytes() for p in ("src/m.py", "src/n.py")}
    with pytest.raises(ApplyConflict) as info:
        apply_plan(ws, plan, via_git=True, allow_dirty=True)
    err = info.value
    assert err.exit_code == 70
    (conflict,) = err.details["conflicts"]
    assert conflict["file"] == "src/m.py"
    assert conflict["ours"] == ["x5 = 'ours'"] and conflict["theirs"] == ["x5 = 'theirs'"]
    assert conflict["hunk"].startswith("@@ -3,7 +3,7 @@")
    assert {p: (repo / p).read_bytes() for p in before} == before
    assert git(repo, "status", "--porcelain") == " M src/m.py\n"


def test_via_git_needs_a_repo(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("a = 1\n")
    ws = Workspace(tmp_path)
    with pytest.raises(ApplyConflict) as info:
        apply_plan(ws, plan_from_contents(ws, {"a.py": b"a = 2\n"}), via_git=True)
    assert info.value.details["reason"] == "not-git"


def _blob(text: str) -> str:
    from lanser.workspace import blob_id
    return blob_id(text.encode())


def test_patch_from_agent_diff_applies_through_the_envelope(repo: Path) -> None:
    ws = Workspace(repo)
    patch = ("diff --git a/src/n.py b/src/n.py\n--- a/src/n.py\n+++ b/src/n.py\n"
             "@@ -1 +1,2 @@\n-n = 1\n+n = 2\n+m = 3\n")
    plan = plan_from_unified_diff(ws, patch)
    ids = [_blob(t) for t in ("n = 1\n", "n = 2\nm = 3\n")]
    assert preview(plan) == (f"diff --git a/src/n.py b/src/n.py\nindex {ids[0][:7]}..{ids[1][:7]} 100644\n"
                             "--- a/src/n.py\n+++ b/src/n.py\n@@ -1 +1,2 @@\n-n = 1\n+n = 2\n+m = 3\n")
    assert apply_plan(ws, plan).applied
    assert git(repo, "diff") == preview(plan)
    bad = "--- a/src/n.py\n+++ b/src/n.py\n@@ -1 +1 @@\n-n = 999\n+n = 0\n"
    with pytest.raises(ApplyConflict) as info:
        plan_from_unified_diff(ws, bad)
    assert info.value.details["hunk"] == "@@ -1 +1 @@"
