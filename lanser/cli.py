"""The click group: parse, call the library, print.  Nothing else lives here.

Global options are accepted before and after the command name: they are
declared on the group and on every command, and a value given after the
command wins over one given before it.  The safety options of writing
commands (``--allow-dirty``, ``--allow``, ``--deny``,
``--deny-apply-on-ambiguous``) are declared on the group and on the commands
that write only.  ``--help`` lists the global options once, in the group's
help; a command's help lists its own options (and the safety options if it
writes) and names the global ones in one line.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from typing import TYPE_CHECKING, Any, Callable

import click

from . import output
from .errors import InternalError, LanserError

if TYPE_CHECKING:  # the engine (lsprotocol, pygls, tree-sitter) is imported only when a command runs in-process
    from .engine import Engine, Options


def __getattr__(name: str) -> Any:
    """``Engine``, ``Options`` and ``error_bundle`` stay importable from here, lazily."""
    if name in ("Engine", "Options", "error_bundle"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(name)

GLOBAL_OPTIONS: list[click.Option] = [
    click.Option(["-w", "--workspace"], default=None, metavar="DIR", help="Workspace root (default: current directory)."),
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

# Modules under lanser/commands that add commands to the group (each has COMMANDS).  The
# group imports them in this order until it finds the command asked for, so the commands a
# daemon can answer come first: finding them imports nothing heavy.
COMMAND_MODULES = ["navigate", "mutate", "daemon", "doctor", "reward", "trace", "batch", "schema", "serve"]


class Globals:
    """The merged global option values of one invocation."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def get(self, name: str, default: Any = None) -> Any:
        v = self.values.get(name)
        return default if v is None or v == () else v

    def options(self) -> Options:
        from .engine import Options

        return Options(**self.options_dict())

    def options_dict(self) -> dict[str, Any]:
        """The Engine options as plain values (what a daemon request carries)."""
        return dict(
            workspace=self.get("workspace", "."), server=self.get("server", "pyright"),
            index_io=self.get("index_io", "codepoint"), timeout=self.get("timeout", 30.0),
            python=self.get("python"), verbose=bool(self.get("verbose", False)),
            cursor=self.get("cursor", 0), allow_dirty=bool(self.get("allow_dirty", False)),
            deny_apply_on_ambiguous=bool(self.get("deny_apply_on_ambiguous", False)),
            allow=tuple(self.get("allow", ())), deny=tuple(self.get("deny", ())))

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


def run_engine(g: Globals, cmd: str, selector: str | None, args: dict[str, Any] | None = None) -> int:
    """Run one engine command (on a warm daemon if one serves, else in a fresh engine) and
    print its bundle; returns the exit code."""
    bundle = via_daemon(g, cmd, selector, args or {})
    if bundle is None:
        bundle = in_process_bundle(g, cmd, selector, args or {})
    print_bundle(g, bundle)
    return int(bundle["meta"]["exit_code"])


def in_process_bundle(g: Globals, cmd: str, selector: str | None, args: dict[str, Any]) -> dict[str, Any]:
    """Run one command in a fresh in-process engine (traced with ``--trace-file``) under
    Lanser's Ctrl-C policy (:func:`run_async`) and return its bundle."""
    from .engine import Engine, error_bundle

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
    from .daemon.client import bundle_via_daemon

    try:
        return bundle_via_daemon(g.get("daemon"), g.options_dict(), cmd, selector, args)
    except LanserError as exc:
        from .engine import error_bundle

        return error_bundle(cmd, selector, args, exc)


def step_runner(g: Globals) -> Any:
    """What a multi-step command (``batch``) runs its steps on: an in-process Engine (built
    first, so bad options fail as before; it starts no server until a step needs one), or,
    when a daemon serves (``--daemon``, decided once), a DaemonSteps that falls back on that
    engine.  Traced runs stay in-process."""
    from .engine import Engine

    engine = Engine(g.options())
    if g.get("trace_file"):
        return engine
    from .daemon.client import DaemonSteps, daemon_serves

    if not daemon_serves(g.get("daemon"), g.options_dict()):
        return engine
    return DaemonSteps(g.get("daemon"), g.options_dict(), engine)


def recorder_for(g: Globals, engine: Engine) -> Any:
    """A trace recorder hooked to ``engine`` when ``--trace-file`` is given, else None."""
    path = g.get("trace_file")
    if not path:
        return None
    from .trace import Recorder  # only imported when tracing

    rec = Recorder(path, engine)
    engine.frame_hook = rec.frame
    return rec


def run_async(make: Callable[[], Any], *, engine: Engine | None = None) -> Any:
    """Run a coroutine under Lanser's Ctrl-C policy (README, "Ctrl-C").

    Ctrl-C cancels the coroutine (a clean KeyboardInterrupt for :func:`main`: exit 130,
    the server killed), except once ``engine`` has passed the commit point of an apply
    (``engine.committed``): from then on Ctrl-C is noted and ignored, so the command
    finishes, reports the edit that landed and exits as it would have.  The handler runs
    on the event loop, never inside synchronous code, so an apply (which is synchronous
    from the journal to its commit point) is never torn by it."""
    import asyncio
    import signal

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

        try:
            loop.add_signal_handler(signal.SIGINT, on_sigint)
            installed = True
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals
            installed = False
        try:
            return await make()
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGINT)

    try:
        result = asyncio.run(main())
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
    if interrupts and engine is not None and engine.committed:
        output.note("interrupted after the edit was written: the apply was finished and is reported")
    return result


def print_bundle(g: Globals, bundle: dict[str, Any]) -> None:
    if g.as_json:
        output.emit_json(bundle)
    elif bundle.get("status") == "error":
        output.error_line(bundle)
    else:
        output.emit_summary(bundle)


class LazyGroup(click.Group):
    """Imports the modules of COMMAND_MODULES in order, only until the command asked for is
    found, so ``lanser def`` answered by a daemon never imports the engine's dependencies.
    Reading ``group.commands`` from outside loads them all."""

    _commands: dict[str, click.Command]
    _loaded: set[str]

    @property  # type: ignore[override]
    def commands(self) -> dict[str, click.Command]:  # pyright: ignore[reportIncompatibleVariableOverride]
        self._load(None)
        return self._commands

    @commands.setter
    def commands(self, value: dict[str, click.Command]) -> None:  # pyright: ignore[reportIncompatibleVariableOverride]
        self._commands = dict(value)
        self._loaded = set()

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        self._commands[name or cmd.name or ""] = cmd

    def _load(self, wanted: str | None) -> None:
        for mod_name in COMMAND_MODULES:
            if wanted is not None and wanted in self._commands:
                return
            if mod_name in self._loaded:
                continue
            self._loaded.add(mod_name)
            mod = importlib.import_module(f".commands.{mod_name}", __package__)
            for cmd in mod.COMMANDS:
                self.add_command(cmd)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self._commands:
            self._load(cmd_name)
        return self._commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load(None)
        return sorted(self._commands)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        safety = {o.name for o in SAFETY_OPTIONS}
        records = [(p.name, p.get_help_record(ctx)) for p in self.get_params(ctx)]
        with formatter.section("Global options (before or after the command)"):
            formatter.write_dl([r for n, r in records if r is not None and n not in safety])
        with formatter.section("Safety options (rename, edit, actions --apply, batch, reward)"):
            formatter.write_dl([r for n, r in records if r is not None and n in safety])
        self.format_commands(ctx, formatter)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lanser")
def group(**params: Any) -> None:
    """Lanser: a pinned Pyright language server between coding agents and code.
    Answers are bundles of canonical JSON (--json) or short summaries; edits are
    previewed, checked and applied atomically; `reward` scores agent steps.

    \b
    Selectors (lines and columns 1-based, columns in --index-io units):
      src/app.py:42:7                       cursor, as compilers and Lanser print it
      src/app.py@L42:C7                     cursor
      src/app.py@R(42,7->44,1)              range
      py://pkg.mod#Class.method[:sig|body|doc]   symbol (?overload=N)
      ast://[module=pkg.mod]/[class=C]/[def=m]/call[2]   AST path
      anchor://src/app.py#"def load_data("  content anchor (locate mints them)
      any of them + ?v=<git blob id>; or PositionSpec JSON {"kind":"cursor",...} (0-based)

    \b
    Examples:
      lanser def src/app.py:42:7
      lanser refs py://pkg.mod#load_data --json
      lanser diag                           # the whole workspace, as pyright checks it
      lanser rename py://pkg.mod#load_data fetch_data --apply
      lanser reward steps.jsonl             # one JSON record per step

    Exit codes: 0 ok, 2 bad selector or input, 3 not found, 4 ambiguous,
    64/65 server timeout/crash, 70 apply conflict, 71 write refused, 130 Ctrl-C.
    """


for _opt in GLOBAL_OPTIONS + SAFETY_OPTIONS:
    group.params.append(_opt)


def _load_commands() -> None:
    """Import every command module now (``group.commands`` does the same lazily)."""
    group.list_commands(click.Context(group))


def main(argv: list[str] | None = None) -> int:
    """Entry point: every LanserError raised outside a bundle becomes its exit code and one line."""
    try:
        rv = group.main(args=argv, prog_name="lanser", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.ClickException as exc:
        exc.show()
        return 2
    except (click.exceptions.Abort, KeyboardInterrupt):
        output.note("interrupted")
        return 130
    except LanserError as exc:
        output.error(exc)
        return exc.exit_code
    except BrokenPipeError:
        return 1
    except Exception as exc:  # no traceback reaches the user
        output.error(InternalError(f"internal error: {type(exc).__name__}: {exc}"))
        return 1
