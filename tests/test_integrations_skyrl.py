"""SkyRL-Gym adapter with the REAL skyrl-gym package (pinned in the dev extra): an episode
made through ``skyrl_gym.make`` exactly as SkyRL's generator does (``make(env_class,
env_config=..., extras=...)``, ``init`` once, ``step`` per turn until ``done``, then
``get_metrics`` and ``close``), against the real pinned Pyright server."""

from __future__ import annotations

import json
from importlib import metadata

import pytest
import skyrl_gym  # the real package: pinned in the dev extra (never skipped)
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


def test_skyrl_episode_per_step_rewards(tmp_path):
    from lanser.integrations import skyrl as lanser_skyrl
    from lanser.integrations.backend import shutdown_shared

    assert metadata.version("skyrl-gym") == "0.4.0"
    assert lanser_skyrl.register() == "lanser" and "lanser" in skyrl_gym.registry
    ws = workspace(tmp_path)
    before = snapshot(ws)
    env = skyrl_gym.make("lanser", env_config={"options": {}}, extras={"repo": str(ws), "max_turns": 6})
    try:
        assert isinstance(env, skyrl_gym.Env)
        prompt = [{"role": "user", "content": "Fix the type errors in src/shop/broken.py."}]
        obs, meta = env.init(prompt)
        assert obs == prompt and meta["session"]

        good = env.step(fenced(GOOD_DIFF))
        assert good["reward"] == pytest.approx(GOOD_R) and good["reward"] > 0 and not good["done"]
        assert "resolved (1)" in good["observations"][0]["content"]
        assert good["metadata"]["lanser"]["diagnostics"]["errors"] == 2

        bad = env.step(fenced(BAD_DIFF))
        assert bad["reward"] == pytest.approx(BAD_R) and bad["reward"] < 0
        text = bad["observations"][0]["content"]
        assert "introduced (3)" in text and "src/shop/service.py:7:18 error reportCallIssue" in text

        esc = env.step("```json\n" + json.dumps(ESCAPE_STEP) + "\n```")
        assert esc["reward"] == pytest.approx(ESCAPE_R) and esc["reward"] < 0
        assert "refused (E/FS_PERMISSIONS)" in esc["observations"][0]["content"]
        assert esc["metadata"]["lanser"]["exitCode"] == 71

        junk = env.step("I think the bug is in pricing.")
        assert junk["metadata"]["lanser"]["exitCode"] == 2 and junk["reward"] == pytest.approx(-0.4)

        end = env.step("All done.\nsubmit")
        assert end["done"] and end["observations"] == [] and end["reward"] == 0.0
        metrics = env.get_metrics()
        assert metrics["lanser_steps"] == 4 and metrics["lanser_refused"] == 2
        assert metrics["lanser_reward_sum"] == pytest.approx(GOOD_R + BAD_R + ESCAPE_R - 0.4)
        env.close()
        assert env.final["return"] == pytest.approx(GOOD_R + BAD_R + ESCAPE_R - 0.4)
        # max_turns ends an episode too
        env2 = skyrl_gym.make("lanser", env_config={"repo": str(ws)}, extras={"max_turns": 1})
        env2.init(prompt)
        assert env2.step(fenced(GOOD_DIFF))["done"]
        env2.close()
    finally:
        shutdown_shared()
    assert_untouched(tmp_path, ws, before)
