"""``lanser serve --ray``: the API scenarios of test_service_http.py with the workers as Ray actors,
on a local Ray instance that the service starts bound to 127.0.0.1 (~6 s, so few tests share one
service).  The last test joins that instance with ``--ray ADDRESS`` from a second service."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import service_helpers as H

pytest.importorskip("ray")
pytestmark = [pytest.mark.server, pytest.mark.ray]

QUEUE = 8
MAX_SESSIONS = 20


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> H.Bases:
    return H.make_bases(tmp_path_factory.mktemp("bases"))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """$HOME of the services: Ray writes its cluster token to ~/.ray/auth_token."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory, home: Path) -> Iterator[H.Service]:
    with H.Service(tmp_path_factory.mktemp("serve-ray"), "--ray", "--workers", "2", "--max-servers", "3",
                   "--queue-size", str(QUEUE), "--max-sessions", str(MAX_SESSIONS), "--max-body", "1000000",
                   ready_timeout=180, env={"HOME": str(home)}) as s:
        yield s
    assert "Traceback" not in s.text(), s.text()


def test_ray_listens_on_loopback_only(svc: H.Service) -> None:
    out = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
    pids = {str(w["pid"]) for w in svc.client().pool()["workers"]} | {str(svc.proc.pid)}  # type: ignore[union-attr]
    mine = [line for line in out.splitlines()[1:] if any(f"pid={p}," in line for p in pids)]
    assert mine, out
    for line in mine:
        local = line.split()[3]
        assert local.startswith(("127.", "[::ffff:127.", "[::1]")), line


def test_ray_two_bases_interleaved_escape_and_bad_requests(svc: H.Service, bases: H.Bases) -> None:
    assert svc.client().pool()["mode"] == "ray"
    H.scenario_two_bases_interleaved(svc, bases, copies=1, seed=2)
    H.scenario_escape(svc, bases)
    H.scenario_bad_requests(svc, bases)


def test_ray_server_killed_and_actor_lost(svc: H.Service, bases: H.Bases) -> None:
    H.scenario_server_killed(svc, bases)
    H.scenario_worker_lost(svc, bases)


def test_ray_overload_score_and_metrics(svc: H.Service, bases: H.Bases) -> None:
    H.scenario_overload(svc, bases, QUEUE)
    H.scenario_max_sessions(svc, bases, MAX_SESSIONS)
    H.scenario_score_and_metrics(svc, bases)


def test_ray_idle_expiry_on_a_joined_cluster(svc: H.Service, bases: H.Bases, tmp_path: Path, home: Path) -> None:
    address = svc.client().pool()["ray"]
    assert address and address.startswith("127.0.0.1:") and (home / ".ray" / "auth_token").is_file()
    with H.Service(tmp_path, "--ray", address, "--ray-actor-cpus", "0", "--workers", "1", "--session-ttl", "2",
                   token=None, ready_timeout=120, env={"HOME": str(home), "RAY_AUTH_MODE": "token"}) as joined:
        H.scenario_idle_expiry(joined, bases, 2.0)
        assert joined.client().pool()["mode"] == "ray"
