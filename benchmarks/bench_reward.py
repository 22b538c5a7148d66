"""Benchmark: ``lanser reward`` (one warm server) vs a cold ``pyright --outputjson`` per step.

    .venv/bin/python benchmarks/bench_reward.py [--repeat N] [--keep] [--no-cli]

The installed ``click`` package is copied from site-packages into a temporary
workspace (``pyrightconfig.json``: ``include: ["click"]``), and a 14-step
trajectory of realistic edits is generated against it: patches (made with
Lanser's own git-style diff writer against the state at that step), whole-file
writes, selector edits, a server rename, queries and a failing stale patch, with
the error count rising and falling.

Timed:
- lanser (in-process): ``TrajectoryRunner`` from server start to the last
  record (snapshots of the tree for the baseline are taken outside the clock);
- lanser (CLI): ``lanser reward STEPS -o OUT`` as a subprocess on a fresh copy;
- naive: for every step, the tree at that step written to a directory (not
  timed) and ``pyright --outputjson`` run cold on it (timed).
Counts (errors, warnings, informations, byFile) are compared step by step.
Also printed: how many files each step pulled (the affected-files rule,
diagnostics/affected.py), the machine's load average before and after, and the
CLI's fixed start-up cost (interpreter + imports of ``lanser reward``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lanser.edits.diff import file_diff  # noqa: E402
from lanser.engine import Engine, Options  # noqa: E402
from lanser.pyright_cli import count_by_severity, run_pyright_json  # noqa: E402
from lanser.rewards.runner import RewardOptions, TrajectoryRunner  # noqa: E402
from lanser.rewards.steps import Step, parse_steps  # noqa: E402

CONFIG = '{"include": ["click"]}\n'


def make_workspace(dest: Path) -> Path:
    shutil.copytree(Path(click.__file__).parent, dest / "click",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "pyrightconfig.json").write_text(CONFIG, encoding="utf-8")
    return dest


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text("utf-8") for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix in (".py", ".json") and ".lanser" not in p.parts}


def build_steps(ws: Path) -> list[dict[str, Any]]:
    """Steps as the agent would send them; patches are diffs against the state at that step."""
    state = tree(ws)
    steps: list[dict[str, Any]] = []

    def patch(step_id: str, path: str, old: str, new: str) -> None:
        text = state[path]
        assert old in text, (step_id, old)
        after = text.replace(old, new, 1)
        steps.append({"id": step_id, "op": "patch", "patch": file_diff(path, text, after)})
        state[path] = after

    def write(step_id: str, path: str, content: str) -> None:
        steps.append({"id": step_id, "op": "write", "path": path, "content": content})
        state[path] = content

    steps.append({"id": "q-diag", "op": "query", "cmd": "diag"})
    patch("rename-make_str-def", "click/utils.py", "def make_str(value: t.Any) -> str:",
          "def to_text(value: t.Any) -> str:")                                  # breaks importers
    patch("bad-return", "click/formatting.py",
          "    return tuple(y for x, y in sorted(widths.items()))",
          "    return [y for x, y in sorted(widths.items())]")                   # list is not tuple
    steps.append({"id": "q-hover", "op": "query", "cmd": "hover", "selector": "py://click.utils#to_text"})
    patch("restore-make_str", "click/utils.py", "def to_text(value: t.Any) -> str:",
          "def make_str(value: t.Any) -> str:")
    stale = file_diff("click/formatting.py", state["click/formatting.py"].replace(
        "[y for x, y in sorted(widths.items())]", "tuple(y for x, y in sorted(widths.items()))"),
        state["click/formatting.py"].replace("[y for x, y in sorted(widths.items())]", "()"))
    steps.append({"id": "stale-patch", "op": "patch", "patch": stale})               # does not apply
    steps.append({"id": "edit-fix-return", "op": "edit", "selector": "py://click.formatting#measure_table:body",
                  "text": "widths: dict[int, int] = {}\n\nfor row in rows:\n    for idx, col in "
                          "enumerate(row):\n        widths[idx] = max(widths.get(idx, 0), term_len(col))\n\n"
                          "return tuple(y for x, y in sorted(widths.items()))"})
    state["click/formatting.py"] = state["click/formatting.py"].replace(
        "[y for x, y in sorted(widths.items())]", "tuple(y for x, y in sorted(widths.items()))")
    write("new-module", "click/extras.py",
          "from click.utils import make_str\n\n\ndef shout(value: object) -> str:\n"
          "    return make_str(value).uper()\n\n\ndef width(text: str) -> int:\n    return len(text) + \"1\"\n")
    patch("fix-typo", "click/extras.py", "make_str(value).uper()", "make_str(value).upper()")
    steps.append({"id": "rename-make_str", "op": "rename", "selector": "py://click.utils#make_str",
                  "newName": "make_text"})
    state.update({p: re.sub(r"\bmake_str\b", "make_text", t) for p, t in state.items()})  # what it does
    steps.append({"id": "edit-width", "op": "edit", "selector": "py://click.extras#width:body",
                  "text": "return len(text) + 1"})
    state["click/extras.py"] = state["click/extras.py"].replace('len(text) + "1"', "len(text) + 1")
    patch("drop-import", "click/extras.py", "from click.utils import make_text\n", "")
    steps.append({"id": "q-refs", "op": "query", "cmd": "refs", "selector": "py://click.formatting#measure_table"})
    steps.append({"id": "reset", "op": "reset"})
    return steps


async def run_lanser(ws: Path, items: list[Any]) -> tuple[float, float, list[dict[str, Any]],
                                                         list[dict[str, str]], list[str]]:
    """(total seconds, start seconds, records, tree after each step, files pulled per step)."""
    engine = Engine(Options(workspace=str(ws)))
    trees: list[dict[str, str]] = []
    records = []
    pulled: list[str] = []
    elapsed = 0.0
    try:
        t0 = time.perf_counter()
        runner = TrajectoryRunner(engine, RewardOptions(by_file="all"))  # the whole table, as pyright lists it
        await runner.start()
        start = time.perf_counter() - t0
        elapsed += start
        n_files = len(runner.snapshot.files)
        for item in items:
            before = runner.snapshot
            t0 = time.perf_counter()
            records.append(await runner.run_step(item))
            elapsed += time.perf_counter() - t0
            trees.append(tree(ws))  # for the baseline, not timed
            if runner.snapshot is before:
                pulled.append("-")
            else:
                n_files = len(runner.snapshot.files)
                pulled.append(f"{n_files}/{n_files}" if runner.last_pulled is None
                              else f"{len(runner.last_pulled)}/{n_files}")
    finally:
        await engine.close()
    return elapsed, start, records, trees, pulled


def cli_startup() -> float:
    """Seconds for a fresh interpreter to import what ``lanser reward`` needs (best of 3)."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import lanser.cli, lanser.commands.reward"], check=True)
        best = min(best, time.perf_counter() - t0)
    return best


def materialize(dest: Path, files: dict[str, str]) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    for rel, text in files.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(text, encoding="utf-8")


def run_cli(base: Path, steps_file: Path, dest: Path) -> tuple[float, int, list[dict[str, Any]]]:
    """(seconds, exit code, records) of ``lanser reward`` as a subprocess on a fresh copy."""
    ws = Path(shutil.copytree(base, dest))
    out = dest.with_suffix(".jsonl")
    t0 = time.perf_counter()
    proc = subprocess.run([str(Path(sys.executable).parent / "lanser"), "reward", str(steps_file),
                           "-w", str(ws), "--by-file", "all", "-o", str(out)], capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    records = [json.loads(x) for x in out.read_text().splitlines()] if proc.returncode == 0 else []
    return elapsed, proc.returncode, records


def run_naive(naive_dir: Path, trees: list[dict[str, str]]) -> tuple[float, list[dict[str, Any]]]:
    """(seconds, counts per step) of a cold ``pyright --outputjson`` on each step's tree."""
    total = 0.0
    counts = []
    for files in trees:
        materialize(naive_dir, files)  # not timed
        t0 = time.perf_counter()
        counts.append(count_by_severity(run_pyright_json(naive_dir), naive_dir))
        total += time.perf_counter() - t0
    return total, counts


def _stats(xs: list[float]) -> str:
    return f"best {min(xs):.2f} s, median {statistics.median(xs):.2f} s" if len(xs) > 1 else f"{xs[0]:.2f} s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory and print it")
    ap.add_argument("--no-cli", action="store_true", help="skip the `lanser reward` CLI subprocess run")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds of (in-process, CLI, naive), interleaved; best and median are reported")
    args = ap.parse_args()
    keep = args.keep
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench-reward-"))
    try:
        base = make_workspace(tmp / "base")
        steps = build_steps(base)
        steps_file = tmp / "steps.jsonl"
        steps_file.write_text("".join(json.dumps(s) + "\n" for s in steps), encoding="utf-8")
        items = parse_steps(steps_file.read_text("utf-8"))
        assert all(isinstance(i, Step) for i in items)

        t_lanser: list[float] = []
        t_starts: list[float] = []
        t_cli: list[float] = []
        t_naive: list[float] = []
        equal = cli_ok = cli_same = True
        records: list[dict[str, Any]] = []
        trees: list[dict[str, str]] = []
        pulled: list[str] = []
        naive_counts: list[dict[str, Any]] = []
        for r in range(max(1, args.repeat)):
            ws = Path(shutil.copytree(base, tmp / f"lanser-{r}"))
            t, t_start, recs, trs, pl = asyncio.run(run_lanser(ws, items))
            t_lanser.append(t)
            t_starts.append(t_start)
            if r == 0:
                records, trees, pulled = recs, trs, pl
            equal &= [x["diagnostics"] for x in recs] == [x["diagnostics"] for x in records]
            if not args.no_cli:
                t, code, cli_records = run_cli(base, steps_file, tmp / f"cli-{r}")
                t_cli.append(t)
                cli_ok &= code == 0
                cli_same &= [x["diagnostics"] for x in cli_records] == [x["diagnostics"] for x in records]
            t, naive_counts = run_naive(tmp / "naive", trees)
            t_naive.append(t)
            equal &= naive_counts == [x["diagnostics"] for x in records]
        t_import = cli_startup() if not args.no_cli else float("nan")
        load_after = os.getloadavg()

        print(f"machine: {platform.system()} {platform.machine()}, Python {platform.python_version()}, "
              f"click {len([f for f in trees[0] if f.endswith('.py')])} files")
        print(f"load average (1/5/15 min) before: {'/'.join(f'{x:.2f}' for x in load_before)}, "
              f"after: {'/'.join(f'{x:.2f}' for x in load_after)} ({os.cpu_count()} CPUs)")
        print(f"{'step':>4} {'id':<22} {'op':<7} {'status':<6} {'pulled':>6} {'lanser':>6} {'pyright':>7} "
              f"{'r':>6}  equal")
        for rec, counts, pl in zip(records, naive_counts, pulled):
            same = counts == rec["diagnostics"]
            print(f"{rec['step']:>4} {rec['id']:<22} {rec['op']:<7} {rec['status']:<6} {pl:>6} "
                  f"{rec['diagnostics']['errors']:>6} {counts['errors']:>7} {rec['processReward']['r']:>6}  {same}")
        n = len(records)
        rounds = f" over {len(t_lanser)} interleaved rounds" if len(t_lanser) > 1 else ""
        print(f"steps: {n}{rounds}")
        print(f"lanser reward (in-process runner, incl. server start {_stats(t_starts)}): {_stats(t_lanser)}")
        if not args.no_cli:
            print(f"lanser reward (CLI subprocess, incl. interpreter start): {_stats(t_cli)} "
                  f"(exit codes 0: {cli_ok}); a bare interpreter importing the CLI's modules: {t_import:.2f} s")
        print(f"naive: cold pyright --outputjson per step: {_stats(t_naive)} ({min(t_naive) / n:.2f} s/step best)")
        ratio = f"{min(t_naive) / min(t_lanser):.1f}x in-process"
        if not args.no_cli:
            ratio += f", {min(t_naive) / min(t_cli):.1f}x CLI"
        if len(t_lanser) > 1:
            ratio += (f" (medians: {statistics.median(t_naive) / statistics.median(t_lanser):.1f}x"
                      + (f", {statistics.median(t_naive) / statistics.median(t_cli):.1f}x" if t_cli else "") + ")")
        print(f"ratio naive / lanser (best): {ratio}")
        print(f"counts equal on every step and round: {equal}; CLI records' counts equal: {cli_same}")
        return 0 if equal and cli_ok and cli_same else 1
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
