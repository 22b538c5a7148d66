"""Score converted trajectory items on one warm server: records that name their trajectory step.

Each step item's record is the ``lanser reward`` record (CONTRACT.md section 5) plus
``source`` (``swe-agent``/``commits``/``diffs``), ``trajStep`` and ``action`` (the
action's first line).  A skipped item gets ``{"source", "trajStep", "action",
"status": "skipped", "reason"}`` and no reward.  An edit the harness rejected but Lanser
applied is followed by its revert, a record with ``"revert": true``.  With
``--aggregate``, ``value``/``return`` are computed over the step records (skipped ones
left out).

The base is a commit of ``--repo``, checked out into a temporary clone (``git clone
--shared``; nothing is written to the repository), or ``--repo`` itself when no
``--base`` is given.  Steps run in memory.  At the end, for a SWE-agent trajectory on a
git base, the final files are written into the temporary clone and ``git add -A && git
diff --cached`` (with the submission's hash abbreviation) is compared with the
trajectory's submission: :class:`Outcome` says whether it reproduces it byte for byte.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from ...engine import Engine, Options
from ...errors import BadInput, NotFound
from ...fsutil import write_tree
from ...rewards.records import aggregate
from ...rewards.runner import RewardOptions, TrajectoryRunner
from ...rewards.sessions import as_item
from . import snapshots, swe_agent
from .items import Item

KINDS: tuple[str, ...] = ("swe-agent", "commits", "diffs")
_INDEX = re.compile(r"^index ([0-9a-f]+)\.\.([0-9a-f]+)", re.MULTILINE)


@dataclass
class Outcome:
    """What labelling one trajectory gave."""

    records: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, bytes | None] = field(default_factory=dict)  # rel -> bytes at the end (None: deleted)
    submission: str | None = None     # the trajectory's own final patch (normalised)
    reproduced: str | None = None     # git diff of the replayed final tree
    base: str | None = None

    @property
    def matches(self) -> bool | None:
        if self.submission is None or self.reproduced is None:
            return None
        return self.submission == self.reproduced


class Checkout:
    """The base as a directory: a temporary ``git clone --shared`` at ``base``, or ``repo`` itself."""

    def __init__(self, repo: str, base: str | None) -> None:
        if not Path(repo).exists():
            raise NotFound(f"--repo {repo}: no such directory")
        self.repo, self.base = repo, base
        self.tmp: str | None = None
        self.dir = repo
        if base is not None:
            self.tmp = tempfile.mkdtemp(prefix="lanser-traj-")
            self.dir = os.path.join(self.tmp, "ws")
            try:
                snapshots.git(self.tmp, "clone", "--quiet", "--shared", "--no-checkout",
                              os.path.abspath(repo), self.dir)
                snapshots.git(self.dir, "checkout", "--quiet", "--detach", base)
            except BadInput:
                self.close()
                raise

    def read(self, rel: str) -> bytes | None:
        p = Path(self.dir) / rel
        try:
            return p.read_bytes() if p.is_file() else None
        except OSError:
            return None

    def diff(self, final: dict[str, bytes | None], abbrev: int) -> str:
        """``git add -A && git diff --cached`` after writing ``final`` into the clone."""
        if self.tmp is None:
            raise BadInput("a byte-for-byte check needs --base (a git checkout)")
        write_tree(Path(self.dir), final)
        snapshots.git(self.dir, "add", "-A")
        return snapshots.git(self.dir, "diff", "--cached", "--no-color", "--no-ext-diff", f"--abbrev={abbrev}")

    def close(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


def _tag(record: dict[str, Any], source: str, item: Item, **extra: Any) -> dict[str, Any]:
    return {**record, "source": source, "trajStep": item.traj_step, "action": item.action, **extra}


async def label_items(runner: TrajectoryRunner, items: list[Item], source: str) -> list[dict[str, Any]]:
    """Run the items' steps in order on ``runner`` (started here); records as described above."""
    await runner.start()
    out: list[dict[str, Any]] = []
    for item in items:
        if item.step is None:
            out.append({"source": source, "trajStep": item.traj_step, "action": item.action,
                        "status": "skipped", "reason": item.reason})
            continue
        record = await runner.run_step(as_item(item.step, runner.step_no + 1))
        extra = {} if item.applied else {"harnessApplied": False}
        out.append(_tag(record, source, item, **extra))
        if not item.applied and record.get("status") == "ok" and item.revert is not None:
            rev = await runner.run_step(as_item(item.revert, runner.step_no + 1))
            out.append(_tag(rev, source, item, revert=True))
    mode = runner.options.aggregate
    if mode:
        steps = [r for r in out if r.get("status") != "skipped"]
        done = iter(aggregate(steps, mode))
        out = [next(done) if r.get("status") != "skipped" else r for r in out]
    return out


def _abbrev(sub: str | None) -> int:
    m = _INDEX.search(sub or "")
    return len(m.group(1)) if m else 7


def load_items(kind: str, source: str, repo: str, base: str | None) -> tuple[list[Item] | None, Any, str | None]:
    """(items, trajectory or None, base) for a source; SWE-agent items are made once the base
    is checked out (``None`` here)."""
    if kind == "swe-agent":
        try:
            traj = swe_agent.load(source)
        except OSError as exc:
            raise NotFound(f"cannot read {source}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        return None, traj, base or swe_agent.base_commit(traj)
    if kind == "commits":
        if base is not None:
            raise BadInput("--from commits takes its base from the range A..B; drop --base")
        b, items = snapshots.from_commits(repo, source)
        return items, None, b
    if kind == "diffs":
        return snapshots.from_diffs(source), None, base
    raise BadInput(f"--from must be one of {', '.join(KINDS)}")


def label_source(engine_options: Options, kind: str, source: str, *, repo: str, base: str | None,
                 options: RewardOptions, emit: Callable[[dict[str, Any]], Any],
                 note: Callable[[str], Any] | None = None) -> Outcome:
    """Convert ``source`` (a ``.traj``, a commit range, a diffs file), score it on the base and
    emit every record; the outcome carries the byte-for-byte check of a SWE-agent submission."""
    items, traj, base = load_items(kind, source, repo, base)
    if kind == "swe-agent" and base is None and note is not None:
        note("no --base and none in the trajectory: scoring --repo as it is")
    checkout = Checkout(repo, base)
    try:
        if traj is not None:
            items, _conv = swe_agent.convert(traj, checkout.read)
        assert items is not None
        engine = Engine(replace(engine_options, workspace=checkout.dir))
        runner = TrajectoryRunner(engine, replace(options, in_memory=True, reset_between=False))

        async def go() -> tuple[list[dict[str, Any]], dict[str, bytes | None]]:
            try:
                recs = await label_items(runner, items, kind)
                return recs, dict(runner.save_state().overlay)
            finally:
                await engine.close()

        records, final = asyncio.run(go())
        for rec in records:
            emit(rec)
        outcome = Outcome(records, final, base=base)
        if traj is not None:
            outcome.submission = swe_agent.submission(traj)
            if outcome.submission is not None and checkout.tmp is not None:
                outcome.reproduced = checkout.diff(final, _abbrev(outcome.submission))
                if note is not None:
                    note("final tree reproduces the trajectory's submission byte for byte" if outcome.matches
                         else "final tree differs from the trajectory's submission")
        return outcome
    finally:
        checkout.close()


__all__ = ["KINDS", "Checkout", "Outcome", "label_items", "label_source", "load_items"]
