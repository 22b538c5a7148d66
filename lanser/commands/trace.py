"""``lanser trace replay|list|show``: audit and replay a recorded trace (no server started)."""

from __future__ import annotations

from typing import Any

import click

from .. import output
from ..errors import NotFound, ReplayMismatch
from .runtime import Globals, global_command


def _git_answer(answer: Any) -> str:
    if isinstance(answer, dict):
        return f"git refused to read the repository: {answer.get('unreadable')}"
    if answer is None:
        return "not a git work tree"
    return ("dirty: " + ", ".join(answer)) if answer else "clean"


@global_command("replay")
@click.argument("trace_path", metavar="TRACE")
@click.option("--only", type=int, default=None, help="Replay only operation N (1-based, as `trace list` numbers it).")
@click.option("--bundles", "print_bundles", is_flag=True, default=False,
              help="Print the regenerated bundles (canonical JSON, one a line; every step of a reward run) "
                   "instead of the report.")
@click.option("--records", "print_records", is_flag=True, default=False,
              help="Print the regenerated reward records (as `lanser reward` printed them) instead of the report.")
def replay_cmd(g: Globals, trace_path: str, only: int | None, print_bundles: bool, print_records: bool) -> int:
    """Regenerate every recorded bundle (and reward record) from the trace, with no server,
    and compare bytes: exit 0 when identical, 76 on any mismatch.  A trace that writes is
    replayed in a scratch copy; the workspace is never written.

    \b
    Example:
      lanser trace replay run.jsonl -w path/to/checkout
    """
    from ..trace.replay import replay

    if print_bundles and print_records:
        raise click.UsageError("give at most one of --bundles and --records")
    results = replay(trace_path, g.options().workspace, only=only)
    bad = [r for r in results if r.status == "mismatch"]
    for r in results:
        if print_bundles:
            for bundle in r.bundles:
                output.emit_json(bundle)
        elif print_records:
            for record in r.records:
                output.emit_json(record)
        elif g.as_json:
            output.emit_json(r.to_json())
        else:
            what = f"reward ({len(r.bundles)} steps)" if r.op.trajectory else f"{r.op.cmd} {r.op.selector or ''}"
            output.emit_lines([f"{r.op.index}: {what} -> {r.status}" + (f": {r.reason}" if r.reason else "")])
    if bad:
        raise ReplayMismatch(f"operation {bad[0].op.index}: {bad[0].reason}")
    if not g.as_json and not print_bundles and not print_records:
        where = " (in a scratch copy: the trace writes; the workspace was not touched)" \
            if any(r.scratch for r in results) else ""
        output.emit_lines([f"{len(results)} operations replayed, all identical{where}"])
    return 0


@global_command("list")
@click.argument("trace_path", metavar="TRACE")
@click.option("--op", "cmd", default=None, help="Only operations of this command (def, refs, ...).")
@click.option("--selector", default=None, help="Only operations whose selector contains TEXT.")
@click.option("--exit-code", type=int, default=None, help="Only operations that ended with this exit code.")
@click.option("--status", type=click.Choice(["ok", "error"]), default=None,
              help="Only operations whose bundle has this status.")
def list_cmd(g: Globals, trace_path: str, cmd: str | None, selector: str | None, exit_code: int | None,
             status: str | None) -> int:
    """One line per recorded operation (numbered for `trace show` and `replay --only`):
    number, command, selector (or a reward run's step count), exit code, status, frames,
    bundleId.

    \b
    Example:
      lanser trace list run.jsonl --status error
    """
    from ..trace import operations, read_trace, select

    ops = select(operations(read_trace(trace_path)), cmd=cmd, selector=selector, exit_code=exit_code,
                 status=status)
    for op in ops:
        s = op.summary()
        if g.as_json:
            output.emit_json(s)
        else:
            what = f"{s['steps']} steps" if op.trajectory else (s["selector"] or "-")
            output.emit_lines([f"{s['n']}\t{s['cmd']}\t{what}\texit={s['exitCode']}\t"
                               f"{s['status']}\t{s['frames']} frames\t{s['bundleId']}"])
    return 0


@global_command("show")
@click.argument("trace_path", metavar="TRACE")
@click.argument("n", type=int)
def show_cmd(g: Globals, trace_path: str, n: int) -> int:
    """Operation N of the trace: start, workspace digest, frames (methods), git answers, bundle
    (a reward run: every step and the records it printed)."""
    from ..trace import operations, read_trace

    ops = operations(read_trace(trace_path))
    if not 1 <= n <= len(ops):
        raise NotFound(f"trace {trace_path} has {len(ops)} operations; no operation {n}")
    op = ops[n - 1]
    if g.as_json:
        shown: dict[str, Any] = {"start": op.start, "frames": op.frames, "git": op.git, "workspace": op.files,
                                 "end": op.end}
        if op.trajectory:
            shown.update(bundles=op.bundles, records=op.records)
        else:
            shown["bundle"] = op.bundle
        output.emit_json(shown)
        return 0
    s = op.summary()
    what = f"reward ({s['steps']} steps)" if op.trajectory else f"{op.cmd} {op.selector or ''}"
    out = [f"operation {n} (run {op.run}, op {op.op}): {what}",
           f"exit {s['exitCode']} {s['status']}  {s['bundleId']}"]
    if op.end.get("error"):
        out.append(f"error: {op.end['error'].get('code')}: {op.end['error'].get('message')}")
    out.append("workspace (as the run began):" if op.trajectory else "workspace:")
    out += [f"  {rel} {blob or 'missing'}" for rel, blob in sorted(op.files.items())]
    out.append(f"frames: {len(op.frames)}")
    for fr in op.frames:
        msg = fr["msg"]
        if "method" in msg:
            out.append(f"  {fr['dir']} {msg['method']}" + (f" #{msg['id']}" if "id" in msg else ""))
        else:
            out.append(f"  {fr['dir']} response #{msg.get('id')}" + (" (error)" if msg.get("error") else ""))
    if op.git:
        out.append(f"git work-tree answers: {len(op.git)}")
        out += [f"  {_git_answer(a)}" for a in op.git]
    if op.trajectory:
        out.append("steps:")
        for b in op.bundles:
            args = (b.get("request") or {}).get("args") or {}
            pr = b.get("processReward") or {}
            err = b.get("error") or {}
            out.append(f"  {args.get('step')}: line {args.get('line')} {args.get('op') or 'invalid'} "
                       f"{b.get('status')} exit={(b.get('meta') or {}).get('exit_code')} r={pr.get('r')}"
                       + (f" {err.get('code')}: {err.get('message')}" if err else "") + f"  {b.get('bundleId')}")
        out.append("records:")
        output.emit_lines(out)
        for record in op.records:
            output.emit_json(record)
        return 0
    out.append("bundle:")
    output.emit_lines(out)
    output.emit_json(op.bundle)
    return 0


@click.group("trace")
def trace_group() -> None:
    """Replay and audit JSON Lines traces written by --trace-file.

    \b
    Examples:
      lanser --trace-file run.jsonl def src/app.py:42:7
      lanser trace list run.jsonl
      lanser trace show run.jsonl 1
      lanser trace replay run.jsonl
    """


for _cmd in (replay_cmd, list_cmd, show_cmd):
    trace_group.add_command(_cmd)

COMMANDS = [trace_group]
