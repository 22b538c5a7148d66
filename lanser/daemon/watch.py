"""Has anything in the workspace changed since the last look?  (inotify, when there is one)

The service checks the disk before every answer.  Stat'ing every Python file
costs a syscall per file, so on Linux the directories the scan walks are
watched with inotify (through inotify_simple) and a scan whose directories saw
no event since the previous full scan reuses that scan's answer.

Why this never answers stale: the kernel queues an inotify event while the
writing syscall runs, so a change that finished before a request arrived is
already in the queue when :meth:`Watcher.quiet` reads it (without waiting).
An overflowed queue, a watch that cannot be added, or any error turns watching
off for good and every scan is a full one again.  Writes inotify does not see
(through ``mmap``, or by another machine on a network file system) are not
noticed until some other event; ``LANSER_WATCH=0`` turns watching off for
such workspaces.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

try:  # Linux only; elsewhere every scan stats every file
    from inotify_simple import INotify, flags
except ImportError:  # pragma: no cover - depends on the platform
    INotify = None  # type: ignore[assignment,misc]
    flags = None  # type: ignore[assignment]

_MASK = 0 if flags is None else (
    flags.MODIFY | flags.ATTRIB | flags.CLOSE_WRITE | flags.MOVED_FROM | flags.MOVED_TO
    | flags.CREATE | flags.DELETE | flags.DELETE_SELF | flags.MOVE_SELF)


class Watcher:
    """Directory watches; ``quiet()`` is True only when no watched directory changed."""

    def __init__(self) -> None:
        self._ino: Any = None
        self.watched: set[str] = set()
        if INotify is not None and os.environ.get("LANSER_WATCH", "1") != "0":
            try:
                self._ino = INotify(nonblocking=True)
            except OSError:
                self._ino = None

    @property
    def active(self) -> bool:
        return self._ino is not None

    def arm(self, dirs: Iterable[str]) -> None:
        """Watch each directory not watched yet (adding one twice is harmless)."""
        if self._ino is None:
            return
        for d in dirs:
            if d in self.watched:
                continue
            try:
                self._ino.add_watch(d, _MASK)
            except OSError:  # gone meanwhile, or out of watches (ENOSPC): stop trusting watches
                self.close()
                return
            self.watched.add(d)

    def quiet(self) -> bool:
        """Read (never wait for) the queued events: True when there were none."""
        if self._ino is None or flags is None:
            return False
        try:
            events = self._ino.read(timeout=0)
        except OSError:
            self.close()
            return False
        if any(e.mask & flags.Q_OVERFLOW for e in events):
            self.close()
            return False
        if any(e.mask & flags.IGNORED for e in events):
            # A watched directory went away: its watch is gone; the next scan re-arms.
            self.watched.clear()
        return not events

    def close(self) -> None:
        if self._ino is not None:
            try:
                self._ino.close()
            except OSError:
                pass
        self._ino = None
        self.watched.clear()
