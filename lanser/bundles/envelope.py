"""The bundle envelope (CONTRACT.md section 3): the one place a bundle is put together.

Every bundle Lanser prints or records comes from :func:`build_bundle`: the
engine's commands (``Engine.bundle``), the reward runner's step bundles (through
the same ``Engine.bundle``) and the error bundles of failures before any engine
existed (:func:`error_bundle`).  The envelope fixes the keys, ``status``, the
error object, ``meta`` (``exit_code``, the sorting keys, the hashing algorithm,
truncation) and the ``bundleId``.

``meta.indexIo`` (the ``--index-io`` the request's positions were read in) is in
every bundle an engine builds, reward and batch step bundles included (they
resolve selectors too); an error bundle made before any engine existed has none
(its options may be the very thing that was refused).  Only light modules are
imported here: the CLI's daemon path builds error bundles.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import LanserError
from .canonical import HASHING, with_id
from .normalize import SORTING_KEYS

BUNDLE_VERSION = "1.2"


def build_bundle(request: dict[str, Any], *, error: LanserError | None = None,
                 resolution: dict[str, Any] | None = None, facts: dict[str, Any] | None = None,
                 edits: dict[str, Any] | None = None, process_reward: dict[str, Any] | None = None,
                 environment: dict[str, Any] | None = None, capabilities: dict[str, Any] | None = None,
                 meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A complete bundle with its ``bundleId``.  ``status`` and ``meta.exit_code`` follow
    ``error``; ``meta`` adds to (or overrides) the standard meta fields."""
    out_meta: dict[str, Any] = {"exit_code": error.exit_code if error is not None else 0,
                                "sorting_keys": list(SORTING_KEYS), "hashing": dict(HASHING),
                                "truncated": False, "cursor": None}
    out_meta.update(meta or {})
    return with_id({
        "version": BUNDLE_VERSION,
        "status": "error" if error is not None else "ok",
        "request": request,
        "resolution": resolution,
        "facts": facts,
        "edits": edits,
        "processReward": process_reward,
        "environment": environment,
        "capabilities": capabilities,
        "error": error.to_json() if error is not None else None,
        "meta": out_meta,
    })


def error_bundle(cmd: str, selector: str | None, args: dict[str, Any], err: LanserError) -> dict[str, Any]:
    """The bundle for a failure before any engine existed (bad workspace, bad option value,
    a daemon that cannot be reached, a malformed batch line)."""
    return build_bundle({"cmd": cmd, "selector": None, "args": args}, error=err)
