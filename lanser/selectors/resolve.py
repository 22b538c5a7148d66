"""``resolve_selector``: any SelectorSpec to one location in the workspace, without a server.

Everything here is tree-sitter and files.  Per call each file is read once
(``Workspace.read``, through the jail) and parsed at most once; parses are
also cached per Workspace instance, keyed on the file's exact bytes, and the
module map is cached as lanser.selectors.modules describes.  Cursor and range
selectors never walk the workspace.

Decisions:

- cursor/range: columns are converted from ``spec.indexing`` to ``encoding``
  (lanser.codec); a line or column past the end is E/NOT_FOUND, a column
  inside a character E/INDEXING_UNSUPPORTED.  ``symbolId`` is set when a
  cursor lies on a definition's name.  Confidence 1.0.
- symbol (``py://mod#Qual:role``): the module is found through the module
  map; the exact qualname in that module is the only thing that may resolve
  (confidence 1.0).  Without ``?overload=N`` the implementation of an
  ``@overload`` group is meant (all variants are offered when there is none);
  ``Class.prop`` is a property's getter, ``Class.prop.setter`` and
  ``Class.prop.deleter`` its other accessors.  Several definitions with the
  same qualname (``if``/``else`` variants) are E/AMBIGUOUS.  With no exact
  match, definitions of the module and same-named definitions of similarly
  named modules are ranked with Eq. 3.1 (lanser.selectors.ranking).  When
  some carry the requested name (the module moved, the class changed, the
  name is re-exported from elsewhere) they are real candidates: E/AMBIGUOUS
  with them.  When the name exists nowhere (renamed or deleted), E/NOT_FOUND
  whose message says "did you mean" and names the look-alikes that share a
  name token with the request (or sit where the target was, for ``?v=``) as
  ``py://`` selectors (``details.candidates``).  A renamed, moved or deleted
  target never resolves silently to another symbol.
- ast: the same, with the kinds of the bracket steps checked, then node steps
  (lanser.selectors.astpath).  Without ``[module=...]`` all modules are
  searched.
- anchor: lanser.selectors.anchors scores; tau and margin decide.
- Queries are asked at the definition's name: when a range or anchor starts in
  a definition's header before its name (decorators, ``async``, ``def``,
  ``class``) and covers the name, ``selectionRange`` is the name (the range
  stays what was selected).  So the anchor ``locate`` mints for a function
  (``def name(...):``) answers def/refs/hover like the symbol selector does.
- ``?v=``: when the file's blob id differs, cursor/range/anchor positions are
  carried from the old text into the current one (E/VERSION_SKEW when the old
  text cannot be found) by :func:`map_old_position`: the line diff, plus
  content matching of a line that moved (reordered methods).  A cursor whose
  line was deleted, or whose identifier is no longer the one under the mapped
  position, is E/NOT_FOUND.  A stale anchor is looked up in the old text,
  carried over, and only the current candidate at that place is taken (a
  deleted target is E/NOT_FOUND, never a look-alike).  For symbol and ast
  selectors the structural resolution on the current code is authoritative;
  the old text is read only when there is no exact match, to rank the
  look-alikes by the old place and kinds.  ``relocated`` records what was done
  (``method``: ``diff``, ``anchor`` or ``structural``); it is None when the
  file is unchanged.
- ``anchor``: a resolution carries a freshly minted anchor selector for
  the target (unless the caller passes ``anchor=False``, as every command
  but ``locate`` does) (for a definition: its header line, ``def name(...):`` or the
  assignment statement; for a cursor: the text from the cursor on).
"""

from __future__ import annotations

import re
import weakref
from typing import Any, Sequence

from ..codec import check_encoding, check_position, from_codepoints, to_codepoints
from ..errors import Ambiguous, IndexingUnsupported, NotFound, VersionSkew
from ..workspace import SourceFile, Workspace, blob_id
from . import versions
from .anchors import find_anchor_candidates, mint_anchor
from .astpath import select_node, split_steps
from .grammar import format_selector
from .modules import ModuleMap, module_map, module_name_for
from .ranking import Request, decide, features, ranked, score
from .resolution import Candidate, Resolution, ScoringSettings
from .spec import SelectorSpec
from .structure import Definition, FileIndex, Span, index_source, normalize_qualname
from .symbol_id import symbol_id

_INDEX_CACHE: "weakref.WeakKeyDictionary[Workspace, dict[str, FileIndex]]" = weakref.WeakKeyDictionary()
_INDEX_CACHE_MAX = 2048
_WORD_RE = re.compile(r"\w+")
FUZZY_OFFER = 0.5       # s_prox at or above which a fuzzy candidate is offered without a shared token
DEFAULT_SCORING = ScoringSettings()  # the contract's weights, tau and margin (shared: frozen)


def resolve_selector(spec: SelectorSpec, ws: Workspace, *, original: str, encoding: str = "utf-16",
                     settings: ScoringSettings = DEFAULT_SCORING, anchor: bool = True) -> Resolution:
    """Resolve ``spec`` in ``ws``; ranges come back in ``encoding`` units (0-based).

    ``anchor=False`` skips minting ``Resolution.anchor``: scanning the file for
    look-alikes of the snippet was the largest cost of a warm ``def``/``hover``,
    whose callers do not use the anchor (``locate`` does)."""
    check_encoding(encoding)
    check_encoding(spec.indexing)
    session = _Session(ws, encoding, settings, original, format_selector(spec), anchor)
    handler = {"cursor": session.cursor, "range": session.range, "symbol": session.symbol,
               "ast": session.ast, "anchor": session.anchor}[spec.kind]
    return handler(spec)


def token_at(ws: Workspace, src: SourceFile, line: int, col: int, encoding: str) -> tuple[str, str] | None:
    """(tree-sitter node type, text) of the token at a 0-based position (``col`` in ``encoding``
    units), or of the one ending there (an identifier's end is still on it); None past the
    text.  ``identifier`` is the only type a name has: keywords, operators, comments and string
    contents are other types."""
    lines = src.lines
    if not 0 <= line < len(lines):
        return None
    session = _Session(ws, encoding, ScoringSettings(), "", "", mint=False)
    session._sources[src.rel] = src
    idx = session.index(src.rel)
    cp = to_codepoints(lines[line], col, encoding)
    row, bcol = idx.point_from_cp(line, cp)
    root = idx.tree.root_node
    found: tuple[str, str] | None = None
    for at in ((row, bcol), (row, bcol - 1)) if bcol > 0 else ((row, bcol),):
        node = root.descendant_for_point_range(at, at)
        if node is None or node.child_count or node.start_point == node.end_point:
            continue
        text = (node.text or b"").decode("utf-8", "replace")
        if node.type == "identifier":
            return node.type, text
        found = found or (node.type, text)
    return found


def _version(doc_version: str | None) -> str | None:
    if doc_version is None:
        return None
    v = doc_version.lower()
    return v[4:] if v.startswith("git:") else v


class _Session:
    """One resolve call: files read and parsed at most once."""

    def __init__(self, ws: Workspace, encoding: str, settings: ScoringSettings, original: str,
                 canonical: str, mint: bool = True) -> None:
        self.ws = ws
        self.mint = mint
        self.encoding = encoding
        self.settings = settings
        self.original = original
        self.canonical = canonical
        self._sources: dict[str, SourceFile] = {}
        self._mmap: ModuleMap | None = None

    # -- files -----------------------------------------------------------
    def source(self, user_path: str) -> SourceFile:
        got = self._sources.get(user_path)
        if got is None:
            got = self.ws.read(user_path)
            got = self._sources.setdefault(got.rel, got)
            self._sources[user_path] = got
        return got

    def index(self, rel: str) -> FileIndex:
        src = self.source(rel)
        cache = _INDEX_CACHE.setdefault(self.ws, {})
        hit = cache.get(src.rel)
        if hit is not None and hit.source.raw == src.raw:
            return hit
        idx = index_source(src)
        if len(cache) >= _INDEX_CACHE_MAX:
            cache.clear()
        cache[src.rel] = idx
        return idx

    def lines(self, src: SourceFile) -> Sequence[str]:
        """``src.lines`` (split once per file read: SourceFile caches it)."""
        return src.lines

    @property
    def mmap(self) -> ModuleMap:
        if self._mmap is None:
            self._mmap = module_map(self.ws)
        return self._mmap

    def old_text(self, src: SourceFile, doc_version: str | None, *,
                 required: bool) -> tuple[str | None, dict[str, Any] | None]:
        """(old text or None, relocation record or None) for a ``?v=`` on ``src``."""
        v = _version(doc_version)
        if v is None:
            return None, None
        current = blob_id(src.raw)
        if current == v:
            return None, None
        old = versions.old_text_for(self.ws, src.rel, v)
        if old is None and required:
            raise VersionSkew(f"{src.rel} has changed since version {v} (now {current}) and the old "
                              f"text is in neither git nor lanser's snapshot store",
                              details={"path": src.rel, "docVersion": v, "current": current})
        return old, {"path": src.rel, "docVersion": v, "current": current}

    # -- results ---------------------------------------------------------
    def _anchor(self, src: SourceFile, start_cp: int, end_cp: int) -> str | None:
        try:
            return mint_anchor(src, src.rel, start_cp, end_cp)
        except NotFound:
            return None

    def _definition_candidate(self, idx: FileIndex, d: Definition, module: str, request: Request,
                              role: str) -> Candidate:
        span = d.role_span(role) if role != "def" else d.def_span
        rng = idx.range_in(span, self.encoding) if span is not None else idx.range_in(d.def_span, self.encoding)
        feats = features(request, module, d.chain, d.name_span[0][0])
        label = f"{module}#{d.qualname}" + (f"?overload={d.overload}" if d.overload else "")
        return Candidate(path=idx.source.rel, range=rng,
                         selection_range=idx.range_in(d.name_span, self.encoding),
                         score=score(feats, self.settings), features=feats,
                         symbol_id=symbol_id(self.mmap.by_path.get(idx.source.rel, module),
                                             d.qualname, d.kind, d.overload),
                         label=label)

    def _resolution(self, src: SourceFile, rng: list[int], sel: list[int], *, confidence: float,
                    symbol: str | None = None, disambiguation: Sequence[Candidate] = (),
                    anchor_cp: tuple[int, int] | None = None, relocated: dict[str, Any] | None = None,
                    scoring: bool = True) -> Resolution:
        anchor = self._anchor(src, *anchor_cp) if anchor_cp is not None and self.mint else None
        return Resolution(original=self.original, canonical=self.canonical, path=src.rel,
                          range=list(rng), selection_range=list(sel), confidence=confidence,
                          encoding=self.encoding, symbol_id=symbol,
                          disambiguation=list(disambiguation),
                          scoring=self.settings if scoring else None, anchor=anchor,
                          relocated=relocated, source=src)

    # -- cursor and range --------------------------------------------------
    def _position(self, src: SourceFile, old: str | None, line: int, col: int, indexing: str,
                  ) -> tuple[int, int]:
        """A user position to (line, code-point col) in the current text."""
        if old is None:
            lines = self.lines(src)
            check_position(lines, line, col, indexing)
            return line, to_codepoints(lines[line], col, indexing)
        old_lines = old.split("\n")
        check_position(old_lines, line, col, indexing)
        cp = to_codepoints(old_lines[line], col, indexing)
        mapped = map_old_position(old, src.text, line, cp)
        if mapped is None:
            raise NotFound(f"{src.rel}: line {line + 1} of the selector's version was deleted since")
        before, after = _word_at(old_lines[line], cp), _word_at(self.lines(src)[mapped[0]], mapped[1])
        if before and before != after:
            raise NotFound(f"{src.rel}: the name {before!r} at line {line + 1} of the selector's "
                           f"version is gone (now {after!r} at line {mapped[0] + 1})")
        return mapped

    def _offset(self, src: SourceFile, line: int, cp: int) -> int:
        """Absolute code-point offset of (line, cp) in ``src.text``."""
        return src.line_starts[line] + cp

    def cursor(self, spec: SelectorSpec) -> Resolution:
        assert spec.path is not None and spec.line is not None and spec.col is not None
        src = self.source(spec.path)
        old, relocated = self.old_text(src, spec.doc_version, required=True)
        line, cp = self._position(src, old, spec.line, spec.col, spec.indexing)
        lines = self.lines(src)
        col = from_codepoints(lines[line], cp, self.encoding)
        if relocated is not None:
            relocated.update(method="diff", **{"from": [spec.line, spec.col], "to": [line, col]})
        sym = self._symbol_at(src, line, cp)
        off = self._offset(src, line, cp)
        rng = [line, col, line, col]
        return self._resolution(src, rng, rng, confidence=1.0, symbol=sym, anchor_cp=(off, off),
                                relocated=relocated, scoring=False)

    def range(self, spec: SelectorSpec) -> Resolution:
        assert spec.path is not None and spec.line is not None and spec.col is not None
        assert spec.end_line is not None and spec.end_col is not None
        src = self.source(spec.path)
        old, relocated = self.old_text(src, spec.doc_version, required=True)
        if old is None:
            start = self._position(src, None, spec.line, spec.col, spec.indexing)
            end = self._position(src, None, spec.end_line, spec.end_col, spec.indexing)
        else:
            old_lines = old.split("\n")
            check_position(old_lines, spec.line, spec.col, spec.indexing)
            check_position(old_lines, spec.end_line, spec.end_col, spec.indexing)
            s_cp = to_codepoints(old_lines[spec.line], spec.col, spec.indexing)
            e_cp = to_codepoints(old_lines[spec.end_line], spec.end_col, spec.indexing)
            mapped = versions.map_range(old, src.text, spec.line, s_cp, spec.end_line, e_cp)
            if mapped is None:
                raise NotFound(f"{src.rel}: the selected range was deleted since version "
                               f"{relocated['docVersion'] if relocated else ''}")
            start, end = (mapped[0], mapped[1]), (mapped[2], mapped[3])
        if end < start:
            raise NotFound("the range ends before it starts")
        lines = self.lines(src)
        rng = [start[0], from_codepoints(lines[start[0]], start[1], self.encoding),
               end[0], from_codepoints(lines[end[0]], end[1], self.encoding)]
        if relocated is not None:
            relocated.update(method="diff", **{"from": [spec.line, spec.col, spec.end_line, spec.end_col],
                                                "to": rng})
        anchor_cp = (self._offset(src, *start), self._offset(src, *end))
        sel, sym = self._definition_name(src, rng, (start, end))
        return self._resolution(src, rng, sel or rng, confidence=1.0, symbol=sym, anchor_cp=anchor_cp,
                                relocated=relocated, scoring=False)

    def _definition_name(self, src: SourceFile, rng: Sequence[int],
                         cps: tuple[tuple[int, int], tuple[int, int]]) -> tuple[list[int] | None, str | None]:
        """(name range, symbolId) of the innermost definition whose header the range starts in,
        before the name, and whose name the range covers; (None, None) when there is none."""
        if rng[:2] == rng[2:]:
            return None, None
        idx = self.index(src.rel)
        s = idx.point_from_cp(*cps[0])
        e = idx.point_from_cp(*cps[1])
        best: Definition | None = None
        for d in idx.definitions:
            if d.def_span[0] <= s < d.name_span[0] and d.name_span[1] <= e and \
                    (best is None or d.def_span[0] > best.def_span[0]):
                best = d
        if best is None:
            return None, None
        return (idx.range_in(best.name_span, self.encoding),
                symbol_id(module_name_for(self.ws, src.rel), best.qualname, best.kind, best.overload))

    def _symbol_at(self, src: SourceFile, line: int, cp: int) -> str | None:
        """symbolId of the definition whose name the cursor is on; the file is parsed
        only when the line can name one (a def/class header, or a word followed by
        ``=``, ``:`` or ``,`` as an assignment target is)."""
        text = self.lines(src)[line]
        at = cp if _word_at(text, cp) else cp - 1
        if at < 0 or not _word_at(text, at):
            return None
        if not text.lstrip().startswith(("def ", "async ", "class ")):
            end = at
            while end < len(text) and (text[end].isalnum() or text[end] == "_"):
                end += 1
            rest = text[end:].lstrip()
            if not rest.startswith(("=", ":", ",")) or rest.startswith("=="):
                return None
        idx = self.index(src.rel)
        row, bcol = idx.point_from_cp(line, cp)
        d = idx.innermost(row, bcol, "name_span")
        if d is None:
            return None
        return symbol_id(module_name_for(self.ws, src.rel), d.qualname, d.kind, d.overload)

    # -- symbol and ast ----------------------------------------------------
    def symbol(self, spec: SelectorSpec) -> Resolution:
        assert spec.module is not None
        qual = normalize_qualname(spec.qualname or "")
        chain: tuple[tuple[str | None, str], ...] = tuple((None, p) for p in qual.split(".") if p)
        what = f"py://{spec.module}#{qual}"
        return self._structural(spec.module, chain, [], spec.role, spec.overload,
                                spec.doc_version, what)

    def ast(self, spec: SelectorSpec) -> Resolution:
        module, chain, nodes = split_steps(spec.ast_path)
        what = self.canonical.split("?", 1)[0]
        return self._structural(module, chain, nodes, "def", None, spec.doc_version, what)

    def _files(self, module: str | None) -> list[str]:
        if module is None:
            return self.mmap.all_files()
        return self.mmap.files_for(module)

    def _structural(self, module: str | None, chain: tuple[tuple[str | None, str], ...],
                    nodes: list[tuple[str, int]], role: str, overload: int | None,
                    doc_version: str | None, what: str) -> Resolution:
        rels = self._files(module)
        if module is not None and not rels:
            self._fuzzy(module, chain, [], what, None, reason=f"no module {module!r} in the workspace")
        qual = ".".join(n for _, n in chain)
        exact: list[tuple[FileIndex, Definition, str]] = []
        relocated: dict[str, Any] | None = None
        stale: list[tuple[FileIndex, str]] = []
        for rel in rels:
            idx = self.index(rel)
            mod = module if module is not None else self.mmap.by_path.get(rel, "")
            v = _version(doc_version)
            if v is not None and module is not None:
                current = blob_id(idx.source.raw)
                if current != v:
                    relocated = {"path": rel, "docVersion": v, "current": current, "method": "structural"}
                    stale.append((idx, v))
            if not chain:
                continue
            for d in idx.by_qualname(qual):
                if all(rk is None or rk == ck for (rk, _), (ck, _) in zip(chain, d.chain)):
                    exact.append((idx, d, mod))
        if doc_version is not None and module is None:
            relocated = {"docVersion": _version(doc_version), "method": "structural"}
        if not chain:
            return self._module_resolution(rels, role, nodes, relocated, what)
        if not exact:
            # Only now is the old text worth reading: it tells where the target was
            # (s_prox) and what kinds its steps had (s_ast) for ranking look-alikes.
            old_line: int | None = None
            request_chain = chain
            for idx, v in stale:
                old = versions.old_text_for(self.ws, idx.source.rel, v)
                if old is not None:
                    old_line, old_kinds = _old_position(idx, old, qual)
                    if old_kinds is not None and len(old_kinds) == len(chain):
                        request_chain = tuple((k, n) for k, (_, n) in zip(old_kinds, chain))
            self._fuzzy(module, request_chain, rels, what, old_line,
                        reason=f"no definition {qual!r}" + (f" in {module}" if module else ""))
        request = Request(module, chain)
        exact = _pick_variant(exact, overload, what)
        cands = []
        for idx, d, mod in exact:
            if d.role_span(role) is None:
                raise NotFound(f"{what}: {d.qualname} has no {_ROLE_WORDS[role]}")
            cands.append(self._definition_candidate(idx, d, mod, request, role))
        best, top = decide(cands, self.settings, what=what)
        idx, d, mod = next(e for e, c in zip(exact, cands) if c is best)
        src = idx.source
        rng, sel = best.range, best.selection_range
        if nodes:
            node = select_node(d.node, nodes)
            span: Span = ((node.start_point.row, node.start_point.column),
                          (node.end_point.row, node.end_point.column))
            rng = sel = idx.range_in(span, self.encoding)
            anchor_cp = (idx.offset_cp(span[0]), idx.offset_cp(span[1]))
        else:
            head = d.role_span(role)
            if role == "def":      # the header line: 'def name(...):' or the assignment statement
                head = (d.def_span[0] if d.kind == "variable" else d.sig_span[0], d.def_span[1])
            assert head is not None
            anchor_cp = (idx.offset_cp(head[0]), idx.offset_cp(head[1]))
        return self._resolution(src, rng, sel, confidence=best.score, symbol=best.symbol_id,
                                disambiguation=top, anchor_cp=anchor_cp, relocated=relocated)

    def _module_resolution(self, rels: list[str], role: str, nodes: list[tuple[str, int]],
                           relocated: dict[str, Any] | None, what: str) -> Resolution:
        if len(rels) != 1:
            raise Ambiguous(f"{what}: {len(rels)} files", candidates=[
                {"path": r, "score": 1.0} for r in rels[: self.settings.top_k]])
        idx = self.index(rels[0])
        span: Span | None = idx.module_span()
        if role == "doc":
            span = idx.module_doc_span()
        elif role == "sig":
            span = None
        if span is None:
            raise NotFound(f"{what}: the module has no {_ROLE_WORDS[role]}")
        if nodes:
            node = select_node(idx.tree.root_node, nodes)
            span = ((node.start_point.row, node.start_point.column),
                    (node.end_point.row, node.end_point.column))
        rng = idx.range_in(span, self.encoding)
        sel = rng if nodes else [0, 0, 0, 0]
        return self._resolution(idx.source, rng, sel, confidence=1.0,
                                anchor_cp=(idx.offset_cp(span[0]), idx.offset_cp(span[1])),
                                relocated=relocated)

    def _fuzzy(self, module: str | None, chain: tuple[tuple[str | None, str], ...], rels: list[str],
               what: str, old_line: int | None, *, reason: str) -> None:
        """Rank look-alikes of a target with no exact match and raise Ambiguous or NotFound."""
        request = Request(module, chain, old_line)
        name = chain[-1][1] if chain else ""
        pool: list[Candidate] = []
        seen: set[str] = set()
        for rel in rels:
            seen.add(rel)
            idx = self.index(rel)
            mod = module if module is not None else self.mmap.by_path.get(rel, "")
            pool.extend(self._definition_candidate(idx, d, mod, request, "def") for d in idx.definitions)
        others = self.mmap.similar(module) if module is not None else []
        if module is not None and name:
            others += [r for r in self.mmap.all_files() if r not in others]
        for rel in others:
            if rel in seen:
                continue
            try:
                idx = self.index(rel)
            except (NotFound, IndexingUnsupported):
                continue
            mod = self.mmap.by_path.get(rel, "")
            pool.extend(self._definition_candidate(idx, d, mod, request, "def")
                        for d in idx.definitions if d.name == name)
        offered = [c for c in ranked(pool)
                   if c.features["J_token"] > 0 or c.features["s_prox"] >= FUZZY_OFFER]
        same_name = [c for c in offered if c.label is not None and _label_name(c.label) == name]
        if same_name:
            raise Ambiguous(f"{what}: {reason}; {len(same_name)} definition(s) named {name!r} elsewhere",
                            candidates=[c.to_json() for c in same_name[: self.settings.top_k]])
        shown = offered[: self.settings.top_k]
        mean = (f"; did you mean: {', '.join('py://' + str(c.label) for c in shown)}" if shown else "")
        listed = shown or ranked(pool)[: self.settings.top_k]
        raise NotFound(f"{what}: {reason}; {name!r} exists nowhere in the workspace{mean}",
                       details={"candidates": [c.to_json() for c in listed]} if listed else None)

    # -- anchors -----------------------------------------------------------
    def anchor(self, spec: SelectorSpec) -> Resolution:
        assert spec.path is not None
        src = self.source(spec.path)
        old, relocated = self.old_text(src, spec.doc_version, required=True)
        cands = find_anchor_candidates(spec, src, self.encoding)
        what = f"anchor {spec.snippet!r} in {src.rel}"
        if old is None:
            best, top = decide(cands, self.settings, what=what)
            if relocated is not None:
                relocated["method"] = "anchor"
        else:
            # The file changed: the old text decides, so a deleted target is not
            # replaced by a look-alike (or by a reference to its name).
            best, top = self._anchor_by_diff(spec, src, old, cands, what)
            assert relocated is not None
            relocated["method"] = "diff"
        lines = self.lines(src)
        s_cp = to_codepoints(lines[best.range[0]], best.range[1], self.encoding)
        e_cp = to_codepoints(lines[best.range[2]], best.range[3], self.encoding)
        idx = self.index(src.rel)
        d = idx.innermost(*idx.point_from_cp(best.range[0], s_cp), "sig_span")
        sym = (symbol_id(module_name_for(self.ws, src.rel), d.qualname, d.kind, d.overload)
               if d is not None else None)
        anchor_cp = (self._offset(src, best.range[0], s_cp), self._offset(src, best.range[2], e_cp))
        name, name_sym = self._definition_name(src, best.range, ((best.range[0], s_cp), (best.range[2], e_cp)))
        return self._resolution(src, best.range, name or best.selection_range, confidence=best.score,
                                symbol=name_sym or sym, disambiguation=top, anchor_cp=anchor_cp,
                                relocated=relocated)

    def _anchor_by_diff(self, spec: SelectorSpec, src: SourceFile, old: str, cands: list[Candidate],
                        what: str) -> tuple[Candidate, list[Candidate]]:
        """Decide a stale anchor with the old text: find the anchor there (it must be
        clear), carry its start through the change, and take the current candidate
        that starts at that line (and column, for exact duplicates).  A start whose
        line was deleted is E/NOT_FOUND, so a deleted target never falls back to a
        look-alike."""
        old_src = SourceFile(rel=src.rel, raw=old.encode("utf-8"), text=old, encoding="utf-8", bom=False)
        old_best, _ = decide(find_anchor_candidates(spec, old_src, "codepoint"), self.settings,
                             what=what + " (in the selector's version)")
        top = ranked(cands)[: self.settings.top_k]
        mapped = map_old_position(old, src.text, old_best.range[0], old_best.range[1])
        if mapped is None:
            raise NotFound(f"{what}: the anchored text was deleted since the selector's version",
                           details={"candidates": [c.to_json() for c in top]} if top else None)
        col = from_codepoints(self.lines(src)[mapped[0]], mapped[1], self.encoding)
        exact = [c for c in cands if c.features.get("exact") == 1.0]
        hits = ([c for c in exact if c.range[:2] == [mapped[0], col]] if exact
                else [c for c in cands if c.range[0] == mapped[0] and c.score >= self.settings.tau])
        if len(hits) == 1:
            return hits[0], top
        raise Ambiguous(f"{what}: no candidate sits where the anchored text moved to "
                        f"(line {mapped[0] + 1})", candidates=[c.to_json() for c in top])


_ROLE_WORDS = {"def": "definition", "sig": "signature", "body": "body", "doc": "docstring"}


def map_old_position(old: str, new: str, line: int, cp: int) -> tuple[int, int] | None:
    """Carry a code-point position (0-based) of ``old`` into ``new``.

    versions.map_position follows the line diff.  A diff cannot follow a block
    that moved (reordered methods), so when the diff puts the position nowhere
    or on a line with other text, the old line is looked up by content: its
    stripped text (at least 8 characters) together with 0..3 stripped lines of
    context on each side must occur exactly once in the old and exactly once
    in the new text (the smallest such context wins); the position then
    follows that line, its column shifted by the change of indentation.
    """
    mapped = versions.map_position(old, new, line, cp)
    old_lines, new_lines = old.split("\n"), new.split("\n")
    key = old_lines[line].strip() if 0 <= line < len(old_lines) else ""
    if mapped is not None and new_lines[mapped[0]].strip() == key:
        return mapped
    if len(key) < 8:
        return mapped
    old_s = [x.strip() for x in old_lines]
    new_s = [x.strip() for x in new_lines]
    old_hits = [i for i, x in enumerate(old_s) if x == key]
    new_hits = [i for i, x in enumerate(new_s) if x == key]
    for c in range(4):
        def window(lines: list[str], i: int, c: int = c) -> tuple[str, ...]:
            return tuple(lines[j] if 0 <= j < len(lines) else "\0" for j in range(i - c, i + c + 1))
        want = window(old_s, line)
        if sum(1 for i in old_hits if window(old_s, i) == want) != 1:
            continue
        found = [i for i in new_hits if window(new_s, i) == want]
        if len(found) != 1:
            continue
        old_line, new_line = old_lines[line], new_lines[found[0]]
        shift = (len(new_line) - len(new_line.lstrip())) - (len(old_line) - len(old_line.lstrip()))
        return found[0], max(0, min(len(new_line.rstrip("\r")), cp + shift))
    return mapped


def _label_name(label: str) -> str:
    """The last name of a definition candidate's label ``module#Qual.name[?overload=N]``."""
    return label.split("#", 1)[-1].split("?", 1)[0].rsplit(".", 1)[-1]


def _word_at(line: str, cp: int) -> str:
    """The identifier run a code-point column is on (or starts), '' when none.

    ``\\w`` is exactly ``str.isalnum()`` or ``_`` for str patterns."""
    if not (0 <= cp < len(line)):
        return ""
    m = _WORD_RE.match(line, cp)
    if m is None:
        return ""
    start = cp
    while start > 0 and (line[start - 1].isalnum() or line[start - 1] == "_"):
        start -= 1
    return line[start:m.end()]


def _pick_variant(exact: list[tuple[FileIndex, Definition, str]], overload: int | None,
                  what: str) -> list[tuple[FileIndex, Definition, str]]:
    """``?overload=N`` picks the N-th @overload variant; without it the implementation."""
    if overload is not None:
        picked = [e for e in exact if e[1].overload == overload]
        if not picked:
            n = max((e[1].overload or 0 for e in exact), default=0)
            raise NotFound(f"{what}: no @overload variant {overload} ({n} variant(s))")
        return picked
    plain = [e for e in exact if e[1].overload is None]
    return plain or exact


def _old_position(idx: FileIndex, old: str, qual: str) -> tuple[int | None, tuple[str, ...] | None]:
    """The target's old name line mapped into the current text, and its old chain kinds."""
    old_src = SourceFile(rel=idx.source.rel, raw=old.encode("utf-8"), text=old, encoding="utf-8", bom=False)
    old_idx = index_source(old_src)
    defs = [d for d in old_idx.by_qualname(qual) if d.overload is None] or old_idx.by_qualname(qual)
    if len(defs) != 1:
        return None, None
    d = defs[0]
    row = d.name_span[0][0]
    cp = len(old_idx.line_bytes(row)[: d.name_span[0][1]].decode("utf-8"))
    mapped = map_old_position(old, idx.source.text, row, cp)
    return (mapped[0] if mapped else None), tuple(k for k, _ in d.chain)

