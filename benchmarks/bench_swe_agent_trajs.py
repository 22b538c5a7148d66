"""Real SWE-agent trajectories through ``lanser reward --from swe-agent`` (issue 15).

    .venv/bin/python benchmarks/bench_swe_agent_trajs.py \\
        --case FILE.traj REPO BASE [--case ...] [--clip C] [--json OUT]

Each case: a public SWE-agent ``.traj`` file, a clone (or bare git directory) of the
repository it ran on, and the base commit.  Nothing of them is stored here: the files
come from the public SWE-agent repository (``tests/test_data/trajectories`` and
``trajectories/demonstrations``) and the repositories from their public histories, and
no package registry ships either (see benchmarks/README.md).  For each case the script
converts the trajectory, scores it on one warm server in memory, rebuilds the final tree
and compares ``git diff --cached`` of it with the trajectory's ``info.submission``
(CRLF -> LF).  It prints the per-step rewards and the byte-for-byte verdict, and checks
them against the values recorded below for the exact files (keyed by SHA-256): a
mismatch exits 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_line  # noqa: E402

from lanser.engine import Options  # noqa: E402
from lanser.integrations.trajectories.label import label_source  # noqa: E402
from lanser.rewards.runner import RewardOptions  # noqa: E402

# (trajStep, status, r) of every record with the default options, per .traj SHA-256;
# "s" = skipped (no reward), "+rev" = the revert of an edit SWE-agent rejected and Lanser applied.
RECORDED: dict[str, dict[str, Any]] = {
    "f081b131803e16ed68cf2c65bedff8e8a60be494c98b141d0af44ce28ae56b74": {
        "name": "pydicom__pydicom-1458 (GPT-4, SWE-agent 0.x, windowed edit)",
        "records": [(0, "ok", 0.4), (1, "ok", -0.1), (2, "s", None), (5, "error", -0.4), (6, "error", -0.4),
                    (7, "error", -0.4), (8, "ok", 0.4), (9, "s", None), (10, "ok", 0.9)]},
    "da31b29132b6a7e871e0090193f0249725dba09e773efdbfd69e521d50ce6eb0": {
        "name": "marshmallow-1867 demonstration (SWE-agent 0.7, windowed edit)",
        "records": [(0, "ok", 0.4), (1, "ok", 0.4), (2, "s", None), (6, "error", -0.4), (7, "ok", 0.4),
                    (8, "s", None), (9, "ok", 0.4)]},
    "c2ca395c37f23e8f1b603b3f27dc7557eb9216d35b695fd458e601a526b70366": {
        "name": "marshmallow-1867 demonstration (SWE-agent 1.x function calling, windowed edit)",
        "records": [(0, "ok", 0.4), (1, "ok", 0.4), (2, "s", None), (6, "error", -0.4), (7, "ok", 0.4),
                    (8, "s", None), (9, "ok", 0.4)]},
    "446e76ce113eb8e3a12f264a5015d9f475f6e502201421d51a883b8b05ca8470": {
        "name": "marshmallow-1867 demonstration (SWE-agent 1.x function calling, edit/insert replace)",
        "records": [(0, "ok", 0.4), (1, "ok", 0.4), (2, "s", None), (6, "error", -0.4), (7, "ok", 0.4),
                    (8, "s", None), (9, "ok", 0.4)]},
    "37894da0658b71c3ffc37fcecad550386159e841d4aa8a82bfe6a12bd46589d1": {
        "name": "SWE-agent/test-repo issue 1 (GPT-4, SWE-agent 0.x, windowed edit)",
        "records": [(2, "ok", 0.9), (3, "s", None)]},
    "dd79a193908492a51f532269ee126f3600da98b84551e2bdc1adacc7bf29ad67": {
        "name": "SWE-agent/test-repo issue 1 (GPT-4, SWE-agent 1.x, edit replace)",
        "records": [(2, "ok", 0.9), (3, "s", None)]},
}


def summarise(records: list[dict[str, Any]]) -> list[tuple[Any, str, float | None]]:
    out: list[tuple[Any, str, float | None]] = []
    for r in records:
        step = f"{r['trajStep']}+rev" if r.get("revert") else r["trajStep"]
        if r["status"] == "skipped":
            out.append((step, "s", None))
        else:
            out.append((step, r["status"], round(r["processReward"]["r"], 4)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", nargs=3, action="append", metavar=("TRAJ", "REPO", "BASE"), required=True)
    ap.add_argument("--clip", type=float, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    failures = 0
    report = []
    for traj, repo, base in args.case:
        digest = hashlib.sha256(Path(traj).read_bytes()).hexdigest()
        t0 = time.perf_counter()
        outcome = label_source(Options(), "swe-agent", traj, repo=repo, base=base,
                               options=RewardOptions(clip=args.clip), emit=lambda r: None)
        secs = time.perf_counter() - t0
        got = summarise(outcome.records)
        rec = RECORDED.get(digest)
        name = rec["name"] if rec else Path(traj).name
        verdict = "byte-for-byte" if outcome.matches else "DIFFERS"
        steps = [r for r in outcome.records if r["status"] != "skipped"]
        print(f"{name}\n  sha256 {digest[:16]}  base {base[:12]}  {len(steps)} scored, "
              f"{len(outcome.records) - len(steps)} skipped  {secs:.1f} s  submission: {verdict}")
        print("  " + "  ".join(f"{s}:{'skip' if r is None else ('%+.1f' % r) + ('' if st == 'ok' else '(E)')}"
                               for s, st, r in got))
        ok = bool(outcome.matches)
        if rec is not None and args.clip is None:
            ok = ok and got == [tuple(x) for x in rec["records"]]
            if got != [tuple(x) for x in rec["records"]]:
                print(f"  MISMATCH with the recorded rewards: {rec['records']}")
        failures += not ok
        report.append({"name": name, "sha256": digest, "base": base, "matches": outcome.matches,
                       "records": got, "seconds": secs})
    print(machine_line())
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
