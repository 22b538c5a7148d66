"""``lanser serve`` with its default pool (worker processes), over real HTTP on 127.0.0.1 with the
real pinned server: two bases at once, interleaved sessions byte-identical to ``lanser reward
--in-memory``, a killed server and a killed worker recovered by replay, 429 under overload,
idle expiry, bad requests, steps that try to leave the base, LRU eviction, /v1/score, /metrics.
The scenarios live in service_helpers.py: test_service_ray.py runs them on Ray actors."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterator

import pytest
import service_helpers as H

pytestmark = pytest.mark.server

QUEUE = 8
MAX_SESSIONS = 20
TTL = 2.0


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> H.Bases:
    return H.make_bases(tmp_path_factory.mktemp("bases"))


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[H.Service]:
    with H.Service(tmp_path_factory.mktemp("serve"), "--workers", "2", "--max-servers", "3",
                   "--queue-size", str(QUEUE), "--max-sessions", str(MAX_SESSIONS), "--max-body", "1000000",
                   "--cache-dir", str(tmp_path_factory.mktemp("cache"))) as s:
        yield s


def test_two_bases_interleaved_sessions_equal_the_cli(svc: H.Service, bases: H.Bases) -> None:
    H.scenario_two_bases_interleaved(svc, bases, copies=2, seed=1)
    # the commit was materialised once, read-only, from git archive (not the changed work tree)
    cache = [p for p in Path(_cache_dir(svc)).iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(cache) == 1
    tree = cache[0]
    assert not os.access(tree / "src" / "shop", os.W_OK) or os.geteuid() == 0
    assert stat.S_IMODE((tree / "src" / "shop").stat().st_mode) == 0o555
    assert stat.S_IMODE((tree / "src" / "shop" / "pricing.py").stat().st_mode) & 0o222 == 0
    assert (tree / "src" / "shop" / "pricing.py").read_bytes() == \
        (bases.pristine / "src" / "shop" / "pricing.py").read_bytes()
    assert not (tree / "src" / "shop" / "untracked.py").exists() and not (tree / ".git").exists()


def _cache_dir(svc: H.Service) -> str:
    argv = list(svc.args)
    return argv[argv.index("--cache-dir") + 1]


def test_server_killed_mid_session_is_rebuilt_by_replay(svc: H.Service, bases: H.Bases) -> None:
    H.scenario_server_killed(svc, bases)


def test_lost_worker_process_is_rebuilt_by_replay(svc: H.Service, bases: H.Bases) -> None:
    H.scenario_worker_lost(svc, bases)


def test_steps_reaching_outside_the_base_are_refused(svc: H.Service, bases: H.Bases) -> None:
    H.scenario_escape(svc, bases)


def test_bad_requests_get_4xx_with_the_contract_code(svc: H.Service, bases: H.Bases) -> None:
    H.scenario_bad_requests(svc, bases)


def test_overload_is_answered_429_with_retry_after(svc: H.Service, bases: H.Bases) -> None:
    H.scenario_overload(svc, bases, QUEUE)
    H.scenario_max_sessions(svc, bases, MAX_SESSIONS)


def test_score_and_metrics(svc: H.Service, bases: H.Bases) -> None:
    H.scenario_score_and_metrics(svc, bases)


def test_lru_eviction_under_max_servers_then_replay(svc: H.Service, bases: H.Bases) -> None:
    """Three servers at most: a session on a fourth base evicts the least recently used idle
    server; the sessions that lived there are rebuilt at their next step, records identical."""
    c = svc.client(retry_busy=120)
    steps = H.TRAJECTORIES[0]
    expected = bases.expected("a", steps)
    sid = c.open_session(base=str(bases.a))
    got = [c.step_bytes(sid, s) for s in steps[:3]]
    # sessions on two other bases step after it: the server of `a` is the least recently used
    # (every server has sessions, so none is preferred for having none)
    others = []
    for base, repo in ((str(bases.escape), None), (bases.sha, str(bases.repo))):
        others.append(c.open_session(base=base, repo=repo))
        c.step_bytes(others[-1], {"op": "query", "cmd": "diag", "selector": "src/shop/models.py"})
    fourth = bases.tmp / "fourth"
    fourth.mkdir()
    (fourth / "m.py").write_text("x: int = 1\n", encoding="utf-8")
    before = c.pool()["evictions"].get("max-servers", 0)
    f = c.open_session(base=str(fourth))
    pool = c.pool()
    assert len(pool["runners"]) <= 3 and pool["evictions"].get("max-servers", 0) == before + 1
    assert not any(sid in r["sessions"] for r in pool["runners"])  # its server was the one evicted
    got += [c.step_bytes(sid, s) for s in steps[3:]]
    assert got == expected
    for x in [f, sid, *others]:
        c.close(x)


def test_idle_sessions_expire(tmp_path: Path, bases: H.Bases) -> None:
    with H.Service(tmp_path, "--workers", "1", "--session-ttl", str(TTL), token=None) as s:
        H.scenario_idle_expiry(s, bases, TTL)
        assert s.http("GET", "/healthz")[2]["status"] == "ok"
