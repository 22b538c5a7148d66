"""``batch``: many steps, one warm server, one response line per input line.

Steps are the contract's (section 5) JSON Lines, parsed by
:mod:`lanser.rewards.steps`.  Every non-blank input line yields exactly one
record, in input order::

    {"id": <echoed>, "line": <1-based input line>, "exitCode": <int>, "bundle": {...}}

A malformed line gets an error record (exit 2) and the batch goes on.  Queries
run through the one :class:`~lanser.engine.Engine` of the batch, so the server
starts at most once.  Other ops run the engine handler of the same name
(``rename``, ``edit``, ``patch``, ``write``, ``reset``) when one is
registered, with the step's other fields as arguments and ``apply: true``
(the contract: mutating batch steps apply, in order); without a handler the
step is E/UNSUPPORTED_CAP (72).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Protocol

from .engine import error_bundle
from .rewards.steps import BadLine, Step, iter_lines, parse_line

RecordHook = Callable[[str, str | None, dict[str, Any], dict[str, Any]], None]


class StepRunner(Protocol):
    """What runs the steps: an :class:`~lanser.engine.Engine`, or a daemon's
    (:class:`lanser.daemon.client.DaemonSteps`)."""

    async def run(self, cmd: str, selector: str | None = None,
                  args: dict[str, Any] | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Call:
    """What one step asks the engine: command, selector and arguments."""

    cmd: str
    selector: str | None
    args: dict[str, Any]


def step_call(step: Step) -> Call:
    """Map a validated step to an engine call (pure)."""
    if step.op == "query":
        return Call(str(step.raw["cmd"]), step.selector, {})
    args = {k: v for k, v in step.raw.items() if k not in ("op", "id", "selector")}
    if step.mutating:
        args.setdefault("apply", True)
    return Call(step.op, step.selector, args)


def record(line: int, step_id: Any, bundle: dict[str, Any]) -> dict[str, Any]:
    """The output line of one step."""
    return {"id": step_id, "line": line, "exitCode": int(bundle["meta"]["exit_code"]), "bundle": bundle}


def bad_line_record(bad: BadLine) -> dict[str, Any]:
    args: dict[str, Any] = {"line": bad.line}
    return record(bad.line, bad.id, error_bundle(bad.op or "batch", None, args, bad.error))


def parse_batch(text: str) -> list[Step | BadLine]:
    """Every non-blank line of a batch file, parsed (never raises)."""
    return [parse_line(line, n) for n, line in iter_lines(text) if line is not None]


async def run_batch(engine: StepRunner, steps: list[Step | BadLine], *,
                    on_bundle: RecordHook | None = None) -> AsyncIterator[dict[str, Any]]:
    """Run the steps in order on ``engine`` and yield one record per step.

    ``on_bundle(cmd, selector, args, bundle)`` is told about every step that
    reached the engine (the trace recorder uses it).
    """
    for step in steps:
        if isinstance(step, BadLine):
            yield bad_line_record(step)
            continue
        call = step_call(step)
        bundle = await engine.run(call.cmd, call.selector, call.args)
        if on_bundle is not None:
            on_bundle(call.cmd, call.selector, call.args, bundle)
        yield record(step.line, step.id, bundle)


def batch_exit_code(codes: list[int]) -> int:
    """0 when every step succeeded, else the exit code of the first failing step."""
    return next((c for c in codes if c != 0), 0)
