"""HttpBackend against the real ``lanser serve`` on 127.0.0.1: the same episode through the
service and in process gives the same records byte for byte (the adapters cannot tell the
backends apart), ``close(mode)`` aggregates as the in-process backend does, and a refusal
of the service reaches the caller as a ServiceError with the contract's code."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import service_helpers as H
from rl_fixture import BAD_DIFF, BAD_R, ESCAPE_R, ESCAPE_STEP, GOOD_DIFF, GOOD_R, assert_untouched, snapshot, workspace

from lanser.bundles.canonical import canonical_bytes
from lanser.integrations.backend import HttpBackend, InProcessBackend, RewardClient, shutdown_shared
from lanser.integrations.episode import Episode
from lanser.integrations.openrlhf import make_get_reward
from lanser.service.client import ServiceError

pytestmark = pytest.mark.server

STEPS = [{"op": "patch", "patch": GOOD_DIFF}, {"op": "patch", "patch": BAD_DIFF}, ESCAPE_STEP]
NO_ACTION_R = -0.4  # a step that is not a step: -beta (the default weights)


def _episode(client: RewardClient) -> tuple[list[float], dict]:
    ep = Episode(client)
    rewards = [ep.act(f"```json\n{json.dumps(step)}\n```").reward for step in STEPS]
    return rewards, ep.finish("min")


def test_http_backend_equals_in_process_on_the_real_service(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    before = snapshot(ws)
    local = RewardClient(InProcessBackend(str(ws), options={"clip": 5}))
    try:
        local_rewards, local_final = _episode(local)
    finally:
        local.shutdown()
    (tmp_path / "serve").mkdir()
    with H.Service(tmp_path / "serve", "--workers", "1", "--max-servers", "1", token=H.TOKEN) as svc:
        url = f"http://127.0.0.1:{svc.port}"
        remote = RewardClient(HttpBackend(url, repo=str(ws), options={"clip": 5}, token=H.TOKEN))
        try:
            remote_rewards, remote_final = _episode(remote)
            assert remote_rewards == local_rewards == pytest.approx([GOOD_R, BAD_R, ESCAPE_R])
            assert remote_final["return"] == local_final["return"] == pytest.approx(BAD_R)
            assert [canonical_bytes(r) for r in remote_final["records"]] == \
                [canonical_bytes(r) for r in local_final["records"]]
            # one-shot scoring through the service equals the session's records
            scored = remote.score(STEPS)
            assert [r["processReward"]["r"] for r in scored] == pytest.approx(local_rewards)
            # a refusal of the service is its error, with the contract's code
            sid = remote.open()
            with pytest.raises(ServiceError) as info:
                remote.step(sid, {"op": "frobnicate"})
            assert info.value.status == 400 and info.value.code == "E/BAD_INPUT"
            # OpenRLHF's remote reward model (--remote_rm_url http://.../get_reward) on the pool
            prompt = "Fix src/shop/broken.py.\n"
            response = "".join(f"```json\n{json.dumps(s)}\n```\n" for s in (STEPS[0], STEPS[2]))
            # (a response without a usable action is scored, as in process: an error record)
            payload = {"query": [prompt + response, prompt + f"```json\n{json.dumps(STEPS[0])}\n```\n",
                                 prompt + "no idea"],
                       "prompts": [prompt] * 3, "labels": [str(ws), json.dumps({"repo": str(ws)}), str(ws)]}
            answer = svc.client().request("POST", "/get_reward", payload)
            try:
                in_process = asyncio.run(make_get_reward()(payload))
            finally:
                shutdown_shared()
            assert answer == in_process
            assert answer["rewards"] == answer["scores"] == pytest.approx([GOOD_R + ESCAPE_R, GOOD_R, NO_ACTION_R])
            assert answer["extra_logs"]["lanser_steps"] == [2.0, 1.0, 1.0]
            assert answer["extra_logs"]["lanser_refused"] == [1.0, 0.0, 1.0]
            with pytest.raises(ServiceError) as info:
                svc.client().request("POST", "/get_reward", {"query": "not a list"})
            assert info.value.status == 400 and info.value.code == "E/BAD_INPUT"
            bad = RewardClient(HttpBackend(url, repo=str(ws), token="wrong"))
            try:
                with pytest.raises(ServiceError) as info:
                    bad.open()
                assert info.value.status == 401
            finally:
                bad.shutdown()
        finally:
            remote.shutdown()
    assert_untouched(tmp_path, ws, before)
