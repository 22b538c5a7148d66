"""Lanser: a pinned Pyright language server between coding agents and real code."""

from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:
    from .sdk import AsyncLanserClient, SyncLanserClient

__all__ = ["AsyncLanserClient", "SyncLanserClient", "__version__"]


def __getattr__(name: str) -> Any:
    """``SyncLanserClient`` and ``AsyncLanserClient`` load on first use: ``import lanser`` stays cheap."""
    if name in ("SyncLanserClient", "AsyncLanserClient"):
        from . import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'lanser' has no attribute {name!r}")
