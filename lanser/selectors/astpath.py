"""AST path selectors: ``ast://[module=pkg.mod]/[class=C]/[def=m]/call[2]/name[1]``.

Bracket steps name definitions (``class``, ``def`` — which also matches
``async def`` and property accessors — and ``var`` for module- and
class-level assignments); an optional first ``[module=...]`` step names the
module (without it every module of the workspace is searched).  Trailing node
steps ``type[i]`` select, inside the node reached so far, the i-th descendant
(1-based, document order = pre-order) of that tree-sitter node type;
``name`` is an alias of ``identifier``.  The first node step searches the
definition node itself (``function_definition``/``class_definition`` or the
assignment statement), not its decorators, so ``[def=f]/call[1]`` is the
first call inside ``f``'s header or body.
"""

from __future__ import annotations

from typing import Any, Sequence

from tree_sitter import Node

from ..errors import NotFound
from .structure import iter_descendants

STEP_KINDS = {"class": "class", "def": "def", "var": "assign", "assign": "assign",
              "function": "def", "variable": "assign"}
NODE_ALIASES = {"name": "identifier"}


def split_steps(steps: Sequence[tuple[str, Any]]) -> tuple[str | None, tuple[tuple[str, str], ...],
                                                             list[tuple[str, int]]]:
    """(module or None, definition chain as (class|def|assign, name), node steps)."""
    module: str | None = None
    chain: list[tuple[str, str]] = []
    nodes: list[tuple[str, int]] = []
    for kind, value in steps:
        if isinstance(value, int) and not isinstance(value, bool):
            nodes.append((kind, value))
        elif kind == "module":
            module = str(value)
        else:
            chain.append((STEP_KINDS.get(kind, kind), str(value)))
    return module, tuple(chain), nodes


def select_node(node: Node, steps: Sequence[tuple[str, int]]) -> Node:
    """Follow node steps from ``node``; NotFound names the step that has no match."""
    current = node
    for node_type, index in steps:
        ts_type = NODE_ALIASES.get(node_type, node_type)
        found = None
        for i, hit in enumerate(iter_descendants(current, ts_type), start=1):
            if i == index:
                found = hit
                break
        if found is None:
            raise NotFound(f"no {node_type}[{index}] inside {current.type} at line "
                           f"{current.start_point.row + 1}")
        current = found
    return current
