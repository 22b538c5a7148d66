"""Selector strings and PositionSpec JSON to :class:`SelectorSpec` and back (CONTRACT.md section 2).

Why a hand-written scanner instead of regular expressions: every error must
name the 1-based column of the first bad character (``BadSelectorSyntax``), and
nothing else may escape :func:`parse_selector` for any input, so the parser
walks the text left to right and reports where it stopped.

The string forms (numbers 1-based, columns in the caller's ``--index-io``)::

    PATH@L<line>:C<col>                       cursor
    PATH:<line>:<col>                         cursor, as compilers (and Lanser's summaries) print it
    PATH@R(<line>,<col>-><line>,<col>)        range (end not before start)
    py://<module>#<qualname>[:<role>]         symbol; role def|sig|body|doc
    ast://<step>/<step>/...                   [module=a.b] [class=C] [def=f] [var=x], then node steps t[N]
    anchor://PATH#"<snippet>"                 content anchor

followed by an optional query ``?name=value&name=value``: ``v`` (all forms),
``overload`` (symbol), ``ctx`` and ``h`` (anchor).  Decisions where the
contract is silent:

* Paths and snippets are percent-decoded as UTF-8 (``%22`` is ``"``); a ``%``
  not followed by two hex digits is an error.  Raw space, ``"``, ``#`` and
  control characters are refused in paths (``?`` starts the query); inside the
  quotes of a snippet everything but ``"`` is literal and ``\\"`` is a quote.
  ``file://`` URIs are kept verbatim (not decoded): the workspace decodes them.
* In a cursor/range selector the path ends at the *last* ``@``, so paths may
  contain ``@``.
* ``PATH:<line>:<col>`` is recognized by its end: text (before the query) that
  ends in ``:<digits>:<digits>`` after a non-empty path.  No canonical form ends
  so (``@L..:C<n>`` and ``@R(...)`` do not), so the two never collide; the path
  is everything before the last two colons (it may contain ``:`` and ``@``).  It
  parses to the same cursor as ``PATH@L<line>:C<col>``, which is also its
  canonical form.
* ``[var=name]`` addresses a module- or class-level assignment; ``[def=f]``
  also matches ``async def``.  ``[module=...]`` may only be the first step,
  bracket steps come before node steps, and there is at least one bracket step.
  Node step types are lowercase tree-sitter-like names, indexes 1-based.
* Numbers are at most 2**31-1 (LSP's integer range); leading zeros are allowed
  and dropped by :func:`format_selector`.
* ``v=`` is a 40-hex git blob id, optionally ``git:``-prefixed, stored lowercase;
  ``h=`` is 1-64 hex digits, stored lowercase.
* PositionSpec JSON: unknown kinds and fields, duplicate keys, wrong types
  (``true`` is not a number) and negative numbers are refused; ``null`` means
  absent for optional fields; ``indexing`` accepts LSP's ``utf-32`` for
  ``codepoint``.  Column numbers of JSON errors point at the offending key's
  value when it can be found in the text, else at column 1.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Callable, NoReturn

from ..codec import ENCODINGS, check_encoding
from ..errors import BadSelectorSyntax
from .spec import KINDS, ROLES, SelectorSpec

MAX_INT = 2**31 - 1
BRACKET_TYPES = ("module", "class", "def", "var")
PARAMS: dict[str, tuple[str, ...]] = {
    "cursor": ("v",), "range": ("v",), "symbol": ("overload", "v"), "ast": ("v",),
    "anchor": ("ctx", "h", "v"),
}
JSON_FIELDS: dict[str, frozenset[str]] = {
    "cursor": frozenset({"kind", "path", "line", "col", "indexing", "docVersion"}),
    "range": frozenset({"kind", "path", "line", "col", "endLine", "endCol", "indexing", "docVersion"}),
    "symbol": frozenset({"kind", "module", "qualname", "role", "overload", "docVersion"}),
    "ast": frozenset({"kind", "path", "docVersion"}),
    "anchor": frozenset({"kind", "path", "snippet", "ctx", "hash", "docVersion"}),
}
INDEXING_ALIASES = {"utf-32": "codepoint", "utf8": "utf-8", "utf16": "utf-16"}
_SCHEMES = ("py://", "ast://", "anchor://")
_HEX = frozenset("0123456789abcdefABCDEF")
_NODE_TYPE = re.compile(r"[a-z_][a-z0-9_]*\Z")
_PCT_CHARS = frozenset('%"#? &')
_COMPILER_TAIL = re.compile(r":([0-9]+):([0-9]+)\Z")


def _is_control(ch: str) -> bool:
    o = ord(ch)
    return o < 0x20 or 0x7F <= o <= 0x9F


def _is_surrogate(ch: str) -> bool:
    return 0xD800 <= ord(ch) <= 0xDFFF


class _Fail:
    """Raises BadSelectorSyntax for one input text; ``at`` is a 0-based index."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __call__(self, message: str, at: int | None) -> NoReturn:
        column = None if at is None else max(1, min(at + 1, len(self.text) + 1))
        raise BadSelectorSyntax(message, text=self.text, column=column)


# -- public API ------------------------------------------------------------

def parse_selector(text: str, *, indexing: str = "codepoint") -> SelectorSpec:
    """Parse any selector string (or PositionSpec JSON) into a SelectorSpec.

    ``indexing`` is the caller's ``--index-io``: the units of a string
    cursor/range selector's columns (JSON carries its own).  Raises only
    BadSelectorSyntax for any ``text`` (BadInput for a bad ``indexing`` argument,
    an option value rather than selector text).
    """
    check_encoding(indexing)
    if not isinstance(text, str):
        raise BadSelectorSyntax(f"a selector must be a string, not {type(text).__name__}")
    return _parse_cached(text, indexing)


@lru_cache(maxsize=4096)
def _parse_cached(text: str, indexing: str) -> SelectorSpec:
    """Warm engines see the same selectors again; specs are immutable, so one parse serves."""
    fail = _Fail(text)
    try:
        if text == "":
            fail("empty selector", 0)
        if text.startswith("{"):
            return _parse_json_text(text, fail)
        if text.startswith("py://"):
            return _parse_symbol(text, fail)
        if text.startswith("ast://"):
            return _parse_ast(text, fail)
        if text.startswith("anchor://"):
            return _parse_anchor(text, fail)
        return _parse_position(text, indexing, fail)
    except BadSelectorSyntax:
        raise
    except Exception as exc:  # noqa: BLE001 - a safety net; the tests assert it never fires
        # A bug here must still reach the user as exit 2 with a message, never a traceback.
        fail(f"unparseable selector (internal {type(exc).__name__})", 0)


def looks_like_selector(target: str) -> bool:
    """A ``symbols``/``diag`` target that is a selector, not a PATH: a scheme, JSON, an ``@``
    (cursor or range) or a ``:<line>:<col>`` ending."""
    if target.startswith(("{", "py://", "ast://", "anchor://")) or "@" in target:
        return True
    tail = _COMPILER_TAIL.search(target, 0, _query_start(target, 0))
    return tail is not None and tail.start() > 0


def spec_from_json(obj: Any) -> SelectorSpec:
    """Validate a decoded PositionSpec JSON object (0-based) and build the spec.

    Raises BadSelectorSyntax (without a column: there is no text) when invalid.
    """
    def fail(message: str, key: str | None) -> NoReturn:
        raise BadSelectorSyntax(message)
    return _from_json(obj, fail)


def format_selector(spec: SelectorSpec) -> str:
    """The canonical string form of ``spec``; see :func:`_format_selector`."""
    try:
        return _format_cached(spec)
    except TypeError:  # a hand-built spec with an unhashable field
        return _format_selector(spec)


@lru_cache(maxsize=4096)
def _format_cached(spec: SelectorSpec) -> str:
    return _format_selector(spec)


def _format_selector(spec: SelectorSpec) -> str:
    """The canonical string form of ``spec`` (1-based numbers, no ``indexing``).

    Only the fields ``spec.kind`` uses are written; they are validated first
    (BadSelectorSyntax when invalid), so ``parse_selector(format_selector(s),
    indexing=s.indexing) == s`` for every valid spec.
    """
    s = spec_from_json(spec.to_json())
    if s.kind in ("cursor", "range"):
        assert s.path is not None and s.line is not None and s.col is not None
        head = _format_position_path(s.path)
        if s.kind == "cursor":
            out = f"{head}@L{s.line + 1}:C{s.col + 1}"
        else:
            assert s.end_line is not None and s.end_col is not None
            out = f"{head}@R({s.line + 1},{s.col + 1}->{s.end_line + 1},{s.end_col + 1})"
        params: list[tuple[str, object]] = []
    elif s.kind == "symbol":
        role = "" if s.role == "def" else f":{s.role}"
        out = f"py://{s.module}#{s.qualname}{role}"
        params = [("overload", s.overload)]
    elif s.kind == "ast":
        steps = [f"[{t}={n}]" if isinstance(n, str) else f"{t}[{n}]" for t, n in s.ast_path]
        out = "ast://" + "/".join(steps)
        params = []
    else:
        assert s.path is not None and s.snippet is not None
        snippet = encode_component(s.snippet)
        if snippet.endswith("\\"):
            snippet = snippet[:-1] + "%5C"  # else it would escape the closing quote
        out = f'anchor://{_format_path(s.path)}#"{snippet}"'
        params = [("ctx", s.ctx), ("h", s.hash)]
    params.append(("v", s.doc_version))
    query = "&".join(f"{k}={v}" for k, v in params if v is not None)
    return f"{out}?{query}" if query else out


def encode_component(value: str) -> str:
    """Percent-encode a path or snippet: ``% " # ? & space`` and non-printables as UTF-8 ``%XX``."""
    out = []
    for ch in value:
        if ch in _PCT_CHARS or not ch.isprintable():
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass")))
        else:
            out.append(ch)
    return "".join(out)


def _format_path(path: str) -> str:
    return path if path.startswith("file://") else encode_component(path)


def _format_position_path(path: str) -> str:
    """Encode a cursor/range path so it cannot be mistaken for another form."""
    out = _format_path(path)
    if out.startswith("{"):
        out = "%7B" + out[1:]
    for scheme in _SCHEMES:
        if out.startswith(scheme):
            i = out.index(":")
            out = out[:i] + "%3A" + out[i + 1:]
    return out


# -- string forms ----------------------------------------------------------

def _decode(text: str, start: int, end: int, fail: _Fail, *, what: str,
            forbid: Callable[[str], bool]) -> str:
    """Percent-decode ``text[start:end]`` (UTF-8); ``forbid`` marks raw chars to refuse."""
    out: list[str] = []
    i = start
    while i < end:
        ch = text[i]
        if ch == "%":
            run_start, data = i, bytearray()
            while i < end and text[i] == "%":
                if i + 3 > end or text[i + 1] not in _HEX or text[i + 2] not in _HEX:
                    fail(f"'%' in {what} must be followed by two hex digits", i)
                data.append(int(text[i + 1:i + 3], 16))
                i += 3
            try:
                out.append(data.decode("utf-8"))
            except UnicodeDecodeError as exc:
                fail(f"percent-encoded bytes in {what} are not UTF-8", run_start + 3 * exc.start)
            continue
        if _is_surrogate(ch) or forbid(ch):
            fail(f"character {ch!r} must be percent-encoded in {what}", i)
        out.append(ch)
        i += 1
    return "".join(out)


def _path_forbidden(ch: str) -> bool:
    return ch in '"#? ' or _is_control(ch)


def _parse_path(text: str, start: int, end: int, fail: _Fail) -> str:
    """A workspace-relative path (percent-decoded) or a verbatim ``file://`` URI."""
    if start >= end:
        fail("expected a path", start)
    if text.startswith("file://", start):
        for i in range(start, end):  # checked, not decoded: the workspace decodes URIs
            if text[i] == "%" and (i + 3 > end or text[i + 1] not in _HEX or text[i + 2] not in _HEX):
                fail("'%' in a file URI must be followed by two hex digits", i)
            if _is_surrogate(text[i]) or _path_forbidden(text[i]):
                fail(f"character {text[i]!r} must be percent-encoded in a file URI", i)
        if end - start == len("file://"):
            fail("expected a path after 'file://'", end)
        return text[start:end]
    path = _decode(text, start, end, fail, what="a path", forbid=_path_forbidden)
    if path.startswith("file://"):
        fail("a file URI must be written without percent-encoding its scheme", start)
    return path


def _parse_int(text: str, i: int, end: int, fail: _Fail, *, what: str, minimum: int) -> tuple[int, int]:
    """Digits at ``text[i:end]``; returns (value, index after the digits)."""
    j = i
    while j < end and text[j] in "0123456789":
        j += 1
    if j == i:
        fail(f"expected a number ({what})", i)
    digits = text[i:j].lstrip("0") or "0"
    if len(digits) > 10 or int(digits) > MAX_INT:
        fail(f"{what} is larger than {MAX_INT}", i)
    value = int(digits)
    if value < minimum:
        fail(f"{what} must be at least {minimum}", i)
    return value, j


def _expect(text: str, i: int, end: int, token: str, fail: _Fail) -> int:
    for k, ch in enumerate(token):
        if i + k >= end or text[i + k] != ch:
            fail(f"expected {token!r}", i + k)
    return i + len(token)


def _query_start(text: str, start: int) -> int:
    q = text.find("?", start)
    return len(text) if q < 0 else q


def _parse_query(text: str, q: int, kind: str, fail: _Fail) -> dict[str, Any]:
    """Parameters after the ``?`` at index ``q`` (nothing when q == len(text))."""
    out: dict[str, Any] = {}
    n = len(text)
    if q >= n:
        return out
    i = q + 1
    if i >= n:
        fail("expected a parameter after '?'", i)
    while True:
        amp = text.find("&", i)
        stop = n if amp < 0 else amp
        eq = text.find("=", i, stop)
        if eq < 0:
            fail("expected name=value", stop if i < stop else i)
        name = text[i:eq]
        if name not in PARAMS[kind]:
            allowed = ", ".join(PARAMS[kind])
            fail(f"unknown parameter {name!r} for a {kind} selector (allowed: {allowed})", i)
        if name in out:
            fail(f"parameter {name!r} given twice", i)
        out[name] = _param_value(text, name, eq + 1, stop, fail)
        if amp < 0:
            return out
        i = amp + 1
        if i >= n:
            fail("expected a parameter after '&'", i)


def _param_value(text: str, name: str, i: int, stop: int, fail: _Fail) -> Any:
    if name in ("overload", "ctx"):
        value, j = _parse_int(text, i, stop, fail, what=name, minimum=1 if name == "overload" else 0)
        if j != stop:
            fail(f"unexpected character in {name}", j)
        return value
    if name == "h":
        _hex_run(text, i, stop, fail, what="the context hash")
        if not 1 <= stop - i <= 64:
            fail("the context hash must have 1 to 64 hex digits", i)
        return text[i:stop].lower()
    if text.startswith("git:", i):
        i += 4
    _hex_run(text, i, stop, fail, what="the document version")
    if stop - i != 40:
        fail("the document version must be a 40-hex git blob id", stop if stop - i < 40 else i + 40)
    return text[i:stop].lower()


def _hex_run(text: str, i: int, stop: int, fail: _Fail, *, what: str) -> None:
    for k in range(i, stop):
        if text[k] not in _HEX:
            fail(f"{what} must be hexadecimal", k)


def _with_query(spec_args: dict[str, Any], params: dict[str, Any]) -> SelectorSpec:
    names = {"v": "doc_version", "overload": "overload", "ctx": "ctx", "h": "hash"}
    for k, v in params.items():
        spec_args[names[k]] = v
    return SelectorSpec(**spec_args)


def _parse_position(text: str, indexing: str, fail: _Fail) -> SelectorSpec:
    q = _query_start(text, 0)
    tail = _COMPILER_TAIL.search(text, 0, q)
    if tail is not None and tail.start() > 0:
        return _parse_compiler_cursor(text, q, tail, indexing, fail)
    at = text.rfind("@", 0, q)
    if at < 0:
        _parse_path(text, 0, q, fail)
        fail("expected '@L<line>:C<col>', '@R(<line>,<col>-><line>,<col>)' or ':<line>:<col>' after the path", q)
    path = _parse_path(text, 0, at, fail)
    i = at + 1
    if text.startswith("L", i):
        line, i = _parse_int(text, i + 1, q, fail, what="line", minimum=1)
        i = _expect(text, i, q, ":C", fail)
        col, i = _parse_int(text, i, q, fail, what="column", minimum=1)
        args: dict[str, Any] = dict(kind="cursor", path=path, line=line - 1, col=col - 1, indexing=indexing)
    elif text.startswith("R(", i):
        line, i = _parse_int(text, i + 2, q, fail, what="start line", minimum=1)
        i = _expect(text, i, q, ",", fail)
        col, i = _parse_int(text, i, q, fail, what="start column", minimum=1)
        i = _expect(text, i, q, "->", fail)
        end_at = i
        end_line, i = _parse_int(text, i, q, fail, what="end line", minimum=1)
        i = _expect(text, i, q, ",", fail)
        end_col, i = _parse_int(text, i, q, fail, what="end column", minimum=1)
        i = _expect(text, i, q, ")", fail)
        if (end_line, end_col) < (line, col):
            fail("the range ends before it starts", end_at)
        args = dict(kind="range", path=path, line=line - 1, col=col - 1, end_line=end_line - 1,
                    end_col=end_col - 1, indexing=indexing)
    else:
        fail("expected 'L<line>:C<col>' or 'R(<line>,<col>-><line>,<col>)' after '@'", i)
    if i != q:
        fail("unexpected text after the position", i)
    return _with_query(args, _parse_query(text, q, args["kind"], fail))


def _parse_compiler_cursor(text: str, q: int, tail: re.Match[str], indexing: str, fail: _Fail) -> SelectorSpec:
    """``PATH:<line>:<col>`` (1-based, as compilers print locations): a cursor."""
    path = _parse_path(text, 0, tail.start(), fail)
    line, _ = _parse_int(text, tail.start(1), tail.end(1), fail, what="line", minimum=1)
    col, _ = _parse_int(text, tail.start(2), tail.end(2), fail, what="column", minimum=1)
    args: dict[str, Any] = dict(kind="cursor", path=path, line=line - 1, col=col - 1, indexing=indexing)
    return _with_query(args, _parse_query(text, q, "cursor", fail))


def _check_dotted(text: str, start: int, end: int, fail: _Fail, *, what: str) -> str:
    """Dotted Python identifiers in ``text[start:end]``; reports the first bad character."""
    i = start
    while True:
        j = i
        while j < end and text[j] != ".":
            ch = text[j]
            ok = ch.isidentifier() if j == i else ("a" + ch).isidentifier()
            if not ok:
                fail(f"{what} must be dotted Python identifiers; {ch!r} is not allowed here", j)
            j += 1
        if j == i:
            fail(f"expected an identifier in {what}", i)
        if j >= end:
            return text[start:end]
        i = j + 1


def _parse_symbol(text: str, fail: _Fail) -> SelectorSpec:
    start = len("py://")
    q = _query_start(text, start)
    hash_at = text.find("#", start, q)
    if hash_at < 0:
        _check_dotted(text, start, q, fail, what="the module")
        fail("expected '#' and a qualified name after the module", q)
    module = _check_dotted(text, start, hash_at, fail, what="the module")
    colon = text.find(":", hash_at + 1, q)
    qual_end = q if colon < 0 else colon
    qualname = _check_dotted(text, hash_at + 1, qual_end, fail, what="the qualified name")
    role = "def"
    if colon >= 0:
        role = text[colon + 1:q]
        if role not in ROLES:
            fail(f"unknown role {role!r}; use one of {', '.join(ROLES)}", colon + 1)
    args: dict[str, Any] = dict(kind="symbol", module=module, qualname=qualname, role=role)
    return _with_query(args, _parse_query(text, q, "symbol", fail))


def _parse_ast(text: str, fail: _Fail) -> SelectorSpec:
    i = len("ast://")
    q = _query_start(text, i)
    steps: list[tuple[str, Any]] = []
    while True:
        if i < q and text[i] == "[":
            if steps and isinstance(steps[-1][1], int):
                fail("bracket steps must come before node steps", i)
            eq = text.find("=", i + 1, q)
            if eq < 0:
                fail("expected '[type=name]'", i + 1 if i + 1 < q else q)
            kind = text[i + 1:eq]
            if kind not in BRACKET_TYPES:
                fail(f"unknown step type {kind!r}; use one of {', '.join(BRACKET_TYPES)}", i + 1)
            if kind == "module" and steps:
                fail("[module=...] may only be the first step", i + 1)
            close = text.find("]", eq + 1, q)
            end = q if close < 0 else close
            name = _check_dotted(text, eq + 1, end, fail, what=f"the {kind} name")
            if kind != "module" and "." in name:
                fail(f"a {kind} name is one identifier", eq + 1 + name.index("."))
            if close < 0:
                fail("expected ']'", q)
            steps.append((kind, name))
            i = close + 1
        else:
            if not steps:
                fail("an AST path starts with a bracket step such as [module=pkg.mod]", i)
            j = i
            while j < q and (text[j].isascii() and (text[j].isalnum() or text[j] == "_")):
                j += 1
            node_type = text[i:j]
            if not _NODE_TYPE.match(node_type):
                fail("expected a node step such as call[1] (lowercase type)", i)
            j = _expect(text, j, q, "[", fail)
            index, j = _parse_int(text, j, q, fail, what="node index", minimum=1)
            i = _expect(text, j, q, "]", fail)
            steps.append((node_type, index))
        if i == q:
            break
        i = _expect(text, i, q, "/", fail)
    return _with_query(dict(kind="ast", ast_path=tuple(steps)), _parse_query(text, q, "ast", fail))


def _parse_anchor(text: str, fail: _Fail) -> SelectorSpec:
    start = len("anchor://")
    n = len(text)
    end = start
    while end < n and text[end] not in "#?":
        end += 1
    path = _parse_path(text, start, end, fail)
    i = _expect(text, end, n, '#"', fail)
    out: list[str] = []
    while True:
        if i >= n:
            fail("unterminated snippet: expected a closing '\"'", n)
        ch = text[i]
        if ch == '"':
            break
        if ch == "\\" and i + 1 < n and text[i + 1] == '"':
            out.append('"')
            i += 2
            continue
        if ch == "%":
            j = i
            while j < n and text[j] == "%":
                j += 3
            out.append(_decode(text, i, min(j, n), fail, what="a snippet", forbid=lambda c: False))
            i = j
            continue
        if _is_surrogate(ch):
            fail("a lone surrogate cannot appear in a snippet", i)
        out.append(ch)
        i += 1
    snippet = "".join(out)
    if not snippet:
        fail("empty snippet", i)
    i += 1
    if i < n and text[i] != "?":
        fail("expected '?' or the end after the snippet", i)
    args: dict[str, Any] = dict(kind="anchor", path=path, snippet=snippet)
    return _with_query(args, _parse_query(text, i, "anchor", fail))


# -- PositionSpec JSON -----------------------------------------------------

class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _Constant(Exception):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


class _BigNumber:
    """Stands for a JSON integer too long to be a position (never an int)."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _parse_int_token(token: str) -> Any:
    return int(token) if len(token) <= 12 else _BigNumber()


def _raise_constant(token: str) -> Any:
    raise _Constant(token)


def _key_column(text: str, key: str, *, value: bool, last: bool = False) -> int | None:
    """0-based index of ``"key":`` (or of its value) in the JSON text; None if not written plainly."""
    matches = list(re.finditer(r'"%s"\s*:\s*' % re.escape(key), text))
    if not matches:
        return None
    m = matches[-1] if last else matches[0]
    return m.end() if value else m.start()


def _parse_json_text(text: str, fail: _Fail) -> SelectorSpec:
    try:
        obj = json.loads(text, object_pairs_hook=_pairs, parse_int=_parse_int_token,
                         parse_constant=_raise_constant)
    except json.JSONDecodeError as exc:
        fail(f"invalid PositionSpec JSON: {exc.msg}", exc.pos)
    except _DuplicateKey as exc:
        fail(f"duplicate key {exc.key!r} in PositionSpec JSON",
             _key_column(text, exc.key, value=False, last=True) or 0)
    except _Constant as exc:
        fail(f"{exc.token} is not allowed in PositionSpec JSON", max(text.find(exc.token), 0))
    except RecursionError:
        fail("PositionSpec JSON is nested too deeply", 0)

    def json_fail(message: str, key: str | None) -> NoReturn:
        at = None if key is None else _key_column(text, key, value=message.startswith("field"))
        fail(message, 0 if at is None else at)
    return _from_json(obj, json_fail)


_JsonFail = Callable[[str, "str | None"], NoReturn]


def _from_json(obj: Any, fail: _JsonFail) -> SelectorSpec:
    """Validate PositionSpec JSON.  ``fail(message, key)``: messages starting
    with "field" point at the key's value, others at the key itself."""
    if not isinstance(obj, dict):
        fail("PositionSpec JSON must be an object", None)
    kind = obj.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        fail(f"field 'kind' must be one of {', '.join(KINDS)}", "kind")
    for key in sorted(obj, key=str):
        if key not in JSON_FIELDS[kind]:
            fail(f"unknown field {key!r} for a {kind} selector", key)
    args: dict[str, Any] = {"kind": kind}
    if kind in ("cursor", "range"):
        args["path"] = _json_path(obj, "path", fail)
        args["line"] = _json_int(obj, "line", fail, required=True)
        args["col"] = _json_int(obj, "col", fail, required=True)
        args["indexing"] = _json_indexing(obj, fail)
        if kind == "range":
            args["end_line"] = _json_int(obj, "endLine", fail, required=True)
            args["end_col"] = _json_int(obj, "endCol", fail, required=True)
            if (args["end_line"], args["end_col"]) < (args["line"], args["col"]):
                fail("field 'endLine'/'endCol': the range ends before it starts", "endLine")
    elif kind == "symbol":
        args.update(_json_symbol(obj, fail))
    elif kind == "ast":
        args["ast_path"] = _json_ast_path(obj.get("path"), fail)
    else:
        args["path"] = _json_path(obj, "path", fail)
        snippet = obj.get("snippet")
        if not isinstance(snippet, str) or not snippet or any(map(_is_surrogate, snippet)):
            fail("field 'snippet' must be a non-empty string", "snippet")
        args["snippet"] = snippet
        args["ctx"] = _json_int(obj, "ctx", fail, required=False, maximum=MAX_INT)
        h = obj.get("hash")
        if h is not None:
            if not isinstance(h, str) or not 1 <= len(h) <= 64 or not set(h) <= _HEX:
                fail("field 'hash' must be 1 to 64 hex digits", "hash")
            args["hash"] = h.lower()
    dv = obj.get("docVersion")
    if dv is not None:
        if isinstance(dv, str) and dv.startswith("git:"):
            dv = dv[4:]
        if not isinstance(dv, str) or len(dv) != 40 or not set(dv) <= _HEX:
            fail("field 'docVersion' must be a 40-hex git blob id (optionally 'git:'-prefixed)", "docVersion")
        args["doc_version"] = dv.lower()
    return SelectorSpec(**args)


def _json_int(obj: dict[str, Any], key: str, fail: _JsonFail, *, required: bool,
              minimum: int = 0, maximum: int = MAX_INT - 1) -> int | None:
    """An int field; positions are 0-based, so they stop one below the string form's 1-based MAX_INT."""
    value = obj.get(key)
    if value is None and not required:
        return None
    if type(value) is not int or not minimum <= value <= maximum:
        fail(f"field {key!r} must be an integer from {minimum} to {maximum}", key)
    return value


def _json_path(obj: dict[str, Any], key: str, fail: _JsonFail) -> str:
    path = obj.get(key)
    if not isinstance(path, str) or not path or any(map(_is_surrogate, path)):
        fail(f"field {key!r} must be a non-empty path string", key)
    if path.startswith("file://"):
        bad = len(path) == len("file://") or any(_path_forbidden(c) for c in path)
        pct = [i for i, c in enumerate(path) if c == "%"]
        if bad or any(i + 3 > len(path) or not set(path[i + 1:i + 3]) <= _HEX for i in pct):
            fail(f"field {key!r}: a file URI must be percent-encoded", key)
    return path


def _json_indexing(obj: dict[str, Any], fail: _JsonFail) -> str:
    value = obj.get("indexing")
    if value is None:
        return "codepoint"
    if isinstance(value, str):
        value = INDEXING_ALIASES.get(value, value)
    if value not in ENCODINGS:
        fail(f"field 'indexing' must be one of {', '.join(ENCODINGS)}", "indexing")
    return str(value)


def _json_symbol(obj: dict[str, Any], fail: _JsonFail) -> dict[str, Any]:
    module, qualname = obj.get("module"), obj.get("qualname")
    if not isinstance(qualname, str):
        fail("field 'qualname' must be a string", "qualname")
    if "#" in qualname:
        if module is not None:
            fail("field 'qualname' holds a module ('pkg.mod#Name') but 'module' is given too", "qualname")
        module, _, qualname = qualname.partition("#")
    if not isinstance(module, str) or not _is_dotted(module):
        fail("field 'module' must be a dotted module name", "module" if "module" in obj else "qualname")
    if not _is_dotted(qualname):
        fail("field 'qualname' must be dotted Python identifiers", "qualname")
    role = obj.get("role")
    if role is None:
        role = "def"
    if role not in ROLES:
        fail(f"field 'role' must be one of {', '.join(ROLES)}", "role")
    overload = _json_int(obj, "overload", fail, required=False, minimum=1, maximum=MAX_INT)
    return {"module": module, "qualname": qualname, "role": role, "overload": overload}


def _is_dotted(name: str) -> bool:
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def _json_ast_path(path: Any, fail: _JsonFail) -> tuple[tuple[str, Any], ...]:
    if not isinstance(path, list) or not path:
        fail("field 'path' must be a non-empty list of [type, name] pairs", "path")
    steps: list[tuple[str, Any]] = []
    for n, step in enumerate(path):
        if not isinstance(step, list) or len(step) != 2 or not isinstance(step[0], str):
            fail(f"field 'path': step {n + 1} must be a [type, name] pair", "path")
        kind, name = step
        if isinstance(name, str):
            ok = (kind in BRACKET_TYPES and _is_dotted(name) and (kind == "module" or "." not in name)
                  and (kind != "module" or n == 0) and not (steps and isinstance(steps[-1][1], int)))
        else:
            ok = (type(name) is int and 1 <= name <= MAX_INT and bool(_NODE_TYPE.match(kind))
                  and n > 0)
        if not ok:
            fail(f"field 'path': step {n + 1} {step!r} is not a valid AST step", "path")
        steps.append((kind, name))
    return tuple(steps)
