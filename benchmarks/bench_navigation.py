"""What does Lanser cost over a bare LSP client?  (issue 2)

    .venv/bin/python benchmarks/bench_navigation.py [--rounds N] [--runs N] [--profile] [--json OUT]

Workspace: a copy of the installed ``click`` package (from this interpreter's
site-packages) in a temporary directory.  Positions: 10 identifier starts
from ``click/core.py`` and 10 from ``click/decorators.py``, chosen
deterministically (:func:`common.identifier_positions`).

(a) warm: ``def``/``refs``/``hover`` at every position, through Lanser's
    in-process ``Engine.run(cmd, selector)`` and through a bare pygls
    ``LanguageClient`` (:class:`common.BareClient`) talking to its own copy of
    the same pinned server binary, initialized the same way.  Both are warm:
    servers started, the workspace enumerated, both files opened, two
    unmeasured passes over every request.  Then ``--rounds`` measured rounds;
    the two sides alternate which goes first.  Median milliseconds per request
    and the ratio Lanser/bare (target <= 1.2).  ``--profile`` adds a cProfile
    of one more Lanser pass.
(b) cold: ``lanser def FILE@L..:C.. --json`` as a process vs
    ``python benchmarks/common.py bare-first-def`` (start the server,
    initialize, didOpen, one definition, clean shutdown) as a process: Python
    start-up counted in both.  Median seconds over ``--runs`` runs after one
    unmeasured run each, and the ratio (target <= 1.3).

Both sides must give the same number of locations for every def/refs: a
mismatch is printed (it would mean the two did different work).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import shutil
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
    count_locations,
    identifier_positions,
    lanser_setup,
    machine,
    machine_line,
    median_ms,
    ratio,
)

from lanser.engine import Engine, Options  # noqa: E402

PACKAGE = "click"
FILES = ("click/core.py", "click/decorators.py")
PER_FILE = 10
CMDS = ("def", "refs", "hover")
WARM_TARGET = 1.2
COLD_TARGET = 1.3
_FACT = {"def": "definitions", "refs": "references"}


# -- (a) warm -------------------------------------------------------------------------

async def _lanser_call(engine: Engine, cmd: str, pos: Position) -> dict[str, Any]:
    return await engine.run(cmd, pos.cursor_selector())


async def _bare_call(bare: BareClient, cmd: str, pos: Position) -> Any:
    return await bare.ask(cmd, pos.rel, pos.line, pos.col16)


def _lanser_count(cmd: str, bundle: dict[str, Any]) -> int:
    if bundle["status"] != "ok":
        raise SystemExit(f"lanser {cmd} failed: {bundle['error']}")
    facts = bundle["facts"]
    return len(facts[_FACT[cmd]]) if cmd in _FACT else int(facts["hover"] is not None)


def _bare_count(cmd: str, result: Any) -> int:
    return count_locations(result) if cmd in _FACT else int(result is not None)


async def warm(root: Path, setup: dict[str, Any], positions: list[Position], rounds: int,
               profile: bool) -> dict[str, Any]:
    engine = Engine(Options(workspace=str(root)))
    bare = BareClient(setup)
    await engine.server()
    await bare.start()
    try:
        await bare.wait_tracked()
        for rel in FILES:
            bare.did_open(rel)
        counts: dict[tuple[str, int], tuple[int, int]] = {}
        def_paths: dict[int, list[str]] = {}
        for _ in range(2):  # warm-up: both files checked, caches filled on both sides
            for i, pos in enumerate(positions):
                for cmd in CMDS:
                    b = await _lanser_call(engine, cmd, pos)
                    r = await _bare_call(bare, cmd, pos)
                    counts[(cmd, i)] = (_lanser_count(cmd, b), _bare_count(cmd, r))
                    if cmd == "def":
                        def_paths[i] = [loc["path"] for loc in b["facts"]["definitions"]]
        samples: dict[tuple[str, str], list[float]] = {(s, c): [] for s in ("lanser", "bare") for c in CMDS}
        k = 0
        for _ in range(rounds):
            for pos in positions:
                for cmd in CMDS:
                    k += 1
                    for side in (("lanser", "bare") if k % 2 else ("bare", "lanser")):
                        with Stopwatch() as sw:
                            if side == "lanser":
                                await _lanser_call(engine, cmd, pos)
                            else:
                                await _bare_call(bare, cmd, pos)
                        samples[(side, cmd)].append(sw.seconds)
        breakdown = await _breakdown(engine, positions)
        prof_text = None
        if profile:
            prof = cProfile.Profile()
            prof.enable()
            for pos in positions:
                for cmd in CMDS:
                    await _lanser_call(engine, cmd, pos)
            prof.disable()
            prof_text = _profile_text(prof)
        # (b) asks the first core.py position whose definition is elsewhere in the package.
        cold_pos = next((p for i, p in enumerate(positions) if p.rel == FILES[0]
                         and any(path.startswith(PACKAGE + "/") for path in def_paths[i])), positions[0])
    finally:
        await bare.stop()
        await engine.close()
    mismatches = [f"{cmd} {positions[i].cursor_selector()} ({positions[i].name}): lanser {n} vs bare {m}"
                  for (cmd, i), (n, m) in sorted(counts.items()) if n != m]
    return {"samples": samples, "mismatches": mismatches, "profile": prof_text, "cold_pos": cold_pos,
            "breakdown": breakdown}


# The stages of one Lanser request, as Engine.run goes through them.
_STAGES = (("resolve", "selector parse + structural resolution (reads the file)"),
           ("sync", "read the file again, didOpen/didChange only if it changed"),
           ("request", "the server round trip (Session.request)"),
           ("bundle", "bundle assembly + JCS bundleId"))


async def _breakdown(engine: Engine, positions: list[Position]) -> dict[str, dict[str, list[float]]]:
    """One extra pass with the stages of Engine.run timed: where Lanser's time goes.

    The stage methods are wrapped for this pass only and restored afterwards.
    """
    from lanser.engine import Context

    assert engine.session is not None
    out: dict[str, dict[str, list[float]]] = {cmd: {name: [] for name, _ in _STAGES} for cmd in CMDS}
    current: list[str] = [CMDS[0]]

    def timed(fn: Any, stage: str) -> Any:
        if asyncio.iscoroutinefunction(fn):
            async def wrapper_async(*a: Any, **k: Any) -> Any:
                with Stopwatch() as sw:
                    result = await fn(*a, **k)
                out[current[0]][stage].append(sw.seconds)
                return result
            return wrapper_async

        def wrapper(*a: Any, **k: Any) -> Any:
            with Stopwatch() as sw:
                result = fn(*a, **k)
            out[current[0]][stage].append(sw.seconds)
            return result
        return wrapper

    saved = {name: Context.__dict__[name] for name in ("resolve", "sync_target", "bundle")}
    session = engine.session
    try:
        Context.resolve = timed(saved["resolve"], "resolve")  # type: ignore[method-assign]
        Context.sync_target = timed(saved["sync_target"], "sync")  # type: ignore[method-assign]
        Context.bundle = timed(saved["bundle"], "bundle")  # type: ignore[method-assign]
        session.request = timed(session.request, "request")  # type: ignore[method-assign]
        for pos in positions:
            for cmd in CMDS:
                current[0] = cmd
                await _lanser_call(engine, cmd, pos)
    finally:
        for name, fn in saved.items():
            setattr(Context, name, fn)
        del session.request  # back to the class's method
    return out


def _profile_text(prof: cProfile.Profile) -> str:
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(20)
    return out.getvalue()


# -- (b) cold ---------------------------------------------------------------------------

def _lanser_argv(root: Path, pos: Position) -> list[str]:
    exe = Path(sys.executable).parent / "lanser"
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "lanser"]
    return base + ["def", pos.cursor_selector(), "-w", str(root), "--json", "--daemon", "never"]


def _run(argv: list[str]) -> tuple[float, str]:
    with Stopwatch() as sw:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return sw.seconds, proc.stdout


def cold(root: Path, setup: dict[str, Any], pos: Position, runs: int, tmp: Path) -> dict[str, Any]:
    job = tmp / "bare_job.json"
    job.write_text(json.dumps({"setup": setup, "rel": pos.rel, "line": pos.line, "character": pos.col16}),
                   encoding="utf-8")
    lanser_argv = _lanser_argv(root, pos)
    bare_argv = [sys.executable, str(HERE / "common.py"), "bare-first-def", str(job)]
    times: dict[str, list[float]] = {"lanser": [], "bare": []}
    answered: list[float] = []
    found: dict[str, int] = {}
    for i in range(runs + 1):  # run 0 is unmeasured (file caches)
        for side in (("lanser", "bare") if i % 2 else ("bare", "lanser")):
            seconds, out = _run(lanser_argv if side == "lanser" else bare_argv)
            if side == "lanser":
                found["lanser"] = len(json.loads(out)["facts"]["definitions"])
            else:
                rec = json.loads(out)
                found["bare"] = rec["locations"]
                if i:
                    answered.append(rec["answeredS"])
            if i:
                times[side].append(seconds)
    return {"times": times, "bare_answered": answered, "found": found, "selector": pos.cursor_selector(),
            "argv": {"lanser": lanser_argv, "bare": bare_argv[:3] + ["JOB.json"]}}


# -- report --------------------------------------------------------------------------------

def _workspace_size(root: Path) -> tuple[int, int]:
    files = sorted(root.rglob("*.py"))
    return len(files), sum(len(p.read_text(encoding="utf-8").splitlines()) for p in files)


def report(w: dict[str, Any], c: dict[str, Any] | None, meta: dict[str, Any]) -> dict[str, Any]:
    print(machine_line())
    print(f"workspace: {meta['package']} {meta['version']} copied from site-packages "
          f"({meta['files']} .py files, {meta['lines']} lines); server: {meta['server']}")
    print(f"positions: {len(meta['positions'])} ({', '.join(f'{PER_FILE} in {f}' for f in FILES)})")
    print()
    print(f"(a) warm, median ms per request, {meta['rounds']} rounds x {len(meta['positions'])} positions "
          f"(target lanser/bare <= {WARM_TARGET})")
    print(f"    {'cmd':<6} {'lanser':>9} {'bare':>9} {'ratio':>7} {'+ms':>7}")
    summary: dict[str, Any] = {"warm": {}, "cold": {}}
    rows = [(cmd, w["samples"][("lanser", cmd)], w["samples"][("bare", cmd)]) for cmd in CMDS]
    rows.append(("all", sum((r[1] for r in rows), []), sum((r[2] for r in rows), [])))
    for cmd, ls, bs in rows:
        lm, bm = median_ms(ls), median_ms(bs)
        summary["warm"][cmd] = {"lanserMs": round(lm, 3), "bareMs": round(bm, 3), "ratio": round(ratio(lm, bm), 3),
                                "n": len(ls)}
        print(f"    {cmd:<6} {lm:>9.2f} {bm:>9.2f} {ratio(lm, bm):>7.2f} {lm - bm:>7.2f}")
    if w["mismatches"]:
        print("    location-count mismatches (lanser vs bare):")
        for line in w["mismatches"]:
            print("      " + line)
    else:
        print("    every def/refs/hover gave the same number of locations on both sides")
    print()
    print("    where a warm Lanser request spends its time (median ms per stage, one extra pass):")
    print(f"    {'stage':<8} " + " ".join(f"{cmd:>7}" for cmd in CMDS))
    summary["warmStages"] = {}
    for stage, what in _STAGES:
        meds = [median_ms(w["breakdown"][cmd][stage]) for cmd in CMDS]
        summary["warmStages"][stage] = {cmd: round(m, 3) for cmd, m in zip(CMDS, meds)}
        print(f"    {stage:<8} " + " ".join(f"{m:>7.2f}" for m in meds) + f"   {what}")
    print()
    if c is not None:
        _report_cold(c, summary)
    if w["profile"]:
        print()
        print(f"cProfile of one extra warm Lanser pass ({len(meta['positions']) * len(CMDS)} requests):")
        print(w["profile"])
    return summary


def _report_cold(c: dict[str, Any], summary: dict[str, Any]) -> None:
    lm, bm = median_ms(c["times"]["lanser"]), median_ms(c["times"]["bare"])
    ans = median_ms(c["bare_answered"])
    summary["cold"] = {"lanserMs": round(lm, 1), "bareMs": round(bm, 1), "ratio": round(ratio(lm, bm), 3),
                       "bareAnsweredMs": round(ans, 1), "runs": len(c["times"]["lanser"]),
                       "selector": c["selector"], "found": c["found"]}
    print(f"(b) cold process, median ms over {len(c['times']['lanser'])} runs, `def {c['selector']}` "
          f"(target lanser/bare <= {COLD_TARGET})")
    print(f"    {'lanser CLI':>12} {'bare script':>12} {'ratio':>7}   (bare: first answer at {ans:.0f} ms "
          f"inside its process; both include clean shutdown)")
    print(f"    {lm:>12.0f} {bm:>12.0f} {ratio(lm, bm):>7.2f}")
    print(f"    definitions found: lanser {c['found'].get('lanser')}, bare {c['found'].get('bare')}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="measured warm rounds (default 5)")
    ap.add_argument("--runs", type=int, default=5, help="measured cold runs per side (default 5)")
    ap.add_argument("--profile", action="store_true", help="cProfile one extra warm Lanser pass")
    ap.add_argument("--warm-only", action="store_true", help="skip (b), the cold processes")
    ap.add_argument("--json", metavar="OUT", help="also write the medians as JSON")
    args = ap.parse_args(argv)

    import importlib.metadata

    from lanser.server.registry import server_spec

    tmp = Path(tempfile.mkdtemp(prefix="lanser-bench-nav-"))
    try:
        root = copy_installed_package(PACKAGE, tmp / "ws")
        positions = [p for rel in FILES for p in identifier_positions(root, rel, PER_FILE)]
        setup = lanser_setup(root)
        w = asyncio.run(warm(root, setup, positions, args.rounds, args.profile))
        c = None if args.warm_only else cold(root, setup, w["cold_pos"], args.runs, tmp)
        files, lines = _workspace_size(root)
        spec = server_spec()
        meta = {"package": PACKAGE, "version": importlib.metadata.version(PACKAGE), "files": files,
                "lines": lines, "server": f"{spec.name} {spec.version}", "rounds": args.rounds,
                "positions": [f"{p.cursor_selector()} {p.name}" for p in positions]}
        summary = report(w, c, meta)
        if args.json:
            meta["machine"] = machine()
            Path(args.json).write_text(json.dumps({"meta": meta, **summary}, indent=2) + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
