"""def/refs/hover/symbols/diag against the real pinned server over the fixture workspaces.

Expected facts are whole documents written from the fixture sources (positions
checked by hand against fixtures/README.md), so a wrong column, a missing or
extra location, or an unsorted list fails.  Ranges are 0-based and in the
server's encoding (UTF-16); ``ioRange`` is in ``--index-io`` units.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from conftest import EngineRunner, assert_clean_error, run_cli

from lanser.pyright_cli import count_by_severity, run_pyright_json

pytestmark = pytest.mark.server

UNI = "unicode_names.py"


@pytest.fixture(scope="module")
def srcpkg(fixture_copy: Any) -> Iterator[EngineRunner]:
    runner = EngineRunner(fixture_copy("srcpkg"))
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def enc(fixture_copy: Any) -> Iterator[EngineRunner]:
    runner = EngineRunner(fixture_copy("encodings"))
    yield runner
    runner.close()


def ok(bundle: dict[str, Any]) -> dict[str, Any]:
    assert bundle["status"] == "ok", bundle["error"]
    assert bundle["meta"]["exit_code"] == 0
    assert bundle["environment"]["positionEncoding"] == "utf-16"
    return bundle["facts"]


def loc(path: str, *rng: int) -> dict[str, Any]:
    return {"path": path, "range": list(rng)}


# -- srcpkg: a src/ layout package with cross-module calls -------------------------------------

APPLY_DISCOUNT_REFS = [
    loc("src/shop/__init__.py", 3, 25, 3, 39),   # from shop.pricing import apply_discount
    loc("src/shop/__init__.py", 6, 28, 6, 42),   # "apply_discount" in __all__
    loc("src/shop/broken.py", 1, 25, 1, 39),
    loc("src/shop/broken.py", 5, 11, 5, 25),
    loc("src/shop/pricing.py", 0, 4, 0, 18),     # the declaration
    loc("src/shop/service.py", 1, 25, 1, 39),
    loc("src/shop/service.py", 6, 17, 6, 31),
    loc("src/shop/service.py", 14, 12, 14, 26),
]


def test_def_across_modules(srcpkg: EngineRunner) -> None:
    bundle = srcpkg.run("def", "src/shop/service.py@L7:C18")
    assert ok(bundle) == {"definitions": [loc("src/shop/pricing.py", 0, 4, 0, 18)], "provenance": "lsp"}
    assert bundle["resolution"]["resolved"]["path"] == "src/shop/service.py"
    assert bundle["resolution"]["resolved"]["range"] == [6, 17, 6, 17]
    assert bundle["request"]["selector"] == {"kind": "cursor", "path": "src/shop/service.py", "line": 6,
                                             "col": 17, "indexing": "codepoint"}


def test_def_of_class_in_other_module(srcpkg: EngineRunner) -> None:
    facts = ok(srcpkg.run("def", "src/shop/service.py@L13:C14"))  # Item(...)
    assert facts["definitions"] == [loc("src/shop/models.py", 4, 6, 4, 10)]


def test_def_with_position_spec_json(srcpkg: EngineRunner) -> None:
    spec = '{"kind":"cursor","path":"src/shop/service.py","line":14,"col":12}'  # 0-based: L15:C13
    assert ok(srcpkg.run("def", spec))["definitions"] == [loc("src/shop/pricing.py", 0, 4, 0, 18)]


def test_refs_include_declaration_sorted(srcpkg: EngineRunner) -> None:
    facts = ok(srcpkg.run("refs", "src/shop/pricing.py@L1:C5"))
    assert facts == {"references": APPLY_DISCOUNT_REFS, "provenance": "lsp"}


def test_refs_from_a_call_site_equal_refs_from_the_definition(srcpkg: EngineRunner) -> None:
    assert ok(srcpkg.run("refs", "src/shop/service.py@L15:C13"))["references"] == APPLY_DISCOUNT_REFS


def test_refs_by_symbol_selector(srcpkg: EngineRunner) -> None:
    facts = ok(srcpkg.run("refs", "py://shop.models#Cart.total"))
    assert facts["references"] == [loc("src/shop/models.py", 17, 8, 17, 13),
                                   loc("src/shop/service.py", 5, 20, 5, 25),
                                   loc("src/shop/service.py", 14, 32, 14, 37)]


def test_hover(srcpkg: EngineRunner) -> None:
    facts = ok(srcpkg.run("hover", "src/shop/service.py@L15:C13"))
    assert facts == {"hover": {"contents": "```python\n(function) def apply_discount(\n    price: float,\n"
                                           "    pct: float\n) -> float\n```",
                               "kind": "markdown", "range": [14, 12, 14, 26]},
                     "provenance": "lsp"}


def test_symbols_flattened_with_qualnames(srcpkg: EngineRunner) -> None:
    facts = ok(srcpkg.run("symbols", "src/shop/models.py"))
    got = [(s["qualname"], s["kind"], s["range"], s["selectionRange"]) for s in facts["symbols"]]
    assert got == [
        ("Item", "class", [3, 0, 7, 21], [4, 6, 4, 10]),
        ("Item.name", "variable", [5, 4, 5, 8], [5, 4, 5, 8]),
        ("Item.price", "variable", [6, 4, 6, 9], [6, 4, 6, 9]),
        ("Item.quantity", "variable", [7, 4, 7, 12], [7, 4, 7, 12]),
        ("Cart", "class", [10, 0, 22, 56], [11, 6, 11, 10]),
        ("Cart.items", "variable", [12, 4, 12, 9], [12, 4, 12, 9]),
        ("Cart.add", "method", [14, 4, 15, 31], [14, 8, 14, 11]),
        ("Cart.add.item", "variable", [14, 18, 14, 28], [14, 18, 14, 28]),
        ("Cart.total", "method", [17, 4, 18, 69], [17, 8, 17, 13]),
        ("Cart.count", "method", [20, 4, 22, 56], [21, 8, 21, 13]),
    ]
    assert all(s["path"] == "src/shop/models.py" and s["name"] == s["qualname"].rsplit(".", 1)[-1]
               for s in facts["symbols"])


BROKEN = [  # (range, severity, code, first message line)
    ([5, 26, 5, 31], "error", "reportArgumentType",
     "Argument of type \"Literal['ten']\" cannot be assigned to parameter \"price\" of type \"float\" "
     "in function \"apply_discount\""),
    ([9, 16, 9, 20], "error", "reportAttributeAccessIssue", "Cannot access attribute \"size\" for class \"Cart\""),
    ([13, 11, 13, 20], "error", "reportReturnType", "Type \"str\" is not assignable to return type \"int\""),
    ([17, 4, 17, 12], "warning", "reportUnusedVariable", "Variable \"leftover\" is not accessed"),
]


def _diag_rows(facts: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(d["range"], d["severity"], d["code"], d["message"].splitlines()[0]) for d in facts["diagnostics"]]


def test_diag_file_with_type_errors(srcpkg: EngineRunner) -> None:
    facts = ok(srcpkg.run("diag", "src/shop/broken.py"))
    assert _diag_rows(facts) == BROKEN
    assert all(d["path"] == "src/shop/broken.py" and d["source"] == "Pyright" for d in facts["diagnostics"])
    assert facts["counts"] == {"errors": 3, "warnings": 1, "informations": 0,
                               "byFile": {"src/shop/broken.py": {"errors": 3, "warnings": 1}}}
    assert facts["scope"] == {"kind": "file", "path": "src/shop/broken.py"}


def test_diag_of_a_symbol_keeps_only_its_range(srcpkg: EngineRunner) -> None:
    facts = ok(srcpkg.run("diag", "py://shop.broken#bad_return"))
    assert _diag_rows(facts) == [BROKEN[2]]
    assert facts["scope"] == {"kind": "range", "path": "src/shop/broken.py", "range": [12, 0, 13, 20]}


def test_workspace_diag_counts_equal_pyright_cli(srcpkg: EngineRunner, fixture_copy: Any) -> None:
    facts = ok(srcpkg.run("diag"))
    assert _diag_rows(facts) == BROKEN
    cli = count_by_severity(run_pyright_json(fixture_copy("srcpkg")), fixture_copy("srcpkg"))
    assert cli["errors"] == 3 and cli["warnings"] == 1  # the fixture's documented counts
    counts = facts["counts"]
    assert {k: counts[k] for k in ("errors", "warnings", "informations")} == \
        {k: cli[k] for k in ("errors", "warnings", "informations")}
    nonzero = {p: c for p, c in counts["byFile"].items() if c["errors"] or c["warnings"]}
    assert nonzero == cli["byFile"]
    # every analysed file is listed, with zeros, and nothing outside `include = ["src"]`
    assert sorted(counts["byFile"]) == ["src/shop/__init__.py", "src/shop/broken.py", "src/shop/models.py",
                                        "src/shop/pricing.py", "src/shop/service.py"]


# -- encodings: non-ASCII names and astral characters before the target ------------------------

# Line 11 is `label = "😀😀"; result = grüße(label)`: the call is at code-point column 24,
# UTF-16 column 26, UTF-8 column 30 (1-based).
EMOJI_LINE_SELECTORS = {"codepoint": f"{UNI}@L11:C24", "utf-16": f"{UNI}@L11:C26", "utf-8": f"{UNI}@L11:C30"}
# 0-based, end-exclusive columns of `grüße` on line 11 (range [10, s, 10, e]) in each unit.
CALL_COLS = {"codepoint": (23, 28), "utf-16": (25, 30), "utf-8": (29, 36)}
DEF_COLS = {"codepoint": (4, 9), "utf-16": (4, 9), "utf-8": (4, 11)}   # def grüße(...) on line 4
LINE12_COLS = {"codepoint": (11, 16), "utf-16": (11, 16), "utf-8": (11, 18)}  # grüße("Zoë")


@pytest.mark.parametrize("io", ["codepoint", "utf-16", "utf-8"])
def test_def_after_astral_chars_in_each_index_io(enc: EngineRunner, io: str) -> None:
    bundle = enc.run("def", EMOJI_LINE_SELECTORS[io], index_io=io)
    assert ok(bundle) == {"definitions": [loc(UNI, 3, 4, 3, 9)], "provenance": "lsp"}
    # whatever the input units, the server was asked at UTF-16 column 25
    assert bundle["resolution"]["resolved"]["range"] == [10, 25, 10, 25]
    assert bundle["meta"]["indexIo"] == io


@pytest.mark.parametrize("io", ["codepoint", "utf-16", "utf-8"])
def test_refs_and_verbose_io_ranges_on_the_emoji_line(enc: EngineRunner, io: str) -> None:
    bundle = enc.run("refs", EMOJI_LINE_SELECTORS[io], index_io=io, verbose=True)
    refs = ok(bundle)["references"]
    assert [r["range"] for r in refs] == [[3, 4, 3, 9], [10, 25, 10, 30], [11, 11, 11, 16]]
    resolved = bundle["resolution"]["resolved"]
    if io == "utf-16":  # same units as the server: nothing to add
        assert all("ioRange" not in r for r in refs)
        assert "ioRange" not in resolved
    else:
        assert [r["ioRange"] for r in refs] == [[3, *DEF_COLS[io][:1], 3, DEF_COLS[io][1]],
                                                [10, CALL_COLS[io][0], 10, CALL_COLS[io][1]],
                                                [11, LINE12_COLS[io][0], 11, LINE12_COLS[io][1]]]
        start = CALL_COLS[io][0]
        assert resolved["ioRange"] == [10, start, 10, start]
        assert resolved["ioSelectionRange"] == [10, start, 10, start]


def test_no_io_range_without_verbose(enc: EngineRunner) -> None:
    bundle = enc.run("refs", EMOJI_LINE_SELECTORS["utf-8"], index_io="utf-8")
    assert "ioRange" not in repr(bundle)
    assert "volatile" not in bundle["meta"]


@pytest.mark.parametrize("io,selector", [("utf-16", f"{UNI}@L11:C11"),   # low surrogate of the 1st emoji
                                         ("utf-16", f"{UNI}@L11:C13"),   # low surrogate of the 2nd emoji
                                         ("utf-8", f"{UNI}@L11:C12"),    # 3rd byte of the 1st emoji
                                         ("utf-8", f"{UNI}@L11:C33")])   # 2nd byte of ü
def test_column_inside_a_character_is_indexing_unsupported(enc: EngineRunner, io: str, selector: str) -> None:
    bundle = enc.run("def", selector, index_io=io)
    assert bundle["status"] == "error"
    assert bundle["error"]["code"] == "E/INDEXING_UNSUPPORTED" and bundle["meta"]["exit_code"] == 75


def test_surrogate_column_through_the_cli(fixture_copy: Any) -> None:
    result = run_cli("def", f"{UNI}@L11:C11", "-w", str(fixture_copy("encodings")), "--index-io", "utf-16")
    assert_clean_error(result, 75)
    assert "E/INDEXING_UNSUPPORTED" in result.err and "'😀'" in result.err


def test_hover_non_ascii_name(enc: EngineRunner) -> None:
    facts = ok(enc.run("hover", EMOJI_LINE_SELECTORS["utf-16"], index_io="utf-16"))
    assert facts["hover"] == {"contents": "```python\n(function) def grüße(name: str) -> str\n```",
                              "kind": "markdown", "range": [10, 25, 10, 30]}


def test_crlf_file(enc: EngineRunner) -> None:
    assert ok(enc.run("def", "crlf.py@L8:C8"))["definitions"] == [loc("crlf.py", 3, 4, 3, 9)]
    assert ok(enc.run("refs", "crlf.py@L4:C5"))["references"] == [loc("crlf.py", 3, 4, 3, 9),
                                                                  loc("crlf.py", 7, 7, 7, 12)]
    symbols = ok(enc.run("symbols", "crlf.py"))["symbols"]
    shout = next(s for s in symbols if s["qualname"] == "shout")
    # `    return text.upper() + "!"` is 29 characters: the range must not take in the `\r`
    assert shout["range"] == [3, 0, 4, 29] and shout["selectionRange"] == [3, 4, 3, 9]
    assert ok(enc.run("diag", "crlf.py"))["diagnostics"] == []


def test_bom_file(enc: EngineRunner) -> None:
    assert ok(enc.run("def", "bom.py@L8:C11"))["definitions"] == [loc("bom.py", 3, 4, 3, 10)]
    # Line 1 columns start after the BOM: column 1 is the first quote, not the BOM.
    assert enc.run("locate", "bom.py@L1:C1")["resolution"]["resolved"]["range"] == [0, 0, 0, 0]
    # The server sees the text without the BOM (a BOM sent as text would be a syntax error at 1:1).
    assert ok(enc.run("diag", "bom.py"))["diagnostics"] == []
    names = [(s["qualname"], s["selectionRange"]) for s in ok(enc.run("symbols", "bom.py"))["symbols"]]
    assert names == [("double", [3, 4, 3, 10]), ("double.value", [3, 11, 3, 21]), ("DOUBLED", [7, 0, 7, 7])]


def test_latin1_file_with_coding_cookie(enc: EngineRunner) -> None:
    assert ok(enc.run("def", "latin1.py@L9:C9"))["definitions"] == [loc("latin1.py", 4, 4, 4, 12)]
    assert ok(enc.run("refs", "latin1.py@L9:C9"))["references"] == [loc("latin1.py", 4, 4, 4, 12),
                                                                    loc("latin1.py", 8, 8, 8, 16)]
    assert ok(enc.run("diag", "latin1.py"))["diagnostics"] == []
    assert "München" in enc.run("locate", "latin1.py@L9:C1")["facts"]["preview"]


def test_workspace_diag_of_encodings_is_clean(enc: EngineRunner) -> None:
    facts = ok(enc.run("diag"))
    assert facts["diagnostics"] == []
    assert sorted(facts["counts"]["byFile"]) == ["bom.py", "crlf.py", "latin1.py", "script.py", UNI]


def test_global_options_after_the_command(fixture_copy: Any) -> None:
    """CLI path: options after the command mean the same as before it."""
    ws = str(fixture_copy("encodings"))
    result = run_cli("def", EMOJI_LINE_SELECTORS["utf-8"], "--json", "-w", ws, "--index-io", "utf-8")
    assert result.code == 0, result.err
    assert result.bundle["facts"]["definitions"] == [loc(UNI, 3, 4, 3, 9)]
    assert result.bundle["request"]["selector"]["indexing"] == "utf-8"


# -- issue 12: anchors minted by locate, empty answers off a name, path:line:col ----------------

def test_a_minted_anchor_asks_at_the_definitions_name(srcpkg: EngineRunner) -> None:
    """`locate` mints `def name(...):`; a query through it is asked at the name, not at `def`."""
    anchor = srcpkg.run("locate", "py://shop.pricing#apply_discount")["resolution"]["anchor"]
    assert anchor.startswith('anchor://src/shop/pricing.py#"def%20apply_discount(')
    via_anchor = srcpkg.run("refs", anchor)
    assert ok(via_anchor) == {"references": APPLY_DISCOUNT_REFS, "provenance": "lsp"}
    assert via_anchor["resolution"]["resolved"]["selectionRange"] == [0, 4, 0, 18]
    for cmd in ("def", "hover"):
        assert ok(srcpkg.run(cmd, anchor)) == ok(srcpkg.run(cmd, "py://shop.pricing#apply_discount"))
    # a range over the whole definition is asked at its name as well
    assert ok(srcpkg.run("refs", "src/shop/pricing.py@R(1,1->4,10)"))["references"] == APPLY_DISCOUNT_REFS


def test_the_locate_summary_anchor_pastes_into_refs(fixture_copy: Any) -> None:
    """The issue's reproduction: A=$(lanser locate SYM | sed -n 's/^anchor: //p'); lanser refs "$A"."""
    ws = str(fixture_copy("srcpkg"))
    located = run_cli("-w", ws, "locate", "py://shop.pricing#demo_missing_is_not_this")
    assert located.code == 3
    located = run_cli("-w", ws, "locate", "py://shop.service#demo")
    anchor = next(line[len("anchor: "):] for line in located.out.splitlines() if line.startswith("anchor: "))
    refs = run_cli("-w", ws, "--json", "refs", anchor)
    assert refs.code == 0, refs.err
    assert refs.bundle["facts"]["references"] == [loc("src/shop/service.py", 10, 4, 10, 8)]
    assert "warnings" not in refs.bundle["facts"]


@pytest.mark.parametrize("cmd,selector,token", [
    ("refs", "src/shop/pricing.py@L1:C1", "'def' (def)"),       # the keyword
    ("def", "src/shop/service.py@L6:C15", "'=' (=)"),           # an operator
    ("hover", "src/shop/service.py@L3:C1", "white space"),      # an empty line
    ("def", "src/shop/service.py@L8:C28", "(string_content)"),  # inside a string
])
def test_an_empty_answer_off_a_name_says_so(srcpkg: EngineRunner, cmd: str, selector: str, token: str) -> None:
    facts = ok(srcpkg.run(cmd, selector))
    key = {"refs": "references", "def": "definitions", "hover": "hover"}[cmd]
    assert not facts[key]
    [warning] = facts["warnings"]
    assert warning["code"] == "W/NOT_ON_IDENTIFIER" and token in warning["message"]
    assert "not on a name" in warning["message"]


def test_an_empty_answer_on_a_name_has_no_warning(srcpkg: EngineRunner) -> None:
    facts = ok(srcpkg.run("def", "src/shop/broken.py@L10:C17"))  # cart.size: no such attribute
    assert facts == {"definitions": [], "provenance": "lsp"}


def test_the_warning_is_in_the_human_summary(fixture_copy: Any) -> None:
    result = run_cli("-w", str(fixture_copy("srcpkg")), "refs", "src/shop/pricing.py@L1:C1")
    assert result.code == 0
    assert result.out.splitlines()[:2] == [
        "no references",
        "warning: src/shop/pricing.py:1:1 is on 'def' (def), not on a name: the empty answer says nothing "
        "about any symbol; ask at a name (a cursor on it, or a py:// selector)"]


def test_path_line_col_is_the_same_cursor(srcpkg: EngineRunner) -> None:
    a = srcpkg.run("def", "src/shop/service.py:15:13")
    b = srcpkg.run("def", "src/shop/service.py@L15:C13")
    assert ok(a) == ok(b) == {"definitions": [loc("src/shop/pricing.py", 0, 4, 0, 18)], "provenance": "lsp"}
    assert a["request"]["selector"] == b["request"]["selector"]
    assert a["resolution"]["canonical"] == "src/shop/service.py@L15:C13"


def test_printed_locations_paste_back(srcpkg: EngineRunner) -> None:
    """Every `path:line:col` the refs summary prints is a selector that lands on that reference."""
    from lanser.output import summary

    printed = [line for line in summary(srcpkg.run("refs", "py://shop.pricing#apply_discount"))
               if not line.startswith("bundleId")]
    assert len(printed) == len(APPLY_DISCOUNT_REFS)
    for line, expected in zip(printed, APPLY_DISCOUNT_REFS):
        assert srcpkg.run("locate", line)["resolution"]["resolved"]["range"][:2] == expected["range"][:2]
        if expected["range"][:2] != [6, 28]:  # the string "apply_discount" in __all__ defines nothing
            facts = ok(srcpkg.run("def", line))
            assert facts["definitions"] == [loc("src/shop/pricing.py", 0, 4, 0, 18)], line
