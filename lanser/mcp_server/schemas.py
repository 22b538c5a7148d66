"""The JSON Schemas the MCP tools publish: Lanser's shipped schemas, made self-contained.

An MCP client validates a tool's structured output against the tool's
``outputSchema`` with an empty registry (no network, no other file), while the
shipped schemas (``lanser/bundles/schemas``) refer to each other by relative
``$ref`` (``bundle.json`` -> ``environment.json``, ``selector.json``).  So each
published schema is a JSON Schema 2020-12 *compound document*: the shipped
schema, unchanged, with every schema it refers to (transitively) embedded under
``$defs`` keeping its own ``$id``.  Each relative ``$ref`` then resolves inside
the one document to the very schema :mod:`lanser.bundles.schema` resolves it to.

Two tools answer with more than one bundle or record (``replay``,
``reward_session_summary``): their schemas are small wrappers whose items are
the shipped ``bundle`` and ``reward-record`` schemas, embedded the same way.
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


def _embed(root: dict[str, Any], kinds: list[str], skip: set[str]) -> dict[str, Any]:
    """``root`` with the shipped schemas ``kinds`` (and what they refer to) under ``$defs``."""
    defs = root.setdefault("$defs", {})
    todo = list(kinds)
    seen = set(skip)
    while todo:
        kind = todo.pop(0)
        if kind in seen:
            continue
        seen.add(kind)
        doc = copy.deepcopy(load_schema(kind))
        defs[f"{kind}.json"] = doc
        todo.extend(_kind_of(f) for f in _external_refs(doc))
    return root


@cache
def _compound(kind: str) -> dict[str, Any]:
    root = copy.deepcopy(load_schema(kind))
    return _embed(root, [_kind_of(f) for f in _external_refs(root)], {kind})


def compound(kind: str) -> dict[str, Any]:
    """The shipped schema ``kind`` as one self-contained document (a fresh copy)."""
    return copy.deepcopy(_compound(kind))


def _id(kind: str) -> str:
    return str(load_schema(kind)["$id"])


@cache
def _summary() -> dict[str, Any]:
    trajectory = {
        "type": "object",
        "required": ["steps", "return", "records"],
        "properties": {
            "steps": {"type": "integer", "minimum": 0},
            "return": {"type": "number"},
            "records": {"type": "array", "items": {"$ref": _id("reward-record")}},
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
    return _embed(root, ["reward-record"], set())


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
            "bundles": {"type": "array", "items": {"$ref": _id("bundle")}},
            "records": {"type": "array", "items": {"$ref": _id("reward-record")}},
            "scratch": {"type": "boolean"},
        },
        "additionalProperties": False,
        "$defs": {"operation": operation},
    }
    return _embed(root, ["bundle", "reward-record"], set())


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
    # An empty registry, as MCP clients validate: every $ref must resolve inside the document.
    return Draft202012Validator(schema, registry=Registry())


def problems(name: str, instance: Any, limit: int = 3) -> list[str]:
    """Why ``instance`` does not match the published schema ``name`` (empty: it does)."""
    from jsonschema.exceptions import best_match

    found = list(_validator(name).iter_errors(instance))
    if not found:
        return []
    first = best_match(found)
    ordered = [first] + [e for e in found if e is not first]
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in ordered[:limit]]
