"""resolve_selector on the fixtures/selectors workspace: every form, role and error path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lanser.errors import Ambiguous, FsPermissions, IndexingUnsupported, NotFound, VersionSkew
from lanser.selectors import ScoringSettings, parse_selector, resolve_selector
from lanser.selectors.symbol_id import symbol_id
from lanser.workspace import Workspace, blob_id

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "selectors"
GEO = "src/shapes/geometry.py"


@pytest.fixture(scope="module")
def ws() -> Workspace:
    return Workspace(FIXTURE)


def resolve(ws: Workspace, text: str, encoding: str = "utf-16", indexing: str = "codepoint"):
    return resolve_selector(parse_selector(text, indexing=indexing), ws, original=text, encoding=encoding)


def text_at(ws: Workspace, path: str, rng: list[int], encoding: str = "utf-16") -> str:
    """The text a flat range covers (columns in ``encoding``)."""
    lines = (ws.root / path).read_text(encoding="utf-8").split("\n")

    def cp(line: int, col: int) -> int:
        units = 0
        for i, ch in enumerate(lines[line]):
            if units == col:
                return i
            units += {"utf-16": 2 if ord(ch) > 0xFFFF else 1, "utf-8": len(ch.encode()),
                      "codepoint": 1}[encoding]
        assert units == col
        return len(lines[line])

    sl, sc, el, ec = rng
    if sl == el:
        return lines[sl][cp(sl, sc):cp(el, ec)]
    return "\n".join([lines[sl][cp(sl, sc):], *lines[sl + 1:el], lines[el][:cp(el, ec)]])


# -- symbol selectors ------------------------------------------------------------------

@pytest.mark.parametrize("selector, path, expected", [
    ("py://shapes.geometry#Square.area", GEO, "def area(self) -> float:\n        return self.side * self.side"),
    ("py://shapes.geometry#Square.area:sig", GEO, "def area(self) -> float:"),
    ("py://shapes.geometry#Square.area:body", GEO, "return self.side * self.side"),
    ("py://shapes.geometry#Shape.area:doc", GEO, '"""Area of the shape."""'),
    ("py://shapes.geometry#Square.side", GEO, '@property\n    def side(self) -> float:\n'
                                             '        """The side length."""\n        return self._side'),
    ("py://shapes.geometry#Square.side.setter:sig", GEO, "def side(self, value: float) -> None:"),
    ("py://shapes.geometry#Square.side.deleter:body", GEO, "del self._side"),
    ("py://shapes.geometry#Square.scale:sig", GEO, "def scale(self, factor):"),
    ("py://shapes.geometry#Square.scale:sig?overload=1", GEO, "def scale(self, factor: int) -> Square:"),
    ("py://shapes.geometry#Square.scale:sig?overload=2", GEO, "def scale(self, factor: float) -> Square:"),
    ("py://shapes.geometry#Square.Meta.describe:body", GEO, 'return "meta"'),
    ("py://shapes.geometry#Square.Meta.ordering", GEO, 'ordering = ["side"]'),
    ("py://shapes.geometry#Circle.unit:sig", GEO, "def unit() -> Circle:"),
    ("py://shapes.geometry#Circle.area", GEO, "@cached\n    def area(self) -> float:\n"
                                             "        return math.pi * self.radius ** 2"),
    ("py://shapes.geometry#Circle.fetch_radius.inner:sig", GEO, "async def inner() -> float:"),
    ("py://shapes.geometry#outer.middle.innermost:body", GEO, "return k + 1"),
    ("py://shapes.geometry#download:sig", GEO, "async def download(url: str) -> bytes:"),
    ("py://shapes.geometry#cached.wrapper:sig", GEO, "def wrapper(*args, **kwargs):"),
    ("py://shapes.geometry#conditional:body", GEO, 'return "yes"'),
    ("py://shapes.geometry#PI_ISH", GEO, "PI_ISH: float = 3.14"),
    ("py://shapes.geometry#PI_ISH:sig", GEO, "PI_ISH: float"),
    ("py://shapes.geometry#PI_ISH:body", GEO, "3.14"),
    ("py://shapes.geometry#PI_ISH:doc", GEO, '"""Rough pi, an attribute docstring."""'),
    ("py://shapes.geometry#ORIGIN", GEO, "UNIT, ORIGIN = 1, (0, 0)"),
    ("py://shapes.geometry#Shape.label:body", GEO, '"shape"'),
    ("py://shapes#make_default:doc", "src/shapes/__init__.py", '"""Return the default square."""'),
    ("py://shapes#DEFAULT_SIDE", "src/shapes/__init__.py", "DEFAULT_SIDE = 1.0"),
    ("py://helpers#compute:body", "helpers/__init__.py", "return x * 2"),
    ("py://helpers.geometry#area:body", "helpers/geometry.py", "return r * r"),
    ("py://plain#grüße:doc", "plain.py", '"""Grüße zurückgeben."""'),
    ("py://plain#Ünïcode.naïve:body", "plain.py", 'return "naïve"'),
    ("py://plain#def_after_emoji", "plain.py", 'def_after_emoji = "🎉🎉"'),
    ("py://plain#größe:body", "plain.py", "len(icon)"),
])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-8", "codepoint"])
def test_symbol_roles(ws: Workspace, selector: str, path: str, expected: str, encoding: str) -> None:
    res = resolve(ws, selector, encoding=encoding)
    assert res.path == path
    assert text_at(ws, path, res.range, encoding) == expected
    assert res.confidence == 1.0
    assert res.encoding == encoding
    assert res.symbol_id and res.symbol_id.startswith("sym:")
    assert res.canonical == selector
    assert res.anchor and res.anchor.startswith(f"anchor://{path}#")
    assert res.scoring is not None and res.scoring.tau == ScoringSettings().tau


@pytest.mark.parametrize("selector, name", [
    ("py://shapes.geometry#Square.side", "side"),
    ("py://shapes.geometry#Square.side.setter", "side"),
    ("py://plain#grüße", "grüße"),
    ("py://plain#def_after_emoji", "def_after_emoji"),
    ("py://shapes.geometry#UNIT", "UNIT"),
])
def test_selection_range_is_the_name(ws: Workspace, selector: str, name: str) -> None:
    res = resolve(ws, selector)
    assert text_at(ws, res.path, res.selection_range) == name


def test_emoji_line_columns_per_encoding(ws: Workspace) -> None:
    sel = "py://plain#def_after_emoji"
    assert resolve(ws, sel, encoding="codepoint").selection_range == [11, 12, 11, 27]
    assert resolve(ws, sel, encoding="utf-16").selection_range == [11, 13, 11, 28]
    assert resolve(ws, sel, encoding="utf-8").selection_range == [11, 15, 11, 30]


def test_property_getter_is_default_and_ids_differ(ws: Workspace) -> None:
    getter = resolve(ws, "py://shapes.geometry#Square.side")
    setter = resolve(ws, "py://shapes.geometry#Square.side.setter")
    assert getter.range[0] < setter.range[0]
    assert getter.symbol_id == symbol_id("shapes.geometry", "Square.side", "property")
    assert setter.symbol_id == symbol_id("shapes.geometry", "Square.side.setter", "property.setter")


def test_overload_variants_and_missing_variant(ws: Workspace) -> None:
    ids = {resolve(ws, f"py://shapes.geometry#Square.scale?overload={n}").symbol_id for n in (1, 2)}
    ids.add(resolve(ws, "py://shapes.geometry#Square.scale").symbol_id)
    assert len(ids) == 3
    with pytest.raises(NotFound, match="variant 3"):
        resolve(ws, "py://shapes.geometry#Square.scale?overload=3")


def test_symbol_errors(ws: Workspace) -> None:
    with pytest.raises(NotFound, match="docstring"):
        resolve(ws, "py://shapes.geometry#Circle.area:doc")
    with pytest.raises(NotFound):
        resolve(ws, "py://plain#completely_absent")
    with pytest.raises(NotFound):
        resolve(ws, "py://no.such.module#f")


def test_a_name_that_exists_nowhere_is_not_found_with_did_you_mean(ws: Workspace) -> None:
    """Look-alikes are offered, never resolved; with no definition of that name anywhere
    it is E/NOT_FOUND ("did you mean"), not E/AMBIGUOUS (issue 12, item 7)."""
    with pytest.raises(NotFound) as info:
        resolve(ws, "py://plain#load_datum")
    candidates = info.value.details["candidates"]
    labels = [c["label"] for c in candidates]
    assert labels[:2] == ["plain#load_data", "plain#load_dataset"]
    assert all(c["score"] < 1.0 for c in candidates)
    assert set(candidates[0]["features"]) == {"s_ast", "s_module", "J_token", "s_prox"}
    assert "'load_datum' exists nowhere" in info.value.message
    assert "did you mean: py://plain#load_data, py://plain#load_dataset" in info.value.message


def test_the_same_name_elsewhere_is_ambiguous(tmp_path: Path) -> None:
    """A re-exported name (defined in one module, imported into another) has a real candidate."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "_internal.py").write_text("def to_native(s: str) -> str:\n    return s\n")
    (tmp_path / "pkg" / "compat.py").write_text("def to_native(s: bytes) -> str:\n    return s.decode()\n")
    (tmp_path / "pkg" / "utils.py").write_text("from ._internal import to_native\n\n\ndef to_bytes() -> None:\n"
                                               "    pass\n")
    with pytest.raises(Ambiguous) as info:
        resolve(Workspace(tmp_path), "py://pkg.utils#to_native")
    assert sorted(c["label"] for c in info.value.candidates) == ["pkg._internal#to_native", "pkg.compat#to_native"]


def test_moved_module_name_is_offered_not_resolved(ws: Workspace) -> None:
    with pytest.raises(Ambiguous) as info:
        resolve(ws, "py://geometry#area")
    assert {c["path"] for c in info.value.candidates} == {"helpers/geometry.py", GEO}


def test_duplicate_definitions_are_ambiguous(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("import sys\nif sys.platform == 'win32':\n    def f():\n        return 1\n"
                                   "else:\n    def f():\n        return 2\n")
    with pytest.raises(Ambiguous) as info:
        resolve(Workspace(tmp_path), "py://m#f")
    assert [c["range"][0] for c in info.value.candidates] == [2, 5]
    assert [c["score"] for c in info.value.candidates] == [1.0, 1.0]


def test_resolution_json_shape(ws: Workspace) -> None:
    out = resolve(ws, "py://plain#load_data").to_json()
    assert out["resolved"]["path"] == "plain.py"
    assert out["resolved"]["confidence"] == 1.0
    assert out["scoring"]["weights"] == {"s_ast": 0.5, "s_module": 0.2, "J_token": 0.2, "s_prox": 0.1}
    assert out["disambiguation"][0]["features"] == {"J_token": 1.0, "s_ast": 1.0, "s_module": 1.0,
                                                    "s_prox": 1.0}


# -- ast selectors -------------------------------------------------------------------

@pytest.mark.parametrize("selector, expected", [
    ("ast://[module=shapes.geometry]/[class=Square]/[def=area]",
     "def area(self) -> float:\n        return self.side * self.side"),
    ("ast://[module=shapes.geometry]/[class=Square]/[def=area]/name[1]", "area"),
    ("ast://[module=shapes.geometry]/[class=Square]/[def=area]/name[2]", "self"),
    ("ast://[module=shapes.geometry]/[class=Circle]/[def=fetch_radius]/call[1]", "inner()"),
    ("ast://[module=shapes.geometry]/[class=Circle]/[def=fetch_radius]/[def=inner]/attribute[1]", "self.radius"),
    ("ast://[module=shapes.geometry]/[class=Square]/[var=sides]", "sides = 4"),
    ("ast://[module=shapes.geometry]/[var=PI_ISH]/float[1]", "3.14"),
    ("ast://[module=helpers]/[def=helper]/call[2]", "compute(x + 1)"),
    ("ast://[module=helpers]/[def=helper]/call[2]/name[2]", "x"),
    ("ast://[module=helpers]/[def=helper]/call[2]/binary_operator[1]", "x + 1"),
    ("ast://[class=Circle]/[def=unit]/string[1]", '"""The unit circle."""'),
    ("ast://[module=plain]/[class=Ünïcode]/[def=naïve]/string[1]", '"naïve"'),
])
def test_ast_paths(ws: Workspace, selector: str, expected: str) -> None:
    res = resolve(ws, selector)
    assert text_at(ws, res.path, res.range) == expected
    assert res.confidence == 1.0


def test_ast_kind_mismatch_is_not_a_hit(ws: Workspace) -> None:
    with pytest.raises((Ambiguous, NotFound)):
        resolve(ws, "ast://[module=shapes.geometry]/[def=Square]")
    with pytest.raises(NotFound, match="call\\[9\\]"):
        resolve(ws, "ast://[module=helpers]/[def=helper]/call[9]")


def test_ast_module_only(ws: Workspace) -> None:
    res = resolve(ws, "ast://[module=helpers]/call[1]")
    assert text_at(ws, res.path, res.range) == "compute(x)"


# -- cursor and range ------------------------------------------------------------------

def test_cursor_converts_columns_and_finds_symbol(ws: Workspace) -> None:
    # 'icon = "🎉"; def_after_emoji' : the name starts at code point 12 (0-based)
    res = resolve(ws, "plain.py@L12:C13", encoding="utf-16", indexing="codepoint")
    assert res.range == [11, 13, 11, 13]
    assert res.symbol_id == symbol_id("plain", "def_after_emoji", "variable")
    assert res.confidence == 1.0 and res.disambiguation == []
    res8 = resolve(ws, "plain.py@L12:C16", encoding="codepoint", indexing="utf-8")
    assert res8.range == [11, 12, 11, 12]
    assert resolve(ws, "plain.py@L1:C1").symbol_id is None


def test_cursor_errors(ws: Workspace) -> None:
    with pytest.raises(IndexingUnsupported):      # between the two UTF-16 units of 🎉
        resolve(ws, "plain.py@L12:C10", indexing="utf-16")
    with pytest.raises(NotFound):
        resolve(ws, "plain.py@L200:C1")
    with pytest.raises(NotFound):
        resolve(ws, "plain.py@L12:C90")
    with pytest.raises(NotFound):
        resolve(ws, "missing.py@L1:C1")
    with pytest.raises(FsPermissions):
        resolve(ws, "../outside.py@L1:C1")


def test_range(ws: Workspace) -> None:
    res = resolve(ws, "plain.py@R(7,5->7,10)", encoding="utf-8")
    assert text_at(ws, "plain.py", res.range, "utf-8") == "grüße"
    assert res.range == [6, 4, 6, 11]
    with pytest.raises(NotFound):
        resolve(ws, "plain.py@R(7,5->700,1)")


def test_version_skew_without_old_text(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "ws")
    w = Workspace(tmp_path / "ws")
    stale = "0" * 40
    for sel in (f"plain.py@L1:C1?v={stale}", f"plain.py@R(1,1->2,1)?v={stale}",
                f'anchor://plain.py#"def load_data("?v={stale}'):
        with pytest.raises(VersionSkew):
            resolve(w, sel)
    # structural selectors stay authoritative and say so
    res = resolve(w, f"py://plain#load_data?v={stale}")
    assert res.relocated == {"path": "plain.py", "docVersion": stale,
                             "current": blob_id((tmp_path / "ws" / "plain.py").read_bytes()),
                             "method": "structural"}
    current = blob_id((tmp_path / "ws" / "plain.py").read_bytes())
    assert resolve(w, f"plain.py@L1:C1?v={current}").relocated is None
    assert resolve(w, f"py://plain#load_data?v={current}").relocated is None


# -- anchors -------------------------------------------------------------------------------

def test_anchor_exact_and_symbol(ws: Workspace) -> None:
    res = resolve(ws, 'anchor://plain.py#"def load_data("')
    assert res.range == [19, 0, 19, 14] and res.confidence == 1.0
    assert res.symbol_id == symbol_id("plain", "load_data", "function")


def test_anchor_duplicates_need_the_hash(ws: Workspace) -> None:
    with pytest.raises(Ambiguous):
        resolve(ws, 'anchor://src/shapes/geometry.py#"def area(self) -> float:"')
    minted = resolve(ws, "py://shapes.geometry#Circle.area").anchor
    assert minted is not None
    again = resolve(ws, minted)
    assert again.range[0] == resolve(ws, "py://shapes.geometry#Circle.area:sig").range[0]


@pytest.mark.parametrize("selector", [
    "py://shapes.geometry#Square.side.setter", "py://plain#grüße", "py://shapes.geometry#Square.scale?overload=2",
    "ast://[module=helpers]/[def=helper]/call[2]", "plain.py@L12:C13",
])
def test_minted_anchor_round_trips(ws: Workspace, selector: str) -> None:
    first = resolve(ws, selector)
    assert first.anchor is not None
    back = resolve(ws, first.anchor)
    assert back.path == first.path
    assert back.range[:2] == first.range[:2] or back.range[0] == first.selection_range[0]


def test_parse_once_and_cache(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    from lanser.selectors import resolve as resolve_mod
    calls: list[str] = []
    real = resolve_mod.index_source

    def counting(src):
        calls.append(src.rel)
        return real(src)

    monkeypatch.setattr(resolve_mod, "index_source", counting)
    fresh = Workspace(FIXTURE)
    resolve(fresh, "py://shapes.geometry#Square.area")
    resolve(fresh, "py://shapes.geometry#Circle.area")
    assert calls == [GEO]
