"""``lanser reward --from swe-agent|commits|diffs`` end to end on a git copy of fixtures/srcpkg
with the real pinned server.  The SWE-agent trajectories here are synthetic (written for this
test in the .traj format of SWE-agent 0.x and 1.x: the public real ones cannot be fetched from
a package registry, see the README); benchmarks/bench_swe_agent_trajs.py runs the converter on
real ones.  The submission each trajectory carries is computed independently: the intended
final files written into a clone, ``git add -A && git diff --cached`` (CRLF in 1.x files)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli
from rl_fixture import FIXTURE, GOOD_DIFF

pytestmark = pytest.mark.server

ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "PATH": "/usr/local/bin:/usr/bin:/bin",
       "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
       "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z"}
EXTRA = 'from shop.pricing import apply_discount\n\n\ndef half(x: float) -> float:\n    return apply_discount(x, 50)\n'


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=ENV).stdout


def make_repo(tmp_path: Path) -> tuple[Path, str]:
    repo = Path(shutil.copytree(FIXTURE, tmp_path / "repo"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    return repo, git(repo, "rev-parse", "HEAD").strip()


def expected_submission(repo: Path, base: str, final: dict[str, str], tmp_path: Path, crlf: bool) -> str:
    clone = tmp_path / "expect"
    shutil.rmtree(clone, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True, env=ENV)
    git(clone, "checkout", "-q", base)
    for rel, text in final.items():
        (clone / rel).write_text(text, encoding="utf-8")
    git(clone, "add", "-A")
    sub = "\n" + git(clone, "diff", "--cached")
    return sub.replace("\n", "\r\n") if crlf else sub


def traj_v1(outside: Path) -> list[tuple[str, str]]:
    broken = "/testbed/src/shop/broken.py"
    extra = "/testbed/src/shop/extra.py"
    return [
        (f"str_replace_editor view {broken}", "     1\tfrom shop.models import Cart, Item"),
        (f"str_replace_editor str_replace {broken}   --old_str '    return cart.size' --new_str '    return cart.count'",
         f"The file {broken} has been edited."),
        (f"str_replace_editor str_replace {broken} --old_str return --new_str yield",
         "No replacement was performed. Multiple occurrences of old_str `return` in lines [6, 10, 14]."),
        (f"str_replace_editor create {extra} --file_text '{EXTRA}'", f"File created successfully at: {extra}"),
        (f"str_replace_editor insert {extra} --insert_line 5 --new_str 'BAD: int = \"x\"'", "edited"),
        (f"str_replace_editor undo_edit {extra}", f"Last edit to {extra} undone successfully."),
        ("sed -i s/pear/plum/ src/shop/service.py", ""),
        ("ls -la src/shop", "total 24"),
        (f"str_replace_editor create {outside} --file_text 'x = 1'", f"File created successfully at: {outside}"),
        ("str_replace_editor create /testbed/scratch.py --file_text 'print(1)'", "File created"),
        ("python scratch.py", "1"),
        ("rm scratch.py", ""),
        ("submit", ""),
    ]


def write_traj(path: Path, steps: list[tuple[str, str]], *, v0: bool, root: str, submission: str,
               base: str | None = None) -> Path:
    def state(open_file: str) -> object:
        st = {"open_file": open_file, "working_dir": root}
        return json.dumps(st) + "\n" if v0 else st

    traj = {"environment": "swe_main" if v0 else "main",
            "trajectory": [{"action": a + ("\n" if v0 else ""), "observation": o.replace("\n", "\r\n") if not v0
                            else o, "response": "", "thought": "", "state": state("n/a")} for a, o in steps],
            "history": [], "info": {"exit_status": "submitted", "submission": submission}}
    if base:
        traj["replay_config"] = json.dumps({"env": {"repo": {"base_commit": base, "type": "preexisting"}}})
    path.write_text(json.dumps(traj), encoding="utf-8")
    return path


def records_of(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_swe_agent_v1_str_replace_editor(tmp_path):
    repo, base = make_repo(tmp_path)
    broken = (repo / "src/shop/broken.py").read_text().replace("return cart.size", "return cart.count")
    sub = expected_submission(repo, base, {"src/shop/broken.py": broken, "src/shop/extra.py": EXTRA}, tmp_path,
                              crlf=True)
    outside = tmp_path / "outside.py"
    traj = write_traj(tmp_path / "v1.traj", traj_v1(outside), v0=False, root="/testbed", submission=sub, base=base)
    head_before = git(repo, "status", "--porcelain")
    res = run_cli("reward", "--from", "swe-agent", str(traj), "--repo", str(repo))
    assert res.code == 0, res.err
    assert "reproduces the trajectory's submission byte for byte" in res.err
    recs = records_of(res.out)
    got = [(r["trajStep"], r["status"], r.get("processReward", {}).get("r"), (r.get("error") or {}).get("code"))
           for r in recs]
    assert got == [
        (1, "ok", pytest.approx(0.9), None),            # fixes cart.size: 3 -> 2 errors
        (2, "skipped", None, None),                     # the editor refused it (not unique)
        (3, "ok", pytest.approx(0.4), None),            # new module, no error
        (4, "ok", pytest.approx(-0.1), None),           # BAD: int = "x" adds one error
        (5, "ok", pytest.approx(0.9), None),            # undo_edit removes it
        (6, "skipped", None, None),                     # sed -i: never guessed
        (8, "error", pytest.approx(-0.4), "E/FS_PERMISSIONS"),  # outside the repository
        (9, "ok", pytest.approx(0.4), None),
        (10, "skipped", None, None),                    # python scratch.py
        (11, "ok", pytest.approx(0.4), None),           # rm scratch.py: a deletion patch
    ]
    assert all(r["source"] == "swe-agent" for r in recs)
    assert recs[0]["action"].startswith("str_replace_editor str_replace") and recs[0]["id"] == "t1"
    assert recs[1]["reason"].startswith("the harness did not apply it: No replacement was performed")
    assert recs[4]["resolved"][0]["code"] == "reportAssignmentType"
    assert not outside.exists() and git(repo, "status", "--porcelain") == head_before


def test_swe_agent_v0_windowed_rejected_edits(tmp_path):
    repo, base = make_repo(tmp_path)
    sub = expected_submission(repo, base, {"notes.txt": "hello\n"}, tmp_path, crlf=False)
    lint = "Your proposed edit has introduced new syntax error(s). Please read this error message carefully\n"
    steps = [
        ("open src/shop/pricing.py", "[File: /shop/src/shop/pricing.py (8 lines total)]"),
        ("edit 1:1\ndef apply_discount(price: float, pct: float, currency: str) -> float:\nend_of_edit",
         "File updated."),
        ("edit 1:1\ndef apply_discount(price: float, pct: float) -> float:\nend_of_edit", "File updated."),
        ("edit 2:2\n    if not 0 <= pct <= 100\nend_of_edit", lint + "- E999 SyntaxError: invalid syntax"),
        ("edit 4:4\n    return price * (100 - pcnt) / 100\nend_of_edit", lint + "- F821 undefined name 'pcnt'"),
        ("create notes.txt", "[File: /shop/notes.txt (1 lines total)]"),
        ("edit 1:1\nhello\nend_of_edit", "File updated."),
        ("submit", ""),
    ]
    traj = write_traj(tmp_path / "v0.traj", steps, v0=True, root="/shop", submission=sub)
    res = run_cli("reward", "--from", "swe-agent", str(traj), "--repo", str(repo), "--base", base, "--aggregate",
                  "min")
    assert res.code == 0, res.err
    assert "byte for byte" in res.err
    recs = records_of(res.out)
    got = [(r["trajStep"], r["status"], r["processReward"]["r"], r.get("revert", False), r.get("harnessApplied", True))
           for r in recs]
    assert got == [
        (1, "ok", pytest.approx(-0.6), False, True),    # breaks the three callers of apply_discount
        (2, "ok", pytest.approx(1.4), False, True),     # and repairs them
        (3, "error", pytest.approx(-0.4), False, False),  # rejected by SWE-agent's linter and by Lanser
        (4, "ok", pytest.approx(-0.1), False, False),   # rejected by SWE-agent (F821) but applied by Lanser...
        (4, "ok", pytest.approx(0.9), True, True),      # ...so the replay reverts it
        (5, "ok", pytest.approx(0.4), False, True),
        (6, "ok", pytest.approx(0.4), False, True),
    ]
    assert recs[2]["error"]["code"] == "E/APPLY_CONFLICT"
    assert recs[0]["return"] == pytest.approx(-0.6) and recs[1]["value"] == pytest.approx(-0.4)


def test_commits_and_diffs_converters(tmp_path):
    repo, base = make_repo(tmp_path)
    (repo / "src/shop/broken.py").write_text((repo / "src/shop/broken.py").read_text().replace(
        "return cart.size", "return cart.count"))
    git(repo, "commit", "-q", "-am", "fix cart.size")
    pricing = repo / "src/shop/pricing.py"
    pricing.write_text(pricing.read_text().replace("pct: float)", "pct: float, currency: str)"))
    git(repo, "commit", "-q", "-am", "add currency")
    commits = git(repo, "rev-list", "--reverse", f"{base}..HEAD").split()
    res = run_cli("reward", "--from", "commits", f"{base}..HEAD", "--repo", str(repo))
    assert res.code == 0, res.err
    recs = records_of(res.out)
    assert [(r["trajStep"], r["action"], r["processReward"]["r"]) for r in recs] == [
        (commits[0], "fix cart.size", pytest.approx(0.9)), (commits[1], "add currency", pytest.approx(-0.6))]
    steps = tmp_path / "diffs.jsonl"
    steps.write_text(json.dumps({"id": "s1", "diff": GOOD_DIFF}) + "\n"
                     + json.dumps({"op": "write", "path": "../escape.py", "content": "x = 1\n"}) + "\n")
    res = run_cli("reward", "--from", "diffs", str(steps), "--repo", str(repo), "--base", base)
    assert res.code == 0, res.err
    recs = records_of(res.out)
    assert [(r["trajStep"], r["processReward"]["r"]) for r in recs] == [("s1", pytest.approx(0.9)),
                                                                         (2, pytest.approx(-0.4))]
    assert not (tmp_path / "escape.py").exists()
    bad = run_cli("reward", "--from", "commits", "nonsense", "--repo", str(repo))
    assert bad.code == 2 and "A..B" in bad.err
