"""Git state of the workspace and the ``git apply --3way`` path (``--via-git``).

A workspace that is not inside a git repository is allowed and reported as
``{"git": false}``.  Lanser's own ``.lanser/`` directory never makes a tree
dirty.

A workspace inside a repository that git refuses to read (``detected dubious
ownership`` when the checkout belongs to another user, a corrupt index, any
other failure of ``git status``) is never taken for "no git": its state is
``{"git": true, "dirty": true, "unreadable": "<git's message>"}`` (unknown
counts as dirty), and :func:`check_clean` refuses to apply there with
E/FS_PERMISSIONS (71), ``details.reason = "git-unreadable"``, naming git's
complaint and the fix, unless ``--allow-dirty`` (the explicit opt-in: apply
without knowing what git would say).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ApplyConflict, FsPermissions, LanserError
from ..workspace import Workspace
from . import diff as difflib_
from .plan import EditPlan, FileChange, display_text, git_patch, make_plan

MAX_LISTED = 50


class GitUnreadable(FsPermissions):
    """The workspace is in a git repository, but ``git status`` fails there (E/FS_PERMISSIONS:
    the dirty-tree guard cannot be honoured, so nothing may be written without --allow-dirty)."""

    def __init__(self, message: str, *, complaint: str) -> None:
        super().__init__(message, details={"reason": "git-unreadable", "git": complaint})
        self.git_message = complaint


def _git_complaint(ws: Workspace, exc: Exception) -> str:
    """git's own first error line (``fatal: ...``), else the exception's text; absolute paths
    of the repository are written ``<repo>`` (bundles carry no machine paths)."""
    stderr = getattr(exc, "stderr", None)
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else str(stderr or exc)
    lines = [ln.strip().strip("'").strip() for ln in text.splitlines() if ln.strip()]
    found = next((ln for ln in lines if "fatal:" in ln or "error:" in ln), lines[0] if lines else type(exc).__name__)
    for marker in ("fatal:", "error:"):
        if marker in found:
            found = found[found.find(marker):]
            break
    roots = {str(ws.root), os.path.realpath(ws.root)}
    roots |= {str(p) for p in ws.root.parents if str(p) not in ("/", "")}
    for root in sorted(roots, key=len, reverse=True):
        found = found.replace(root, "<repo>")
    return found.replace("'<repo>'", "<repo>").replace("'<repo>", "<repo>").strip().strip("'")


def unreadable_error(ws: Workspace, complaint: str) -> GitUnreadable:
    """The error for a repository git refuses to read, with git's complaint and the fix."""
    hint = ("; if you trust this checkout, mark it safe: git config --global --add safe.directory "
            "<its path>" if "dubious ownership" in complaint else "")
    return GitUnreadable(
        f"git refuses to read the repository ({complaint}): the dirty-tree check cannot run, so "
        f"nothing was written{hint}; or pass --allow-dirty to write without the check",
        complaint=complaint)


def _repo(ws: Workspace):  # type: ignore[no-untyped-def]
    try:
        import git
    except ImportError:  # pragma: no cover - GitPython is a dependency
        return None
    try:
        return git.Repo(ws.root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandNotFound):
        return None


def _toplevel(repo) -> Path | None:  # type: ignore[no-untyped-def]
    wt = repo.working_tree_dir
    return Path(os.path.realpath(wt)) if wt else None


def dirty_paths(ws: Workspace) -> list[str] | None:
    """Workspace-relative paths git reports as modified, staged or untracked
    (``.lanser/`` excluded), sorted; None when the workspace is not in a git work tree.
    Raises :class:`GitUnreadable` when it is in one but ``git status`` fails there."""
    repo = _repo(ws)
    if repo is None:
        return None
    try:
        top = _toplevel(repo)
        if top is None:
            return None  # a bare repository: no work tree to be dirty
        out = repo.git.status("--porcelain=v1", "-z", "--untracked-files=all", "--", str(ws.root))
    except LanserError:
        raise
    except Exception as exc:  # noqa: BLE001 - git failing to answer is not "no git"
        raise unreadable_error(ws, _git_complaint(ws, exc)) from None
    finally:
        repo.close()
    items = out.split("\0")
    paths: list[str] = []
    i = 0
    while i < len(items):
        item = items[i]
        i += 1
        if len(item) < 4:
            continue
        xy, path = item[:2], item[3:]
        if "R" in xy or "C" in xy:
            i += 1  # the rename's source follows
        full = Path(os.path.realpath(top / path))
        if not ws.contains(full):
            continue
        rel = ws.relpath(full)
        if rel == ".lanser" or rel.startswith(".lanser/"):
            continue
        paths.append(rel)
    return sorted(set(paths))


def git_state(ws: Workspace) -> dict[str, Any]:
    """``{"git": false}``, ``{"git": true, "dirty": bool, "dirtyPaths": [...]}`` (at most 50
    paths listed, ``dirtyCount`` gives the total), or, for a repository git refuses to read,
    ``{"git": true, "dirty": true, "unreadable": "<git's complaint>"}``: unknown is dirty."""
    try:
        paths = dirty_paths(ws)
    except GitUnreadable as exc:
        return {"git": True, "dirty": True, "unreadable": exc.git_message}
    if paths is None:
        return {"git": False}
    out: dict[str, Any] = {"git": True, "dirty": bool(paths)}
    if paths:
        out["dirtyPaths"] = paths[:MAX_LISTED]
        out["dirtyCount"] = len(paths)
    return out


def check_clean(ws: Workspace, allow_dirty: bool = False) -> dict[str, Any]:
    """Refuse a dirty git work tree, or one git refuses to read, unless ``allow_dirty``
    (E/FS_PERMISSIONS: a write refused by policy).  Returns the git state for the bundle."""
    state = git_state(ws)
    if state.get("unreadable") and not allow_dirty:
        raise unreadable_error(ws, state["unreadable"])
    if state.get("dirty") and not allow_dirty:
        raise FsPermissions(
            f"the git work tree has uncommitted changes ({state['dirtyCount']} paths); commit or "
            f"stash them, or pass --allow-dirty",
            details={"reason": "dirty", "paths": state["dirtyPaths"]})
    return state


# -- git apply --3way --------------------------------------------------------------

_CONFLICT = re.compile(r"^<<<<<<< .*?\n(.*?)^=======\n(.*?)^>>>>>>> .*?(?:\n|$)", re.S | re.M)


def conflict_hunks(path: str, merged: str, plan: EditPlan) -> list[dict[str, Any]]:
    """Machine-readable conflicts from a file with conflict markers: file, the
    plan's hunk header whose new lines contain "theirs", 1-based marker line,
    ours/theirs lines."""
    change = plan.change(path)
    headers: list[tuple[str, list[str]]] = []
    if change is not None:
        section = difflib_.parse_unified_diff(
            difflib_.file_diff(path, _text(path, change.before or b""), _text(path, change.after or b"")))
        for fp in section:
            for h in fp.hunks:
                headers.append((h.header, list(h.new_lines)))
    out = []
    for m in _CONFLICT.finditer(merged):
        ours = difflib_.split_keepends(m.group(1))
        theirs = difflib_.split_keepends(m.group(2))
        header = None
        for h, new_lines in headers:
            if all(t in new_lines for t in theirs):
                header = h
                break
        out.append({"file": path, "hunk": header, "line": merged.count("\n", 0, m.start()) + 1,
                    "ours": [t.rstrip("\n") for t in ours], "theirs": [t.rstrip("\n") for t in theirs]})
    return out


def _text(path: str, data: bytes) -> str:
    try:
        return display_text(path, data) or ""
    except ValueError:
        return data.decode("latin-1")


def _git(args: list[str], *, git_dir: str, work_tree: str, env: dict[str, str],
         stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", f"--git-dir={git_dir}", f"--work-tree={work_tree}", *args],
                          cwd=work_tree, env=env, input=stdin, capture_output=True, check=False)


def merge_via_git(ws: Workspace, plan: EditPlan) -> EditPlan:
    """Run the plan's patch through ``git apply --3way`` on a scratch copy of the
    current files and return a plan from the current files to the merged result.

    Nothing in the workspace is written here (only the preimage blobs are added
    to the repository's object store, which ``--3way`` needs).  Conflicts raise
    ApplyConflict with ``details["conflicts"]``: file, hunk, line, ours, theirs.
    """
    repo = _repo(ws)
    if repo is None:
        raise ApplyConflict("--via-git needs a git repository; the workspace is not in one",
                            details={"reason": "not-git"})
    git_dir = os.path.realpath(repo.git_dir)
    repo.close()
    scratch = tempfile.mkdtemp(prefix="lanser-3way-")
    try:
        env = dict(os.environ, GIT_INDEX_FILE=os.path.join(scratch, ".lanser-index"),
                   GIT_CONFIG_NOSYSTEM="1")
        tree = os.path.join(scratch, "tree")
        os.mkdir(tree)
        current: dict[str, bytes | None] = {}
        modes: dict[str, int | None] = {}
        for c in plan.changes:
            real = ws.abspath(c.path)
            data = real.read_bytes() if real.is_file() else None
            current[c.path] = data
            modes[c.path] = stat.S_IMODE(real.stat().st_mode) if data is not None else None
            if c.before is not None:
                _git(["hash-object", "-w", "--stdin"], git_dir=git_dir, work_tree=tree, env=env,
                     stdin=c.before)
            if data is not None:
                target = Path(tree) / c.path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                if (modes[c.path] or 0) & 0o111:
                    target.chmod(0o755)
        present = [p for p, d in current.items() if d is not None]
        if present:
            r = _git(["update-index", "--add", "--", *present], git_dir=git_dir, work_tree=tree, env=env)
            if r.returncode:
                raise ApplyConflict(f"git update-index failed: {r.stderr.decode(errors='replace').strip()}")
        patch_file = os.path.join(scratch, "plan.patch")
        Path(patch_file).write_bytes(git_patch(plan))
        r = _git(["apply", "--3way", "--whitespace=nowarn", patch_file], git_dir=git_dir,
                 work_tree=tree, env=env)
        stderr = r.stderr.decode("utf-8", errors="replace")
        merged: dict[str, bytes | None] = {}
        for c in plan.changes:
            p = Path(tree) / c.path
            merged[c.path] = p.read_bytes() if p.is_file() else None
        if r.returncode:
            conflicts: list[dict[str, Any]] = []
            for path, data in merged.items():
                if data is not None and b"<<<<<<< " in data:
                    conflicts.extend(conflict_hunks(path, _text(path, data), plan))
            raise ApplyConflict(
                "git apply --3way could not apply the patch"
                + (f": {len(conflicts)} conflict(s)" if conflicts else f": {stderr.strip()}")
                + "; nothing was written",
                details={"reason": "git-apply", "conflicts": conflicts,
                         "stderr": [ln for ln in stderr.splitlines() if ln.strip()]})
        changes = []
        for c in plan.changes:
            before = current[c.path]
            if c.after_mode is not None and c.after_mode != c.before_mode:
                mode = c.after_mode  # the plan changes the mode
            else:
                mode = modes[c.path]
            changes.append(FileChange(c.path, before, merged[c.path], modes[c.path],
                                      mode if merged[c.path] is not None else None, c.renamed_from))
        return make_plan(changes, label=plan.label, encoding=plan.encoding,
                         workspace_edit=plan.workspace_edit)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
