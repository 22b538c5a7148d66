"""Read-only commands: locate, def, refs, hover, symbols, diag."""

from __future__ import annotations

import click

from .runtime import Globals, global_command, run_engine

SELECTOR_HELP = ("SELECTOR: path:LINE:COL, path@L<line>:C<col>, path@R(l,c->l,c), py://pkg.mod#Qual[:role], "
                 "ast://[module=m]/[def=f], anchor://path#\"text\", or PositionSpec JSON (see `lanser --help`).")


@global_command("locate", short_help="Resolve a selector to a location (no server needed).")
@click.argument("selector")
def locate(g: Globals, selector: str) -> int:
    """Resolve SELECTOR to a location and print it with a freshly minted anchor
    (a selector that finds the same code again after edits).  Symbol, AST and anchor
    selectors resolve from the files alone: no server starts.

    \b
    Examples:
      lanser locate py://pkg.mod#Class.method
      lanser locate 'py://pkg.mod#load_data:body' --json
      lanser locate src/app.py:42:7
    """
    return run_engine(g, "locate", selector)


@global_command("def", short_help="Where the name at SELECTOR is defined (textDocument/definition).")
@click.argument("selector")
def definition(g: Globals, selector: str) -> int:
    """Where the name at SELECTOR is defined (textDocument/definition).  A selector that
    resolves to a definition is asked at its name; an empty answer off a name carries a
    warning.

    \b
    Examples:
      lanser def src/app.py:42:7
      lanser def 'py://pkg.mod#main' --json
    """
    return run_engine(g, "def", selector)


@global_command("refs", short_help="Every reference to the name at SELECTOR, its declaration included.")
@click.argument("selector")
def references(g: Globals, selector: str) -> int:
    """Every reference to the name at SELECTOR, its declaration included
    (textDocument/references), one path:line:col a line; each one pastes back as a
    selector.

    \b
    Examples:
      lanser refs py://pkg.mod#load_data
      lanser refs src/app.py@L42:C7 --json
    """
    return run_engine(g, "refs", selector)


@global_command("hover", short_help="The type and docs of the name at SELECTOR (textDocument/hover).")
@click.argument("selector")
def hover(g: Globals, selector: str) -> int:
    """The type and documentation of the name at SELECTOR (textDocument/hover).

    \b
    Example:
      lanser hover src/app.py:42:7
    """
    return run_engine(g, "hover", selector)


@global_command("symbols", short_help="The symbols of a file, flattened with qualified names.")
@click.argument("target", metavar="PATH|SELECTOR")
def symbols(g: Globals, target: str) -> int:
    """The symbols of a file (PATH, or the file a selector names), flattened, with
    qualified names (textDocument/documentSymbol).

    \b
    Example:
      lanser symbols src/app.py
    """
    return run_engine(g, "symbols", target)


@global_command("diag", short_help="Diagnostics of the workspace, a file or a symbol.")
@click.argument("target", required=False, metavar="[PATH|SELECTOR]")
def diag(g: Globals, target: str | None) -> int:
    """Diagnostics as the server checks them (the project's pyright configuration is
    honoured): of the whole workspace (no argument), of a file (PATH), or only those
    overlapping what a symbol, AST, anchor or range selector resolves to.

    \b
    Examples:
      lanser diag
      lanser diag src/app.py
      lanser diag py://pkg.mod#load_data --json
    """
    return run_engine(g, "diag", target)


for _cmd in (locate, definition, references, hover):
    _cmd.help = f"{_cmd.help}\n\n{SELECTOR_HELP}"

COMMANDS = [locate, definition, references, hover, symbols, diag]
