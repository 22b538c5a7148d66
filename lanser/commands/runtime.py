"""What every command shares at run time: the global and safety options, the merged
``Globals`` of one invocation, the ``global_command`` decorator, and the ways a command runs
the engine (on a warm daemon or in-process, traced, under Lanser's Ctrl-C policy) and prints
its bundle.

The command modules (``lanser/commands/*.py``) import these; ``lanser/cli.py`` (the group and
the one error handler) imports only the option lists.  Importing this module stays light:
the engine is imported only when a command runs in-process.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import TYPE_CHECKING, Any, Callable, Iterator

import click

from .. import output
from ..bundles.envelope import error_bundle
from ..errors import LanserError
from ..options import Options

if TYPE_CHECKING:  # the engine (lsprotocol, pygls, tree-sitter) is imported only when a command runs in-process
    from ..engine import Engine
    from ..trace import Recorder

GLOBAL_OPTIONS: list[click.Option] = [
    click.Option(["-w", "--workspace"], default=None, metavar="DIR",
                 help="Workspace root (default: current directory)."),
    click.Option(["--server"], default=None, type=click.Choice(["pyright", "basedpyright"]),
                 help="Pinned server (default pyright)."),
    click.Option(["--index-io"], default=None, type=click.Choice(["utf-8", "utf-16", "codepoint"]),
                 help="Units of the columns in selectors you type (default codepoint)."),
    click.Option(["--trace-file"], default=None, metavar="PATH",
                 help="Append a JSON Lines trace of this run (replay it with `lanser trace replay`)."),
    click.Option(["--json", "as_json"], is_flag=True, default=None,
                 help="Print the whole bundle as one line of canonical JSON (default: a short summary)."),
    click.Option(["--timeout"], default=None, type=click.FloatRange(min=0, min_open=True),
                 help="Per-request timeout in seconds (> 0; default 30)."),
    click.Option(["--verbose"], is_flag=True, default=None,
                 help="With --json: an ioRange in --index-io units beside each range, and meta.volatile "
                      "(elapsed time, root, interpreter, server pid). The summary's lines stay the same "
                      "(its bundleId is the verbose bundle's)."),
    click.Option(["--python"], default=None, metavar="PATH",
                 help="Interpreter whose environment the server resolves imports in (default: the "
                      "workspace's .venv/venv, else $VIRTUAL_ENV)."),
    click.Option(["--cursor"], default=None, type=click.IntRange(min=0),
                 help="Resume a truncated list at this index (>= 0)."),
    click.Option(["--daemon"], default=None, type=click.Choice(["auto", "never", "require"]),
                 help="auto (default, or $LANSER_DAEMON): use a running daemon, else run here; never; "
                      "require: start one if needed."),
]
SAFETY_OPTIONS: list[click.Option] = [
    click.Option(["--allow-dirty"], is_flag=True, default=None,
                 help="Write even when the git tree has uncommitted changes (or git cannot read it)."),
    click.Option(["--deny-apply-on-ambiguous"], is_flag=True, default=None,
                 help="Refuse to apply when the selector resolved with confidence below tau."),
    click.Option(["--allow"], multiple=True, default=None, metavar="GLOB",
                 help="Only write paths matching GLOB (repeatable)."),
    click.Option(["--deny"], multiple=True, default=None, metavar="GLOB",
                 help="Never write paths matching GLOB (repeatable; wins over --allow)."),
]
GLOBAL_NAMES = [o.name for o in GLOBAL_OPTIONS + SAFETY_OPTIONS]
_GLOBAL_LINE = ("-w/--workspace DIR, --server, --index-io, --json, --verbose, --timeout, --python, --cursor, "
                "--daemon, --trace-file: before or after the command, described in `lanser --help`.")

class Globals:
    """The merged global option values of one invocation."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def get(self, name: str, default: Any = None) -> Any:
        v = self.values.get(name)
        return default if v is None or v == () else v

    def options(self) -> Options:
        """The Engine options (defaults from :class:`lanser.options.Options`)."""
        return Options.from_values(self.values)

    def options_dict(self) -> dict[str, Any]:
        """The Engine options as plain values (what a daemon request carries)."""
        return self.options().to_json()

    @property
    def as_json(self) -> bool:
        return bool(self.get("as_json", False))


def merged_globals(ctx: click.Context, local: dict[str, Any]) -> Globals:
    values = dict((ctx.find_root().params or {}))
    for name in GLOBAL_NAMES:
        v = local.pop(name, None)
        if v is not None and v != ():
            values[name] = v
    return Globals(values)


class LanserCommand(click.Command):
    """A command whose help shows its own options (and the safety options if it writes)
    and names the global options in one line instead of repeating them."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        globals_ = {o.name for o in GLOBAL_OPTIONS}
        safety = {o.name for o in SAFETY_OPTIONS}
        own, guard = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
            if record is None or param.name in globals_:
                continue
            (guard if param.name in safety else own).append(record)
        if own:
            with formatter.section("Options"):
                formatter.write_dl(own)
        if guard:
            with formatter.section("Safety options (also before the command)"):
                formatter.write_dl(guard)
        with formatter.section("Global options"):
            formatter.write_text(_GLOBAL_LINE)


def global_command(name: str, *, writes: bool = False, **kwargs: Any) -> Callable[[Callable[..., Any]], click.Command]:
    """A command that also takes the global options (and, when it ``writes``, the safety
    options); its callback gets ``g: Globals`` first."""
    def deco(f: Callable[..., Any]) -> click.Command:
        def callback(**params: Any) -> None:
            ctx = click.get_current_context()
            g = merged_globals(ctx, params)
            code = f(g, **params)
            ctx.exit(code or 0)
        extra = list(GLOBAL_OPTIONS) + (list(SAFETY_OPTIONS) if writes else [])
        cmd = LanserCommand(name, callback=callback, params=list(getattr(f, "__click_params__", []))[::-1]
                            + extra, help=inspect.cleandoc(f.__doc__ or ""), **kwargs)
        return cmd
    return deco


def run_engine(g: Globals, cmd: str, selector: str | None, args: dict[str, Any] | None = None, *,
               extra_lines: Callable[[dict[str, Any]], list[str]] | None = None) -> int:
    """Run one engine command (on a warm daemon if one serves, else in a fresh engine) and
    print its bundle (``extra_lines``: the command's own lines in its summary); returns the
    exit code."""
    bundle = via_daemon(g, cmd, selector, args or {})
    if bundle is None:
        bundle = in_process_bundle(g, cmd, selector, args or {})
    print_bundle(g, bundle, extra_lines)
    return int(bundle["meta"]["exit_code"])


def in_process_bundle(g: Globals, cmd: str, selector: str | None, args: dict[str, Any]) -> dict[str, Any]:
    """Run one command in a fresh in-process engine (traced with ``--trace-file``) under
    Lanser's Ctrl-C policy (:func:`run_async`) and return its bundle."""
    from ..engine import Engine

    try:
        engine = Engine(g.options(), frame_hook=None)
    except LanserError as exc:
        return error_bundle(cmd, selector, args, exc)

    async def go() -> dict[str, Any]:
        recorder = recorder_for(g, engine)
        try:
            bundle = await engine.run(cmd, selector, args)
        finally:
            await engine.close()
        if recorder is not None:
            recorder.finish(cmd, selector, args, bundle)
        return bundle

    result: dict[str, Any] = run_async(go, engine=engine)
    return result


def via_daemon(g: Globals, cmd: str, selector: str | None, args: dict[str, Any]) -> dict[str, Any] | None:
    """The bundle from a warm daemon, or None to run in-process (``--daemon``, see
    lanser/daemon/client.py).  Traced runs stay in-process: the trace needs the frames."""
    if g.get("trace_file"):
        return None
    from ..daemon.client import bundle_via_daemon

    try:
        return bundle_via_daemon(g.get("daemon"), g.options_dict(), cmd, selector, args)
    except LanserError as exc:
        return error_bundle(cmd, selector, args, exc)


def step_runner(g: Globals) -> Any:
    """What a multi-step command (``batch``) runs its steps on: an in-process Engine (built
    first, so bad options fail as before; it starts no server until a step needs one), or,
    when a daemon serves (``--daemon``, decided once), a DaemonSteps that falls back on that
    engine.  Traced runs stay in-process."""
    from ..engine import Engine

    engine = Engine(g.options())
    if g.get("trace_file"):
        return engine
    from ..daemon.client import DaemonSteps, daemon_serves

    if not daemon_serves(g.get("daemon"), g.options_dict()):
        return engine
    return DaemonSteps(g.get("daemon"), g.options_dict(), engine)


def recorder_for(g: Globals, engine: Engine) -> Recorder | None:
    """A trace recorder hooked to ``engine`` when ``--trace-file`` is given, else None."""
    path = g.get("trace_file")
    if not path:
        return None
    from ..trace import Recorder  # only imported when tracing

    rec = Recorder(path, engine)
    engine.frame_hook = rec.frame
    return rec


@contextlib.contextmanager
def sigint_handler(loop: Any, handler: Callable[[], None]) -> Iterator[None]:
    """``handler`` answers Ctrl-C on ``loop`` while the block runs (nothing is installed off
    the main thread or where the platform has no signals)."""
    import signal

    try:
        loop.add_signal_handler(signal.SIGINT, handler)
        installed = True
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals
        installed = False
    try:
        yield
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)


def run_async(make: Callable[[], Any], *, engine: Engine | None = None) -> Any:
    """Run a coroutine under Lanser's Ctrl-C policy (README, "Ctrl-C").

    Ctrl-C cancels the coroutine (a clean KeyboardInterrupt for :func:`main`: exit 130,
    the server killed), except once ``engine`` has passed the commit point of an apply
    (``engine.committed``): from then on Ctrl-C is noted and ignored, so the command
    finishes, reports the edit that landed and exits as it would have.  The handler runs
    on the event loop, never inside synchronous code, so an apply (which is synchronous
    from the journal to its commit point) is never torn by it."""
    import asyncio

    interrupts = 0

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def on_sigint() -> None:
            nonlocal interrupts
            interrupts += 1
            if engine is not None and engine.committed:
                return
            if task is not None:
                task.cancel()

        with sigint_handler(loop, on_sigint):
            return await make()

    try:
        result = asyncio.run(main())
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
    if interrupts and engine is not None and engine.committed:
        output.note("interrupted after the edit was written: the apply was finished and is reported")
    return result


def print_bundle(g: Globals, bundle: dict[str, Any],
                 extra_lines: Callable[[dict[str, Any]], list[str]] | None = None) -> None:
    """The bundle as ``--json`` asks, else its summary (an error bundle: its stderr line)."""
    if g.as_json:
        output.emit_json(bundle)
    elif bundle.get("status") == "error":
        output.error_line(bundle)
    else:
        output.emit_summary(bundle, extra=extra_lines(bundle) if extra_lines is not None else ())
