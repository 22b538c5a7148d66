"""``lanser reward STEPS.jsonl``: apply steps in order on one warm server, print one record a step.

Exit codes: 0 when every line was a valid step (records carry each failed
step's own error and exit code); 2 when at least one line was malformed (its
record is an error record with exitCode 2, and the run went on); 3 when the
STEPS file cannot be read; a failure of the whole run (the server cannot be
started, crashes twice) is that error's contract code with one stderr line.
With ``-o`` the file appears only when the run finished (no partial file),
or was stopped by Ctrl-C (it then holds the records of the steps that ran).
With ``--trace-file`` the whole run is one trace operation: frames, git
answers, the workspace as the run began, every step bundle and every printed
record (lanser/trace/); ``lanser trace replay`` regenerates them.

Ctrl-C (README, "Ctrl-C"): while a step runs, the first Ctrl-C lets that step
finish and print its record, then stops (exit 130; a step whose edit landed
always has its record); between steps, before the first and at a second
Ctrl-C the run stops at once.  Each record is written as soon as it is final.
An interrupted run is not written to the trace (its STEPS text would replay
steps that never ran).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, overload

import click

from .. import output
from ..engine import Engine
from ..errors import LanserError
from ..fsutil import AtomicFile
from ..rewards.formula import AGGREGATES, DIAG_TERMS, parse_weights
from ..rewards.runner import BY_FILE, SCOPES, SEVERITY_NAMES, RewardOptions, TrajectoryRunner
from ..rewards.steps import SEPARATOR, BadLine, parse_steps, read_steps_text
from ..trace import trajectory_args
from .runtime import Globals, global_command, recorder_for, sigint_handler


def reward_options(*, severity: tuple[str, ...], scope: str, diag_term: str, weights: str | None,
                   clip: float | None, aggregate: str | None, in_memory: bool,
                   reset_between: bool, by_file: str = "changed", analyzers: str = "pyright") -> RewardOptions:
    """The command's options as a RewardOptions; bad values are click.BadParameter (exit 2)."""
    try:
        w = parse_weights(weights) if weights is not None else RewardOptions().weights
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--weights") from None
    try:
        return RewardOptions(severities=tuple(severity) or ("error",), scope=scope, diag_term=diag_term,
                             weights=w, clip=clip, aggregate=aggregate, in_memory=in_memory,
                             reset_between=reset_between, by_file=by_file,
                             analyzers=tuple(a.strip() for a in analyzers.split(",") if a.strip()))
    except ValueError as exc:
        why = str(exc)
        hint = "--clip" if "clip" in why else "--analyzers" if "ruff" in why or "analyzers" in why else None
        raise click.BadParameter(str(exc), param_hint=hint) from None


class _Sink:
    """stdout, or ``-o``'s file (:class:`lanser.fsutil.AtomicFile`), renamed into place when the
    run succeeded."""

    def __init__(self, out: str | None) -> None:
        self.file = AtomicFile(Path(out)) if out else None
        self.written = 0

    def write(self, record: dict[str, Any]) -> None:
        output.emit_json(record, self.file.stream if self.file is not None else None)
        self.written += 1

    def commit(self) -> None:
        if self.file is not None:
            self.file.commit()

    def discard(self) -> None:
        if self.file is not None:
            self.file.discard()


class _Interrupts:
    """Ctrl-C during a reward run: the step in flight finishes (and prints its record), then
    the run stops; with no step in flight, or at a second Ctrl-C, the run stops at once."""

    def __init__(self) -> None:
        self.count = 0
        self.in_flight: int | None = None  # the step number running now
        self.steps_started = 0
        self.task: asyncio.Task[Any] | None = None

    @property
    def stop(self) -> bool:
        return self.count > 0

    def on_sigint(self) -> None:
        self.count += 1
        if self.count == 1 and self.in_flight is not None:
            output.note(f"interrupt: finishing step {self.in_flight} and printing its record, then "
                        f"stopping (Ctrl-C again to stop at once)")
        elif self.task is not None:
            self.task.cancel()


class _UntilInterrupted(Sequence[Any]):
    """The run's items, ending early once Ctrl-C asked to stop: the runner treats that as
    the end of the input (it flushes aggregated records as at the end)."""

    def __init__(self, items: list[Any], interrupts: _Interrupts) -> None:
        self.items = items
        self.interrupts = interrupts

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, i: int) -> Any: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Any]: ...

    def __getitem__(self, i: int | slice) -> Any:
        return self.items[i]

    def __iter__(self) -> Iterator[Any]:
        for item in self.items:
            if self.interrupts.stop:
                return
            if item != SEPARATOR:
                self.interrupts.steps_started += 1
                self.interrupts.in_flight = self.interrupts.steps_started
            yield item


async def _run(g: Globals, text: str, items: list[Any], options: RewardOptions, sink: _Sink,
               interrupts: _Interrupts) -> None:
    loop = asyncio.get_running_loop()
    interrupts.task = asyncio.current_task()
    with sigint_handler(loop, interrupts.on_sigint):
        await _run_steps(g, text, items, options, sink, interrupts)


async def _run_steps(g: Globals, text: str, items: list[Any], options: RewardOptions, sink: _Sink,
                     interrupts: _Interrupts) -> None:
    engine = Engine(g.options())
    recorder = recorder_for(g, engine)  # --trace-file: the whole run is one trace operation
    traj = recorder.trajectory("reward", trajectory_args(text, options)) if recorder is not None else None
    steps = sum(1 for i in items if i != SEPARATOR)
    bar = output.Progress(steps)
    failure: LanserError | None = None
    aborted = False
    try:
        runner = TrajectoryRunner(engine, options)
        emit: Callable[[dict[str, Any]], Any] = sink.write
        if traj is not None:
            traj.begin()
            runner.on_bundle = traj.bundle
            emit = traj.tee(sink.write)
        await runner.start()

        def on_step(rec: dict[str, Any]) -> None:
            interrupts.in_flight = None
            bar.update(errors=rec["diagnostics"]["errors"])

        await runner.run(_UntilInterrupted(items, interrupts), emit=emit, on_step=on_step)
        aborted = interrupts.stop  # stopped early: the trace's STEPS text would replay more
    except LanserError as exc:
        failure = exc
        raise
    except BaseException:
        aborted = True
        raise
    finally:
        bar.finish()
        await engine.close()
        if traj is not None and not aborted:
            traj.finish(failure.exit_code if failure is not None else _exit_code(items), failure)


def _exit_code(items: list[Any]) -> int:
    """2 when a STEPS line was malformed (it got an error record), else 0."""
    return 2 if any(isinstance(i, BadLine) for i in items) else 0


@global_command("reward", writes=True)
@click.argument("steps_file", metavar="STEPS.jsonl")
@click.option("-o", "--output", "out", default=None, help="Write the records here instead of stdout.")
@click.option("--severity", multiple=True, type=click.Choice(list(SEVERITY_NAMES)),
              help="Severities D counts (repeatable; default error).")
@click.option("--scope", type=click.Choice(list(SCOPES)), default="workspace", show_default=True,
              help="Count the whole workspace, or only the files the step touched.")
@click.option("--diag-term", type=click.Choice(list(DIAG_TERMS)), default="delta", show_default=True,
              help="delta: D_prev - D; regression: resolved - introduced over diagnostic identities.")
@click.option("--weights", default=None, help="alpha=..,beta=..,gamma=.. (default 0.5,0.4,0.1).")
@click.option("--clip", type=float, default=None, help="Bound the diagnostic term to [-C, C].")
@click.option("--aggregate", type=click.Choice(list(AGGREGATES)), default=None,
              help="Add value/return per trajectory: sum (reward-to-go) or min (PURE min-form).")
@click.option("--in-memory", is_flag=True, default=False,
              help="Apply steps only as in-memory documents in the server; never write files.")
@click.option("--reset-between", is_flag=True, default=False,
              help="Restore the base at blank lines between trajectories and at the end.")
@click.option("--analyzers", default="pyright", show_default=True, metavar="pyright[,ruff]",
              help="What D counts: Pyright's diagnostics, plus with ruff every pyflakes (F) finding of "
                   "ruff's language server in the same files.")
@click.option("--by-file", type=click.Choice(list(BY_FILE)), default="changed", show_default=True,
              help="Per-file counts in each record: the files whose counts the step changed, or every "
                   "file with an error or warning.")
@click.option("--from", "from_kind", type=click.Choice(["swe-agent", "commits", "diffs"]), default=None,
              help="Label a recorded trajectory instead of STEPS.jsonl: a SWE-agent .traj file, a commit "
                   "range A..B of --repo, or JSON Lines of per-step diffs (always in memory).")
@click.option("--repo", default=None, help="With --from: the repository the trajectory ran on.")
@click.option("--base", default=None, help="With --from: the commit of --repo the trajectory started from "
                                           "(default: the one the .traj names, else --repo as it is).")
def reward(g: Globals, steps_file: str, out: str | None, severity: tuple[str, ...], scope: str,
           diag_term: str, weights: str | None, clip: float | None, aggregate: str | None,
           in_memory: bool, reset_between: bool, by_file: str, analyzers: str,
           from_kind: str | None = None, repo: str | None = None, base: str | None = None) -> int:
    """Apply the steps of STEPS.jsonl in order on one warm server and print one JSON
    record per step: its diagnostics and its process reward
    r = alpha*(D_prev - D) + beta*(2*S - 1) - gamma*(1 - a), where D counts
    diagnostics, S is 1 when every safety check passed and a is the selector's
    confidence.  A failed step leaves the workspace as it was.  Exit 0 when every line
    was a step (failed steps have their own exitCode), 2 if a line was not.

    \b
    Step lines (an optional "id" is echoed back):
      {"id":1,"op":"patch","patch":"<unified diff, as git diff prints it>"}
      {"op":"write","path":"src/x.py","content":"x = 1\\n"}
      {"op":"rename","selector":"py://pkg.mod#f","newName":"g"}
      {"op":"edit","selector":"py://pkg.mod#f:body","text":"return 1"}
      {"op":"query","cmd":"def","selector":"src/app.py:42:7"}
      {"op":"reset"}                  restore the workspace to where the run began

    \b
    Examples:
      lanser reward steps.jsonl
      lanser reward steps.jsonl --aggregate min --clip 5 -o records.jsonl
      lanser reward --from swe-agent run.traj --repo ../pydicom --base 8da0b9b2
    """
    options = reward_options(severity=severity, scope=scope, diag_term=diag_term, weights=weights,
                             clip=clip, aggregate=aggregate, in_memory=in_memory,
                             reset_between=reset_between, by_file=by_file, analyzers=analyzers)
    if from_kind is not None:
        return _reward_from(g, from_kind, steps_file, repo, base, options, out)
    if repo is not None or base is not None:
        raise click.UsageError("--repo and --base go with --from")
    text = read_steps_text(steps_file)
    items = parse_steps(text, blank_separates=reset_between)
    sink = _Sink(out)
    if not any(i != SEPARATOR for i in items):
        sink.commit()  # nothing to do: no server is started, no record printed
        return 0
    interrupts = _Interrupts()
    try:
        asyncio.run(_run(g, text, items, options, sink, interrupts))
        sink.commit()
    except (KeyboardInterrupt, asyncio.CancelledError):
        sink.commit()  # the records printed so far are the truth about the steps that ran
        output.note(f"interrupted: stopped at once; {sink.written} record(s) written"
                    + (f"; step {interrupts.in_flight} was running: if it edited files, its edit may "
                       f"have landed without a record" if interrupts.in_flight is not None else ""))
        return 130
    except BaseException:  # a LanserError is rendered by the one handler (lanser/cli.py)
        sink.discard()
        raise
    if interrupts.stop and interrupts.steps_started < sum(1 for i in items if i != SEPARATOR):
        output.note(f"interrupted: stopped after step {interrupts.steps_started}; "
                    f"{sink.written} record(s) written")
        return 130
    return _exit_code(items)


def _reward_from(g: Globals, kind: str, source: str, repo: str | None, base: str | None,
                 options: RewardOptions, out: str | None) -> int:
    """``--from``: convert a recorded trajectory (lanser/integrations/trajectories) and score it."""
    from ..integrations.trajectories.label import label_source

    if repo is None:
        raise click.UsageError("--from needs --repo")
    sink = _Sink(out)
    try:
        label_source(g.options(), kind, source, repo=repo, base=base, options=options, emit=sink.write,
                     note=output.note)
        sink.commit()
    except BaseException:  # a LanserError is rendered by the one handler (lanser/cli.py)
        sink.discard()
        raise
    return 0


COMMANDS = [reward]
