"""Benchmark: ``lanser reward`` (one warm server) vs a cold ``pyright --outputjson`` per step.

    .venv/bin/python benchmarks/bench_reward.py [--keep]

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
"""

from __future__ import annotations

import asyncio
import json
import platform
import re
import shutil
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


async def run_lanser(ws: Path, items: list[Any]) -> tuple[float, list[dict[str, Any]], list[dict[str, str]]]:
    engine = Engine(Options(workspace=str(ws)))
    trees: list[dict[str, str]] = []
    records = []
    elapsed = 0.0
    try:
        t0 = time.perf_counter()
        runner = TrajectoryRunner(engine, RewardOptions())
        await runner.start()
        elapsed += time.perf_counter() - t0
        for item in items:
            t0 = time.perf_counter()
            records.append(await runner.run_step(item))
            elapsed += time.perf_counter() - t0
            trees.append(tree(ws))  # for the baseline, not timed
    finally:
        await engine.close()
    return elapsed, records, trees


def materialize(dest: Path, files: dict[str, str]) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    for rel, text in files.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(text, encoding="utf-8")


def main() -> int:
    keep = "--keep" in sys.argv
    tmp = Path(tempfile.mkdtemp(prefix="bench-reward-"))
    try:
        base = make_workspace(tmp / "base")
        steps = build_steps(base)
        steps_file = tmp / "steps.jsonl"
        steps_file.write_text("".join(json.dumps(s) + "\n" for s in steps), encoding="utf-8")
        items = parse_steps(steps_file.read_text("utf-8"))
        assert all(isinstance(i, Step) for i in items)

        ws = Path(shutil.copytree(base, tmp / "lanser"))
        t_lanser, records, trees = asyncio.run(run_lanser(ws, items))

        cli_ws = Path(shutil.copytree(base, tmp / "cli"))
        t0 = time.perf_counter()
        proc = subprocess.run([str(Path(sys.executable).parent / "lanser"), "reward", str(steps_file),
                               "-w", str(cli_ws), "-o", str(tmp / "out.jsonl")], capture_output=True, text=True)
        t_cli = time.perf_counter() - t0
        cli_ok = proc.returncode == 0

        naive_dir = tmp / "naive"
        t_naive = 0.0
        equal = True
        rows = []
        for rec, files in zip(records, trees):
            materialize(naive_dir, files)
            t0 = time.perf_counter()
            counts = count_by_severity(run_pyright_json(naive_dir), naive_dir)
            t_naive += time.perf_counter() - t0
            same = counts == rec["diagnostics"]
            equal &= same
            rows.append((rec["step"], rec["id"], rec["op"], rec["status"], rec["diagnostics"]["errors"],
                         counts["errors"], rec["processReward"]["r"], same))
        cli_records = [json.loads(x) for x in (tmp / "out.jsonl").read_text().splitlines()] if cli_ok else []
        cli_same = [r["diagnostics"] for r in cli_records] == [r["diagnostics"] for r in records]

        print(f"machine: {platform.system()} {platform.machine()}, Python {platform.python_version()}, "
              f"click {len([f for f in trees[0] if f.endswith('.py')])} files")
        print(f"{'step':>4} {'id':<22} {'op':<7} {'status':<6} {'lanser':>6} {'pyright':>7} {'r':>6}  equal")
        for step, sid, op, status, le, pe, r, same in rows:
            print(f"{step:>4} {sid:<22} {op:<7} {status:<6} {le:>6} {pe:>7} {r:>6}  {same}")
        n = len(records)
        print(f"steps: {n}")
        print(f"lanser reward (in-process runner, incl. server start): {t_lanser:.2f} s "
              f"({n / t_lanser:.2f} steps/s)")
        print(f"lanser reward (CLI subprocess, incl. interpreter start): {t_cli:.2f} s (exit {proc.returncode})")
        print(f"naive: cold pyright --outputjson per step: {t_naive:.2f} s ({t_naive / n:.2f} s/step)")
        print(f"ratio naive / lanser: {t_naive / t_lanser:.1f}x (in-process), {t_naive / t_cli:.1f}x (CLI)")
        print(f"counts equal on every step: {equal}; CLI records' counts equal: {cli_same}")
        return 0 if equal and cli_ok and cli_same else 1
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
