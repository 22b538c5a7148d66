"""SWE-agent ``.traj`` files -> Lanser steps (``lanser reward --from swe-agent``).

A ``.traj`` is one JSON object; ``trajectory[i]`` holds the ``action`` run in the
container's shell, its ``observation`` and the ``state`` (open file, working
directory).  The converter replays the file-changing tools on its own copy of the
files (read from the base) and turns every change into a ``write`` step holding the
file's whole new text (a deletion is a ``patch``), so a step never depends on how a
previous one went.  Each item keeps ``traj_step`` = the index ``i``.

Edit tools understood (the container's repository root, ``state.working_dir`` of the
first step, maps to the workspace; relative paths resolve against the working
directory, ``cd`` included):

- ``str_replace_editor`` (SWE-agent 1.x default): ``create``, ``str_replace``,
  ``insert``, ``undo_edit`` (``view`` is read-only).  As the tool does: files are read
  with universal newlines and tabs expanded before ``str_replace``/``insert``;
  ``old_str`` must occur exactly once; ``insert`` goes after line N (0 = top);
  ``undo_edit`` restores the text saved before the file's last edit.
- the windowed editor on the open file: ``open PATH [LINE]``, ``goto``,
  ``scroll_up``/``scroll_down``, ``create PATH``, and
  - ``edit A:B`` + text + ``end_of_edit`` (lines A..B, 1-based, replaced).  SWE-agent
    0.x (``environment == "swe_main"``) rewrites the file with every line ending in
    ``\\n``; 1.x splices ``text.split("\\n")`` into ``file.split("\\n")``;
  - ``edit SEARCH REPLACE [REPLACE_ALL]`` (1.x ``windowed_edit_replace``): the search
    text, once, in the 100-line window (``WINDOW``; the window is tracked as the tool
    moves it: ``open``/``goto``/edits put the line 1/6 of a window from the top,
    scrolling moves ``WINDOW - 2``); a third argument is parsed as the tool's argparse
    ``type=bool`` does, so any non-empty word (even ``False``) means replace-all;
  - ``insert TEXT [LINE]`` (append, or after LINE).
  ``create`` writes ``\\n`` (0.x) or an empty file (1.x; the observation's line count
  decides when present).
- ``rm`` of literal paths (no option but ``-f``, no glob, no variable): a deletion.

An edit the harness rejected (its linter: "Your proposed edit has introduced new
syntax error(s)", "NOT been applied") is scored anyway (``applied=False``; Lanser's own
parse check usually refuses it too) and, if Lanser applies it, reverted.  An edit that
failed as a command (text not found, no open file, a bad range) changed nothing and is
reported as skipped.  Every other shell command is either known read-only (``ls``,
``cat``, ``grep``, ``find_file``, ``git diff`` ... without a redirection) and produces
no record, or **skipped**: its effect on files is unknown and never guessed.

The submission (``info.submission``) is ``git diff`` of the container after ``git add
-A``; SWE-agent 1.x files carry it with CRLF line ends, so it is compared after
CRLF -> LF and without the leading newline (:func:`submission`).
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ...edits.diff import file_diff
from .items import Item, first_line

WINDOW = 100
OVERLAP = 2
READ_ONLY_TOOLS = frozenset({
    "find_file", "search_dir", "search_file", "goto", "scroll_up", "scroll_down", "submit", "filemap",
    "ls", "cat", "head", "tail", "grep", "egrep", "fgrep", "rg", "pwd", "wc", "echo", "which", "tree", "diff",
    "nl", "less", "more", "file", "stat", "du", "true", "sort", "uniq", "cut", "awk",
})
READ_ONLY_GIT = frozenset({"status", "diff", "log", "show", "blame", "grep", "ls-files", "rev-parse", "branch"})
REJECTED = ("Your proposed edit has introduced new syntax error", "Your changes have NOT been applied",
            "have NOT been applied")
FAILED = ("Your edit was not applied", "No file open", "No file opened", "Usage: edit", "No changes were made",
          "No replacement was performed", "did not appear verbatim", "Cannot overwrite files",
          "Invalid `insert_line`", "No edit history found", "does not exist. Please provide a valid path",
          "Error: <line>", "Error: start_line", "Error: end_line")
_RANGE_EDIT = re.compile(r"edit\s+(\d+):(\d+)\s*$")
_LINES_TOTAL = re.compile(r"\((\d+) lines total\)")
_SHELL_WORDS = re.compile(r"[*?\[\]$`~{}]")


def load(path: str) -> dict[str, Any]:
    """A ``.traj`` file as a dict (ValueError when it is not one)."""
    with open(path, "rb") as fh:
        data = json.loads(fh.read().decode("utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("trajectory"), list):
        raise ValueError(f"{path}: not a SWE-agent trajectory (no 'trajectory' list)")
    return data


def _state(step: Mapping[str, Any]) -> dict[str, Any]:
    st = step.get("state")
    if isinstance(st, str):
        try:
            st = json.loads(st)
        except ValueError:
            return {}
    return st if isinstance(st, dict) else {}


def replay_config(traj: Mapping[str, Any]) -> dict[str, Any]:
    rc = traj.get("replay_config")
    if isinstance(rc, str):
        try:
            rc = json.loads(rc)
        except ValueError:
            return {}
    return rc if isinstance(rc, dict) else {}


def base_commit(traj: Mapping[str, Any]) -> str | None:
    """The base commit the trajectory names (``replay_config.env.repo.base_commit``), if any."""
    repo = ((replay_config(traj).get("env") or {}).get("repo") or {})
    commit = repo.get("base_commit")
    return commit if isinstance(commit, str) and commit else None


def repo_root(traj: Mapping[str, Any]) -> str:
    """The container directory that holds the repository."""
    for step in traj.get("trajectory") or []:
        wd = _state(step).get("working_dir")
        if isinstance(wd, str) and wd.startswith("/"):
            return wd.rstrip("/") or "/"
    name = ((replay_config(traj).get("env") or {}).get("repo") or {}).get("repo_name")
    return "/" + name if isinstance(name, str) and name else "/testbed"


def submission(traj: Mapping[str, Any]) -> str | None:
    """``info.submission`` as ``git diff`` prints it: CRLF -> LF, the leading newline dropped."""
    sub = (traj.get("info") or {}).get("submission")
    if not isinstance(sub, str):
        return None
    sub = sub.replace("\r\n", "\n")
    return sub[1:] if sub.startswith("\n") else sub


def _universal(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


@dataclass
class _Window:
    first: int = 0  # 0-based first displayed line (registry FIRST_LINE)

    def clamp(self, value: float, n_lines: int) -> None:
        self.first = max(0, min(int(value), n_lines - WINDOW))

    def goto(self, line0: int, n_lines: int) -> None:
        self.clamp(line0 - WINDOW * (1 / 6), n_lines)

    def range(self, n_lines: int) -> tuple[int, int]:
        return self.first, min(self.first + WINDOW - 1, n_lines - 1)


@dataclass
class Converter:
    """Replays one trajectory's edits on a copy of the base's files (see the module docstring).

    ``read_base(rel)``: the base's bytes of a workspace-relative file (None: absent).
    ``version``: ``"0"`` (``environment == "swe_main"``) or ``"1"``.
    """

    read_base: Callable[[str], bytes | None]
    root: str = "/testbed"
    version: str = "1"
    files: dict[str, str | None] = field(default_factory=dict)
    cwd: str = ""
    open_file: str | None = None
    window: _Window = field(default_factory=_Window)
    history: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cwd = self.cwd or self.root

    # -- files --------------------------------------------------------------------------
    def rel(self, path: str) -> str:
        """The step path of a container path: workspace-relative inside the repository root,
        else the absolute path itself (Lanser's jail refuses it)."""
        p = path if path.startswith("/") else posixpath.join(self.cwd, path)
        p = posixpath.normpath(p)
        if p == self.root:
            return "."
        if p.startswith(self.root.rstrip("/") + "/"):
            return p[len(self.root.rstrip("/")) + 1:]
        return p

    def text(self, rel: str) -> str | None:
        if rel not in self.files:
            data = None if rel.startswith("/") else self.read_base(rel)
            self.files[rel] = None if data is None else data.decode("utf-8", errors="replace")
        return self.files[rel]

    def _write(self, i: int, action: str, rel: str, new: str, *, applied: bool = True) -> Item:
        old = self.text(rel)
        step = {"op": "write", "path": rel, "content": new, "id": f"t{i}"}
        if not applied:
            revert = ({"op": "write", "path": rel, "content": old, "id": f"t{i}.revert"} if old is not None
                      else _delete_step(rel, new, f"t{i}.revert"))
            return Item(i, first_line(action), step, applied=False, revert=revert,
                        reason="the harness rejected this edit")
        self.files[rel] = new
        return Item(i, first_line(action), step)

    # -- one action ---------------------------------------------------------------------
    def convert(self, i: int, action: str, observation: str) -> Item | None:
        obs = _universal(observation or "")
        line = action.strip().split("\n", 1)[0].strip()
        word = line.split(" ", 1)[0] if line else ""
        if not word:
            return None
        rejected = any(m in obs for m in REJECTED)
        failed = not rejected and any(m in obs for m in FAILED)
        if word == "edit" and _RANGE_EDIT.match(line):
            return self._range_edit(i, action, obs, rejected, failed)
        if word in ("edit", "insert", "create", "open", "str_replace_editor", "rm", "cd", "goto",
                    "scroll_up", "scroll_down"):
            try:
                argv = shlex.split(action.strip())
            except ValueError as exc:
                return Item(i, first_line(action), reason=f"cannot parse the command: {exc}")
            return getattr(self, "_" + word)(i, action, argv, obs, rejected, failed)
        return self._shell(i, action)

    def _not_applied(self, i: int, action: str, obs: str) -> Item:
        why = next((ln.strip() for ln in obs.split("\n") if ln.strip()), "")
        return Item(i, first_line(action), reason=f"the harness did not apply it: {why[:200]}")

    def _open_rel(self, i: int, action: str) -> str | None:
        return self.open_file

    def _range_edit(self, i: int, action: str, obs: str, rejected: bool, failed: bool) -> Item:
        m = _RANGE_EDIT.match(action.strip().split("\n", 1)[0].strip())
        assert m is not None
        start, end = int(m.group(1)), int(m.group(2))
        rel = self.open_file
        if rel is None or failed:
            return self._not_applied(i, action, obs or "no file open")
        body = action.split("\n", 1)[1] if "\n" in action else ""
        lines = body.split("\n")
        if "end_of_edit" in lines:
            lines = lines[: lines.index("end_of_edit")]
        old = self.text(rel) or ""
        if self.version == "0":
            cur = old.split("\n")
            if old.endswith("\n"):
                cur = cur[:-1]
            if old == "":
                cur = []
            new_lines = cur[: start - 1] + lines + cur[end:]
            new = "".join(ln + "\n" for ln in new_lines) if new_lines else "\n"
        else:
            cur = old.split("\n")
            repl = "\n".join(lines)
            cur[start - 1: end] = repl.split("\n") if repl else []
            new = "\n".join(cur)
        item = self._write(i, action, rel, new, applied=not rejected)
        if not rejected:
            self.window.goto(start - 1, len(new.splitlines()))
        return item

    def _edit(self, i: int, action: str, argv: list[str], obs: str, rejected: bool, failed: bool) -> Item:
        rel = self.open_file
        if rel is None or failed or len(argv) < 3:
            return self._not_applied(i, action, obs or "no file open or no search text")
        search, replace = argv[1], argv[2]
        replace_all = len(argv) > 3 and bool(argv[3])  # argparse type=bool: any non-empty word is True
        old = self.text(rel) or ""
        if replace_all:
            if search not in old:
                return self._not_applied(i, action, "text not found")
            new = old.replace(search, replace)
            at = len(old[: old.index(search)].split("\n"))
        else:
            lines = old.split("\n")
            lo, hi = self.window.range(len(old.splitlines()))
            window = "\n".join(lines[lo: hi + 1])
            if window.count(search) == 1:
                at = lo + len(window[: window.index(search)].split("\n")) - 1
                lines[lo: hi + 1] = window.replace(search, replace).split("\n")
                new = "\n".join(lines)
            elif old.count(search) == 1:  # the window was tracked wrongly; the text is unique anyway
                at = len(old[: old.index(search)].split("\n")) - 1
                new = old.replace(search, replace)
            else:
                return self._not_applied(i, action, "search text not unique in the window")
        item = self._write(i, action, rel, new, applied=not rejected)
        if not rejected:
            self.window.goto(at, len(new.splitlines()))
        return item

    def _insert(self, i: int, action: str, argv: list[str], obs: str, rejected: bool, failed: bool) -> Item:
        rel = self.open_file
        if rel is None or failed or len(argv) < 2:
            return self._not_applied(i, action, obs or "no file open")
        text = argv[1]
        line = int(argv[2]) if len(argv) > 2 and argv[2].lstrip("-").isdigit() else None
        old = self.text(rel) or ""
        if not text:
            return Item(i, first_line(action), reason="nothing to insert")
        text = text[:-1] if text.endswith("\n") else text
        if line is None:
            new = text if not old else (old[:-1] if old.endswith("\n") else old) + "\n" + text
            at = len(old.splitlines())
        elif line < 0:
            new = text if not old else text + "\n" + (old[1:] if old.startswith("\n") else old)
            at = 0
        else:
            lines = old.split("\n")
            lines.insert(line, text)
            new, at = "\n".join(lines), line
        item = self._write(i, action, rel, new, applied=not rejected)
        if not rejected:
            self.window.goto(at, len(new.splitlines()))
        return item

    def _create(self, i: int, action: str, argv: list[str], obs: str, rejected: bool, failed: bool) -> Item | None:
        if len(argv) < 2:
            return self._not_applied(i, action, obs or "no file name")
        rel = self.rel(argv[1])
        self.open_file, self.window.first = rel, 0
        if self.text(rel) is not None:
            return Item(i, first_line(action), reason="the file already exists: create changed nothing")
        m = _LINES_TOTAL.search(obs)
        empty = (m.group(1) == "0") if m else self.version != "0"
        return self._write(i, action, rel, "" if empty else "\n")

    def _open(self, i: int, action: str, argv: list[str], obs: str, rejected: bool, failed: bool) -> None:
        if len(argv) < 2 or "not found" in obs.split("\n", 1)[0]:
            return None
        rel = self.rel(argv[1])
        self.open_file = rel
        n = len((self.text(rel) or "").splitlines())
        self.window.clamp(self.window.first, n)
        if len(argv) > 2 and argv[2].isdigit():
            target = min(max(int(argv[2]), 1), max(n, 1))
        else:
            target = self.window.first
        self.window.goto(target - 1, n)
        return None

    def _goto(self, i: int, action: str, argv: list[str], obs: str, rejected: bool, failed: bool) -> None:
        if self.open_file and len(argv) > 1 and argv[1].isdigit():
            self.window.goto(int(argv[1]) - 1, len((self.text(self.open_file) or "").splitlines()))
        return None

    def _scroll(self, delta: int) -> None:
        if self.open_file:
            n = len((self.text(self.open_file) or "").splitlines())
            self.window.clamp(self.window.first + delta, n)

    def _scroll_down(self, i: int, action: str, argv: list[str], obs: str, rejected: bool, failed: bool) -> None:
        self._scroll(WINDOW - OVERLAP)

    def _scroll_up(self, i: int, action: str, argv: list[str], obs: str, rejected: bool, failed: bool) -> None:
        self._scroll(-(WINDOW - OVERLAP))

    def _cd(self, i: int, action: str, argv: list[str], obs: str, rejected: bool, failed: bool) -> Item | None:
        if len(argv) == 2 and not _SHELL_WORDS.search(argv[1]) and not obs.strip():
            target = argv[1] if argv[1].startswith("/") else posixpath.join(self.cwd, argv[1])
            self.cwd = posixpath.normpath(target)
            return None
        return self._shell(i, action)

    def _rm(self, i: int, action: str, argv: list[str], obs: str, rejected: bool, failed: bool) -> Item | None:
        args = argv[1:]
        paths = [a for a in args if a != "-f"]
        literal = ("\n" not in action.strip() and paths and not any(a.startswith("-") for a in paths)
                   and not any(_SHELL_WORDS.search(a) or a in ("&&", "||", ";", "|", ">", ">>") for a in args))
        if not literal:
            return self._shell(i, action)
        rels = [self.rel(p) for p in paths]
        if any(r.startswith("/") or r == "." or self.text(r) is None for r in rels) or obs.strip():
            return Item(i, first_line(action), reason="rm of a path that is not a file of the repository "
                                                     "(or rm failed): not replayed")
        patch = "".join(file_diff(r, self.text(r), None, old_mode=0o644) for r in rels)
        for r in rels:
            self.files[r] = None
            self.history.pop(r, None)
        return Item(i, first_line(action), {"op": "patch", "patch": patch, "id": f"t{i}"})

    def _str_replace_editor(self, i: int, action: str, argv: list[str], obs: str, rejected: bool,
                            failed: bool) -> Item | None:
        if len(argv) < 3:
            return self._not_applied(i, action, obs or "no command")
        cmd, rel = argv[1], self.rel(argv[2])
        opts: dict[str, str] = {}
        k = 3
        while k < len(argv):
            if argv[k].startswith("--") and k + 1 < len(argv):
                n = 2 if argv[k] == "--view_range" else 1
                opts[argv[k][2:]] = " ".join(argv[k + 1: k + 1 + n])
                k += 1 + n
            else:
                k += 1
        if cmd == "view":
            return None
        if failed:
            return self._not_applied(i, action, obs)
        cur = self.text(rel)
        if cmd == "create":
            if cur is not None or "file_text" not in opts:
                return self._not_applied(i, action, obs or "the file exists")
            self.history.setdefault(rel, []).append(opts["file_text"])
            return self._write(i, action, rel, opts["file_text"])
        if cmd == "undo_edit":
            saved = self.history.get(rel) or []
            if not saved:
                return self._not_applied(i, action, obs or "no edit history")
            return self._write(i, action, rel, saved.pop())
        if cur is None:
            return self._not_applied(i, action, obs or "no such file")
        text = _universal(cur).expandtabs()
        if cmd == "str_replace":
            old_s = opts.get("old_str")
            new_s = (opts.get("new_str") or "").expandtabs()
            if old_s is None or text.count(old_s.expandtabs()) != 1:
                return self._not_applied(i, action, obs or "old_str is not unique")
            self.history.setdefault(rel, []).append(text)
            return self._write(i, action, rel, text.replace(old_s.expandtabs(), new_s))
        if cmd == "insert":
            try:
                at = int(opts.get("insert_line", ""))
            except ValueError:
                return self._not_applied(i, action, obs or "no insert_line")
            lines = text.split("\n")
            if at < 0 or at > len(lines) or "new_str" not in opts:
                return self._not_applied(i, action, obs or "bad insert_line")
            self.history.setdefault(rel, []).append(text)
            new = "\n".join(lines[:at] + opts["new_str"].expandtabs().split("\n") + lines[at:])
            return self._write(i, action, rel, new)
        return Item(i, first_line(action), reason=f"unknown str_replace_editor command {cmd!r}")

    def _shell(self, i: int, action: str) -> Item | None:
        return None if read_only(action) else Item(
            i, first_line(action), reason="shell command: its effect on files is unknown; not replayed")


def read_only(action: str) -> bool:
    """True for a command known not to change files (conservative: anything unknown is not)."""
    text = action.strip()
    if not text:
        return True
    try:
        tokens = shlex.split(text, posix=True)
    except ValueError:
        return False
    if any(t in (">", ">>", "tee") or t.startswith((">", "1>", "2>")) or ">" in t and not t.startswith("-")
           for t in tokens if t not in ("2>&1",)):
        return False
    if "\n" in text:
        return False
    parts: list[list[str]] = [[]]
    for t in tokens:
        if t in ("&&", "||", ";", "|"):
            parts.append([])
        else:
            parts[-1].append(t)
    for part in parts:
        if not part:
            continue
        word = part[0]
        if word == "git":
            if len(part) < 2 or part[1] not in READ_ONLY_GIT:
                return False
        elif word == "find":
            if any(t in ("-delete", "-exec", "-execdir", "-fprint", "-fprintf", "-fls") for t in part):
                return False
        elif word == "open" or word == "str_replace_editor" and len(part) > 1 and part[1] == "view":
            continue
        elif word not in READ_ONLY_TOOLS:
            return False
    return True


def _delete_step(rel: str, text: str, step_id: str) -> dict[str, Any]:
    return {"op": "patch", "patch": file_diff(rel, text, None, old_mode=0o644), "id": step_id}


def convert(traj: Mapping[str, Any], read_base: Callable[[str], bytes | None]) -> tuple[list[Item], Converter]:
    """Every item of a trajectory, and the converter (its ``files``: the final texts it expects)."""
    version = "0" if traj.get("environment") == "swe_main" else "1"
    conv = Converter(read_base, root=repo_root(traj), version=version)
    items: list[Item] = []
    for i, step in enumerate(traj.get("trajectory") or []):
        action = step.get("action") if isinstance(step, Mapping) else None
        if not isinstance(action, str):
            continue
        item = conv.convert(i, action, str(step.get("observation") or ""))
        if item is not None:
            items.append(item)
    return items, conv


__all__ = ["Converter", "base_commit", "convert", "load", "read_only", "repo_root", "replay_config",
           "submission"]
