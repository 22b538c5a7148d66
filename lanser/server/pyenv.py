"""Which Python environment the server resolves the user's imports in.

Lanser's own virtual environment must never leak into the analysis of the
user's project: when Lanser runs from its own venv, that venv is removed from
the server's PATH and ``VIRTUAL_ENV`` before the server's own discovery runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import NotFound

_VERSION_SNIPPET = "import sys; print('%d.%d.%d' % sys.version_info[:3])"


@dataclass(frozen=True)
class PythonEnv:
    path: str | None        # the interpreter sent as python.pythonPath (None: server discovery)
    source: str             # flag | workspace-venv | VIRTUAL_ENV | discovery
    full_version: str       # e.g. 3.11.7 (volatile: not hashed)

    @property
    def version(self) -> str:
        """Major.minor: the part of the version that is hashed into bundles."""
        return ".".join(self.full_version.split(".")[:2]) if self.full_version else "unknown"


def _own_prefixes() -> set[str]:
    return {os.path.realpath(sys.prefix)}


def _is_own_venv(venv_dir: str) -> bool:
    return os.path.realpath(venv_dir) in _own_prefixes()


def server_env() -> dict[str, str]:
    """The environment the server process runs in: ours, minus Lanser's own venv."""
    env = dict(os.environ)
    own = _own_prefixes()
    venv = env.get("VIRTUAL_ENV")
    if venv and os.path.realpath(venv) in own:
        env.pop("VIRTUAL_ENV", None)
    parts = [p for p in env.get("PATH", "").split(os.pathsep)
             if p and os.path.realpath(os.path.dirname(p.rstrip("/"))) not in own]
    env["PATH"] = os.pathsep.join(parts)
    return env


def _interpreter_in(venv: Path) -> Path | None:
    for rel in ("bin/python", "bin/python3", "Scripts/python.exe"):
        cand = venv / rel
        if cand.exists():
            return cand
    return None


# (interpreter, mtime, PATH) -> version: spawning an interpreter costs 0.1-0.5 s, and a
# long-lived process (daemon, batch, tests) asks for the same one again and again.
_VERSIONS: dict[tuple[str, int, str], str] = {}


def _version_of(python: str, env: dict[str, str] | None = None) -> str:
    try:
        key = (os.path.realpath(python), os.stat(python).st_mtime_ns, (env or {}).get("PATH", ""))
    except OSError:
        return ""
    if key in _VERSIONS:
        return _VERSIONS[key]
    try:
        out = subprocess.run([python, "-c", _VERSION_SNIPPET], capture_output=True, text=True,
                             timeout=20, env=env, check=True)
    except (OSError, subprocess.SubprocessError):
        return ""
    version = out.stdout.strip()
    if version:
        _VERSIONS[key] = version
    return version


# (interpreter, mtime, PATH) -> sys.path
_SEARCH_PATHS: dict[tuple[str, int, str], tuple[str, ...]] = {}
_PATH_SNIPPET = "import json, sys; print(json.dumps(sys.path))"


def search_paths(env: PythonEnv) -> tuple[str, ...]:
    """The import search path (``sys.path``) of the interpreter the server analyses with, as
    the server itself asks it; empty when it cannot be run."""
    run_env = server_env()
    python = env.path or shutil.which("python3", path=run_env["PATH"]) or shutil.which("python", path=run_env["PATH"])
    if not python:
        return ()
    try:
        key = (os.path.realpath(python), os.stat(python).st_mtime_ns, run_env.get("PATH", ""))
    except OSError:
        return ()
    if key not in _SEARCH_PATHS:
        try:
            out = subprocess.run([python, "-I", "-c", _PATH_SNIPPET], capture_output=True, text=True, timeout=20,
                                 env=run_env, check=True)
            paths = json.loads(out.stdout)
        except (OSError, subprocess.SubprocessError, ValueError):
            return ()
        _SEARCH_PATHS[key] = tuple(p for p in paths if isinstance(p, str) and p)
    return _SEARCH_PATHS[key]


def choose_python(root: Path, explicit: str | None = None) -> PythonEnv:
    """--python, else the workspace's .venv/venv, else $VIRTUAL_ENV (not ours), else discovery."""
    if explicit:
        path = Path(explicit)
        if path.is_dir():
            found = _interpreter_in(path)
            if found is None:
                raise NotFound(f"--python {explicit}: no interpreter in that directory")
            path = found
        if not path.exists():
            raise NotFound(f"--python {explicit}: no such interpreter")
        version = _version_of(str(path))
        if not version:
            raise NotFound(f"--python {explicit}: could not run it to read its version")
        return PythonEnv(str(path), "flag", version)
    for name in (".venv", "venv"):
        found = _interpreter_in(root / name)
        if found is not None:
            return PythonEnv(str(found), "workspace-venv", _version_of(str(found)))
    venv = os.environ.get("VIRTUAL_ENV")
    if venv and not _is_own_venv(venv):
        found = _interpreter_in(Path(venv))
        if found is not None:
            return PythonEnv(str(found), "VIRTUAL_ENV", _version_of(str(found)))
    env = server_env()
    python = shutil.which("python3", path=env["PATH"]) or shutil.which("python", path=env["PATH"])
    return PythonEnv(None, "discovery", _version_of(python, env) if python else "")
