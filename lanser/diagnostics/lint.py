"""A second analyzer for the reward: ruff's language server, reporting pyflakes' rules.

Pyright stops reporting an error once an expression's type became Unknown,
which is exactly what a misspelled name, a dropped import or a broken
attribute does; pyflakes' rules (``F``: undefined names, unused imports,
redefinitions...) see those by reading the file alone.  With
``--analyzers pyright,ruff`` the reward's ``D`` counts the Pyright
diagnostics of the chosen severities *plus* every ruff ``F`` finding in the
same checked files (benchmarks/bench_rank_commits.py measures what that buys).

Ruff runs as a pinned language server through the same session machinery as
Pyright (:class:`lanser.server.session.Session` with
:func:`lanser.server.registry.ruff_spec`: ``select = ["F"]``, the project's own
ruff configuration ignored, so the count means the same everywhere).  Its
diagnostics depend on a file's own text only, so after a step only the files
the step touched are linted again.  Ruff lints open documents: every checked
file is opened in its session.  Findings are counted whatever severity ruff
gives them (an unused import is a warning to ruff, a finding to ``D``).
"""

from __future__ import annotations

from typing import Callable, Iterable

from ..server.session import Session
from .workspace import Diag, Snapshot, pull_files


def as_finding(d: Diag) -> Diag:
    """A ruff diagnostic as ``D`` counts it: an error of source ``ruff``."""
    return {**d, "severity": "error", "source": "ruff"}


class LintDiagnostics:
    """The ruff findings of the checked files, kept per file (a :class:`Snapshot`)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.snapshot = Snapshot({}, {"errors": 0, "warnings": 0, "informations": 0})

    def show(self, rel: str, text: str | None) -> None:
        """Make ruff see ``text`` for ``rel`` (None: the file is gone)."""
        if text is None:
            self.session.close(rel)
        else:
            self.session.sync(rel, text)

    async def refresh(self, rels: Iterable[str], checked: set[str],
                      text_of: Callable[[str], str | None]) -> dict[str, tuple[Diag, ...] | None]:
        """Lint ``rels`` again as they are now (a file no longer checked is dropped); returns
        the per-file changes applied to :attr:`snapshot` (None: gone)."""
        targets = []
        changes: dict[str, tuple[Diag, ...] | None] = {}
        for rel in sorted(set(rels)):
            text = text_of(rel) if rel in checked else None
            self.show(rel, text)
            if text is None:
                if rel in self.snapshot.files:
                    changes[rel] = None
            else:
                targets.append(rel)
        found = await pull_files(self.session, targets)
        for rel in targets:
            diags = tuple(as_finding(d) for d in found.get(rel, ()) if str(d.get("code") or "").startswith("F"))
            if self.snapshot.files.get(rel) != diags:
                changes[rel] = diags
        self.snapshot = self.snapshot.updated(changes)
        return changes


__all__ = ["LintDiagnostics", "as_finding"]
