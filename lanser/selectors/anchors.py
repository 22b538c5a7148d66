"""Content anchors: find a snippet of text again after the file has moved on.

Resolution order (CONTRACT.md section 2): an exact unique occurrence wins with
score 1.0; several exact occurrences are told apart by the context hash; with
no exact occurrence, windows of the file are scored by the overlap of their
winnowed k-gram fingerprints with the snippet's (Schleimer, Wilkerson and
Aiken 2003, k=7, w=4).  This module only scores; the caller applies tau and
the margin and reports E/AMBIGUOUS.

Fuzzy matching ignores whitespace (k-grams are taken over the text with all
whitespace removed, as MOSS does), so re-indentation and CRLF/LF changes do
not lower a score; case and punctuation count.  Hashes are BLAKE2b of the
UTF-8 k-gram, never Python's salted ``hash``, so results are the same in
every process.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections import Counter
from typing import Sequence

from ..codec import from_codepoints
from ..errors import NotFound
from ..workspace import SourceFile
from .grammar import format_selector
from .resolution import Candidate
from .spec import SelectorSpec

K = 7                    # k-gram length (code points, whitespace removed)
W = 4                    # winnowing window, in k-grams
DEFAULT_CTX = 24         # context characters each side when a hash comes without ctx
MAX_EXACT = 1000         # exact occurrences reported at most
MAX_WINDOWS = 64         # fuzzy windows scored at most
MAX_SNIPPET = 80         # code points in a minted snippet
DUPLICATE_MISS = 0.5     # an exact duplicate whose context hash does not match
_TOKEN = re.compile(r"\w+|[^\w\s]")
_NON_BLANK = re.compile(r"\S")


# -- hashing ---------------------------------------------------------------

def context_hash(text: str, start: int, end: int, ctx: int) -> str:
    """SHA-256 (hex, first 16 digits) of ``ctx`` code points before ``text[start:end]``,
    the snippet itself and ``ctx`` after (fewer at the file's edges).

    Offsets are 0-based code points.
    """
    window = text[max(0, start - ctx):end + ctx]
    return hashlib.sha256(window.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _gram_hash(gram: str) -> int:
    digest = hashlib.blake2b(gram.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _strip_ws(text: str) -> tuple[str, list[int]]:
    """``text`` without whitespace, and the code-point offset in ``text`` of each kept char."""
    index = [i for i, ch in enumerate(text) if not ch.isspace()]
    return "".join(text[i] for i in index), index


def winnow(seq: str, k: int = K, w: int = W) -> dict[int, int]:
    """Winnowed fingerprints of ``seq``: {k-gram hash: first position}.

    In every window of ``w`` consecutive k-grams the minimal hash is kept (the
    rightmost on ties).  A sequence shorter than ``k`` is one gram; one with
    fewer than ``w`` grams keeps its minimum.
    """
    if not seq:
        return {}
    k = min(k, len(seq))
    hashes = [_gram_hash(seq[i:i + k]) for i in range(len(seq) - k + 1)]
    w = min(w, len(hashes))
    out: dict[int, int] = {}
    for start in range(len(hashes) - w + 1):
        best = start
        for i in range(start + 1, start + w):
            if hashes[i] <= hashes[best]:
                best = i
        out.setdefault(hashes[best], best)
    return out


def _jaccard(a: Sequence[object] | set[object], b: Sequence[object] | set[object]) -> float:
    sa, sb = set(a), set(b)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


# -- finding ---------------------------------------------------------------

class _Positions:
    """Code-point offsets to flat 0-based ranges in one encoding."""

    def __init__(self, text: str, encoding: str) -> None:
        self.lines = text.split("\n")
        self.starts = [0]
        for line in self.lines[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)
        self.encoding = encoding

    def point(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, offset) - 1
        return line, from_codepoints(self.lines[line], offset - self.starts[line], self.encoding)

    def range(self, start: int, end: int) -> list[int]:
        return [*self.point(start), *self.point(end)]


def exact_occurrences(text: str, snippet: str, limit: int = MAX_EXACT) -> list[int]:
    """Code-point offsets of every occurrence of ``snippet`` (overlapping ones too)."""
    out: list[int] = []
    i = text.find(snippet)
    while i >= 0 and len(out) < limit:
        out.append(i)
        i = text.find(snippet, i + 1)
    return out


def find_anchor_candidates(spec: SelectorSpec, source: SourceFile, encoding: str) -> list[Candidate]:
    """Candidates for an anchor spec in ``source``, best first.

    Ranges are flat ``[sL, sC, eL, eC]``, 0-based, columns in ``encoding``
    units.  Features: ``exact`` (1/0), ``hash_match`` (1/0, only when the spec
    carries a hash), ``J_kgram`` (winnowed fingerprint Jaccard), ``J_token``
    (Jaccard of word/punctuation token sets) and ``occurrences`` (exact ones).
    """
    assert spec.kind == "anchor" and spec.snippet
    text, snippet = source.text, spec.snippet
    pos = _Positions(text, encoding)
    path = source.rel or (spec.path or "")
    hits = exact_occurrences(text, snippet)
    if hits:
        ctx = DEFAULT_CTX if spec.ctx is None else spec.ctx
        out = []
        for start in hits:
            end = start + len(snippet)
            feats = {"exact": 1.0, "J_kgram": 1.0, "J_token": 1.0, "occurrences": float(len(hits))}
            score = 1.0
            if spec.hash is not None:
                match = context_hash(text, start, end, ctx) == spec.hash
                feats["hash_match"] = 1.0 if match else 0.0
                if not match and len(hits) > 1:
                    score = DUPLICATE_MISS
            rng = pos.range(start, end)
            out.append(Candidate(path=path, range=rng, selection_range=list(rng), score=score,
                                 features=feats, label=_label(snippet)))
        return sorted(out, key=Candidate.sort_key)
    return _fuzzy(spec, text, pos, path)


def _fuzzy(spec: SelectorSpec, text: str, pos: _Positions, path: str) -> list[Candidate]:
    snippet = spec.snippet or ""
    ns, _ = _strip_ws(snippet)
    nf, index = _strip_ws(text)
    if not ns or not nf:
        return []
    k = min(K, len(ns))
    fp_snippet = winnow(ns, k)
    gram_at = {}  # the snippet's fingerprint grams (as text) -> position in ns
    for i in range(len(ns) - k + 1):
        gram = ns[i:i + k]
        if _gram_hash(gram) in fp_snippet:
            gram_at.setdefault(gram, i)
    votes: Counter[int] = Counter()
    for p in range(len(nf) - k + 1):
        q = gram_at.get(nf[p:p + k])
        if q is not None:
            votes[max(0, p - q)] += 1
    length = len(ns)
    chosen: list[int] = []
    for start, _n in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0])):
        if all(abs(start - c) > length // 2 for c in chosen):
            chosen.append(start)
            if len(chosen) >= MAX_WINDOWS:
                break
    tokens = _TOKEN.findall(snippet)
    out = []
    for start in chosen:
        stop = min(start + length, len(nf))
        j_kgram = _jaccard(set(fp_snippet), set(winnow(nf[start:stop], k)))
        if j_kgram <= 0.0:
            continue
        cp_start, cp_end = index[start], index[stop - 1] + 1
        j_token = _jaccard(tokens, _TOKEN.findall(text[cp_start:cp_end]))
        feats = {"exact": 0.0, "J_kgram": j_kgram, "J_token": j_token, "occurrences": 0.0}
        if spec.hash is not None:
            feats["hash_match"] = 0.0
        rng = pos.range(cp_start, cp_end)
        out.append(Candidate(path=path, range=rng, selection_range=list(rng), score=j_kgram,
                             features=feats, label=_label(text[cp_start:cp_end])))
    return sorted(out, key=Candidate.sort_key)


def _label(text: str) -> str:
    first = text.split("\n", 1)[0]
    return first if len(first) <= MAX_SNIPPET else first[:MAX_SNIPPET] + "..."


# -- minting ---------------------------------------------------------------

def mint_anchor(source: SourceFile, rel: str, start_cp: int, end_cp: int, ctx: int = DEFAULT_CTX,
                doc_version: str | None = None) -> str:
    """A canonical anchor selector (``anchor://rel#"..."?ctx=N&h=H``) for ``text[start_cp:end_cp]``.

    Recipe: the snippet is the first line of the target with surrounding
    whitespace trimmed, cut to at most 80 code points (then right-trimmed
    again).  When that is empty (a zero-width or blank target) it is the next
    non-blank text at or after ``start_cp``, up to the end of its line.  The
    anchor then points at the snippet's first character.  ``ctx`` starts at
    the given value and doubles while another exact occurrence of the snippet
    has the same context hash, so duplicates stay apart; ``h`` is always
    written.  Raises NotFound when only whitespace follows ``start_cp``.
    """
    text = source.text
    start_cp = max(0, min(start_cp, len(text)))
    end_cp = max(start_cp, min(end_cp, len(text)))
    start, snippet = _snippet_at(text, start_cp, end_cp)
    if not snippet:
        start, snippet = _snippet_at(text, start_cp, len(text), skip_lines=True)
    if not snippet:
        raise NotFound("nothing but whitespace to anchor at this position")
    end = start + len(snippet)
    own = context_hash(text, start, end, ctx)
    others = [o for o in exact_occurrences(text, snippet, limit=MAX_EXACT) if o != start]
    while ctx < len(text) and any(context_hash(text, o, o + len(snippet), ctx) == own for o in others):
        ctx = min(max(1, ctx * 2), len(text))
        own = context_hash(text, start, end, ctx)
    spec = SelectorSpec(kind="anchor", path=rel, snippet=snippet, ctx=ctx, hash=own,
                        doc_version=doc_version)
    return format_selector(spec)


def _snippet_at(text: str, start: int, end: int, *, skip_lines: bool = False) -> tuple[int, str]:
    """(offset, snippet): the first non-blank line part of ``text[start:end]``, trimmed.

    Works by offsets: a cursor's region runs to the end of the file, and
    copying that per call cost more than the rest of a warm request."""
    if skip_lines:
        m = _NON_BLANK.search(text, start, end)
        if m is None:
            return end, ""
        start = m.start()
    nl = text.find("\n", start, end)
    first = text[start: nl if nl >= 0 else end]
    lead = len(first) - len(first.lstrip())
    snippet = first.strip()[:MAX_SNIPPET].rstrip()
    return start + lead, snippet
