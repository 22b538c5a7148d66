"""The router's rules (lanser/service/pool.py) against fake workers, without servers: step
timeouts, scale-out and pinning, LRU eviction (max servers, memory budget), bounded queues,
lost workers, replay checks; and the request parsers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from lanser.commands.reward import reward_options
from lanser.errors import BadInput, LsTimeout, NotFound, ReplayMismatch
from lanser.service.config import ServiceConfig
from lanser.service.pool import Busy, Pool, pack_step, unpack_step
from lanser.service.requests import options_json, parse_base, parse_options
from lanser.service.transport import WorkerHandle, WorkerLost


class FakeWorker(WorkerHandle):
    """Records are a pure function of a session's steps (as the real runner's are)."""

    kind = "fake"
    count = 0

    def __init__(self, wid: str, config: dict[str, Any], on_lost: Callable[[WorkerHandle], Any],
                 world: "World") -> None:
        self.id = wid
        self.on_lost = on_lost
        self.world = world
        self.runners: dict[str, dict[str, list[Any]]] = {}
        self.calls: list[str] = []

    async def start(self) -> None:
        FakeWorker.count += 1
        self.pid = 10_000 + FakeWorker.count
        self.alive = True

    def lose(self) -> None:
        self.alive = False
        self.on_lost(self)

    async def call(self, method: str, params: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        if not self.alive:
            raise WorkerLost("gone")
        self.calls.append(method)
        return await asyncio.wait_for(self._handle(method, params), timeout)

    def _record(self, steps: list[Any], replay: bool) -> str:
        k = len(steps)
        tag = "REPLAYED-DIFFERENTLY" if replay and self.world.mismatch else ""
        return json.dumps({"op": steps[-1].get("op"), "processReward": {"r": 0.5}, "step": k, "tag": tag},
                          sort_keys=True)

    async def _handle(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        w = self.world
        if method == "start_runner":
            await asyncio.sleep(w.start_delay)
            self.runners[p["runner"]] = {}
            return {"ok": True, "result": {"serverPid": 20_000 + len(self.runners)}}
        if method == "drop_runner":
            self.runners.pop(p["runner"], None)
            w.dropped.append(p["runner"])
            return {"ok": True, "result": {}}
        if method == "replay":
            sessions = self.runners[p["runner"]]
            sessions[p["session"]] = []
            recs = []
            for s in p["steps"]:
                sessions[p["session"]].append(s)
                recs.append(self._record(sessions[p["session"]], True))
            return {"ok": True, "result": {"records": recs}}
        if method == "step":
            steps = self.runners[p["runner"]][p["session"]]
            await asyncio.sleep(w.delay(p["step"]))
            steps.append(p["step"])
            return {"ok": True, "result": {"record": self._record(steps, False)}}
        if method == "close":
            self.runners.get(p["runner"], {}).pop(p["session"], None)
            return {"ok": True, "result": {}}
        if method == "stats":
            return {"ok": True, "result": {"pid": self.pid, "rss": w.worker_rss, "runners": {
                rid: {"serverPid": 1, "serverRss": w.server_rss, "alive": rid not in w.dead, "sessions": len(s)}
                for rid, s in self.runners.items()}}}
        return {"ok": True, "result": {}}

    async def stop(self) -> None:
        self.alive = False

    def kill(self) -> None:
        self.alive = False


class World:
    def __init__(self, **kw: Any) -> None:
        self.start_delay = kw.get("start_delay", 0.0)
        self.step_delay = kw.get("step_delay", 0.0)
        self.slow = kw.get("slow", 5.0)
        self.worker_rss = kw.get("worker_rss", 0)
        self.server_rss = kw.get("server_rss", 0)
        self.mismatch = False
        self.dead: set[str] = set()
        self.dropped: list[str] = []
        self.workers: list[FakeWorker] = []

    def delay(self, step: dict[str, Any]) -> float:
        return self.slow if step.get("id") == "slow" else self.step_delay

    def factory(self, wid: str, cfg: dict[str, Any], lost: Callable[[WorkerHandle], Any]) -> FakeWorker:
        w = FakeWorker(wid, cfg, lost, self)
        self.workers.append(w)
        return w


def run(config: ServiceConfig, world: World, body: Callable[[Pool], Any]) -> Any:
    async def go() -> Any:
        pool = Pool(config, world.factory)
        await pool.start()
        try:
            return await body(pool)
        finally:
            await pool.close()
    return asyncio.run(go())


Q = {"op": "query", "cmd": "diag"}


def base_dirs(tmp_path: Path, n: int) -> list[str]:
    out = []
    for i in range(n):
        d = tmp_path / f"b{i}"
        d.mkdir()
        out.append(str(d))
    return out


def test_step_timeout_answers_504_drops_the_server_and_the_session_goes_on(tmp_path: Path) -> None:
    world = World()
    (b,) = base_dirs(tmp_path, 1)

    async def body(pool: Pool) -> None:
        sid = (await pool.open_session({"base": b}))["session"]
        await pool.step(sid, Q)
        first = pool.sessions[sid].runner
        with pytest.raises(LsTimeout) as err:
            await pool.step(sid, dict(Q, id="slow"))
        assert err.value.details["reason"] == "step-timeout"
        await asyncio.sleep(0.05)
        assert first is not None and first.id in world.dropped and first.state == "dead"
        rec = await pool.step(sid, Q)
        assert json.loads(rec)["step"] == 2  # the timed-out step was not taken
        assert len(pool.sessions[sid].records) == 2
        assert pool.counters["recoveries"] == 1 and pool.counters["step_timeouts"] == 1

    run(ServiceConfig(step_timeout=0.2, stats_interval=30), world, body)


def test_a_long_queue_starts_another_server_and_new_sessions_go_to_the_least_loaded(tmp_path: Path) -> None:
    world = World(step_delay=0.1)
    (b,) = base_dirs(tmp_path, 1)

    async def body(pool: Pool) -> None:
        old = (await pool.open_session({"base": b}))["session"]
        mates = [(await pool.open_session({"base": b}))["session"] for _ in range(2)]
        assert len(pool.runners) == 1
        await asyncio.gather(*(pool.step(s, Q) for s in [old, *mates]))
        await asyncio.sleep(0.05)
        assert len(pool.runners) == 2 and pool.counters["scale_outs"] == 1
        new = (await pool.open_session({"base": b}))["session"]
        r_old, r_new = pool.sessions[old].runner, pool.sessions[new].runner
        assert r_old is not r_new and r_new is not None and r_new.sessions == {new}
        for s in mates:  # sessions never move
            assert pool.sessions[s].runner is r_old

    run(ServiceConfig(scale_queue=3, queue_size=10, stats_interval=30), world, body)


def test_a_scale_out_never_evicts_another_server(tmp_path: Path) -> None:
    """Long queues on every base at the server bound: the extra server of one base stays (it
    holds no session yet, but evicting it let the bases take turns restarting servers)."""
    world = World(step_delay=0.05)
    a, b = base_dirs(tmp_path, 2)

    async def body(pool: Pool) -> None:
        on_a = [(await pool.open_session({"base": a}))["session"] for _ in range(3)]
        on_b = [(await pool.open_session({"base": b}))["session"] for _ in range(3)]
        await asyncio.gather(*(pool.step(s, Q) for s in on_a))
        await asyncio.sleep(0.05)
        assert len(pool.runners) == 3 and pool.counters["scale_outs"] == 1
        for _ in range(3):
            await asyncio.gather(*(pool.step(s, Q) for s in on_a + on_b))
            await asyncio.sleep(0.05)
        assert pool.counters["server_starts"] == 3 and len(pool.runners) == 3
        assert sum(pool.evictions.values()) == 0
        assert [len(r.sessions) for r in pool.runners.values()].count(0) == 1

    run(ServiceConfig(scale_queue=3, queue_size=10, max_servers=3, stats_interval=30), world, body)


def test_short_queues_never_add_servers(tmp_path: Path) -> None:
    world = World(step_delay=0.02)
    bs = base_dirs(tmp_path, 4)

    async def body(pool: Pool) -> None:
        sids = [(await pool.open_session({"base": b}))["session"] for b in bs for _ in range(8)]
        for _ in range(3):
            await asyncio.gather(*(pool.step(s, Q) for s in sids))
        assert len(pool.runners) == 4 and pool.counters["server_starts"] == 4

    run(ServiceConfig(stats_interval=30), world, body)


def test_sessions_opened_together_share_one_server_and_the_bounds_hold(tmp_path: Path) -> None:
    world = World(start_delay=0.1)
    bs = base_dirs(tmp_path, 3)

    async def body(pool: Pool) -> None:
        opened = await asyncio.gather(*(pool.open_session({"base": b}) for b in bs for _ in range(5)),
                                      return_exceptions=True)
        busy = [o for o in opened if isinstance(o, Busy)]
        assert len(busy) == 5 and len(pool.sessions) == 10  # the third base found no room
        assert len(pool.runners) == 2 and pool.counters["server_starts"] == 2

    run(ServiceConfig(max_servers=2, stats_interval=30), world, body)


def test_full_queue_is_busy_with_retry_after_and_nothing_is_taken(tmp_path: Path) -> None:
    world = World(step_delay=0.2)
    (b,) = base_dirs(tmp_path, 1)

    async def body(pool: Pool) -> None:
        s1, s2, s3 = [(await pool.open_session({"base": b}))["session"] for _ in range(3)]
        results = await asyncio.gather(pool.step(s1, Q), pool.step(s2, Q), pool.step(s3, Q),
                                       return_exceptions=True)
        busy = [r for r in results if isinstance(r, Busy)]
        assert len(busy) == 1 and busy[0].retry_after >= 1 and busy[0].details["reason"] == "busy"
        assert sorted(len(pool.sessions[s].records) for s in (s1, s2, s3)) == [0, 1, 1]
        assert pool.rejected["queue"] == 1

    run(ServiceConfig(queue_size=2, stats_interval=30), world, body)


def test_eviction_prefers_servers_without_sessions_then_the_least_recently_used(tmp_path: Path) -> None:
    world = World()
    x, y, z, w = base_dirs(tmp_path, 4)

    async def body(pool: Pool) -> None:
        sx = (await pool.open_session({"base": x}))["session"]
        await pool.step(sx, Q)
        sy = (await pool.open_session({"base": y}))["session"]
        await pool.step(sy, Q)
        await pool.close_session(sy)  # y's server has no session left
        rx = pool.sessions[sx].runner
        sz = (await pool.open_session({"base": z}))["session"]  # evicts y's, though x's is older
        assert rx is not None and rx.state == "ready" and pool.evictions["max-servers"] == 1
        assert sorted(r.base.spec.path for r in pool.runners.values()) == sorted([x, z])
        await pool.step(sz, Q)
        sw = (await pool.open_session({"base": w}))["session"]  # every server has a session: LRU (x)
        assert rx.state == "dead" and pool.evictions["max-servers"] == 2
        rec = await pool.step(sx, Q)  # x's session comes back by replay
        assert json.loads(rec)["step"] == 2 and pool.counters["recoveries"] == 1
        assert pool.sessions[sw].runner is not None

    run(ServiceConfig(max_servers=2, stats_interval=30), world, body)


def test_no_server_can_be_evicted_is_busy(tmp_path: Path) -> None:
    world = World(step_delay=0.3)
    x, y = base_dirs(tmp_path, 2)

    async def body(pool: Pool) -> None:
        sx = (await pool.open_session({"base": x}))["session"]
        task = asyncio.create_task(pool.step(sx, Q))
        await asyncio.sleep(0.05)
        with pytest.raises(Busy) as err:
            await pool.open_session({"base": y})
        assert err.value.details["reason"] == "max-servers"
        await task
        assert len(pool.sessions) == 1

    run(ServiceConfig(max_servers=1, stats_interval=30), world, body)


def test_memory_budget_evicts_idle_servers(tmp_path: Path) -> None:
    world = World(worker_rss=50 << 20, server_rss=400 << 20)
    x, y, z = base_dirs(tmp_path, 3)

    async def body(pool: Pool) -> None:
        for b in (x, y, z):
            sid = (await pool.open_session({"base": b}))["session"]
            await pool.step(sid, Q)
            await pool.close_session(sid)
        assert len(pool.runners) == 3
        await pool.poll_workers()
        pool._enforce_budget()
        assert len(pool.runners) == 2 and pool.evictions["memory-budget"] == 1
        assert sorted(r.base.spec.path for r in pool.runners.values()) == sorted([y, z])  # x: least recent

    run(ServiceConfig(memory_budget_mb=1000, workers=1, stats_interval=30), world, body)


def test_dead_server_and_lost_worker_are_rebuilt_by_replay(tmp_path: Path) -> None:
    world = World()
    (b,) = base_dirs(tmp_path, 1)

    async def body(pool: Pool) -> None:
        sid = (await pool.open_session({"base": b}))["session"]
        for _ in range(3):
            await pool.step(sid, Q)
        slot = pool.sessions[sid].runner
        assert slot is not None
        world.dead.add(slot.id)
        await pool.poll_workers()
        assert slot.state == "dead" and pool.counters["server_deaths"] == 1
        assert json.loads(await pool.step(sid, Q))["step"] == 4
        assert pool.counters["recoveries"] == 1 and pool.counters["replayed_steps"] == 3
        worker = pool.sessions[sid].runner.worker  # type: ignore[union-attr]
        assert isinstance(worker, FakeWorker)
        worker.lose()
        assert json.loads(await pool.step(sid, Q))["step"] == 5
        assert pool.counters["worker_losses"] == 1 and pool.counters["recoveries"] == 2
        assert pool.sessions[sid].runner.worker is not worker  # type: ignore[union-attr]

    run(ServiceConfig(workers=1, stats_interval=30), world, body)


def test_a_replay_that_differs_breaks_the_session(tmp_path: Path) -> None:
    world = World()
    (b,) = base_dirs(tmp_path, 1)

    async def body(pool: Pool) -> None:
        sid = (await pool.open_session({"base": b}))["session"]
        await pool.step(sid, Q)
        slot = pool.sessions[sid].runner
        assert slot is not None
        world.mismatch = True
        pool._fail_runner(slot, "test")
        with pytest.raises(ReplayMismatch):
            await pool.step(sid, Q)
        with pytest.raises(ReplayMismatch):
            await pool.step(sid, Q)
        assert len(pool.sessions[sid].records) == 1  # what was answered stands
        final = await pool.close_session(sid)
        assert final["steps"] == 1

    run(ServiceConfig(stats_interval=30), world, body)


def test_idle_sessions_expire_and_say_so(tmp_path: Path) -> None:
    world = World()
    (b,) = base_dirs(tmp_path, 1)

    async def body(pool: Pool) -> None:
        sid = (await pool.open_session({"base": b}))["session"]
        await asyncio.sleep(0.3)
        pool.expire()
        with pytest.raises(NotFound) as err:
            pool.session(sid)
        assert err.value.details["reason"] == "expired"

    run(ServiceConfig(session_ttl=0.1, stats_interval=30), world, body)


def test_options_are_the_reward_commands() -> None:
    cli = reward_options(severity=("warning", "error"), scope="touched", diag_term="regression",
                         weights="alpha=0.1234567,gamma=0.3", clip=5.0, aggregate="min", in_memory=True,
                         reset_between=False, by_file="all")
    http = parse_options({"severity": ["warning", "error"], "scope": "touched", "diagTerm": "regression",
                          "weights": "alpha=0.1234567,gamma=0.3", "clip": 5, "aggregate": "min",
                          "byFile": "all"})
    assert http == cli and http.to_json() == cli.to_json()
    assert parse_options(options_json(http)) == http  # what the workers get: exact, not rounded
    assert parse_options({"weights": {"alpha": 1, "beta": 0}}).weights.beta == 0.0
    for bad in ({"scope": "x"}, {"severity": "fatal"}, {"clip": 0}, {"clip": True}, {"weights": "beta=-1"},
                {"weights": {"delta": 1}}, {"aggregate": "max"}, {"byFile": 3}, {"inMemory": False}, {"x": 1}, []):
        with pytest.raises(BadInput):
            parse_options(bad)


def test_bases_are_absolute_directories_or_commits(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    assert parse_base({"base": str(d)}).kind == "dir"
    with pytest.raises(BadInput):
        parse_base({"base": "rel"})
    with pytest.raises(BadInput):
        parse_base({})
    with pytest.raises(NotFound):
        parse_base({"base": str(tmp_path / "missing")})
    with pytest.raises(BadInput):
        parse_base({"repo": str(d), "base": "-x"})
    with pytest.raises(NotFound):
        parse_base({"repo": str(d), "base": "HEAD"})  # not a repository


def test_router_keeps_steps_packed() -> None:
    """A large step (a whole file) is kept deflated, a small one as it is; both come back equal."""
    small = {"op": "query", "cmd": "diag", "selector": "a.py"}
    large = {"op": "write", "path": "big.py", "content": "x = 1  # é\U0001F600\n" * 2000}
    for step in (small, large):
        packed = pack_step(step)
        assert unpack_step(packed) == step
    assert pack_step(small)[:1] == b"j" and pack_step(large)[:1] == b"z"
    assert len(pack_step(large)) < len(json.dumps(large)) // 10
