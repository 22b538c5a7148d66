"""``lanser batch IN.jsonl [-o OUT.jsonl]``: run steps on one warm server."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

import click

from .. import output
from ..errors import FsPermissions
from ..fsutil import AtomicFile
from .runtime import Globals, global_command, recorder_for, run_async, step_runner


async def _run(g: Globals, text: str, out: TextIO | None) -> list[int]:
    from ..batch import parse_batch, run_batch, writes

    steps = parse_batch(text)
    engine = step_runner(g)  # a running daemon's steps, or an in-process Engine
    if writes(steps):
        # Writing steps run through the reward runner on the in-process engine, and so do
        # the queries: one server, which saw every write.  (--daemon require without a
        # daemon has already failed above.)
        engine = getattr(engine, "fallback", engine)
    recorder = recorder_for(g, engine)
    codes: list[int] = []
    bar = output.Progress(len(steps))
    try:
        async for rec in run_batch(engine, steps, on_bundle=recorder.finish if recorder else None):
            output.emit_json(rec, out)
            codes.append(rec["exitCode"])
            bar.update()
    finally:
        bar.finish()
        await engine.close()
    return codes


@global_command("batch", writes=True)
@click.argument("in_path", metavar="IN.jsonl")
@click.option("-o", "--output", "out_path", default=None, help="Write the response lines here (default stdout).")
def batch(g: Globals, in_path: str, out_path: str | None) -> int:
    """Run JSON Lines steps on one server; one response line per input line, in order:
    {"id", "line", "exitCode", "bundle"}.  Queries are the commands' bundles; writing
    steps apply through the safety envelope, as in `lanser reward`.  Exit 0 when every
    step succeeded, else the exit code of the first failing step.

    \b
    Step lines (an optional "id" is echoed):
      {"id":"d1","op":"query","cmd":"def","selector":"src/app.py:42:7"}
      {"op":"query","cmd":"diag"}
      {"op":"rename","selector":"py://pkg.mod#load_data","newName":"fetch_data"}
      {"op":"write","path":"src/new.py","content":"x = 1\\n"}
      {"op":"edit","selector":"py://pkg.mod#f:body","text":"return 1"}
      {"op":"patch","patch":"<unified diff, as git diff prints it>"}
      {"op":"reset"}

    \b
    Examples:
      lanser batch in.jsonl
      lanser batch in.jsonl -o out.jsonl --json
    """
    from ..batch import batch_exit_code
    from ..rewards.steps import read_steps_text

    text = read_steps_text(in_path)
    if out_path is None:
        codes = run_async(lambda: _run(g, text, None))
    else:
        codes = _to_file(g, text, Path(out_path))
    return batch_exit_code(codes)


def _to_file(g: Globals, text: str, path: Path) -> list[int]:
    """Write through a temporary file renamed into place: never a partial OUT file."""
    try:
        with AtomicFile(path) as out:
            codes: Any = run_async(lambda: _run(g, text, out.stream))
    except OSError as exc:
        raise FsPermissions(f"cannot write {path}: {exc.strerror or exc}") from None
    return list(codes)


COMMANDS = [batch]
