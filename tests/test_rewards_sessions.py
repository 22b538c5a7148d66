"""One warm server, many sessions (lanser/rewards/sessions.py): however the sessions'
steps interleave, each session's records are byte-identical to ``lanser reward --in-memory``
on the same steps, and the base is never written."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

from lanser.rewards.runner import RewardOptions
from lanser.rewards.sessions import SharedRunner

pytestmark = pytest.mark.server

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "trajectory"
STEPS = [json.loads(line) for line in (FIXTURE / "steps.jsonl").read_text("utf-8").splitlines()]

# Three trajectories that touch the same files differently: one creates a module, one
# renames a function its callers use, one breaks a signature and never repairs it.
TRAJECTORIES = [
    STEPS,
    [s for s in STEPS if s.get("op") != "reset"][3:],
    [STEPS[1], {"id": "new", "op": "write", "path": "pkg/extra.py", "content": "from pkg.loader import total\n"},
     {"id": "junk", "op": "patch"}, STEPS[2], {"op": "reset"}, STEPS[4]],
]


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def cli_records(ws: Path, steps: list[dict[str, Any]], tmp_path: Path, name: str) -> list[str]:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in steps), encoding="utf-8")
    res = run_cli("reward", str(path), "-w", str(ws), "--in-memory")
    assert res.code in (0, 2), res.err
    return res.out.splitlines()


def test_interleaved_sessions_equal_separate_in_memory_runs(tmp_path):
    ws = Path(shutil.copytree(FIXTURE / "workspace", tmp_path / "ws"))
    base = snapshot(ws)
    expected = [cli_records(ws, t, tmp_path, f"t{i}") for i, t in enumerate(TRAJECTORIES)]

    async def go(seed: int, keep: bool = True) -> tuple[list[list[str]], dict[str, Any]]:
        shared = SharedRunner(str(ws), RewardOptions(in_memory=True), keep_history=keep)
        try:
            await shared.start()
            ids = [shared.open() for _ in TRAJECTORIES]
            got: list[list[str]] = [[] for _ in TRAJECTORIES]
            queue = [(i, s) for i, t in enumerate(TRAJECTORIES) for s in t]
            order = sorted(range(len(queue)), key=lambda k: random.Random(seed * 1000 + k).random())
            # keep each session's own order, interleave the sessions at random
            pending = {i: [s for j, s in queue if j == i] for i in range(len(TRAJECTORIES))}
            for k in order:
                i = queue[k][0]
                step = pending[i].pop(0)
                rec = await shared.step(ids[i], step)
                got[i].append(json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
            if not keep:  # only the state is kept; the step numbers still count
                assert all(not shared.get(sid).steps and not shared.get(sid).records for sid in ids)
            closed = shared.close(ids[2], "min")
            return got, closed
        finally:
            await shared.aclose()

    for seed in (1, 2):
        got, closed = asyncio.run(go(seed))
        for i in range(len(TRAJECTORIES)):
            assert [json.loads(x) for x in got[i]] == [json.loads(x) for x in expected[i]], (seed, i)
        rs = [json.loads(x)["processReward"]["r"] for x in expected[2]]
        assert closed["return"] == min(rs) and closed["steps"] == len(rs)
    # the reward service's workers keep no history (the router has it): the same records
    got, closed = asyncio.run(go(3, keep=False))
    for i in range(len(TRAJECTORIES)):
        assert [json.loads(x) for x in got[i]] == [json.loads(x) for x in expected[i]], i
    assert closed["steps"] == 0 and closed["records"] == []
    assert snapshot(ws) == base
