"""What does MCP cost on top of the daemon?  (issue 16)

    .venv/bin/python benchmarks/bench_mcp.py [--positions N] [--rounds N] [--runs N] [--quick] [--json OUT]

Workspace: a copy of the installed ``click`` package in a temporary directory;
positions: identifier starts in ``click/core.py`` (:func:`common.identifier_positions`).
One daemon, started with ``--no-cache`` (so every request reaches the server:
no memo hits), in a private ``$LANSER_RUNTIME_DIR``, stopped at the end.

A warm ``definition`` at the same positions, three ways, all answered by that daemon:

* **MCP**: ``lanser mcp -w WS`` over stdio, one client session (the SDK's
  ``mcp.Client``), ``call_tool("definition", {"selector": ...})``: N calls in
  the same session.  Includes the JSON-RPC framing both ways, the server's
  schema check of the bundle and the client's validation against the tool's
  ``outputSchema``.
* **SDK**: ``AsyncLanserClient(daemon=True).definition(...)``: the daemon's
  socket, no MCP.
* **CLI**: ``lanser def SEL --json`` as a process on the warm daemon (Python
  start-up included), ``--runs`` of them.

Two unmeasured passes over every position on MCP and SDK, then ``--rounds``
rounds, the two sides alternating which goes first.  Bundles are checked equal
between MCP and the SDK.  Median ms and the MCP/SDK ratio; the machine line
at the end.  ``--quick``: 5 positions, 2 rounds, 3 CLI runs.
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
    Position,
    Stopwatch,
    copy_installed_package,
    identifier_positions,
    machine,
    machine_line,
    median_ms,
    ratio,
)

PACKAGE = "click"
FILE = "click/core.py"


def _lanser() -> list[str]:
    exe = Path(sys.executable).parent / "lanser"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "lanser"]


async def measure(root: Path, positions: list[Position], rounds: int) -> dict[str, Any]:
    from mcp import Client, StdioServerParameters

    from lanser import AsyncLanserClient
    from lanser.daemon import client as C
    from lanser.daemon.paths import Identity, files_for

    ident = Identity.for_options(str(root), "pyright", None)
    await asyncio.to_thread(C.start, ident, files_for(ident), idle_timeout=600, cache=False)
    sdk = AsyncLanserClient(str(root), daemon=True)
    argv = _lanser()
    params = StdioServerParameters(command=argv[0], args=[*argv[1:], "mcp", "-w", str(root)],
                                   env=dict(os.environ), cwd=str(root))
    samples: dict[str, list[float]] = {"mcp": [], "sdk": []}
    mismatches: list[str] = []
    try:
        async with Client(params, read_timeout_seconds=120) as mcp:
            async def call(side: str, pos: Position) -> dict[str, Any]:
                sel = pos.cursor_selector()
                if side == "sdk":
                    return await sdk.definition(sel)
                result = await mcp.call_tool("definition", {"selector": sel})
                if result.is_error:
                    raise SystemExit(f"MCP definition {sel} failed: {result.content[0].text}")
                return dict(result.structured_content or {})

            for _ in range(2):  # warm-up: the server's first look at the file, imports, validators
                for pos in positions:
                    a, b = await call("mcp", pos), await call("sdk", pos)
                    if a != b or a.get("status") != "ok":
                        mismatches.append(pos.cursor_selector())
            k = 0
            for _ in range(rounds):
                for pos in positions:
                    k += 1
                    for side in (("mcp", "sdk") if k % 2 else ("sdk", "mcp")):
                        with Stopwatch() as sw:
                            await call(side, pos)
                        samples[side].append(sw.seconds)
        status = await sdk.status()
    finally:
        await sdk.close()
    return {"samples": samples, "mismatches": mismatches, "status": status, "ident": ident}


def cli_processes(root: Path, positions: list[Position], runs: int) -> list[float]:
    out: list[float] = []
    for i in range(runs):
        sel = positions[i % len(positions)].cursor_selector()
        with Stopwatch() as sw:
            p = subprocess.run([*_lanser(), "-w", str(root), "--json", "def", sel], capture_output=True,
                               text=True, timeout=180, check=False)
        if p.returncode != 0:
            raise SystemExit(f"lanser def {sel} failed ({p.returncode}): {p.stderr[-2000:]}")
        out.append(sw.seconds)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--positions", type=int, default=21)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=10, help="lanser def processes on the warm daemon")
    ap.add_argument("--quick", action="store_true", help="5 positions, 2 rounds, 3 CLI runs")
    ap.add_argument("--json", dest="json_out", default=None)
    ns = ap.parse_args()
    if ns.quick:
        ns.positions, ns.rounds, ns.runs = 5, 2, 3
    from lanser.daemon import client as C
    from lanser.daemon.paths import files_for

    with tempfile.TemporaryDirectory(prefix="lbm") as tmp:
        os.environ["LANSER_RUNTIME_DIR"] = str(Path(tmp) / "run")
        os.environ.pop("LANSER_DAEMON", None)
        root = copy_installed_package(PACKAGE, Path(tmp) / "ws")
        positions = identifier_positions(root, FILE, ns.positions)
        result: dict[str, Any] = {}
        try:
            result = asyncio.run(measure(root, positions, ns.rounds))
            cli = cli_processes(root, positions, ns.runs)
        finally:
            if "ident" in result:
                C.stop(files_for(result["ident"]))

    mcp_ms, sdk_ms, cli_ms = median_ms(result["samples"]["mcp"]), median_ms(result["samples"]["sdk"]), median_ms(cli)
    n = len(result["samples"]["mcp"])
    print(f"workspace: {PACKAGE} copied from site-packages; positions: {len(positions)} in {FILE}; "
          f"daemon without memo (every request reaches the server)")
    print(f"warm `definition`, median ms per request ({ns.rounds} rounds x {len(positions)} positions "
          f"= {n} calls a side)")
    print(f"    MCP (stdio, one session, call_tool)     {mcp_ms:8.2f}")
    print(f"    SDK through the daemon (daemon=True)    {sdk_ms:8.2f}")
    print(f"    lanser def --json process, warm daemon  {cli_ms:8.1f}   ({len(cli)} runs)")
    print(f"    MCP / SDK {ratio(mcp_ms, sdk_ms):.2f}x   MCP overhead {mcp_ms - sdk_ms:+.2f} ms;   "
          f"CLI process / MCP {ratio(cli_ms, mcp_ms):.1f}x")
    print(f"    MCP and SDK bundles identical: {not result['mismatches']} {result['mismatches'][:5]}")
    print(machine_line())
    if ns.json_out:
        summary = {"machine": machine(), "positions": len(positions), "rounds": ns.rounds,
                   "mcpMs": round(mcp_ms, 3), "sdkMs": round(sdk_ms, 3), "cliProcessMs": round(cli_ms, 1),
                   "ratio": round(ratio(mcp_ms, sdk_ms), 3), "identical": not result["mismatches"]}
        Path(ns.json_out).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0 if not result["mismatches"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
