"""Unified diffs: writing, parsing (round trip with real ``git diff``), applying hunks."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lanser.edits.diff import apply_hunks, file_diff, parse_unified_diff, split_keepends
from lanser.edits.plan import git_patch, plan_from_contents, plan_from_unified_diff, preview
from lanser.errors import ApplyConflict
from lanser.workspace import Workspace

DATA = Path(__file__).parent / "data" / "edits"


def git(cwd: Path, *args: str) -> str:
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=str(cwd), GIT_AUTHOR_NAME="t",
               GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True).stdout.decode(
        "utf-8", errors="surrogateescape")


def make_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    git(root, "config", "core.autocrlf", "false")
    return root


def test_split_keepends_only_on_lf() -> None:
    assert split_keepends("a\r\nb\x0cc\u2028d\ne") == ["a\r\n", "b\x0cc\u2028d\n", "e"]
    assert split_keepends("") == []


def test_file_diff_matches_git_for_simple_changes(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    old = "".join(f"line {i}\n" for i in range(20))
    new = old.replace("line 3\n", "line three\n").replace("line 15\n", "") + "tail"
    (root / "f.txt").write_text(old)
    git(root, "add", "f.txt")
    git(root, "commit", "-qm", "init")
    (root / "f.txt").write_text(new)
    expected = git(root, "diff", "--no-color", "--no-ext-diff")
    mine = file_diff("f.txt", old, new, old_mode=0o644, new_mode=0o644,
                     old_id=_blob(old),
                     new_id=_blob(new))
    assert mine == expected


def _blob(text: str) -> str:
    from lanser.workspace import blob_id
    return blob_id(text.encode())


def test_parse_git_diff_round_trip_real_repo(tmp_path: Path) -> None:
    """Every kind of change git prints parses, and the plan built from it
    reproduces the exact bytes of the new tree."""
    root = make_repo(tmp_path)
    files = {
        "mod.py": "".join(f"x{i} = {i}\n" for i in range(30)),
        "crlf.py": (DATA / "crlf.py").read_bytes().decode(),
        "gone.py": "a = 1\nb = 2\n",
        "noeol.py": "a = 1\nb = 2",
        "old_name.py": "".join(f"v{i} = {i}\n" for i in range(12)),
        "dir/exe.sh": "#!/bin/sh\necho hi\n",
        "empty.txt": "",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(text.encode())
    shutil.copyfile(DATA / "latin1.py", root / "latin1.py")
    os.chmod(root / "dir/exe.sh", 0o755)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    before_tree = {p: (root / p).read_bytes() for p in [*files, "latin1.py"]}

    # the new tree
    (root / "mod.py").write_text(files["mod.py"].replace("x5 = 5\n", "x5 = 'five'\n")
                                 .replace("x20 = 20\n", "") + "extra = 1\n")
    (root / "crlf.py").write_bytes(b"def greet(name):\r\n    return 'hello ' + name\r\n\r\n\r\nprint(greet('x'))\r\n")
    (root / "gone.py").unlink()
    (root / "noeol.py").write_text("a = 1\nb = 3")
    (root / "new.py").write_text("created = True\n")
    git(root, "mv", "old_name.py", "new_name.py")
    (root / "new_name.py").write_text(files["old_name.py"].replace("v6 = 6\n", "v6 = 'six'\n"))
    os.chmod(root / "dir/exe.sh", 0o644)
    (root / "latin1.py").write_bytes((DATA / "latin1.py").read_bytes().replace(b"\xe9t\xe9", b"\xe9t\xe9!"))
    git(root, "add", "-A")
    raw = subprocess.run(["git", "diff", "--cached", "-M", "--no-color", "--no-ext-diff"], cwd=root,
                         check=True, capture_output=True).stdout
    after_tree = {p: (root / p).read_bytes() for p in
                  ["mod.py", "crlf.py", "noeol.py", "new.py", "new_name.py", "dir/exe.sh", "latin1.py",
                   "empty.txt"]}

    patches = parse_unified_diff(raw.decode("latin-1"))
    kinds = {(p.old_path, p.new_path) for p in patches}
    assert ("gone.py", None) in kinds and (None, "new.py") in kinds
    assert ("old_name.py", "new_name.py") in kinds
    exe = next(p for p in patches if p.path == "dir/exe.sh")
    assert exe.old_mode == 0o100755 and exe.new_mode == 0o100644 and not exe.hunks

    # back to the old tree, then apply the diff through a plan
    git(root, "reset", "-q", "--hard")
    assert {p: (root / p).read_bytes() for p in before_tree} == before_tree
    # git prints the latin-1 file's bytes raw: an agent would send the patch as text,
    # so the test decodes it per file the way a JSON step would carry it
    text = raw.decode("utf-8", errors="surrogateescape")
    text = text.replace(b"\xe9t\xe9".decode("utf-8", "surrogateescape"), "été") \
        .replace(b"\xe9t\xe9!".decode("utf-8", "surrogateescape"), "été!")
    ws = Workspace(root)
    plan = plan_from_unified_diff(ws, text)
    by_path = {c.path: c for c in plan.changes}
    assert by_path["gone.py"].after is None and by_path["old_name.py"].after is None
    assert by_path["new_name.py"].renamed_from == "old_name.py"
    for rel, data in after_tree.items():
        if rel == "empty.txt":
            continue
        assert by_path[rel].after == data, rel
    assert by_path["dir/exe.sh"].after_mode is not None and not by_path["dir/exe.sh"].after_mode & 0o111

    # my diff of the same plan applies with git apply, and parses back to the same plan
    (tmp_path / "mine.patch").write_bytes(git_patch(plan))
    subprocess.run(["git", "apply", "--check", str(tmp_path / "mine.patch")], cwd=root, check=True)
    again = plan_from_unified_diff(ws, preview(plan))
    assert [(c.path, c.after) for c in again.changes] == [(c.path, c.after) for c in plan.changes]


def test_preview_is_git_style_and_workspace_relative(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    ws = Workspace(tmp_path)
    plan = plan_from_contents(ws, {"pkg/a.py": b"x = 2\n", "pkg/b.py": b"y = 1\n"})
    text = preview(plan)
    assert str(tmp_path) not in text
    assert "diff --git a/pkg/a.py b/pkg/a.py\n" in text
    assert "--- a/pkg/a.py\n+++ b/pkg/a.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n" in text
    assert "new file mode 100644\n" in text and "--- /dev/null\n+++ b/pkg/b.py\n@@ -0,0 +1 @@\n+y = 1\n" in text


def test_no_newline_marker_round_trip() -> None:
    d = file_diff("f", "a\nb", "a\nc")
    assert "-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n" in d
    (fp,) = parse_unified_diff(d)
    assert apply_hunks("a\nb", fp.hunks) == "a\nc"


def test_hunk_with_wrong_context_is_a_conflict_with_the_hunk() -> None:
    (fp,) = parse_unified_diff(file_diff("f.py", "a\nb\nc\n", "a\nB\nc\n"))
    with pytest.raises(ApplyConflict) as info:
        apply_hunks("a\nX\nc\n", fp.hunks, path="f.py")
    assert info.value.exit_code == 70
    assert info.value.details["hunk"] == "@@ -1,3 +1,3 @@"
    assert info.value.details["file"] == "f.py"


def test_hunk_found_at_an_offset_like_git_apply() -> None:
    (fp,) = parse_unified_diff(file_diff("f", "a\nb\nc\nd\ne\n", "a\nb\nC\nd\ne\n"))
    assert apply_hunks("new\nlines\na\nb\nc\nd\ne\n", fp.hunks) == "new\nlines\na\nb\nC\nd\ne\n"


def test_crlf_file_with_lf_patch() -> None:
    (fp,) = parse_unified_diff("--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n+B\n")
    assert apply_hunks("a\r\nb\r\n", fp.hunks) == "a\r\nB\r\n"


def test_malformed_hunk_counts() -> None:
    with pytest.raises(ApplyConflict):
        parse_unified_diff("--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n")
