"""How often does each ``--diag-term`` rank a correct edit strictly above its broken copy?

    .venv/bin/python benchmarks/bench_diag_term.py [--json OUT.json] [--jobs N]

For every case in ``benchmarks/diag_term_corpus/`` the base tree, base +
correct overlay and base + broken overlay are checked with the pinned
``pyright --outputjson`` (``run_pyright_json``; ``pyrightconfig.json``:
``include: ["pkg"]``, Python 3.11).  The diagnostic term of the step
base -> correct and base -> broken is computed on errors with
:func:`lanser.rewards.terms.diag_term` for ``delta`` and ``regression``.  A
term "wins" a case when term(correct) > term(broken), ties and losses are
counted separately.  Only the diagnostic term is compared: the safety and
ambiguity terms are the same for both edits.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lanser.pyright_cli import normalize_diagnostics, run_pyright_json  # noqa: E402
from lanser.rewards.terms import counted, diag_term  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "diag_term_corpus"
CONFIG = {"include": ["pkg"], "pythonVersion": "3.11"}
TERMS = ("delta", "regression")


def files_of(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text("utf-8")
            for p in sorted(root.rglob("*")) if p.is_file()}


def check_tree(files: dict[str, str], where: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Write ``files`` at ``where``, run pyright, return (error diagnostics, python texts)."""
    where.mkdir(parents=True)
    files = {"pyrightconfig.json": json.dumps(CONFIG), **files}
    for rel, text in files.items():
        (where / rel).parent.mkdir(parents=True, exist_ok=True)
        (where / rel).write_text(text, encoding="utf-8")
    diags = counted(normalize_diagnostics(run_pyright_json(where), where))
    return diags, {k: v for k, v in files.items() if k.endswith(".py")}


def run_case(case_dir: Path, tmp: Path) -> dict[str, Any]:
    meta = json.loads((case_dir / "case.json").read_text("utf-8"))
    base = files_of(case_dir / "base")
    trees = {"base": base,
             "correct": {**base, **files_of(case_dir / "correct")},
             "broken": {**base, **files_of(case_dir / "broken")}}
    checked = {name: check_tree(files, tmp / case_dir.name / name) for name, files in trees.items()}
    b_diags, b_texts = checked["base"]
    out: dict[str, Any] = {**meta, "case": case_dir.name,
                           "D": {k: len(v[0]) for k, v in checked.items()}}
    for term in TERMS:
        for edit in ("correct", "broken"):
            diags, texts = checked[edit]
            res = diag_term(b_diags, diags, mode=term, texts_before=b_texts, texts_after=texts)
            out.setdefault(term, {})[edit] = res.term
        c, b = out[term]["correct"], out[term]["broken"]
        out[term]["outcome"] = "win" if c > b else ("tie" if c == b else "loss")
    return out


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    def tally(rows: list[dict[str, Any]]) -> dict[str, Any]:
        t: dict[str, Any] = {"cases": len(rows)}
        for term in TERMS:
            t[term] = {o: sum(r[term]["outcome"] == o for r in rows) for o in ("win", "tie", "loss")}
        return t
    groups = sorted({r["group"] for r in results})
    return {"all": tally(results), **{g: tally([r for r in results if r["group"] == g])
                                      for g in groups}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    ap.add_argument("--json", help="write per-case results and the summary here")
    ap.add_argument("--jobs", type=int, default=4)
    args = ap.parse_args(argv)
    cases = sorted(p for p in CORPUS.iterdir() if (p / "case.json").is_file())
    with tempfile.TemporaryDirectory() as tmp:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            results = list(pool.map(lambda c: run_case(c, Path(tmp)), cases))
    print(f"{'case':34} {'group':15} {'D b/c/x':>9}  {'delta c/x':>10} {'':4}  {'regr c/x':>9} {'':4}")
    for r in results:
        d = r["D"]
        print(f"{r['case']:34} {r['group']:15} {d['base']:>3}/{d['correct']}/{d['broken']:<3}  "
              f"{r['delta']['correct']:>4}/{r['delta']['broken']:<5} {r['delta']['outcome']:4}  "
              f"{r['regression']['correct']:>4}/{r['regression']['broken']:<4} "
              f"{r['regression']['outcome']:4}")
    summary = summarize(results)
    print()
    for group, t in summary.items():
        line = ", ".join(f"{term}: {t[term]['win']}/{t['cases']} strict wins "
                         f"({t[term]['tie']} ties, {t[term]['loss']} losses)" for term in TERMS)
        print(f"{group:15} {line}")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "summary": summary}, indent=2)
                                   + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
