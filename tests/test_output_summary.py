"""Human summaries say what the bundle says (issue 12, item 9)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import run_cli

from lanser.output import summary


def test_listed_diagnostics_are_counted_when_the_bundle_has_no_counts() -> None:
    bundle = {"request": {"cmd": "actions"}, "bundleId": "sha256:x",
              "facts": {"actions": [], "diagnostics": [
                  {"path": "m.py", "range": [5, 26, 5, 31], "severity": "error", "message": "bad", "code": "x"},
                  {"path": "m.py", "range": [6, 1, 6, 2], "severity": "warning", "message": "meh"}]}}
    lines = summary(bundle)
    assert "1 errors, 1 warnings, 0 informations" in lines
    assert "0 errors, 0 warnings, 0 informations" not in lines


def test_locate_without_a_symbol_prints_no_symbol_id(fixture_copy: Any) -> None:
    ws = str(fixture_copy("srcpkg"))
    spec = '{"kind":"cursor","path":"src/shop/service.py","line":2,"col":0}'
    result = run_cli("-w", ws, "locate", spec)
    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == "src/shop/service.py:3:1  confidence=1"
    assert "None" not in result.out
    named = run_cli("-w", ws, "locate", "py://shop.service#demo")
    assert "  symbolId=sym:" in named.out.splitlines()[0]


@pytest.mark.server
def test_actions_summary_counts_the_diagnostic_it_lists(fixture_copy: Any) -> None:
    result = run_cli("-w", str(fixture_copy("srcpkg")), "actions", "src/shop/broken.py:6:27")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert any(": error: " in line for line in lines)
    assert "1 errors, 0 warnings, 0 informations" in lines
