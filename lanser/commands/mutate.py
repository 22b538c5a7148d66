"""Mutating commands: prepare-rename, rename, actions, edit.

Each callback parses its arguments and hands them to the engine (see
lanser/engine/mutations.py); dry run is the default everywhere an edit is planned.
Human output adds a few lines to the common summary (placeholder, listed
actions, unrenamed candidates); ``--json`` prints the bundle unchanged.

Like the navigation commands, these run on a warm daemon when ``--daemon``
says so (see lanser/daemon/client.py), else in a fresh engine; the engine
(lsprotocol, pygls, tree-sitter) is imported only for the in-process run, so a
call the daemon answers stays light.
"""

from __future__ import annotations

from typing import Any, TextIO

import click

from .. import output
from .runtime import Globals, global_command, run_engine


def run_mutation(g: Globals, cmd: str, selector: str, args: dict[str, Any]) -> int:
    """Run one mutating command like any engine command; its summary adds the mutation's lines."""
    return run_engine(g, cmd, selector, args, extra_lines=output.mutation_lines)


@global_command("prepare-rename")
@click.argument("selector")
def prepare_rename(g: Globals, selector: str) -> int:
    """Ask the server whether the name at SELECTOR can be renamed (textDocument/prepareRename);
    a refusal (a keyword, a builtin, a library symbol) is exit 3.  Writes nothing.

    \b
    Example:
      lanser prepare-rename src/app.py:42:7
    """
    return run_mutation(g, "prepare-rename", selector, {})


@global_command("rename", writes=True)
@click.argument("selector")
@click.argument("new_name")
@click.option("--dry-run/--apply", "dry_run", default=True,
              help="Preview only (default), or write the rename through the safety envelope.")
@click.option("--strict", is_flag=True, help="Refuse while other occurrences of the old name are left, or "
                                            "when the edit removes comments.")
@click.option("--via-git", is_flag=True, help="Apply with git apply --3way instead of requiring unchanged files.")
def rename(g: Globals, selector: str, new_name: str, dry_run: bool, strict: bool, via_git: bool) -> int:
    """Rename the symbol at SELECTOR to NEW_NAME across the workspace (textDocument/rename).
    A dry run (the default) shows the diff and the predicted error counts and writes
    nothing; --apply writes every file atomically, or none.  Occurrences the server's edit
    does not cover (e.g. in files outside the pyright include) are listed.

    \b
    Examples:
      lanser rename py://pkg.mod#load_data fetch_data
      lanser rename src/app.py:42:7 fetch_data --apply --strict
    """
    return run_mutation(g, "rename", selector, {"newName": new_name, "apply": not dry_run,
                                                "strict": strict, "viaGit": via_git})


@global_command("actions", writes=True)
@click.argument("selector")
@click.option("--kind", type=click.Choice(["quickfix", "source.organizeImports"]), default=None,
              help="Only actions of this kind.")
@click.option("--apply", "apply_index", type=click.IntRange(min=0), default=None, metavar="INDEX",
              help="Apply the action with this index (as listed).")
@click.option("--strict", is_flag=True, help="Refuse an action that removes comments (e.g. # noqa) outside "
                                            "the range it claims to change.")
def actions(g: Globals, selector: str, kind: str | None, apply_index: int | None, strict: bool) -> int:
    """List the code actions over SELECTOR's range (textDocument/codeAction, plus
    "Organize imports"), or apply the one numbered INDEX through the safety envelope.

    \b
    Examples:
      lanser actions src/app.py:12:5
      lanser actions src/app.py:1:1 --kind source.organizeImports --apply 0 --strict
    """
    args: dict[str, Any] = {"kind": kind}
    if apply_index is not None:
        args["apply"] = apply_index
    if strict:
        args["strict"] = True
    return run_mutation(g, "actions", selector, args)


@global_command("edit", writes=True)
@click.argument("selector")
@click.option("--text", default=None, help="The replacement text.")
@click.option("--from-file", "from_file", type=click.File("r", encoding="utf-8-sig"), default=None,
              help="Read the replacement text from a file ('-' for stdin).")
@click.option("--apply", "apply", is_flag=True, help="Write the edit (default: dry run).")
@click.option("--strict", is_flag=True, help="Refuse an edit that removes comments outside the selector's range.")
def edit(g: Globals, selector: str, text: str | None, from_file: TextIO | None, apply: bool, strict: bool) -> int:
    """Replace what SELECTOR resolves to (a symbol's body, a range, an anchored snippet)
    with the text, re-indented to the target.  A dry run by default; --apply writes.  A
    result that no longer parses is refused (exit 70).

    \b
    Examples:
      lanser edit 'py://pkg.mod#load_data:body' --text 'return []'
      lanser edit 'src/app.py@R(3,1->3,10)' --from-file new.txt --apply
    """
    if (text is None) == (from_file is None):
        raise click.UsageError("give exactly one of --text and --from-file")
    if from_file is not None:
        try:
            text = from_file.read()
        except UnicodeDecodeError as exc:
            raise click.BadParameter(f"not UTF-8 text: {exc}", param_hint="--from-file") from None
    args: dict[str, Any] = {"text": text, "apply": apply}
    if strict:
        args["strict"] = True
    return run_mutation(g, "edit", selector, args)


COMMANDS = [prepare_rename, rename, actions, edit]
