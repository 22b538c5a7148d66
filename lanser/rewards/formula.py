"""Eq. 5.1 of the paper with the signed safety term (CONTRACT.md section 5), and
how per-step rewards are aggregated over a trajectory.

    r = alpha*T + beta*(2*S - 1) - gamma*(1 - a)

``T`` is the diagnostic term: with ``diagTerm="delta"`` (the contract's
reading) ``T = D_prev - D``; with ``"regression"`` it is computed from
diagnostic identities (see :mod:`lanser.rewards.identity`).  ``clip`` bounds
``T`` to ``[-clip, clip]`` before weighting.  ``S`` is 1 when every safety
check passed, ``a`` the selector's resolution confidence (1 without a
selector).  Every float leaves this module rounded to 6 decimals, so the JSON
is stable.

Everything here is pure; bad options raise ``ValueError`` with a message fit
for a user (the CLI turns it into ``click.BadParameter``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

PR_VERSION = "pr-v1"
DIAG_TERMS: tuple[str, ...] = ("delta", "regression")
AGGREGATES: tuple[str, ...] = ("sum", "min")
NDIGITS = 6


def rnd(x: float) -> float:
    """Deterministic rounding for JSON (6 decimals; -0.0 becomes 0.0)."""
    y = round(float(x), NDIGITS)
    return 0.0 if y == 0 else y


def _num(x: float) -> float | int:
    """Integers stay integers in JSON (``3`` not ``3.0``); other floats are rounded."""
    if isinstance(x, int) and not isinstance(x, bool):
        return x
    y = rnd(x)
    return int(y) if y.is_integer() else y


@dataclass(frozen=True)
class Weights:
    """The (alpha, beta, gamma) of Eq. 5.1; all finite and >= 0 (paper, section 5)."""

    alpha: float = 0.5
    beta: float = 0.4
    gamma: float = 0.1

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"weight {name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"weight {name} must be a finite number >= 0, got {value!r}")

    def to_json(self) -> dict[str, float]:
        return {"alpha": rnd(self.alpha), "beta": rnd(self.beta), "gamma": rnd(self.gamma)}


DEFAULT_WEIGHTS = Weights()


def parse_weights(text: str) -> Weights:
    """Parse ``"alpha=0.5,beta=0.4,gamma=0.1"``; names left out keep their default.

    Raises ValueError for an empty string, an unknown or repeated name, a
    missing ``=``, or a value that is not a finite number >= 0.
    """
    if not text or not text.strip():
        raise ValueError("empty weights; expected e.g. alpha=0.5,beta=0.4,gamma=0.1")
    values: dict[str, float] = {}
    for part in text.split(","):
        item = part.strip()
        if not item:
            raise ValueError(f"empty item in weights {text!r}")
        name, sep, raw = item.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep:
            raise ValueError(f"weights item {item!r} is not NAME=VALUE")
        if name not in ("alpha", "beta", "gamma"):
            raise ValueError(f"unknown weight {name!r}; use alpha, beta and gamma")
        if name in values:
            raise ValueError(f"weight {name!r} given twice")
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"weight {name} is not a number: {raw!r}") from None
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"weight {name} must be a finite number >= 0, got {raw!r}")
        values[name] = value
    return Weights(**values)


def check_clip(clip: float | None) -> float | None:
    """Validate ``--clip``: None (no clipping) or a finite number > 0."""
    if clip is None:
        return None
    if isinstance(clip, bool) or not isinstance(clip, (int, float)):
        raise ValueError(f"clip must be a number, got {clip!r}")
    if not math.isfinite(clip) or clip <= 0:
        raise ValueError(f"clip must be a finite number > 0, got {clip!r}")
    return float(clip)


def check_diag_term(name: str) -> str:
    if name not in DIAG_TERMS:
        raise ValueError(f"unknown diag term {name!r}; use one of {', '.join(DIAG_TERMS)}")
    return name


def clip_term(term: float, clip: float | None) -> float:
    """``term`` bounded to ``[-clip, clip]`` (unchanged when clip is None)."""
    clip = check_clip(clip)
    if clip is None:
        return term
    return max(-clip, min(clip, term))


def process_reward(*, diag_before: int, diag_after: int, safety: int | bool,
                   alpha_conf: float = 1.0, weights: Weights = DEFAULT_WEIGHTS,
                   clip: float | None = None, diag_term: str = "delta",
                   term: float | None = None) -> dict[str, Any]:
    """The contract's ``processReward`` object for one step.

    ``term`` is the unclipped diagnostic term; it defaults to
    ``diag_before - diag_after`` and must be given for ``diag_term="regression"``.
    Returns ``{"version","r","weights","components":{"diag_before","diag_after",
    "diag_delta","safety","alpha_conf","ambiguity_penalty"},"diagTerm","clip","term"}``
    where ``ambiguity_penalty`` is ``1 - a`` (as in the paper's bundles) and
    ``term`` is the clipped diagnostic term actually weighted by alpha.
    """
    check_diag_term(diag_term)
    clip = check_clip(clip)
    for name, value in (("diag_before", diag_before), ("diag_after", diag_after)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    if safety not in (0, 1):  # True/False compare equal to 1/0
        raise ValueError(f"safety must be 0 or 1, got {safety!r}")
    if isinstance(alpha_conf, bool) or not isinstance(alpha_conf, (int, float)) \
            or not math.isfinite(alpha_conf) or not 0.0 <= alpha_conf <= 1.0:
        raise ValueError(f"alpha_conf must be a number in [0, 1], got {alpha_conf!r}")
    delta = diag_before - diag_after
    if term is None:
        if diag_term != "delta":
            raise ValueError(f"diag term {diag_term!r} needs an explicit term value")
        term = delta
    weighted_term = clip_term(term, clip)
    s = int(safety)
    penalty = 1.0 - float(alpha_conf)
    r = weights.alpha * weighted_term + weights.beta * (2 * s - 1) - weights.gamma * penalty
    return {
        "version": PR_VERSION,
        "r": rnd(r),
        "weights": weights.to_json(),
        "components": {
            "diag_before": diag_before,
            "diag_after": diag_after,
            "diag_delta": delta,
            "safety": s,
            "alpha_conf": _num(alpha_conf),
            "ambiguity_penalty": _num(penalty),
        },
        "diagTerm": diag_term,
        "clip": None if clip is None else _num(clip),
        "term": _num(weighted_term),
    }


def reward_to_go(rewards: Sequence[float], mode: str = "sum") -> list[float]:
    """Per-step value of a trajectory's rewards.

    ``sum``: ``V_t = r_t + ... + r_T`` (undiscounted reward-to-go; with the
    delta term and no clipping its diagnostic part telescopes to
    ``alpha*(D_{t-1} - D_T)``, i.e. potential-based shaping).
    ``min``: ``V_t = min(r_t, ..., r_T)`` (PURE's min-form credit assignment:
    one bad later step caps the value of every step before it, and no
    repetition of high-reward steps can inflate it).
    """
    if mode not in AGGREGATES:
        raise ValueError(f"unknown aggregate {mode!r}; use one of {', '.join(AGGREGATES)}")
    out: list[float] = []
    acc: float | None = None
    for r in reversed(list(rewards)):
        if acc is None:
            acc = float(r)
        elif mode == "sum":
            acc = acc + float(r)
        else:
            acc = min(acc, float(r))
        out.append(rnd(acc))
    out.reverse()
    return out


def trajectory_return(rewards: Iterable[float], mode: str = "sum") -> float:
    """The value of the whole trajectory (``V_1``); 0.0 for an empty one."""
    values = reward_to_go(list(rewards), mode)
    return values[0] if values else 0.0
