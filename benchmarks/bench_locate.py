"""Median milliseconds per ``locate`` call, per selector form.

Two generated workspaces: one 10,000-line module, and a 100-file package.
Three ways of calling: in-process with a warm Workspace (module map and parses
cached, what a daemon or a batch sees), in-process cold (a new Workspace per
call: every file read and parsed again), and as a CLI process
(``lanser locate SELECTOR -w DIR --json``; skipped with a message when the CLI
has no ``locate`` yet).

    python benchmarks/bench_locate.py [--repeat N] [--cli-repeat N]

Prints a table; writes nothing but its temporary workspaces.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lanser.selectors import parse_selector, resolve_selector
from lanser.workspace import Workspace


def _module_text(n_classes: int, methods: int, tag: str) -> str:
    out = ['"""Generated module."""', "", "import math", "", f"CONSTANT_{tag} = 1", ""]
    for c in range(n_classes):
        out += ["", f"class Class{c}:", f'    """Class {c}."""', "", f"    attr_{c} = {c}", ""]
        for m in range(methods):
            out += [f"    def method_{m}(self, x: int) -> int:",
                    f'        """Method {m} of class {c}."""',
                    f"        y = x * {m} + math.floor({c})",
                    f"        return helper_{tag}(y)", ""]
    out += ["", f"def helper_{tag}(v):", "    return v + 1", ""]
    return "\n".join(out)


def make_big_file(root: Path) -> dict[str, str]:
    """One module of ~10,000 lines; selectors near its end."""
    text = _module_text(n_classes=190, methods=10, tag="big")
    while text.count("\n") < 10_000:
        text += "\n# padding"
    (root / "big.py").write_text(text, encoding="utf-8")
    lines = text.split("\n")
    target = next(i for i, line in enumerate(lines) if line.startswith("class Class180"))
    mline = next(i for i in range(target, len(lines)) if "def method_7" in lines[i])
    return _selectors("big.py", "big", "Class180", mline)


def make_package(root: Path) -> dict[str, str]:
    """A src-layout package of 100 files (~50 lines each)."""
    pkg = root / "src" / "bigpkg"
    for sub in range(10):
        d = pkg / f"sub{sub}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "__init__.py").write_text("")
        for m in range(10 if sub else 9):
            (d / f"mod{m}.py").write_text(_module_text(n_classes=2, methods=4, tag=f"{sub}_{m}"),
                                          encoding="utf-8")
    (pkg / "__init__.py").write_text('"""Generated package."""\n')
    text = (pkg / "sub9" / "mod9.py").read_text(encoding="utf-8")
    lines = text.split("\n")
    cls = next(i for i, line in enumerate(lines) if line.startswith("class Class1"))
    mline = next(i for i in range(cls, len(lines)) if "def method_3" in lines[i])
    return _selectors("src/bigpkg/sub9/mod9.py", "bigpkg.sub9.mod9", "Class1", mline)


def _selectors(rel: str, module: str, cls: str, mline: int) -> dict[str, str]:
    method = "method_7" if module == "big" else "method_3"
    return {
        "cursor:name": f"{rel}@L{mline + 1}:C9",
        "cursor:body": f"{rel}@L{mline + 3}:C13",
        "range": f"{rel}@R({mline + 1},5->{mline + 4},1)",
        "symbol": f"py://{module}#{cls}.{method}",
        "symbol:body": f"py://{module}#{cls}.{method}:body",
        "ast": f"ast://[module={module}]/[class={cls}]/[def={method}]/call[1]",
        "anchor": f'anchor://{rel}#"Method {method[-1]} of class {cls[5:]}."',
    }


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench_inprocess(root: Path, sels: dict[str, str], repeat: int) -> dict[str, tuple[float, float]]:
    out = {}
    warm = Workspace(root)
    for form, text in sels.items():
        spec = parse_selector(text)
        resolve_selector(spec, warm, original=text)  # warm the caches once
        warm_ms = _median_ms(lambda: resolve_selector(spec, warm, original=text), repeat)
        cold_ms = _median_ms(lambda: resolve_selector(spec, Workspace(root), original=text), repeat)
        out[form] = (warm_ms, cold_ms)
    return out


def _cli() -> list[str] | None:
    exe = shutil.which("lanser", path=os.path.dirname(sys.executable)) or shutil.which("lanser")
    cmd = [exe] if exe else [sys.executable, "-m", "lanser"]
    try:
        probe = subprocess.run([*cmd, "locate", "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return cmd if probe.returncode == 0 else None


def bench_cli(cmd: list[str], root: Path, sels: dict[str, str], repeat: int) -> dict[str, float]:
    out = {}
    for form, text in sels.items():
        def run() -> None:
            proc = subprocess.run([*cmd, "locate", text, "-w", str(root), "--json"], capture_output=True)
            if proc.returncode != 0:
                raise SystemExit(f"lanser locate {text!r} failed ({proc.returncode}): "
                                 f"{proc.stderr.decode(errors='replace')[:300]}")
        out[form] = _median_ms(run, repeat)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--cli-repeat", type=int, default=7)
    args = ap.parse_args(argv)
    cli = _cli()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in (("10k-line file", make_big_file), ("100-file package", make_package)):
            root = Path(tmp) / name.replace(" ", "_")
            root.mkdir()
            sels = make(root)
            inproc = bench_inprocess(root, sels, args.repeat)
            clims = bench_cli(cli, root, sels, args.cli_repeat) if cli else {}
            for form in sels:
                warm, cold = inproc[form]
                rows.append((name, form, warm, cold, clims.get(form)))
    print(f"{'workspace':<18} {'form':<12} {'warm ms':>9} {'cold ms':>9} {'CLI ms':>9}")
    for name, form, warm, cold, c in rows:
        cli_txt = f"{c:9.1f}" if c is not None else f"{'n/a':>9}"
        print(f"{name:<18} {form:<12} {warm:9.2f} {cold:9.2f} {cli_txt}")
    if cli is None:
        print("\nCLI column skipped: `lanser locate` is not available yet.")
    print(f"\nmedian of {args.repeat} in-process calls, {args.cli_repeat} CLI runs; "
          f"python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
