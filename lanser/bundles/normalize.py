"""Pure converters from raw LSP JSON (as the server sent it) to bundle facts.

Facts are built from the raw frames, not from lsprotocol objects, so a trace
replays into byte-identical bundles.  Every list is sorted by
(path, sL, sC, eL, eC) with explicit tie-breakers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

from .paths import portable_label

SORTING_KEYS = ["path", "range[0]", "range[1]", "range[2]", "range[3]"]
MAX_LIST = 100_000
SEVERITIES = {1: "error", 2: "warning", 3: "information", 4: "hint"}
SYMBOL_KINDS = {1: "file", 2: "module", 3: "namespace", 4: "package", 5: "class", 6: "method",
                7: "property", 8: "field", 9: "constructor", 10: "enum", 11: "interface",
                12: "function", 13: "variable", 14: "constant", 15: "string", 16: "number",
                17: "boolean", 18: "array", 19: "object", 20: "key", 21: "null", 22: "enumMember",
                23: "struct", 24: "event", 25: "operator", 26: "typeParameter"}


def flat_range(rng: dict[str, Any]) -> list[int]:
    """LSP ``{start:{line,character},end:{...}}`` -> ``[sL, sC, eL, eC]`` (0-based)."""
    s, e = rng["start"], rng["end"]
    return [int(s["line"]), int(s["character"]), int(e["line"]), int(e["character"])]


def location_key(item: dict[str, Any]) -> tuple[Any, ...]:
    return (item.get("path", ""), *item.get("range", [0, 0, 0, 0]))


def sort_locations(items: Iterable[dict[str, Any]], *extra: str) -> list[dict[str, Any]]:
    """Sort by (path, range) then by the named extra keys as tie-breakers."""
    return sorted(items, key=lambda i: (*location_key(i), *(str(i.get(k, "")) for k in extra)))


def locations(raw: Any, root: Path) -> list[dict[str, Any]]:
    """definition/references answers (Location, Location[], LocationLink[]) -> sorted, deduplicated."""
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    paths: dict[str, str] = {}  # one realpath per file, not per location (refs repeat files)

    def path_of(uri: str) -> str:
        if uri not in paths:
            paths[uri] = portable_label(uri, root)
        return paths[uri]

    for item in items:
        if "targetUri" in item:
            loc = {"path": path_of(item["targetUri"]),
                   "range": flat_range(item.get("targetSelectionRange") or item["targetRange"])}
        else:
            loc = {"path": path_of(item["uri"]), "range": flat_range(item["range"])}
        out[location_key(loc)] = loc
    return sort_locations(out.values())


def hover(raw: Any) -> dict[str, Any] | None:
    if not raw:
        return None
    contents = raw.get("contents")
    if isinstance(contents, dict):
        text, kind = contents.get("value", ""), contents.get("kind", "plaintext")
    elif isinstance(contents, list):
        text = "\n\n".join(c if isinstance(c, str) else c.get("value", "") for c in contents)
        kind = "markdown"
    else:
        text, kind = str(contents or ""), "plaintext"
    out: dict[str, Any] = {"contents": text, "kind": kind}
    if raw.get("range"):
        out["range"] = flat_range(raw["range"])
    return out


def symbols(raw: Any, rel: str) -> list[dict[str, Any]]:
    """documentSymbol (hierarchical or flat) -> flat list with dotted qualnames."""
    out: list[dict[str, Any]] = []

    def walk(nodes: list[dict[str, Any]], prefix: str) -> None:
        for node in nodes:
            qual = f"{prefix}.{node['name']}" if prefix else node["name"]
            if "location" in node:  # SymbolInformation
                rng = flat_range(node["location"]["range"])
                sel = rng
            else:
                rng = flat_range(node["range"])
                sel = flat_range(node.get("selectionRange") or node["range"])
            entry = {"path": rel, "name": node["name"], "qualname": qual,
                     "kind": SYMBOL_KINDS.get(node.get("kind", 0), str(node.get("kind"))),
                     "range": rng, "selectionRange": sel}
            if node.get("detail"):
                entry["detail"] = node["detail"]
            out.append(entry)
            walk(node.get("children") or [], qual)

    walk(list(raw or []), "")
    return sort_locations(out, "qualname", "kind")


def _split(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` outside brackets."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        ch = text[i]
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif depth == 0 and text.startswith(sep, i):
            parts.append(text[start:i])
            i += len(sep)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return parts


def _inner_sorted(member: str) -> str:
    """``member`` with the contents of each outermost bracket group canonicalized."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(member):
        if ch in "[(":
            if depth == 0:
                out.append(member[start:i + 1])
                start = i + 1
            depth += 1
        elif ch in "])":
            depth -= 1
            if depth == 0:
                out.append(", ".join(_param_sorted(p) for p in _split(member[start:i], ", ")))
                start = i
    out.append(member[start:])
    return "".join(out) if depth == 0 else member


def _param_sorted(part: str) -> str:
    """One item of a bracket group; a parameter ``name: type`` keeps its name in front."""
    head = _split(part, ": ")
    if len(head) > 1:
        return head[0] + ": " + _sorted_unions(part[len(head[0]) + 2:])
    return _sorted_unions(part)


def _sorted_unions(text: str) -> str:
    """``text`` (a type pyright printed) with the members of every union, at any depth, sorted."""
    members = [_inner_sorted(m) for m in _split(text, " | ")]
    return " | ".join(sorted(members)) if len(members) > 1 else members[0]


_QUOTED = re.compile(r'"([^"\n]*)"')


def canonical_message(message: str) -> str:
    """Pyright's message with the members of each quoted union type in sorted order.

    Pyright prints a union in the order its members were first evaluated, and that order
    depends on which files the server happened to check first: a warm server re-checking one
    file can print ``str | Unknown | Any`` where a cold ``pyright --outputjson`` printed
    ``str | Any | Unknown`` -- and, evaluating one node twice, report both (pyright drops a
    repeated diagnostic only when its text repeats exactly).  Sorted members make the text
    independent of that order, so the same problem has the same text and is counted once.
    """
    if " | " not in message:
        return message
    return _QUOTED.sub(lambda m: '"' + _sorted_unions(m.group(1)) + '"', message)


def diagnostic(item: dict[str, Any], path: str) -> dict[str, Any]:
    code = item.get("code")
    return {"path": path, "range": flat_range(item["range"]),
            "severity": SEVERITIES.get(item.get("severity", 1), "error"),
            "code": str(code) if code is not None else None,
            "message": canonical_message(item.get("message", "")), "source": item.get("source")}


def diagnostics(by_file: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    items = [diagnostic(d, path) for path, ds in by_file.items() for d in ds]
    return sort_locations(items, "severity", "code", "message")


def count_diagnostics(items: list[dict[str, Any]], files: Iterable[str] = ()) -> dict[str, Any]:
    """Totals per severity and per file (every checked file listed, even with zero)."""
    by_file: dict[str, dict[str, int]] = {f: {"errors": 0, "warnings": 0} for f in files}
    totals = {"errors": 0, "warnings": 0, "informations": 0}
    names = {"error": "errors", "warning": "warnings", "information": "informations"}
    for d in items:
        key = names.get(d["severity"])
        if key is None:
            continue
        totals[key] += 1
        if key != "informations":
            by_file.setdefault(d["path"], {"errors": 0, "warnings": 0})[key] += 1
    return {**totals, "byFile": dict(sorted(by_file.items()))}


def truncate(items: list[Any], cursor: int = 0, limit: int | None = None) -> tuple[list[Any], bool, int | None]:
    """Page a sorted list: (page, truncated, next cursor).  ``limit`` defaults to MAX_LIST,
    read at call time (so it can be lowered in tests)."""
    if limit is None:
        limit = MAX_LIST
    page = items[cursor: cursor + limit]
    more = cursor + limit < len(items)
    return page, more, (cursor + limit if more else None)
