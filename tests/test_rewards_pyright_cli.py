"""The pinned Pyright CLI runner and its counts (starts node: marked ``server``)."""

from __future__ import annotations

import json

import pytest
from conftest import write_tree

from lanser.errors import NotFound
from lanser.pyright_cli import count_by_severity, normalize_diagnostics, run_pyright_json

pytestmark = pytest.mark.server




def test_counts_and_relative_paths(tmp_path):
    root = write_tree(tmp_path / "ws", {
        "pkg/__init__.py": "",
        "pkg/a.py": 'x: int = "s"\nimport not_a_module_anywhere\n',
        "pkg/b.py": "def f() -> str:\n    return 1\n",
        "pkg/ok.py": "y = 1\n",
    })
    result = run_pyright_json(root)
    assert result["version"] == "1.1.407"
    counts = count_by_severity(result, root)
    assert counts == {"errors": 3, "warnings": 0, "informations": 0,
                      "byFile": {"pkg/a.py": {"errors": 2, "warnings": 0},
                                 "pkg/b.py": {"errors": 1, "warnings": 0}}}
    assert counts["errors"] == result["summary"]["errorCount"]
    diags = normalize_diagnostics(result, root)
    assert [(d["path"], d["range"], d["code"]) for d in diags] == [
        ("pkg/a.py", [0, 9, 0, 12], "reportAssignmentType"),
        ("pkg/a.py", [1, 7, 1, 28], "reportMissingImports"),
        ("pkg/b.py", [1, 11, 1, 12], "reportReturnType"),
    ]
    assert all(not d["path"].startswith("/") for d in diags)


def test_project_configuration_is_honoured(tmp_path):
    root = write_tree(tmp_path / "ws", {
        "pyrightconfig.json": json.dumps({"include": ["src"], "pythonVersion": "3.11",
                                          "reportMissingImports": "warning"}),
        "src/m.py": "import not_a_module_anywhere\nz: int = 'q'\n",
        "scratch/ignored.py": "a: int = 'not counted'\n",
    })
    counts = count_by_severity(run_pyright_json(root), root)
    assert counts == {"errors": 1, "warnings": 1, "informations": 0,
                      "byFile": {"src/m.py": {"errors": 1, "warnings": 1}}}


def test_same_counts_from_another_directory(tmp_path):
    files = {"m.py": "def f(a: int) -> int:\n    return a.nope\n"}
    c1 = count_by_severity(run_pyright_json(write_tree(tmp_path / "one", files)), tmp_path / "one")
    c2 = count_by_severity(run_pyright_json(write_tree(tmp_path / "two", files)), tmp_path / "two")
    assert c1 == c2 and c1["errors"] == 1


def test_missing_workspace(tmp_path):
    with pytest.raises(NotFound):
        run_pyright_json(tmp_path / "absent")
