"""Process reward: Eq. 5.1, diagnostic identities and terms, reward records."""

from typing import TYPE_CHECKING

from .formula import (
    AGGREGATES,
    DEFAULT_WEIGHTS,
    DIAG_TERMS,
    PR_VERSION,
    Weights,
    clip_term,
    parse_weights,
    process_reward,
    reward_to_go,
    trajectory_return,
)
from .identity import DiagId, diff_diagnostics, enclosing_symbol
from .records import aggregate, build_record
from .terms import TermResult, counted, diag_term

if TYPE_CHECKING:  # loaded lazily at run time (see __getattr__ below)
    from .api import AsyncRewardScorer, RewardScorer
    from .runner import RewardOptions, TrajectoryRunner

__all__ = [
    "AGGREGATES", "DEFAULT_WEIGHTS", "DIAG_TERMS", "PR_VERSION", "DiagId", "TermResult", "Weights",
    "aggregate", "build_record", "clip_term", "counted", "diag_term", "diff_diagnostics",
    "enclosing_symbol", "parse_weights", "process_reward", "reward_to_go", "trajectory_return",
    "AsyncRewardScorer", "RewardOptions", "RewardScorer", "TrajectoryRunner",
]

# The runner and the trainer API pull in the engine and the server client: loaded on first use.
_LAZY = {"AsyncRewardScorer": ".api", "RewardScorer": ".api", "RewardOptions": ".runner",
         "TrajectoryRunner": ".runner"}


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
