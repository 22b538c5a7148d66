"""Lanser: a pinned Pyright language server between coding agents and real code."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``SyncLanserClient`` and ``AsyncLanserClient`` load on first use: ``import lanser`` stays cheap."""
    if name in ("SyncLanserClient", "AsyncLanserClient"):
        from . import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'lanser' has no attribute {name!r}")
