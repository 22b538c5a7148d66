"""Freshness and memoization: never answer about a workspace state that is gone.

* :class:`Scanner` knows the content hash of every Python file (and the
  pyright configuration files) of the workspace.  It stats each file and
  re-reads only those whose ``(mtime_ns, ctime_ns, size, inode)`` moved, plus
  "racy" files modified within the last two seconds (a write inside the same
  timestamp tick leaves the stat unchanged; git's racy-clean rule).
* :class:`Memo` keeps answered bundles (as JSON bytes, so no caller can
  mutate a cached answer) keyed by (request key, workspace digest), LRU-bounded.
* :class:`SingleFlight` lets a request join an identical one in flight that
  arrived at the same workspace state (same digest), so N identical concurrent
  requests cost one server query; the leader re-checks the disk when it gets
  the server, so every follower's answer reflects the disk as it was when that
  follower arrived, or later.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..workspace import CONFIG_FILES, SKIP_DIRS, StatKey, Workspace, settled, stat_key
from .watch import Watcher


class Scanner:
    """Content hashes of the workspace's Python and configuration files, cheaply kept current."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._seen: dict[str, tuple[StatKey | None, str]] = {}
        self.rehashed = 0  # files read and hashed so far (for status and tests)
        self.full_scans = 0  # scans that stat'ed every file (for status and tests)
        self.watcher = Watcher()
        self._last: dict[str, str] | None = None

    def scan(self, extra: Iterable[str] = ()) -> dict[str, str]:
        """rel -> sha256 of the current bytes, for every tracked file that exists.

        Runs before every answer.  When the watcher saw no event since the last full
        scan (and nothing it cannot see is tracked), the last answer still holds;
        otherwise every file is stat'ed, and hashed only if its stat moved."""
        extra = list(extra)
        if self._last is not None and self.watcher.quiet() and set(extra) <= self._last.keys():
            return dict(self._last)
        self.full_scans += 1
        self.watcher.quiet()  # drain: events from now on mean "look again"
        prefix = str(self.ws.root) + "/"
        found = walk(self.ws)
        self.watcher.arm(found.dirs)
        rels = set(found.files)
        rels.update(extra)
        rels.update(name for name in CONFIG_FILES if os.path.isfile(prefix + name))
        out: dict[str, str] = {}
        seen = self._seen
        stat_ = os.stat
        now = time.time_ns()
        for rel in rels:
            try:
                st = stat_(prefix + rel)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError:
                out[rel] = "unreadable"
                continue
            key = stat_key(st)
            old = seen.get(rel)
            if old is not None and old[0] == key:
                out[rel] = old[1]
                continue
            try:
                with open(prefix + rel, "rb") as fh:
                    data = fh.read()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                continue
            except OSError:
                out[rel] = "unreadable"
                continue
            digest = hashlib.sha256(data).hexdigest()
            self.rehashed += 1
            seen[rel] = (key if settled(st, now) else None, digest)
            out[rel] = digest
        for gone in set(seen) - rels:
            del seen[gone]
        # Only a state made of files the watched directories hold may be reused.
        trusted = self.watcher.active and not found.links and all(
            os.path.dirname(prefix + rel) in self.watcher.watched for rel in rels)
        self._last = dict(out) if trusted else None
        return out


def python_files(ws: Workspace, *, sort: bool = True) -> list[str]:
    """``Workspace.python_files()``, faster: ``realpath`` only for symlinks (a scandir walk
    that does not follow directory links, like ``os.walk``, stays inside the root)."""
    files = walk(ws).files
    return sorted(files) if sort else files


@dataclass
class Walk:
    files: list[str] = field(default_factory=list)   # workspace-relative Python files
    dirs: list[str] = field(default_factory=list)    # absolute directories walked
    links: bool = False                               # a listed file is a symlink


def walk(ws: Workspace) -> Walk:
    """The workspace's Python files and the directories that hold them (what a watcher
    must watch), skipping tool directories and never following directory links."""
    out = Walk()
    root = str(ws.root)
    stack = [(root, "")]
    while stack:
        path, prefix = stack.pop()
        try:
            entries = list(os.scandir(path))
        except OSError:
            continue
        out.dirs.append(path)
        for entry in entries:
            name = entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if name not in SKIP_DIRS and not name.endswith(".egg-info"):
                        stack.append((entry.path, prefix + name + "/"))
                    continue
            except OSError:
                continue
            if not name.endswith((".py", ".pyi")):
                continue
            if entry.is_symlink():
                try:
                    if entry.is_dir():  # a link to a directory: listed, never walked (as os.walk)
                        continue
                except OSError:
                    pass
                if not ws.contains(Path(os.path.realpath(entry.path))):
                    continue
                out.links = True
            out.files.append(prefix + name)
    return out


def state_digest(state: dict[str, str]) -> str:
    """One hash for a whole workspace state (what memo entries are keyed by)."""
    return hashlib.sha256(json.dumps(sorted(state.items())).encode()).hexdigest()


def diff_states(old: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    """rel -> created|changed|deleted between two states."""
    changes: dict[str, str] = {}
    for rel, h in new.items():
        if rel not in old:
            changes[rel] = "created"
        elif old[rel] != h:
            changes[rel] = "changed"
    for rel in old.keys() - new.keys():
        changes[rel] = "deleted"
    return changes


def request_key(cmd: str, selector: str | None, args: dict[str, Any], options: dict[str, Any]) -> str:
    """A stable key for a request (what single-flight and the memo compare)."""
    raw = json.dumps([cmd, selector, args, options], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


class Memo:
    """Answered bundles as JSON bytes, keyed by (request key, workspace digest); LRU."""

    def __init__(self, max_entries: int = 512, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, rkey: str, digest: str) -> bytes | None:
        data = self._items.get((rkey, digest))
        if data is None:
            self.misses += 1
            return None
        self._items.move_to_end((rkey, digest))
        self.hits += 1
        return data

    def put(self, rkey: str, digest: str, data: bytes) -> None:
        key = (rkey, digest)
        if key in self._items:
            self._bytes -= len(self._items.pop(key))
        self._items[key] = data
        self._bytes += len(data)
        while self._items and (len(self._items) > self.max_entries or self._bytes > self.max_bytes):
            _, old = self._items.popitem(last=False)
            self._bytes -= len(old)

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0

    def keep_only(self, digest: str) -> None:
        """Drop every answer about another workspace state (the files changed)."""
        for key in [k for k in self._items if k[1] != digest]:
            self._bytes -= len(self._items.pop(key))


@dataclass
class Flight:
    future: asyncio.Future[bytes]
    followers: int = 0


@dataclass
class SingleFlight:
    """In-flight requests by request key."""

    flights: dict[str, Flight] = field(default_factory=dict)
    coalesced: int = 0

    def joinable(self, rkey: str) -> Flight | None:
        flight = self.flights.get(rkey)
        if flight is None:
            return None
        flight.followers += 1
        self.coalesced += 1
        return flight

    def lead(self, rkey: str) -> Flight:
        flight = Flight(asyncio.get_running_loop().create_future())
        self.flights[rkey] = flight
        return flight

    def finish(self, rkey: str, flight: Flight) -> None:
        if self.flights.get(rkey) is flight:
            del self.flights[rkey]
