"""The click group and the one error handler.  Nothing else lives here.

Commands (``lanser/commands/*.py``) parse their arguments, call the library and
return an exit code, or raise a :class:`~lanser.errors.LanserError`;
:func:`main` renders every failure that is not already in a printed bundle: the
``lanser: CODE: message`` line on stderr and the contract's exit code (click's
usage errors: its usage text and 2; Ctrl-C: 130; anything else: exit 1 with one
line, never a traceback).

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
from typing import Any

import click

from . import output
from .commands.runtime import GLOBAL_OPTIONS, SAFETY_OPTIONS
from .errors import InternalError, LanserError

# Modules under lanser/commands that add commands to the group (each has COMMANDS).  The
# group imports them in this order until it finds the command asked for, so the commands a
# daemon can answer come first: finding them imports nothing heavy.
COMMAND_MODULES = ["navigate", "mutate", "daemon", "doctor", "reward", "trace", "batch", "schema", "mcp", "serve"]


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


def main(argv: list[str] | None = None) -> int:
    """Entry point and the one error handler: every LanserError raised outside a bundle
    becomes its exit code and one line on stderr."""
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
