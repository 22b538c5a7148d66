"""The diagnostics of a workspace: one definition, used by ``diag``, ``reward``, batch and the SDK.

"The diagnostics of the workspace" are what ``pyright --outputjson`` reports
for the same tree: the diagnostics of the files pyright's own source
enumeration finds (:mod:`lanser.diagnostics.fileset`, which follows the
project's ``include``/``exclude``), each as the server reports it after
applying ``ignore``, ``strict``, ``executionEnvironments``,
``typeCheckingMode``, ``extraPaths`` and ``# pyright:`` comments.  A file the
server would answer for but the CLI does not check (a document opened because
a step edited it, a workspace file outside ``include`` that a checked file
imports) is never counted.

Diagnostics are *pulled* (``textDocument/diagnostic``), which answers once the
file is checked; many pulls are in flight at once (the server answers them in
turn, so nothing waits on a round trip).  :class:`WorkspaceDiagnostics` keeps
each checked file's normalized diagnostics so a caller that knows which files
can have changed (the reward runner's affected-files rule) re-pulls only
those: :meth:`refresh`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..bundles import normalize as N
from ..server.session import Session
from .config import read_config
from .fileset import FileSet

Diag = dict[str, Any]
PerFile = Mapping[str, tuple[Diag, ...]]
MAX_IN_FLIGHT = 64  # pulls sent before the first answer is awaited
COUNTED = {"error": "errors", "warning": "warnings", "information": "informations"}


def normalize_file(rel: str, raw: Iterable[dict[str, Any]]) -> tuple[Diag, ...]:
    """One file's raw LSP diagnostics as bundle diagnostics, in the bundle's order, repeats
    dropped (a node evaluated twice, once per union order: :func:`N.canonical_message`)."""
    out: dict[tuple[Any, ...], Diag] = {}
    for item in raw:
        d = N.diagnostic(item, rel)
        out.setdefault((*d["range"], d["severity"], d["code"], d["message"]), d)
    return tuple(N.sort_locations(out.values(), "severity", "code", "message"))


def flatten(per_file: PerFile, files: Iterable[str] | None = None) -> list[Diag]:
    """Every diagnostic of ``per_file`` (or of ``files`` in it) in the bundle's order
    (path first: concatenating the files in path order keeps the global sort)."""
    keys = sorted(per_file if files is None else (f for f in files if f in per_file))
    return [d for rel in keys for d in per_file[rel]]


def file_counts(diags: Iterable[Diag]) -> dict[str, int]:
    """``{"errors","warnings","informations"}`` of one file's (or any) diagnostics."""
    out = {"errors": 0, "warnings": 0, "informations": 0}
    for d in diags:
        key = COUNTED.get(d.get("severity", ""))
        if key is not None:
            out[key] += 1
    return out


@dataclass(frozen=True)
class Snapshot:
    """The workspace's diagnostics at one moment: per checked file, and the totals."""

    files: Mapping[str, tuple[Diag, ...]]
    totals: Mapping[str, int]

    @staticmethod
    def of(files: Mapping[str, tuple[Diag, ...]]) -> "Snapshot":
        totals = {"errors": 0, "warnings": 0, "informations": 0}
        for diags in files.values():
            for key, n in file_counts(diags).items():
                totals[key] += n
        return Snapshot(dict(files), totals)

    def updated(self, changes: Mapping[str, tuple[Diag, ...] | None]) -> "Snapshot":
        """A new snapshot with ``changes`` applied (None: the file is no longer checked);
        the totals are adjusted by the changed files only."""
        files = dict(self.files)
        totals = dict(self.totals)
        for rel, diags in changes.items():
            old = files.pop(rel, None)
            if old is not None:
                for key, n in file_counts(old).items():
                    totals[key] -= n
            if diags is not None:
                files[rel] = diags
                for key, n in file_counts(diags).items():
                    totals[key] += n
        return Snapshot(files, totals)

    def counts(self, files: Iterable[str] | None = None) -> dict[str, Any]:
        """``{"errors","warnings","informations","byFile"}``; ``byFile`` lists ``files``
        (default: every checked file), each with its errors and warnings."""
        listed = sorted(self.files if files is None else (f for f in set(files) if f in self.files))
        by_file = {}
        for rel in listed:
            c = file_counts(self.files[rel])
            by_file[rel] = {"errors": c["errors"], "warnings": c["warnings"]}
        return {**self.totals, "byFile": by_file}

    def all(self) -> list[Diag]:
        return flatten(self.files)


class WorkspaceDiagnostics:
    """The checked files of a session's workspace and their pulled diagnostics."""

    def __init__(self, session: Session, fileset: FileSet | None = None) -> None:
        self.session = session
        self.fileset = fileset or FileSet(read_config(session.ws.root))
        self.config_files = self.fileset.config.files  # a change to one of them reconfigures the server
        self.order: list[str] = self.fileset.enumerate()  # the order the CLI checks them in
        self.checked: set[str] = set(self.order)
        self.snapshot = Snapshot({}, {"errors": 0, "warnings": 0, "informations": 0})

    def track(self, created: Iterable[str] = (), deleted: Iterable[str] = ()) -> None:
        """Files that appeared (checked when the configuration's patterns match them, as the
        server decides for a new document) or vanished."""
        for rel in created:
            if self.fileset.matches(rel):
                self.checked.add(rel)
        self.checked.difference_update(deleted)

    async def pull(self, rels: Iterable[str]) -> dict[str, tuple[Diag, ...]]:
        """Pull the checked files among ``rels``: rel -> normalized diagnostics."""
        targets = sorted(set(rels) & self.checked)
        return await pull_files(self.session, targets)

    async def pull_all(self) -> Snapshot:
        """Every checked file's diagnostics now (also the new snapshot), asked in the order the
        CLI checks them: a file's diagnostics can depend on which files were checked first."""
        order = [rel for rel in self.order if rel in self.checked]
        order += sorted(self.checked - set(order))
        found = await pull_files(self.session, order)
        self.snapshot = Snapshot.of({rel: found.get(rel, ()) for rel in self.checked})
        return self.snapshot

    async def refresh(self, rels: Iterable[str]) -> tuple[Snapshot, dict[str, tuple[Diag, ...] | None]]:
        """Re-pull ``rels`` and keep every other file's diagnostics: (new snapshot, the
        per-file changes applied, None for a file no longer checked)."""
        rels = set(rels)
        changes: dict[str, tuple[Diag, ...] | None] = dict(await self.pull(rels))
        for rel in set(self.snapshot.files) - self.checked:
            changes[rel] = None
        for rel in rels & self.checked:
            changes.setdefault(rel, ())
        self.snapshot = self.snapshot.updated(changes)
        return self.snapshot, changes


async def pull_files(session: Session, rels: list[str]) -> dict[str, tuple[Diag, ...]]:
    """Pull ``rels`` with up to MAX_IN_FLIGHT requests outstanding; a file the server does
    not answer for (not part of its program) gets no entry."""
    out: dict[str, tuple[Diag, ...]] = {}
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)

    async def one(rel: str) -> None:
        async with gate:
            raw = await session.pull_diagnostics(rel)
        if raw is not None:
            out[rel] = normalize_file(rel, raw)

    tasks = [asyncio.ensure_future(one(rel)) for rel in rels]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
    return {rel: out[rel] for rel in sorted(out)}


__all__ = ["Diag", "MAX_IN_FLIGHT", "Snapshot", "WorkspaceDiagnostics", "file_counts", "flatten",
           "normalize_file", "pull_files"]
