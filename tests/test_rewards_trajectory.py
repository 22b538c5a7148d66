"""fixtures/trajectory: the steps apply as described, the pinned pyright CLI gives the
recorded counts after every step, and the reward records built from those runs
follow Eq. 5.1.  Starts node for every step: marked ``server``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lanser.pyright_cli import count_by_severity, normalize_diagnostics, run_pyright_json
from lanser.rewards.identity import parse
from lanser.rewards.records import aggregate, build_record

pytestmark = pytest.mark.server

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "trajectory"
STEPS = [json.loads(line) for line in (FIXTURE / "steps.jsonl").read_text("utf-8").splitlines()]
EXPECTED = json.loads((FIXTURE / "expected_counts.json").read_text("utf-8"))["steps"]


def texts(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text("utf-8") for p in root.rglob("*.py")}


def body_edit(text: str, func: str, new_body: str) -> str:
    """What ``py://mod#func:body`` + edit means: replace the function's block node."""
    data = text.encode("utf-8")
    stack = [parse(text).root_node]
    while stack:
        node = stack.pop()
        name = node.child_by_field_name("name") if node.type == "function_definition" else None
        if name is not None and name.text == func.encode():
            body = node.child_by_field_name("body")
            assert body is not None
            return (data[:body.start_byte] + new_body.encode() + data[body.end_byte:]).decode()
        stack.extend(node.children)
    raise AssertionError(f"no function {func}")


def test_fixture_shape():
    assert len(STEPS) >= 8 and len(EXPECTED) == len(STEPS) + 1
    ops = {s["op"] for s in STEPS}
    assert {"query", "patch", "write", "rename", "edit", "reset"} <= ops
    assert [e["id"] for e in EXPECTED[1:]] == [s["id"] for s in STEPS]
    errors = [e["errors"] for e in EXPECTED]
    assert any(b > a for a, b in zip(errors, errors[1:]))  # errors rise ...
    assert any(b < a for a, b in zip(errors, errors[1:]))  # ... and fall
    assert any(e["status"] == "error" for e in EXPECTED[1:])


def test_replay_counts_and_rewards(tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURE / "workspace", ws)
    initial = tmp_path / "initial"
    shutil.copytree(ws, initial)

    result = run_pyright_json(ws)
    assert count_by_severity(result, ws) == {k: EXPECTED[0][k] for k in
                                            ("errors", "warnings", "informations", "byFile")}
    before, texts_before = normalize_diagnostics(result, ws), texts(ws)
    records = []
    for n, (step, expected) in enumerate(zip(STEPS, EXPECTED[1:]), start=1):
        status = "ok"
        if step["op"] == "patch":
            proc = subprocess.run(["git", "apply", "--whitespace=nowarn", "-"], input=step["patch"],
                                  cwd=ws, capture_output=True, text=True,
                                  env={**os.environ, "GIT_CEILING_DIRECTORIES": str(tmp_path)})
            status = "ok" if proc.returncode == 0 else "error"
        elif step["op"] == "write":
            (ws / step["path"]).write_text(step["content"], encoding="utf-8")
        elif step["op"] in ("rename", "edit"):
            writes = expected["equivalentWrites"]
            if step["op"] == "edit":
                mod, _, rest = step["selector"].removeprefix("py://").partition("#")
                func = rest.split(":")[0]
                path = mod.replace(".", "/") + ".py"
                assert writes == {path: body_edit((ws / path).read_text("utf-8"), func,
                                                  step["text"])}
            for rel, content in writes.items():
                (ws / rel).write_text(content, encoding="utf-8")
        elif step["op"] == "reset":
            shutil.rmtree(ws)
            shutil.copytree(initial, ws)
        assert status == expected["status"], step["id"]

        result = run_pyright_json(ws)
        counts = count_by_severity(result, ws)
        assert counts == {k: expected[k] for k in ("errors", "warnings", "informations", "byFile")}, \
            step["id"]
        after, texts_after = normalize_diagnostics(result, ws), texts(ws)
        rec = build_record(step=n, step_id=step["id"], op=step["op"], status=status,
                           exit_code=0 if status == "ok" else 70, before=before,
                           after=after if status == "ok" else None,
                           texts_before=texts_before, texts_after=texts_after)
        pr = rec["processReward"]
        assert pr["components"]["diag_after"] == expected["errors"]
        s = 1 if status == "ok" else 0
        assert pr["r"] == round(0.5 * (pr["components"]["diag_before"] - expected["errors"])
                                + 0.4 * (2 * s - 1), 6)
        # identities: introduced - resolved accounts for the whole count change
        assert len(rec["introduced"]) - len(rec["resolved"]) == -pr["components"]["diag_delta"]
        records.append(rec)
        before, texts_before = after, texts_after

    by_id = {r["id"]: r for r in records}
    # the rename of load_data breaks exactly one import in the caller; banner() persists
    assert [(d["path"], d["code"]) for d in by_id["rename-breaks-caller"]["introduced"]] == [
        ("pkg/report.py", "reportAttributeAccessIssue")]
    assert by_id["rename-breaks-caller"]["resolved"] == []
    # the server-side rename moves nothing that is broken
    assert by_id["rename-total"]["introduced"] == by_id["rename-total"]["resolved"] == []
    # the pre-existing error is fixed at fix-banner and re-appears at reset
    assert [d["symbol"] for d in by_id["fix-banner"]["resolved"]] == ["banner"]
    assert [d["symbol"] for d in by_id["reset"]["introduced"]] == ["banner"]
    # potential-based shaping: the diagnostic terms telescope to D_0 - D_T
    total_delta = sum(r["processReward"]["components"]["diag_delta"] for r in records)
    assert total_delta == EXPECTED[0]["errors"] - EXPECTED[-1]["errors"]
    values = aggregate(records, "min")
    assert values[0]["return"] == min(r["processReward"]["r"] for r in records)
