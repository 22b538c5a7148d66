"""The global options (CONTRACT.md section 1) as one dataclass: every default is stated here.

The CLI, the daemon's requests, the SDK and trace replay all build their
:class:`Options` through :meth:`Options.from_values`, where a missing value (or
None, or an empty tuple) means "the default".  This module imports nothing
heavy: the CLI's daemon path reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

DEFAULT_SERVER = "pyright"
DEFAULT_INDEX_IO = "codepoint"
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Options:
    """Global options (CONTRACT.md section 1); every field has a default."""

    workspace: str = "."
    server: str = DEFAULT_SERVER
    index_io: str = DEFAULT_INDEX_IO
    timeout: float = DEFAULT_TIMEOUT
    python: str | None = None
    verbose: bool = False
    cursor: int = 0
    allow_dirty: bool = False
    deny_apply_on_ambiguous: bool = False
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Options:
        """Options from plain values (click's, a daemon request's, a trace's): names that are
        not options are ignored, None and empty values keep the default, lists become tuples."""
        given: dict[str, Any] = {}
        for name in OPTION_NAMES:
            value = values.get(name)
            if value is None or value == () or value == []:
                continue
            if name in ("allow", "deny"):
                value = tuple(value)
            elif name in ("verbose", "allow_dirty", "deny_apply_on_ambiguous"):
                value = bool(value)
            given[name] = value
        return cls(**given)

    def to_json(self) -> dict[str, Any]:
        # Every field is a scalar or a tuple of str: no deep copy needed (asdict is slow,
        # and the daemon keys every request on this).
        return {name: getattr(self, name) for name in OPTION_NAMES}


OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Options))
