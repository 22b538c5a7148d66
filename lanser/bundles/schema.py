"""The JSON Schemas (draft 2020-12) shipped in ``lanser/bundles/schemas`` and validation with them.

Kinds: ``selector`` (PositionSpec), ``bundle``, ``step`` (a batch/reward input
line), ``batch-output``, ``reward-record``, ``trace-event`` and
``environment``.  Schemas refer to each other by relative ``$ref``
(``bundle.json``), resolved through one in-memory registry, never the network.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

KINDS: tuple[str, ...] = ("selector", "bundle", "step", "batch-output", "reward-record", "trace-event",
                          "environment")


def schema_text(kind: str) -> str:
    """The schema file's text, exactly as shipped."""
    if kind not in KINDS:
        raise KeyError(kind)
    return resources.files("lanser.bundles").joinpath("schemas", f"{kind}.json").read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def load_schema(kind: str) -> dict[str, Any]:
    return json.loads(schema_text(kind))


@lru_cache(maxsize=None)
def _validator(kind: str) -> Any:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    registry: Any = Registry()
    for name in KINDS:
        doc = load_schema(name)
        registry = registry.with_resource(doc["$id"], Resource.from_contents(doc))
    return Draft202012Validator(load_schema(kind), registry=registry)


def errors(kind: str, instance: Any, limit: int = 5) -> list[str]:
    """Human messages for the first ``limit`` violations (empty when valid), best match first."""
    return describe_errors(_validator(kind), instance, limit)


def describe_errors(validator: Any, instance: Any, limit: int = 5) -> list[str]:
    """What ``errors`` says, for any jsonschema validator (the MCP server's published
    schemas are validated with their own)."""
    from jsonschema.exceptions import best_match

    found = list(validator.iter_errors(instance))
    if not found:
        return []
    first = best_match(found)
    ordered = [first] + [e for e in found if e is not first]
    return [_describe(e) for e in ordered[:limit]]


def _describe(err: Any) -> str:
    """One line; for a oneOf over tagged variants, the error inside the variant whose tag matched."""
    while err.validator in ("oneOf", "anyOf") and err.context:
        branches: dict[Any, list[Any]] = {}
        for sub in err.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        tagged = [errs for errs in branches.values() if not any(e.validator == "const" for e in errs)]
        if len(tagged) != 1:
            break
        err = sorted(tagged[0], key=lambda e: len(e.absolute_path))[0]
    where = "/".join(str(p) for p in err.absolute_path) or "(root)"
    return f"{where}: {err.message}"
