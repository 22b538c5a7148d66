"""What does the warm daemon buy?  (issue 7)

    .venv/bin/python benchmarks/bench_daemon.py [--runs N] [--rounds N] [--json OUT]

Workspace: a copy of the installed ``click`` package in a temporary directory;
positions: identifier starts in ``click/core.py`` (:func:`common.identifier_positions`).
Daemons run in a private ``$LANSER_RUNTIME_DIR`` and are stopped at the end.

(a) ``lanser def SEL --json`` as a process: ``--daemon never`` (Python start-up,
    server start, one query, shutdown) vs a warm daemon started beforehand.
    Every daemon run asks a different position, so the memo never answers
    (a memo-hit row is printed separately).  Median ms; target ratio >= 10.
(b) warm query latency, def/refs/hover at every position: the SDK
    (``AsyncLanserClient``, in-process, ``cache=False``) and the SDK through a
    daemon started with ``--no-cache`` vs a bare pygls ``LanguageClient``
    (plus, for reference, an in-process SDK with its memo on, where every
    measured query repeats a warm-up one)
    (:class:`common.BareClient`) on its own copy of the same pinned server.
    Two unmeasured passes, then ``--rounds`` rounds, sides alternating.
    Median ms; target SDK/bare <= 1.2.  Bundles are checked equal between the
    in-process and daemon SDKs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import (  # noqa: E402
    BareClient,
    Position,
    Stopwatch,
    copy_installed_package,
    identifier_positions,
    lanser_setup,
    machine,
    machine_line,
    median_ms,
    ratio,
)

PACKAGE = "click"
FILE = "click/core.py"
CMDS = ("def", "refs", "hover")
PROCESS_TARGET = 10.0
WARM_TARGET = 1.2


def _lanser(root: Path, *args: str) -> list[str]:
    exe = Path(sys.executable).parent / "lanser"
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "lanser"]
    return base + ["-w", str(root), *args]


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    with Stopwatch() as sw:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr[-2000:]}")
    return sw.seconds, p.stdout


def processes(root: Path, positions: list[Position], runs: int, env: dict[str, str]) -> dict[str, Any]:
    """(a): cold processes vs processes answered by a warm daemon."""
    cold: list[float] = []
    outputs: dict[str, str] = {}
    for i in range(runs + 1):
        pos = positions[i % len(positions)]
        s, out = _timed(_lanser(root, "--daemon", "never", "--json", "def", pos.cursor_selector()), env)
        outputs[pos.cursor_selector()] = out
        if i:
            cold.append(s)
    _timed(_lanser(root, "daemon", "start", "--idle-timeout", "600"), env)
    warm: list[float] = []
    same = True
    try:
        for i, pos in enumerate(positions):  # every position once: no memo hits
            s, out = _timed(_lanser(root, "--json", "def", pos.cursor_selector()), env)
            if i:  # the first one pays for the server's first look at the file
                warm.append(s)
            if pos.cursor_selector() in outputs:
                same &= outputs[pos.cursor_selector()] == out
        memo = [_timed(_lanser(root, "--json", "def", positions[1].cursor_selector()), env)[0] for _ in range(10)]
        status = json.loads(_timed(_lanser(root, "--json", "daemon", "status"), env)[1])
    finally:
        _timed(_lanser(root, "daemon", "stop"), env)
    return {"cold": cold, "warm": warm, "memo": memo, "identical": same, "status": status}


async def warm_queries(root: Path, setup: dict[str, Any], positions: list[Position], rounds: int) -> dict[str, Any]:
    """(b): SDK in-process and via daemon vs a bare pygls client, all warm."""
    from lanser import AsyncLanserClient
    from lanser.daemon import client as C
    from lanser.daemon.paths import Identity

    ident = Identity.for_options(str(root), "pyright", None)
    await asyncio.to_thread(C.start, ident, idle_timeout=600, cache=False)
    sdk = AsyncLanserClient(str(root), cache=False)
    memo = AsyncLanserClient(str(root))  # cache on: after the warm-up passes every query is a memo hit
    via = AsyncLanserClient(str(root), daemon=True)
    bare = BareClient(setup)
    await bare.start()
    sides = ("sdk", "daemon", "bare", "memo")
    try:
        await bare.wait_tracked()
        bare.did_open(FILE)

        async def call(side: str, cmd: str, pos: Position) -> Any:
            if side == "bare":
                return await bare.ask(cmd, pos.rel, pos.line, pos.col16)
            client = {"sdk": sdk, "daemon": via, "memo": memo}[side]
            return await client.run(cmd, pos.cursor_selector())

        mismatches = []
        for _ in range(2):
            for pos in positions:
                for cmd in CMDS:
                    a, b = await call("sdk", cmd, pos), await call("daemon", cmd, pos)
                    await call("bare", cmd, pos)
                    await call("memo", cmd, pos)
                    if a != b or a["status"] != "ok":
                        mismatches.append(f"{cmd} {pos.cursor_selector()}")
        samples: dict[str, list[float]] = {s: [] for s in sides}
        per_cmd: dict[tuple[str, str], list[float]] = {}
        k = 0
        for _ in range(rounds):
            for pos in positions:
                for cmd in CMDS:
                    k += 1
                    order = sides[k % 4:] + sides[:k % 4]
                    for side in order:
                        with Stopwatch() as sw:
                            await call(side, cmd, pos)
                        samples[side].append(sw.seconds)
                        per_cmd.setdefault((side, cmd), []).append(sw.seconds)
        status = await via.status()
    finally:
        await bare.stop()
        await sdk.close()
        await memo.close()
        await via.close()
        await asyncio.to_thread(C.stop, C.files_for(ident))
    return {"samples": samples, "perCmd": per_cmd, "mismatches": mismatches, "status": status}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="cold lanser processes (after one unmeasured)")
    ap.add_argument("--positions", type=int, default=21)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", dest="json_out", default=None)
    ns = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lbd") as tmp:
        runtime = Path(tmp) / "run"
        os.environ["LANSER_RUNTIME_DIR"] = str(runtime)
        os.environ.pop("LANSER_DAEMON", None)
        root = copy_installed_package(PACKAGE, Path(tmp) / "ws")
        positions = identifier_positions(root, FILE, ns.positions)
        env = dict(os.environ)
        a = processes(root, positions, ns.runs, env)
        b = asyncio.run(warm_queries(root, lanser_setup(root), positions, ns.rounds))

    print(machine_line())
    print(f"workspace: {PACKAGE} copied from site-packages; positions: {len(positions)} in {FILE}")
    print()
    cm, wm, mm = median_ms(a["cold"]), median_ms(a["warm"]), median_ms(a["memo"])
    print(f"(a) `lanser def SEL --json` as a process, median ms (target speed-up >= {PROCESS_TARGET:g}x)")
    print(f"    no daemon ({len(a['cold'])} runs)            {cm:8.0f}")
    print(f"    warm daemon, new positions ({len(a['warm'])} runs) {wm:8.1f}   speed-up {ratio(cm, wm):6.1f}x")
    print(f"    warm daemon, memo hit ({len(a['memo'])} runs)     {mm:8.1f}   speed-up {ratio(cm, mm):6.1f}x")
    st = a["status"]
    print(f"    same stdout with and without the daemon: {a['identical']}; daemon rss {st.get('rssKb')} kB, "
          f"server rss {st.get('serverProcess', {}).get('rssKb')} kB")
    print()
    print(f"(b) warm queries, median ms per request, {ns.rounds} rounds x {len(positions)} positions x "
          f"{len(CMDS)} commands (target SDK/bare <= {WARM_TARGET})")
    print(f"    {'cmd':<6} {'sdk':>8} {'daemon':>8} {'bare':>8} {'sdk/bare':>9} {'daemon/bare':>12} "
          f"{'sdk memo hit':>13}")
    summary: dict[str, Any] = {"machine": machine(), "process": {
        "noDaemonMs": round(cm, 1), "warmDaemonMs": round(wm, 1), "memoHitMs": round(mm, 1),
        "speedup": round(ratio(cm, wm), 2), "identical": a["identical"]}, "warm": {}}
    for cmd in (*CMDS, "all"):
        get = (lambda s: b["samples"][s]) if cmd == "all" else (lambda s: b["perCmd"][(s, cmd)])
        sm, dm, bm, hm = (median_ms(get(side)) for side in ("sdk", "daemon", "bare", "memo"))
        summary["warm"][cmd] = {"sdkMs": round(sm, 3), "daemonMs": round(dm, 3), "bareMs": round(bm, 3),
                                "sdkRatio": round(ratio(sm, bm), 3), "daemonRatio": round(ratio(dm, bm), 3),
                                "memoHitMs": round(hm, 3)}
        print(f"    {cmd:<6} {sm:>8.2f} {dm:>8.2f} {bm:>8.2f} {ratio(sm, bm):>9.2f} {ratio(dm, bm):>12.2f} "
              f"{hm:>13.3f}")
    print(f"    in-process and daemon bundles identical: {not b['mismatches']} {b['mismatches'][:5]}")
    if ns.json_out:
        Path(ns.json_out).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
