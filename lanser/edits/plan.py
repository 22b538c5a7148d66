"""Edit plans: an immutable set of whole-file changes, built before anything is written.

A plan records, for every file it touches, the exact bytes it was built from
(``before``; None when the file did not exist) and the bytes it will write
(``after``; None when the file is deleted).  Checks compare ``before`` with
the disk at apply time, so a plan is never applied over content it did not see.

Builders read the workspace (through ``Workspace.resolve``: the jail) but never
write; paths are the workspace-relative real paths (symlinks inside the
workspace resolved), so two names of one file are one change.

Renames are a delete of the old path and a create of the new path (the
created file keeps the old file's mode and remembers ``renamed_from``).
"""

from __future__ import annotations

import codecs
import json
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .. import codec
from ..errors import ApplyConflict, FsPermissions, LanserError
from ..workspace import SourceFile, Workspace, blob_id, decode_source
from . import diff as difflib_
from .checks import check_case_only_rename
from .textedits import apply_text_edits


@dataclass(frozen=True)
class FileChange:
    """One file's change.  Modes are permission bits (``0o644``); None means
    "the default for a new file" (``0o666 & ~umask``)."""

    path: str
    before: bytes | None
    after: bytes | None
    before_mode: int | None = None
    after_mode: int | None = None
    renamed_from: str | None = None

    @property
    def action(self) -> str:
        if self.before is None:
            return "create"
        if self.after is None:
            return "delete"
        return "modify"

    @property
    def before_id(self) -> str:
        return blob_id(self.before) if self.before is not None else difflib_.NULL_ID

    @property
    def after_id(self) -> str:
        return blob_id(self.after) if self.after is not None else difflib_.NULL_ID

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "action": self.action,
                               "before": self.before_id if self.before is not None else None,
                               "after": self.after_id if self.after is not None else None}
        if self.renamed_from is not None:
            out["renamedFrom"] = self.renamed_from
        if (self.before_mode is not None and self.after_mode is not None
                and self.before_mode != self.after_mode):
            out["mode"] = [oct(self.before_mode), oct(self.after_mode)]
        return out


@dataclass(frozen=True)
class EditPlan:
    """An immutable plan: file changes sorted by path, plus where they came from."""

    changes: tuple[FileChange, ...] = ()
    label: str = ""
    encoding: str = "utf-16"  # the position encoding of the source WorkspaceEdit
    workspace_edit_json: str | None = field(default=None, repr=False)

    @property
    def is_noop(self) -> bool:
        return not self.changes

    @property
    def paths(self) -> list[str]:
        return [c.path for c in self.changes]

    @property
    def workspace_edit(self) -> Any:
        return json.loads(self.workspace_edit_json) if self.workspace_edit_json else None

    def change(self, path: str) -> FileChange | None:
        for c in self.changes:
            if c.path == path:
                return c
        return None

    def diff(self) -> str:
        return preview(self)

    def to_json(self) -> dict[str, Any]:
        """``{"files": [...sorted by path...], "diff": "..."}`` for the bundle's ``edits``."""
        return {"files": [c.to_json() for c in self.changes], "diff": preview(self)}


def make_plan(changes: Iterable[FileChange], *, label: str = "", encoding: str = "utf-16",
              workspace_edit: Any = None) -> EditPlan:
    """A plan from changes: sorted by path, changes that change nothing dropped."""
    kept: dict[str, FileChange] = {}
    for c in changes:
        if c.path in kept:
            raise ApplyConflict(f"two changes for one file: {c.path}",
                                details={"reason": "duplicate", "file": c.path})
        if c.before == c.after and (c.after is None or c.after_mode is None
                                    or c.before_mode == c.after_mode):
            continue
        kept[c.path] = c
    we = json.dumps(workspace_edit, sort_keys=True, ensure_ascii=False) if workspace_edit is not None else None
    return EditPlan(tuple(kept[p] for p in sorted(kept)), label, encoding, we)


# -- preview -----------------------------------------------------------------

def display_text(path: str, data: bytes | None) -> str | None:
    """Decoded text for the human diff (BOM shown as U+FEFF); raises ValueError if binary."""
    if data is None:
        return None
    if b"\0" in data:
        raise ValueError("binary")
    try:
        sf = decode_source(data, path)
    except LanserError:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("binary") from None
    return ("\ufeff" if sf.bom else "") + sf.text


def _section(c: FileChange, *, for_git: bool) -> str:
    if for_git:
        old = c.before.decode("latin-1") if c.before is not None else None
        new = c.after.decode("latin-1") if c.after is not None else None
        binary = False
    else:
        try:
            old, new = display_text(c.path, c.before), display_text(c.path, c.after)
            binary = False
        except ValueError:
            old = "" if c.before is not None else None
            new = "" if c.after is not None else None
            binary = True
    return difflib_.file_diff(c.path, old, new, old_mode=c.before_mode,
                              new_mode=c.after_mode if c.after_mode is not None else c.before_mode,
                              old_id=c.before_id, new_id=c.after_id,
                              abbrev=40 if for_git else 7, binary=binary)


def preview(plan: EditPlan) -> str:
    """The plan as a git-style unified diff (``a/path`` ``b/path``, workspace-relative)."""
    return "".join(_section(c, for_git=False) for c in plan.changes)


def git_patch(plan: EditPlan) -> bytes:
    """The plan as a byte-exact patch for ``git apply`` (full blob ids)."""
    return "".join(_section(c, for_git=True) for c in plan.changes).encode("latin-1")


# -- building ------------------------------------------------------------------

def _mode_of(real: Path) -> int | None:
    try:
        return stat.S_IMODE(real.stat().st_mode)
    except FileNotFoundError:
        return None


class Draft:
    """A copy-on-write view of the workspace files a plan touches (reads only)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.orig: dict[str, tuple[bytes | None, int | None]] = {}
        self.cur: dict[str, tuple[bytes | None, int | None]] = {}
        self.renamed_from: dict[str, str] = {}

    def rel(self, user_path: str) -> str:
        """The workspace-relative real path (jail: FsPermissions outside)."""
        _, rel = self.ws.resolve(user_path, must_exist=False)
        if rel == ".":
            raise FsPermissions("the workspace root itself cannot be edited as a file")
        if rel.split("/")[0] in (".git", ".lanser"):
            raise FsPermissions(f"{rel}: edits inside .git/ or .lanser/ are refused")
        return rel

    def _load(self, rel: str) -> None:
        if rel in self.orig:
            return
        real = self.ws.abspath(rel)
        if real.is_dir():
            raise ApplyConflict(f"{rel} is a directory; only files can be edited",
                                details={"file": rel, "reason": "directory"})
        try:
            data = real.read_bytes()
        except FileNotFoundError:
            self.orig[rel] = (None, None)
        except PermissionError:
            raise FsPermissions(f"cannot read {rel}: permission denied") from None
        else:
            self.orig[rel] = (data, _mode_of(real))
        self.cur[rel] = self.orig[rel]

    def get(self, rel: str) -> tuple[bytes | None, int | None]:
        self._load(rel)
        return self.cur[rel]

    def exists(self, rel: str) -> bool:
        return self.get(rel)[0] is not None

    def set(self, rel: str, data: bytes | None, mode: int | None = None) -> None:
        self._load(rel)
        if mode is None and data is not None:
            mode = self.cur[rel][1]
        self.cur[rel] = (data, mode)

    def changes(self) -> list[FileChange]:
        out = []
        for rel in sorted(self.cur):
            before, bmode = self.orig[rel]
            after, amode = self.cur[rel]
            out.append(FileChange(rel, before, after, bmode, amode if after is not None else None,
                                  self.renamed_from.get(rel) if before is None else None))
        return out


def _uri_path(doc: Any) -> str:
    if isinstance(doc, Mapping):
        doc = doc.get("uri")
    if not isinstance(doc, str) or not doc:
        raise ApplyConflict(f"WorkspaceEdit entry without a uri: {doc!r:.200}")
    return doc


def _opts(op: Mapping[str, Any]) -> Mapping[str, Any]:
    o = op.get("options")
    return o if isinstance(o, Mapping) else {}


def _edit_file(draft: Draft, rel: str, edits: list[Mapping[str, Any]], encoding: str) -> None:
    data, mode = draft.get(rel)
    if data is None:
        raise ApplyConflict(f"the edit targets {rel}, which does not exist",
                            details={"file": rel, "reason": "missing"})
    sf = decode_source(data, rel)
    draft.set(rel, sf.encode(apply_text_edits(sf.text, edits, encoding)), mode)


def plan_from_workspace_edit(ws: Workspace, edit: Mapping[str, Any], *, encoding: str = "utf-16",
                             label: str = "") -> EditPlan:
    """Build a plan from an LSP ``WorkspaceEdit`` (a plain JSON dict).

    ``documentChanges`` (TextDocumentEdit, CreateFile, RenameFile, DeleteFile)
    are applied in order, each on the result of the ones before; otherwise
    ``changes`` (uri -> TextEdit[]) in uri order.  Positions are 0-based in
    ``encoding`` (the server's negotiated one).  Raises FsPermissions for a
    path outside the jail, ApplyConflict for overlapping edits or impossible
    resource operations.
    """
    codec.check_encoding(encoding)
    draft = Draft(ws)
    doc_changes = edit.get("documentChanges")
    if doc_changes:
        for op in doc_changes:
            kind = op.get("kind")
            if kind == "create":
                rel = draft.rel(_uri_path(op["uri"]))
                o = _opts(op)
                if draft.exists(rel):
                    if o.get("overwrite"):
                        draft.set(rel, b"")
                    elif not o.get("ignoreIfExists"):
                        raise ApplyConflict(f"CreateFile: {rel} already exists",
                                            details={"file": rel, "reason": "exists"})
                else:
                    draft.set(rel, b"")
            elif kind == "rename":
                old = draft.rel(_uri_path(op["oldUri"]))
                new = draft.rel(_uri_path(op["newUri"]))
                _rename(draft, old, new, _opts(op))
            elif kind == "delete":
                rel = draft.rel(_uri_path(op["uri"]))
                if not draft.exists(rel):
                    if not _opts(op).get("ignoreIfNotExists"):
                        raise ApplyConflict(f"DeleteFile: {rel} does not exist",
                                            details={"file": rel, "reason": "missing"})
                else:
                    draft.set(rel, None)
            elif "textDocument" in op:
                rel = draft.rel(_uri_path(op["textDocument"]))
                _edit_file(draft, rel, list(op.get("edits") or []), encoding)
            else:
                raise ApplyConflict(f"unknown documentChanges entry: {op!r:.200}")
    else:
        for uri in sorted((edit.get("changes") or {})):
            rel = draft.rel(uri)
            _edit_file(draft, rel, list(edit["changes"][uri] or []), encoding)
    return make_plan(draft.changes(), label=label, encoding=encoding, workspace_edit=dict(edit))


def _rename(draft: Draft, old: str, new: str, o: Mapping[str, Any]) -> None:
    data, mode = draft.get(old)
    if data is None:
        raise ApplyConflict(f"RenameFile: {old} does not exist", details={"file": old, "reason": "missing"})
    if old == new:
        return
    check_case_only_rename(draft.ws, old, new)
    if draft.exists(new):
        if o.get("ignoreIfExists") and not o.get("overwrite"):
            return
        if not o.get("overwrite"):
            raise ApplyConflict(f"RenameFile: {new} already exists", details={"file": new, "reason": "exists"})
    draft.set(new, data, mode)
    draft.set(old, None)
    draft.renamed_from[new] = draft.renamed_from.pop(old, old)


_COOKIE = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


def encode_new_text(text: str, *, keep_bom: bool = False) -> bytes:
    """Encode a new file's text: with its PEP 263 coding when declared on line 1
    or 2 (BOM dropped for non-UTF-8), else UTF-8; a leading U+FEFF or
    ``keep_bom`` writes a UTF-8 BOM."""
    bom = keep_bom or text.startswith("\ufeff")
    text = text.removeprefix("\ufeff")
    enc = "utf-8"
    for line in text.split("\n")[:2]:
        m = _COOKIE.match(line)
        if m:
            try:
                enc = codecs.lookup(m.group(1)).name
            except LookupError:
                raise ApplyConflict(f"unknown source encoding {m.group(1)!r} declared") from None
            break
        if line.strip() and not line.lstrip().startswith("#"):
            break
    try:
        data = text.encode(enc)
    except UnicodeEncodeError as exc:
        raise ApplyConflict(f"the new text cannot be encoded as its declared {enc} "
                            f"(character {exc.start})") from None
    if enc in ("utf-8",) and bom:
        data = codecs.BOM_UTF8 + data
    return data


def plan_write(ws: Workspace, path: str, content: str | bytes, *, label: str = "") -> EditPlan:
    """A plan that creates or overwrites one file with ``content``.

    ``bytes`` are written as they are.  Text is encoded with its PEP 263
    coding when it declares one, else UTF-8; an existing file's UTF-8 BOM is
    kept.  Line endings are written as given.
    """
    draft = Draft(ws)
    rel = draft.rel(path)
    data, _mode = draft.get(rel)
    if isinstance(content, bytes):
        new = content
    else:
        new = encode_new_text(content, keep_bom=bool(data and data.startswith(codecs.BOM_UTF8)))
    draft.set(rel, new)
    return make_plan(draft.changes(), label=label or f"write {rel}")


def _patch_text(data: bytes, rel: str) -> tuple[str, SourceFile | None]:
    """Text a patch applies to: the decoded file with its BOM as U+FEFF."""
    try:
        sf = decode_source(data, rel)
    except LanserError:
        try:
            return data.decode("utf-8"), None
        except UnicodeDecodeError:
            raise ApplyConflict(f"{rel} is not text; binary patches are not supported",
                                details={"file": rel, "reason": "binary"}) from None
    return ("\ufeff" if sf.bom else "") + sf.text, sf


def _encode_patched(text: str, sf: SourceFile | None) -> bytes:
    if sf is None:
        return encode_new_text(text)
    bom = text.startswith("\ufeff")
    body = text.removeprefix("\ufeff")
    try:
        data = body.encode(sf.encoding)
    except UnicodeEncodeError as exc:
        raise ApplyConflict(f"{sf.rel}: the patched text cannot be encoded as {sf.encoding} "
                            f"(character {exc.start})") from None
    return codecs.BOM_UTF8 + data if bom else data


def plan_from_unified_diff(ws: Workspace, diff_text: str, *, label: str = "patch") -> EditPlan:
    """Build a plan from a git-style unified diff (``git diff`` output).

    Hunks apply as with ``git apply``: context must match exactly (up to
    CRLF vs LF), at the stated line or the nearest offset.  A hunk that does
    not match raises ApplyConflict with the hunk in ``details``.  Creates,
    deletes, renames and mode changes are supported; binary patches are not.
    """
    patches = difflib_.parse_unified_diff(diff_text)
    if not patches and diff_text.strip():
        raise ApplyConflict("the patch contains no file sections (not a unified diff?)")
    draft = Draft(ws)
    for fp in patches:
        if fp.binary:
            raise ApplyConflict(f"{fp.path}: binary patches are not supported",
                                details={"file": fp.path, "reason": "binary"})
        if fp.old_path is None:
            rel = draft.rel(fp.new_path or "")
            if draft.exists(rel):
                raise ApplyConflict(f"{rel}: the patch creates it, but it already exists",
                                    details={"file": rel, "reason": "exists"})
            text = difflib_.apply_hunks("", fp.hunks, path=rel, newline="\n")
            draft.set(rel, encode_new_text(text), _git_mode_bits(None, fp.new_mode))
            continue
        old = draft.rel(fp.old_path)
        data, mode = draft.get(old)
        if data is None:
            raise ApplyConflict(f"{old}: the patch changes it, but it does not exist",
                                details={"file": old, "reason": "missing"})
        text, sf = _patch_text(data, old)
        new_text = difflib_.apply_hunks(text, fp.hunks, path=old) if fp.hunks else text
        if fp.new_path is None:
            if new_text.removeprefix("\ufeff"):
                raise ApplyConflict(f"{old}: the patch deletes it, but the file has more content",
                                    details={"file": old, "reason": "delete-mismatch"})
            draft.set(old, None)
            continue
        new_mode = _git_mode_bits(mode, fp.new_mode) if fp.new_mode != fp.old_mode else mode
        new_data = data if new_text == text else _encode_patched(new_text, sf)
        new = draft.rel(fp.new_path)
        if new != old:
            if draft.exists(new):
                raise ApplyConflict(f"{new}: the patch renames onto it, but it exists",
                                    details={"file": new, "reason": "exists"})
            from .checks import check_case_only_rename
            check_case_only_rename(ws, old, new)
            draft.set(new, new_data, new_mode)
            draft.set(old, None)
            draft.renamed_from[new] = old
        else:
            draft.set(old, new_data, new_mode)
    return make_plan(draft.changes(), label=label)


def _git_mode_bits(current: int | None, git_mode: int | None) -> int | None:
    """Permission bits after a git mode (100644/100755) is applied to ``current``
    (None: a new file with the default mode; a new executable gets 0o755)."""
    if git_mode is None:
        return current
    if current is None:
        return 0o755 if git_mode & 0o111 else None
    if git_mode & 0o111:
        return current | ((current & 0o444) >> 2)
    return current & ~0o111


def plan_from_contents(ws: Workspace, contents: Mapping[str, bytes | None], *, label: str = "") -> EditPlan:
    """A plan from whole new contents (path -> bytes, None deletes)."""
    draft = Draft(ws)
    for path in sorted(contents):
        rel = draft.rel(path)
        draft.set(rel, contents[path])
    return make_plan(draft.changes(), label=label)


__all__ = ["FileChange", "EditPlan", "make_plan", "preview", "git_patch", "plan_from_workspace_edit",
           "plan_from_unified_diff", "plan_write", "plan_from_contents", "encode_new_text", "Draft",
           ]
