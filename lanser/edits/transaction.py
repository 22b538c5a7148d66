"""Checked, atomic, reversible application of an :class:`EditPlan`.

All files or none.  Before the first file is touched, a journal
``.lanser/journal/<txid>.json`` and the old bytes of every file
(``.lanser/journal/<txid>/<n>.old``) are written and fsynced.  Each file is
then replaced atomically (temp file in the same directory, fsync,
``os.replace``, fsync of the directory), keeping its permission bits.  If a
replacement fails, every file already replaced is restored and the error says
so; if the process dies between two replacements, :func:`recover` (run at the
start of every mutating command, and by :func:`apply_plan` itself) finds the
journal and rolls every file back to its old bytes.  Removing the journal is
the commit point.  After it, the old bytes of every replaced file are kept in the
snapshot store (``.lanser/snapshots/<blob id>``, :mod:`lanser.selectors.versions`),
where ``?v=`` selectors made against them find them.

A lock (``.lanser/lock``, ``flock``) serializes transactions and recovery, so
a recovery never rolls back a transaction that is still running.

Test hook: with ``LANSER_TEST_PAUSE_AFTER_REPLACE=<marker path>`` set, after
each replacement a line ``"<n> <path>"`` is appended to the marker and the
process sleeps ``LANSER_TEST_PAUSE_SECONDS`` (default 3600) so a test can
SIGKILL it between two replacements; with ``LANSER_TEST_PAUSE_AT=<k>`` it
only sleeps after the k-th replacement (1-based) and just marks the others.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..errors import ApplyConflict, ContentModified, FsPermissions, LanserError
from ..fsutil import default_file_mode, fsync_dir, write_atomic
from ..selectors.versions import save_snapshot
from ..workspace import Workspace, blob_id
from . import checks
from .gitstate import check_clean, git_state, merge_via_git
from .plan import EditPlan

LANSER_DIR = ".lanser"
JOURNAL_DIR = ".lanser/journal"
LOCK_TIMEOUT_S = 30.0
PAUSE_ENV = "LANSER_TEST_PAUSE_AFTER_REPLACE"
PAUSE_SECONDS_ENV = "LANSER_TEST_PAUSE_SECONDS"
PAUSE_AT_ENV = "LANSER_TEST_PAUSE_AT"


@dataclass(frozen=True)
class ApplyResult:
    """What an apply did.  ``applied`` is true only when files were written."""

    applied: bool
    message: str
    files: tuple[str, ...] = ()
    git: dict[str, Any] = field(default_factory=lambda: {"git": False})
    recovered: tuple[dict[str, Any], ...] = ()
    via: str = "lanser"  # or "git-apply-3way"
    plan: EditPlan | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"applied": self.applied, "message": self.message,
                               "files": list(self.files), "git": self.git, "via": self.via}
        if self.recovered:  # the txid (time, pid) is volatile: kept out of the bundle
            out["recovered"] = [{k: v for k, v in r.items() if k != "txid"} for r in self.recovered]
        return out


# -- small file-system helpers -------------------------------------------------------

def _replace(src: Path, dst: Path) -> None:
    """``os.replace`` (a seam for fault-injection tests)."""
    os.replace(src, dst)


def _write_atomic(target: Path, data: bytes, mode: int, tmp: Path,
                  owner: tuple[int, int] | None = None) -> None:
    """:func:`lanser.fsutil.write_atomic` through the journaled temporary name and the seam."""
    write_atomic(target, data, mode=mode, tmp=tmp, owner=owner, replace=_replace)


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    _write_atomic(path, json.dumps(obj, indent=1, sort_keys=True).encode(), 0o644, tmp)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except IsADirectoryError:
        return b"\0<directory>"


def _lanser_dir(ws: Workspace, create: bool) -> Path | None:
    path = ws.root / LANSER_DIR
    if os.path.lexists(path):
        real = Path(os.path.realpath(path))
        if not ws.contains(real) or not real.is_dir():
            raise FsPermissions(f"{LANSER_DIR} is not a directory inside the workspace; "
                                f"refusing to keep a journal there")
    elif create:
        try:
            path.mkdir()
            # keep lanser's journal and lock out of the user's `git status`
            (path / ".gitignore").write_text("# created by lanser\n*\n", encoding="utf-8")
        except OSError as exc:
            raise FsPermissions(f"cannot create {LANSER_DIR}/ for the edit journal: {exc.strerror}; "
                                f"nothing was written", details={"reason": "journal"}) from None
    else:
        return None
    return path


@contextlib.contextmanager
def _locked(ws: Workspace) -> Iterator[None]:
    """Exclusive ``flock`` on ``.lanser/lock`` (released by the kernel if we die)."""
    base = _lanser_dir(ws, create=True)
    assert base is not None
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock on this platform
        yield
        return
    fd = os.open(base / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ContentModified("another lanser process is applying edits to this "
                                          "workspace; retry") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def _pause_hook(n: int, rel: str) -> None:
    marker = os.environ.get(PAUSE_ENV)
    if not marker:
        return
    with open(marker, "a", encoding="utf-8") as fh:
        fh.write(f"{n} {rel}\n")
        fh.flush()
        os.fsync(fh.fileno())
    at = os.environ.get(PAUSE_AT_ENV)
    if at is None or int(at) == n + 1:
        time.sleep(float(os.environ.get(PAUSE_SECONDS_ENV, "3600")))


# -- journal ---------------------------------------------------------------------------

def _missing_dirs(ws: Workspace, rel: str) -> list[str]:
    out = []
    parent = Path(rel).parent
    while str(parent) not in ("", "."):
        if os.path.isdir(ws.root / parent):
            break
        out.append(parent.as_posix())
        parent = parent.parent
    return list(reversed(out))  # shallowest first


def _journal_for(ws: Workspace, plan: EditPlan, txid: str) -> dict[str, Any]:
    entries = []
    created: list[str] = []
    for n, c in enumerate(plan.changes):
        real = ws.abspath(c.path)
        try:
            st = real.lstat() if c.before is not None else None
        except FileNotFoundError:
            st = None
        old_mode = stat.S_IMODE(st.st_mode) if st is not None else None
        if c.after is None:
            new_mode = None
        elif c.after_mode is not None and (c.before_mode is None or c.after_mode != c.before_mode):
            new_mode = c.after_mode
        else:
            new_mode = old_mode if old_mode is not None else default_file_mode()
        if c.after is not None:
            for d in _missing_dirs(ws, c.path):
                if d not in created:
                    created.append(d)
        entries.append({
            "n": n, "path": c.path, "existed": c.before is not None,
            "oldBlob": c.before_id if c.before is not None else None,
            "newBlob": c.after_id if c.after is not None else None,
            "mode": old_mode, "newMode": new_mode,
            "owner": [st.st_uid, st.st_gid] if st is not None else None,
            "backup": f"{txid}/{n}.old" if c.before is not None else None,
            "tmp": (Path(c.path).parent / f".{Path(c.path).name}.lanser-{txid}.tmp").as_posix(),
        })
    return {"version": 1, "txid": txid, "label": plan.label, "entries": entries,
            "createdDirs": created, "pid": os.getpid()}


def _new_txid() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{os.getpid()}-{secrets.token_hex(4)}"


def _restore(ws: Workspace, journal: dict[str, Any], jdir: Path) -> list[dict[str, Any]]:
    """Put every journaled file back to its old bytes where it holds the new (or
    half-written) ones; files holding neither are left alone and reported as "foreign"."""
    report = []
    for e in reversed(journal["entries"]):
        real = ws.abspath(e["path"])
        with contextlib.suppress(OSError):
            (ws.root / e["tmp"]).unlink()
        now = _read(real)
        now_id = blob_id(now) if now is not None else None
        if now_id == e["oldBlob"]:
            report.append({"path": e["path"], "state": "old"})
            continue
        if now_id != e["newBlob"]:
            report.append({"path": e["path"], "state": "foreign",
                           "blob": now_id})
            continue
        if e["existed"]:
            old = (jdir / e["backup"]).read_bytes()
            if blob_id(old) != e["oldBlob"]:
                report.append({"path": e["path"], "state": "backup-corrupt"})
                continue
            real.parent.mkdir(parents=True, exist_ok=True)
            owner = tuple(e["owner"]) if e.get("owner") else None
            _write_atomic(real, old, e["mode"] if e["mode"] is not None else default_file_mode(),
                          ws.root / e["tmp"], owner)  # type: ignore[arg-type]
        else:
            real.unlink()
            fsync_dir(real.parent)
        report.append({"path": e["path"], "state": "restored"})
    for d in reversed(journal.get("createdDirs", [])):
        with contextlib.suppress(OSError):
            (ws.root / d).rmdir()
    return sorted(report, key=lambda r: r["path"])


def _drop_journal(jdir: Path, txid: str) -> None:
    """Commit point: the journal goes first, then the backups."""
    (jdir / f"{txid}.json").unlink()
    fsync_dir(jdir)
    shutil.rmtree(jdir / txid, ignore_errors=True)


def _recover_locked(ws: Workspace) -> list[dict[str, Any]]:
    base = _lanser_dir(ws, create=False)
    if base is None:
        return []
    jdir = base / "journal"
    if not jdir.is_dir():
        return []
    reports = []
    for jpath in sorted(jdir.glob("*.json")):
        txid = jpath.name[: -len(".json")]
        try:
            journal = json.loads(jpath.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            reports.append({"txid": txid, "rolledBack": False, "files": [],
                            "message": f"unreadable journal {JOURNAL_DIR}/{jpath.name} left in place"})
            continue
        files = _restore(ws, journal, jdir)
        restored = [f["path"] for f in files if f["state"] == "restored"]
        troubled = [f["path"] for f in files if f["state"] not in ("old", "restored")]
        if troubled:
            kept = jdir / f"{txid}.json.kept"
            os.replace(jpath, kept)
            message = (f"interrupted edit: restored {len(restored)} file(s); "
                       f"{', '.join(troubled)} hold content that is neither the old nor the new "
                       f"version and were left alone; old bytes kept in {JOURNAL_DIR}/{txid}/")
        else:
            _drop_journal(jdir, txid)
            message = (f"interrupted edit rolled back: {len(restored)} file(s) restored "
                       f"to their old content" if restored else
                       "interrupted edit had not replaced any file; nothing to restore")
        reports.append({"txid": txid, "label": journal.get("label", ""), "rolledBack": bool(restored),
                        "files": files, "message": message})
    # backups of committed transactions whose cleanup was interrupted
    for d in sorted(p for p in jdir.iterdir() if p.is_dir()):
        if not (jdir / f"{d.name}.json").exists() and not (jdir / f"{d.name}.json.kept").exists():
            shutil.rmtree(d, ignore_errors=True)
    for tmp in jdir.glob("*.json.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()
    return reports


def recover(ws: Workspace) -> list[dict[str, Any]]:
    """Roll back any transaction a killed Lanser left half-applied.

    Returns one report per journal found: ``{"txid", "label", "rolledBack",
    "files": [{"path", "state": "old"|"restored"|"foreign"|"backup-corrupt"}],
    "message"}``; an empty list when there was nothing to recover.  Writes
    nothing when there is no ``.lanser/journal``.
    """
    base = _lanser_dir(ws, create=False)
    if base is None or not (base / "journal").is_dir():
        return []
    with _locked(ws):
        return _recover_locked(ws)


# -- apply --------------------------------------------------------------------------------

def _error_for(exc: OSError, rel: str, rolled_back: list[str], rollback_ok: bool) -> LanserError:
    details: dict[str, Any] = {"reason": "write-failed", "file": rel,
                               "errno": errno.errorcode.get(exc.errno or 0, str(exc.errno)),
                               "rolledBack": rolled_back, "rollbackComplete": rollback_ok}
    tail = (f"; {len(rolled_back)} already-replaced file(s) restored, nothing changed"
            if rollback_ok else "; ROLLBACK INCOMPLETE, the journal is kept for the next run")
    if isinstance(exc, PermissionError) or exc.errno in (errno.EROFS, errno.EPERM, errno.EACCES):
        return FsPermissions(f"cannot write {rel}: {exc.strerror}{tail}", details=details)
    return ApplyConflict(f"cannot write {rel}: {exc.strerror}{tail}", details=details)


def _commit(ws: Workspace, plan: EditPlan) -> list[str]:
    base = _lanser_dir(ws, create=True)
    assert base is not None
    jdir = base / "journal"
    jdir.mkdir(exist_ok=True)
    txid = _new_txid()
    journal = _journal_for(ws, plan, txid)
    bdir = jdir / txid
    try:
        bdir.mkdir()
        for e, c in zip(journal["entries"], plan.changes):
            if c.before is not None:
                with open(bdir / f"{e['n']}.old", "wb") as fh:
                    fh.write(c.before)
                    fh.flush()
                    os.fsync(fh.fileno())
        fsync_dir(bdir)
        _write_json_atomic(jdir / f"{txid}.json", journal)
        fsync_dir(jdir)
    except OSError as exc:
        shutil.rmtree(bdir, ignore_errors=True)
        with contextlib.suppress(OSError):
            (jdir / f"{txid}.json").unlink()
        raise FsPermissions(f"cannot write the edit journal in {JOURNAL_DIR}/: {exc.strerror}; "
                            f"nothing was written", details={"reason": "journal"}) from None

    current = ""
    try:
        for d in journal["createdDirs"]:
            current = d
            (ws.root / d).mkdir()
            fsync_dir((ws.root / d).parent)
        for e, c in zip(journal["entries"], plan.changes):
            current = c.path
            real = ws.abspath(c.path)
            if c.after is None:
                real.unlink()
                fsync_dir(real.parent)
            else:
                owner = tuple(e["owner"]) if e.get("owner") else None
                _write_atomic(real, c.after, e["newMode"], ws.root / e["tmp"], owner)  # type: ignore[arg-type]
            _pause_hook(e["n"], c.path)
    except OSError as exc:
        try:
            report = _restore(ws, journal, jdir)
            rolled = [r["path"] for r in report if r["state"] == "restored"]
            ok = all(r["state"] in ("old", "restored") for r in report)
        except OSError:
            rolled, ok = [], False
        if ok:
            _drop_journal(jdir, txid)
        raise _error_for(exc, current, rolled, ok) from None
    _drop_journal(jdir, txid)
    _keep_snapshots(ws, plan)
    return [c.path for c in plan.changes]


def _keep_snapshots(ws: Workspace, plan: EditPlan) -> None:
    """After the commit point: the content every replaced file had goes into the snapshot
    store (``.lanser/snapshots/<blob id>``), so a ``?v=`` selector made against it still
    resolves when git has no blob for it (a file changed by an earlier apply, or never
    committed).  Best effort: the edit has landed, a full disk must not undo that."""
    for c in plan.changes:
        if c.before is not None:
            with contextlib.suppress(OSError):
                save_snapshot(ws, c.before)


def restore_plan(ws: Workspace, plan: EditPlan) -> list[str]:
    """Write a plan that puts the workspace's own earlier bytes back (a reward run's
    ``reset``): journaled, atomic and under the lock like :func:`apply_plan`, inside the
    jail, but without the checks that protect new content (the syntax check: a file that
    did not parse at the start is restored as it was; the dirty-tree check: the run's own
    steps made the tree dirty).  Returns the paths written."""
    checks.check_jail(ws, plan)
    with _locked(ws):
        return _commit(ws, plan)


def apply_plan(ws: Workspace, plan: EditPlan, *, allow_dirty: bool = False, allow: Sequence[str] = (),
               deny: Sequence[str] = (), via_git: bool = False, confidence: float | None = None,
               tau: float | None = None, deny_apply_on_ambiguous: bool = False) -> ApplyResult:
    """Check ``plan`` and apply it atomically (all files or none).

    Order: recover interrupted transactions; no-op plans return
    ``applied=False``; ``--deny-apply-on-ambiguous``; jail; ``--allow``/``--deny``;
    case-only renames; clean git tree (unless ``allow_dirty``); content unchanged
    since planning (skipped with ``via_git``, where ``git apply --3way`` merges
    instead); the result still parses.  Raises the check's LanserError; nothing
    is written unless every check passes.  A plan refused by a check is refused
    before ``.lanser/`` (journal and lock) is created, when it does not exist yet.
    """
    if not plan.is_noop and _lanser_dir(ws, create=False) is None:
        # Nothing to recover yet: check first, so a refused edit leaves no trace.  Every
        # check runs again under the lock, which is what makes it binding.
        checks.check_confidence(confidence, tau, deny_apply_on_ambiguous)
        checks.run_checks(ws, plan, allow=allow, deny=deny, check_content=not via_git)
        check_clean(ws, allow_dirty)
    with _locked(ws):
        recovered = tuple(_recover_locked(ws))
        if plan.is_noop:
            return ApplyResult(False, "the plan changes nothing; no file was written",
                               git=git_state(ws), recovered=recovered,
                               via="git-apply-3way" if via_git else "lanser", plan=plan)
        checks.check_confidence(confidence, tau, deny_apply_on_ambiguous)
        checks.run_checks(ws, plan, allow=allow, deny=deny, check_content=not via_git)
        state = check_clean(ws, allow_dirty)
        via = "lanser"
        if via_git:
            via = "git-apply-3way"
            plan = merge_via_git(ws, plan)
            if plan.is_noop:
                return ApplyResult(False, "the patch is already applied; no file was written",
                                   git=state, recovered=recovered, via=via, plan=plan)
            checks.run_checks(ws, plan, allow=allow, deny=deny)
        files = _commit(ws, plan)
        return ApplyResult(True, f"applied: {len(files)} file(s) written", files=tuple(files),
                           git=state, recovered=recovered, via=via, plan=plan)
