"""verl adapter, called exactly as verl 0.9.1 calls it (verl needs torch and its GPU stack:
~1.9 GB even CPU-only, too heavy for CI; the adapter's shim has verl's signatures):

- construction as ``verl/tools/utils/tool_registry.py::initialize_tools_from_config``:
  ``tool_cls(config=<tool config as a dict>, tool_schema=None)``;
- every tool call as ``verl/experimental/agent_loop/tool_agent_loop.py::ToolAgentLoop._call_tool``:
  ``json.loads(arguments)``, ``create(create_kwargs=tools_kwargs[name].get("create_kwargs", {}))``,
  ``execute(instance_id, tool_args, agent_data=agent_data)``, ``release(instance_id)`` in ``finally``;
  an exception becomes ``ToolResponse(text="Error when executing tool: ...")``, 0.0;
  ``_handle_processing_tools_state`` appends each reward to ``agent_data.tool_rewards``;
- the reward as ``verl/experimental/reward_loop/reward_manager/naive.py::NaiveRewardManager.run_single``:
  ``await compute_score(data_source=, solution_str=, ground_truth=, extra_info=)`` with
  ``extra_info`` = dataset extra_info + tool_extra_fields (``turn_scores``, ``tool_rewards``)
  + ``num_turns`` + ``rollout_reward_scores``, wrapped with ``reward_kwargs`` as
  ``verl/trainer/ppo/reward.py::get_custom_reward_fn`` does (``partial``)."""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any
from uuid import uuid4

import pytest
from rl_fixture import BAD_DIFF, BAD_R, ESCAPE_R, ESCAPE_STEP, GOOD_DIFF, GOOD_R, assert_untouched, snapshot, workspace

pytestmark = pytest.mark.server


class AgentData:
    """The attributes of verl 0.9.1 ``tool_agent_loop.AgentData`` that tools see."""

    def __init__(self, tools_kwargs: dict[str, Any]) -> None:
        self.messages: list[dict[str, Any]] = []
        self.request_id = uuid4().hex
        self.tools_kwargs = tools_kwargs
        self.metrics: dict[str, Any] = {}
        self.turn_scores: list[float] = []
        self.tool_rewards: list[float] = []
        self.extra_fields: dict[str, Any] = {}


async def call_tool(tools: dict[str, Any], name: str, arguments: str, agent_data: AgentData) -> tuple[Any, float]:
    """ToolAgentLoop._call_tool, then the reward bookkeeping of _handle_processing_tools_state."""
    from lanser.integrations.verl import ToolResponse

    tool, instance_id = None, None
    try:
        tool_args = json.loads(arguments)
        tool = tools[name]
        kwargs = agent_data.tools_kwargs.get(name, {})
        instance_id, _ = await tool.create(create_kwargs=kwargs.get("create_kwargs", {}))
        response, reward, _res = await tool.execute(instance_id, tool_args, agent_data=agent_data)
    except Exception as e:  # noqa: BLE001 - as verl does
        response, reward = ToolResponse(text=f"Error when executing tool: {e}"), 0.0
    finally:
        if tool and instance_id:
            await tool.release(instance_id)
    agent_data.tool_rewards.append(reward)
    return response, reward


def test_verl_tool_and_compute_score(tmp_path):
    from lanser.integrations import verl as lv
    from lanser.integrations.backend import shutdown_shared

    ws = workspace(tmp_path)
    before = snapshot(ws)
    tools = {t.name: t for t in [lv.LanserTool(config={"type": "native"}, tool_schema=None)]}
    assert list(tools) == ["lanser"]
    schema = tools["lanser"].get_openai_tool_schema().model_dump()
    assert schema["function"]["parameters"]["required"] == ["op"]
    # the task's repository comes per sample, through tools_kwargs (dataset extra_info)
    tools_kwargs = {"lanser": {"create_kwargs": {"repo": str(ws)}}}
    reward_fn = functools.partial(lv.compute_score, aggregate="min")  # reward_kwargs: {aggregate: min}

    async def rollout() -> None:
        a, b = AgentData(tools_kwargs), AgentData(tools_kwargs)
        texts = []
        resp, r = await call_tool(tools, "lanser", json.dumps({"op": "patch", "patch": GOOD_DIFF}), a)
        assert r == pytest.approx(GOOD_R) and "resolved (1)" in resp.text
        texts.append(resp.text)
        resp, r = await call_tool(tools, "lanser", json.dumps({"op": "patch", "patch": BAD_DIFF}), a)
        assert r == pytest.approx(BAD_R) and "introduced (3)" in resp.text
        texts.append(resp.text)
        # a second rollout of the same group: its own session on the same warm server
        resp_b, r_b = await call_tool(tools, "lanser", json.dumps({"op": "patch", "patch": GOOD_DIFF}), b)
        assert r_b == pytest.approx(GOOD_R)
        assert b.extra_fields["lanser_session"] != a.extra_fields["lanser_session"]
        resp, r = await call_tool(tools, "lanser", json.dumps(ESCAPE_STEP), a)
        assert r == pytest.approx(ESCAPE_R) and "refused (E/FS_PERMISSIONS)" in resp.text
        texts.append(resp.text)
        resp, r = await call_tool(tools, "lanser", json.dumps(
            {"op": "query", "cmd": "refs", "selector": "py://shop.pricing#apply_discount"}), a)
        assert r == pytest.approx(0.4) and '"references"' in resp.text and "src/shop/service.py" in resp.text
        texts.append(resp.text)
        resp, r = await call_tool(tools, "lanser", "{not json", a)
        assert r == 0.0 and resp.text.startswith("Error when executing tool")
        assert a.tool_rewards == pytest.approx([GOOD_R, BAD_R, ESCAPE_R, 0.4, 0.0])

        extra_info = {"index": 0, "turn_scores": a.turn_scores, "tool_rewards": a.tool_rewards,
                      "num_turns": 11, "rollout_reward_scores": {}}
        got = await reward_fn(data_source="lanser/shop", solution_str="\n".join(texts), ground_truth=None,
                              extra_info=extra_info)
        assert got == {"score": pytest.approx(BAD_R), "lanser_steps": 4, "lanser_source": "session"}
        # rollout b: found by extra_info (or solution_str), summed
        got_b = await lv.compute_score(data_source="lanser/shop", solution_str=resp_b.text, ground_truth=None,
                                       extra_info={"tool_rewards": b.tool_rewards})
        assert got_b == {"score": pytest.approx(GOOD_R), "lanser_steps": 1, "lanser_source": "session"}
        # a reward worker in another process knows no session: verl's own tool_rewards
        got_c = await reward_fn(data_source="x", solution_str="", ground_truth=None,
                                extra_info={"tool_rewards": [0.9, -0.6, 0.4]})
        assert got_c == {"score": pytest.approx(-0.6), "lanser_steps": 3, "lanser_source": "tool_rewards"}

    try:
        asyncio.run(rollout())
    finally:
        shutdown_shared()
    assert_untouched(tmp_path, ws, before)
