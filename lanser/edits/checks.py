"""Checks a plan passes before anything is written.

Pure checks (names, globs, confidence, parsing) and read-only checks against
the disk (jail, content unchanged since the plan was built, case-only renames).
None of them writes.  Error choices (see README, "Safe mutations"):

- invalid new name: :class:`InvalidNewName`, a :class:`BadInput`
  (E/BAD_INPUT, exit 2): the user typed an argument that cannot be valid, and
  retrying cannot help (it is not a selector, so not E/BAD_SELECTOR_SYNTAX);
- path outside the jail, ``--deny``/``--allow`` refusal, case-only rename on a
  case-insensitive file system: E/FS_PERMISSIONS (71);
- file changed since the plan was read: E/CONTENT_MODIFIED (74);
- overlapping edits, a result that no longer parses: E/APPLY_CONFLICT (70);
- low resolution confidence with ``--deny-apply-on-ambiguous``: E/AMBIGUOUS (4).
"""

from __future__ import annotations

import ast
import fnmatch
import keyword
import os
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from ..errors import Ambiguous, ApplyConflict, BadInput, ContentModified, FsPermissions
from ..workspace import Workspace, blob_id, decode_source

if TYPE_CHECKING:  # plan imports this module (case-only renames are checked while planning)
    from .plan import EditPlan


class InvalidNewName(BadInput):
    """A rename's new name is not a Python identifier (E/BAD_INPUT, exit 2, not retryable)."""

    def __init__(self, message: str, *, name: str, reason: str) -> None:
        super().__init__(message, details={"newName": name, "reason": reason})


def check_new_name(name: str) -> str:
    """Return ``name`` if it can name a Python symbol, else raise InvalidNewName.

    Refused: non-identifiers (``str.isidentifier``), hard keywords
    (``keyword.iskeyword``; soft keywords such as ``match`` are fine), and
    names that are not NFKC-normalized (Python would read them as another name).
    """
    if not isinstance(name, str) or not name:
        raise InvalidNewName("the new name is empty", name=str(name), reason="empty")
    if not name.isidentifier():
        raise InvalidNewName(f"{name!r} is not a Python identifier", name=name, reason="not-identifier")
    if keyword.iskeyword(name):
        raise InvalidNewName(f"{name!r} is a Python keyword", name=name, reason="keyword")
    if unicodedata.normalize("NFKC", name) != name:
        raise InvalidNewName(
            f"{name!r} is not NFKC-normalized; Python would read it as "
            f"{unicodedata.normalize('NFKC', name)!r}", name=name, reason="not-nfkc")
    return name


# -- globs ---------------------------------------------------------------------

def _glob_match(rel: str, pattern: str) -> bool:
    pattern = pattern.strip()
    if pattern.startswith("./"):
        pattern = pattern[2:]
    if pattern.endswith("/"):
        pattern += "*"
    if fnmatch.fnmatchcase(rel, pattern):
        return True
    return pattern.startswith("**/") and fnmatch.fnmatchcase(rel, pattern[3:])


def path_allowed(rel: str, allow: Sequence[str] = (), deny: Sequence[str] = ()) -> bool:
    """``--allow``/``--deny``: fnmatch globs on workspace-relative paths (``*``
    crosses ``/``; a trailing ``/`` means everything below; ``**/x`` also matches
    ``x`` at the top).  Deny wins; when allows are given a path must match one."""
    if any(_glob_match(rel, p) for p in deny):
        return False
    return not allow or any(_glob_match(rel, p) for p in allow)


def check_globs(paths: Iterable[str], allow: Sequence[str] = (), deny: Sequence[str] = ()) -> None:
    refused = sorted(p for p in paths if not path_allowed(p, allow, deny))
    if refused:
        raise FsPermissions(
            f"writing {', '.join(refused)} is refused by --allow/--deny",
            details={"reason": "glob", "paths": refused, "allow": list(allow), "deny": list(deny)})


# -- confidence ------------------------------------------------------------------

def check_confidence(confidence: float | None, tau: float | None, deny_apply_on_ambiguous: bool) -> None:
    """With ``--deny-apply-on-ambiguous``, refuse when the selector resolved
    with confidence below tau (E/AMBIGUOUS)."""
    if not deny_apply_on_ambiguous or confidence is None:
        return
    if tau is not None and confidence < tau:
        raise Ambiguous(
            f"resolution confidence {confidence:.3f} is below tau {tau:.3f}; "
            f"--deny-apply-on-ambiguous refuses to apply",
            details={"confidence": confidence, "tau": tau, "reason": "deny-apply-on-ambiguous"})


# -- parsing -----------------------------------------------------------------------

def is_python(path: str) -> bool:
    return path.endswith((".py", ".pyi"))


def _python_error_line(text: str) -> int | None:
    """The 1-based line Python's own parser reports for ``text``, None if it parses."""
    try:
        ast.parse(text)
    except SyntaxError as exc:
        return exc.lineno or 1
    except (ValueError, RecursionError, MemoryError):
        return None
    return None


def _indentation_error_line(text: str) -> int | None:
    """The line of Python's IndentationError for ``text``, None if it has none."""
    try:
        ast.parse(text)
    except IndentationError as exc:
        return exc.lineno or 1
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return None


def syntax_error_line(data: bytes, path: str = "") -> int | None:
    """1-based line of the first syntax error, None if tree-sitter parses the text cleanly
    and Python finds no indentation error (or it is not decodable, which is not this
    check's business).

    Whether there is an error is tree-sitter's call (independent of the running Python),
    except for indentation, which tree-sitter lets through and Python's parser decides.
    Where it is comes from Python's parser when that agrees there is one: tree-sitter
    often wraps everything from the top of the file in one ERROR node, so its first error
    node can start at line 1 for a colon missing on line 80."""
    try:
        text = decode_source(data, path).text
    except Exception:  # noqa: BLE001 - undecodable: not a parse question
        return None
    from ..selectors.structure import parser  # tree-sitter: imported when an edit is checked

    tree = parser().parse(text.encode("utf-8"))
    root = tree.root_node
    if not root.has_error:
        # tree-sitter recovers from indentation it should refuse (an unindented ``return``
        # inside a block parses); Python's indentation rules do not change between versions,
        # so its IndentationError (TabError included) is trusted on its own.
        return _indentation_error_line(text)
    line = _python_error_line(text)
    if line is not None:
        return line
    node = root
    while True:
        for child in node.children:
            if child.has_error or child.is_error or child.is_missing:
                node = child
                break
        else:
            break
        if node.is_error or node.is_missing:
            break
    return node.start_point[0] + 1


def check_parses(plan: EditPlan) -> None:
    """Refuse a change that makes a cleanly parsing Python file unparsable.

    The baseline is the file's ``before`` (for a renamed file, its source's);
    a new file or one that did not parse before is not refused.
    """
    broken = []
    for c in plan.changes:
        if c.after is None or not is_python(c.path):
            continue
        base = c.before
        if base is None and c.renamed_from is not None:
            src = plan.change(c.renamed_from)
            base = src.before if src is not None else None
        if base is None or syntax_error_line(base, c.path) is not None:
            continue
        line = syntax_error_line(c.after, c.path)
        if line is not None:
            broken.append({"file": c.path, "line": line})
    if broken:
        where = ", ".join(f"{b['file']}:{b['line']}" for b in broken)
        raise ApplyConflict(f"the edit would break Python syntax ({where}); nothing was written",
                            details={"reason": "syntax", "files": broken})


# -- disk (read-only) ----------------------------------------------------------------

def check_jail(ws: Workspace, plan: EditPlan) -> None:
    """Every target still resolves (symlinks followed) to itself inside the workspace."""
    for c in plan.changes:
        real, rel = ws.resolve(c.path, must_exist=False)  # FsPermissions outside
        if rel != c.path:
            raise FsPermissions(f"{c.path} now resolves to {rel} (a symlink changed since the plan "
                                f"was built); refusing to write", details={"reason": "symlink", "file": c.path})
        if rel.split("/")[0] in (".git", ".lanser"):
            raise FsPermissions(f"{rel}: edits inside .git/ or .lanser/ are refused")


def current_bytes(ws: Workspace, rel: str) -> bytes | None:
    path = ws.abspath(rel)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return b"\0<directory>"
    except PermissionError:
        raise FsPermissions(f"cannot read {rel}: permission denied") from None


def check_unchanged(ws: Workspace, plan: EditPlan) -> None:
    """Each file is byte-identical to what the plan was built from (E/CONTENT_MODIFIED)."""
    stale = []
    for c in plan.changes:
        now = current_bytes(ws, c.path)
        if now != c.before:
            stale.append({"file": c.path,
                          "expected": c.before_id if c.before is not None else None,
                          "actual": blob_id(now) if now is not None else None})
    if stale:
        raise ContentModified(
            f"{', '.join(s['file'] for s in stale)} changed since the edit was planned; "
            f"plan again", details={"reason": "stale", "files": stale})


def is_case_insensitive(directory: Path) -> bool:
    """Probe (without writing) whether ``directory``'s file system folds case:
    an entry with letters is looked up with its case swapped."""
    try:
        names = os.listdir(directory)
    except OSError:
        return False
    for name in names:
        swapped = name.swapcase()
        if swapped != name:
            other = directory / swapped
            try:
                return other.exists() and os.path.samefile(directory / name, other)
            except OSError:
                return False
    return False


def check_case_only_rename(ws: Workspace, old: str, new: str) -> None:
    """Refuse ``file.py -> File.py`` where the file system folds case (E/FS_PERMISSIONS)."""
    if old != new and old.casefold() == new.casefold():
        directory = ws.abspath(old).parent
        if is_case_insensitive(directory):
            raise FsPermissions(
                f"case-only rename {old} -> {new} on a case-insensitive file system is refused",
                details={"reason": "case-only-rename", "from": old, "to": new})


def check_case_renames(ws: Workspace, plan: EditPlan) -> None:
    created = [c for c in plan.changes if c.action == "create"]
    deleted = [c for c in plan.changes if c.action == "delete"]
    for c in created:
        for d in deleted:
            check_case_only_rename(ws, d.path, c.path)


def run_checks(ws: Workspace, plan: EditPlan, *, allow: Sequence[str] = (), deny: Sequence[str] = (),
               check_content: bool = True) -> None:
    """Jail, globs, case-only renames, unchanged content, parsing — in that order."""
    check_jail(ws, plan)
    check_globs(plan.paths, allow, deny)
    check_case_renames(ws, plan)
    if check_content:
        check_unchanged(ws, plan)
    check_parses(plan)


__all__ = ["InvalidNewName", "check_new_name", "path_allowed", "check_globs", "check_confidence",
           "syntax_error_line", "check_parses", "check_jail", "check_unchanged", "is_case_insensitive",
           "check_case_only_rename", "check_case_renames", "run_checks"]
