"""Safe mutations: plan, preview, check, apply atomically, recover.

Build a plan (:func:`plan_from_workspace_edit`, :func:`plan_from_unified_diff`,
:func:`plan_write`), show it (:func:`preview`), apply it (:func:`apply_plan`),
and call :func:`recover` at the start of every mutating command.
"""

from .checks import InvalidNewName, check_confidence, check_new_name, path_allowed
from .comments import RemovedComment, claimed_lines, removes_comments
from .gitstate import git_state
from .plan import (
    EditPlan,
    FileChange,
    git_patch,
    plan_from_contents,
    plan_from_unified_diff,
    plan_from_workspace_edit,
    plan_write,
    preview,
)
from .reindent import reindent
from .transaction import ApplyResult, apply_plan, recover

__all__ = ["ApplyResult", "EditPlan", "FileChange", "InvalidNewName", "RemovedComment", "apply_plan",
           "check_confidence", "claimed_lines", "removes_comments",
           "check_new_name", "edits_section", "git_patch", "git_state", "path_allowed",
           "plan_from_contents", "plan_from_unified_diff", "plan_from_workspace_edit", "plan_write",
           "preview", "recover", "reindent"]


def edits_section(plan: EditPlan, result: ApplyResult | None = None) -> dict:
    """The bundle's ``edits`` object: ``workspaceEdit``, ``diff``, ``files``, ``applied``
    and, after an apply, ``result``."""
    out = {"workspaceEdit": plan.workspace_edit, **plan.to_json(),
           "applied": bool(result and result.applied)}
    if result is not None:
        out["result"] = result.to_json()
    return out
