"""``lanser reward --from swe-agent`` on real public SWE-agent trajectories (fixtures/swe-agent:
two runs of SWE-agent 0.x and 1.x on SWE-agent/test-repo, the repository cloned at their base
commit from a git bundle): each reproduces the trajectory's submitted patch byte for byte, and
its per-step rewards are the ones recorded here (benchmarks/bench_swe_agent_trajs.py records the
same values for the same files)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from conftest import FIXTURES, run_cli

pytestmark = pytest.mark.server

DATA = FIXTURES / "swe-agent"
BASE = "7bef0c62cce60a2cb6df0c80f18b3054e1c23630"
# (trajectory step, status, r) of every record, default options; per file, keyed by SHA-256
RECORDED = {
    "test-repo-i1.v0.traj": ("37894da0658b71c3ffc37fcecad550386159e841d4aa8a82bfe6a12bd46589d1",
                             [(2, "ok", 0.9), (3, "skipped", None)]),
    "test-repo-1c2844.v1.traj": ("dd79a193908492a51f532269ee126f3600da98b84551e2bdc1adacc7bf29ad67",
                                 [(2, "ok", 0.9), (3, "skipped", None)]),
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("swe") / "test-repo"
    subprocess.run(["git", "clone", "-q", str(DATA / "test-repo.bundle"), str(dest)], check=True)
    assert subprocess.run(["git", "-C", str(dest), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip() == BASE
    return dest


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_real_trajectory_reproduces_its_submission(repo: Path, name: str) -> None:
    digest, expected = RECORDED[name]
    traj = DATA / name
    assert hashlib.sha256(traj.read_bytes()).hexdigest() == digest  # the public file, unchanged
    before = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True,
                            check=True).stdout
    res = run_cli("reward", "--from", "swe-agent", str(traj), "--repo", str(repo), "--base", BASE)
    assert res.code == 0, res.err
    assert "reproduces the trajectory's submission byte for byte" in res.err
    records = [json.loads(line) for line in res.out.splitlines()]
    got = [(r["trajStep"], r["status"], r.get("processReward", {}).get("r")) for r in records]
    assert got == [(s, st, pytest.approx(r) if r is not None else None) for s, st, r in expected]
    assert all(r["source"] == "swe-agent" for r in records)
    # the fix step resolves the real error of the issue (a missing colon), introduces none
    fix = records[0]
    assert fix["resolved"] and not fix["introduced"]
    assert subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True,
                          check=True).stdout == before  # labelled in memory: the clone is untouched
