"""verl: a ``BaseTool`` whose every call is one Lanser step, and an async ``compute_score``.

Tool configuration (``actor_rollout_ref.rollout.multi_turn.tool_config_path``)::

    tools:
      - class_name: lanser.integrations.verl.LanserTool
        config: {type: native, repo: /data/tasks/shop, options: {clip: 5}}   # or url: http://127.0.0.1:8765
        tool_schema: null            # null: LanserTool.default_schema() (flat arguments: op, patch, path, ...)

Reward function (``reward.custom_reward_function``)::

    path: <site-packages>/lanser/integrations/verl.py
    name: compute_score
    reward_kwargs: {aggregate: min}

How verl calls them (verl 0.9.1; the call-shape test cites the same files):

- ``verl/tools/utils/tool_registry.py::initialize_tools_from_config`` builds
  ``cls(config=..., tool_schema=...)``.
- ``verl/experimental/agent_loop/tool_agent_loop.py::ToolAgentLoop._call_tool``
  makes a NEW instance for every single call: ``create(create_kwargs=...)``,
  ``execute(instance_id, args, agent_data=agent_data)``, ``release``.  A
  rollout's Lanser session therefore hangs on ``agent_data`` (one per rollout:
  ``request_id``, ``extra_fields["lanser_session"]``), not on the instance.
  ``execute`` returns ``(ToolResponse(text=observation), step reward,
  metrics)``; verl appends the step reward to ``agent_data.tool_rewards``,
  which reaches the reward function as ``extra_info["tool_rewards"]``.
- ``verl/experimental/reward_loop/reward_manager/naive.py::run_single`` awaits
  ``compute_score(data_source=, solution_str=, ground_truth=, extra_info=,
  **kwargs)`` and takes a float or a dict with ``"score"``.

:func:`compute_score` returns the trajectory's aggregate (``sum`` or ``min``
of its step rewards) from the session: the session found in this process
(closed and freed there), else from the reward service when ``url`` is
given (``reward_kwargs``), else from ``extra_info["tool_rewards"]`` (the
same per-step rewards, carried by verl itself: the reward worker often runs
in another process).  Each tool response starts with ``[lanser <session>]``
so the session can be found in ``solution_str``.

verl is imported lazily, here only: when it is not installed a local shim
with the same signatures (``BaseTool``, ``ToolResponse``,
``OpenAIFunctionToolSchema``) stands in, so the adapter can be tested and
used without its GPU stack.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping
from uuid import uuid4

from ..rewards.formula import AGGREGATES
from .backend import HttpBackend
from .episode import Episode, client_for

try:  # pip install 'lanser[verl]'
    from verl.tools.base_tool import BaseTool  # pyright: ignore[reportMissingImports]
    from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse  # pyright: ignore[reportMissingImports]

    HAVE_VERL = True
except ImportError:
    HAVE_VERL = False

    @dataclass
    class ToolResponse:  # type: ignore[no-redef]
        """verl.tools.schemas.ToolResponse (0.9.1): text, image, video."""

        text: str | None = None
        image: list[Any] | None = None
        video: list[Any] | None = None

    class _Function:
        def __init__(self, spec: Mapping[str, Any]) -> None:
            self.name = spec["name"]
            self.description = spec.get("description", "")
            self.parameters = spec.get("parameters", {"type": "object", "properties": {}, "required": []})

    class OpenAIFunctionToolSchema:  # type: ignore[no-redef]
        """The shape of verl.tools.schemas.OpenAIFunctionToolSchema: ``type`` and ``function``."""

        def __init__(self, spec: Mapping[str, Any]) -> None:
            self._spec = dict(spec)
            self.type = spec.get("type", "function")
            self.function = _Function(spec["function"])

        @classmethod
        def model_validate(cls, spec: Mapping[str, Any]) -> "OpenAIFunctionToolSchema":
            return cls(spec)

        def model_dump(self, **_: Any) -> dict[str, Any]:
            return dict(self._spec)

    class BaseTool:  # type: ignore[no-redef]
        """verl.tools.base_tool.BaseTool (0.9.1) signatures, without verl."""

        def __init__(self, config: dict, tool_schema: OpenAIFunctionToolSchema) -> None:
            self.config = config
            self.tool_schema = tool_schema or self.get_openai_tool_schema()
            assert self.tool_schema is not None, "Tool schema is not set!"
            self.name = self.tool_schema.function.name

        def get_openai_tool_schema(self) -> OpenAIFunctionToolSchema:
            return self.tool_schema

        async def create(self, instance_id: str | None = None, **kwargs: Any) -> tuple[str, ToolResponse]:
            return (instance_id or str(uuid4())), ToolResponse()

        async def execute(self, instance_id: str, parameters: dict[str, Any],
                          **kwargs: Any) -> tuple[ToolResponse, float, dict]:
            return ToolResponse(text="Updated the tool state."), 0.0, {}

        async def calc_reward(self, instance_id: str, **kwargs: Any) -> float:
            return 0.0

        async def release(self, instance_id: str, **kwargs: Any) -> None:
            return None


STEP_FIELDS = ("op", "patch", "path", "content", "selector", "text", "newName", "cmd", "id")
SCHEMA: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "lanser",
        "description": "Change the repository or ask the type checker, one step at a time. op=patch with "
                       "'patch' (a unified diff); op=write with 'path' and 'content'; op=edit with 'selector' "
                       "and 'text'; op=rename with 'selector' and 'newName'; op=query with 'cmd' and "
                       "'selector'. The answer lists the diagnostics the step introduced or resolved.",
        "parameters": {
            "type": "object",
            "properties": {
                "op": {"type": "string", "description": "the step", "enum": ["patch", "write", "edit", "rename",
                                                                             "query"]},
                "patch": {"type": "string", "description": "unified diff (op=patch)"},
                "path": {"type": "string", "description": "workspace-relative file (op=write)"},
                "content": {"type": "string", "description": "the file's new text (op=write)"},
                "selector": {"type": "string", "description": "e.g. py://pkg.mod#Class.method:body"},
                "text": {"type": "string", "description": "replacement text (op=edit)"},
                "newName": {"type": "string", "description": "new name (op=rename)"},
                "cmd": {"type": "string", "description": "query (op=query)",
                        "enum": ["def", "refs", "hover", "symbols", "diag", "locate", "prepare-rename"]},
            },
            "required": ["op"],
        },
    },
}

_TAG = re.compile(r"\[lanser ([^\]\s]+)\]")


class _Sessions:
    """Episodes of this process by rollout (``agent_data.request_id``), oldest dropped past a bound."""

    def __init__(self, bound: int = 4096) -> None:
        self.bound = bound
        self.items: OrderedDict[str, Episode] = OrderedDict()
        self.by_session: dict[str, Episode] = {}
        self.lock = threading.Lock()

    def get(self, key: str, make: Any) -> Episode:
        with self.lock:
            ep = self.items.get(key)
            if ep is None:
                ep = make()
                self.items[key] = ep
                while len(self.items) > self.bound:
                    _, old = self.items.popitem(last=False)
                    if old.session is not None:
                        self.by_session.pop(old.session, None)
            return ep

    def remember(self, ep: Episode) -> None:
        with self.lock:
            if ep.session is not None:
                self.by_session[ep.session] = ep

    def pop_session(self, session: str) -> Episode | None:
        with self.lock:
            ep = self.by_session.pop(session, None)
            if ep is not None:
                for key, value in list(self.items.items()):
                    if value is ep:
                        del self.items[key]
            return ep


SESSIONS = _Sessions()


class LanserTool(BaseTool):  # type: ignore[misc]
    """See the module docstring.  ``config``: ``repo`` (or per sample in
    ``create_kwargs["repo"]``), ``url``, ``base``, ``options``, ``engine``, ``token``."""

    def __init__(self, config: dict, tool_schema: Any = None) -> None:
        if tool_schema is None:
            tool_schema = OpenAIFunctionToolSchema.model_validate(SCHEMA)
        super().__init__(config, tool_schema)
        self.config = dict(config or {})
        self._create_kwargs: dict[str, dict[str, Any]] = {}

    @staticmethod
    def default_schema() -> dict[str, Any]:
        return SCHEMA

    async def create(self, instance_id: str | None = None, **kwargs: Any) -> tuple[str, ToolResponse]:
        instance_id = instance_id or str(uuid4())
        self._create_kwargs[instance_id] = dict(kwargs.get("create_kwargs") or {})
        return instance_id, ToolResponse()

    def _episode(self, instance_id: str, agent_data: Any) -> Episode:
        ck = self._create_kwargs.get(instance_id, {})
        key = getattr(agent_data, "request_id", None) or instance_id
        cfg = {**self.config, **ck}

        def make() -> Episode:
            return Episode(client_for(cfg.get("repo"), url=cfg.get("url"), base=cfg.get("base"),
                                      options=cfg.get("options"), engine=cfg.get("engine"),
                                      token=cfg.get("token")))

        return SESSIONS.get(str(key), make)

    async def execute(self, instance_id: str, parameters: dict[str, Any],
                      **kwargs: Any) -> tuple[ToolResponse, float, dict]:
        agent_data = kwargs.get("agent_data")
        ep = self._episode(instance_id, agent_data)
        step = {k: v for k, v in dict(parameters or {}).items() if k in STEP_FIELDS and v not in (None, "")}
        turn = await ep.atake(step)
        SESSIONS.remember(ep)
        extra = getattr(agent_data, "extra_fields", None)
        if isinstance(extra, dict):
            extra["lanser_session"] = ep.session
        record = turn.record or {}
        metrics = {"lanser_status": record.get("status"), "lanser_errors": record.get("diagnostics", {}).get("errors")}
        return ToolResponse(text=f"[lanser {ep.session}] " + turn.observation), turn.reward, metrics

    async def calc_reward(self, instance_id: str, **kwargs: Any) -> float:
        """The rollout's rewards so far, summed (verl 0.9.1 never calls this)."""
        ep = self._episode(instance_id, kwargs.get("agent_data"))
        return float(sum(ep.rewards))

    async def release(self, instance_id: str, **kwargs: Any) -> None:
        self._create_kwargs.pop(instance_id, None)


def _aggregate(rewards: list[float], mode: str) -> float:
    if not rewards:
        return 0.0
    return float(min(rewards) if mode == "min" else sum(rewards))


async def compute_score(data_source: Any = None, solution_str: str | None = None, ground_truth: Any = None,
                        extra_info: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """The trajectory's aggregate reward (see the module docstring): ``{"score", "lanser_steps",
    "lanser_source"}``.  ``kwargs`` (verl's ``reward_kwargs``): ``aggregate`` (sum|min),
    ``url``/``token`` (the reward service)."""
    mode = str(kwargs.get("aggregate", "sum"))
    if mode not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {mode!r}")
    info = dict(extra_info or {})
    session = info.get("lanser_session")
    if not session and solution_str:
        tags = _TAG.findall(solution_str)
        session = tags[-1] if tags else None
    rewards: list[float] | None = None
    source = "tool_rewards"
    if session:
        ep = SESSIONS.pop_session(str(session))
        if ep is not None:
            final = await ep.afinish(mode)
            rewards = [float(r["processReward"]["r"]) for r in final.get("records", [])]
            source = "session"
        elif kwargs.get("url"):
            svc = HttpBackend(str(kwargs["url"]), repo="", token=kwargs.get("token"))
            final = await svc.close(str(session), mode)
            rewards = [float(r["processReward"]["r"]) for r in final.get("records", [])]
            source = "service"
    if rewards is None:
        rewards = [float(x) for x in (info.get("tool_rewards") or [])]
    return {"score": _aggregate(rewards, mode), "lanser_steps": len(rewards), "lanser_source": source}


__all__ = ["HAVE_VERL", "BaseTool", "LanserTool", "OpenAIFunctionToolSchema", "SCHEMA", "ToolResponse",
           "compute_score"]
