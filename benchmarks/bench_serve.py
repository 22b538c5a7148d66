"""Benchmark: the reward service (``lanser serve``) under N concurrent rollouts vs the baselines.

    .venv/bin/python benchmarks/bench_serve.py [--sessions 8,32,128] [--steps 8] [--bases 4]
                                               [--sample 16] [--no-ray] [--large [django|sympy]] [--quick]
                                               [--json OUT]

Bases: real packages copied from this venv's site-packages (click, attrs, jsonschema,
starlette; ``--bases`` takes the first ones), each committed into its own git repository, so
sessions name a (repository, commit) as a trainer does; ``--large`` adds a large real tree as a
base, django 5.2.8's sdist (2,816 files, the tree of the fidelity work) or ``--large sympy``
(1.14.0), fetched with pip once, as ``bench_reward_large.py`` does.  The sessions of a base are a GRPO
group: the same base, different edits.  Session k's step j writes one of six modules of its base
(the module rotates with k and j): even steps append a function with a type error, odd steps fix
it, so every step changes the diagnostics.

For each N (sessions, spread round-robin over the bases), measured in the same run:

* **service**: a fresh ``lanser serve`` (local worker processes, default settings), N client
  threads, one session each, M steps in order, all at once.  Wall time from the first session
  opened to the last record (servers start cold: included), steps/s, per-step latency p50/p99
  as the client sees it, peak RSS of the router + workers + servers (polled from /v1/pool),
  server starts and the most servers one base had.
* **(a) cold CLI**: one ``pyright --outputjson`` per step on the tree as the step left it
  (``lanser.pyright_cli.run_pyright_json``), ``nproc`` at a time, on a sample of steps (one
  step of each sampled session; sessions taken round-robin over the bases); its error count
  must equal the step record's.
* **(b) one RewardScorer per session** (in memory, its own server), ``nproc`` sessions at a
  time, on a sample of sessions (round-robin over the bases): wall per session (server start
  included), steps/s; its records must equal the service's byte for byte.
* **ray**: the same N through ``lanser serve --ray`` (a local Ray instance on 127.0.0.1);
  its records must equal the local pool's byte for byte; overhead reported.

Sampled baselines report a rate (steps/s over the sample), which is what they would sustain
on N sessions.  ``--quick`` (``make bench``): 2 bases, N=8, M=4, samples of 4.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import copy_installed_package, machine_line  # noqa: E402

from lanser.bundles.canonical import canonical_bytes  # noqa: E402
from lanser.pyright_cli import count_by_severity, run_pyright_json  # noqa: E402
from lanser.rewards.api import RewardScorer  # noqa: E402
from lanser.service.client import RewardServiceClient  # noqa: E402
from lanser.service.worker import tree_rss  # noqa: E402

# base name -> the installed packages copied into it (attrs' code lives in ``attr``)
PACKAGES: dict[str, list[str]] = {"click": ["click"], "attrs": ["attr", "attrs"],
                                  "jsonschema": ["jsonschema"], "starlette": ["starlette"]}
LARGE = {"django": "5.2.8", "sympy": "1.14.0"}  # --large: the sdist fetched
LANSER = Path(sys.executable).parent / "lanser"
NPROC = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass
class BaseRepo:
    name: str
    repo: Path
    sha: str
    modules: list[str]


def git(repo: Path, *argv: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.invalid",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.invalid"}
    return subprocess.run(["git", "-C", str(repo), *argv], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def make_base(name: str, src: Path | None, tmp: Path) -> BaseRepo:
    repo = tmp / f"{name}-repo"
    if src is None:
        for pkg in PACKAGES[name]:
            copy_installed_package(pkg, repo)
    else:
        shutil.copytree(src, repo, symlinks=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    sha = git(repo, "rev-parse", "HEAD")
    files = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*.py")
                   if ".git" not in p.parts and not p.name.startswith("test")
                   and 60 <= len(p.read_text("utf-8", errors="replace").splitlines()) <= 900)
    step = max(1, len(files) // 6)
    return BaseRepo(name, repo, sha, files[::step][:6])


def session_steps(base: BaseRepo, k: int, m: int) -> list[dict[str, Any]]:
    """Session k's M steps: write a module with a new ill-typed function, then fix it, ..."""
    texts: dict[str, str] = {}
    steps = []
    for j in range(m):
        rel = base.modules[(k + j // 2) % len(base.modules)]
        text = texts.get(rel) or (base.repo / rel).read_text("utf-8")
        fn = f"_rl_{k}_{j // 2}"
        if j % 2 == 0:
            text += f"\n\ndef {fn}() -> int:\n    return \"s{k}\"\n"
        else:
            text = text.replace(f"def {fn}() -> int:", f"def {fn}() -> str:")
        texts[rel] = text
        steps.append({"id": f"{k}.{j}", "op": "write", "path": rel, "content": text})
    return steps


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


class Serve:
    """``lanser serve --port 0`` as a process."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.port_file = tmp / f"port-{time.monotonic_ns()}"
        self.log = open(tmp / "serve.log", "ab")
        self.proc = subprocess.Popen([str(LANSER), "serve", "--port", "0", "--port-file", str(self.port_file), *args],
                                     stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env={**os.environ, "HOME": str(tmp)})
        deadline = time.monotonic() + 180
        while not self.port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"lanser serve did not start (see {tmp / 'serve.log'})")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{int(self.port_file.read_text())}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


class Peak:
    """Polls a memory figure every 0.3 s in a thread; ``value`` is the peak (bytes)."""

    def __init__(self, read: Any) -> None:
        self.read = read
        self.value = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.value = max(self.value, int(self.read()))
            except Exception:  # a poll that fails is skipped
                pass
            self._stop.wait(0.3)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.value


@dataclass
class ServiceRun:
    wall: float
    steps: int
    latencies: list[float]
    peak_rss: int
    server_starts: int
    max_servers_per_base: int
    records: dict[int, list[bytes]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"wallS": round(self.wall, 2), "steps": self.steps, "stepsPerS": round(self.steps / self.wall, 2),
                "p50Ms": round(pct(self.latencies, 0.5) * 1000, 1), "p99Ms": round(pct(self.latencies, 0.99) * 1000, 1),
                "peakRssMb": round(self.peak_rss / 2**20), "serverStarts": self.server_starts,
                "maxServersPerBase": self.max_servers_per_base}


def run_service(tmp: Path, bases: list[BaseRepo], plan: list[tuple[int, list[dict[str, Any]]]],
                *args: str) -> ServiceRun:
    serve = Serve(tmp, *args)
    try:
        client = RewardServiceClient(serve.url, retry_busy=600)

        def rss() -> int:
            r = client.pool()["rss"]
            return r["router"] + r["workers"] + r["servers"]

        peak = Peak(rss)
        most = {"servers": 0}
        stop_watch = threading.Event()

        def watch() -> None:
            while not stop_watch.is_set():
                try:
                    per: dict[str, int] = {}
                    for r in client.pool()["runners"]:
                        per[r["base"]] = per.get(r["base"], 0) + 1
                    most["servers"] = max([most["servers"], *per.values()])
                except Exception:  # a poll that fails is skipped
                    pass
                stop_watch.wait(0.3)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        latencies: list[list[float]] = [[] for _ in plan]
        records: dict[int, list[bytes]] = {}
        errors: list[BaseException] = []
        t0 = time.perf_counter()

        def rollout(i: int) -> None:
            b, steps = plan[i]
            try:
                sid = client.open_session(base=bases[b].sha, repo=str(bases[b].repo))
                recs = []
                for s in steps:
                    t = time.perf_counter()
                    recs.append(client.step_bytes(sid, s))
                    latencies[i].append(time.perf_counter() - t)
                client.close(sid)
                records[i] = recs
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=rollout, args=(i,)) for i in range(len(plan))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        stop_watch.set()
        watcher.join()
        counters = client.pool()["counters"]
        peak_rss = peak.stop()
        if errors:
            raise SystemExit(f"service run failed: {errors[0]!r}")
        return ServiceRun(wall, sum(len(s) for _, s in plan), [x for ls in latencies for x in ls], peak_rss,
                          counters.get("server_starts", 0), most["servers"], records)
    finally:
        serve.stop()


def spread(plan: list[tuple[int, list[dict[str, Any]]]], sample: int) -> list[int]:
    """``sample`` sessions taken round-robin over the bases, so a sampled baseline weighs the
    bases as the service's run does (every k-th session would miss bases: k % bases)."""
    by_base: dict[int, list[int]] = {}
    for i, (b, _) in enumerate(plan):
        by_base.setdefault(b, []).append(i)
    out: list[int] = []
    for k in range(len(plan)):
        for b in sorted(by_base):
            if k < len(by_base[b]) and len(out) < sample:
                out.append(by_base[b][k])
    return out


def tree_after(base: BaseRepo, steps: list[dict[str, Any]], upto: int, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(base.repo, dest, ignore=shutil.ignore_patterns(".git"))
    for s in steps[:upto]:
        (dest / s["path"]).write_text(s["content"], encoding="utf-8")
    return dest


def run_cold_cli(tmp: Path, bases: list[BaseRepo], plan: list[tuple[int, list[dict[str, Any]]]],
                 records: dict[int, list[bytes]], sample: int) -> dict[str, Any]:
    """(a): one cold ``pyright --outputjson`` per sampled step, nproc at a time."""
    picks = [(i, n % len(plan[i][1])) for n, i in enumerate(spread(plan, sample))]
    trees = [tree_after(bases[plan[i][0]], plan[i][1], j + 1, tmp / f"cli-{n}") for n, (i, j) in enumerate(picks)]
    peak = Peak(lambda: tree_rss(os.getpid()))
    times: list[float] = []
    equal = True

    def one(n: int) -> tuple[float, int]:
        t = time.perf_counter()
        result = run_pyright_json(trees[n], timeout=600)
        return time.perf_counter() - t, count_by_severity(result, trees[n])["errors"]

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(NPROC) as ex:
        for n, (secs, errors) in enumerate(ex.map(one, range(len(picks)))):
            times.append(secs)
            i, j = picks[n]
            equal = equal and errors == json.loads(records[i][j])["diagnostics"]["errors"]
    wall = time.perf_counter() - t0
    for t in trees:
        shutil.rmtree(t, ignore_errors=True)
    return {"sampledSteps": len(picks), "wallS": round(wall, 2), "stepsPerS": round(len(picks) / wall, 3),
            "p50Ms": round(pct(times, 0.5) * 1000), "p99Ms": round(pct(times, 0.99) * 1000),
            "peakRssMb": round(peak.stop() / 2**20), "serverStarts": len(picks), "errorCountsEqual": equal}


def run_scorers(bases: list[BaseRepo], plan: list[tuple[int, list[dict[str, Any]]]],
                records: dict[int, list[bytes]], sample: int) -> dict[str, Any]:
    """(b): one RewardScorer (its own server) per sampled session, nproc sessions at a time."""
    picks = spread(plan, sample)
    peak = Peak(lambda: tree_rss(os.getpid()))
    per_step: list[float] = []
    equal = True
    differ: list[dict[str, Any]] = []
    lock = threading.Lock()
    scratch = Path(tempfile.mkdtemp(prefix="lanser-bench-scorer-"))

    def one(i: int) -> tuple[int, list[bytes], float]:
        b, steps = plan[i]
        ws = scratch / f"s{i}"
        tree_after(bases[b], steps, 0, ws)  # the commit's tree (what the service materialises)
        t = time.perf_counter()
        with RewardScorer(str(ws)) as scorer:
            recs = [canonical_bytes(r) for r in scorer.score(steps)]
        secs = time.perf_counter() - t
        with lock:
            per_step.extend([secs / len(steps)] * len(steps))
        return i, recs, secs

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(NPROC) as ex:
        for i, recs, _ in ex.map(one, picks):
            equal = equal and recs == records[i]
            for j, (mine, theirs) in enumerate(zip(recs, records[i])):
                if mine != theirs:
                    a, b = json.loads(mine), json.loads(theirs)
                    at, x, y = first_difference(a, b)
                    differ.append({"session": i, "base": plan[i][0], "step": j + 1, "at": at,
                                   "scorer": str(x)[:300], "service": str(y)[:300],
                                   "keys": sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k)),
                                   "scorerRecord": a, "serviceRecord": b})
                    break
    wall = time.perf_counter() - t0
    shutil.rmtree(scratch, ignore_errors=True)
    steps = sum(len(plan[i][1]) for i in picks)
    return {"sampledSessions": len(picks), "wallS": round(wall, 2), "stepsPerS": round(steps / wall, 3),
            "meanStepMsInclStart": round(statistics.mean(per_step) * 1000), "peakRssMb": round(peak.stop() / 2**20),
            "serverStarts": len(picks), "recordsEqualService": equal, "differences": differ}


def first_difference(mine: Any, theirs: Any, path: str = "") -> tuple[str, Any, Any]:
    """Where two records first differ (a JSON-pointer-like path) and the two values there."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for key in sorted(mine.keys() | theirs.keys()):
            if mine.get(key) != theirs.get(key):
                return first_difference(mine.get(key), theirs.get(key), f"{path}/{key}")
    if isinstance(mine, list) and isinstance(theirs, list) and len(mine) == len(theirs):
        for k, (a, b) in enumerate(zip(mine, theirs)):
            if a != b:
                return first_difference(a, b, f"{path}/{k}")
    return path, mine, theirs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", default="8,32,128", help="comma-separated N values")
    ap.add_argument("--steps", type=int, default=8, help="steps per session (M)")
    ap.add_argument("--bases", type=int, default=4, help="how many of click, attrs, jsonschema, starlette")
    ap.add_argument("--sample", type=int, default=16, help="steps (a) and sessions (b) measured per N")
    ap.add_argument("--large", nargs="?", const="django", choices=sorted(LARGE), default=None,
                    help="add a large tree (fetched with pip) as a base: django (default) or sympy")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "lanser-bench"))
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray run")
    ap.add_argument("--ray-sessions", default=None, help="N values for Ray (default: the same)")
    ap.add_argument("--quick", action="store_true", help="2 bases, N=8, M=4, samples of 4 (make bench)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.quick:
        args.sessions, args.steps, args.bases, args.sample = "8", 4, 2, 4
    ns = [int(x) for x in args.sessions.split(",")]
    ray_ns = [int(x) for x in (args.ray_sessions or args.sessions).split(",")]
    try:
        import ray  # noqa: F401
    except ImportError:
        args.no_ray = True
    out: dict[str, Any] = {"steps": args.steps, "runs": []}
    with tempfile.TemporaryDirectory(prefix="lanser-bench-serve-") as tmp_s:
        tmp = Path(tmp_s)
        bases = [make_base(name, None, tmp) for name in list(PACKAGES)[:args.bases]]
        if args.large:
            from bench_reward_large import fetch

            bases.append(make_base(args.large, fetch(args.large, LARGE[args.large], Path(args.cache)), tmp))
        out["bases"] = [{"name": b.name, "modules": b.modules} for b in bases]
        print(f"bases: {', '.join(b.name for b in bases)}; M={args.steps} steps per session", flush=True)
        for n in ns:
            plan = [(k % len(bases), session_steps(bases[k % len(bases)], k, args.steps)) for k in range(n)]
            svc = run_service(tmp, bases, plan)
            s = svc.summary()
            a = run_cold_cli(tmp, bases, plan, svc.records, args.sample)
            b = run_scorers(bases, plan, svc.records, args.sample)
            run: dict[str, Any] = {"sessions": n, "service": s, "coldCli": a, "scorerPerSession": b,
                                   "vsColdCli": round(s["stepsPerS"] / a["stepsPerS"], 1),
                                   "vsScorer": round(s["stepsPerS"] / b["stepsPerS"], 1)}
            print(f"N={n}: service {s['stepsPerS']} steps/s (p50 {s['p50Ms']} ms, p99 {s['p99Ms']} ms, "
                  f"peak RSS {s['peakRssMb']} MB, {s['serverStarts']} server starts, at most "
                  f"{s['maxServersPerBase']} per base, wall {s['wallS']} s); (a) cold CLI {a['stepsPerS']} steps/s "
                  f"(p50 {a['p50Ms']} ms, counts equal {a['errorCountsEqual']}); (b) scorer per session "
                  f"{b['stepsPerS']} steps/s (records equal {b['recordsEqualService']}); "
                  f"x{run['vsColdCli']} vs (a), x{run['vsScorer']} vs (b)", flush=True)
            for d in b["differences"]:
                print(f"  (b) differs: {json.dumps(d)}", flush=True)
            if not args.no_ray and n in ray_ns:
                r = run_service(tmp, bases, plan, "--ray")
                rs = r.summary()
                same = all(r.records[i] == svc.records[i] for i in svc.records)
                run["ray"] = {**rs, "recordsEqualLocal": same,
                              "overheadPct": round((s["stepsPerS"] / rs["stepsPerS"] - 1) * 100, 1)}
                print(f"N={n} ray: {rs['stepsPerS']} steps/s (p50 {rs['p50Ms']} ms, p99 {rs['p99Ms']} ms, peak RSS "
                      f"{rs['peakRssMb']} MB, wall {rs['wallS']} s); records equal local {same}; throughput "
                      f"overhead vs local {run['ray']['overheadPct']}%", flush=True)
            out["runs"].append(run)
    print(machine_line())
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    ok = all(r["coldCli"]["errorCountsEqual"] and r["scorerPerSession"]["recordsEqualService"]
             and r.get("ray", {}).get("recordsEqualLocal", True) for r in out["runs"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
