"""Determinism: the same query gives byte-identical ``--json`` output, and the same
content at two different directories gives the same bundleId and the same bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import EngineRunner, copy_fixture, run_cli

from lanser.bundles.canonical import bundle_id, canonical_bytes

pytestmark = pytest.mark.server

QUERIES = [
    ("def", "src/shop/service.py@L7:C18"),
    ("refs", "src/shop/pricing.py@L1:C5"),
    ("hover", "src/shop/service.py@L15:C13"),
    ("symbols", "src/shop/models.py"),
    ("diag", "src/shop/broken.py"),
    ("diag", None),
    ("locate", "py://shop.models#Cart.total"),
    ("refs", "py://shop.models#Cart.total"),
    ("def", "src/shop/nope.py@L1:C1"),          # an error bundle is deterministic too
    ("def", "src/shop/service.py@L99:C1"),
]


@pytest.fixture(scope="module")
def two_copies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EngineRunner, EngineRunner]]:
    a = copy_fixture("srcpkg", tmp_path_factory.mktemp("first") / "srcpkg")
    b = copy_fixture("srcpkg", tmp_path_factory.mktemp("second") / "deeper" / "elsewhere")
    ra, rb = EngineRunner(a), EngineRunner(b)
    yield ra, rb
    ra.close()
    rb.close()


@pytest.fixture(scope="module")
def results(two_copies: tuple[EngineRunner, EngineRunner]) -> list[tuple[dict[str, Any], ...]]:
    """Each query run twice in the first copy and once in the second."""
    ra, rb = two_copies
    return [(ra.run(cmd, sel), ra.run(cmd, sel), rb.run(cmd, sel)) for cmd, sel in QUERIES]


def _differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Where two JSON values differ (for a readable failure)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for n, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{where}[{n}]")]
    return [] if a == b else [f"{where}: {json.dumps(a)[:300]} != {json.dumps(b)[:300]}"]


@pytest.mark.parametrize("i", range(len(QUERIES)), ids=[f"{c}:{s}" for c, s in QUERIES])
def test_same_query_twice_same_bytes(results: list[tuple[dict[str, Any], ...]], i: int) -> None:
    first, again, _ = results[i]
    assert canonical_bytes(first) == canonical_bytes(again), _differences(first, again)


@pytest.mark.parametrize("i", range(len(QUERIES)), ids=[f"{c}:{s}" for c, s in QUERIES])
def test_two_directories_same_bundle(results: list[tuple[dict[str, Any], ...]],
                                     two_copies: tuple[EngineRunner, EngineRunner], i: int) -> None:
    first, _, elsewhere = results[i]
    assert first["bundleId"] == elsewhere["bundleId"], _differences(first, elsewhere)
    assert canonical_bytes(first) == canonical_bytes(elsewhere)
    assert first["bundleId"] == bundle_id(first)  # the id is recomputable from the bundle
    for runner in two_copies:  # no absolute path of either checkout leaks into a bundle
        root = str(runner.engine.ws.root)
        assert root.encode() not in canonical_bytes(first) + canonical_bytes(elsewhere)


def test_expected_statuses(results: list[tuple[dict[str, Any], ...]]) -> None:
    statuses = [r[0]["status"] for r in results]
    assert statuses == ["ok"] * 8 + ["error", "error"]
    assert [r[0]["meta"]["exit_code"] for r in results[-2:]] == [3, 3]


def test_verbose_differs_only_in_volatile_fields(two_copies: tuple[EngineRunner, EngineRunner]) -> None:
    ra, rb = two_copies
    a = ra.run("refs", "src/shop/pricing.py@L1:C5", verbose=True, index_io="utf-8")
    b = rb.run("refs", "src/shop/pricing.py@L1:C5", verbose=True, index_io="utf-8")
    assert a["meta"]["volatile"]["root"] != b["meta"]["volatile"]["root"]
    assert a["bundleId"] == b["bundleId"]
    del a["meta"]["volatile"], b["meta"]["volatile"]
    assert canonical_bytes(a) == canonical_bytes(b)


def test_cli_json_output_byte_identical(tmp_path: Path) -> None:
    """Two separate CLI runs (a fresh server each) print the very same bytes."""
    ws = str(copy_fixture("encodings", tmp_path / "ws"))
    argv = ("--json", "-w", ws, "refs", "unicode_names.py@L11:C24")
    first, second = run_cli(*argv), run_cli(*argv)
    assert first.code == 0 and second.code == 0, first.err + second.err
    assert first.out == second.out
    assert first.out.endswith("\n") and first.out.count("\n") == 1  # one canonical line
    assert first.out.encode("utf-8") == canonical_bytes(first.bundle) + b"\n"
