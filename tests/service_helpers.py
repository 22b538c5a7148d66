"""Shared by the reward-service tests (local pool and Ray): a real ``lanser serve`` process on
127.0.0.1, the trajectories it is fed, what ``lanser reward --in-memory`` prints for them, and
the API scenarios both pools must pass."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import FIXTURES, LANSER_BIN, run_cli

from lanser.service.client import RewardServiceClient, ServiceError

TRAJ = FIXTURES / "trajectory"
STEPS = [json.loads(line) for line in (TRAJ / "steps.jsonl").read_text("utf-8").splitlines()]
# Trajectories on fixtures/trajectory/workspace that touch the same files differently: one
# creates a module, one renames a function its callers use, one breaks a signature and never
# repairs it (as in test_rewards_sessions.py).
TRAJECTORIES = [
    STEPS,
    [s for s in STEPS if s.get("op") != "reset"][3:],
    [STEPS[1], {"id": "new", "op": "write", "path": "pkg/extra.py", "content": "from pkg.loader import total\n"},
     STEPS[2], {"op": "reset"}, STEPS[4]],
]
# Steps on fixtures/srcpkg (the git base): an error in a new module, its fix, a query.
SRCPKG_STEPS = [
    {"id": "new", "op": "write", "path": "src/shop/extra.py",
     "content": "from shop.pricing import apply_discount\n\n\ndef twice(p: float) -> str:\n"
                "    return apply_discount(p, 10) * 2\n"},
    {"id": "fix", "op": "write", "path": "src/shop/extra.py",
     "content": "from shop.pricing import apply_discount\n\n\ndef twice(p: float) -> float:\n"
                "    return apply_discount(p, 10) * 2\n"},
    {"id": "fix-broken", "op": "patch", "patch": "--- a/src/shop/broken.py\n+++ b/src/shop/broken.py\n"
     "@@ -5,3 +5,3 @@\n def bad_argument() -> float:\n-    return apply_discount(\"ten\", 5)\n"
     "+    return apply_discount(10.0, 5)\n \n"},
    {"id": "q", "op": "query", "cmd": "diag", "selector": "src/shop/broken.py"},
]
# Steps that reach outside the base: a relative path up, an absolute path, a patch, a symlink.
ESCAPE_STEPS = [
    {"id": "up", "op": "write", "path": "../escaped.py", "content": "x = 1\n"},
    {"id": "abs", "op": "write", "path": "{outside}/abs.py", "content": "x = 1\n"},
    {"id": "patch-up", "op": "patch", "patch": "--- /dev/null\n+++ b/../../escaped2.py\n@@ -0,0 +1 @@\n+x = 1\n"},
    {"id": "link", "op": "write", "path": "outside/evil.py", "content": "x = 1\n"},
    {"id": "ok", "op": "write", "path": "src/shop/fine.py", "content": "y: int = 2\n"},
]
TOKEN = "test-token-123"


def snapshot(root: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink() and ".git" not in p.relative_to(root).parts:
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


_CLI: dict[str, list[bytes]] = {}


def content_key(root: Path) -> str:
    """A digest of a tree's files and links (records do not depend on where the tree is)."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            h.update(f"L {rel} {os.readlink(p)}\n".encode())
        elif p.is_file():
            h.update(f"F {rel} {hashlib.sha256(p.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


def cli_lines(ws: Path, steps: list[dict[str, Any]], tmp: Path, *extra: str) -> list[bytes]:
    """What ``lanser reward --in-memory`` prints for ``steps`` on ``ws`` (one line a record),
    computed once per tree content (shared by the local and the Ray tests)."""
    key = json.dumps([content_key(ws), steps, extra], sort_keys=True)
    if key not in _CLI:
        path = tmp / f"steps-{len(_CLI)}.jsonl"
        path.write_text("".join(json.dumps(s) + "\n" for s in steps), encoding="utf-8")
        res = run_cli("reward", str(path), "-w", str(ws), "--in-memory", *extra)
        assert res.code in (0, 2), res.err
        _CLI[key] = [line.encode() for line in res.out.splitlines()]
    return _CLI[key]


def make_git_repo(src: Path, dest: Path) -> str:
    """``src`` committed into a new repository at ``dest``; then the work tree is changed (so
    only the commit holds the base).  Returns the commit's sha."""
    shutil.copytree(src, dest)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
        subprocess.run(["git", "-C", str(dest), *argv], check=True, env=env, capture_output=True)
    sha = subprocess.run(["git", "-C", str(dest), "rev-parse", "HEAD"], check=True, capture_output=True,
                         text=True).stdout.strip()
    (dest / "src" / "shop" / "pricing.py").write_text("def apply_discount(:\n", encoding="utf-8")
    (dest / "src" / "shop" / "untracked.py").write_text("x: int = 'no'\n", encoding="utf-8")
    return sha


class Service:
    """``lanser serve --port 0`` as a real process; stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, tmp: Path, *args: str, token: str | None = TOKEN, ready_timeout: float = 120,
                 env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.env = env or {}
        self.args = args
        self.token = token
        self.ready_timeout = ready_timeout
        self.port_file = tmp / "port"
        self.log_path = tmp / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "Service":
        env = {**os.environ, **self.env}
        if self.token:
            env["LANSER_SERVE_TOKEN"] = self.token
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([str(LANSER_BIN), "serve", "--port", "0", "--port-file", str(self.port_file),
                                      *self.args], stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.ready_timeout
        while not self.port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"lanser serve did not start:\n{self.text()}")
            time.sleep(0.05)
        self.port = int(self.port_file.read_text().strip())
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()

    def text(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")

    def client(self, **kwargs: Any) -> RewardServiceClient:
        kwargs.setdefault("token", self.token)
        return RewardServiceClient(f"http://127.0.0.1:{self.port}", **kwargs)

    def http(self, method: str, path: str, body: bytes | None = None, *, token: str | None = "default",
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        """A raw request: (status, headers, parsed JSON body or text)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        h = dict(headers or {})
        tok = self.token if token == "default" else token
        if tok:
            h["Authorization"] = f"Bearer {tok}"
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        try:
            parsed: Any = json.loads(data)
        except ValueError:
            parsed = data.decode("utf-8", "replace")
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, parsed


@dataclass
class Bases:
    """The bases the scenarios use, and their expected records."""

    tmp: Path
    a: Path                     # a directory base: fixtures/trajectory/workspace
    repo: Path                  # a git repository of fixtures/srcpkg (work tree changed since)
    sha: str
    pristine: Path              # the commit's content, for the CLI
    escape: Path                # srcpkg with a symlink to a directory outside
    outside: Path
    snapshots: dict[str, dict[str, bytes]] = field(default_factory=dict)

    def expected(self, which: str, steps: list[dict[str, Any]], *extra: str) -> list[bytes]:
        ws = {"a": self.a, "git": self.pristine, "escape": self.escape}[which]
        return cli_lines(ws, steps, self.tmp, *extra)


def make_bases(tmp: Path) -> Bases:
    a = Path(shutil.copytree(TRAJ / "workspace", tmp / "a"))
    repo = tmp / "repo"
    sha = make_git_repo(FIXTURES / "srcpkg", repo)
    pristine = Path(shutil.copytree(FIXTURES / "srcpkg", tmp / "pristine"))
    outside = tmp / "outside-dir"
    outside.mkdir()
    escape = Path(shutil.copytree(FIXTURES / "srcpkg", tmp / "escape"))
    (escape / "outside").symlink_to(outside, target_is_directory=True)
    b = Bases(tmp, a, repo, sha, pristine, escape, outside)
    b.snapshots = {"a": snapshot(a), "repo": snapshot(repo), "escape": snapshot(escape)}
    return b


def escape_steps(b: Bases) -> list[dict[str, Any]]:
    return [dict(s, path=s["path"].format(outside=b.outside)) if "path" in s else s for s in ESCAPE_STEPS]


def run_concurrently(client: RewardServiceClient, jobs: list[tuple[str, list[dict[str, Any]]]],
                     seed: int) -> list[list[bytes]]:
    """Each (session, steps) in its own thread, steps in order, sessions interleaved at random."""
    out: list[list[bytes]] = [[] for _ in jobs]
    errors: list[BaseException] = []

    def run(i: int, sid: str, steps: list[dict[str, Any]]) -> None:
        rng = random.Random(seed * 100 + i)
        try:
            for s in steps:
                time.sleep(rng.uniform(0, 0.04))
                out[i].append(client.step_bytes(sid, s))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, sid, steps)) for i, (sid, steps) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    return out


def runner_of(client: RewardServiceClient, sid: str) -> dict[str, Any]:
    pool = client.pool()
    rid = client.request("GET", f"/v1/sessions/{sid}")["runner"]
    return next(r for r in pool["runners"] if r["id"] == rid)


def worker_of(client: RewardServiceClient, runner: dict[str, Any]) -> dict[str, Any]:
    return next(w for w in client.pool()["workers"] if w["id"] == runner["worker"])


# -- scenarios (each runs against a started Service) -----------------------------------------------

def scenario_two_bases_interleaved(svc: Service, b: Bases, *, copies: int = 2, seed: int = 1) -> None:
    """Sessions on a directory base and a git-commit base at once, many interleaved at random on
    one server: every record equals ``lanser reward --in-memory`` byte for byte."""
    trajs = TRAJECTORIES * copies
    expected_a = [b.expected("a", t) for t in trajs]
    expected_git = b.expected("git", SRCPKG_STEPS)
    c = svc.client(retry_busy=120)
    sids_a = [c.open_session(base=str(b.a)) for _ in trajs]
    sids_g = [c.open_session(base=b.sha[:10], repo=str(b.repo)) for _ in range(2)]
    got = run_concurrently(c, list(zip(sids_a, trajs)) + [(s, SRCPKG_STEPS) for s in sids_g], seed)
    for i in range(len(trajs)):
        assert got[i] == expected_a[i], i
    for g in got[len(trajs):]:
        assert g == expected_git
    # one warm server per base served all of its sessions
    pool = c.pool()
    for sid in sids_a + sids_g:
        assert sum(sid in r["sessions"] for r in pool["runners"]) == 1
    by_base = {}
    for r in pool["runners"]:
        by_base.setdefault(r["base"], set()).add(r["id"])
    assert len(by_base) >= 2 and all(len(v) == 1 for v in by_base.values()), by_base
    # GET returns the same bytes; DELETE the aggregate
    status, _, body = svc.http("GET", f"/v1/sessions/{sids_a[0]}")
    assert status == 200 and [json.dumps(r, sort_keys=True) for r in body["records"]] == \
        [json.dumps(json.loads(x), sort_keys=True) for x in expected_a[0]]
    final = c.close(sids_a[2])
    rs = [json.loads(x)["processReward"]["r"] for x in expected_a[2]]
    assert final["aggregate"] == "sum" and final["steps"] == len(rs)
    assert abs(final["return"] - sum(rs)) < 1e-9
    for sid in sids_a + sids_g:
        if sid != sids_a[2]:
            c.close(sid)
    # nothing was written into any base
    assert snapshot(b.a) == b.snapshots["a"] and snapshot(b.repo) == b.snapshots["repo"]


def scenario_server_killed(svc: Service, b: Bases) -> None:
    """The language server is killed between two steps and again during one: the session is
    rebuilt on a new server by replay and its records are the CLI's, byte for byte."""
    steps = TRAJECTORIES[0]
    expected = b.expected("a", steps)
    c = svc.client(retry_busy=120)
    sid = c.open_session(base=str(b.a))
    other = c.open_session(base=str(b.a))  # a second session on the same server, also rebuilt
    got = [c.step_bytes(sid, s) for s in steps[:4]]
    other_got = [c.step_bytes(other, s) for s in steps[:2]]
    before = c.pool()["counters"]
    runner = runner_of(c, sid)
    os.kill(runner["serverPid"], signal.SIGKILL)
    got += [c.step_bytes(sid, s) for s in steps[4:7]]
    runner2 = runner_of(c, sid)
    assert runner2["serverPid"] != runner["serverPid"]
    # now kill it while a step runs
    killer = threading.Timer(0.03, lambda: _kill_quietly(runner2["serverPid"]))
    killer.start()
    got += [c.step_bytes(sid, s) for s in steps[7:]]
    killer.join()
    other_got += [c.step_bytes(other, s) for s in steps[2:]]
    assert got == expected
    assert other_got == expected
    after = c.pool()["counters"]
    assert after.get("recoveries", 0) >= before.get("recoveries", 0) + 2
    assert after["server_starts"] >= before["server_starts"] + 2
    c.close(sid)
    c.close(other)


def _kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def scenario_worker_lost(svc: Service, b: Bases) -> None:
    """The worker (process or Ray actor) holding a session's server is killed: the session is
    rebuilt elsewhere by replay, records identical."""
    steps = SRCPKG_STEPS
    expected = b.expected("git", steps)
    c = svc.client(retry_busy=120)
    sid = c.open_session(base=b.sha, repo=str(b.repo))
    got = [c.step_bytes(sid, s) for s in steps[:2]]
    runner = runner_of(c, sid)
    worker = worker_of(c, runner)
    before = c.pool()["counters"].get("worker_losses", 0)
    os.kill(worker["pid"], signal.SIGKILL)
    got += [c.step_bytes(sid, s) for s in steps[2:]]
    assert got == expected
    pool = c.pool()
    assert pool["counters"].get("worker_losses", 0) == before + 1
    assert worker["id"] not in [w["id"] for w in pool["workers"]]
    c.close(sid)


def scenario_escape(svc: Service, b: Bases) -> None:
    """Steps that reach outside the base are refused by the CLI's jail (E/FS_PERMISSIONS, 71),
    as records; nothing is written anywhere; the records are the CLI's."""
    steps = escape_steps(b)
    expected = b.expected("escape", steps)
    c = svc.client(retry_busy=120)
    sid = c.open_session(base=str(b.escape))
    got = [c.step_bytes(sid, s) for s in steps]
    assert got == expected
    recs = [json.loads(x) for x in got]
    assert [r["exitCode"] for r in recs[:4]] == [71, 71, 71, 71]
    assert all(r["error"]["code"] == "E/FS_PERMISSIONS" for r in recs[:4])
    assert recs[4]["status"] == "ok"
    assert list(b.outside.iterdir()) == []
    assert not (b.tmp / "escaped.py").exists() and not (b.tmp.parent / "escaped2.py").exists()
    assert snapshot(b.escape) == b.snapshots["escape"]
    c.close(sid)


def scenario_bad_requests(svc: Service, b: Bases) -> None:
    """Malformed requests get a 4xx JSON error with the contract's code; nothing else changes."""
    def post(path: str, obj: Any) -> tuple[int, Any]:
        status, _, body = svc.http("POST", path, obj if isinstance(obj, bytes) else json.dumps(obj).encode())
        return status, body

    cases: list[tuple[Any, int, str]] = [
        (b"{not json", 400, "E/BAD_INPUT"),
        ([], 400, "E/BAD_INPUT"),
        ({}, 400, "E/BAD_INPUT"),
        ({"base": "relative/dir"}, 400, "E/BAD_INPUT"),
        ({"base": str(b.tmp / "no-such-dir")}, 404, "E/NOT_FOUND"),
        ({"repo": str(b.a), "base": "HEAD"}, 404, "E/NOT_FOUND"),
        ({"repo": str(b.repo), "base": "no-such-branch"}, 404, "E/NOT_FOUND"),
        ({"repo": str(b.repo), "base": "--output=/tmp/x"}, 400, "E/BAD_INPUT"),
        ({"base": str(b.a), "options": {"scope": "everything"}}, 400, "E/BAD_INPUT"),
        ({"base": str(b.a), "options": {"clip": -1}}, 400, "E/BAD_INPUT"),
        ({"base": str(b.a), "options": {"weights": "alpha=x"}}, 400, "E/BAD_INPUT"),
        ({"base": str(b.a), "options": {"inMemory": False}}, 400, "E/BAD_INPUT"),
        ({"base": str(b.a), "options": {"colour": "red"}}, 400, "E/BAD_INPUT"),
        ({"base": str(b.a), "extra": 1}, 400, "E/BAD_INPUT"),
    ]
    for body, status, code in cases:
        got_status, got = post("/v1/sessions", body)
        assert (got_status, got["error"]["code"]) == (status, code), (body, got)
        assert got["error"]["message"] and "Traceback" not in got["error"]["message"]
    c = svc.client(retry_busy=120)
    sessions_before = c.health()["sessions"]
    sid = c.open_session(base=str(b.a))
    for bad in [b"", b"nope", b"[1]", json.dumps({"op": "fly"}).encode(), json.dumps({"op": "patch"}).encode(),
                json.dumps({"op": "query", "cmd": "def"}).encode()]:
        status, got = post(f"/v1/sessions/{sid}/steps", bad)
        assert status == 400 and got["error"]["code"] == "E/BAD_INPUT", (bad, got)
    assert c.request("GET", f"/v1/sessions/{sid}")["steps"] == 0  # nothing taken
    assert svc.http("GET", "/v1/sessions/s-nope")[0] == 404
    status, _, body = svc.http("POST", "/v1/nowhere", b"{}")
    assert status == 404 and body["error"]["code"] == "E/NOT_FOUND"
    status, _, body = svc.http("PUT", "/v1/sessions", b"{}")
    assert status == 405 and body["error"]["code"] == "E/BAD_INPUT"
    status, _, body = svc.http("POST", f"/v1/sessions/{sid}/steps",
                               json.dumps({"op": "write", "path": "x.py", "content": "x" * 2_000_000}).encode())
    assert status == 413 and body["error"]["code"] == "E/BAD_INPUT"
    if svc.token:
        status, headers, body = svc.http("GET", "/v1/pool", token=None)
        assert status == 401 and body["error"]["code"] == "E/FS_PERMISSIONS" and "bearer" in headers[
            "www-authenticate"].lower()
        assert svc.http("GET", "/v1/pool", token="wrong")[0] == 401
        assert svc.http("GET", "/healthz", token=None)[0] == 200
    # the session is untouched: its first real step is step 1, as the CLI's
    assert c.step_bytes(sid, TRAJECTORIES[0][0]) == b.expected("a", TRAJECTORIES[0])[0]
    c.close(sid)
    assert c.health()["sessions"] == sessions_before


def scenario_overload(svc: Service, b: Bases, queue_size: int) -> None:
    """More concurrent steps than a server's queue holds: the excess is answered 429 with
    Retry-After at once, the rest succeed, and their records are the CLI's."""
    n = queue_size + 6
    steps = TRAJECTORIES[0]
    expected = b.expected("a", steps)
    c = svc.client(retry_busy=0)
    sids = [c.open_session(base=str(b.a)) for _ in range(n)]
    results: list[Any] = [None] * n
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        barrier.wait()
        try:
            results[i] = c.step_bytes(sids[i], steps[0])
        except ServiceError as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    busy = [r for r in results if isinstance(r, ServiceError)]
    ok = [r for r in results if isinstance(r, bytes)]
    assert busy and ok, results
    for exc in busy:
        assert exc.status == 429 and exc.code == "E/REQUEST_CANCELLED" and exc.details["reason"] == "busy"
        assert exc.retry_after is not None and exc.retry_after >= 1
    assert all(r == expected[0] for r in ok)
    # a refused step was not taken: retried later, it is that session's step 1
    for i, r in enumerate(results):
        if isinstance(r, ServiceError):
            assert svc.client(retry_busy=120).step_bytes(sids[i], steps[0]) == expected[0]
    metrics = c.metrics()
    assert 'lanser_rejected_total{reason="queue"}' in metrics
    for sid in sids:
        c.close(sid)


def scenario_max_sessions(svc: Service, b: Bases, max_sessions: int) -> None:
    c = svc.client()
    room = max_sessions - c.health()["sessions"]
    sids = [c.open_session(base=str(b.a)) for _ in range(room)]
    try:
        c.open_session(base=str(b.a))
        raise AssertionError("a session past --max-sessions was opened")
    except ServiceError as exc:
        assert exc.status == 429 and exc.details["reason"] == "max-sessions" and exc.retry_after
    for sid in sids:
        c.close(sid)


def scenario_idle_expiry(svc: Service, b: Bases, ttl: float) -> None:
    """A session idle past --session-ttl is closed: 404 with reason "expired"."""
    c = svc.client(retry_busy=120)
    sid = c.open_session(base=str(b.a))
    c.step_bytes(sid, TRAJECTORIES[0][0])
    busy = c.open_session(base=str(b.a))
    deadline = time.monotonic() + ttl + 3
    while time.monotonic() < deadline:  # the busy session keeps stepping: it must not expire
        c.step_bytes(busy, {"op": "query", "cmd": "diag", "selector": "pkg/models.py"})
        time.sleep(0.3)
        status, _, body = svc.http("GET", f"/v1/sessions/{sid}")
        if status == 404:
            break
    assert status == 404 and body["error"]["code"] == "E/NOT_FOUND", body
    assert body["error"]["details"]["reason"] == "expired"
    assert svc.http("GET", f"/v1/sessions/{busy}")[0] == 200
    assert c.pool()["counters"]["expired_sessions"] >= 1
    c.close(busy)


def scenario_score_and_metrics(svc: Service, b: Bases) -> None:
    """POST /v1/score gives what `lanser reward --in-memory --aggregate min` prints; /metrics
    has every family the service promises."""
    steps = TRAJECTORIES[1]
    expected = b.expected("a", steps, "--aggregate", "min", "--severity", "error", "--severity", "warning")
    c = svc.client(retry_busy=120)
    out = c.score(steps, base=str(b.a), options={"aggregate": "min", "severity": ["error", "warning"]})
    from lanser.bundles.canonical import canonical_bytes

    assert [canonical_bytes(r) for r in out["records"]] == expected
    assert out["aggregate"] == "min" and out["return"] == json.loads(expected[0])["return"]
    text = c.metrics()
    for family in ("lanser_sessions ", "lanser_queue_depth{", "lanser_servers{", "lanser_steps_total ",
                   "lanser_steps_per_second ", "lanser_step_latency_seconds_bucket{", "lanser_rss_bytes{",
                   "lanser_server_starts_total ", "lanser_recoveries_total "):
        assert family in text, family
    health = c.health()
    assert health["status"] == "ok"
