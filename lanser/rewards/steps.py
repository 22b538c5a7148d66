"""Steps (CONTRACT.md section 5): parse and validate one JSON Lines step.

A step is a JSON object with an ``op`` and the fields that op needs, plus an
optional ``id`` echoed back in its record.  Validation is strict about what a
step must carry and ignores nothing silently: an unknown op, a missing or
mistyped field, or a line that is not a JSON object is a :class:`BadStep`
(exit code 2), which the runner turns into an error record before going on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..errors import BadInput, NotFound

OPS: tuple[str, ...] = ("query", "patch", "write", "rename", "edit", "reset")
MUTATING: frozenset[str] = frozenset({"patch", "write", "rename", "edit"})
QUERY_CMDS: tuple[str, ...] = ("def", "refs", "hover", "symbols", "diag", "locate", "prepare-rename")
# Fields each op requires (name -> accepted JSON types).
_REQUIRED: dict[str, dict[str, tuple[type, ...]]] = {
    "query": {"cmd": (str,)},
    "patch": {"patch": (str,)},
    "write": {"path": (str,), "content": (str,)},
    "rename": {"selector": (str, dict), "newName": (str,)},
    "edit": {"selector": (str, dict), "text": (str,)},
    "reset": {},
}


class BadStep(BadInput):
    """A STEPS line that is not a valid step (E/BAD_INPUT, exit 2).  A selector inside a
    valid step that does not parse is the step's own E/BAD_SELECTOR_SYNTAX instead."""


@dataclass(frozen=True)
class Step:
    """One validated step.  ``raw`` is the object as given (echoed into the step's bundle)."""

    line: int                      # 1-based line number in the STEPS file (0 when not from a file)
    op: str
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> Any:
        return self.raw.get("id")

    @property
    def selector(self) -> str | None:
        """The selector as the engine takes it (PositionSpec objects as compact JSON)."""
        sel = self.raw.get("selector")
        if sel is None:
            return None
        return sel if isinstance(sel, str) else json.dumps(sel, sort_keys=True, separators=(",", ":"))

    @property
    def mutating(self) -> bool:
        return self.op in MUTATING


@dataclass(frozen=True)
class BadLine:
    """A line that could not be parsed into a step; the runner emits an error record for it."""

    line: int
    error: BadStep
    raw: Any = None

    @property
    def id(self) -> Any:
        return self.raw.get("id") if isinstance(self.raw, dict) else None

    @property
    def op(self) -> str | None:
        op = self.raw.get("op") if isinstance(self.raw, dict) else None
        return op if isinstance(op, str) else None


def validate_step(obj: Any, line: int = 0) -> Step:
    """A :class:`Step` from a decoded JSON value; raises :class:`BadStep`."""
    where = f"step line {line}: " if line else "step: "
    if not isinstance(obj, dict):
        raise BadStep(f"{where}a step must be a JSON object, got {type(obj).__name__}",
                      details={"line": line})
    op = obj.get("op")
    if op not in OPS:
        raise BadStep(f"{where}unknown op {op!r}; use one of {', '.join(OPS)}",
                      details={"line": line, "field": "op"})
    for name, types in _REQUIRED[op].items():
        value = obj.get(name)
        if value is None or not isinstance(value, types) or isinstance(value, bool):
            want = " or ".join("string" if t is str else "object" for t in types)
            raise BadStep(f"{where}op {op!r} needs {name!r} ({want})",
                          details={"line": line, "field": name})
    if op == "query" and obj["cmd"] not in QUERY_CMDS:
        raise BadStep(f"{where}unknown query cmd {obj['cmd']!r}; use one of {', '.join(QUERY_CMDS)}",
                      details={"line": line, "field": "cmd"})
    if op == "query" and obj["cmd"] != "diag" and not isinstance(obj.get("selector"), (str, dict)):
        raise BadStep(f"{where}query {obj['cmd']!r} needs a 'selector'",
                      details={"line": line, "field": "selector"})
    if "id" in obj and isinstance(obj["id"], (dict, list)):
        raise BadStep(f"{where}'id' must be a string, a number or null", details={"line": line, "field": "id"})
    return Step(line=line, op=op, raw=dict(obj))


def parse_line(text: str, line: int = 0) -> Step | BadLine:
    """One STEPS line -> a Step, or a BadLine carrying the error (never raises)."""
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        msg = getattr(exc, "msg", str(exc))
        return BadLine(line, BadStep(f"step line {line}: not JSON: {msg}", details={"line": line}))
    try:
        return validate_step(obj, line)
    except BadStep as exc:
        return BadLine(line, exc, obj)


# A blank line between two trajectories (only meaningful with --reset-between).
SEPARATOR = "separator"


def iter_lines(text: str) -> Iterator[tuple[int, str | None]]:
    """(1-based line number, stripped text) per line; ``None`` for a blank line."""
    for n, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        yield n, (stripped or None)


def read_steps_text(path: str) -> str:
    """The STEPS file's text (``-`` is stdin).  Unreadable or not UTF-8: NotFound (exit 3)."""
    import sys

    if path == "-":
        try:
            return sys.stdin.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise NotFound(f"cannot read steps from stdin: {exc}") from None
    p = Path(path)
    try:
        data = p.read_bytes()
    except IsADirectoryError:
        raise NotFound(f"steps file {path!r} is a directory") from None
    except OSError as exc:
        raise NotFound(f"cannot read steps file {path!r}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotFound(f"steps file {path!r} is not UTF-8 (byte {exc.start})") from None


def parse_steps(text: str, *, blank_separates: bool = False) -> list[Step | BadLine | str]:
    """Every line of a STEPS text parsed; blank lines are dropped, or kept as
    :data:`SEPARATOR` when ``blank_separates`` (``--reset-between``)."""
    out: list[Step | BadLine | str] = []
    for n, line in iter_lines(text):
        if line is None:
            if blank_separates and out and out[-1] != SEPARATOR:
                out.append(SEPARATOR)
            continue
        out.append(parse_line(line, n))
    while out and out[-1] == SEPARATOR:
        out.pop()
    return out
