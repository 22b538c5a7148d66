"""Definition index (tree-sitter), module map and symbol ids on the fixtures/selectors workspace."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lanser.selectors.modules import module_map, module_name_for
from lanser.selectors.structure import index_source, iter_descendants
from lanser.selectors.symbol_id import symbol_id
from lanser.workspace import Workspace, decode_source

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "selectors"


def _index(rel: str):
    return index_source(decode_source((FIXTURE / rel).read_bytes(), rel))


def _text(idx, span) -> str:
    (sr, sc), (er, ec) = span
    return idx.data[_byte(idx, sr, sc):_byte(idx, er, ec)].decode("utf-8")


def _byte(idx, row, bcol) -> int:
    return sum(len(idx.line_bytes(r)) + 1 for r in range(row)) + bcol


def _one(idx, qualname, overload=None):
    found = [d for d in idx.definitions if d.qualname == qualname and d.overload == overload]
    assert len(found) == 1, [d.qualname for d in idx.definitions]
    return found[0]


def test_qualnames_of_geometry_in_source_order() -> None:
    idx = _index("src/shapes/geometry.py")
    names = [(d.qualname, d.kind, d.overload) for d in idx.definitions]
    assert names == [
        ("PI_ISH", "variable", None), ("UNIT", "variable", None), ("ORIGIN", "variable", None),
        ("cached", "function", None), ("cached.wrapper", "function", None),
        ("Shape", "class", None), ("Shape.sides", "variable", None), ("Shape.label", "variable", None),
        ("Shape.area", "function", None), ("Shape.describe", "function", None),
        ("Square", "class", None), ("Square.sides", "variable", None),
        ("Square.__init__", "function", None), ("Square.side", "property", None),
        ("Square.side.setter", "property.setter", None), ("Square.side.deleter", "property.deleter", None),
        ("Square.area", "function", None), ("Square.scale", "function", 1), ("Square.scale", "function", 2),
        ("Square.scale", "function", None), ("Square.Meta", "class", None),
        ("Square.Meta.ordering", "variable", None), ("Square.Meta.describe", "function", None),
        ("Circle", "class", None), ("Circle.__init__", "function", None), ("Circle.area", "function", None),
        ("Circle.unit", "function", None), ("Circle.fetch_radius", "function", None),
        ("Circle.fetch_radius.inner", "function", None),
        ("outer", "function", None), ("outer.middle", "function", None),
        ("outer.middle.innermost", "function", None), ("download", "function", None),
        ("conditional", "function", None),
    ]


def test_roles_of_a_decorated_method() -> None:
    idx = _index("src/shapes/geometry.py")
    unit = _one(idx, "Circle.unit")
    assert _text(idx, unit.def_span).startswith("@staticmethod\n    @cached\n    def unit() -> Circle:")
    assert _text(idx, unit.sig_span) == "def unit() -> Circle:"
    assert _text(idx, unit.name_span) == "unit"
    assert _text(idx, unit.doc_span) == '"""The unit circle."""'
    assert _text(idx, unit.body_span).endswith("return Circle(1.0)")
    assert unit.decorators == ("staticmethod", "cached")


def test_async_definitions_and_nesting() -> None:
    idx = _index("src/shapes/geometry.py")
    fetch = _one(idx, "Circle.fetch_radius")
    inner = _one(idx, "Circle.fetch_radius.inner")
    assert fetch.is_async and inner.is_async
    assert _text(idx, inner.sig_span) == "async def inner() -> float:"
    assert _one(idx, "outer.middle.innermost").chain == (("def", "outer"), ("def", "middle"),
                                                          ("def", "innermost"))
    assert _one(idx, "download").is_async
    # assignments inside functions are not definitions
    assert not [d for d in idx.definitions if d.qualname.startswith("Square.__init__.")]


def test_properties_and_overloads() -> None:
    idx = _index("src/shapes/geometry.py")
    getter = _one(idx, "Square.side")
    setter = _one(idx, "Square.side.setter")
    assert _text(idx, getter.sig_span) == "def side(self) -> float:"
    assert _text(idx, setter.sig_span) == "def side(self, value: float) -> None:"
    assert _text(idx, setter.name_span) == "side"
    assert setter.chain[-2:] == (("def", "side"), ("def", "setter"))
    v1, v2 = _one(idx, "Square.scale", 1), _one(idx, "Square.scale", 2)
    assert "factor: int" in _text(idx, v1.sig_span) and "factor: float" in _text(idx, v2.sig_span)
    impl = _one(idx, "Square.scale")
    assert _text(idx, impl.doc_span) == '"""Scale by a factor."""'


def test_assignments_roles() -> None:
    idx = _index("src/shapes/geometry.py")
    pi = _one(idx, "PI_ISH")
    assert _text(idx, pi.def_span) == "PI_ISH: float = 3.14"
    assert _text(idx, pi.sig_span) == "PI_ISH: float"
    assert _text(idx, pi.body_span) == "3.14"
    assert _text(idx, pi.doc_span) == '"""Rough pi, an attribute docstring."""'
    origin = _one(idx, "ORIGIN")
    assert _text(idx, origin.name_span) == "ORIGIN"
    assert _text(idx, origin.body_span) == "1, (0, 0)"
    assert _one(idx, "Shape.label").doc_span is None


def test_non_ascii_names_and_columns() -> None:
    idx = _index("plain.py")
    gr = _one(idx, "grüße")
    assert _text(idx, gr.name_span) == "grüße"
    assert idx.range_in(gr.name_span, "codepoint") == [6, 4, 6, 9]
    assert idx.range_in(gr.name_span, "utf-8") == [6, 4, 6, 11]
    emoji = _one(idx, "def_after_emoji")
    # 'icon = "🎉"; ' is 12 code points, 13 UTF-16 units, 15 UTF-8 bytes
    assert idx.range_in(emoji.name_span, "codepoint")[:2] == [11, 12]
    assert idx.range_in(emoji.name_span, "utf-16")[:2] == [11, 13]
    assert idx.range_in(emoji.name_span, "utf-8")[:2] == [11, 15]
    assert [d.qualname for d in idx.definitions if d.kind == "class"] == ["Ünïcode"]
    assert _one(idx, "Ünïcode.naïve").kind == "function"


def test_rebinding_is_not_a_second_definition() -> None:
    src = decode_source(b"x = 1\nx = 2\n\ndef f():\n    pass\n\nf = wrap(f)\n", "m.py")
    idx = index_source(src)
    assert [(d.qualname, d.kind, d.name_span[0][0]) for d in idx.definitions] == [
        ("x", "variable", 0), ("f", "function", 3)]


def test_crlf_and_latin1_source() -> None:
    src = decode_source(b"# -*- coding: latin-1 -*-\r\ndef caf\xe9():\r\n    pass\r\n", "l.py")
    idx = index_source(src)
    (d,) = idx.definitions
    assert d.qualname == "café"
    assert idx.range_in(d.name_span, "utf-16") == [1, 4, 1, 8]


def test_iter_descendants_document_order() -> None:
    idx = _index("helpers/__init__.py")
    helper = _one(idx, "helper")
    calls = [n.text.decode() for n in iter_descendants(helper.node, "call")]
    assert calls == ["compute(x)", "compute(x + 1)"]


# -- module map ----------------------------------------------------------------

def test_module_map_layouts() -> None:
    ws = Workspace(FIXTURE)
    mm = module_map(ws)
    assert mm.by_path == {
        "helpers/__init__.py": "helpers", "helpers/geometry.py": "helpers.geometry",
        "plain.py": "plain", "src/shapes/__init__.py": "shapes",
        "src/shapes/geometry.py": "shapes.geometry",
    }
    assert mm.files_for("shapes.geometry") == ["src/shapes/geometry.py"]
    assert mm.files_for("nope") == []
    assert mm.similar("shapes.geometry") == ["helpers/geometry.py"]
    assert module_name_for(ws, "src/shapes/geometry.py") == "shapes.geometry"
    assert module_name_for(ws, "plain.py") == "plain"


def test_module_map_aliases_stubs_and_refresh(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "x.py").write_text("def f(): pass\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "m.py").write_text("")
    (tmp_path / "pkg" / "m.pyi").write_text("")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "junk.py").write_text("")
    ws = Workspace(tmp_path)
    mm = module_map(ws)
    assert mm.files_for("x") == ["tools/x.py"]
    assert mm.files_for("tools.x") == ["tools/x.py"]          # namespace-package alias
    assert mm.files_for("pkg.m") == ["pkg/m.py"]              # .py preferred over .pyi
    assert "junk" not in mm.primary
    assert module_map(ws) is mm                               # cached
    (tmp_path / "pkg" / "new.py").write_text("")
    os.utime(tmp_path / "pkg", ns=(1, 1))                     # make the change visible regardless of clock
    assert module_map(ws).files_for("pkg.new") == ["pkg/new.py"]


def test_module_map_skips_symlinks_leaving_the_workspace(tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("SECRET = 1\n")
    root = tmp_path / "ws"
    root.mkdir()
    (root / "inside.py").write_text("")
    os.symlink(outside, root / "leak.py")
    assert module_map(Workspace(root)).all_files() == ["inside.py"]


# -- symbol ids ------------------------------------------------------------------

def test_symbol_id_recipe() -> None:
    a = symbol_id("pkg.mod", "C.m", "function")
    assert a.startswith("sym:") and len(a) == 20
    assert a == symbol_id("pkg.mod", "C.m", "function", None) == symbol_id("pkg.mod", "C.m", "function", 0)
    assert a != symbol_id("pkg.mod", "C.n", "function")
    assert a != symbol_id("pkg.mod", "C.m", "property")
    assert a != symbol_id("pkg.mod", "C.m", "function", 1)
    assert a != symbol_id("pkg.other", "C.m", "function")


def test_fixture_is_copied_cleanly(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "ws")
    assert module_map(Workspace(tmp_path / "ws")).by_path == module_map(Workspace(FIXTURE)).by_path


@pytest.mark.parametrize("rel", ["src/shapes/geometry.py", "plain.py", "helpers/__init__.py"])
def test_every_name_span_is_the_name(rel: str) -> None:
    idx = _index(rel)
    for d in idx.definitions:
        assert _text(idx, d.name_span) == d.name
        if d.kind != "variable":
            assert _text(idx, d.sig_span).rstrip().endswith(":")
