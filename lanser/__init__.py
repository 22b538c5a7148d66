"""Lanser: a pinned Pyright language server between coding agents and real code."""

__version__ = "0.1.0"
