"""Lanser's version (one place: the package, the bundles' ``environment`` and ``doctor`` read it)."""

__version__ = "0.1.0"
