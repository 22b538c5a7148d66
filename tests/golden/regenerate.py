"""Golden documents: fixed queries and dry-run mutations over fixtures/srcpkg and
fixtures/encodings, and the reward records of the fixtures/trajectory run.

``make golden`` (``python -m tests.golden.regenerate``) rewrites
``tests/golden/<name>.json`` (one bundle each) and ``tests/golden/rewards/<name>.jsonl``
(the records of a reward run, one a line); review the diff before committing.
The test (tests/test_bundles_golden.py) regenerates in memory and compares
canonical bytes.  Each fixture is copied to a temporary directory first, so the
fixtures are never touched and the documents cannot depend on where the
checkout lives.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lanser.bundles.canonical import canonical_bytes
from lanser.engine import Engine, Options
from lanser.rewards.runner import TrajectoryRunner
from lanser.rewards.steps import parse_steps

HERE = Path(__file__).resolve().parent
REWARDS_DIR = HERE / "rewards"
FIXTURES = HERE.parent.parent / "fixtures"

# name -> (fixture, cmd, selector[, args])
CASES: dict[str, tuple[Any, ...]] = {
    "srcpkg-locate-symbol": ("srcpkg", "locate", "py://shop.pricing#apply_discount"),
    "srcpkg-locate-body": ("srcpkg", "locate", "py://shop.models#Cart.total:body"),
    "srcpkg-locate-ast": ("srcpkg", "locate", "ast://[module=shop.models]/[class=Cart]/[def=add]"),
    "srcpkg-locate-anchor": ("srcpkg", "locate", 'anchor://src/shop/service.py#"def demo("'),
    "srcpkg-def-cursor": ("srcpkg", "def", "src/shop/service.py@L7:C18"),
    "srcpkg-def-json": ("srcpkg", "def", '{"kind":"cursor","path":"src/shop/service.py","line":14,"col":12}'),
    "srcpkg-refs-symbol": ("srcpkg", "refs", "py://shop.pricing#apply_discount"),
    "srcpkg-hover-cursor": ("srcpkg", "hover", "src/shop/service.py@L7:C18"),
    "srcpkg-symbols-models": ("srcpkg", "symbols", "src/shop/models.py"),
    "srcpkg-diag-broken": ("srcpkg", "diag", "src/shop/broken.py"),
    "srcpkg-diag-workspace": ("srcpkg", "diag", None),
    "srcpkg-error-not-found": ("srcpkg", "def", "src/shop/nosuch.py@L1:C1"),
    "srcpkg-error-bad-syntax": ("srcpkg", "def", "src/shop/service.py@L7"),
    "encodings-def-astral": ("encodings", "def", "unicode_names.py@L11:C24"),
    "encodings-hover-astral": ("encodings", "hover", "unicode_names.py@L11:C24"),
    "encodings-refs-crlf": ("encodings", "refs", "crlf.py@L4:C5"),
    "encodings-def-bom": ("encodings", "def", "bom.py@L8:C11"),
    "encodings-def-latin1": ("encodings", "def", "latin1.py@L9:C9"),
    "encodings-symbols-unicode": ("encodings", "symbols", "unicode_names.py"),
    "encodings-diag-workspace": ("encodings", "diag", None),
    "srcpkg-rename-dry-run": ("srcpkg", "rename", "py://shop.pricing#format_price", {"newName": "render_price"}),
    "srcpkg-edit-dry-run": ("srcpkg", "edit", "py://shop.models#Cart.total:body", {"text": "return 0.0"}),
}
# name -> (fixture, workspace folder in it, STEPS file in it): reward records, JSON Lines
REWARDS: dict[str, tuple[str, str, str]] = {
    "trajectory": ("trajectory", "workspace", "steps.jsonl"),
}


async def _run_fixture(fixture: str, names: list[str], root: Path) -> dict[str, dict[str, Any]]:
    ws = root / fixture
    shutil.copytree(FIXTURES / fixture, ws, symlinks=True)
    out: dict[str, dict[str, Any]] = {}
    async with Engine(Options(workspace=str(ws))) as engine:
        for name in names:
            _, cmd, selector, *args = CASES[name]
            out[name] = await engine.run(cmd, selector, dict(args[0]) if args else {})
    return out


async def _run_reward(name: str, root: Path) -> list[dict[str, Any]]:
    fixture, folder, steps = REWARDS[name]
    ws = root / name
    shutil.copytree(FIXTURES / fixture / folder, ws, symlinks=True)
    items = parse_steps((FIXTURES / fixture / steps).read_text(encoding="utf-8"))
    async with Engine(Options(workspace=str(ws))) as engine:
        runner = TrajectoryRunner(engine)
        await runner.start()
        return await runner.run(items)


def generate() -> dict[str, dict[str, Any]]:
    """Every golden bundle, freshly computed (one server per fixture)."""
    by_fixture: dict[str, list[str]] = {}
    for name, (fixture, *_) in CASES.items():
        by_fixture.setdefault(fixture, []).append(name)
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="lanser-golden-") as tmp:
        for fixture, names in sorted(by_fixture.items()):
            out.update(asyncio.run(_run_fixture(fixture, names, Path(tmp))))
    return out


def generate_rewards() -> dict[str, list[dict[str, Any]]]:
    """Every golden reward run's records, freshly computed (one server per run)."""
    out: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="lanser-golden-") as tmp:
        for name in sorted(REWARDS):
            out[name] = asyncio.run(_run_reward(name, Path(tmp)))
    return out


def golden_bytes(bundle: dict[str, Any]) -> bytes:
    return canonical_bytes(bundle) + b"\n"


def golden_lines(records: list[dict[str, Any]]) -> bytes:
    return b"".join(canonical_bytes(r) + b"\n" for r in records)


def main() -> int:
    bundles = generate()
    rewards = generate_rewards()
    for old in HERE.glob("*.json"):
        if old.stem not in bundles:
            old.unlink()
    for old in REWARDS_DIR.glob("*.jsonl"):
        if old.stem not in rewards:
            old.unlink()
    for name, bundle in sorted(bundles.items()):
        (HERE / f"{name}.json").write_bytes(golden_bytes(bundle))
        print(f"tests/golden/{name}.json  {bundle['status']}  {bundle['bundleId']}")
    for name, records in sorted(rewards.items()):
        (REWARDS_DIR / f"{name}.jsonl").write_bytes(golden_lines(records))
        print(f"tests/golden/rewards/{name}.jsonl  {len(records)} records")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
