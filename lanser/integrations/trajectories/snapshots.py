"""Per-step snapshots -> Lanser steps: a range of git commits, or JSON Lines of per-step diffs.

- ``commits``: ``A..B`` in a repository.  The base is ``A``; every commit of
  ``git rev-list --reverse --first-parent A..B`` is one ``patch`` step, its diff against its
  first parent (``git diff --no-renames``); ``traj_step`` = the commit id, ``action`` = its
  subject.
- ``diffs``: one JSON object a line: ``{"diff": "<unified diff>"}`` (or ``"patch"``), with an
  optional ``"id"`` or ``"step"`` naming the step; a line that already is a Lanser step (it
  has an ``"op"``) is taken as it is.  ``traj_step`` = that name, else the line number.

The steps apply in order on the base; a step that fails (a diff that no longer applies
because an earlier one was refused) gets its error record, as in ``lanser reward``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from ...errors import BadInput, NotFound
from .items import Item, first_line


def git(repo: str, *args: str, text: bool = True) -> Any:
    """``git -C repo args`` -> stdout; BadInput with git's message when it fails."""
    proc = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=text,
                          env={"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "LC_ALL": "C",
                               "PATH": "/usr/local/bin:/usr/bin:/bin"})
    if proc.returncode != 0:
        err = proc.stderr if text else proc.stderr.decode("utf-8", "replace")
        raise BadInput(f"git {' '.join(args[:3])}: {err.strip()[:300]}")
    return proc.stdout


def from_commits(repo: str, spec: str) -> tuple[str, list[Item]]:
    """(base commit, items) of ``A..B`` (``A..`` means ``A..HEAD``)."""
    if ".." not in spec or spec.count("..") != 1 or "..." in spec:
        raise BadInput(f"a commit range is A..B, got {spec!r}")
    a, b = spec.split("..")
    b = b or "HEAD"
    base = git(repo, "rev-parse", "--verify", a + "^{commit}").strip()
    head = git(repo, "rev-parse", "--verify", b + "^{commit}").strip()
    commits = git(repo, "rev-list", "--reverse", "--first-parent", f"{base}..{head}").split()
    items = []
    for c in commits:
        parent = git(repo, "rev-parse", c + "^1").strip()
        diff = git(repo, "diff", "--no-color", "--no-renames", "--no-ext-diff", parent, c)
        subject = git(repo, "log", "-1", "--format=%s", c).strip()
        items.append(Item(c, first_line(subject), {"op": "patch", "patch": diff, "id": c} if diff else None,
                          reason=None if diff else "the commit changes no file content"))
    return base, items


def from_diffs(path: str) -> list[Item]:
    """Items of a JSON Lines file of per-step diffs (see the module docstring)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise NotFound(f"cannot read {path}: {exc}") from None
    items = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise BadInput(f"{path} line {n}: not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise BadInput(f"{path} line {n}: expected a JSON object")
        name = obj.get("id", obj.get("step", n))
        if "op" in obj:
            items.append(Item(name, str(obj.get("op")), {**obj, "id": name}))
            continue
        diff = obj.get("diff", obj.get("patch"))
        if not isinstance(diff, str):
            raise BadInput(f"{path} line {n}: needs 'diff' (a unified diff) or a Lanser step with 'op'")
        items.append(Item(name, first_line(diff), {"op": "patch", "patch": diff, "id": name}))
    return items


__all__ = ["from_commits", "from_diffs", "git"]
