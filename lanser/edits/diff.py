"""Unified diffs in git's format: writing them, parsing them, applying their hunks.

Pure: no file system access.  Lines are split on ``\\n`` only and keep their
line ending, so a CRLF file's diff lines carry their ``\\r`` exactly as
``git diff`` prints them.  A last line without a newline gets git's
``\\ No newline at end of file`` marker.

Diffs are built over ``str`` lines.  For the patch handed to ``git apply``
bytes are mapped 1:1 to characters with latin-1 (:func:`git_patch`), so the
patch matches the file's bytes whatever its encoding; the human preview
decodes each file with its own source encoding (:func:`file_diff`).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from ..errors import ApplyConflict

NULL_ID = "0" * 40
CONTEXT = 3


def split_keepends(text: str) -> list[str]:
    """Split on ``\\n`` only, keeping it (``str.splitlines`` splits on more)."""
    if not text:
        return []
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _range(start: int, length: int) -> str:
    # git's (and difflib's) hunk-range convention: 1-based, ",1" omitted, empty -> line before
    beginning = start + 1
    if length == 1:
        return f"{beginning}"
    if length == 0:
        beginning -= 1
    return f"{beginning},{length}"


_FUNC_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$")


def _funcname(old: list[str], before: int) -> str:
    """git's default hunk heading: the nearest earlier line starting with a
    letter, ``_`` or ``$``, cut to 80 characters, trailing whitespace dropped."""
    for k in range(before - 1, -1, -1):
        line = old[k]
        if line[:1] in _FUNC_START:
            return " " + line.rstrip("\n")[:80].rstrip()
    return ""


def _emit(prefix: str, line: str, out: list[str]) -> None:
    if line.endswith("\n"):
        out.append(prefix + line)
    else:
        out.append(prefix + line + "\n")
        out.append("\\ No newline at end of file\n")


def hunks(old: list[str], new: list[str], context: int = CONTEXT) -> list[str]:
    """The ``@@`` hunks (with their lines) turning ``old`` into ``new``."""
    out: list[str] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        i1, i2 = group[0][1], group[-1][2]
        j1, j2 = group[0][3], group[-1][4]
        out.append(f"@@ -{_range(i1, i2 - i1)} +{_range(j1, j2 - j1)} @@{_funcname(old, i1)}\n")
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                for line in old[a1:a2]:
                    _emit(" ", line, out)
                continue
            for line in old[a1:a2]:
                _emit("-", line, out)
            for line in new[b1:b2]:
                _emit("+", line, out)
    return out


def _quote(path: str) -> str:
    # git quotes paths with special characters in C style
    if re.search(r'[\x00-\x1f"\\\x7f]', path) or path != path.strip():
        esc = path.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t").replace("\n", "\\n")
        return f'"{esc}"'
    return path


def file_diff(path: str, old: str | None, new: str | None, *, old_mode: int | None = None,
              new_mode: int | None = None, old_id: str = NULL_ID, new_id: str = NULL_ID,
              abbrev: int = 7, binary: bool = False) -> str:
    """One file's section of a git-style diff (``a/path`` and ``b/path``).

    ``old`` None means the file is created, ``new`` None that it is deleted.
    Modes are ``st_mode`` permission bits (``0o644``, ``0o755``).
    """
    a, b = _quote("a/" + path), _quote("b/" + path)
    oid, nid = old_id[:abbrev], new_id[:abbrev]
    out = [f"diff --git {a} {b}\n"]
    om = _git_mode(old_mode)
    nm = _git_mode(new_mode)
    if old is None:
        out.append(f"new file mode {nm}\n")
        out.append(f"index {NULL_ID[:abbrev]}..{nid}\n")
    elif new is None:
        out.append(f"deleted file mode {om}\n")
        out.append(f"index {oid}..{NULL_ID[:abbrev]}\n")
    else:
        if om != nm:
            out.append(f"old mode {om}\n")
            out.append(f"new mode {nm}\n")
        if old == new:
            return "".join(out)
        out.append(f"index {oid}..{nid}" + ("" if om != nm else f" {om}") + "\n")
    if binary:
        out.append(f"Binary files {a if old is not None else '/dev/null'} and "
                   f"{b if new is not None else '/dev/null'} differ\n")
        return "".join(out)
    old_lines = split_keepends(old or "")
    new_lines = split_keepends(new or "")
    if not old_lines and not new_lines:
        return "".join(out)
    out.append(f"--- {a if old is not None else '/dev/null'}\n")
    out.append(f"+++ {b if new is not None else '/dev/null'}\n")
    out.extend(hunks(old_lines, new_lines))
    return "".join(out)


def _git_mode(mode: int | None) -> str:
    if mode is None:
        return "100644"
    return "100755" if mode & 0o111 else "100644"


# -- parsing ---------------------------------------------------------------

@dataclass(frozen=True)
class Hunk:
    """One ``@@`` hunk: 1-based starts as written, lines as ``(tag, text)``.

    ``tag`` is ``" "``, ``"-"`` or ``"+"``; ``text`` keeps its ``\\n`` unless
    the line was followed by ``\\ No newline at end of file``.
    """

    old_start: int
    old_len: int
    new_start: int
    new_len: int
    header: str
    lines: tuple[tuple[str, str], ...]

    @property
    def old_lines(self) -> list[str]:
        return [t for tag, t in self.lines if tag in " -"]

    @property
    def new_lines(self) -> list[str]:
        return [t for tag, t in self.lines if tag in " +"]


@dataclass(frozen=True)
class FilePatch:
    """One file's part of a diff; paths are without ``a/``/``b/``; None is /dev/null."""

    old_path: str | None
    new_path: str | None
    hunks: tuple[Hunk, ...] = ()
    old_mode: int | None = None
    new_mode: int | None = None
    binary: bool = False

    @property
    def path(self) -> str:
        return self.new_path if self.new_path is not None else self.old_path  # type: ignore[return-value]


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")


def _unquote(s: str) -> str:
    s = s.strip()
    if s.startswith('"') and s.endswith('"') and len(s) >= 2:
        body = s[1:-1]
        raw = body.encode("latin-1", "backslashreplace").decode("unicode_escape")
        try:
            return raw.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return raw
    return s


def _strip_prefix(p: str) -> str | None:
    p = _unquote(p.split("\t")[0])
    if p == "/dev/null":
        return None
    if p.startswith(("a/", "b/")):
        return p[2:]
    return p


@dataclass
class _Building:
    old_path: str | None = None
    new_path: str | None = None
    old_mode: int | None = None
    new_mode: int | None = None
    binary: bool = False
    created: bool = False
    deleted: bool = False
    hunks: list[Hunk] = field(default_factory=list)
    git_paths: tuple[str, str] | None = None

    def done(self) -> FilePatch:
        old, new = self.old_path, self.new_path
        if self.git_paths and old is None and new is None and not self.hunks:
            old, new = self.git_paths
        if self.git_paths and not self.hunks:
            if self.created:
                old, new = None, self.git_paths[1]
            elif self.deleted:
                old, new = self.git_paths[0], None
        return FilePatch(old, new, tuple(self.hunks), self.old_mode, self.new_mode, self.binary)


def parse_unified_diff(text: str) -> list[FilePatch]:
    """Parse a unified diff (``git diff`` output or plain ``---``/``+++`` sections).

    Raises ApplyConflict on a malformed diff (a hunk whose line counts do not
    add up, a hunk outside any file section).
    """
    lines = split_keepends(text)
    patches: list[FilePatch] = []
    cur: _Building | None = None
    i = 0

    def finish() -> None:
        nonlocal cur
        if cur is not None and (cur.hunks or cur.git_paths or cur.old_path or cur.new_path):
            patches.append(cur.done())
        cur = None

    while i < len(lines):
        line = lines[i].rstrip("\n")
        if line.endswith("\r") and not line.startswith(("@@",)):
            stripped = line[:-1]
        else:
            stripped = line
        if stripped.startswith("diff --git "):
            finish()
            cur = _Building()
            m = re.match(r'^diff --git ("(?:[^"\\]|\\.)*"|\S+) ("(?:[^"\\]|\\.)*"|\S+)$', stripped)
            if m:
                a, b = _strip_prefix(m.group(1)), _strip_prefix(m.group(2))
                if a is not None and b is not None:
                    cur.git_paths = (a, b)
                    cur.old_path, cur.new_path = a, b
            i += 1
            continue
        if stripped.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            if cur is None or cur.hunks:
                finish()
                cur = _Building()
            cur.old_path = _strip_prefix(stripped[4:])
            cur.new_path = _strip_prefix(lines[i + 1].rstrip("\n").rstrip("\r")[4:])
            i += 2
            continue
        if stripped.startswith("@@"):
            if cur is None:
                raise ApplyConflict(f"diff line {i + 1}: hunk outside a file section",
                                    details={"line": i + 1})
            hunk, i = _parse_hunk(lines, i)
            cur.hunks.append(hunk)
            continue
        if cur is not None:
            if stripped.startswith("new file mode "):
                cur.created = True
                cur.new_mode = int(stripped.split()[-1], 8)
            elif stripped.startswith("deleted file mode "):
                cur.deleted = True
                cur.old_mode = int(stripped.split()[-1], 8)
            elif stripped.startswith("old mode "):
                cur.old_mode = int(stripped.split()[-1], 8)
            elif stripped.startswith("new mode "):
                cur.new_mode = int(stripped.split()[-1], 8)
            elif stripped.startswith("rename from "):
                cur.old_path = _unquote(stripped[len("rename from "):])
            elif stripped.startswith("rename to "):
                cur.new_path = _unquote(stripped[len("rename to "):])
                if cur.git_paths:
                    cur.git_paths = (cur.old_path or cur.git_paths[0], cur.new_path)
            elif stripped.startswith("index ") and cur.old_mode is None:
                parts = stripped.split()
                if len(parts) == 3:
                    cur.old_mode = cur.new_mode = int(parts[2], 8)
            elif stripped.startswith(("Binary files ", "GIT binary patch")):
                cur.binary = True
        i += 1
    finish()
    return patches


def _parse_hunk(lines: list[str], i: int) -> tuple[Hunk, int]:
    header = lines[i].rstrip("\n").rstrip("\r")
    m = _HUNK.match(header)
    if not m:
        raise ApplyConflict(f"diff line {i + 1}: malformed hunk header {header!r}",
                            details={"line": i + 1, "hunk": header})
    old_start, new_start = int(m.group(1)), int(m.group(3))
    old_len = int(m.group(2)) if m.group(2) is not None else 1
    new_len = int(m.group(4)) if m.group(4) is not None else 1
    body: list[tuple[str, str]] = []
    o = n = 0
    i += 1
    while i < len(lines):
        line = lines[i]
        if line.startswith("\\"):  # "\ No newline at end of file": the line before has none
            if body and body[-1][1].endswith("\n"):
                body[-1] = (body[-1][0], body[-1][1][:-1])
            i += 1
            continue
        if o >= old_len and n >= new_len:
            break
        tag = line[:1]
        if line in ("\n", "\r\n"):  # an empty context line whose space was stripped
            tag, line = " ", " " + line
        if tag not in " -+":
            break
        body.append((tag, line[1:]))
        if tag in " -":
            o += 1
        if tag in " +":
            n += 1
        i += 1
    if o != old_len or n != new_len:
        raise ApplyConflict(
            f"malformed hunk {header!r}: expected {old_len} old and {new_len} new lines, "
            f"found {o} and {n}", details={"hunk": header})
    return Hunk(old_start, old_len, new_start, new_len, header, tuple(body)), i


# -- applying hunks ----------------------------------------------------------

def _eq(a: str, b: str) -> bool:
    """Lines equal up to their line ending (``\\r\\n`` vs ``\\n``), but a missing
    final newline still counts."""
    if a == b:
        return True
    a_nl, b_nl = a.endswith("\n"), b.endswith("\n")
    if a_nl != b_nl:
        return False
    return a.rstrip("\n").removesuffix("\r") == b.rstrip("\n").removesuffix("\r")


def _matches(lines: list[str], at: int, want: list[str]) -> bool:
    if at < 0 or at + len(want) > len(lines):
        return False
    return all(_eq(lines[at + k], w) for k, w in enumerate(want))


def apply_hunks(text: str, hunks: tuple[Hunk, ...] | list[Hunk], *, path: str = "",
                newline: str | None = None) -> str:
    """Apply hunks to ``text`` as ``git apply`` does: each hunk's old lines
    (context and removals) must match exactly, at the stated line or, failing
    that, at the nearest offset (no fuzz).  Context may differ from the file only
    in ``\\r\\n`` vs ``\\n``; added lines take the file's newline.

    Raises ApplyConflict with the hunk header and the expected lines when a
    hunk's context does not match.
    """
    nl = newline or ("\r\n" if "\r\n" in text else "\n")
    lines = split_keepends(text)
    out: list[str] = []
    pos = 0  # first line of ``lines`` not yet copied
    shift = 0
    for h in hunks:
        want = h.old_lines
        at = (h.old_start - 1 if h.old_len else h.old_start) + shift
        if h.old_len == 0 and h.old_start == 0:
            at = 0
        found = None
        if _matches(lines, at, want) and at >= pos:
            found = at
        else:
            for delta in range(1, len(lines) + 1):
                for cand in (at - delta, at + delta):
                    if cand >= pos and _matches(lines, cand, want):
                        found = cand
                        break
                if found is not None:
                    break
        if found is None:
            raise ApplyConflict(
                f"{path or 'file'}: hunk {h.header} does not apply (its context does not "
                f"match the file)",
                details={"file": path, "hunk": h.header, "expected": want})
        shift += found - at
        out.extend(lines[pos:found])
        for tag, t in h.lines:
            if tag == "+":
                if nl == "\r\n" and t.endswith("\n") and not t.endswith("\r\n"):
                    t = t[:-1] + "\r\n"
                out.append(t)
            elif tag == " ":
                out.append(lines[found])
                found += 1
            else:
                found += 1
        pos = found
    out.extend(lines[pos:])
    return "".join(out)
