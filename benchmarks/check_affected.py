"""Check the affected-files rule against full pulls: random edits on a real package.

    .venv/bin/python benchmarks/check_affected.py [--package click] [--steps 40] [--seed 1]

The package's installed sources are copied into a temporary workspace and a
seeded random sequence of realistic edits is replayed through the reward
runner (TrajectoryRunner, one warm server): body edits with and without new
errors, changed signatures, new, renamed and deleted functions, new members
assigned in methods, new and deleted modules that import from the package,
and now and then a reset.  After every step the runner's diagnostics (pulled
only for the files the rule picked, the rest kept) are compared with a pull of
every file from the same server; any difference is a bug in the rule.
Prints one line per step and exits 1 on the first mismatch.  (The test-suite
runs a short fixed sequence of the same kind: tests/test_rewards_affected_server.py.)
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import importlib
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lanser.diagnostics.workspace import flatten, pull_files  # noqa: E402
from lanser.engine import Engine, Options  # noqa: E402
from lanser.rewards.runner import RewardOptions, TrajectoryRunner  # noqa: E402
from lanser.rewards.steps import Step, validate_step  # noqa: E402


def make_workspace(dest: Path, package: str, tree_dir: str | None = None) -> Path:
    """An installed package (checked alone), or a whole source tree as it is (``--tree``)."""
    if tree_dir is not None:
        shutil.copytree(tree_dir, dest, ignore=shutil.ignore_patterns("__pycache__", ".git"))
        return dest
    src = Path(importlib.import_module(package).__file__ or "").parent
    shutil.copytree(src, dest / package, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "pyrightconfig.json").write_text(f'{{"include": ["{package}"]}}\n', encoding="utf-8")
    return dest


def _functions(tree: ast.Module) -> list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, ast.ClassDef | None]]:
    out: list[tuple[Any, Any]] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.append((node, None))
        elif isinstance(node, ast.ClassDef):
            out.extend((f, node) for f in node.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return out


def _insert_in_body(text: str, fn: ast.FunctionDef | ast.AsyncFunctionDef, line: str) -> str:
    first = fn.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and len(fn.body) > 1:
        first = fn.body[1]  # after the docstring
    lines = text.splitlines(keepends=True)
    indent = " " * first.col_offset
    lines.insert(first.lineno - 1, f"{indent}{line}\n")
    return "".join(lines)


def _replace_line(text: str, lineno: int, old: str, new: str) -> str | None:
    lines = text.splitlines(keepends=True)
    if old not in lines[lineno - 1]:
        return None
    lines[lineno - 1] = lines[lineno - 1].replace(old, new, 1)
    return "".join(lines)


def random_edit(rng: random.Random, files: dict[str, str], package: str, n: int) -> dict[str, Any] | None:
    """One step dict (a write or a reset), or None when the draw did not fit."""
    kind = rng.choice(["body", "body-error", "signature", "rename", "delete", "member", "new-module",
                       "drop-module", "constant", "class-attribute", "new-function", "reset"])
    if kind == "reset":
        return {"id": f"{n}-reset", "op": "reset"}
    if kind == "drop-module":
        extra = sorted(p for p in files if p.startswith(f"{package}/extra_"))
        if not extra:
            return None
        # a reset is the only way to delete: write it empty instead (its importers break)
        return {"id": f"{n}-empty-module", "op": "write", "path": rng.choice(extra), "content": ""}
    py = sorted(p for p in files if p.endswith(".py") and p.startswith(package + "/"))
    rel = rng.choice(py)
    text = files[rel]
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    fns = _functions(tree)
    if kind == "new-module":
        names = [f.name for f, cls in fns if cls is None and not f.name.startswith("_")]
        if not names:
            return None
        mod = rel[:-3].replace("/", ".").removesuffix(".__init__")
        name = rng.choice(names)
        content = (f"from {mod} import {name}\n\n\ndef use_{n}() -> int:\n    return {name}()\n\n\n"
                   f"VALUE_{n}: str = {name}\n")
        return {"id": f"{n}-new-module", "op": "write", "path": f"{package}/extra_{n}.py", "content": content}
    if kind == "constant":
        consts = [a for a in tree.body if isinstance(a, ast.Assign) and len(a.targets) == 1
                  and isinstance(a.targets[0], ast.Name) and a.lineno == a.end_lineno]
        if not consts:
            return None
        a = rng.choice(consts)
        target = a.targets[0]
        assert isinstance(target, ast.Name)
        lines = text.splitlines(keepends=True)
        lines[a.lineno - 1] = f"{target.id} = {n}  # was: {lines[a.lineno - 1].strip()[:40]}\n"
        return {"id": f"{n}-constant-{rel.rsplit('/', 1)[-1]}-{target.id}", "op": "write", "path": rel,
                "content": "".join(lines)}
    if kind == "new-function":  # public or private: ``import *`` binds only the first
        name = rng.choice(["helper", "_helper"]) + f"_{n}"
        return {"id": f"{n}-new-function-{rel.rsplit('/', 1)[-1]}-{name}", "op": "write", "path": rel,
                "content": text + f"\n\ndef {name}() -> int:\n    return {n}\n"}
    if kind == "class-attribute":
        classes = [c for c in tree.body if isinstance(c, ast.ClassDef)]
        if not classes:
            return None
        c = rng.choice(classes)
        first = c.body[0]
        lines = text.splitlines(keepends=True)
        lines.insert(first.lineno - 1, f"{' ' * first.col_offset}attribute_{n}: int = {n}\n")
        return {"id": f"{n}-class-attribute-{rel.rsplit('/', 1)[-1]}-{c.name}", "op": "write", "path": rel,
                "content": "".join(lines)}
    if not fns:
        return None
    fn, cls = rng.choice(fns)
    new: str | None = None
    if kind == "body":
        new = _insert_in_body(text, fn, f"_local_{n} = {n}")
    elif kind == "body-error":
        new = _insert_in_body(text, fn, f'_local_{n}: int = "not an int"')
    elif kind == "member" and cls is not None and fn.args.args:
        new = _insert_in_body(text, fn, f"{fn.args.args[0].arg}.member_{n} = {n}")
    elif kind == "signature" and fn.returns is not None:
        new = _replace_line(text, fn.returns.lineno, ast.get_source_segment(text, fn.returns) or "\0", "int")
    elif kind == "rename":
        new = _replace_line(text, fn.lineno, f"def {fn.name}(", f"def {fn.name}_{n}(")
    elif kind == "delete" and cls is None:
        lines = text.splitlines(keepends=True)
        start = (fn.decorator_list[0].lineno if fn.decorator_list else fn.lineno) - 1
        new = "".join(lines[:start] + lines[fn.end_lineno or fn.lineno:])
    if new is None or new == text:
        return None
    return {"id": f"{n}-{kind}-{rel.rsplit('/', 1)[-1]}-{fn.name}", "op": "write", "path": rel, "content": new}


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text("utf-8") for p in sorted(root.rglob("*.py"))
            if ".lanser" not in p.parts}


def compare(got: list[dict[str, Any]], everything: list[dict[str, Any]]) -> str:
    """``same``; ``message-only`` when the diagnostics agree in file, range, severity and
    code but some message is worded differently (Pyright prints a recursive inferred type to a
    depth that depends on the order it evaluated things in, so a file whose meaning did not
    change can come back reworded after a re-check elsewhere: the counts are unaffected);
    else ``DIFFERENT`` (a bug in the rule)."""
    if got == everything:
        return "same"

    def keys(diags: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted((d["path"], tuple(d["range"]), d["severity"], d.get("code") or "") for d in diags)

    return "message-only" if keys(got) == keys(everything) else "DIFFERENT"


async def check(ws: Path, package: str, steps: int, seed: int, log: Any = print) -> tuple[int, int, int, int]:
    """(steps run, files pulled in all, files a full pull would have asked for, steps whose
    only difference was a message's wording); raises AssertionError at the first step whose
    diagnostics differ from a full pull otherwise."""
    rng = random.Random(seed)
    engine = Engine(Options(workspace=str(ws), timeout=600))
    pulled = full = reworded = 0
    try:
        runner = TrajectoryRunner(engine, RewardOptions())
        await runner.start()
        session = engine.session
        assert session is not None
        n = 0
        while n < steps:
            raw = random_edit(rng, tree(ws), package, n)
            if raw is None:
                continue
            n += 1
            step = validate_step(raw, n)
            assert isinstance(step, Step)
            t_step = time.perf_counter()
            rec = await runner.run_step(step)
            assert runner.checked is not None
            checked = sorted(runner.checked.checked)  # the files a full pull asks for
            everything = flatten(await pull_files(session, checked))
            got = runner.diagnostics
            asked = len(checked) if runner.last_pulled is None else len(runner.last_pulled)
            pulled += asked
            full += len(checked)
            verdict = compare(got, everything)
            if verdict == "message-only":
                reworded += 1
            log(f"{n:>3} {raw['id']:<48} {rec['status']:<5} pulled {asked:>2}/{len(checked):<2} "
                f"errors {rec['diagnostics']['errors']:>3}  {verdict}  {time.perf_counter() - t_step:.1f} s")
            if verdict == "DIFFERENT":
                missing = [d for d in everything if d not in got]
                extra = [d for d in got if d not in everything]
                raise AssertionError(f"step {n} ({raw['id']}): the rule missed {missing[:3]} / kept {extra[:3]}")
    finally:
        await engine.close()
    return steps, pulled, full, reworded


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", default="click", help="an installed pure-Python package (default: click); "
                    "with --tree, the package directory new modules go to")
    ap.add_argument("--tree", default=None, help="check a whole source tree instead (e.g. django's sdist)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="check-affected-"))
    t0 = time.perf_counter()
    try:
        ws = make_workspace(tmp / "ws", args.package, args.tree)
        steps, pulled, full, reworded = asyncio.run(check(ws, args.package, args.steps, args.seed))
    except AssertionError as exc:
        print(f"MISMATCH: {exc}")
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{steps} steps on {args.package} (seed {args.seed}): diagnostics equal to a full pull after every "
          f"step in file, range, severity and code ({reworded} steps with a message worded differently); "
          f"pulled {pulled} files where full pulls would ask for {full} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
