"""OpenRLHF adapter, called exactly as openrlhf 0.11.2 calls it (OpenRLHF needs flash-attn,
deepspeed and vLLM: not installable on a CPU machine).  Cited from the 0.11.2 wheel:

- ``openrlhf/trainer/ray/vllm_engine.py::_load_agent_executor``: ``agent_module.AgentExecutor()``;
- ``openrlhf/utils/agent.py::MultiTurnAgentExecutor.execute``: ``agent_instance_cls()``,
  ``await reset({"observation": prompt, "label": label})["observation"]``, then per action
  ``await step({"observation_text", "action_text", "label", "sampling_params"})``,
  ``total_reward += step_result["rewards"].item()``, ``scores`` (last wins),
  ``environment_feedback`` appended, stop on ``done``;
- ``openrlhf/utils/agent.py::SingleTurnAgentExecutor._fetch_rewards_via_http`` posts
  ``{"query": [prompt + response], "prompts": [prompt], "labels": [label]}`` and reads
  ``rewards``, ``scores`` (falling back to rewards) and ``extra_logs``; here the handler is
  called directly with that payload (the service mounts it at ``POST /get_reward``)."""

from __future__ import annotations

import asyncio
import json

import pytest
from rl_fixture import (
    BAD_DIFF,
    BAD_R,
    ESCAPE_R,
    ESCAPE_STEP,
    GOOD_DIFF,
    GOOD_R,
    assert_untouched,
    fenced,
    snapshot,
    workspace,
)

pytestmark = pytest.mark.server


class SamplingParams:
    max_tokens = 64
    logprobs = None


async def execute(executor, prompt: str, label: str, actions: list[str]) -> dict:
    """MultiTurnAgentExecutor.execute's loop with scripted actions in place of vLLM generations."""
    agent_instance = executor.agent_instance_cls()
    reset_result = await agent_instance.reset({"observation": prompt, "label": label})
    observation_text = reset_result["observation"]
    total_reward, final_scores, extra_logs, per_step = 0.0, 0.0, {}, []
    for action_text in actions:
        states = {"observation_text": observation_text, "action_text": action_text, "label": label,
                  "sampling_params": SamplingParams()}
        step_result = await agent_instance.step(states)
        per_step.append(step_result["rewards"].item())
        total_reward += step_result["rewards"].item()
        final_scores = step_result.get("scores", total_reward)
        observation_text = observation_text + action_text + step_result["environment_feedback"]
        extra_logs = step_result.get("extra_logs", {})
        if step_result["done"]:
            break
    return {"reward": total_reward, "scores": final_scores, "per_step": per_step, "extra_logs": extra_logs,
            "text": observation_text}


def test_openrlhf_agent_and_get_reward(tmp_path, monkeypatch):
    from lanser.integrations import openrlhf as lo
    from lanser.integrations.backend import shutdown_shared

    ws = workspace(tmp_path)
    before = snapshot(ws)
    monkeypatch.setenv("LANSER_MAX_TURNS", "6")
    monkeypatch.delenv("LANSER_REPO", raising=False)
    monkeypatch.delenv("LANSER_URL", raising=False)
    escape = "```json\n" + json.dumps(ESCAPE_STEP) + "\n```"
    try:
        executor = lo.AgentExecutor()
        assert issubclass(executor.agent_instance_cls, lo.AgentInstanceBase)
        out = asyncio.run(execute(executor, "Fix src/shop/broken.py\n", str(ws),
                                  [fenced(GOOD_DIFF), fenced(BAD_DIFF), escape, "submit", "never reached"]))
        assert out["per_step"] == [pytest.approx(GOOD_R), pytest.approx(BAD_R), pytest.approx(ESCAPE_R), 0.0]
        assert out["reward"] == pytest.approx(GOOD_R + BAD_R + ESCAPE_R)      # OpenRLHF sums step rewards
        assert "introduced (3)" in out["text"] and "refused (E/FS_PERMISSIONS)" in out["text"]
        assert out["extra_logs"] == {"lanser_steps": 3.0, "lanser_refused": 1.0,
                                     "lanser_return": pytest.approx(GOOD_R + BAD_R + ESCAPE_R)}

        handler = lo.make_get_reward()
        prompt = "Fix src/shop/broken.py\n"
        label = json.dumps({"repo": str(ws)})
        payload = {"query": [prompt + fenced(GOOD_DIFF), prompt + fenced(BAD_DIFF) + escape, prompt + "no idea"],
                   "prompts": [prompt] * 3, "labels": [label] * 3}
        got = asyncio.run(handler(payload))
        assert got["rewards"] == [pytest.approx(GOOD_R), pytest.approx(BAD_R + ESCAPE_R), pytest.approx(-0.4)]
        assert got["scores"] == got["rewards"]
        assert got["extra_logs"] == {"lanser_steps": [1.0, 2.0, 1.0], "lanser_refused": [0.0, 1.0, 1.0],
                                     "lanser_errors": [2.0, 5.0, 3.0]}
        got_min = asyncio.run(lo.make_get_reward(aggregate="min")(payload))
        assert got_min["rewards"][1] == pytest.approx(BAD_R)
        for bad in ({}, {"query": "x"}, {"query": ["a", "b"], "prompts": ["a"]}, {"query": ["a"]}):
            with pytest.raises(lo.BadPayload):
                asyncio.run(handler(bad))
    finally:
        shutdown_shared()
    assert_untouched(tmp_path, ws, before)
