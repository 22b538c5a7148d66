"""``lanser schema export|validate|validate-batch``: the shipped JSON Schemas.

Exit codes: 0 every document valid; 2 (E/BAD_INPUT) some document invalid or
not JSON (the input does not conform); 3 (E/NOT_FOUND) a missing file or
directory; 71 (E/FS_PERMISSIONS) an export directory that cannot be written.
Each invalid document is reported on stdout (``FILE:LINE: path: message``); the
failure itself is the one stderr line every command's failure gets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .. import output
from ..errors import BadInput, FsPermissions, NotFound
from ..fsutil import write_atomic
from .runtime import Globals, global_command


def documents(path: Path) -> list[tuple[int, Any, str | None]]:
    """(line, value, parse error) per document: the whole file when it is one JSON value,
    else one per non-blank line (JSON Lines).  ``line`` is 0 for a whole-file document."""
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    try:
        return [(0, json.loads(text), None)]
    except (json.JSONDecodeError, RecursionError):
        pass
    out: list[tuple[int, Any, str | None]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((n, json.loads(line), None))
        except (json.JSONDecodeError, RecursionError) as exc:
            out.append((n, None, f"not JSON: {getattr(exc, 'msg', exc)}"))
    if not out:
        out.append((0, None, "empty file: no JSON document"))
    return out


def validate_file(kind: str, path: Path, as_json: bool) -> tuple[int, int]:
    """Validate one file, report each invalid document; returns (documents, invalid)."""
    from ..bundles.schema import errors

    docs = documents(path)
    bad = 0
    for line, value, parse_error in docs:
        msgs = [parse_error] if parse_error else errors(kind, value)
        where = f"{path}:{line}" if line else str(path)
        if as_json:
            output.emit_json({"file": str(path), "line": line or None, "valid": not msgs, "errors": msgs})
        elif msgs:
            output.emit_lines([f"{where}: {msg}" for msg in msgs])
        bad += bool(msgs)
    return len(docs), bad


def _kind_choice() -> click.Choice:
    from ..bundles.schema import KINDS
    return click.Choice(list(KINDS))


@global_command("export")
@click.argument("directory", metavar="DIR")
def export_cmd(g: Globals, directory: str) -> int:
    """Write every schema to DIR/<kind>.json."""
    from ..bundles.schema import KINDS, schema_text

    target = Path(directory)
    try:
        target.mkdir(parents=True, exist_ok=True)
        for kind in KINDS:
            dest = target / f"{kind}.json"
            write_atomic(dest, schema_text(kind).encode("utf-8"))
            output.emit_lines([str(dest)])
    except OSError as exc:
        raise FsPermissions(f"cannot write schemas to {directory}: {exc.strerror or exc}") from None
    return 0


def _validate(g: Globals, kind: str, files: list[Path], where: str, *, one_file: bool) -> int:
    """Validate ``files``, print the per-document messages and a summary line; any invalid
    document is E/BAD_INPUT (exit 2) after the report."""
    total = bad = bad_files = 0
    for path in files:
        n, b = validate_file(kind, path, g.as_json)
        total, bad, bad_files = total + n, bad + b, bad_files + bool(b)
    if not g.as_json:
        output.emit_lines([f"{where}: {total - bad}/{total} valid {kind}" if one_file else
                           f"{len(files) - bad_files}/{len(files)} files valid ({total - bad}/{total} documents)"])
    if bad:
        raise BadInput(f"{where}: {bad} of {total} document(s)"
                       + ("" if one_file else f" in {bad_files} file(s)") + f" are not valid {kind}")
    return 0


@global_command("validate")
@click.argument("kind", type=_kind_choice())
@click.argument("file", metavar="FILE")
def validate_cmd(g: Globals, kind: str, file: str) -> int:
    """Validate a JSON file, or every line of a JSON Lines file, against KIND."""
    path = Path(file)
    if not path.is_file():
        raise NotFound(f"no such file: {file}")
    return _validate(g, kind, [path], str(path), one_file=True)


@global_command("validate-batch")
@click.argument("kind", type=_kind_choice())
@click.argument("directory", metavar="DIR")
def validate_batch_cmd(g: Globals, kind: str, directory: str) -> int:
    """Validate every .json/.jsonl file in DIR (not recursive; hidden and other files skipped)."""
    root = Path(directory)
    if not root.is_dir():
        raise NotFound(f"no such directory: {directory}")
    files = sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.suffix in (".json", ".jsonl"))
    return _validate(g, kind, files, directory, one_file=False)


@click.group("schema")
def schema_group() -> None:
    """Export and validate with the JSON Schemas shipped in lanser."""


for _cmd in (export_cmd, validate_cmd, validate_batch_cmd):
    schema_group.add_command(_cmd)

COMMANDS = [schema_group]
