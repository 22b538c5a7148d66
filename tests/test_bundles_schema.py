"""The shipped JSON Schemas: well-formed, exported verbatim, strict enough to fail, and
every golden bundle valid.  No server is started here."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from schema_helpers import assert_valid, assert_valid_bundle

from lanser.bundles.schema import KINDS, errors, load_schema, schema_text

GOLDEN = Path(__file__).resolve().parent / "golden"
LANSER = [sys.executable, "-m", "lanser"]


def golden_bundles() -> list[Path]:
    return sorted(GOLDEN.glob("*.json"))


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LANSER, *args], capture_output=True, text=True, cwd=cwd, timeout=60)


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_valid_draft_2020_12(kind: str) -> None:
    doc = load_schema(kind)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(doc)


def test_goldens_exist() -> None:
    assert len(golden_bundles()) >= 15


@pytest.mark.parametrize("path", golden_bundles(), ids=lambda p: p.stem)
def test_every_golden_bundle_validates(path: Path) -> None:
    assert_valid_bundle(json.loads(path.read_bytes()))


@pytest.fixture
def ok_bundle() -> dict:
    return json.loads((GOLDEN / "srcpkg-def-cursor.json").read_bytes())


@pytest.mark.parametrize("mutate, where", [
    (lambda b: b.pop("meta"), "meta"),
    (lambda b: b.update(version="1.1"), "version"),
    (lambda b: b.update(bundleId="sha1:00"), "bundleId"),
    (lambda b: b.update(extra=1), "extra"),
    (lambda b: b["facts"]["definitions"][0].update(range=[0, 4, 0]), "range"),
    (lambda b: b["facts"]["definitions"][0].update(range=[0, -1, 0, 3]), "range"),
    (lambda b: b.update(status="error"), "error"),
    (lambda b: b["request"].update(selector={"kind": "cursor", "path": "a.py", "line": 1}), "selector"),
    (lambda b: b["environment"].update(positionEncoding="latin-1"), "positionEncoding"),
])
def test_bundle_schema_rejects(ok_bundle: dict, mutate, where: str) -> None:
    bad = copy.deepcopy(ok_bundle)
    mutate(bad)
    msgs = errors("bundle", bad)
    assert msgs, f"schema accepted a bundle with a broken {where}"


@pytest.mark.parametrize("spec", [
    {"kind": "cursor", "path": "src/a.py", "line": 0, "col": 3, "indexing": "utf-16"},
    {"kind": "range", "path": "a.py", "line": 0, "col": 0, "endLine": 2, "endCol": 1},
    {"kind": "symbol", "qualname": "pkg.mod#Class.method", "role": "body"},
    {"kind": "symbol", "module": "pkg.mod", "qualname": "f", "overload": 2},
    {"kind": "ast", "path": [["module", "pkg.mod"], ["class", "C"], ["call", 2]]},
    {"kind": "anchor", "path": "a.py", "snippet": "def f(", "ctx": 24, "hash": "abc123"},
    {"kind": "cursor", "path": "a.py", "line": 0, "col": 0, "docVersion": "git:" + "a" * 40},
])
def test_selector_schema_accepts(spec: dict) -> None:
    assert_valid("selector", spec)


@pytest.mark.parametrize("spec", [
    {"kind": "cursor", "path": "a.py", "line": 0},
    {"kind": "cursor", "path": "a.py", "line": -1, "col": 0},
    {"kind": "weird"},
    {"kind": "anchor", "path": "a.py", "snippet": ""},
    {"kind": "symbol", "qualname": "f", "role": "head"},
    {"kind": "cursor", "path": "a.py", "line": 0, "col": 0, "colour": 1},
])
def test_selector_schema_rejects(spec: dict) -> None:
    assert errors("selector", spec)


@pytest.mark.parametrize("step, ok", [
    ({"op": "query", "cmd": "def", "selector": "a.py@L1:C1", "id": 1}, True),
    ({"op": "query", "cmd": "diag"}, True),
    ({"op": "query", "cmd": "def"}, False),
    ({"op": "query", "cmd": "explode", "selector": "x"}, False),
    ({"op": "patch", "patch": "--- a\n+++ b\n"}, True),
    ({"op": "write", "path": "x.py"}, False),
    ({"op": "rename", "selector": {"kind": "symbol", "qualname": "m#f"}, "newName": "g"}, True),
    ({"op": "reset"}, True),
    ({"op": "dance"}, False),
])
def test_step_schema(step: dict, ok: bool) -> None:
    assert (not errors("step", step)) is ok


def test_export_writes_the_shipped_files(tmp_path: Path) -> None:
    out = tmp_path / "schemas"
    proc = run("schema", "export", str(out))
    assert proc.returncode == 0, proc.stderr
    for kind in KINDS:
        assert (out / f"{kind}.json").read_text(encoding="utf-8") == schema_text(kind)


def test_validate_file_and_jsonl(tmp_path: Path, ok_bundle: dict) -> None:
    one = tmp_path / "one.json"
    one.write_text(json.dumps(ok_bundle))
    assert run("schema", "validate", "bundle", str(one)).returncode == 0
    lines = tmp_path / "steps.jsonl"
    lines.write_text('{"op":"query","cmd":"diag"}\n\n{"op":"reset"}\n')
    proc = run("schema", "validate", "step", str(lines))
    assert proc.returncode == 0 and "2/2 valid" in proc.stdout
    lines.write_text('{"op":"query","cmd":"diag"}\nnot json\n{"op":"dance"}\n')
    proc = run("--json", "schema", "validate", "step", str(lines))
    assert proc.returncode == 2
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["valid"] for r in results] == [True, False, False]
    assert [r["line"] for r in results] == [1, 2, 3]
    assert "Traceback" not in proc.stderr


def test_validate_errors_are_clear(tmp_path: Path) -> None:
    proc = run("schema", "validate", "bundle", str(tmp_path / "missing.json"))
    assert proc.returncode == 3 and "E/NOT_FOUND" in proc.stderr
    proc = run("schema", "validate", "nonsense", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = run("schema", "validate-batch", "bundle", str(tmp_path / "nodir"))
    assert proc.returncode == 3


def test_validate_batch_over_goldens(tmp_path: Path) -> None:
    proc = run("schema", "validate-batch", "bundle", str(GOLDEN))
    assert proc.returncode == 0, proc.stdout
    assert f"{len(golden_bundles())}/{len(golden_bundles())} files valid" in proc.stdout
    proc = run("schema", "validate-batch", "reward-record", str(GOLDEN / "rewards"))
    assert proc.returncode == 0 and "1/1 files valid (12/12 documents)" in proc.stdout, proc.stdout
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    (bad_dir / "a.json").write_text("{}")
    (bad_dir / "b.json").write_bytes((GOLDEN / "srcpkg-def-cursor.json").read_bytes())
    proc = run("schema", "validate-batch", "bundle", str(bad_dir))
    assert proc.returncode == 2
    assert "1/2 files valid" in proc.stdout
