"""``batch``: many steps, one warm server, one response line per input line.

Steps are the contract's (section 5) JSON Lines, parsed by
:mod:`lanser.rewards.steps`.  Every non-blank input line yields exactly one
record, in input order::

    {"id": <echoed>, "line": <1-based input line>, "exitCode": <int>, "bundle": {...}}

A malformed line gets an error record (exit 2) and the batch goes on.

Queries run the engine command of the same name (the bundle is the one the
command prints), so the server starts at most once.  Every other op
(``patch``, ``write``, ``rename``, ``edit``, ``reset``) is what it is in
``lanser reward``: it runs through one
:class:`~lanser.rewards.runner.TrajectoryRunner` on the batch's engine,
started at the first such step (its diagnostics are the base of the first
step's reward), and its bundle is the step bundle ``lanser reward`` makes (with
``processReward``, default scoring).  So a step applies through the same
safety envelope (jail, ``--allow``/``--deny``, clean tree at the start of the
batch unless ``--allow-dirty``, ``--deny-apply-on-ambiguous``, atomic apply), a
failed step leaves the workspace as it was, and ``reset`` puts back every file
the batch's steps changed, as it was before the first of them (files changed
by anything else are left alone).  The batch does not undo its steps at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Protocol

from .engine import Engine, error_bundle
from .errors import InternalError, LanserError, UnsupportedCap
from .rewards.steps import BadLine, Step, iter_lines, parse_line

if TYPE_CHECKING:
    from .rewards.runner import TrajectoryRunner

RecordHook = Callable[[str, str | None, dict[str, Any], dict[str, Any]], None]


class StepRunner(Protocol):
    """What runs the steps: an :class:`~lanser.engine.Engine`, or a daemon's
    (:class:`lanser.daemon.client.DaemonSteps`)."""

    async def run(self, cmd: str, selector: str | None = None,
                  args: dict[str, Any] | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Call:
    """What one step is, as the trace records it: command, selector and arguments."""

    cmd: str
    selector: str | None
    args: dict[str, Any]


def step_call(step: Step, n: int = 1) -> Call:
    """A validated step as a trace operation (pure).  A query is the engine command; a
    writing step keeps the step itself (replay runs it again through the runner), its
    input line, its position ``n`` in the batch, and ``apply: true``."""
    if step.op == "query":
        return Call(str(step.raw["cmd"]), step.selector, {})
    return Call(step.op, step.selector, {"step": step.raw, "line": step.line, "n": n, "apply": True})


def record(line: int, step_id: Any, bundle: dict[str, Any]) -> dict[str, Any]:
    """The output line of one step."""
    return {"id": step_id, "line": line, "exitCode": int(bundle["meta"]["exit_code"]), "bundle": bundle}


def bad_line_record(bad: BadLine) -> dict[str, Any]:
    args: dict[str, Any] = {"line": bad.line}
    return record(bad.line, bad.id, error_bundle(bad.op or "batch", None, args, bad.error))


def parse_batch(text: str) -> list[Step | BadLine]:
    """Every non-blank line of a batch file, parsed (never raises)."""
    return [parse_line(line, n) for n, line in iter_lines(text) if line is not None]


class BatchSteps:
    """Runs one batch's steps: queries on ``queries`` (an Engine, or a daemon's steps), every
    other op through one TrajectoryRunner on ``engine`` (started at the first such step)."""

    def __init__(self, queries: StepRunner, engine: Engine | None) -> None:
        self.queries = queries
        self.engine = engine
        self.runner: TrajectoryRunner | None = None

    async def run(self, n: int, step: Step) -> tuple[Call, dict[str, Any]]:
        """Step number ``n`` (1-based) -> (its trace call, its bundle); never raises LanserError."""
        call = step_call(step, n)
        if step.op == "query":
            return call, await self.queries.run(call.cmd, call.selector, {})
        return call, await self.mutate(n, step)

    async def mutate(self, n: int, step: Step) -> dict[str, Any]:
        """A writing step (or ``reset``), exactly as ``lanser reward`` runs it; its step bundle."""
        from .rewards.runner import TrajectoryRunner

        if self.engine is None:
            return error_bundle(step.op, step.selector, {}, UnsupportedCap(
                f"op {step.op!r} needs an in-process engine (this batch runs on a daemon)"))
        if self.runner is None:
            self.runner = TrajectoryRunner(self.engine)
        bundles: list[dict[str, Any]] = []
        self.runner.on_bundle = bundles.append
        self.runner.step_no = n - 1  # the step bundle's "step" is the batch position
        try:
            await self.runner.run_step(step)
        except LanserError as exc:  # the runner could not start (server), or pull diagnostics
            return error_bundle(step.op, step.selector, {}, exc)
        except Exception as exc:  # an internal failure of one step: exit 1, the batch goes on
            return error_bundle(step.op, step.selector, {}, InternalError(
                f"internal error: {type(exc).__name__}: {exc}"))
        finally:
            self.runner.on_bundle = None
        return bundles[-1]


async def run_batch(queries: StepRunner, steps: list[Step | BadLine], *, engine: Engine | None = None,
                    on_bundle: RecordHook | None = None) -> AsyncIterator[dict[str, Any]]:
    """Run the steps in order and yield one record per step.

    Queries run on ``queries``; writing steps on ``engine`` (default: ``queries`` when it is
    an Engine).  ``on_bundle(cmd, selector, args, bundle)`` is told about every step that
    was run (the trace recorder uses it).
    """
    if engine is None and isinstance(queries, Engine):
        engine = queries
    batch = BatchSteps(queries, engine)
    for n, step in enumerate(steps, start=1):
        if isinstance(step, BadLine):
            yield bad_line_record(step)
            continue
        call, bundle = await batch.run(n, step)
        if on_bundle is not None:
            on_bundle(call.cmd, call.selector, call.args, bundle)
        yield record(step.line, step.id, bundle)


def writes(steps: list[Step | BadLine]) -> bool:
    """Whether a batch has a step other than a query (it then runs on one in-process engine)."""
    return any(isinstance(s, Step) and s.op != "query" for s in steps)


def batch_exit_code(codes: list[int]) -> int:
    """0 when every step succeeded, else the exit code of the first failing step."""
    return next((c for c in codes if c != 0), 0)
