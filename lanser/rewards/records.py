"""The ``reward`` command's per-step record (CONTRACT.md section 5), built from pure inputs.

    {"step","id","op","status","exitCode","bundleId",
     "diagnostics":{"errors","warnings","informations","byFile":{path:{"errors","warnings"}}},
     "processReward":{...},            # lanser.rewards.formula.process_reward
     "introduced":[...], "resolved":[...]}   # identity diff of the counted diagnostics

A failed step leaves the workspace as it was, so its diagnostics are the
previous ones (``after=None``) and its safety is 0.  ``error`` (the
contract's error object) is added only to failed steps.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..pyright_cli import count_by_severity
from .formula import DEFAULT_WEIGHTS, Weights, process_reward, reward_to_go
from .identity import Diag
from .terms import counted, diag_term

RECORD_KEYS: tuple[str, ...] = ("step", "id", "op", "status", "exitCode", "bundleId", "diagnostics",
                                "processReward", "introduced", "resolved")


def build_record(*, step: int, op: str, before: Sequence[Diag], after: Sequence[Diag] | None,
                 texts_before: Mapping[str, str] | None = None,
                 texts_after: Mapping[str, str] | None = None,
                 step_id: Any = None, status: str = "ok", exit_code: int = 0,
                 bundle_id: str | None = None, error: Mapping[str, Any] | None = None,
                 safety: int | bool = 1, alpha_conf: float = 1.0,
                 weights: Weights = DEFAULT_WEIGHTS, clip: float | None = None,
                 diag_term_mode: str = "delta", severities: Sequence[str] = ("error",),
                 scope_paths: Sequence[str] | None = None,
                 totals: tuple[int, int] | None = None,
                 counts: Mapping[str, Any] | None = None,
                 encoding: str = "utf-16") -> dict[str, Any]:
    """One reward record.

    ``before``/``after`` are the workspace's normalized diagnostics (all
    severities) before and after the step; ``after=None`` (or a failed
    status) means the workspace did not change.  ``severities`` and
    ``scope_paths`` (``--scope touched``) choose what ``D`` counts.
    ``step`` is 1-based.

    A runner that knows the step changed only some files' diagnostics passes
    just those files' diagnostics as ``before``/``after``, the counted totals
    ``(D_prev, D)`` of the whole workspace as ``totals`` and the record's
    ``diagnostics`` object as ``counts``: the diagnostic term and the identity
    diff are the same as over every file (files whose diagnostics and text are
    unchanged contribute nothing), at the cost of the changed files only.
    """
    if status not in ("ok", "error"):
        raise ValueError(f"status must be 'ok' or 'error', got {status!r}")
    if status == "error":
        after, texts_after, safety = None, None, 0
    if after is None:
        after, texts_after = before, texts_before
    d_before = counted(before, severities, scope_paths)
    d_after = counted(after, severities, scope_paths)
    term = diag_term(d_before, d_after, mode=diag_term_mode, texts_before=texts_before,
                     texts_after=texts_after, encoding=encoding)
    diag_before, diag_after = totals if totals is not None else (len(d_before), len(d_after))
    if status == "error":
        diag_after = diag_before
    reward = process_reward(diag_before=diag_before, diag_after=diag_after, safety=safety,
                            alpha_conf=alpha_conf, weights=weights, clip=clip,
                            diag_term=diag_term_mode, term=term.term)
    record: dict[str, Any] = {
        "step": step,
        "id": step_id,
        "op": op,
        "status": status,
        "exitCode": exit_code,
        "bundleId": bundle_id,
        "diagnostics": dict(counts) if counts is not None else count_by_severity(list(after)),
        "processReward": reward,
        "introduced": term.introduced,
        "resolved": term.resolved,
    }
    if status == "error" and error is not None:
        record["error"] = dict(error)
    return record


def aggregate(records: Sequence[Mapping[str, Any]], mode: str = "sum") -> list[dict[str, Any]]:
    """Copies of ``records`` (in step order) with ``value`` (this step's credit:
    ``sum`` = reward-to-go, ``min`` = PURE min-form ``min(r_t..r_T)``) and
    ``return`` (the whole trajectory's value under ``mode``, i.e. step 1's value)."""
    rewards = [rec["processReward"]["r"] for rec in records]
    values = reward_to_go(rewards, mode)
    total = values[0] if values else 0.0
    return [{**rec, "value": v, "return": total, "aggregate": mode} for rec, v in zip(records, values)]
