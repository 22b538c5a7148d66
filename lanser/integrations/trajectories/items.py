"""What a converter produces: one :class:`Item` per trajectory action that matters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Item:
    """One trajectory action as Lanser sees it.

    ``step``: the Lanser step (CONTRACT.md section 5) replaying the action, or None when
    the action is ``skipped`` (``reason`` says why: a shell command whose effect on files
    is not known, an edit the harness itself did not apply, ...).  ``applied=False``: the
    harness rejected this edit (e.g. SWE-agent's linter); it is still scored, and when
    Lanser applies it ``revert`` (a step restoring the files) follows, so the replay
    keeps to the trajectory.  ``traj_step`` names where it came from (an index into the
    trajectory, a commit, a line number).
    """

    traj_step: Any
    action: str
    step: dict[str, Any] | None = None
    reason: str | None = None
    applied: bool = True
    revert: dict[str, Any] | None = None

    @property
    def skipped(self) -> bool:
        return self.step is None


def first_line(action: str, limit: int = 200) -> str:
    line = (action or "").strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."
