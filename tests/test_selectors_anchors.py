"""Content anchors: exact, duplicate, fuzzy matching; encodings; minting that re-resolves."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lanser.codec import to_codepoints
from lanser.selectors.anchors import K, W, context_hash, exact_occurrences, find_anchor_candidates, mint_anchor, winnow
from lanser.selectors.grammar import parse_selector
from lanser.selectors.spec import SelectorSpec
from lanser.workspace import decode_source

SOURCE = """\
import os


def load_data(path, limit=10):
    rows = read(path)
    return rows[:limit]


def first():
    value = compute()
    return value


def second():
    value = compute()
    return value


class Store:
    def save(self, rows):
        for row in rows:
            self.write(row)
"""


def _src(text: str):
    return decode_source(text.encode("utf-8"), "pkg/app.py")


def _anchor(snippet: str, **kw) -> SelectorSpec:
    return SelectorSpec(kind="anchor", path="pkg/app.py", snippet=snippet, **kw)


def _line_col(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n"), offset - (before.rfind("\n") + 1)


def _start_offset(text: str, rng: list[int]) -> int:
    lines = text.split("\n")
    return sum(len(line) + 1 for line in lines[:rng[0]]) + rng[1]


def test_exact_unique_match_scores_one():
    [cand] = find_anchor_candidates(_anchor("def load_data("), _src(SOURCE), "utf-16")
    line = SOURCE.split("\n").index("def load_data(path, limit=10):")
    assert cand.range == [line, 0, line, len("def load_data(")]
    assert cand.selection_range == cand.range
    assert cand.score == 1.0 and cand.features["exact"] == 1.0
    assert cand.path == "pkg/app.py"


def test_duplicates_without_hash_tie():
    cands = find_anchor_candidates(_anchor("value = compute()"), _src(SOURCE), "utf-16")
    assert len(cands) == 2
    assert cands[0].score == cands[1].score
    assert cands[0].range[0] < cands[1].range[0]   # ties ordered by range


@pytest.mark.parametrize("which", [0, 1])
def test_duplicates_told_apart_by_context_hash(which):
    snippet = "value = compute()"
    start = exact_occurrences(SOURCE, snippet)[which]
    h = context_hash(SOURCE, start, start + len(snippet), 24)
    cands = find_anchor_candidates(_anchor(snippet, ctx=24, hash=h), _src(SOURCE), "codepoint")
    assert [c.features["hash_match"] for c in cands] == [1.0, 0.0]
    assert cands[0].score == 1.0 > cands[1].score
    assert cands[0].range[:2] == list(_line_col(SOURCE, start))


def test_context_hash_is_sha256_of_the_window():
    start = SOURCE.index("rows = read")
    end = start + len("rows = read")
    expected = hashlib.sha256(SOURCE[start - 5:end + 5].encode()).hexdigest()[:16]
    assert context_hash(SOURCE, start, end, 5) == expected
    assert context_hash(SOURCE, 0, 3, 10) == hashlib.sha256(SOURCE[:13].encode()).hexdigest()[:16]


def test_fuzzy_match_after_edits():
    snippet = "def save(self, rows):\n        for row in rows:\n            self.write(row)"
    edited = ("# a header\n# added\n\n" + SOURCE).replace("for row in rows:", "for r in rows:") \
        .replace("self.write(row)", "self.write(r)")
    cands = find_anchor_candidates(_anchor(snippet), _src(edited), "utf-16")
    assert cands, "fuzzy matching found nothing"
    best = cands[0]
    assert best.features["exact"] == 0.0
    assert 0.0 < best.score < 1.0
    assert best.range[0] == edited.split("\n").index("    def save(self, rows):")
    assert best.range[1] == 4
    assert all(best.score > c.score for c in cands[1:])


def test_fuzzy_ignores_whitespace_changes():
    snippet = "rows = read(path)\n    return rows[:limit]"
    edited = SOURCE.replace("    return rows[:limit]", "\treturn rows[ : limit]")
    [best, *_] = find_anchor_candidates(_anchor(snippet), _src(edited), "codepoint")
    assert best.score == 1.0 and best.features["exact"] == 0.0
    assert best.range[0] == SOURCE.split("\n").index("    rows = read(path)")


def test_no_match_at_all_gives_no_candidates():
    assert find_anchor_candidates(_anchor("zzzzzzzzzzzzqqqq"), _src(SOURCE), "utf-16") == []


@pytest.mark.parametrize("encoding,unit", [("codepoint", 1), ("utf-16", 2), ("utf-8", 4)])
def test_astral_characters_before_the_match(encoding, unit):
    prefix = 'x = "\U0001F600\U0001F680"; '  # two astral characters before the target
    text = "import os\n" + prefix + "load_data(1)\n"
    [cand] = find_anchor_candidates(_anchor("load_data(1)"), _src(text), encoding)
    start = len(prefix) + 2 * (unit - 1)
    assert cand.range == [1, start, 1, start + len("load_data(1)")]
    # and the codec agrees it is the right character
    assert to_codepoints(text.split("\n")[1], cand.range[1], encoding) == len(prefix)


@pytest.mark.parametrize("encoding", ["codepoint", "utf-16", "utf-8"])
def test_astral_characters_in_fuzzy_matches(encoding):
    text = 'msg = "\U0001F600"; result = compute_total(items, tax=0.25)\n'
    [best, *_] = find_anchor_candidates(_anchor("compute_total(items, tax=0.20)"), _src(text), encoding)
    line = text.split("\n")[0]
    assert to_codepoints(line, best.range[1], encoding) == line.index("compute_total")


def test_winnow_is_stable_across_processes():
    code = "from lanser.selectors.anchors import winnow; print(sorted(winnow('def load_data(path):')))"
    outs = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                check=True).stdout)
    assert len(outs) == 1
    assert outs == {str(sorted(winnow("def load_data(path):"))) + "\n"}


@settings(max_examples=200)
@given(st.text("abcdefgh", min_size=0, max_size=30), st.text("abcdefgh", min_size=K + W - 1, max_size=40),
       st.text("abcdefgh", min_size=0, max_size=30), st.text("abcdefgh", max_size=30))
def test_winnowing_guarantee(pre, shared, post, other):
    """Any shared substring of length >= w + k - 1 shares a fingerprint (Schleimer et al.)."""
    a, b = pre + shared + post, other + shared
    assert set(winnow(a)) & set(winnow(b))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_minted_anchor_resolves_to_the_same_place(data):
    text = SOURCE + 'label = "\U0001F600 caf\u00e9"\nvalue = compute()\n'
    source = _src(text)
    starts = [i for i, ch in enumerate(text) if not ch.isspace()]
    start = data.draw(st.sampled_from(starts))
    end = data.draw(st.integers(start + 1, min(len(text), start + 200)))
    encoding = data.draw(st.sampled_from(["codepoint", "utf-16", "utf-8"]))
    anchor = mint_anchor(source, "pkg/app.py", start, end)
    spec = parse_selector(anchor)
    assert spec.hash is not None and spec.ctx is not None and spec.path == "pkg/app.py"
    cands = find_anchor_candidates(spec, source, encoding)
    winners = [c for c in cands if c.score == 1.0]
    assert len(winners) == 1, anchor
    rng = winners[0].range
    line = text.split("\n")[rng[0]]
    offset = _start_offset(text, [rng[0], to_codepoints(line, rng[1], encoding)])
    assert offset == start, anchor


def test_minted_anchor_for_blank_target_points_at_next_code():
    source = _src(SOURCE)
    start = SOURCE.index("\n\ndef load_data")
    anchor = mint_anchor(source, "pkg/app.py", start, start)
    [cand] = [c for c in find_anchor_candidates(parse_selector(anchor), source, "codepoint") if c.score == 1.0]
    assert _start_offset(SOURCE, cand.range) == SOURCE.index("def load_data")


def test_minted_anchor_survives_lines_inserted_above():
    start = SOURCE.index("for row in rows")
    anchor = mint_anchor(_src(SOURCE), "pkg/app.py", start, start + 3)
    edited = "import sys\nimport json\n" + SOURCE
    [best, *rest] = find_anchor_candidates(parse_selector(anchor), _src(edited), "utf-16")
    assert best.score == 1.0 and not rest
    assert _start_offset(edited, best.range) == edited.index("for row in rows")
