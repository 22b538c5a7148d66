"""Reward records and trajectory aggregation, from pure inputs."""

from __future__ import annotations

import json

import pytest

from lanser.rewards.formula import Weights
from lanser.rewards.records import RECORD_KEYS, aggregate, build_record

BEFORE_TEXT = "def f() -> int:\n    return 'x'\n\n\ndef g():\n    pass\n"
AFTER_TEXT = "def f() -> int:\n    return 1\n\n\ndef g():\n    return nope\n"


def d(path, rng, sev, code, msg):
    return {"path": path, "range": rng, "severity": sev, "code": code, "message": msg,
            "source": "Pyright"}


RET = d("a.py", [1, 11, 1, 14], "error", "reportReturnType", "bad return")
WARN = d("b.py", [0, 0, 0, 1], "warning", "reportUnusedImport", "unused")
INFO = d("b.py", [0, 0, 0, 1], "information", None, "fyi")
NOPE = d("a.py", [5, 11, 5, 15], "error", "reportUndefinedVariable", '"nope" is not defined')


def test_record_shape_and_counts():
    rec = build_record(step=1, op="patch", step_id="s1", bundle_id="sha256:abc",
                       before=[RET, WARN, INFO], after=[NOPE, WARN, INFO],
                       texts_before={"a.py": BEFORE_TEXT}, texts_after={"a.py": AFTER_TEXT},
                       alpha_conf=0.9)
    assert tuple(rec) == RECORD_KEYS
    assert rec["diagnostics"] == {"errors": 1, "warnings": 1, "informations": 1,
                                  "byFile": {"a.py": {"errors": 1, "warnings": 0},
                                             "b.py": {"errors": 0, "warnings": 1}}}
    pr = rec["processReward"]
    assert pr["components"]["diag_before"] == 1 and pr["components"]["diag_after"] == 1
    assert pr["r"] == round(0.4 - 0.1 * 0.1, 6)
    assert [x["symbol"] for x in rec["introduced"]] == ["g"]
    # the documented over-approximation: an undefined name anywhere in the file masks
    assert [(x["symbol"], x["masked"]) for x in rec["resolved"]] == [("f", "unknown-type")]
    json.dumps(rec)  # serializable


def test_regression_term_and_severities():
    rec = build_record(step=2, op="write", before=[RET, WARN], after=[NOPE],
                       texts_before={"a.py": BEFORE_TEXT}, texts_after={"a.py": AFTER_TEXT},
                       diag_term_mode="regression", severities=("error", "warning"))
    pr = rec["processReward"]
    # delta would be 2 - 1 = +1; regression masks the fix (undefined name in a.py) and the
    # warning in b.py is genuinely gone: 1 genuine - 1 introduced
    assert pr["components"]["diag_delta"] == 1
    assert pr["diagTerm"] == "regression" and pr["term"] == 0
    assert [x["masked"] for x in rec["resolved"]] == ["unknown-type", None]


def test_scope_touched():
    rec = build_record(step=1, op="write", before=[RET, WARN], after=[RET],
                       severities=("error", "warning"), scope_paths=["b.py"])
    assert rec["processReward"]["components"]["diag_before"] == 1
    assert rec["processReward"]["components"]["diag_after"] == 0


def test_failed_step_keeps_the_workspace():
    err = {"code": "E/APPLY_CONFLICT", "exitCode": 70, "message": "hunk 1 failed",
           "retryable": "manual"}
    rec = build_record(step=3, op="patch", before=[RET], after=[], status="error", exit_code=70,
                       error=err, alpha_conf=1.0)
    assert rec["status"] == "error" and rec["exitCode"] == 70 and rec["error"] == err
    assert rec["diagnostics"]["errors"] == 1
    assert rec["processReward"]["components"]["safety"] == 0
    assert rec["processReward"]["r"] == -0.4
    assert rec["introduced"] == [] and rec["resolved"] == []


def test_clip_and_weights_recorded():
    many = [d("a.py", [i, 0, i, 1], "error", "x", f"m{i}") for i in range(6)]
    rec = build_record(step=1, op="write", before=many, after=[], clip=2.0,
                       weights=Weights(alpha=1.0, beta=0.0, gamma=0.0))
    assert rec["processReward"]["r"] == 2.0 and rec["processReward"]["clip"] == 2


def test_aggregate():
    recs = [build_record(step=i + 1, op="write", before=[RET] * b, after=[RET] * a)
            for i, (b, a) in enumerate([(0, 2), (2, 1), (1, 0)])]
    rs = [r["processReward"]["r"] for r in recs]
    assert rs == [round(0.5 * -2 + 0.4, 6), 0.9, 0.9]
    summed = aggregate(recs, "sum")
    assert [r["value"] for r in summed] == [round(sum(rs), 6), 1.8, 0.9]
    assert all(r["return"] == round(sum(rs), 6) for r in summed)
    mins = aggregate(recs, "min")
    assert [r["value"] for r in mins] == [-0.6, 0.9, 0.9] and mins[0]["return"] == -0.6
    assert "value" not in recs[0]  # inputs untouched
    with pytest.raises(ValueError):
        aggregate(recs, "avg")
