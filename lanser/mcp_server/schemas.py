"""The JSON Schemas the MCP tools publish: Lanser's shipped schemas, made self-contained.

An MCP client validates a tool's structured output against the tool's
``outputSchema`` with an empty registry (no network, no other file), while the
shipped schemas (``lanser/bundles/schemas``) refer to each other by relative
``$ref`` (``bundle.json`` -> ``environment.json``, ``selector.json``).  So each
published schema is the shipped schema with every schema it refers to
(transitively) copied under ``$defs`` (``#/$defs/environment.json``) and every
``$ref`` rewritten into a JSON pointer inside the one document
(``environment.json`` -> ``#/$defs/environment.json``, and inside an embedded
schema ``#/$defs/range`` -> ``#/$defs/bundle.json/$defs/range``).  The
keywords are the shipped ones; only where a ``$ref`` points is spelled
differently, so it accepts exactly what the shipped schemas accept (a test
holds the two equal).  Pointers rather than embedded ``$id`` resources: the
SDK's client looks an embedded resource up afresh at every ``$ref``, which made
each validation ~2.5 times slower.

Two tools answer with more than one bundle or record (``replay``,
``reward_session_summary``): their schemas are small wrappers whose items are
the shipped ``bundle`` and ``reward-record`` schemas, inlined the same way.

The server checks every answer before sending it: bundles and records with the
shipped schemas themselves (:mod:`lanser.bundles.schema`), the wrappers with
their published document.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import cache
from typing import Any

from ..bundles.schema import KINDS, load_schema

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _external_refs(node: Any) -> Iterator[str]:
    """The schema files (``bundle.json``) a schema's ``$ref``s name outside itself."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and not value.startswith("#"):
                yield value.split("#", 1)[0]
            else:
                yield from _external_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _external_refs(item)


def _kind_of(filename: str) -> str:
    kind = filename.rsplit("/", 1)[-1].removesuffix(".json")
    if kind not in KINDS:
        raise KeyError(f"unknown schema file {filename!r}")
    return kind


def _rewritten(node: Any, here: str, placed: dict[str, str], *, top: bool) -> Any:
    """``node`` (a schema placed at the JSON pointer ``here``) with every ``$ref`` a pointer into
    the published document; ``placed``: schema file -> its pointer ("" for the document's root).
    An embedded schema loses ``$id`` and ``$schema`` (it is no resource of its own)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                target, _, fragment = value.partition("#")
                out[key] = "#" + (placed[target.rsplit("/", 1)[-1]] if target else here) + fragment
            elif key in ("$id", "$schema") and not top:
                continue
            else:
                out[key] = _rewritten(value, here, placed, top=False)
        return out
    if isinstance(node, list):
        return [_rewritten(item, here, placed, top=False) for item in node]
    return node


def _inline(root: dict[str, Any], root_kind: str | None) -> dict[str, Any]:
    """``root`` (a shipped schema, or a wrapper) with the schemas it refers to inlined."""
    kinds: list[str] = []
    todo = [_kind_of(f) for f in _external_refs(root)]
    while todo:
        kind = todo.pop(0)
        if kind == root_kind or kind in kinds:
            continue
        kinds.append(kind)
        todo.extend(_kind_of(f) for f in _external_refs(load_schema(kind)))
    placed = {f"{k}.json": f"/$defs/{k}.json" for k in kinds}
    if root_kind is not None:
        placed[f"{root_kind}.json"] = ""
    out = _rewritten(root, "", placed, top=True)
    defs = out.setdefault("$defs", {})
    for k in kinds:
        defs[f"{k}.json"] = _rewritten(load_schema(k), placed[f"{k}.json"], placed, top=False)
    return out


@cache
def _compound(kind: str) -> dict[str, Any]:
    return _inline(copy.deepcopy(load_schema(kind)), kind)


def compound(kind: str) -> dict[str, Any]:
    """The shipped schema ``kind`` as one self-contained document (a fresh copy)."""
    return copy.deepcopy(_compound(kind))


@cache
def _summary() -> dict[str, Any]:
    trajectory = {
        "type": "object",
        "required": ["steps", "return", "records"],
        "properties": {
            "steps": {"type": "integer", "minimum": 0},
            "return": {"type": "number"},
            "records": {"type": "array", "items": {"$ref": "reward-record.json"}},
        },
        "additionalProperties": False,
    }
    root = {
        "$schema": DRAFT,
        "title": "A reward session: its previewed (in memory) and applied trajectories",
        "type": "object",
        "required": ["session", "aggregate", "preview", "applied", "closed"],
        "properties": {
            "session": {"type": "string"},
            "aggregate": {"enum": ["sum", "min"]},
            "preview": {"$ref": "#/$defs/trajectory"},
            "applied": {"$ref": "#/$defs/trajectory"},
            "closed": {"type": "boolean"},
        },
        "additionalProperties": False,
        "$defs": {"trajectory": trajectory},
    }
    return _inline(root, None)


@cache
def _replay() -> dict[str, Any]:
    operation = {
        "type": "object",
        "required": ["n", "cmd", "status"],
        "properties": {
            "n": {"type": "integer", "minimum": 1},
            "cmd": {"type": ["string", "null"]},
            "status": {"enum": ["identical", "mismatch"]},
            "bundleId": {"type": ["string", "null"]},
            "replayedBundleId": {"type": ["string", "null"]},
        },
    }
    root = {
        "$schema": DRAFT,
        "title": "A replayed trace: every regenerated bundle and reward record",
        "type": "object",
        "required": ["status", "operations", "bundles", "records", "scratch"],
        "properties": {
            "status": {"const": "identical"},
            "operations": {"type": "array", "items": {"$ref": "#/$defs/operation"}},
            "bundles": {"type": "array", "items": {"$ref": "bundle.json"}},
            "records": {"type": "array", "items": {"$ref": "reward-record.json"}},
            "scratch": {"type": "boolean"},
        },
        "additionalProperties": False,
        "$defs": {"operation": operation},
    }
    return _inline(root, None)


# What each tool's structured output is (a key of OUTPUTS).
BUNDLE, RECORD, SUMMARY, REPLAY = "bundle", "reward-record", "reward-session", "replay"


def output_schema(name: str) -> dict[str, Any]:
    """The published ``outputSchema`` for BUNDLE, RECORD, SUMMARY or REPLAY (a fresh copy)."""
    if name == SUMMARY:
        return copy.deepcopy(_summary())
    if name == REPLAY:
        return copy.deepcopy(_replay())
    return compound(name)


@cache
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator
    from referencing import Registry

    schema = output_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=Registry())  # as MCP clients: nothing but the document


def published_problems(name: str, instance: Any, limit: int = 3) -> list[str]:
    """Why ``instance`` does not match the published schema ``name`` (empty: it does)."""
    from ..bundles.schema import describe_errors

    return describe_errors(_validator(name), instance, limit)


def problems(name: str, instance: Any, limit: int = 3) -> list[str]:
    """Why an answer does not match its schema: bundles and records checked with the shipped
    schemas themselves, the wrappers with their published document."""
    if name in (BUNDLE, RECORD):
        from ..bundles.schema import errors

        return errors(name, instance, limit)
    return published_problems(name, instance, limit)
