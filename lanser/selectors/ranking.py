"""Candidate ranking, paper Eq. 3.1, and the tau/margin decision.

``score = 0.5*s_ast + 0.2*s_module + 0.2*J_token + 0.1*s_prox`` (weights from
ScoringSettings), every feature in [0, 1]:

``s_ast``
    Structural node agreement.  The requested chain (``[(kind, name), ...]``,
    kind ``class``/``def``/``assign`` or ``None`` when the selector does not say,
    as in ``py://`` selectors) and the candidate's chain are aligned from the
    innermost step outwards; a step agrees when the requested kind is ``None``
    or equals the candidate's.  ``s_ast = agreeing steps / max(len(requested),
    len(candidate))``: 1.0 for the same depth and kinds, lower for a
    definition at another nesting depth or of another kind.
``s_module``
    Module equivalence: 1.0 for the same dotted module (or when the selector
    names none); 0.75 when one name is a dotted suffix of the other
    (``pkg.mod`` / ``mod``); 0.5 when only the last component is the same;
    0.25 when only the top-level package is; else 0.
``J_token``
    Jaccard index of the lower-cased name tokens of the requested and the
    candidate qualname; names are split on ``.``, ``_`` and camelCase
    boundaries (``loadData.x_y`` → {load, data, x, y}).  Two empty qualnames
    (the module itself) give 1.0.
``s_prox``
    Proximity: 1.0 when the candidate's qualname equals the requested one
    exactly (identity beats position); otherwise, when the target's old line
    is known and mapped into the current text (a ``?v=`` selector with the old
    text available), ``1 / (1 + |line - old_line| / 5)``; otherwise 0.

An exact qualname in the exact module therefore scores 1.0.  :func:`decide`
resolves when the best candidate has ``score >= tau`` and leads the next by at
least ``margin``; ties are broken by (path, range), so the order is total.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from ..errors import Ambiguous, NotFound
from .resolution import Candidate, ScoringSettings

_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+|[^\W\d_]+", re.UNICODE)
EPS = 1e-9


@dataclass(frozen=True)
class Request:
    """What a selector asks for, in ranking terms."""

    module: str | None
    chain: tuple[tuple[str | None, str], ...]      # (step kind or None, name), outermost first
    old_line: int | None = None                    # the target's old line mapped to the current text

    @property
    def qualname(self) -> str:
        return ".".join(n for _, n in self.chain)


def name_tokens(qualname: str) -> set[str]:
    """Lower-cased tokens of a dotted qualname (split on ``.``, ``_`` and camelCase)."""
    out: set[str] = set()
    for part in qualname.split("."):
        for piece in part.split("_"):
            out.update(t.lower() for t in _CAMEL.findall(piece))
    return out


def s_ast(requested: Sequence[tuple[str | None, str]], candidate: Sequence[tuple[str, str]]) -> float:
    n = max(len(requested), len(candidate))
    if n == 0:
        return 1.0
    agree = sum(1 for (rk, _), (ck, _) in zip(reversed(requested), reversed(candidate))
                if rk is None or rk == ck)
    return agree / n


def s_module(requested: str | None, candidate: str) -> float:
    if requested is None or requested == candidate:
        return 1.0
    if candidate.endswith("." + requested) or requested.endswith("." + candidate):
        return 0.75
    r, c = requested.split("."), candidate.split(".")
    if r[-1] == c[-1]:
        return 0.5
    if r[0] == c[0]:
        return 0.25
    return 0.0


def j_token(requested: str, candidate: str) -> float:
    a, b = name_tokens(requested), name_tokens(candidate)
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def s_prox(requested_qualname: str, candidate_qualname: str, old_line: int | None, line: int) -> float:
    if requested_qualname == candidate_qualname:
        return 1.0
    if old_line is None:
        return 0.0
    return 1.0 / (1.0 + abs(line - old_line) / 5.0)


def features(request: Request, module: str, chain: Sequence[tuple[str, str]], line: int) -> dict[str, float]:
    """The four Eq. 3.1 features of one candidate definition."""
    qualname = ".".join(n for _, n in chain)
    return {"s_ast": s_ast(request.chain, chain),
            "s_module": s_module(request.module, module),
            "J_token": j_token(request.qualname, qualname),
            "s_prox": s_prox(request.qualname, qualname, request.old_line, line)}


def score(feats: dict[str, float], settings: ScoringSettings) -> float:
    """Eq. 3.1, rounded to 12 decimals so an exact match is exactly 1.0."""
    return round(sum(settings.weights.get(k, 0.0) * v for k, v in feats.items()), 12)


def ranked(cands: Sequence[Candidate]) -> list[Candidate]:
    """Score descending, then (path, range): a total order."""
    return sorted(cands, key=Candidate.sort_key)


def decide(cands: Sequence[Candidate], settings: ScoringSettings, *, what: str) -> tuple[Candidate, list[Candidate]]:
    """The winner and the top-k list, or NotFound / Ambiguous (with the top-k as JSON)."""
    order = ranked(cands)
    if not order:
        raise NotFound(f"no candidate for {what}")
    best = order[0]
    top = order[: settings.top_k]
    clear = len(order) == 1 or best.score - order[1].score >= settings.margin - EPS
    if best.score >= settings.tau - EPS and clear:
        return best, top
    if best.score < settings.tau - EPS:
        reason = f"the best score {best.score:.3f} is below tau={settings.tau}"
    else:
        reason = (f"the best two scores {best.score:.3f} and {order[1].score:.3f} are closer "
                  f"than margin={settings.margin}")
    raise Ambiguous(f"{len(order)} candidates for {what}: {reason}",
                    candidates=[c.to_json() for c in top])
