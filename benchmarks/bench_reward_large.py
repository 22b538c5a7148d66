"""Benchmark: per-step reward cost on large real trees vs one cold ``pyright --outputjson``.

    .venv/bin/python benchmarks/bench_reward_large.py [--repo django|sympy|all] [--cache DIR]
                                                      [--verify all|base] [--soak ROUNDS] [--json OUT]

Each repository's source distribution is fetched with pip (``pip download
--no-deps --no-binary :all:``; cached in ``--cache``, default
``~/.cache/lanser-bench``): django 5.2.8 (2,816 Python files with its tests)
and sympy 1.14.0 (1,543 files, 750,000 lines).  No third-party package is
installed for them and there is no pyright configuration: the whole tree is
checked, as a trainer's rollout on a fresh checkout would see it.

A trajectory of realistic edits is replayed with ``lanser reward --in-memory``
semantics (``TrajectoryRunner``, one warm server, nothing written): a
comment-only edit, body edits with and without a new error, the fix, a new
helper, a method that now declares a member, a signature change that breaks
callers and its revert, a new module and a use of it.  Per step it reports the
files pulled, the wall time, the record's size and the resident memory of
Lanser's process and of the server.

Beside it, in the same run: one cold ``pyright --outputjson`` of the base tree
(the baseline), and (``--verify all``, the default) one per step on the tree
as the step left it (written to a scratch copy), whose counts must equal the
step's counts, file by file.  Ratios printed: cold CLI time / mean step time,
and cold CLI time / median step time.

``--soak ROUNDS`` (default 20): afterwards, ROUNDS times a reset and the trajectory again
(without the signature step and its revert, which cost a re-check of most of the tree), with
Lanser's RSS after each round: its own memory must stay flat over many steps.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import machine_line  # noqa: E402

from lanser.edits.diff import file_diff  # noqa: E402
from lanser.engine import Engine, Options  # noqa: E402
from lanser.fsutil import write_tree  # noqa: E402
from lanser.pyright_cli import count_by_severity, run_pyright_json  # noqa: E402
from lanser.rewards.overlay import OverlayWorkspace  # noqa: E402
from lanser.rewards.runner import RewardOptions, TrajectoryRunner  # noqa: E402
from lanser.rewards.steps import parse_steps  # noqa: E402

REPOS = {"django": ("django", "5.2.8"), "sympy": ("sympy", "1.14.0")}


def fetch(name: str, version: str, cache: Path) -> Path:
    """The unpacked sdist of ``name==version`` (downloaded once into ``cache``)."""
    cache.mkdir(parents=True, exist_ok=True)
    unpacked = cache / f"{name}-{version}"
    if unpacked.is_dir():
        return unpacked
    archive = cache / f"{name}-{version}.tar.gz"
    if not archive.is_file():
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        f"{name}=={version}", "-d", str(cache)], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(cache, filter="data")
    return unpacked


class Trajectory:
    """Steps built against the evolving tree (patches are git-style diffs of the state then)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state: dict[str, str] = {}
        self.steps: list[dict[str, Any]] = []
        self.kinds: dict[str, str] = {}
        self.after: list[tuple[str, str]] = []  # (path, its text after the step), per step

    def text(self, path: str) -> str:
        if path not in self.state:
            self.state[path] = (self.root / path).read_text("utf-8")
        return self.state[path]

    def patch(self, step_id: str, kind: str, path: str, old: str, new: str) -> None:
        text = self.text(path)
        assert text.count(old) == 1, (step_id, old)
        after = text.replace(old, new, 1)
        self.steps.append({"id": step_id, "op": "patch", "patch": file_diff(path, text, after)})
        self.state[path] = after
        self.kinds[step_id] = kind
        self.after.append((path, after))

    def write(self, step_id: str, kind: str, path: str, content: str) -> None:
        self.steps.append({"id": step_id, "op": "write", "path": path, "content": content})
        self.state[path] = content
        self.kinds[step_id] = kind
        self.after.append((path, content))


def django_steps(root: Path) -> Trajectory:
    t = Trajectory(root)
    text = "django/utils/text.py"
    t.patch("comment", "comment only", text,
            '    return re_camel_case.sub(r" \\1", value).strip().lower()\n',
            '    # Lower-case last: the regular expression works on the original case.\n'
            '    return re_camel_case.sub(r" \\1", value).strip().lower()\n')
    t.patch("body", "body edit", text, '    return re_newlines.sub("\\n", str(text))\n',
            '    text = str(text)\n    return re_newlines.sub("\\n", text)\n')
    t.patch("body-error", "body edit, new error", text, "    if not list_:\n",
            "    separator = _seperator\n    if not list_:\n")
    t.patch("fix", "fix", text, "    separator = _seperator\n    if not list_:\n", "    if not list_:\n")
    t.patch("helper", "new helper", text, "\n\n@keep_lazy_text\ndef phone2numeric(phone):\n",
            "\n\ndef shout(value):\n    return str(value).upper() + \"!\"\n\n\n"
            "@keep_lazy_text\ndef phone2numeric(phone):\n")
    t.patch("member", "method declares a member", text,
            "    def __init__(self, text):\n        super().__init__(lambda: str(text))\n",
            "    def __init__(self, text):\n        super().__init__(lambda: str(text))\n"
            "        self.source_length = len(str(text))\n")
    t.patch("signature", "signature breaks callers", text, "def camel_case_to_spaces(value):\n",
            "def camel_case_to_spaces(value, separator):\n")
    t.patch("revert", "revert", text, "def camel_case_to_spaces(value, separator):\n",
            "def camel_case_to_spaces(value):\n")
    t.write("new-module", "new module", "django/utils/shouting.py",
            "from django.utils.text import shout\n\n\ndef loud(value):\n    return shout(value)\n")
    t.patch("use-module", "use the new module", "django/utils/html.py", "from django.utils.text import",
            "from django.utils.shouting import loud\nfrom django.utils.text import")
    return t


def sympy_steps(root: Path) -> Trajectory:
    t = Trajectory(root)
    misc = "sympy/utilities/misc.py"
    t.patch("comment", "comment only", misc, "    n = as_int(num)\n    k = abs(n) % 100\n",
            "    n = as_int(num)\n    # Teens take 'th' whatever their last digit.\n    k = abs(n) % 100\n")
    t.patch("body", "body edit", misc, "    k = abs(n) % 100\n", "    k = abs(int(n)) % 100\n")
    t.patch("body-error", "body edit, new error", misc, "    k = abs(int(n)) % 100\n",
            "    k = abs(int(n)) % 100\n    width = _linewidth\n")
    t.patch("fix", "fix", misc, "    k = abs(int(n)) % 100\n    width = _linewidth\n", "    k = abs(int(n)) % 100\n")
    t.patch("helper", "new helper", misc, "\ndef ordinal(num):\n",
            "\ndef shout(s):\n    return str(s).upper() + '!'\n\n\ndef ordinal(num):\n")
    t.patch("member", "method declares a member", "sympy/utilities/decorator.py",
            "    def __init__(self, cls, f):\n        self.cls = cls\n        self.f = f\n",
            "    def __init__(self, cls, f):\n        self.cls = cls\n        self.f = f\n        self.name = str(f)\n")
    t.patch("signature", "signature breaks callers", misc, "def ordinal(num):\n", "def ordinal(num, style):\n")
    t.patch("revert", "revert", misc, "def ordinal(num, style):\n", "def ordinal(num):\n")
    t.write("new-module", "new module", "sympy/utilities/shouting.py",
            "from sympy.utilities.misc import shout\n\n\ndef loud(value):\n    return shout(value)\n")
    t.patch("use-module", "use the new module", "sympy/utilities/timeutils.py", "import timeit\n",
            "import timeit\nfrom sympy.utilities.shouting import loud\n")
    return t


STEP_BUILDERS: dict[str, Callable[[Path], Trajectory]] = {"django": django_steps, "sympy": sympy_steps}


def rss_mb(pid: int | None, field_name: str = "VmRSS") -> float:
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class StepResult:
    id: str
    kind: str
    seconds: float
    pulled: int | None
    errors: int
    record_bytes: int
    lanser_rss: float
    server_rss: float
    equal: bool | None = None
    cli_seconds: float | None = None
    cli_errors: int | None = None
    differing: list[str] = field(default_factory=list)  # files whose counts differ from the CLI's


@dataclass
class RepoResult:
    name: str
    files: int
    cold_cli: float
    cli_peak_rss: float
    start: float
    steps: list[StepResult] = field(default_factory=list)
    server_peak: float = 0.0
    lanser_peak: float = 0.0
    soak_rss: list[float] = field(default_factory=list)  # Lanser's RSS after each soak round


def materialize(base: Path, dest: Path, overlay: dict[str, bytes | None]) -> None:
    """``dest`` = ``base`` with ``overlay`` applied (only changed files are rewritten)."""
    write_tree(dest, overlay)


def cli_counts(ws: Path) -> tuple[dict[str, Any], float, float]:
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    result = run_pyright_json(ws, timeout=3600)
    seconds = time.perf_counter() - t0
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    return count_by_severity(result, ws), seconds, peak


def full_table(runner: TrajectoryRunner) -> dict[str, Any]:
    counts = runner.snapshot.counts()
    counts["byFile"] = {k: v for k, v in counts["byFile"].items() if v["errors"] or v["warnings"]}
    return counts


SOAK_SKIP = ("signature breaks callers", "revert")  # a soak round stays cheap: the pair cancels out


async def soak(runner: TrajectoryRunner, traj: Trajectory, rounds: int, res: RepoResult) -> None:
    """Lanser's own memory over many steps: ``rounds`` times, a reset and the trajectory again
    (without the signature step and its revert), Lanser's RSS read after each round."""
    steps = [{"id": "reset", "op": "reset"}] + [s for s in traj.steps if traj.kinds[s["id"]] not in SOAK_SKIP]
    lines = "".join(json.dumps(s) + "\n" for s in steps)
    for k in range(rounds):
        for item in parse_steps(lines):
            rec = await runner.run_step(item)
            assert rec["status"] == "ok", ("soak", k, item.id, rec.get("error"))
        res.soak_rss.append(rss_mb(os.getpid()))
    if rounds:
        series = " ".join(f"{x:.0f}" for x in res.soak_rss)
        print(f"  soak: {rounds} rounds of {len(steps)} steps; lanser RSS after each round (MB): {series}", flush=True)


async def run_repo(name: str, src: Path, verify: str, scratch: Path, soak_rounds: int = 0) -> RepoResult:
    ws = scratch / f"{name}-ws"
    check = scratch / f"{name}-check"
    for d in (ws, check):
        if d.exists():
            shutil.rmtree(d)
        shutil.copytree(src, d, symlinks=True)
    traj = STEP_BUILDERS[name](ws)
    base_counts, cold, cli_peak = cli_counts(check)
    files = len([p for p in ws.rglob("*.py")])
    print(f"{name}: {files} Python files; cold pyright --outputjson {cold:.1f}s, {base_counts['errors']} errors, "
          f"peak {cli_peak:.0f} MB", flush=True)
    engine = Engine(Options(workspace=str(ws), timeout=600))
    runner = TrajectoryRunner(engine, RewardOptions(in_memory=True))
    t0 = time.perf_counter()
    await runner.start()
    start = time.perf_counter() - t0
    res = RepoResult(name, files, cold, cli_peak, start)
    assert full_table(runner) == base_counts, "the start's counts differ from the CLI's"
    print(f"  lanser start (server start + first full pull): {start:.1f}s; counts equal the CLI's", flush=True)
    try:
        for item in parse_steps("".join(json.dumps(s) + "\n" for s in traj.steps)):
            t0 = time.perf_counter()
            rec = await runner.run_step(item)
            seconds = time.perf_counter() - t0
            assert rec["status"] == "ok", (item.id, rec.get("error"))
            session = engine.session
            step = StepResult(str(item.id), traj.kinds[str(item.id)], seconds,
                              len(runner.last_pulled) if runner.last_pulled is not None else None,
                              rec["diagnostics"]["errors"], len(json.dumps(rec, separators=(",", ":"))),
                              rss_mb(os.getpid()), rss_mb(session.pid if session else None))
            if verify == "all":
                ows = engine.ws
                assert isinstance(ows, OverlayWorkspace)
                materialize(src, check, ows.overlay)
                counts, step.cli_seconds, peak = cli_counts(check)
                res.cli_peak_rss = max(res.cli_peak_rss, peak)
                ours = full_table(runner)
                step.equal = counts == ours
                step.cli_errors = counts["errors"]
                step.differing = sorted(f for f in set(counts["byFile"]) | set(ours["byFile"])
                                        if counts["byFile"].get(f) != ours["byFile"].get(f))
            res.steps.append(step)
            print(f"  {step.id:<12} {step.kind:<26} pulled {step.pulled if step.pulled is not None else 'all':>5} "
                  f"{step.seconds:7.3f}s  errors {step.errors:>6}  record {step.record_bytes:>6} B  "
                  f"lanser {step.lanser_rss:6.0f} MB  server {step.server_rss:6.0f} MB"
                  + (f"  cli {step.cli_seconds:5.1f}s equal={step.equal}" if step.equal is not None else "")
                  + (f" (cli errors {step.cli_errors}; {len(step.differing)} files differ: "
                     f"{', '.join(step.differing[:5])})" if step.equal is False else ""),
                  flush=True)
        await soak(runner, traj, soak_rounds, res)
        session = engine.session
        res.server_peak = rss_mb(session.pid if session else None, "VmHWM")
        res.lanser_peak = rss_mb(os.getpid(), "VmHWM")
    finally:
        await engine.close()
    return res


def summary(res: RepoResult) -> dict[str, Any]:
    times = [s.seconds for s in res.steps]
    mean, median = statistics.mean(times), statistics.median(times)
    return {"repo": res.name, "files": res.files, "coldCli": round(res.cold_cli, 2), "start": round(res.start, 2),
            "meanStep": round(mean, 3), "medianStep": round(median, 3),
            "meanRatio": round(res.cold_cli / mean, 1), "medianRatio": round(res.cold_cli / median, 1),
            "allEqual": all(s.equal for s in res.steps) if all(s.equal is not None for s in res.steps) else None,
            "serverPeakMb": round(res.server_peak), "lanserPeakMb": round(res.lanser_peak),
            "cliPeakMb": round(res.cli_peak_rss),
            "lanserRssMb": [round(s.lanser_rss) for s in res.steps],
            "soakRssMb": [round(x) for x in res.soak_rss],
            "maxRecordBytes": max(s.record_bytes for s in res.steps),
            "steps": [s.__dict__ for s in res.steps]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", choices=[*REPOS, "all"], default="all")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "lanser-bench"))
    ap.add_argument("--verify", choices=["all", "base"], default="all",
                    help="all: a cold CLI run per step checks its counts (slow); base: only the base tree")
    ap.add_argument("--soak", type=int, default=20, metavar="ROUNDS",
                    help="after the trajectory: ROUNDS x (reset + its cheap steps), Lanser's RSS after each")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    names = list(REPOS) if args.repo == "all" else [args.repo]
    out = []
    with tempfile.TemporaryDirectory(prefix="lanser-bench-large-") as tmp:
        for name in names:
            pkg, version = REPOS[name]
            src = fetch(pkg, version, Path(args.cache))
            res = asyncio.run(run_repo(name, src, args.verify, Path(tmp), args.soak))
            s = summary(res)
            out.append(s)
            print(f"{name}: cold CLI {s['coldCli']}s; lanser start {s['start']}s; per step mean {s['meanStep']}s "
                  f"(x{s['meanRatio']}), median {s['medianStep']}s (x{s['medianRatio']}); counts equal on every "
                  f"step: {s['allEqual']}; peak RSS server {s['serverPeakMb']} MB, lanser {s['lanserPeakMb']} MB "
                  f"(per step {s['lanserRssMb'][0]}..{s['lanserRssMb'][-1]} MB), CLI {s['cliPeakMb']} MB; "
                  f"largest record {s['maxRecordBytes']} B"
                  + (f"; soak RSS {s['soakRssMb'][0]}..{s['soakRssMb'][-1]} MB" if s["soakRssMb"] else ""), flush=True)
    print(machine_line())
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0 if all(s["allEqual"] in (True, None) for s in out) else 1


if __name__ == "__main__":
    raise SystemExit(main())
