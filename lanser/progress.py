"""A one-line progress bar on stderr, drawn only when stderr is a terminal.

stdout carries nothing but JSON; the bar lives on stderr, is redrawn in place
with ``\\r`` and is finished with a newline, so a log or a pipe never sees it.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 24


class Progress:
    """``[#####-----] 5/12  3.1 steps/s  errors=2``; a no-op when disabled."""

    def __init__(self, total: int | None, *, stream: TextIO | None = None, enabled: bool | None = None,
                 label: str = "steps") -> None:
        self.stream = stream or sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.total = total
        self.label = label
        self.done = 0
        self.started = time.monotonic()
        self._drawn = False

    def line(self, errors: int | None = None) -> str:
        """The bar's text (pure apart from the clock; tested directly)."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        if self.total:
            filled = min(WIDTH, WIDTH * self.done // self.total)
            head = f"[{'#' * filled}{'-' * (WIDTH - filled)}] {self.done}/{self.total}"
        else:
            head = f"{self.done}"
        tail = f"  {rate:.1f} {self.label}/s"
        if errors is not None:
            tail += f"  errors={errors}"
        return head + tail

    def update(self, done: int | None = None, *, errors: int | None = None) -> None:
        self.done = self.done + 1 if done is None else done
        if not self.enabled:
            return
        self.stream.write("\r" + self.line(errors) + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
