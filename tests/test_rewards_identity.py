"""Diagnostic identities: survive line shifts, keep duplicates apart, stay ordered."""

from __future__ import annotations

from lanser.rewards.identity import (
    anchor_text,
    annotate,
    diff_diagnostics,
    enclosing_symbol,
    normalize_message,
)

SRC = '''import os


class Box:
    def get(self) -> int:
        return "x"

    class Inner:
        def deep(self):
            return nope


def free():
    y = undefined_a + undefined_a
'''


def diag(path, rng, message, code="reportGeneralTypeIssues", severity="error"):
    return {"path": path, "range": list(rng), "severity": severity, "code": code,
            "message": message, "source": "Pyright"}


def test_enclosing_symbol():
    assert enclosing_symbol(SRC, 5, 15) == "Box.get"
    assert enclosing_symbol(SRC, 9, 19) == "Box.Inner.deep"
    assert enclosing_symbol(SRC, 13, 8) == "free"
    assert enclosing_symbol(SRC, 0, 7) == ""
    assert enclosing_symbol(SRC, 99, 0) == ""


def test_anchor_text():
    assert anchor_text(SRC, [5, 15, 5, 18]) == '"x"'
    assert anchor_text(SRC, [4, 4, 5, 14]) == "def get(self) -> int: return"
    assert anchor_text(SRC, [5, 15, 5, 15]) == 'return "x"'  # empty range: the line
    # UTF-16 columns: the emoji counts 2 units
    text = 'x = "\U0001F600" + bad\n'
    assert anchor_text(text, [0, 11, 0, 14]) == "bad"
    assert anchor_text(text, [0, 10, 0, 13], encoding="codepoint") == "bad"
    assert anchor_text(text, [0, 11, 0, 14], encoding="codepoint") == "ad"  # clamped at the end


def test_normalize_message():
    assert normalize_message('Type "A"\n\xa0\xa0"A" is  not "B"') == 'Type "A" "A" is not "B"'
    assert normalize_message("obscured by declaration on line 12") == \
        "obscured by declaration on line #"
    assert normalize_message("Expected 2 positional arguments") == "Expected 2 positional arguments"


def test_identity_survives_line_shifts():
    shifted = "# a comment\n\n\n" + SRC
    before = [diag("m.py", [5, 15, 5, 18], "bad return", "reportReturnType"),
              diag("m.py", [9, 19, 9, 23], '"nope" is not defined', "reportUndefinedVariable")]
    after = [diag("m.py", [8, 15, 8, 18], "bad return", "reportReturnType"),
             diag("m.py", [12, 19, 12, 23], '"nope" is not defined', "reportUndefinedVariable")]
    introduced, resolved, persisting = diff_diagnostics(
        before, after, texts_before={"m.py": SRC}, texts_after={"m.py": shifted})
    assert introduced == [] and resolved == []
    assert [p["range"] for p in persisting] == [[8, 15, 8, 18], [12, 19, 12, 23]]
    assert persisting[1]["symbol"] == "Box.Inner.deep"


def test_same_message_elsewhere_is_a_different_diagnostic():
    """A problem moving to another function is a fix plus a new problem."""
    other = SRC.replace("return nope", "return 1").replace("undefined_a + undefined_a",
                                                            "nope + undefined_a + undefined_a")
    before = [diag("m.py", [9, 19, 9, 23], '"nope" is not defined', "reportUndefinedVariable")]
    after = [diag("m.py", [13, 8, 13, 12], '"nope" is not defined', "reportUndefinedVariable")]
    introduced, resolved, persisting = diff_diagnostics(
        before, after, texts_before={"m.py": SRC}, texts_after={"m.py": other})
    assert [d["symbol"] for d in introduced] == ["free"]
    assert [d["symbol"] for d in resolved] == ["Box.Inner.deep"]
    assert persisting == []


def test_duplicates_stay_distinct():
    msg = '"undefined_a" is not defined'
    two = [diag("m.py", [13, 8, 13, 19], msg, "reportUndefinedVariable"),
           diag("m.py", [13, 22, 13, 33], msg, "reportUndefinedVariable")]
    ids = [i for i, _ in annotate(two, {"m.py": SRC})]
    assert [i.occurrence for i in ids] == [0, 1]
    one_left = SRC.replace("undefined_a + undefined_a", "undefined_a + 1")
    introduced, resolved, persisting = diff_diagnostics(
        two, two[:1], texts_before={"m.py": SRC}, texts_after={"m.py": one_left})
    assert introduced == [] and len(resolved) == 1 and len(persisting) == 1


def test_without_texts_identity_is_path_code_message():
    before = [diag("a.py", [1, 0, 1, 3], "m1"), diag("b.py", [0, 0, 0, 1], "m2")]
    after = [diag("b.py", [7, 0, 7, 1], "m2"), diag("a.py", [3, 0, 3, 3], "m3")]
    introduced, resolved, persisting = diff_diagnostics(before, after)
    assert [d["message"] for d in introduced] == ["m3"]
    assert [d["message"] for d in resolved] == ["m1"]
    assert [d["message"] for d in persisting] == ["m2"]


def test_ordering_is_deterministic():
    ds = [diag("b.py", [0, 0, 0, 1], "x"), diag("a.py", [2, 0, 2, 1], "y"),
          diag("a.py", [1, 5, 1, 6], "z")]
    intro1, _, _ = diff_diagnostics([], ds)
    intro2, _, _ = diff_diagnostics([], list(reversed(ds)))
    assert intro1 == intro2
    assert [(d["path"], d["range"][0]) for d in intro1] == [("a.py", 1), ("a.py", 2), ("b.py", 0)]


def test_changed_message_on_the_same_text_persists():
    """Same code, symbol and flagged text, new message (a type changed elsewhere)."""
    before = [diag("m.py", [5, 15, 5, 18], 'Type "str" is not assignable to "int"', "reportReturnType")]
    after = [diag("m.py", [5, 15, 5, 18], 'Type "bytes" is not assignable to "int"', "reportReturnType")]
    introduced, resolved, persisting = diff_diagnostics(
        before, after, texts_before={"m.py": SRC}, texts_after={"m.py": SRC})
    assert introduced == [] and resolved == [] and persisting[0]["message"].startswith('Type "bytes"')
    # another code on the same text is a different problem
    other = [{**after[0], "code": "reportAssignmentType"}]
    introduced, resolved, _ = diff_diagnostics(
        before, other, texts_before={"m.py": SRC}, texts_after={"m.py": SRC})
    assert len(introduced) == 1 and len(resolved) == 1
    # without texts (no anchor) only exact identities match
    introduced, resolved, _ = diff_diagnostics(before, after)
    assert len(introduced) == 1 and len(resolved) == 1
