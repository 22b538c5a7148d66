"""TRL adapter, called exactly as trl 1.16.0 calls it (TRL needs torch, ~1.5 GB even CPU-only:
too heavy for CI).  Cited from ``trl/trainer/grpo_trainer.py`` (1.16.0):

- ``GRPOTrainer.__init__`` probes ``environment_factory()`` and takes as tools every
  ``inspect.getmembers(type(instance), predicate=inspect.isfunction)`` other than ``reset`` and
  ``get_reward`` whose name does not start with ``_``; ``get_reward`` becomes a reward function;
- per batch, ``environment.reset(**x)`` with the dataset row, tools in ``sync_tool_dict`` keyed by
  ``tool.__name__`` and called ``sync_tool_dict[name](**function["arguments"])`` in
  ``_tool_call_loop`` (an exception becomes ``{"error": str(e)}``), then ``get_reward()``;
- ``_calculate_rewards`` calls ``reward_func(prompts=prompts, completions=completions,
  completion_ids=completion_ids_list, **reward_kwargs)`` with every dataset column but
  prompt/completion/completion_ids, plus ``trainer_state``, ``log_extra``, ``log_metric``."""

from __future__ import annotations

import inspect
import json

import pytest
from rl_fixture import BAD_DIFF, BAD_R, ESCAPE_R, GOOD_DIFF, GOOD_R, assert_untouched, fenced, snapshot, workspace

pytestmark = pytest.mark.server


def tools_of(instance):
    """The tool methods GRPOTrainer exposes for an environment instance (see the module docstring)."""
    return {name: getattr(instance, name)
            for name, _ in inspect.getmembers(type(instance), predicate=inspect.isfunction)
            if name not in ("reset", "get_reward") and not name.startswith("_")}


def call_tool(tools, name, arguments):
    try:
        return tools[name](**arguments)
    except Exception as e:  # noqa: BLE001 - as TRL does
        return {"error": str(e)}


def test_trl_environment_and_patch_reward(tmp_path):
    from lanser.integrations.backend import shutdown_shared
    from lanser.integrations.trl import LanserEnvironment, LanserPatchReward

    ws = workspace(tmp_path)
    before = snapshot(ws)
    try:
        env = LanserEnvironment()            # environment_factory=LanserEnvironment: a zero-argument factory
        tools = tools_of(env)
        assert sorted(tools) == ["apply_patch", "find_references", "go_to_definition", "hover", "rename_symbol",
                                 "replace_symbol", "write_file"]
        for name, fn in tools.items():       # what transformers' get_json_schema needs: hints + Args
            sig = inspect.signature(fn)
            doc = inspect.getdoc(fn) or ""
            assert "Args:" in doc and "Returns:" in doc, name
            for p in sig.parameters.values():
                assert p.annotation is not inspect.Parameter.empty and f"{p.name}:" in doc, (name, p.name)

        row = {"prompt": [{"role": "user", "content": "Fix src/shop/broken.py"}], "repo": str(ws)}
        assert env.reset(**row) is None
        out = call_tool(tools, "apply_patch", {"patch": GOOD_DIFF})
        assert "reward 0.900" in out and "resolved (1)" in out
        out = call_tool(tools, "apply_patch", {"patch": BAD_DIFF})
        assert "reward -0.600" in out and "introduced (3)" in out
        out = call_tool(tools, "write_file", {"path": "../outside.py", "content": "x = 1\n"})
        assert "refused (E/FS_PERMISSIONS)" in out and "reward -0.400" in out
        out = call_tool(tools, "find_references", {"selector": "py://shop.pricing#apply_discount"})
        assert "src/shop/service.py" in out
        assert call_tool(tools, "apply_patch", {"bogus": 1}) == {
            "error": "LanserEnvironment.apply_patch() got an unexpected keyword argument 'bogus'"}
        assert env.get_reward() == pytest.approx(GOOD_R + BAD_R + ESCAPE_R + 0.4)

        # pooled and reused: the next rollout starts from the base again; min aggregate
        env_min = LanserEnvironment(aggregate="min")
        env_min.reset(**row)
        assert "reward 0.900" in tools_of(env_min)["apply_patch"](patch=GOOD_DIFF)
        tools_of(env_min)["apply_patch"](patch=BAD_DIFF)
        assert env_min.get_reward() == pytest.approx(BAD_R)
        env.reset(**row)
        assert "reward 0.900" in tools_of(env)["apply_patch"](patch=GOOD_DIFF)
        assert env.get_reward() == pytest.approx(GOOD_R)

        # reward_funcs: one action per completion, scored from the base (a GRPO group shares the server)
        reward_func = LanserPatchReward()
        metrics = []
        completions = [[{"role": "assistant", "content": fenced(GOOD_DIFF)}],
                       [{"role": "assistant", "content": fenced(BAD_DIFF)}],
                       [{"role": "assistant", "content": "```json\n" + json.dumps(
                           {"op": "write", "path": "../outside.py", "content": "x = 1\n"}) + "\n```"}],
                       [{"role": "assistant", "content": "Nothing to change.\nsubmit"}]]
        rewards = reward_func(prompts=[row["prompt"]] * 4, completions=completions,
                              completion_ids=[[1, 2]] * 4, repo=[str(ws)] * 4, trainer_state=None,
                              log_extra=lambda *a, **k: None, log_metric=lambda n, v: metrics.append((n, v)))
        assert rewards == [pytest.approx(GOOD_R), pytest.approx(BAD_R), pytest.approx(ESCAPE_R), None]
        assert metrics == [("lanser/refused", 0.25)]
        assert reward_func.__name__ == "lanser_patch"  # the name TRL logs it under
    finally:
        shutdown_shared()
    assert_untouched(tmp_path, ws, before)
