"""Shared episode data for the RL-framework adapter tests (tests/test_integrations_*.py).

A copy of ``fixtures/srcpkg`` (3 Pyright errors in ``src/shop/broken.py``):

- GOOD fixes one of them (``cart.size`` -> ``cart.count``): D 3 -> 2, r = +0.9;
- BAD gives ``apply_discount`` a required parameter that its three callers do not pass:
  D 2 -> 4 (one error of broken.py's call changes kind), r = -0.6;
- ESCAPE writes ``../outside.py``: refused by the jail (E/FS_PERMISSIONS, S = 0), r = -0.4,
  and nothing is written anywhere.
"""

from __future__ import annotations

import shutil
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "srcpkg"

GOOD_DIFF = ("--- a/src/shop/broken.py\n+++ b/src/shop/broken.py\n@@ -10 +10 @@\n"
             "-    return cart.size\n+    return cart.count\n")
BAD_DIFF = ("--- a/src/shop/pricing.py\n+++ b/src/shop/pricing.py\n@@ -1 +1 @@\n"
            "-def apply_discount(price: float, pct: float) -> float:\n"
            "+def apply_discount(price: float, pct: float, currency: str) -> float:\n")
ESCAPE_STEP = {"op": "write", "path": "../outside.py", "content": "print('escaped')\n"}
GOOD_R, BAD_R, ESCAPE_R = 0.9, -0.6, -0.4


def workspace(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "ws"))


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def fenced(diff: str, tag: str = "diff") -> str:
    return f"I will change this.\n```{tag}\n{diff}```\n"


def assert_untouched(tmp_path: Path, ws: Path, before: dict[str, bytes]) -> None:
    assert snapshot(ws) == before
    assert not (tmp_path / "outside.py").exists()
