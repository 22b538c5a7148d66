"""``lanser reward``: the trajectory runner, its CLI and the trainer API, against the real
pinned server on copies of fixtures/trajectory.  Counts are checked against the pinned
expected counts and against fresh ``pyright --outputjson`` runs on the same trees."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from lanser.cli import main
from lanser.engine import Engine, Options
from lanser.output import Progress
from lanser.pyright_cli import count_by_severity, run_pyright_json
from lanser.rewards.api import RewardScorer
from lanser.rewards.runner import RewardOptions, TrajectoryRunner
from lanser.rewards.steps import SEPARATOR, BadLine, Step, parse_steps

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "trajectory"
STEPS_FILE = FIXTURE / "steps.jsonl"
STEPS = [json.loads(line) for line in STEPS_FILE.read_text("utf-8").splitlines()]
EXPECTED = json.loads((FIXTURE / "expected_counts.json").read_text("utf-8"))["steps"]
COUNT_KEYS = ("errors", "warnings", "informations", "byFile")
PYRIGHT_CHECKED = {"rename-breaks-caller", "stale-patch", "swap-fields", "edit-body", "rename-total",
                   "new-module-typo", "reset"}


def copy_ws(tmp_path: Path, name: str = "ws") -> Path:
    return Path(shutil.copytree(FIXTURE / "workspace", tmp_path / name, symlinks=True))


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file's bytes, except lanser's own .lanser/ directory."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".lanser" not in p.relative_to(root).parts}


def run_cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def expected_counts(n: int) -> dict[str, Any]:
    return {k: EXPECTED[n][k] for k in COUNT_KEYS}


# -- pure ------------------------------------------------------------------------------

def test_parse_steps_valid_bad_and_separators():
    text = "\n".join([
        '{"op":"write","path":"a.py","content":"x = 1\\n","id":"w"}',
        "",
        '{"op":"query","cmd":"hover"}',        # hover needs a selector
        "not json",
        '{"op":"rename","selector":{"path":"a.py","line":1,"col":1},"newName":"y"}',
        '{"op":"explode"}',
        "",
        "",
    ])
    items = parse_steps(text, blank_separates=True)
    assert isinstance(items[0], Step) and items[0].id == "w" and items[0].line == 1
    assert items[1] == SEPARATOR
    assert isinstance(items[2], BadLine) and items[2].error.exit_code == 2 and items[2].op == "query"
    assert isinstance(items[3], BadLine) and "not JSON" in items[3].error.message
    # a bad step line is bad input, not a selector parse error (issue 12, item 12)
    assert {i.error.code for i in items if isinstance(i, BadLine)} == {"E/BAD_INPUT"}
    assert isinstance(items[4], Step) and items[4].selector == '{"col":1,"line":1,"path":"a.py"}'
    assert isinstance(items[5], BadLine) and "unknown op" in items[5].error.message
    assert len(items) == 6  # trailing blank lines are no separator
    assert SEPARATOR not in parse_steps(text)  # without --reset-between blank lines are skipped


def test_reward_options_reject_bad_values():
    for bad in ({"severities": ("fatal",)}, {"scope": "repo"}, {"diag_term": "x"}, {"clip": 0},
                {"aggregate": "max"}, {"severities": ()}):
        with pytest.raises(ValueError):
            RewardOptions(**bad)  # type: ignore[arg-type]
    assert RewardOptions(severities=("warning", "error", "error")).severities == ("error", "warning")


def test_progress_only_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    quiet = io.StringIO()
    bar = Progress(4, stream=quiet)
    bar.update(errors=3)
    bar.finish()
    assert quiet.getvalue() == ""
    tty = Tty()
    bar = Progress(4, stream=tty)
    bar.update(errors=3)
    bar.update(errors=1)
    bar.finish()
    text = tty.getvalue()
    assert "2/4" in text and "errors=1" in text and "steps/s" in text and text.endswith("\n")


def test_unreadable_steps_file_is_exit_3(tmp_path):
    code, out, err = run_cli(["reward", str(tmp_path / "missing.jsonl"), "-w", str(copy_ws(tmp_path))])
    assert (code, out) == (3, "") and "E/NOT_FOUND" in err
    code, _, err = run_cli(["reward", str(STEPS_FILE), "--weights", "alpha=-1"])
    assert code == 2 and "--weights" in err


# -- against the real server -----------------------------------------------------------------

@pytest.mark.server
def test_trajectory_counts_match_pyright_and_failed_step_changes_nothing(tmp_path):
    ws = copy_ws(tmp_path)
    items = parse_steps(STEPS_FILE.read_text("utf-8"))

    async def go() -> list[dict[str, Any]]:
        engine = Engine(Options(workspace=str(ws)))
        records = []
        try:
            runner = TrajectoryRunner(engine, RewardOptions(by_file="all"))
            await runner.start()
            assert count_by_severity(runner.diagnostics) == expected_counts(0)
            for n, item in enumerate(items, start=1):
                assert isinstance(item, Step)
                before = snapshot(ws)
                rec = await runner.run_step(item)
                assert rec["step"] == n and rec["id"] == item.id and rec["op"] == item.op
                assert rec["status"] == EXPECTED[n]["status"], item.id
                assert rec["diagnostics"] == expected_counts(n), item.id
                if item.id in PYRIGHT_CHECKED:  # a fresh CLI run on the very same tree
                    assert count_by_severity(run_pyright_json(ws), ws) == rec["diagnostics"], item.id
                if rec["status"] == "error":
                    assert snapshot(ws) == before  # byte-identical after a failed step
                records.append(rec)
        finally:
            await engine.close()
        return records

    records = asyncio.run(go())
    by_id = {r["id"]: r for r in records}
    stale = by_id["stale-patch"]
    assert stale["exitCode"] == 70 and stale["error"]["code"] == "E/APPLY_CONFLICT"
    assert stale["processReward"]["components"]["safety"] == 0
    assert stale["processReward"]["r"] == -0.4  # D unchanged, S = 0
    for rec in records:
        pr = rec["processReward"]
        c = pr["components"]
        assert pr["r"] == round(0.5 * (c["diag_before"] - c["diag_after"]) + 0.4 * (2 * c["safety"] - 1)
                                - 0.1 * c["ambiguity_penalty"], 6)
        assert rec["bundleId"].startswith("sha256:")
    assert len({r["bundleId"] for r in records}) == len(records)
    assert by_id["rename-breaks-caller"]["processReward"]["components"]["diag_delta"] == -1
    assert [d["code"] for d in by_id["rename-breaks-caller"]["introduced"]] == ["reportAttributeAccessIssue"]
    assert snapshot(ws) == snapshot(FIXTURE / "workspace")  # the final reset restored the base


@pytest.mark.server
def test_cli_replay_is_byte_identical_and_stdout_is_json(tmp_path):
    outs = []
    for name in ("a", "b"):
        ws = copy_ws(tmp_path, name)
        out = tmp_path / f"{name}.jsonl"
        code, stdout, _ = run_cli(["reward", str(STEPS_FILE), "-w", str(ws), "-o", str(out)])
        assert (code, stdout) == (0, "")
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]  # same records, same bundleIds, from two directories
    lines = outs[0].decode().splitlines()
    assert len(lines) == len(STEPS)
    assert [json.loads(line)["diagnostics"]["errors"] for line in lines] == [e["errors"] for e in EXPECTED[1:]]
    # stdout form: canonical JSON lines only
    code, stdout, _ = run_cli(["reward", str(STEPS_FILE), "-w", str(copy_ws(tmp_path, "c"))])
    assert code == 0 and stdout.encode() == outs[0]


@pytest.mark.server
def test_in_memory_never_writes_and_reset_between(tmp_path):
    ws = copy_ws(tmp_path)
    before = {p.relative_to(ws).as_posix(): p.read_bytes() for p in ws.rglob("*") if p.is_file()}
    body = [line for line in STEPS_FILE.read_text("utf-8").splitlines() if '"op": "reset"' not in line]
    steps = tmp_path / "two.jsonl"
    steps.write_text("\n".join(body) + "\n\n" + "\n".join(body) + "\n", encoding="utf-8")
    code, stdout, _ = run_cli(["reward", str(steps), "-w", str(ws), "--in-memory", "--reset-between", "--by-file", "all",
                               "--aggregate", "min"])
    assert code == 0
    records = [json.loads(line) for line in stdout.splitlines()]
    assert len(records) == 2 * len(body)
    first, second = records[:len(body)], records[len(body):]
    assert [r["diagnostics"] for r in first] == [r["diagnostics"] for r in second] == \
        [expected_counts(n) for n in range(1, len(body) + 1)]
    assert [r["processReward"] for r in first] == [r["processReward"] for r in second]
    rs = [r["processReward"]["r"] for r in first]
    assert [r["value"] for r in first] == [min(rs[i:]) for i in range(len(rs))]
    assert all(r["return"] == min(rs) and r["aggregate"] == "min" for r in first)
    after = {p.relative_to(ws).as_posix(): p.read_bytes() for p in ws.rglob("*") if p.is_file()}
    assert after == before  # nothing written, not even .lanser/


@pytest.mark.server
def test_bad_lines_and_unsafe_steps_give_error_records_and_the_run_goes_on(tmp_path):
    ws = copy_ws(tmp_path)
    lines = [
        '{"id": "junk", "op": "patch"}',
        '{"id": "escape", "op": "write", "path": "../outside.py", "content": "x = 1\\n"}',
        '{"id": "broken", "op": "write", "path": "pkg/models.py", "content": "def (:\\n"}',
        '{"id": "bad-name", "op": "rename", "selector": "py://pkg.loader#total", "newName": "1x"}',
        '{"id": "missing", "op": "query", "cmd": "def", "selector": "py://pkg.nowhere#f"}',
        STEPS_FILE.read_text("utf-8").splitlines()[1],  # rename-breaks-caller still applies
    ]
    steps = tmp_path / "bad.jsonl"
    steps.write_text("\n".join(lines) + "\n", encoding="utf-8")
    base = snapshot(ws)
    code, stdout, _ = run_cli(["reward", str(steps), "-w", str(ws)])
    assert code == 2
    recs = [json.loads(line) for line in stdout.splitlines()]
    assert [(r["id"], r["status"], r["exitCode"]) for r in recs] == [
        ("junk", "error", 2), ("escape", "error", 71), ("broken", "error", 70), ("bad-name", "error", 2),
        ("missing", "error", 3), ("rename-breaks-caller", "ok", 0)]
    assert all(r["processReward"]["components"]["safety"] == 0 for r in recs[:5])
    assert [r["diagnostics"]["errors"] for r in recs] == [1, 1, 1, 1, 1, 2]
    assert not (tmp_path / "outside.py").exists()
    changed = {k for k in snapshot(ws) if snapshot(ws)[k] != base.get(k)}
    assert changed == {"pkg/loader.py"}


@pytest.mark.server
def test_trainer_api_reuses_one_session_and_restores_the_base(tmp_path):
    ws = copy_ws(tmp_path)
    base = snapshot(ws)
    with RewardScorer(str(ws), by_file="all") as scorer:
        first = scorer.score(STEPS[:11])
        pid = scorer._inner.engine.session.pid if scorer._inner.engine.session else None
        second = scorer.score(STEPS[:11])
        assert scorer._inner.engine.session is not None and scorer._inner.engine.session.pid == pid
        short = scorer.score([{"op": "bogus"}, STEPS[1]])
    assert first == second
    assert [r["diagnostics"] for r in first] == [expected_counts(n) for n in range(1, 12)]
    assert (short[0]["exitCode"], short[1]["diagnostics"]["errors"]) == (2, 2)  # from the base again
    assert snapshot(ws) == base
    with RewardScorer(str(ws), in_memory=False, aggregate="sum", by_file="all") as scorer:
        disk = scorer.score(STEPS[:3])
    assert [r["diagnostics"] for r in disk] == [expected_counts(n) for n in range(1, 4)]
    assert disk[0]["value"] == disk[0]["return"] == round(sum(r["processReward"]["r"] for r in disk), 6)
    assert snapshot(ws) == base  # close() restored the disk


def test_runner_plans_and_builds_bundles_like_the_commands(tmp_path):
    """The reward runner plans renames and edits with the commands' planner and builds its step
    bundles with the engine's envelope (issue 13): a refused prepare-rename has the command's
    reason and message, a no-op edit the command's no-op refusal, and every step bundle records
    ``meta.indexIo`` (the runner's copy of the envelope left it out)."""
    ws = copy_ws(tmp_path)
    steps = [
        {"id": "kw", "op": "rename", "selector": "pkg/models.py:1:1", "newName": "other"},
        {"id": "same", "op": "edit", "selector": "py://pkg.models#make_record:body",
         "text": "return Record(name=name, value=value)"},
    ]
    bundles: list[dict[str, Any]] = []

    async def go() -> list[dict[str, Any]]:
        async with Engine(Options(workspace=str(ws), index_io="utf-16")) as engine:
            runner = TrajectoryRunner(engine)
            runner.on_bundle = bundles.append
            await runner.start()
            return await runner.run(parse_steps("\n".join(json.dumps(s) for s in steps)))

    records = asyncio.run(go())
    refused, noop = records
    assert refused["status"] == "error" and refused["exitCode"] == 3
    assert refused["error"]["details"]["reason"] == "prepare-rename-refused"
    assert "the server refuses to rename here" in refused["error"]["message"]
    assert refused["processReward"]["components"]["safety"] == 0
    assert noop["status"] == "error" and noop["exitCode"] == 70
    assert noop["error"]["details"] == {"reason": "no-op"}
    assert noop["error"]["message"].endswith("changes nothing; no file was written")

    async def by_command() -> dict[str, Any]:
        async with Engine(Options(workspace=str(ws), index_io="utf-16")) as engine:
            return await engine.run("rename", "pkg/models.py:1:1", {"newName": "other"})

    command = asyncio.run(by_command())
    assert command["error"]["details"]["reason"] == refused["error"]["details"]["reason"]
    assert command["error"]["message"] == refused["error"]["message"]
    assert [b["meta"]["indexIo"] for b in bundles] == ["utf-16", "utf-16"]
    assert all(set(b["meta"]) == set(command["meta"]) for b in bundles)
