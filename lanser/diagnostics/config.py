"""The project's pyright configuration, read the way the pinned server reads it.

The server (and ``pyright -p .``) takes ``pyrightconfig.json`` from the
workspace root, else the ``[tool.pyright]`` table of ``pyproject.toml``;
``extends`` chains are followed, each file's paths relative to its own
directory, a later (extending) file replacing the keys it sets.  Only what
decides *which files are checked* and how careful the affected-files rule must
be is kept here: ``include``, ``exclude``, ``ignore``, whether
``reportImportCycles`` is on and the configured ``pythonVersion``.  Everything
else (``strict``, ``executionEnvironments``, ``extraPaths``,
``typeCheckingMode``, ``# pyright:`` comments) the server applies itself to
every file it checks, the same way in the language server and in the CLI.

``pyrightconfig.json`` is JSON with comments and trailing commas (JSONC), as
pyright parses it.  A file that cannot be read gives ``ConfigError``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_JSON = "pyrightconfig.json"
PYPROJECT = "pyproject.toml"
_MAX_EXTENDS = 16


class ConfigError(ValueError):
    """A configuration file that exists but cannot be read as pyright reads it."""


@dataclass(frozen=True)
class Spec:
    """One ``include``/``exclude``/``ignore`` entry and the directory it is relative to."""

    base: str  # absolute directory (posix)
    pattern: str


@dataclass(frozen=True)
class PyrightConfig:
    """What the server's configuration says about the file set (see module docstring)."""

    root: str                          # the project root (absolute, posix, symlinks resolved)
    source: str | None = None          # the primary configuration file, relative to root
    include: tuple[Spec, ...] = ()
    exclude: tuple[Spec, ...] = ()     # empty: pyright's default excludes and venv auto-exclusion
    ignore: tuple[Spec, ...] = ()
    report_import_cycles: bool = False
    python_version: tuple[int, int] | None = None
    roots: tuple[str, ...] = ("", "src")  # import roots inside the workspace (root, src, extraPaths)
    files: tuple[str, ...] = (CONFIG_JSON, PYPROJECT)  # the configuration files, relative to root


def strip_jsonc(text: str) -> str:
    """JSON with ``//`` and ``/* */`` comments and trailing commas, made plain JSON."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return re.sub(r",(\s*[}\]])", r"\1", "".join(out))


def _load(path: Path) -> dict[str, Any] | None:
    """The configuration object of one file (None: a pyproject.toml without [tool.pyright])."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    if path.name.endswith(".toml"):
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path.name} is not valid TOML: {exc}") from None
        tool = data.get("tool")
        section = tool.get("pyright") if isinstance(tool, dict) else None
        return section if isinstance(section, dict) else None
    try:
        obj = json.loads(strip_jsonc(raw.decode("utf-8-sig")))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path.name} is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"{path.name} must hold a JSON object")
    return obj


def primary_config(root: Path) -> Path | None:
    """The file the server configures the project from (None: no configuration)."""
    cand = root / CONFIG_JSON
    if cand.is_file():
        return cand
    cand = root / PYPROJECT
    if cand.is_file() and _load(cand) is not None:
        return cand
    return None


def _specs(obj: dict[str, Any], key: str, base: Path) -> tuple[Spec, ...] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        return ()  # pyright reports the error and ignores the entry
    return tuple(Spec(base.as_posix(), item) for item in value if isinstance(item, str))


def _version(value: Any) -> tuple[int, int] | None:
    m = re.fullmatch(r"(\d+)\.(\d+)", value) if isinstance(value, str) else None
    return (int(m.group(1)), int(m.group(2))) if m else None


def _chain(primary: Path) -> list[tuple[dict[str, Any], Path]]:
    """The primary configuration and every file it extends, the primary first."""
    chain: list[tuple[dict[str, Any], Path]] = []
    path: Path | None = primary
    while path is not None and len(chain) < _MAX_EXTENDS and all(p != path for _, p in chain):
        obj = _load(path)
        if obj is None:  # an extended pyproject.toml without [tool.pyright]
            break
        chain.append((obj, path))
        ext = obj.get("extends")
        path = (path.parent / ext).resolve() if isinstance(ext, str) and ext else None
        if path is not None and not path.is_file():
            raise ConfigError(f"{chain[-1][1].name}: extended configuration {ext!r} not found")
    return chain


def _cycles_on(obj: dict[str, Any]) -> bool | None:
    if "reportImportCycles" not in obj:
        return None
    return obj["reportImportCycles"] not in (False, "none")


def read_config(root: str | os.PathLike[str]) -> PyrightConfig:
    """The workspace's configuration, ``extends`` followed (ConfigError when unreadable)."""
    top = Path(os.path.realpath(root))
    primary = primary_config(top)
    if primary is None:
        return PyrightConfig(root=top.as_posix())
    include: tuple[Spec, ...] = ()
    exclude: tuple[Spec, ...] = ()
    ignore: tuple[Spec, ...] = ()
    cycles = False
    version = None
    roots: list[str] = ["", "src"]
    chain = _chain(primary)
    files = [CONFIG_JSON, PYPROJECT] + [os.path.relpath(p, top) for _, p in chain]
    for obj, path in reversed(chain):  # the base first, then each file extending it
        base = path.parent
        inc, exc, ign = _specs(obj, "include", base), _specs(obj, "exclude", base), _specs(obj, "ignore", base)
        include = inc if inc is not None else include
        exclude = exc if exc is not None else exclude
        ignore = ign if ign is not None else ignore
        on = _cycles_on(obj)
        cycles = cycles if on is None else on
        envs = obj.get("executionEnvironments")
        if isinstance(envs, list) and any(isinstance(e, dict) and _cycles_on(e) for e in envs):
            cycles = True
        version = _version(obj.get("pythonVersion")) or version
        extra = [obj.get("extraPaths")] + [e.get("extraPaths") for e in envs or [] if isinstance(e, dict)]
        for paths in extra:
            for p in paths if isinstance(paths, list) else []:
                if isinstance(p, str):
                    rel = os.path.relpath(os.path.realpath(path.parent / p), top)
                    if not rel.startswith(".."):
                        roots.append("" if rel == "." else Path(rel).as_posix())
    return PyrightConfig(root=top.as_posix(), source=primary.relative_to(top).as_posix(), include=include,
                         exclude=exclude, ignore=ignore, report_import_cycles=cycles, python_version=version,
                         roots=tuple(dict.fromkeys(roots)),
                         files=tuple(dict.fromkeys(Path(f).as_posix() for f in files)))


__all__ = ["CONFIG_JSON", "ConfigError", "PYPROJECT", "PyrightConfig", "Spec", "primary_config", "read_config",
           "strip_jsonc"]
