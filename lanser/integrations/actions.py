"""The agent's action text -> one Lanser step; a step's record -> the agent's observation.

Action format (what an agent writes in a turn; SkyRL, OpenRLHF and TRL's
one-shot reward read it):

- a fenced block tagged ``diff`` or ``patch``: a unified diff, as ``git diff``
  prints it -> ``{"op": "patch", "patch": ...}``;
- a fenced block tagged ``json`` or ``lanser`` holding one JSON object: a step
  exactly as in ``lanser reward`` (``write``, ``edit``, ``rename``, ``query``,
  ``patch``, ``reset``; CONTRACT.md section 5);
- with no fenced block: the whole text, when it is a JSON object (a step) or
  starts with ``diff --git`` / ``--- `` (a diff);
- ``submit`` alone on the last line (or ``{"op": "submit"}``): the episode ends;
  no step is taken.

When several blocks qualify, the last one counts (the agent's final word).
Anything else is not an action: it is still sent to Lanser as the step
``{"op": "invalid", "action": ...}`` so that its record (E/BAD_INPUT, S = 0,
r = -beta with the default weights) comes from the same formula and is counted
in the session like any other step.

Observations list what the step did to the diagnostics: the counted errors
before and after, the diagnostics it introduced and resolved (identity diff,
``path:line:col`` 1-based), a refusal's error code and message, or a query's
answer when the backend returned the step's bundle.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)
PATCH_TAGS = frozenset({"diff", "patch", "udiff"})
JSON_TAGS = frozenset({"json", "lanser"})


@dataclass(frozen=True)
class Action:
    """A parsed action: ``step`` to send, or ``submit``; ``problem`` says why text was not an action."""

    step: dict[str, Any] | None = None
    submit: bool = False
    problem: str | None = None


def _json_step(text: str) -> Action:
    try:
        obj = json.loads(text)
    except ValueError as exc:
        return Action(step={"op": "invalid", "action": text[:2000]}, problem=f"not JSON: {exc}")
    if isinstance(obj, dict) and obj.get("op") == "submit":
        return Action(submit=True)
    if not isinstance(obj, dict):
        return Action(step={"op": "invalid", "action": text[:2000]}, problem="a step must be a JSON object")
    return Action(step=obj)


def parse_action(text: str) -> Action:
    """One agent turn -> an :class:`Action` (never raises)."""
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text or "")]
    chosen = [(tag, body) for tag, body in blocks if tag in PATCH_TAGS or tag in JSON_TAGS]
    if chosen:
        tag, body = chosen[-1]
        if tag in PATCH_TAGS:
            return Action(step={"op": "patch", "patch": body})
        return _json_step(body.strip())
    stripped = (text or "").strip()
    lines = stripped.splitlines()
    if lines and lines[-1].strip() == "submit":
        return Action(submit=True)
    if stripped.startswith("{"):
        return _json_step(stripped)
    if stripped.startswith("diff --git") or stripped.startswith("--- "):
        return Action(step={"op": "patch", "patch": stripped + "\n"})
    return Action(step={"op": "invalid", "action": stripped[:2000]},
                  problem="no action found: write a ```diff block, a ```json step, or submit")


def parse_actions(text: str) -> list[Action]:
    """Every action of a text, in order: each qualifying fenced block is one (a whole response
    scored at once, e.g. OpenRLHF's remote reward); with none, :func:`parse_action` of the text."""
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text or "")]
    out: list[Action] = []
    for tag, body in blocks:
        if tag in PATCH_TAGS:
            out.append(Action(step={"op": "patch", "patch": body}))
        elif tag in JSON_TAGS:
            out.append(_json_step(body.strip()))
    return out or [parse_action(text)]


def _where(d: Mapping[str, Any]) -> str:
    rng = d.get("range") or [0, 0, 0, 0]
    return f"{d.get('path')}:{int(rng[0]) + 1}:{int(rng[1]) + 1}"


def _diag_line(d: Mapping[str, Any]) -> str:
    msg = " ".join(str(d.get("message", "")).split())
    code = f" {d['code']}" if d.get("code") else ""
    return f"  {_where(d)} {d.get('severity', '')}{code}: {msg}"


def render_observation(record: Mapping[str, Any], *, bundle: Mapping[str, Any] | None = None,
                       problem: str | None = None, max_items: int = 20, max_chars: int = 4000) -> str:
    """A short text for the agent: what the step did, its reward, what it introduced."""
    pr = record.get("processReward") or {}
    comp = pr.get("components") or {}
    head = (f"[lanser] step {record.get('step')} {record.get('op')}: {record.get('status')}"
            f" | reward {float(pr.get('r', 0.0)):.3f}"
            f" | errors {comp.get('diag_before')} -> {comp.get('diag_after')}")
    lines = [head]
    err = record.get("error")
    if record.get("status") == "error" and isinstance(err, Mapping):
        lines.append(f"refused ({err.get('code')}): {err.get('message')}")
        lines.append("nothing was changed")
    if problem:
        lines.append(problem)
    for key in ("introduced", "resolved"):
        items = list(record.get(key) or [])
        if items:
            lines.append(f"{key} ({len(items)}):")
            lines.extend(_diag_line(d) for d in items[:max_items])
            if len(items) > max_items:
                lines.append(f"  ... {len(items) - max_items} more")
    if bundle is not None and record.get("op") == "query" and record.get("status") == "ok":
        facts = {k: v for k, v in (bundle.get("facts") or {}).items() if k != "provenance"}
        lines.append("answer: " + json.dumps(facts, sort_keys=True, ensure_ascii=False))
    text = "\n".join(lines)
    return text if len(text) <= max_chars else text[: max_chars - 4] + " ..."


__all__ = ["Action", "parse_action", "parse_actions", "render_observation"]
