"""Canonical JSON (RFC 8785, via the rfc8785 package) and the bundleId.

The bundleId hashes everything except ``bundleId`` itself and the volatile
fields: ``meta.volatile`` (timings, process ids, absolute paths, the full
interpreter version) and ``environment.platform``.  Two checkouts of the same
content, or two machines with the same pinned server and Python minor
version, therefore get the same id.
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

HASHING = {"algo": "sha256-jcs-v1"}
VOLATILE: tuple[tuple[str, ...], ...] = (("bundleId",), ("meta", "volatile"), ("environment", "platform"))


def canonical_bytes(obj: Any) -> bytes:
    """JCS bytes: sorted keys, no whitespace, ES6 number forms, UTF-8."""
    return rfc8785.dumps(obj)


def _strip(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without the volatile fields; only the dicts on their paths are copied
    (a deep copy of a large references bundle cost more than hashing it)."""
    out = dict(obj)
    for path in VOLATILE:
        node: Any = out
        for key in path[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                node = None
                break
            child = dict(child)
            node[key] = child
            node = child
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return out


def bundle_id(bundle: dict[str, Any]) -> str:
    """``sha256:`` + hex digest of the canonical bundle without volatile fields."""
    return "sha256:" + hashlib.sha256(canonical_bytes(_strip(bundle))).hexdigest()


def with_id(bundle: dict[str, Any]) -> dict[str, Any]:
    """The bundle with ``bundleId`` placed second, after ``version``."""
    out = {"version": bundle["version"], "bundleId": bundle_id(bundle)}
    out.update((k, v) for k, v in bundle.items() if k not in ("version", "bundleId"))
    return out
