"""Process reward: Eq. 5.1, diagnostic identities and terms, reward records."""

from .formula import (
    AGGREGATES, DEFAULT_WEIGHTS, DIAG_TERMS, PR_VERSION, Weights, clip_term, parse_weights,
    process_reward, reward_to_go, trajectory_return,
)
from .identity import DiagId, diff_diagnostics, enclosing_symbol
from .records import aggregate, build_record
from .terms import TermResult, counted, diag_term

__all__ = [
    "AGGREGATES", "DEFAULT_WEIGHTS", "DIAG_TERMS", "PR_VERSION", "DiagId", "TermResult", "Weights",
    "aggregate", "build_record", "clip_term", "counted", "diag_term", "diff_diagnostics",
    "enclosing_symbol", "parse_weights", "process_reward", "reward_to_go", "trajectory_return",
]
