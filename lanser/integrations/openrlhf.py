"""OpenRLHF: a multi-turn agent whose ``step`` returns that step's Lanser reward, and the
remote-reward-model handler behind ``POST /get_reward``.

Agent (``--train.agent_func_path`` = this file; OpenRLHF instantiates ``AgentExecutor()``
with no arguments, so configuration comes from the environment and the dataset label)::

    LANSER_REPO=/data/tasks/shop  LANSER_URL=http://127.0.0.1:8765  LANSER_OPTIONS='{"clip": 5}'
    LANSER_MAX_TURNS=8

The label of a prompt may name its repository: a path, or JSON ``{"repo", "base"}``.

How OpenRLHF 0.11.2 calls it (``openrlhf/utils/agent.py``): ``MultiTurnAgentExecutor.execute``
makes one ``AgentInstance()`` per prompt, awaits ``reset({"observation": prompt, "label":
label})`` (the result's ``observation`` starts the context), then per generated action
``step({"observation_text", "action_text", "label", "sampling_params"})`` and reads
``rewards`` (a tensor: ``.item()``, **summed** over the steps), ``scores`` (the last one
wins), ``environment_feedback`` (appended to the context), ``done`` and ``extra_logs``.
Actions follow :mod:`lanser.integrations.actions`.

``/get_reward`` (OpenRLHF's ``SingleTurnAgentExecutor._fetch_rewards_via_http`` posts
``{"query": [prompt + response], "prompts": [prompt], "labels": [label]}`` and reads
``{"rewards", "scores", "extra_logs"}``, lists aligned with ``query``): :func:`make_get_reward`
returns a pure ``async (payload: dict) -> dict`` the reward service mounts.  Each response's
actions (every ```diff / ```json block, in order) are one trajectory scored from its base;
``rewards`` = its aggregate (``sum`` or ``min``), ``scores`` = the same, ``extra_logs`` =
``lanser_steps``, ``lanser_refused``, ``lanser_errors`` per query.  A malformed payload is a
:class:`BadPayload` (the service answers 400).

OpenRLHF is imported lazily, here only; without it, local base classes with its signatures
stand in (``openrlhf`` itself needs flash-attn and deepspeed: not installable on CPU).
"""

from __future__ import annotations

import json
import os
from typing import Any, Awaitable, Callable, Mapping

from ..rewards.formula import AGGREGATES
from .actions import parse_actions
from .backend import RewardClient
from .episode import Episode, client_for

try:  # the real base classes when OpenRLHF is installed
    from openrlhf.utils.agent import AgentInstanceBase, MultiTurnAgentExecutor  # pyright: ignore[reportMissingImports]

    HAVE_OPENRLHF = True
except ImportError:
    HAVE_OPENRLHF = False

    class AgentInstanceBase:  # type: ignore[no-redef]
        """openrlhf.utils.agent.AgentInstanceBase (0.11.2) signatures."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        async def reset(self, states: dict, **kwargs: Any) -> dict:
            return states

        async def step(self, state_dict: dict, **kwargs: Any) -> dict:
            raise NotImplementedError

    class MultiTurnAgentExecutor:  # type: ignore[no-redef]
        """openrlhf.utils.agent.MultiTurnAgentExecutor (0.11.2) constructor; ``execute`` needs
        OpenRLHF's vLLM engine and is not reproduced."""

        def __init__(self, agent_instance_cls: type) -> None:
            assert issubclass(agent_instance_cls, AgentInstanceBase), \
                "AgentInstance must inherit from AgentInstanceBase"
            self.agent_instance_cls = agent_instance_cls


class _Scalar:
    """A float with ``.item()`` when torch is absent (OpenRLHF itself always has torch)."""

    def __init__(self, value: float) -> None:
        self.value = float(value)

    def item(self) -> float:
        return self.value

    def __float__(self) -> float:
        return self.value


def _tensor(value: float) -> Any:
    try:
        import torch  # pyright: ignore[reportMissingImports]
    except ImportError:
        return _Scalar(value)
    return torch.tensor(value, dtype=torch.float32)


def _config() -> dict[str, Any]:
    opts = os.environ.get("LANSER_OPTIONS")
    return {"repo": os.environ.get("LANSER_REPO"), "url": os.environ.get("LANSER_URL"),
            "base": os.environ.get("LANSER_BASE"), "options": json.loads(opts) if opts else {},
            "max_turns": int(os.environ.get("LANSER_MAX_TURNS", "8"))}


def _label_target(label: Any) -> dict[str, Any]:
    """The repository (and base) a label names: a path, JSON ``{"repo", "base"}``, or a dict."""
    if isinstance(label, Mapping):
        return {k: label[k] for k in ("repo", "base") if label.get(k)}
    if isinstance(label, str) and label.strip():
        text = label.strip()
        if text.startswith("{"):
            try:
                obj = json.loads(text)
            except ValueError:
                return {}
            return _label_target(obj) if isinstance(obj, Mapping) else {}
        return {"repo": text}
    return {}


class AgentInstance(AgentInstanceBase):  # type: ignore[misc]
    """One prompt's rollout: a Lanser session, one step per generated action."""

    client: RewardClient | None = None  # set to share a given client (tests, custom servers)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config = _config()
        self.episode: Episode | None = None
        self.turns = 0

    async def reset(self, states: dict, **kwargs: Any) -> dict:
        target = {**{k: self.config[k] for k in ("repo", "base")}, **_label_target(states.get("label"))}
        self.episode = Episode(client_for(target.get("repo"), client=type(self).client, url=self.config["url"],
                                          base=target.get("base"), options=self.config["options"]))
        await self.episode.abegin()
        return {"observation": states["observation"]}

    async def step(self, state_dict: dict, **kwargs: Any) -> dict:
        assert self.episode is not None, "reset() first"
        self.turns += 1
        turn = await self.episode.aact(state_dict.get("action_text", ""))
        done = turn.done or self.turns >= self.config["max_turns"]
        logs = {"lanser_steps": float(len(self.episode.records)),
                "lanser_refused": float(sum(1 for r in self.episode.records if r.get("status") == "error"))}
        if done:
            final = await self.episode.afinish("sum")
            logs["lanser_return"] = float(final.get("return", 0.0))
        feedback = "" if done else "\n" + turn.observation + "\n"
        return {"rewards": _tensor(turn.reward), "scores": _tensor(turn.reward), "environment_feedback": feedback,
                "done": done, "extra_logs": logs}


class AgentExecutor(MultiTurnAgentExecutor):  # type: ignore[misc]
    """What ``--train.agent_func_path`` loads: ``AgentExecutor()``."""

    def __init__(self) -> None:
        super().__init__(AgentInstance)


class BadPayload(ValueError):
    """A /get_reward body that is not ``{"query": [str, ...], "prompts": [...], "labels": [...]}``."""


def _strings(payload: Mapping[str, Any], key: str, n: int | None) -> list[Any]:
    value = payload.get(key)
    if value is None:
        if n is None:
            raise BadPayload(f"/get_reward needs {key!r}: a list of strings")
        return [None] * n
    if not isinstance(value, list) or (n is not None and len(value) != n):
        raise BadPayload(f"/get_reward: {key!r} must be a list" + (f" of {n} items" if n is not None else ""))
    return value


def make_get_reward(*, repo: str | None = None, url: str | None = None, base: str | None = None,
                    options: Mapping[str, Any] | None = None, aggregate: str = "sum",
                    scorer: Callable[[dict[str, Any], list[Any]], Awaitable[list[dict[str, Any]]]] | None = None,
                    ) -> Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]:
    """The ``POST /get_reward`` handler: ``await handler(payload) -> {"rewards", "scores", "extra_logs"}``.

    ``repo``/``base``: the default target when a label names none; ``scorer(target, steps)``
    overrides how a target (``{"repo", "base"}``) scores a trajectory (``lanser serve`` passes
    its own pool; by default a shared reward client of the target scores it)."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")

    async def score(target: dict[str, Any], steps: list[Any]) -> list[dict[str, Any]]:
        if scorer is not None:
            return await scorer(target, steps)
        client: RewardClient = client_for(target.get("repo"), url=url, base=target.get("base"), options=options)
        return await client.ascore(steps)

    async def get_reward(payload: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(payload, Mapping):
            raise BadPayload("/get_reward expects a JSON object")
        queries = _strings(payload, "query", None)
        prompts = _strings(payload, "prompts", len(queries))
        labels = _strings(payload, "labels", len(queries))
        rewards: list[float] = []
        logs: dict[str, list[float]] = {"lanser_steps": [], "lanser_refused": [], "lanser_errors": []}
        for query, prompt, label in zip(queries, prompts, labels):
            if not isinstance(query, str):
                raise BadPayload("/get_reward: every query must be a string")
            response = query[len(prompt):] if isinstance(prompt, str) and query.startswith(prompt) else query
            target = {"repo": repo, "base": base, **_label_target(label)}
            if not target.get("repo"):
                raise BadPayload("/get_reward: no repository (a label names it, or the handler's repo)")
            steps = [a.step for a in parse_actions(response) if a.step is not None]
            records = await score(target, steps) if steps else []
            rs = [float(r["processReward"]["r"]) for r in records]
            rewards.append((min(rs) if aggregate == "min" else sum(rs)) if rs else 0.0)
            logs["lanser_steps"].append(float(len(records)))
            logs["lanser_refused"].append(float(sum(1 for r in records if r.get("status") == "error")))
            logs["lanser_errors"].append(float(records[-1]["diagnostics"]["errors"]) if records else 0.0)
        return {"rewards": rewards, "scores": list(rewards), "extra_logs": logs}

    return get_reward


__all__ = ["AgentExecutor", "AgentInstance", "BadPayload", "HAVE_OPENRLHF", "make_get_reward"]
