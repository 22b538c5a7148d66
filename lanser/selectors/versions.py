"""Stale selectors: the text a ``?v=`` selector was made against, and positions mapped to now.

A selector carrying ``v=<blob id>`` was made when the file had that content.
If the file has changed, the old text is looked up (Lanser's snapshot store
first, then the git object store of the repository around the workspace) and
the position is carried through a line diff, then a character diff inside the
changed block.  The caller raises E/VERSION_SKEW when the old text is missing
or the position did not survive.

All positions in this module are 0-based and in code points.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from ..errors import LanserError
from ..fsutil import write_atomic
from ..workspace import Workspace, blob_id, decode_source

SNAPSHOT_DIR = Path(".lanser") / "snapshots"
MAX_CHAR_DIFF = 200_000  # code points in a changed block before falling back to line arithmetic


# -- old text --------------------------------------------------------------

def snapshot_path(ws: Workspace, doc_version: str) -> Path:
    return ws.root / SNAPSHOT_DIR / doc_version


def save_snapshot(ws: Workspace, raw: bytes) -> str:
    """Store ``raw`` in ``.lanser/snapshots/<blob id>`` (atomically, once) and return the id.
    Every apply keeps the content it replaced here (:mod:`lanser.edits.transaction`), so
    text an agent saw that git has no blob for can still be found."""
    oid = blob_id(raw)
    target = snapshot_path(ws, oid)
    if target.is_file():
        return oid
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, raw, durable=False)
    return oid


def old_blob(ws: Workspace, doc_version: str) -> bytes | None:
    """The bytes of blob ``doc_version`` (40 hex), verified against the id; None if absent."""
    oid = doc_version.lower()
    if len(oid) != 40 or any(c not in "0123456789abcdef" for c in oid):
        return None
    path = snapshot_path(ws, oid)
    try:
        data = path.read_bytes() if path.is_file() else None
    except OSError:
        data = None
    if data is not None and blob_id(data) == oid:
        return data
    data = _git_blob(ws.root, oid)
    if data is not None and blob_id(data) == oid:
        return data
    return None


def _git_blob(root: Path, oid: str) -> bytes | None:
    """Read a blob from the git repository containing ``root`` (GitPython's ``git cat-file``)."""
    try:
        import git  # GitPython; imported lazily: it spawns git on first use
    except ImportError:
        return None
    try:
        repo = git.Repo(root, search_parent_directories=True)
    except Exception:  # noqa: BLE001 - not a repository, or git missing: no old text
        return None
    try:
        binsha = bytes.fromhex(oid)
        if repo.odb.info(binsha).type != b"blob":  # info() first: an unread stream blocks cat-file
            return None
        return bytes(repo.odb.stream(binsha).read())
    except Exception:  # noqa: BLE001 - BadObject/BadName/ValueError: the blob is not there
        return None
    finally:
        repo.close()


def old_text_for(ws: Workspace, rel: str, doc_version: str) -> str | None:
    """The decoded text of blob ``doc_version`` for file ``rel``; None if not found or undecodable."""
    data = old_blob(ws, doc_version)
    if data is None:
        return None
    try:
        return decode_source(data, rel).text
    except LanserError:
        return None


# -- mapping ---------------------------------------------------------------

class PositionMapper:
    """Maps positions of ``old`` to ``new`` through one line diff (computed once)."""

    def __init__(self, old: str, new: str) -> None:
        self.old_lines = old.split("\n")
        self.new_lines = new.split("\n")
        matcher = difflib.SequenceMatcher(None, self.old_lines, self.new_lines, autojunk=False)
        self.opcodes = matcher.get_opcodes()

    def map(self, line: int, col: int) -> tuple[int, int] | None:
        """New (line, col) of old (line, col); None when the line was deleted.

        Inside a replaced block of lines the position follows a character
        diff of the block: unchanged characters keep their place, a position
        inside replaced characters keeps its offset into the replacement
        (clamped to it), a position inside deleted characters moves to where
        they were.  A line whose every character was deleted counts as deleted.
        """
        if not 0 <= line < len(self.old_lines):
            return None
        col = max(0, min(col, len(self.old_lines[line])))
        for tag, i1, i2, j1, j2 in self.opcodes:
            if not i1 <= line < i2:
                continue
            if tag == "equal":
                return j1 + line - i1, col
            if tag == "delete":
                return None
            return self._map_block(i1, i2, j1, j2, line, col)
        return None

    def _map_block(self, i1: int, i2: int, j1: int, j2: int, line: int, col: int) -> tuple[int, int] | None:
        old_block = "\n".join(self.old_lines[i1:i2])
        new_block = "\n".join(self.new_lines[j1:j2])
        if len(old_block) + len(new_block) > MAX_CHAR_DIFF:
            new_line = j1 + min(line - i1, j2 - j1 - 1)
            return new_line, min(col, len(self.new_lines[new_line]))
        line_start = sum(len(s) + 1 for s in self.old_lines[i1:line])
        line_end = line_start + len(self.old_lines[line])
        offset = line_start + col
        ops = difflib.SequenceMatcher(None, old_block, new_block, autojunk=False).get_opcodes()
        if line_end > line_start and all(
                tag == "delete" for tag, a1, a2, _, _ in ops if a1 < line_end and a2 > line_start):
            return None
        new_offset = len(new_block)
        for tag, a1, a2, b1, b2 in ops:
            if a1 <= offset < a2:
                if tag == "equal":
                    new_offset = b1 + offset - a1
                elif tag == "replace":
                    new_offset = b1 + min(offset - a1, b2 - b1)
                else:  # delete
                    new_offset = b1
                break
        before = new_block[:new_offset]
        return j1 + before.count("\n"), new_offset - (before.rfind("\n") + 1)


def map_position(old_text: str, new_text: str, line: int, col: int) -> tuple[int, int] | None:
    """Map 0-based code-point (line, col) of ``old_text`` into ``new_text``; None if its line was deleted."""
    return PositionMapper(old_text, new_text).map(line, col)


def map_range(old_text: str, new_text: str, start_line: int, start_col: int, end_line: int,
              end_col: int) -> tuple[int, int, int, int] | None:
    """Map a 0-based code-point range; None when nothing of it survives.

    Partial deletions shrink the range to what survives: a start on a deleted
    line moves to the beginning of the first surviving line after it (within
    the range), an end on a deleted line moves to the end of the last
    surviving line before it.  If no line of the range survives, or the
    mapped end would precede the mapped start, the result is None.
    """
    mapper = PositionMapper(old_text, new_text)
    start = mapper.map(start_line, start_col)
    line = start_line + 1
    while start is None and line <= end_line:
        start = mapper.map(line, 0) if line < end_line or end_col > 0 else None
        line += 1
    end = mapper.map(end_line, end_col)
    line = end_line - 1
    while end is None and line >= start_line:
        end = mapper.map(line, len(mapper.old_lines[line]))
        line -= 1
    if start is None or end is None or end < start:
        return None
    return (*start, *end)
