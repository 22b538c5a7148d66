"""Selectors: parse, format and resolve the five selector forms (CONTRACT.md section 2)."""

from .grammar import format_selector, parse_selector
from .resolution import Candidate, Resolution, ScoringSettings
from .resolve import resolve_selector
from .spec import SelectorSpec

__all__ = ["Candidate", "Resolution", "ScoringSettings", "SelectorSpec", "format_selector",
           "parse_selector", "resolve_selector"]
