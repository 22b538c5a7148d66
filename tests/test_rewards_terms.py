"""The delta and regression diagnostic terms, and the masking heuristic."""

from __future__ import annotations

from typing import Any

import pytest

from lanser.rewards.terms import counted, diag_term, removed_imports

BASE = '''import json
from os import path


def load(text: str) -> int:
    data = json.loads(text)
    n: int = data.title()
    return n


def other() -> str:
    return 1
'''


def diag(rng, message, code, path="m.py", severity="error"):
    return {"path": path, "range": list(rng), "severity": severity, "code": code,
            "message": message, "source": "Pyright"}


RET = diag([11, 11, 11, 12], 'Type "Literal[1]" is not assignable to return type "str"',
           "reportReturnType")
ASSIGN = diag([6, 13, 6, 25], 'Type "str" is not assignable to declared type "int"',
              "reportAssignmentType")


def test_genuine_fix_counts_in_both_terms():
    fixed = BASE.replace("return 1", 'return "1"')
    for mode in ("delta", "regression"):
        res = diag_term([RET, ASSIGN], [ASSIGN], mode=mode, texts_before={"m.py": BASE},
                        texts_after={"m.py": fixed})
        assert res.term == 1
        assert [d["masked"] for d in res.resolved] == [None]


def test_unknown_type_masking():
    """A misspelled name makes the error vanish and adds one: delta 0, regression -1."""
    broken = BASE.replace("json.loads", "jsn.loads")
    undefined = diag([5, 11, 5, 14], '"jsn" is not defined', "reportUndefinedVariable")
    ctx: dict[str, Any] = {"texts_before": {"m.py": BASE}, "texts_after": {"m.py": broken}}
    assert diag_term([RET, ASSIGN], [RET, undefined], mode="delta", **ctx).term == 0
    res = diag_term([RET, ASSIGN], [RET, undefined], mode="regression", **ctx)
    assert res.term == -1
    assert [d["masked"] for d in res.resolved] == ["unknown-type"]
    assert res.persisting == 1


def test_removed_import_masks_but_not_its_own_diagnostic():
    no_import = BASE.replace("from os import path\n", "")
    bad_import = diag([1, 5, 1, 7], 'Import "os" could not be resolved', "reportMissingImports")
    ctx: dict[str, Any] = {"texts_before": {"m.py": BASE}, "texts_after": {"m.py": no_import}}
    assert removed_imports(BASE, no_import) == [("from os import path", 1, 1)]
    res = diag_term([bad_import], [], mode="regression", **ctx)
    assert res.term == 1 and res.resolved[0]["masked"] is None
    ret_shifted = {**RET, "range": [10, 11, 10, 12]}
    res = diag_term([bad_import, ASSIGN, RET], [ret_shifted], mode="regression", **ctx)
    assert [(d["code"], d["masked"]) for d in res.resolved] == [
        ("reportMissingImports", None), ("reportAssignmentType", "import-removed")]
    assert res.term == 1


def test_symbol_broken_masking():
    changed = BASE.replace("n: int = data.title()", "n: int = data.title(1, 2)")
    call = diag([6, 13, 6, 29], "Expected 0 positional arguments", "reportCallIssue")
    res = diag_term([ASSIGN], [call], mode="regression", texts_before={"m.py": BASE},
                    texts_after={"m.py": changed})
    assert res.resolved[0]["masked"] == "symbol-broken"
    assert res.term == -1
    assert diag_term([ASSIGN], [call], mode="delta", texts_before={"m.py": BASE},
                     texts_after={"m.py": changed}).term == 0


def test_errors_elsewhere_do_not_mask():
    other_file = diag([0, 0, 0, 3], '"zzz" is not defined', "reportUndefinedVariable", path="n.py")
    fixed = BASE.replace("return 1", 'return "1"')
    res = diag_term([RET], [other_file], mode="regression",
                    texts_before={"m.py": BASE, "n.py": "zzz\n"},
                    texts_after={"m.py": fixed, "n.py": "zzz\n"})
    assert res.resolved[0]["masked"] is None
    assert res.term == 0  # +1 genuine, -1 introduced


def test_preexisting_errors_never_count():
    shifted = "\n\n" + BASE
    moved = [{**d, "range": [d["range"][0] + 2, d["range"][1], d["range"][2] + 2, d["range"][3]]}
             for d in (RET, ASSIGN)]
    res = diag_term([RET, ASSIGN], moved, mode="regression", texts_before={"m.py": BASE},
                    texts_after={"m.py": shifted})
    assert res.term == 0 and res.introduced == [] and res.resolved == [] and res.persisting == 2


def test_counted_filters_severity_and_scope():
    ds = [RET, {**ASSIGN, "severity": "warning"}, {**RET, "path": "n.py"}]
    assert counted(ds) == [RET, {**RET, "path": "n.py"}]
    assert counted(ds, ("error", "warning"), ["m.py"]) == ds[:2]


def test_unknown_mode():
    with pytest.raises(ValueError):
        diag_term([], [], mode="bogus")
