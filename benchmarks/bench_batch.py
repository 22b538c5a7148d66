"""Batch vs separate processes, and trace replay throughput.

    python benchmarks/bench_batch.py [--n 20] [--replay-n 200]

1. ``lanser batch`` with N queries (one process, one server start) against N
   separate ``lanser --json <cmd> <selector>`` processes on the same copy of
   fixtures/srcpkg: wall-clock times and their ratio.
2. A batch of ``--replay-n`` queries recorded with ``--trace-file``, then
   replayed in-process with :func:`lanser.trace.replay.replay` (no server): bundles
   per second (the median of three replays), and one ``lanser trace replay``
   process end to end.

Prints a human summary and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LANSER = [sys.executable, "-m", "lanser"]
QUERIES = [
    ("def", "src/shop/service.py@L7:C18"),
    ("refs", "py://shop.pricing#apply_discount"),
    ("hover", "src/shop/service.py@L15:C13"),
    ("symbols", "src/shop/models.py"),
    ("diag", "src/shop/broken.py"),
    ("def", "src/shop/service.py@L15:C13"),
    ("hover", "py://shop.models#Cart"),
    ("refs", "py://shop.models#Cart.total"),
]


def steps(n: int) -> str:
    return "".join(json.dumps({"id": i, "op": "query", "cmd": QUERIES[i % len(QUERIES)][0],
                               "selector": QUERIES[i % len(QUERIES)][1]}) + "\n" for i in range(n))


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*LANSER, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"lanser {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="queries for batch vs separate processes")
    ap.add_argument("--replay-n", type=int, default=200, help="queries in the recorded trace")
    opts = ap.parse_args()
    from lanser.trace.replay import replay

    with tempfile.TemporaryDirectory(prefix="lanser-bench-batch-") as tmp:
        base = Path(tmp)
        ws = base / "ws"
        shutil.copytree(ROOT / "fixtures" / "srcpkg", ws, symlinks=True)
        inp = base / "in.jsonl"
        inp.write_text(steps(opts.n))
        batch_s = timed(lambda: run(["-w", str(ws), "batch", str(inp), "-o", str(base / "out.jsonl")]))
        separate_s = 0.0
        for i in range(opts.n):
            cmd, sel = QUERIES[i % len(QUERIES)]
            separate_s += timed(lambda: run(["-w", str(ws), "--json", cmd, sel]))

        big = base / "big.jsonl"
        big.write_text(steps(opts.replay_n))
        trace = base / "trace.jsonl"
        record_s = timed(lambda: run(["-w", str(ws), "batch", str(big), "-o", str(base / "big.out"),
                                      "--trace-file", str(trace)]))
        samples = []
        for _ in range(3):
            t = time.perf_counter()
            results = replay(str(trace), str(ws))
            samples.append(time.perf_counter() - t)
            assert len(results) == opts.replay_n and all(r.status == "identical" for r in results)
        replay_s = statistics.median(samples)
        cli_replay_s = timed(lambda: run(["-w", str(ws), "trace", "replay", str(trace)]))
        trace_mb = trace.stat().st_size / 1e6

    out = {
        "bench": "batch", "n": opts.n, "batch_s": round(batch_s, 3), "separate_s": round(separate_s, 3),
        "speedup": round(separate_s / batch_s, 2),
        "per_query_ms_batch": round(1000 * batch_s / opts.n, 1),
        "per_query_ms_separate": round(1000 * separate_s / opts.n, 1),
        "replay_n": opts.replay_n, "record_s": round(record_s, 3), "trace_mb": round(trace_mb, 2),
        "replay_s": round(replay_s, 3), "replay_bundles_per_s": round(opts.replay_n / replay_s, 1),
        "cli_replay_s": round(cli_replay_s, 3),
        "machine": f"{platform.system()} {platform.machine()} python {platform.python_version()}",
    }
    print(f"batch of {opts.n}: {batch_s:.2f}s; {opts.n} separate processes: {separate_s:.2f}s "
          f"(x{out['speedup']} faster in batch)")
    print(f"replay of {opts.replay_n} recorded bundles: {replay_s:.2f}s in-process "
          f"= {out['replay_bundles_per_s']} bundles/s; `lanser trace replay` process {cli_replay_s:.2f}s; "
          f"trace {trace_mb:.2f} MB")
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
