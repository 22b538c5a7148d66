"""lanser.bundles: canonical JSON and bundleId, location normalization (sorting, dedup,
portable paths) and truncation with a cursor."""

from __future__ import annotations

import copy
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from conftest import EngineRunner, copy_fixture
from hypothesis import given, settings
from hypothesis import strategies as st

from lanser.bundles import normalize as N
from lanser.bundles.canonical import bundle_id, canonical_bytes, with_id

ROOT = Path("/ws/project")


def sample_bundle() -> dict[str, Any]:
    return {
        "version": "1.2", "status": "ok",
        "request": {"cmd": "refs", "selector": {"kind": "cursor", "path": "a.py", "line": 0, "col": 4}, "args": {}},
        "resolution": None,
        "facts": {"references": [{"path": "a.py", "range": [0, 4, 0, 7]}], "provenance": "lsp"},
        "edits": None, "processReward": None,
        "environment": {"server": {"name": "pyright", "version": "1.1.407"}, "positionEncoding": "utf-16",
                        "python": {"version": "3.11"}, "configDigest": "sha256:00", "platform": "linux-x86_64",
                        "lanserVersion": "0.1.0"},
        "capabilities": {}, "error": None,
        "meta": {"exit_code": 0, "truncated": False, "cursor": None, "score": 0.5,
                 "volatile": {"elapsedMs": 12.5, "root": "/home/me/project", "serverPid": 4242}},
    }


def shuffled(obj: Any, rng: random.Random) -> Any:
    """The same JSON value with every object's keys in a random order."""
    if isinstance(obj, dict):
        keys = list(obj)
        rng.shuffle(keys)
        return {k: shuffled(obj[k], rng) for k in keys}
    if isinstance(obj, list):
        return [shuffled(v, rng) for v in obj]
    return obj


# -- canonical ------------------------------------------------------------------------------------

def test_canonical_bytes_are_rfc8785() -> None:
    obj = {"b": [1.0, 2.5, "ü"], "a": {"y": None, "x": True}, "c": 1e21}
    assert canonical_bytes(obj) == b'{"a":{"x":true,"y":null},"b":[1,2.5,"\xc3\xbc"],"c":1e+21}'
    assert canonical_bytes(obj) == rfc8785.dumps(obj)


def test_bundle_id_is_sha256_of_the_stripped_canonical_bundle() -> None:
    b = sample_bundle()
    stripped = copy.deepcopy(b)
    del stripped["meta"]["volatile"], stripped["environment"]["platform"]
    assert bundle_id(b) == "sha256:" + hashlib.sha256(rfc8785.dumps(stripped)).hexdigest()


def test_bundle_id_ignores_volatile_fields() -> None:
    base = bundle_id(sample_bundle())
    b = sample_bundle()
    b["meta"]["volatile"] = {"elapsedMs": 99999, "root": "/elsewhere", "serverPid": 1}
    b["environment"]["platform"] = "darwin-arm64"
    assert bundle_id(b) == base
    del b["meta"]["volatile"], b["environment"]["platform"]
    assert bundle_id(b) == base
    b["bundleId"] = "sha256:stale"
    assert bundle_id(b) == base


@pytest.mark.parametrize("seed", range(5))
def test_bundle_id_ignores_key_order(seed: int) -> None:
    b = sample_bundle()
    assert bundle_id(shuffled(b, random.Random(seed))) == bundle_id(b)
    assert canonical_bytes(shuffled(b, random.Random(seed))) == canonical_bytes(b)


@pytest.mark.parametrize("path,value", [
    (("facts", "references", 0, "range", 1), 5),
    (("environment", "python", "version"), "3.12"),
    (("environment", "server", "version"), "1.1.408"),
    (("meta", "exit_code"), 3),
    (("request", "selector", "col"), 5),
    (("status",), "error"),
])
def test_bundle_id_sees_every_other_field(path: tuple[Any, ...], value: Any) -> None:
    b = sample_bundle()
    node: Any = b
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert bundle_id(b) != bundle_id(sample_bundle())


def test_bundle_id_does_not_mutate_its_input() -> None:
    b = sample_bundle()
    before = json.dumps(b, sort_keys=True)
    bundle_id(b)
    with_id(b)
    assert json.dumps(b, sort_keys=True) == before


def test_with_id_puts_the_id_second_and_is_idempotent() -> None:
    b = with_id(sample_bundle())
    assert list(b)[:2] == ["version", "bundleId"]
    assert b["bundleId"] == bundle_id(sample_bundle())
    assert with_id(b) == b


# -- locations ------------------------------------------------------------------------------------

def lsp_loc(uri: str, sl: int, sc: int, el: int, ec: int) -> dict[str, Any]:
    return {"uri": uri, "range": {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}}}


def test_locations_sorted_and_deduplicated() -> None:
    raw = [lsp_loc("file:///ws/project/b.py", 3, 0, 3, 4),
           lsp_loc("file:///ws/project/a.py", 10, 2, 10, 5),
           lsp_loc("file:///ws/project/a.py", 2, 8, 2, 9),
           lsp_loc("file:///ws/project/b.py", 3, 0, 3, 4),      # duplicate
           lsp_loc("file:///ws/project/a.py", 2, 1, 2, 9),
           lsp_loc("file:///ws/project/a.py", 2, 1, 2, 3)]
    assert N.locations(raw, ROOT) == [
        {"path": "a.py", "range": [2, 1, 2, 3]},
        {"path": "a.py", "range": [2, 1, 2, 9]},
        {"path": "a.py", "range": [2, 8, 2, 9]},
        {"path": "a.py", "range": [10, 2, 10, 5]},
        {"path": "b.py", "range": [3, 0, 3, 4]},
    ]


def test_locations_accept_every_answer_shape() -> None:
    single = lsp_loc("file:///ws/project/pkg/m.py", 1, 4, 1, 8)
    link = {"targetUri": "file:///ws/project/pkg/m.py",
            "targetRange": {"start": {"line": 0, "character": 0}, "end": {"line": 3, "character": 0}},
            "targetSelectionRange": {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 8}}}
    expected = [{"path": "pkg/m.py", "range": [1, 4, 1, 8]}]
    assert N.locations(single, ROOT) == expected
    assert N.locations([single], ROOT) == expected
    assert N.locations([link], ROOT) == expected      # a LocationLink gives its selection range
    assert N.locations([link, single], ROOT) == expected
    assert N.locations(None, ROOT) == []
    assert N.locations([], ROOT) == []


def test_locations_outside_the_workspace_are_portable() -> None:
    raw = [lsp_loc("file:///opt/x/node_modules/pyright/dist/typeshed-fallback/stdlib/builtins.pyi", 5, 0, 5, 3),
           lsp_loc("file:///home/me/.venv/lib/python3.11/site-packages/click/core.py", 1, 0, 1, 1)]
    paths = [loc["path"] for loc in N.locations(raw, ROOT)]
    assert paths == ["site-packages://click/core.py", "typeshed://stdlib/builtins.pyi"]
    assert not any("/home/me" in p or "/opt/x" in p for p in paths)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a.py", "b/c.py", "b.py", "é.py"]),
                          *[st.integers(0, 20)] * 4), max_size=30))
def test_locations_sort_key_property(items: list[tuple[Any, ...]]) -> None:
    raw = [lsp_loc("file:///ws/project/" + p, *r) for p, *r in items]
    out = N.locations(raw, ROOT)
    keys = [(loc["path"], *loc["range"]) for loc in out]
    assert keys == sorted(set(keys))
    assert set(keys) == {(p, *r) for p, *r in items}


def test_diagnostics_sorted_with_tie_breakers() -> None:
    rng = {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 2}}
    by_file = {"b.py": [{"range": rng, "severity": 2, "code": "z", "message": "m"}],
               "a.py": [{"range": rng, "severity": 1, "code": "y", "message": "n"},
                        {"range": rng, "severity": 1, "code": "x", "message": "o"}]}
    out = N.diagnostics(by_file)
    assert [(d["path"], d["code"]) for d in out] == [("a.py", "x"), ("a.py", "y"), ("b.py", "z")]
    assert N.count_diagnostics(out, ["a.py", "b.py", "c.py"]) == {
        "errors": 2, "warnings": 1, "informations": 0,
        "byFile": {"a.py": {"errors": 2, "warnings": 0}, "b.py": {"errors": 0, "warnings": 1},
                   "c.py": {"errors": 0, "warnings": 0}}}


# -- truncation -----------------------------------------------------------------------------------

def test_truncate_pages_with_a_cursor() -> None:
    items = list(range(10))
    assert N.truncate(items, 0, 4) == ([0, 1, 2, 3], True, 4)
    assert N.truncate(items, 4, 4) == ([4, 5, 6, 7], True, 8)
    assert N.truncate(items, 8, 4) == ([8, 9], False, None)
    assert N.truncate(items, 0, 10) == (items, False, None)
    assert N.truncate([], 0, 4) == ([], False, None)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(), max_size=50), st.integers(1, 12))
def test_following_the_cursor_gives_back_the_whole_list(items: list[int], limit: int) -> None:
    pages: list[int] = []
    cursor = 0
    while True:
        page, truncated, nxt = N.truncate(items, cursor, limit)
        pages.extend(page)
        assert truncated == (nxt is not None)
        if not truncated:
            break
        assert len(page) == limit and nxt is not None
        cursor = nxt
    assert pages == items


def test_default_limit_is_the_contract_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    assert N.MAX_LIST == 100_000
    items = list(range(100_001))
    page, truncated, cursor = N.truncate(items)
    assert len(page) == 100_000 and truncated and cursor == 100_000
    monkeypatch.setattr(N, "MAX_LIST", 3)  # read at call time
    assert N.truncate(items[:5]) == ([0, 1, 2], True, 3)


@pytest.mark.server
def test_bundle_meta_when_truncated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """refs of apply_discount has 8 entries: with the cap at 3, three pages through --cursor."""
    monkeypatch.setattr(N, "MAX_LIST", 3)
    runner = EngineRunner(copy_fixture("srcpkg", tmp_path / "srcpkg"))
    try:
        full: list[dict[str, Any]] = []
        metas = []
        for cursor in (0, 3, 6):
            b = runner.run("refs", "src/shop/pricing.py@L1:C5", cursor=cursor)
            assert b["status"] == "ok", b["error"]
            full += b["facts"]["references"]
            metas.append({k: b["meta"].get(k) for k in ("truncated", "cursor", "total")})
    finally:
        runner.close()
    assert metas == [{"truncated": True, "cursor": 3, "total": 8},
                     {"truncated": True, "cursor": 6, "total": 8},
                     {"truncated": False, "cursor": None, "total": 8}]
    assert len(full) == 8 and [(x["path"], *x["range"]) for x in full] == \
        sorted((x["path"], *x["range"]) for x in full)
