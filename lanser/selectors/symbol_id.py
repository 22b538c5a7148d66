"""Stable symbol identifiers from a structural fingerprint.

Recipe::

    symbolId = "sym:" + sha256("\\0".join([module, qualname, kind, str(overload or 0)]))
                        .hexdigest()[:16]

- ``module`` is the primary dotted module name (lanser.selectors.modules);
- ``qualname`` is the structural qualname (``Class.method``, ``f.inner``,
  ``Class.prop.setter``), see lanser.selectors.structure;
- ``kind`` is one of ``class``, ``function``, ``property``,
  ``property.setter``, ``property.deleter``, ``variable`` (``async`` is not
  part of the kind: making a function async keeps its id);
- ``overload`` is the 1-based ``@overload`` variant, 0 for everything else.

No position and no body text enters the fingerprint, so the id survives lines
shifting, body edits and reformatting; renaming the symbol, one of its
enclosing classes/functions, or its module, or changing its kind (a method
becoming a property, a function becoming a class) changes it.
"""

from __future__ import annotations

import hashlib


def symbol_id(module: str, qualname: str, kind: str, overload: int | None = None) -> str:
    """``sym:`` + the first 16 hex digits of the fingerprint's SHA-256 (see module doc)."""
    fingerprint = "\0".join([module, qualname, kind, str(overload or 0)])
    return "sym:" + hashlib.sha256(fingerprint.encode("utf-8")).hexdigest()[:16]
