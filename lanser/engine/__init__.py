"""The engine: one workspace, one lazily started server, every operation as a bundle.

``core`` holds :class:`Engine`, :class:`Context` and :class:`Request`; ``navigation``
the read-only handlers, ``mutations`` the mutating ones, ``planner`` the one rename/edit
planner (also called by the reward runner).  ``from lanser.engine import Engine, Options``
is the public import.
"""

from ..bundles.envelope import BUNDLE_VERSION, error_bundle
from ..options import Options
from .core import Context, Engine, Request

__all__ = ["BUNDLE_VERSION", "Context", "Engine", "Options", "Request", "error_bundle"]
