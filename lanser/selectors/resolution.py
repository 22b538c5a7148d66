"""What resolving a selector yields: the winner, the ranked evidence, the scoring used.

Ranges are flat ``[sL, sC, eL, eC]``, 0-based, in the encoding the resolver
was asked for (the server's negotiated encoding, utf-16 by default), so they
can go into a bundle and to the server unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Paper Eq. 3.1 weights; tau and margin decide when one candidate is clear.
WEIGHTS: dict[str, float] = {"s_ast": 0.5, "s_module": 0.2, "J_token": 0.2, "s_prox": 0.1}
TAU = 0.6
MARGIN = 0.1
TOP_K = 5


def number(x: float) -> float | int:
    """``x`` rounded to 6 places, as an int when integral: the JSON is the same either
    way (RFC 8785 writes 1.0 as 1), and a bundle dict is then the same in-process as
    decoded from a daemon's bytes."""
    r = round(x, 6)
    return int(r) if type(r) is float and r.is_integer() else r


@dataclass(frozen=True)
class ScoringSettings:
    weights: dict[str, float] = field(default_factory=lambda: dict(WEIGHTS))
    tau: float = TAU
    margin: float = MARGIN
    top_k: int = TOP_K

    def to_json(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "tau": self.tau, "margin": self.margin, "topK": self.top_k}


@dataclass(frozen=True)
class Candidate:
    path: str
    range: list[int]
    selection_range: list[int]
    score: float
    features: dict[str, float] = field(default_factory=dict)
    symbol_id: str | None = None
    label: str | None = None          # e.g. the qualname, or the matched text

    def sort_key(self) -> tuple[Any, ...]:
        """Score descending, then (path, range) ascending: a total order."""
        return (-self.score, self.path, *self.range)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "range": list(self.range),
                               "selectionRange": list(self.selection_range),
                               "score": number(self.score),
                               "features": {k: number(v) for k, v in sorted(self.features.items())}}
        if self.symbol_id is not None:
            out["symbolId"] = self.symbol_id
        if self.label is not None:
            out["label"] = self.label
        return out


@dataclass(frozen=True)
class Resolution:
    original: str                       # the selector as the user gave it
    canonical: str                      # format(parse(original))
    path: str                           # workspace-relative
    range: list[int]
    selection_range: list[int]
    confidence: float
    encoding: str                       # units of the ranges' columns
    symbol_id: str | None = None
    disambiguation: list[Candidate] = field(default_factory=list)
    scoring: ScoringSettings | None = None
    anchor: str | None = None           # a freshly minted anchor selector for the target
    relocated: dict[str, Any] | None = None  # how a stale ?v= position was mapped, if it was
    # The text the ranges index into, so the document sent to the server is exactly what
    # was resolved against (and is not read twice).  Not part of the bundle.
    source: Any = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "original": self.original,
            "canonical": self.canonical,
            "resolved": {"path": self.path, "range": list(self.range),
                         "selectionRange": list(self.selection_range),
                         "symbolId": self.symbol_id, "confidence": number(self.confidence)},
            "disambiguation": [c.to_json() for c in self.disambiguation],
            "scoring": self.scoring.to_json() if self.scoring else None,
        }
        if self.anchor is not None:
            out["anchor"] = self.anchor
        if self.relocated is not None:
            out["relocated"] = self.relocated
        return out
