"""rewards/affected.py and rewards/stdlib.py: which files' diagnostics a step can change.

Pure tests of the import-graph rule (the server-backed checks that the counts stay equal
to ``pyright --outputjson`` are in test_reward_affected_server.py)."""

from __future__ import annotations

import json
from pathlib import Path

from lanser.rewards import stdlib
from lanser.rewards.affected import ImportGraph, affected_files, module_names, parse_imports

STDLIB = frozenset({"types", "typing", "os", "json", "sys", "collections"})


def graph(files: dict[str, str], stdlib: frozenset[str] = STDLIB) -> ImportGraph:
    return ImportGraph({rel: parse_imports(rel, text) for rel, text in files.items()}, stdlib)


def affected(files: dict[str, str], changes: dict[str, str], **kw) -> set[str] | None:
    out = affected_files(graph(files), changes, previous_files=kw.pop("previous_files", files), **kw)
    return None if out is None else set(out)


# -- names ----------------------------------------------------------------------------------

def test_module_names_cover_every_search_root():
    assert module_names("src/pkg/m.py") == {"m", "pkg.m", "src.pkg.m"}
    assert module_names("pkg/__init__.pyi") == {"pkg"}
    assert module_names("typings/foo-stubs/bar.pyi") >= {"foo.bar", "foo-stubs.bar", "bar"}
    assert module_names("pkg/data/table.csv") == {"data", "pkg.data"}  # a data file: its directory
    assert module_names("__init__.py") == frozenset()


def test_parse_imports_names_modules_parents_and_relative_paths():
    text = ("import a.b.c\nfrom x.y import z\nfrom . import sib\nfrom ..up import thing\n"
            "from .mod import *\nfrom ..... import too_high\n"
            "if True:\n    import cond\n"
            "def f():\n    from late import v\n"
            "try:\n    import maybe\nexcept ImportError:\n    pass\n")
    imp = parse_imports("pkg/sub/n.py", text)
    assert imp is not None
    assert imp.modules == {"a", "a.b", "a.b.c", "x.y", "x.y.z", "cond", "late", "late.v", "maybe"}
    assert "x" not in imp.modules  # a from-import reads only the module it names
    assert imp.relative == {"pkg.sub", "pkg.sub.sib", "pkg.up", "pkg.up.thing", "pkg.sub.mod"}
    assert imp.relative_wildcards == {"pkg.sub.mod"}
    assert imp.absolute_tops == {"a", "x", "cond", "late", "maybe"}
    assert parse_imports("bad.py", "def (:\n") is None


# -- the rule ---------------------------------------------------------------------------------

CHAIN = {
    "pkg/__init__.py": "",
    "pkg/base.py": "def f() -> int:\n    return 1\n",
    "pkg/mid.py": "from pkg.base import f\n",
    "pkg/top.py": "from .mid import f\n",
    "pkg/alone.py": "import os\n",
    "app.py": "import pkg.top\n",
}


def test_a_change_reaches_importers_transitively_and_nothing_else():
    assert affected(CHAIN, {"pkg/base.py": "changed"}) == {"pkg/base.py", "pkg/mid.py", "pkg/top.py", "app.py"}
    assert affected(CHAIN, {"pkg/alone.py": "changed"}) == {"pkg/alone.py"}
    assert affected(CHAIN, {"app.py": "changed"}) == {"app.py"}


def test_package_init_reaches_plain_imports_of_its_submodules_but_not_from_imports():
    # ``import pkg.top`` binds ``pkg`` (its __init__); ``from pkg.base import f`` does not.
    assert affected(CHAIN, {"pkg/__init__.py": "changed"}) == {"pkg/__init__.py", "app.py"}


def test_created_file_reaches_the_unresolved_import_it_satisfies():
    files = {**CHAIN, "main.py": "from pkg import helper\n", "other.py": "import pkg.base\n",
             "pkg/helper.py": "def go() -> int:\n    return 1\n"}
    assert affected(files, {"pkg/helper.py": "created"}) == {"pkg/helper.py", "main.py"}
    without = {k: v for k, v in files.items() if k != "pkg/helper.py"}
    assert affected(without, {"pkg/helper.py": "deleted"}, previous_files=files) == {"main.py"}
    assert affected(without, {"pkg/helper.py": "deleted"}) is None  # never checked: unsure


def test_stub_beside_a_module_and_new_directories():
    files = {**CHAIN, "pkg/base.pyi": "def f() -> str: ...\n"}
    assert affected(files, {"pkg/base.pyi": "created"}) == {"pkg/base.pyi", "pkg/mid.py", "pkg/top.py", "app.py"}
    files = {"user.py": "import newdir\n", "newdir/x.py": "", "plain.py": "import os\n"}
    assert affected(files, {"newdir/x.py": "created"}) == {"newdir/x.py", "user.py"}  # namespace package
    files = {"user.py": "import newdir\n", "newdir/x.py": "", "newdir/y.py": ""}
    assert affected(files, {"newdir/y.py": "created"}) == {"newdir/y.py"}  # newdir was there already


def test_wildcard_imports_see_every_submodule():
    files = {"pkg/__init__.py": "", "pkg/z.py": "", "star.py": "from pkg import *\n", "no.py": "import os\n"}
    assert affected(files, {"pkg/z.py": "created"}) == {"pkg/z.py", "star.py"}
    assert affected(files, {"pkg/z.py": "changed"}) == {"pkg/z.py", "star.py"}


def test_relative_imports_match_by_path_under_src():
    files = {"src/pkg/__init__.py": "", "src/pkg/m.py": "X = 1\n", "src/pkg/n.py": "from .m import X\n",
             "src/pkg/o.py": "from . import m\n", "tests/t.py": "from pkg.m import X\n", "p.py": "import os\n"}
    assert affected(files, {"src/pkg/m.py": "changed"}) == {"src/pkg/m.py", "src/pkg/n.py", "src/pkg/o.py",
                                                            "tests/t.py"}


def test_standard_library_names_inside_a_package_are_not_matched():
    files = {"pkg/__init__.py": "", "pkg/types.py": "", "user.py": "import types\n",
             "types_user.py": "from pkg import types\n"}
    assert affected(files, {"pkg/types.py": "changed"}) == {"pkg/types.py", "types_user.py"}
    # at a possible search root the same name is kept (a stubPath like typings/ comes first)
    files = {"typings/types.pyi": "", "user.py": "import types\n"}
    assert affected(files, {"typings/types.pyi": "changed"}) == {"typings/types.pyi", "user.py"}
    # the importing file's own directory is tried last for a name found nowhere else
    files = {"pkg/__init__.py": "", "pkg/helpers.py": "", "pkg/m.py": "import helpers\n"}
    assert affected(files, {"pkg/helpers.py": "changed"}) == {"pkg/helpers.py", "pkg/m.py"}


def test_unsure_means_everything():
    assert affected(CHAIN, {"pyproject.toml": "changed"}) is None
    assert affected(CHAIN, {"pyrightconfig.json": "created"}) is None
    assert affected(CHAIN, {"conf/base.json": "changed"}) is None  # a config may extend it
    assert affected(CHAIN, {"pkg/py.typed": "created"}) is None
    assert affected(CHAIN, {"pkg/fast.so": "created"}) is None
    assert affected({**CHAIN, "__init__.py": ""}, {"__init__.py": "changed"}) is None
    assert affected({**CHAIN, "__builtins__.pyi": ""}, {"__builtins__.pyi": "created"}) is None
    # a Python file the server does not check (an excluded directory)
    assert affected(CHAIN, {".venv/lib/x.py": "changed"}) is None
    assert affected(CHAIN, {"build/new.py": "created"}) is None


def test_data_files_unparsable_files_and_no_change():
    assert affected(CHAIN, {"README.md": "changed"}) == set()
    assert affected(CHAIN, {}) == set()
    broken = {**CHAIN, "pkg/broken.py": "def (:\n"}
    assert affected(broken, {"pkg/alone.py": "changed"}) == {"pkg/alone.py", "pkg/broken.py"}
    assert affected(broken, {"README.md": "changed"}) == set()


def test_files_using_libraries_are_reached_by_any_python_change():
    # a library may import a workspace module (the server resolves the workspace first)
    files = {"mylib/__init__.py": "", "mylib/core.py": "", "uses_requests.py": "import requests\n",
             "uses_json.py": "import json\n", "user.py": "import uses_requests\n"}
    assert affected(files, {"mylib/core.py": "changed"}) == {"mylib/core.py", "uses_requests.py", "user.py"}
    assert affected(files, {"notes.txt": "created"}) == set()


# -- stdlib.py -----------------------------------------------------------------------------------

def fake_typeshed(tmp_path: Path) -> Path:
    ts = tmp_path / "typeshed"
    (ts / "stdlib").mkdir(parents=True)
    (ts / "stdlib" / "VERSIONS").write_text(
        "# comment\nos: 3.0-\ntyping: 3.5-  # since 3.5\ntomllib: 3.11-\ndistutils: 3.0-3.11\nasyncio.tools: 3.14-\n")
    return ts


def test_stdlib_names_follow_versions(tmp_path):
    ts = fake_typeshed(tmp_path)
    assert stdlib.stdlib_names(ts, (3, 10)) == {"os", "typing"}
    assert stdlib.stdlib_names(ts, (3, 12)) == {"os", "typing", "tomllib"}
    assert stdlib.stdlib_names(None, (3, 12)) == frozenset()
    real = stdlib.stdlib_names(stdlib.typeshed_dir("pyright"), (3, 11))
    assert {"os", "typing", "typing_extensions", "_typeshed", "types", "json"} <= real
    assert "distutils" not in real and "click" not in real


def test_python_version_takes_the_older_of_interpreter_and_config(tmp_path):
    assert stdlib.python_version(tmp_path, "3.12.1") == (3, 12)
    (tmp_path / "pyrightconfig.json").write_text(json.dumps({"pythonVersion": "3.9"}))
    assert stdlib.python_version(tmp_path, "3.12.1") == (3, 9)
    assert stdlib.python_version(tmp_path / "nowhere", "") == (3, 0)
