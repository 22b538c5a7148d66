"""Read-only commands: locate, def, refs, hover, symbols, diag."""

from __future__ import annotations

import click

from ..cli import Globals, global_command, run_engine


@global_command("locate")
@click.argument("selector")
def locate(g: Globals, selector: str) -> int:
    """Resolve a selector (no server needed for symbol/ast/anchor)."""
    return run_engine(g, "locate", selector)


@global_command("def")
@click.argument("selector")
def definition(g: Globals, selector: str) -> int:
    """textDocument/definition at the selector."""
    return run_engine(g, "def", selector)


@global_command("refs")
@click.argument("selector")
def references(g: Globals, selector: str) -> int:
    """textDocument/references (declaration included)."""
    return run_engine(g, "refs", selector)


@global_command("hover")
@click.argument("selector")
def hover(g: Globals, selector: str) -> int:
    """textDocument/hover at the selector."""
    return run_engine(g, "hover", selector)


@global_command("symbols")
@click.argument("target")
def symbols(g: Globals, target: str) -> int:
    """Flattened document symbols of a file (PATH) or of the file a selector names."""
    return run_engine(g, "symbols", target)


@global_command("diag")
@click.argument("target", required=False)
def diag(g: Globals, target: str | None) -> int:
    """Diagnostics of a file, a symbol, or (no argument) the whole workspace."""
    return run_engine(g, "diag", target)


COMMANDS = [locate, definition, references, hover, symbols, diag]
