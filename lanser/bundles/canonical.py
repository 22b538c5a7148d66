"""Canonical JSON (RFC 8785) and the bundleId.

The bundleId hashes everything except ``bundleId`` itself and the volatile
fields: ``meta.volatile`` (timings, process ids, absolute paths, the full
interpreter version) and ``environment.platform``.  Two checkouts of the same
content, or two machines with the same pinned server and Python minor
version, therefore get the same id.

The rfc8785 package is the definition of canonical here, but it is pure
Python: hashing a warm ``def`` bundle with it took a quarter of the time the
server took to answer.  For the documents bundles are made of (ASCII keys,
safe integers, floats that are integral or whose shortest round-trip form is
positional), orjson with sorted keys writes the same bytes once integral
floats are turned into ints, so :func:`canonical_bytes` takes that path and
hands anything else to rfc8785.  tests/test_bundles_canonical.py checks the two
agree on generated values.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import rfc8785

HASHING = {"algo": "sha256-jcs-v1"}
VOLATILE: tuple[tuple[str, ...], ...] = (("bundleId",), ("meta", "volatile"), ("environment", "platform"))

_SAFE_INT = 2**53 - 1
# Types orjson would serialize but rfc8785 refuses go through ``default`` (none): refused too.
_ORJSON_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


class _NotPlain(Exception):
    """A value whose orjson encoding could differ from RFC 8785: use rfc8785."""


def _float_as_is(x: float) -> bool:
    """orjson writes ``x`` as RFC 8785 does: not integral (JCS writes ``1.0`` as ``1``) and
    neither tiny nor huge (there both switch to exponents, at different thresholds)."""
    return not x.is_integer() and 1e-4 <= abs(x) < _SAFE_INT


def _plain(obj: Any) -> Any:
    """``obj`` as plain dicts/lists with integral floats as ints, or _NotPlain when
    orjson's bytes could differ from RFC 8785's.  Only called when :func:`_needs_plain`
    says so (rarely: the fast check inlines leaves, this does not need to).

    Exact type checks on purpose: subclasses (enums, bool-likes) go to rfc8785,
    which knows how it wants them.
    """
    t = type(obj)
    if t is dict:
        out = {}
        for k, v in obj.items():
            if type(k) is not str or not k.isascii():  # UTF-16 vs code point order could differ
                raise _NotPlain
            out[k] = _plain(v)
        return out
    if t is list or t is tuple:
        return [_plain(v) for v in obj]
    if t is str or obj is None or t is bool or (t is int and -_SAFE_INT <= obj <= _SAFE_INT):
        return obj
    if t is float:
        if _float_as_is(obj):
            return obj
        if obj.is_integer() and -_SAFE_INT <= obj <= _SAFE_INT:
            return int(obj)  # also -0.0 -> 0, as JCS writes it
    raise _NotPlain  # unsafe integers; tiny, huge, NaN or infinite floats; other types


def _needs_plain(obj: Any) -> bool:
    """Whether ``obj`` must go through :func:`_plain` (an integral, tiny or huge float,
    a non-ASCII or non-str key, an unsafe integer, a type other than
    dict/list/str/int/float/bool/None).

    A read-only walk: most bundles need no conversion and are written as they are."""
    t = type(obj)
    if t is dict:
        try:
            if not "".join(obj).isascii():  # every key at once (a non-str key raises)
                return True
        except TypeError:
            return True
        for v in obj.values():
            tv = type(v)
            if not (tv is str or v is None or tv is bool or (tv is int and -_SAFE_INT <= v <= _SAFE_INT)):
                if _needs_plain(v):
                    return True
        return False
    if t is list:
        for v in obj:
            tv = type(v)
            if not (tv is str or v is None or (tv is int and -_SAFE_INT <= v <= _SAFE_INT)) and _needs_plain(v):
                return True
        return False
    if t is str or obj is None or t is bool:
        return False
    if t is float:
        return not _float_as_is(obj)
    return not (t is int and -_SAFE_INT <= obj <= _SAFE_INT)


def canonical_bytes(obj: Any) -> bytes:
    """JCS bytes: sorted keys, no whitespace, ES6 number forms, UTF-8."""
    try:
        if not _needs_plain(obj):
            return orjson.dumps(obj, option=_ORJSON_OPTS)
        return orjson.dumps(_plain(obj), option=_ORJSON_OPTS)
    except (_NotPlain, orjson.JSONEncodeError, RecursionError):
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
