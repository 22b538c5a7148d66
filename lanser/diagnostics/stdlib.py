"""What the affected-files rule reads besides the files: standard-library names, configuration.

The server takes a standard-library module from its bundled typeshed before it
looks anywhere else, so a workspace file of that name inside a package never
shadows it, and an import of it never reaches library code that could import
a workspace module (diagnostics/affected.py).  The names come from the pinned
server's own typeshed ``VERSIONS`` file and the Python version of the
analysis, never from the machine's installed packages: the same workspace
gives the same pulls everywhere, so a recorded trace replays anywhere.
"""

from __future__ import annotations

import importlib.util
import re
from functools import lru_cache
from pathlib import Path

_VERSION = re.compile(r"(\d+)\.(\d+)")
_PYTHON_VERSION_KEY = re.compile(r"""pythonVersion["']?\s*[:=]\s*["'](\d+)\.(\d+)""")


def typeshed_dir(server: str) -> Path | None:
    """The typeshed bundled with the installed ``server`` package (None if not found).
    Found from the package alone: replaying a trace must not locate Node.js or a server."""
    try:
        spec = importlib.util.find_spec(server)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    pkg = Path(list(spec.submodule_search_locations)[0])
    for cand in (pkg / "dist" / "dist" / "typeshed-fallback", pkg / "dist" / "typeshed-fallback"):
        if (cand / "stdlib" / "VERSIONS").is_file():
            return cand
    return None


@lru_cache(maxsize=16)
def stdlib_names(typeshed: Path | None, version: tuple[int, int]) -> frozenset[str]:
    """Top-level standard-library modules the server resolves from ``typeshed`` for every
    Python from ``version`` on (in typeshed's VERSIONS: no upper bound, a lower bound at or
    below ``version``).  Empty when unknown, which only makes the rule more cautious."""
    if typeshed is None:
        return frozenset()
    try:
        lines = (typeshed / "stdlib" / "VERSIONS").read_text("utf-8").splitlines()
    except OSError:
        return frozenset()
    out = set()
    for line in lines:
        name, _, rng = line.split("#")[0].partition(":")
        name, rng = name.strip(), rng.strip()
        if not name or "." in name or not rng:
            continue
        low, _, high = rng.partition("-")
        m = _VERSION.fullmatch(low.strip().rstrip("+"))
        if m is None or high.strip():
            continue
        if (int(m.group(1)), int(m.group(2))) <= version:
            out.add(name)
    return frozenset(out)


def python_version(root: Path, interpreter_version: str) -> tuple[int, int]:
    """The oldest Python the analysis may assume: the interpreter's, or the project's
    configured ``pythonVersion`` if older (3.0 when neither is known)."""
    found = []
    m = _VERSION.match(interpreter_version or "")
    if m:
        found.append((int(m.group(1)), int(m.group(2))))
    for name in ("pyrightconfig.json", "pyproject.toml"):
        try:
            text = (root / name).read_text("utf-8", errors="replace")
        except OSError:
            continue
        for m in _PYTHON_VERSION_KEY.finditer(text):
            found.append((int(m.group(1)), int(m.group(2))))
    return min(found) if found else (3, 0)


def checks_import_cycles(root: Path) -> bool:
    """Whether the project's configuration mentions ``reportImportCycles`` (then a file's
    diagnostics depend on cycles through files it does not name: the rule gives up)."""
    for name in ("pyrightconfig.json", "pyproject.toml"):
        try:
            if "reportImportCycles" in (root / name).read_text("utf-8", errors="replace"):
                return True
        except OSError:
            continue
    return False


__all__ = ["checks_import_cycles", "python_version", "stdlib_names", "typeshed_dir"]
