"""The selector grammar: every form, percent-encoding, errors with columns, round trips."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lanser.errors import BadInput, BadSelectorSyntax
from lanser.selectors.grammar import (
    BRACKET_TYPES,
    MAX_INT,
    encode_component,
    format_selector,
    looks_like_selector,
    parse_selector,
    spec_from_json,
)
from lanser.selectors.spec import ROLES, SelectorSpec

SHA = "0123456789abcdef0123456789abcdef01234567"


# -- the five forms -----------------------------------------------------------

def test_cursor_is_stored_zero_based_in_the_callers_indexing():
    spec = parse_selector("src/app.py@L42:C7", indexing="utf-16")
    assert spec == SelectorSpec(kind="cursor", path="src/app.py", line=41, col=6, indexing="utf-16")


def test_range():
    spec = parse_selector("src/app.py@R(42,7->44,1)")
    assert (spec.kind, spec.path, spec.line, spec.col, spec.end_line, spec.end_col) == \
        ("range", "src/app.py", 41, 6, 43, 0)
    assert spec.indexing == "codepoint"


@pytest.mark.parametrize("text,canonical", [
    ("src/app.py:42:7", "src/app.py@L42:C7"),           # as compilers and Lanser's summaries print it
    ("a:b.py:3:4", "a:b.py@L3:C4"),                     # the path ends before the last two colons
    ("x@y.py:3:1", "x@y.py@L3:C1"),
    ("p%20q.py:1:2", "p%20q.py@L1:C2"),
    ("a.py:010:02?v=" + SHA, "a.py@L10:C2?v=" + SHA),
])
def test_path_line_col_is_a_cursor(text, canonical):
    spec = parse_selector(text, indexing="utf-16")
    assert spec == parse_selector(canonical, indexing="utf-16")
    assert spec.kind == "cursor" and spec.indexing == "utf-16"
    assert format_selector(spec) == canonical


def test_path_may_contain_at_signs():
    spec = parse_selector("node_modules/@types/x@y.py@L3:C1")
    assert spec.path == "node_modules/@types/x@y.py" and spec.line == 2


def test_symbol_with_role_and_overload():
    spec = parse_selector("py://pkg.mod#Class.method:body?overload=2")
    assert (spec.module, spec.qualname, spec.role, spec.overload) == ("pkg.mod", "Class.method", "body", 2)
    assert parse_selector("py://pkg.mod#f").role == "def"
    assert format_selector(parse_selector("py://pkg.mod#f:def")) == "py://pkg.mod#f"


def test_ast_path_with_node_steps():
    spec = parse_selector("ast://[module=pkg.mod]/[class=C]/[def=m]/call[2]/name[1]")
    assert spec.ast_path == (("module", "pkg.mod"), ("class", "C"), ("def", "m"), ("call", 2), ("name", 1))
    assert parse_selector("ast://[class=C]/[var=x]").ast_path == (("class", "C"), ("var", "x"))


def test_anchor_with_ctx_and_hash():
    spec = parse_selector('anchor://src/app.py#"def load_data("?ctx=24&h=ABCDEF0123')
    assert (spec.path, spec.snippet, spec.ctx, spec.hash) == ("src/app.py", "def load_data(", 24, "abcdef0123")
    assert format_selector(spec) == 'anchor://src/app.py#"def%20load_data("?ctx=24&h=abcdef0123'


def test_file_uri_is_kept_verbatim():
    spec = parse_selector("file:///repo/src/a%20b.py@L1:C1")
    assert spec.path == "file:///repo/src/a%20b.py"
    assert format_selector(spec) == "file:///repo/src/a%20b.py@L1:C1"


# -- percent-encoding and quotes ------------------------------------------------

def test_percent_decoding_in_paths_and_snippets():
    spec = parse_selector('anchor://src/my%20dir/%23x%3F.py#"a%22b%25c%0Ad%E2%82%AC"')
    assert spec.path == "src/my dir/#x?.py"
    assert spec.snippet == 'a"b%c\nd\u20ac'


def test_backslash_quote_inside_quotes():
    assert parse_selector(r'anchor://a.py#"say(\"hi\")"').snippet == 'say("hi")'
    # a backslash not before a quote is literal
    assert parse_selector(r'anchor://a.py#"a\nb"').snippet == "a\\nb"


def test_snippet_ending_in_backslash_round_trips():
    spec = SelectorSpec(kind="anchor", path="a.py", snippet="x = 1 \\")
    text = format_selector(spec)
    assert not text.endswith('\\"')
    assert parse_selector(text) == spec


def test_encode_component_encodes_reserved_and_control_characters():
    assert encode_component('a b%c"d#e?f&g\x01h\u00a0i') == "a%20b%25c%22d%23e%3Ff%26g%01h%C2%A0i"
    assert encode_component("\U0001F600/x@y") == "\U0001F600/x@y"


def test_position_paths_that_look_like_other_forms_are_escaped():
    for path in ("{x}.py", "py://x", "ast://y", "anchor://z"):
        spec = SelectorSpec(kind="cursor", path=path, line=0, col=0)
        assert parse_selector(format_selector(spec)) == spec


# -- document versions -----------------------------------------------------------

@pytest.mark.parametrize("written", [SHA, "git:" + SHA, SHA.upper(), "git:" + SHA.upper()])
def test_doc_version_normalized(written):
    for text in (f"a.py@L1:C1?v={written}", f"py://m#f?overload=1&v={written}",
                 f"ast://[def=f]?v={written}", f'anchor://a.py#"x"?v={written}&ctx=3'):
        spec = parse_selector(text)
        assert spec.doc_version == SHA
        assert format_selector(spec).endswith(f"v={SHA}")


def test_doc_version_in_json():
    spec = parse_selector(json.dumps({"kind": "ast", "path": [["def", "f"]], "docVersion": "git:" + SHA}))
    assert spec.doc_version == SHA


# -- errors and their columns ----------------------------------------------------

BAD = [
    ("", 1),
    ("a.py", 5),                                # no @: the column after the path
    ("a b.py@L1:C1", 2),                        # raw space
    ('a"b.py@L1:C1', 2),
    ("a.py@L0:C1", 7),                          # lines are 1-based
    ("a.py@L1:C0", 10),
    ("a.py@L1C1", 8),
    ("a.py@X1:C1", 6),
    ("a.py@L1:C1x", 11),
    ("a.py@L99999999999:C1", 7),                # larger than 2**31-1
    ("a.py@R(2,1->1,1)", 13),                   # ends before it starts
    ("a.py@R(1,1-1,1)", 12),                    # "-" is fine, "1" should be ">"
    ("a%2.py@L1:C1", 2),
    ("a%zz.py@L1:C1", 2),
    ("a%C3%28.py@L1:C1", 2),                    # not UTF-8: the run's first bad byte
    ("ok%41%FF.py@L1:C1", 6),
    ("a.py@L1:C1?", 12),
    ("a.py@L1:C1?v=", 14),
    ("a.py@L1:C1?v=" + SHA + "0", 54),
    ("a.py@L1:C1?v=" + SHA[:-1] + "g", 53),
    ("a.py@L1:C1?ctx=3", 12),                   # ctx belongs to anchors
    ("a.py@L1:C1?v=" + SHA + "&v=" + SHA, 55),  # twice
    ("a.py@L1:C1?v=" + SHA + "&", 55),
    ("a.py:0:1", 6),                            # path:line:col is 1-based too
    ("a.py:1:0", 8),
    ("a.py:1", 7),                              # two numbers, or it is no cursor
    ("a.py:99999999999:1", 6),
    (":1:2", 5),                                # no path
    ("a b.py:1:2", 2),
    ("a.py:1:2?ctx=1", 10),
    ("py://", 6),
    ("py://pkg.mod", 13),
    ("py://pkg..mod#f", 10),
    ("py://pkg.1mod#f", 10),
    ("py://pkg.mod#f:body2", 16),
    ("py://pkg.mod#C.f-x", 17),
    ("py://m#f?overload=0", 19),
    ("py://m#f?overload=1x", 20),
    ("ast://", 7),
    ("ast://call[1]", 7),
    ("ast://[klass=C]", 8),
    ("ast://[class=C]/[module=m]", 18),
    ("ast://[class=C]/call[1]/[def=f]", 25),
    ("ast://[class=C.D]", 15),
    ("ast://[class=C]/Call[1]", 17),
    ("ast://[class=C]/call[0]", 22),
    ("ast://[class=C]/call[1", 23),
    ("ast://[class=C", 15),
    ("ast://[class=C]x", 16),
    ('anchor://a.py', 14),
    ('anchor://a.py#x', 15),
    ('anchor://a.py#"x', 17),
    ('anchor://a.py#""', 16),
    ('anchor://a.py#"x"y', 18),
    ('anchor://a.py#"x%2"', 17),
    ('anchor://a b.py#"x"', 11),
    ('anchor://a.py#"x"?overload=1', 19),
    ('anchor://a.py#"x"?h=12345678901234567890123456789012345678901234567890123456789012345', 21),
    ('{"kind":"cursor"', 17),
    ('{"kind": "nope"}', 10),
    ('{"kind":"cursor","path":"a","line":true,"col":0}', 36),
    ('{"kind":"cursor","path":"a","line":-1,"col":0}', 36),
    ('{"kind":"cursor","path":"a","line":0,"col":0,"extra":1}', 46),
    ('{"kind":"cursor","kind":"range"}', 18),
    ('{"kind":"cursor","path":"a","line":NaN,"col":0}', 36),
    ('{"kind":"cursor","path":"a","line":1.0,"col":0}', 36),
]


@pytest.mark.parametrize("text,column", BAD)
def test_bad_selector_reports_the_column(text, column):
    with pytest.raises(BadSelectorSyntax) as info:
        parse_selector(text)
    assert info.value.column == column, info.value.message
    assert info.value.details["column"] == column
    assert info.value.exit_code == 2


def test_bad_indexing_argument_is_a_bad_option_value():
    with pytest.raises(BadInput) as info:
        parse_selector("a.py@L1:C1", indexing="utf-7")
    assert (info.value.code, info.value.exit_code) == ("E/BAD_INPUT", 2)


def test_deeply_nested_json_is_a_syntax_error():
    with pytest.raises(BadSelectorSyntax):
        parse_selector("{" + '"a":[' * 100000)
    with pytest.raises(BadSelectorSyntax):
        parse_selector('{"kind":"cursor","path":"a","line":' + "9" * 5000 + ',"col":0}')


# -- PositionSpec JSON --------------------------------------------------------------

def test_json_forms():
    cur = parse_selector('{"kind":"cursor","path":"a.py","line":0,"col":5,"indexing":"utf-16"}')
    assert (cur.line, cur.col, cur.indexing) == (0, 5, "utf-16")
    assert parse_selector('{"kind":"cursor","path":"a.py","line":0,"col":5,"indexing":"utf-32"}').indexing \
        == "codepoint"
    rng = parse_selector('{"kind":"range","path":"a.py","line":1,"col":2,"endLine":3,"endCol":0}')
    assert (rng.end_line, rng.end_col) == (3, 0)
    sym = parse_selector('{"kind":"symbol","qualname":"pkg.mod#C.m","role":"sig","overload":null}')
    assert (sym.module, sym.qualname, sym.role, sym.overload) == ("pkg.mod", "C.m", "sig", None)
    ast = parse_selector('{"kind":"ast","path":[["module","p.m"],["class","C"],["call",2]]}')
    assert ast.ast_path == (("module", "p.m"), ("class", "C"), ("call", 2))
    anc = parse_selector('{"kind":"anchor","path":"a.py","snippet":"x y","ctx":0,"hash":"AB"}')
    assert (anc.snippet, anc.ctx, anc.hash) == ("x y", 0, "ab")


@pytest.mark.parametrize("obj", [
    [],
    {"kind": "cursor", "path": "a", "line": 0},
    {"kind": "cursor", "path": "", "line": 0, "col": 0},
    {"kind": "cursor", "path": "a", "line": 0, "col": 0, "indexing": "latin-1"},
    {"kind": "cursor", "path": "file://a b", "line": 0, "col": 0},
    {"kind": "range", "path": "a", "line": 2, "col": 0, "endLine": 1, "endCol": 0},
    {"kind": "symbol", "module": "m", "qualname": "p.m#f"},
    {"kind": "symbol", "module": "m", "qualname": "f", "overload": 0},
    {"kind": "symbol", "module": "m", "qualname": "f", "indexing": "utf-16"},
    {"kind": "ast", "path": []},
    {"kind": "ast", "path": [["call", 1]]},
    {"kind": "ast", "path": [["class", "C"], ["call", True]]},
    {"kind": "ast", "path": [["class", "C"], ["module", "m"]]},
    {"kind": "anchor", "path": "a", "snippet": ""},
    {"kind": "anchor", "path": "a", "snippet": "x", "hash": "xyz"},
    {"kind": "anchor", "path": "a", "snippet": "x", "docVersion": "abc"},
])
def test_bad_json_objects(obj):
    with pytest.raises(BadSelectorSyntax):
        spec_from_json(obj)
    text = json.dumps(obj)
    text = text if text.startswith("{") else "{" + text
    with pytest.raises(BadSelectorSyntax) as info:
        parse_selector(text)
    assert info.value.column is not None and 1 <= info.value.column <= len(text) + 1


# -- properties -------------------------------------------------------------------------

NO_SURROGATES = st.characters(exclude_categories=("Cs",))
_ident = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True) | st.sampled_from(["é", "日本", "_x1"])
_dotted = st.lists(_ident, min_size=1, max_size=3).map(".".join)
_pos = st.integers(0, MAX_INT - 1)
_path = (st.text(NO_SURROGATES | st.sampled_from(list('%"#?& @{:/\\')), min_size=1, max_size=12)
         .filter(lambda p: not p.startswith("file://"))
         | st.from_regex(r"file:///[a-z0-9/._%-]{1,10}", fullmatch=True)
         .filter(lambda p: all(p[i + 1:i + 3].isalnum() and len(p[i + 1:i + 3]) == 2
                               and all(c in "0123456789abcdef" for c in p[i + 1:i + 3])
                               for i, c in enumerate(p) if c == "%")))
_version = st.none() | st.text("0123456789abcdef", min_size=40, max_size=40)
_indexing = st.sampled_from(["codepoint", "utf-16", "utf-8"])


@st.composite
def _range_spec(draw):
    a, b = sorted([(draw(_pos), draw(_pos)), (draw(_pos), draw(_pos))])
    return SelectorSpec(kind="range", path=draw(_path), line=a[0], col=a[1], end_line=b[0], end_col=b[1],
                        indexing=draw(_indexing), doc_version=draw(_version))


@st.composite
def _ast_spec(draw):
    steps = [("module", draw(_dotted))] if draw(st.booleans()) else []
    steps += [(draw(st.sampled_from([t for t in BRACKET_TYPES if t != "module"])), draw(_ident))
              for _ in range(draw(st.integers(0 if steps else 1, 3)))]
    steps += [(draw(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)), draw(st.integers(1, MAX_INT)))
              for _ in range(draw(st.integers(0, 3)))]
    return SelectorSpec(kind="ast", ast_path=tuple(steps), doc_version=draw(_version))


SPECS = st.one_of(
    st.builds(lambda p, ln, c, i, v: SelectorSpec(kind="cursor", path=p, line=ln, col=c, indexing=i,
                                                 doc_version=v),
              _path, _pos, _pos, _indexing, _version),
    _range_spec(),
    st.builds(lambda m, q, r, o, v: SelectorSpec(kind="symbol", module=m, qualname=q, role=r, overload=o,
                                                 doc_version=v),
              _dotted, _dotted, st.sampled_from(ROLES), st.none() | st.integers(1, MAX_INT), _version),
    _ast_spec(),
    st.builds(lambda p, s, c, h, v: SelectorSpec(kind="anchor", path=p, snippet=s, ctx=c, hash=h,
                                                 doc_version=v),
              _path, st.text(NO_SURROGATES | st.sampled_from(list('"\\%#?& ')), min_size=1, max_size=20),
              st.none() | st.integers(0, MAX_INT), st.none() | st.text("0123456789abcdef", min_size=1,
                                                                       max_size=64), _version),
)


def _indexing_of(spec: SelectorSpec) -> str:
    return spec.indexing if spec.kind in ("cursor", "range") else "codepoint"


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(SPECS)
def test_round_trip_through_the_string_form(spec):
    text = format_selector(spec)
    assert parse_selector(text, indexing=_indexing_of(spec)) == spec
    assert format_selector(parse_selector(text, indexing=_indexing_of(spec))) == text


def _compiler_form(spec: SelectorSpec) -> str:
    """``PATH:<line>:<col>[?query]``: the canonical cursor with its ``@L..:C..`` rewritten."""
    canonical = format_selector(spec)
    q = canonical.find("?")
    body, query = (canonical, "") if q < 0 else (canonical[:q], canonical[q:])
    head = body[:body.rfind("@")]
    return f"{head}:{spec.line + 1}:{spec.col + 1}{query}"


_CURSORS = st.builds(lambda p, ln, c, i, v: SelectorSpec(kind="cursor", path=p, line=ln, col=c, indexing=i,
                                                        doc_version=v),
                     _path, _pos, _pos, _indexing, _version)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(_CURSORS)
def test_path_line_col_round_trips_to_the_same_cursor(spec):
    text = _compiler_form(spec)
    assert parse_selector(text, indexing=spec.indexing) == spec
    assert format_selector(parse_selector(text, indexing=spec.indexing)) == format_selector(spec)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(SPECS)
def test_canonical_forms_never_read_as_path_line_col(spec):
    """No canonical string ends in ``:<digits>:<digits>``, so the compiler form cannot capture one."""
    text = format_selector(spec)
    q = text.find("?")
    body = text if q < 0 else text[:q]
    assert re.search(r":[0-9]+:[0-9]+\Z", body) is None


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(SPECS)
def test_round_trip_through_json(spec):
    obj = spec.to_json()
    assert spec_from_json(obj) == spec
    assert parse_selector(json.dumps(obj)) == spec
    assert parse_selector(json.dumps(obj, ensure_ascii=False)) == spec


def _check_only_syntax_errors(text: str) -> None:
    try:
        spec = parse_selector(text)
    except BadSelectorSyntax as exc:
        assert exc.column is not None and 1 <= exc.column <= len(text) + 1, (text, exc.column)
        assert "internal" not in exc.message, exc.message
        return
    # whatever parses has a canonical form that is a fixed point
    canon = format_selector(spec)
    indexing = spec.indexing if spec.kind in ("cursor", "range") else "codepoint"
    assert parse_selector(canon, indexing=indexing) == spec
    assert format_selector(parse_selector(canon, indexing=indexing)) == canon


@settings(max_examples=1000)
@given(st.text())
def test_random_text_only_raises_syntax_errors(text):
    _check_only_syntax_errors(text)


@settings(max_examples=300)
@given(st.sampled_from(["{", "py://", "ast://", "anchor://", "a.py@", "file://", "a.py:", "a.py:1:"]), st.text())
def test_random_text_after_a_scheme_only_raises_syntax_errors(prefix, text):
    _check_only_syntax_errors(prefix + text)


_MUTATION_ALPHABET = st.sampled_from(list('@#?&=%"\\/[](){}:,.-> 0123456789LCRabcfgvhx\x00\U0001F600\ud800'))


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(SPECS, st.booleans(), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 2), _MUTATION_ALPHABET),
                                       min_size=1, max_size=4))
def test_mutated_selectors_only_raise_syntax_errors(spec, as_json, edits):
    text = json.dumps(spec.to_json()) if as_json else format_selector(spec)
    chars = list(text)
    for where, op, ch in edits:
        i = where % (len(chars) + 1)
        if op == 0:
            chars.insert(i, ch)
        elif op == 1 and i < len(chars):
            del chars[i]
        elif i < len(chars):
            chars[i] = ch
    mutated = "".join(chars)
    assume(mutated != text)
    _check_only_syntax_errors(mutated)


@pytest.mark.parametrize("target,expected", [
    ("src/app.py", False), ("README.md", False), ("a:b.py", False), ("a.py:3", False),
    ("src/app.py:3:4", True), ("src/app.py@L3:C4", True), ("py://m#f", True), ('{"kind":"cursor"}', True),
])
def test_symbols_and_diag_targets_that_are_selectors(target, expected):
    assert looks_like_selector(target) is expected
