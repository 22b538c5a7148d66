"""diagnostics/affected.py and diagnostics/stdlib.py: which files' diagnostics a step can change.

Pure tests of the import-graph rule (the server-backed checks that the counts stay equal
to ``pyright --outputjson`` are in test_rewards_affected_server.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lanser.diagnostics import stdlib
from lanser.diagnostics.affected import ImportGraph, affected_files, change_stays_inside, module_names, parse_imports
from lanser.diagnostics.interface import changed_exports, parse_interface, star_visible

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


# -- changes that stay inside a file ------------------------------------------------------------

SEALED = """\
import os


def f(x: int) -> int:
    '''Doc.'''
    return x


class C:
    def m(self) -> int:
        return 1

    def n(self, y):
        return y


class P(Protocol):
    def p(self) -> int:
        ...


class A(ABC):
    @abstractmethod
    def a(self) -> int:
        ...


@cache
def g() -> int:
    return 0


Y = f(1)
"""


@pytest.mark.parametrize("old,new,inside", [
    ("return x\n", "y = x + 1\n    return y\n", True),         # a body of an annotated function
    ("return 1\n", "return 2 if os.sep else 3\n", True),       # a method body
    ("'''Doc.'''", "'''Other doc.'''", True),
    ("return 0", "return 2", True),                            # decorated: the decorator sees a signature
    ("import os\n", "import os  # a comment\n", True),          # a comment after a statement
    ("\n\nclass C:", "\n\n# a comment\n\n\nclass C:", True),    # lines between statements
    ("return 1\n", "self.z = 1\n        return 1\n", False),    # declares a member
    ("return x\n", "global Y\n    return x\n", False),         # reaches a module variable
    ("return x\n", "yield x\n", False),                        # now a generator
    ("return y\n", "return y + 1\n", False),                   # no return annotation: inferred
    ("        ...\n\n\nclass A", "        return 1\n\n\nclass A", False),  # a protocol's method
    ("    def a(self) -> int:\n        ...", "    def a(self) -> int:\n        return 1", False),  # abstract
    ("def f(x: int) -> int:", "def f(x: int) -> str:", False),  # the signature
    ("Y = f(1)", "Y = f(2)", False),                           # module code
    ("import os\n", "import os.path\n", False),
    ("import os\n", "import os\n# pyright: strict\n", False),  # how the module is analysed
])
def test_change_stays_inside(old, new, inside):
    assert SEALED.count(old) == 1
    assert change_stays_inside(SEALED, SEALED.replace(old, new)) is inside


def test_change_stays_inside_needs_both_texts_to_parse():
    assert change_stays_inside(SEALED, SEALED) is True
    assert change_stays_inside(SEALED, "def (:\n") is False
    assert change_stays_inside("def (:\n", SEALED) is False


def test_changed_exports_by_name():
    def changed(old: str, new: str) -> set[str] | None:
        a, b = parse_interface("m.py", old), parse_interface("m.py", new)
        assert a is not None and b is not None
        out = changed_exports(a, b)
        return None if out is None else set(out)

    base = ("from .util import helper\n\n\ndef f(x: int) -> int:\n    return helper(x)\n\n\n"
            "def g(x):\n    return f(x)\n\n\nclass K:\n    def m(self) -> int:\n        return 1\n\n\n"
            "X = g(1)\nif __name__ == '__main__':\n    f(1)\n")
    assert changed(base, base) == set()
    assert changed(base, base.replace("return helper(x)", "return 2")) == set()  # sealed
    # f's signature: g uses f in its (unsealed) body, X uses g; the trailing main block binds
    # nothing and nothing comes after it
    assert changed(base, base.replace("x: int) -> int", "x: str) -> int")) == {"f", "g", "X"}
    assert changed(base, base.replace("return 1", "self.size = 1\n        return 1")) == {"K"}
    assert changed(base, base.replace("helper\n", "helper as aid\n")) == {"helper", "aid"}
    assert changed(base, base.replace("X = g", "def new() -> None:\n    pass\n\n\nX = g")) == {"new"}
    # a binding after the main block: the block now comes before an export
    assert changed(base, base + "\n\ndef new() -> None:\n    pass\n") is None
    assert changed(base, base.replace("X = g(1)\n", "")) == {"X"}
    assert changed(base, base.replace("X = g(1)\n", "print(1)\nX = g(1)\n")) is None  # may make X unreachable
    assert changed(base, base.replace("X = g(1)\n", "f(1)\nX = g(1)\n")) is None
    assert changed(base, base + "\n\ndef __getattr__(name: str) -> int:\n    return 1\n") is None
    assert changed(base, base.replace("X = g(1)", "__all__ = ['f']\nX = g(1)")) is None
    assert changed(base, base.replace("X = g(1)", "from .more import *\nX = g(1)")) is None
    assert changed(base, "'''A new module docstring.'''\n" + base) == set()
    deco = "import functools\n\n\n@functools.cache\ndef f() -> int:\n    return 1\n"
    assert changed(deco, deco.replace("functools.cache", "functools.lru_cache")) == {"f"}  # the decorator
    assert changed(deco, deco.replace("return 1", "return 2")) == set()


NAMED = {
    "pkg/__init__.py": "from .base import f\n",
    "pkg/base.py": "def f(x: int) -> int:\n    return x\n\n\ndef g(x: int) -> int:\n    return x\n",
    "pkg/uses_f.py": "from pkg.base import f\n\n\ndef twice(x: int) -> int:\n    return f(f(x))\n",
    "pkg/uses_g.py": "from pkg.base import g\n\nG = g\n",
    "pkg/via_g.py": "from pkg.uses_g import G\n",
    "pkg/via_twice.py": "from pkg.uses_f import twice\n",
    "top.py": "from pkg import f\n",
    "mod.py": "import pkg.base\n\nprint(pkg.base.g(1))\n",
    "bare.py": "import pkg.base as b\n\nprint(b)\n",
    "alias.py": "import pkg.base as b\n\nH = b.f(1)\n",
    "via_alias.py": "from alias import H\n",
}


def named(files: dict[str, str], changes: dict[str, str], new: dict[str, str]) -> set[str] | None:
    """The rule with interfaces: ``new`` holds the changed files' new texts."""
    after = {**files, **new}
    interfaces = {rel: parse_interface(rel, text) for rel, text in after.items()}
    before = {rel: parse_interface(rel, files[rel]) for rel in changes if rel in files}
    out = affected_files(graph(after), changes, previous_files=files, interfaces=interfaces, before=before)
    return None if out is None else set(out)


def test_only_files_mentioning_a_changed_name_are_pulled():
    new_g = NAMED["pkg/base.py"].replace("def g(x: int)", "def g(x: str)")
    # g changed: uses_g imports it and re-exports it as G (via_g mentions G); mod reaches it
    # through the module object; bare uses the module object itself (alias uses it only for f)
    assert named(NAMED, {"pkg/base.py": "changed"}, {"pkg/base.py": new_g}) == \
        {"pkg/base.py", "pkg/uses_g.py", "pkg/via_g.py", "mod.py", "bare.py"}
    new_f = NAMED["pkg/base.py"].replace("def f(x: int)", "def f(x: str)")
    # f changed: uses_f is pulled (its sealed body mentions f) but twice's signature stands;
    # the package re-exports f and top imports it from there
    assert named(NAMED, {"pkg/base.py": "changed"}, {"pkg/base.py": new_f}) == \
        {"pkg/base.py", "pkg/uses_f.py", "pkg/__init__.py", "top.py", "bare.py", "alias.py", "via_alias.py"}
    body = NAMED["pkg/base.py"].replace("return x\n\n\ndef g", "return x + 1\n\n\ndef g")
    assert named(NAMED, {"pkg/base.py": "changed"}, {"pkg/base.py": body}) == {"pkg/base.py"}


def test_without_interfaces_every_export_counts():
    new_g = NAMED["pkg/base.py"].replace("def g(x: int)", "def g(x: str)")
    out = affected_files(graph({**NAMED, "pkg/base.py": new_g}), {"pkg/base.py": "changed"}, previous_files=NAMED)
    assert out is not None and set(out) == set(NAMED)  # every importer, transitively


def test_a_wildcard_import_re_exports_the_changed_names_it_binds():
    files = {"pkg/__init__.py": "from .base import *\n", "pkg/base.py": "def f(x: int) -> int:\n    return x\n",
             "user.py": "import pkg\n\npkg.f(1)\n", "other.py": "import pkg\n\npkg.something()\n",
             "private.py": "import pkg\n\npkg._g()\n"}
    new = files["pkg/base.py"].replace("x: int", "x: str")
    assert named(files, {"pkg/base.py": "changed"}, {"pkg/base.py": new}) == \
        {"pkg/base.py", "pkg/__init__.py", "user.py"}
    # ``import *`` does not bind a name with a leading underscore: the star importer alone
    private = files["pkg/base.py"] + "\n\ndef _g() -> int:\n    return 1\n"
    assert named(files, {"pkg/base.py": "changed"}, {"pkg/base.py": private}) == {"pkg/base.py", "pkg/__init__.py"}
    public = files["pkg/base.py"] + "\n\ndef something() -> int:\n    return 1\n"
    assert named(files, {"pkg/base.py": "changed"}, {"pkg/base.py": public}) == \
        {"pkg/base.py", "pkg/__init__.py", "other.py"}


def test_a_static_dunder_all_decides_what_a_wildcard_import_binds():
    base = "__all__ = ['f']\n__all__ += ['_g']\n\n\ndef f(x: int) -> int:\n    return x\n"
    files = {"pkg/__init__.py": "from .base import *\n", "pkg/base.py": base,
             "other.py": "import pkg\n\npkg.something()\n", "private.py": "import pkg\n\npkg._g()\n"}
    public = base + "\n\ndef something() -> int:\n    return 1\n"  # not in __all__: not bound
    assert named(files, {"pkg/base.py": "changed"}, {"pkg/base.py": public}) == {"pkg/base.py", "pkg/__init__.py"}
    # a name __all__ lists: the __all__ statement mentions it, so __all__ counts as changed
    listed = base + "\n\ndef _g() -> int:\n    return 1\n"
    assert named(files, {"pkg/base.py": "changed"}, {"pkg/base.py": listed}) == set(files)
    # __all__ built some other way: anything may be bound
    dynamic = {**files, "pkg/base.py": base.replace("['_g']", "list(NAMES)")}
    assert named(dynamic, {"pkg/base.py": "changed"}, {"pkg/base.py": dynamic["pkg/base.py"] + public[len(base):]}) \
        == set(files)
    # __all__ itself changed: everything the star importer shows may have changed
    assert named(files, {"pkg/base.py": "changed"}, {"pkg/base.py": base.replace("'f'", "'f', 'h'")}) == set(files)
    # a wildcard import of a package above binds its submodules too
    above = {**files, "pkg/__init__.py": "", "star.py": "from pkg import *\n", "use_star.py": "from star import *\n"}
    assert named(above, {"pkg/base.py": "changed"}, {"pkg/base.py": public}) == \
        {"pkg/base.py", "star.py", "use_star.py"}


@pytest.mark.parametrize("text, defines, names", [
    ("x = 1\n", False, frozenset()),
    ("__all__ = ['a', 'b']\n", True, frozenset({"a", "b"})),
    ("__all__: list[str] = ('a',)\n__all__ += ['b']\n__all__.extend(['c'])\n__all__.append('d')\n"
     "__all__.remove('a')\n", True, frozenset({"a", "b", "c", "d"})),
    ("__all__ = ['a']\nif X:\n    __all__ += ['b']\n", True, frozenset({"a", "b"})),
    ("__all__ = ['a'] + other.__all__\n", True, None),
    ("from m import __all__ as a\n__all__ = ['x']\n__all__ += a\n", True, None),
    ("__all__ = ['a']\nprint(__all__)\n", True, None),
    ("__all__ = [name for name in dir()]\n", True, None),
])
def test_dunder_all_is_read_only_when_static(text, defines, names):
    iface = parse_interface("m.py", text)
    assert iface is not None and (iface.defines_all, iface.dunder_all) == (defines, names)
    assert star_visible(iface, frozenset({"a", "_z", "q"})) == (
        None if names is None else frozenset({"a"} & names if defines else {"a", "q"}))
    assert star_visible(iface, frozenset({"__all__"})) is None
    assert star_visible(None, frozenset({"a"})) is None


def test_contained_changes_reach_no_importer_nor_library_users():
    body = CHAIN["pkg/base.py"].replace("return 1", "return 2")
    assert named(CHAIN, {"pkg/base.py": "changed"}, {"pkg/base.py": body}) == {"pkg/base.py"}
    more = {**CHAIN, "pkg/broken.py": "def (:\n", "lib_user.py": "import requests\n"}
    assert named(more, {"pkg/base.py": "changed"}, {"pkg/base.py": body}) == {"pkg/base.py"}
    signature = CHAIN["pkg/base.py"].replace("-> int", "-> str")
    assert named(more, {"pkg/base.py": "changed"}, {"pkg/base.py": signature}) == \
        {"pkg/base.py", "pkg/mid.py", "pkg/top.py", "pkg/broken.py", "lib_user.py"}


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


def test_import_cycle_checks_are_noticed(tmp_path):
    assert stdlib.checks_import_cycles(tmp_path) is False
    (tmp_path / "pyproject.toml").write_text('[tool.pyright]\nreportImportCycles = "error"\n')
    assert stdlib.checks_import_cycles(tmp_path) is True


def test_python_version_takes_the_older_of_interpreter_and_config(tmp_path):
    assert stdlib.python_version(tmp_path, "3.12.1") == (3, 12)
    (tmp_path / "pyrightconfig.json").write_text(json.dumps({"pythonVersion": "3.9"}))
    assert stdlib.python_version(tmp_path, "3.12.1") == (3, 9)
    assert stdlib.python_version(tmp_path / "nowhere", "") == (3, 0)


# -- classes changed inside their methods (diagnostics/members.py) ------------------------------

CLS = ("class C(Base):\n    kind = 'c'\n\n    def __init__(self):\n        self.a = 1\n        self.b = 2\n\n"
       "    def total(self):\n        return self.a + 1\n\n    def other(self) -> int:\n        return 0\n")


def test_member_changes_name_what_to_ask_and_what_changed_for_sure():
    from lanser.diagnostics.members import member_changes

    body = CLS.replace("self.a = 1", "self.a = 'one'")
    [change] = member_changes("m.py", CLS, body, frozenset({"C"})).values()
    assert change.changed == frozenset()
    assert sorted(change.probes) == ["C.__init__", "C.a", "C.b"]  # the method and every member it assigns
    (old, new), = change.probes["C.a"]
    assert (old.line, old.col) == (4, 13) and (new.line, new.col) == (4, 13)  # 0-based, at the member's name
    added = member_changes("m.py", CLS, CLS.replace("        self.b = 2\n", "        self.b = 2\n        self.c = 3\n"),
                           frozenset({"C"}))["C"]
    assert added.changed == {"c"} and "C.a" in added.probes
    new_method = CLS + "\n    def more(self):\n        return 1\n"
    assert member_changes("m.py", CLS, new_method, frozenset({"C"}))["C"].changed == {"more"}
    resigned = CLS.replace("def total(self):", "def total(self, n):")
    assert member_changes("m.py", CLS, resigned, frozenset({"C"}))["C"].changed == {"total"}
    # not a change inside methods: the whole class counts
    assert member_changes("m.py", CLS, CLS.replace("kind = 'c'", "kind = 1"), frozenset({"C"})) == {}
    assert member_changes("m.py", CLS, CLS.replace("C(Base)", "C(Other)"), frozenset({"C"})) == {}
    glob = CLS.replace("        self.b = 2\n", "        global G\n        self.b = 2\n")
    assert member_changes("m.py", CLS, glob, frozenset({"C"})) == {}
    proto = CLS.replace("C(Base)", "C(Protocol)")
    assert member_changes("m.py", proto, proto.replace("self.a = 1", "self.a = 2"), frozenset({"C"})) == {}


def test_settle_grows_through_the_class_and_gives_up_on_dunders():
    from lanser.diagnostics.members import member_changes, settle

    body = CLS.replace("self.a = 1", "self.a = 'one'")
    change = member_changes("m.py", CLS, body, frozenset({"C"}))["C"]
    # a changed; total reads it (changes too); b kept; __init__ kept its type
    assert settle(change, frozenset({"C.__init__", "C.b"})) == {"a", "total"}
    assert settle(change, frozenset({"C.__init__", "C.a", "C.b"})) == frozenset()
    assert settle(change, frozenset({"C.a", "C.b"})) is None  # __init__'s type changed: the whole class


def test_the_tracker_parses_a_text_it_saw_lately_only_once(monkeypatch):
    """Sessions sharing a server switch files between their own texts at every step: a text
    seen lately is not parsed again, and the cache stays bounded."""
    from lanser.diagnostics import tracker as tracker_module

    calls: list[tuple[str, str]] = []
    real = tracker_module.analyze

    def counting(rel: str, text: str):
        calls.append((rel, text))
        return real(rel, text)

    monkeypatch.setattr(tracker_module, "analyze", counting)
    t = tracker_module.ChangeTracker(stdlib=STDLIB, cycles=False, libraries=None)
    texts = [f"def f{i}() -> int:\n    return {i}\n" for i in range(4)]
    for text in texts + texts + texts[::-1]:
        assert t.parse("m.py", text).interface is not None
    assert calls == [("m.py", text) for text in texts]
    for i in range(tracker_module.RECENT_PARSES + 8):
        t.parse("m.py", f"x = {i}\n")
    assert len(t._recent) == tracker_module.RECENT_PARSES
    t.parse("m.py", texts[0])  # long evicted: parsed again
    assert calls[-1] == ("m.py", texts[0])
