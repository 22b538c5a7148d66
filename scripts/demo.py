"""A short tour of Lanser on the bundled fixtures: what `make demo` runs.

Every step is a real `lanser` process against the real pinned server; the
tour prints each command, its exit code and the bundle's id, then shows that a
second run gives the same id.  Nothing under fixtures/ is modified: mutating
steps run in a temporary copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LANSER = [sys.executable, "-m", "lanser"]

TOUR = [
    ("srcpkg", ["locate", "py://shop.pricing#apply_discount:body"]),
    ("srcpkg", ["def", "src/shop/service.py@L7:C18"]),
    ("srcpkg", ["refs", "py://shop.pricing#apply_discount"]),
    ("srcpkg", ["hover", "py://shop.models#Cart.total"]),
    ("srcpkg", ["symbols", "src/shop/models.py"]),
    ("srcpkg", ["diag"]),
    ("encodings", ["def", "unicode_names.py@L11:C24"]),
    ("encodings", ["--index-io", "utf-16", "def", "unicode_names.py@L11:C26"]),
    ("encodings", ["--index-io", "utf-8", "def", "unicode_names.py@L11:C30"]),
]


def run(workspace: Path, args: list[str]) -> dict:
    proc = subprocess.run([*LANSER, "-w", str(workspace), "--json", *args], capture_output=True, text=True)
    if proc.stderr.strip():
        print("   stderr:", proc.stderr.strip().splitlines()[-1])
    if not proc.stdout.strip():
        return {"bundleId": None, "meta": {"exit_code": proc.returncode}}
    return json.loads(proc.stdout)


def summarize(bundle: dict) -> str:
    facts = bundle.get("facts") or {}
    for key in ("definitions", "references", "symbols", "diagnostics"):
        if key in facts:
            first = facts[key][0] if facts[key] else None
            where = f" first={first['path']}:{first['range'][0] + 1}:{first['range'][1] + 1}" if first else ""
            return f"{len(facts[key])} {key}{where}"
    if facts.get("hover"):
        contents = facts["hover"]["contents"]
        return "hover: " + contents.strip().splitlines()[1 if contents.startswith("```") else 0]
    res = (bundle.get("resolution") or {}).get("resolved")
    if res:
        return f"resolved {res['path']} {res['range']} confidence={res['confidence']}"
    return (bundle.get("error") or {}).get("message", "")


def main() -> int:
    failures = 0
    with tempfile.TemporaryDirectory(prefix="lanser-demo-") as tmp:
        for name, args in TOUR:
            ws = ROOT / "fixtures" / name
            bundle = run(ws, args)
            code = bundle["meta"]["exit_code"]
            failures += code != 0
            print(f"$ lanser -w fixtures/{name} {' '.join(args)}")
            print(f"   exit={code} bundleId={bundle.get('bundleId')}  {summarize(bundle)}")
        # Determinism: the same query from a copy in another directory gives the same id.
        copy = Path(tmp) / "elsewhere" / "srcpkg"
        shutil.copytree(ROOT / "fixtures" / "srcpkg", copy, symlinks=True)
        a = run(ROOT / "fixtures" / "srcpkg", ["refs", "py://shop.pricing#apply_discount"])["bundleId"]
        b = run(copy, ["refs", "py://shop.pricing#apply_discount"])["bundleId"]
        print(f"same query from another directory: {'identical' if a == b else 'DIFFERENT'} bundleId ({b})")
        failures += a != b
    print("demo ok" if not failures else f"demo: {failures} step(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
