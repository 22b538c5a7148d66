"""Help texts and the README's examples (issue 12, item 10)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, run_cli

from lanser.rewards.steps import Step, parse_steps

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
WRITING = {"rename", "edit", "actions", "batch", "reward", "mcp"}
GLOBAL_FLAGS = ["--workspace", "--server", "--index-io", "--trace-file", "--json", "--timeout", "--verbose",
                "--python", "--cursor", "--daemon"]
SAFETY_FLAGS = ["--allow-dirty", "--deny-apply-on-ambiguous", "--allow ", "--deny "]


def commands() -> list[tuple[str, ...]]:
    from lanser.cli import group

    out: list[tuple[str, ...]] = []
    for name, cmd in sorted(group.commands.items()):
        sub = getattr(cmd, "commands", None)
        out += [(name, s) for s in sorted(sub)] if sub else [(name,)]
    return out


def help_of(*argv: str) -> str:
    result = run_cli(*argv, "--help")
    assert result.code == 0, result.err
    return result.out


@pytest.mark.parametrize("argv", commands(), ids=" ".join)
def test_every_command_help(argv: tuple[str, ...]) -> None:
    text = help_of(*argv)
    assert "CONTRACT" not in text and "README" not in text  # installed users have neither
    if argv[0] in ("locate", "def", "refs", "hover", "symbols", "diag", "prepare-rename", "rename", "actions",
                   "edit", "batch", "reward") or argv[:2] in (("trace", "list"), ("trace", "replay")):
        assert "Example" in text, argv
    writes = argv[0] in WRITING
    for flag in SAFETY_FLAGS:
        assert (flag.strip() in text) is writes, (argv, flag)
    for flag in GLOBAL_FLAGS:  # not listed: named in the one-line pointer to `lanser --help`
        assert not re.search(rf"(?m)^\s+(?:-\w, )?{re.escape(flag)}\b(?!,)", text), (argv, flag)
    if argv[0] not in ("daemon", "schema", "trace") or len(argv) > 1:
        assert "Global options:" in text and "`lanser --help`" in text


@pytest.mark.parametrize("cmd", ["locate", "def", "refs", "hover"])
def test_selector_syntax_in_query_help(cmd: str) -> None:
    text = help_of(cmd)
    for form in ("path:LINE:COL", "path@L<line>:C<col>", "py://", "ast://", "anchor://", "JSON"):
        assert form in text, form


def test_top_level_help_has_everything_once() -> None:
    text = help_of()
    for flag in GLOBAL_FLAGS + ["--allow-dirty", "--deny-apply-on-ambiguous", "--allow GLOB", "--deny GLOB"]:
        assert len(re.findall(rf"(?m)^\s+(?:-\w, )?{re.escape(flag)}\b", text)) == 1, flag
    assert "Selectors" in text and "src/app.py:42:7" in text and "Examples:" in text and "Exit codes" in text
    assert "Safety options (rename, edit, actions --apply, batch, reward)" in text


def test_trace_list_status_and_verbose_are_described() -> None:
    assert "Only operations whose bundle has this status." in help_of("trace", "list")
    assert "The summary's lines stay the same" in help_of()


def test_verbose_really_leaves_the_summary_alone(fixture_copy) -> None:  # type: ignore[no-untyped-def]
    ws = str(fixture_copy("srcpkg"))
    plain = run_cli("-w", ws, "locate", "py://shop.pricing#apply_discount")
    verbose = run_cli("-w", ws, "--verbose", "locate", "py://shop.pricing#apply_discount")
    assert plain.code == verbose.code == 0
    # the same lines; the bundleId is the verbose bundle's (it carries ioRanges)
    assert plain.out.splitlines()[:-1] == verbose.out.splitlines()[:-1]


@pytest.mark.parametrize("argv", [("def", "a.py:1:1", "--allow-dirty"), ("doctor", "--deny", "x"),
                                  ("locate", "a.py:1:1", "--allow", "*")])
def test_safety_options_are_usage_errors_where_nothing_is_written(argv: tuple[str, ...]) -> None:
    result = run_cli(*argv)
    assert result.code == 2 and "No such option" in result.err


def test_safety_options_still_work_before_any_command(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    result = run_cli("-w", str(tmp_path), "--deny", "a.py", "--json", "edit", "a.py@R(1,5->1,6)", "--text", "2")
    assert result.code == 71 and result.bundle["error"]["details"]["reason"] == "glob"


# -- the README ------------------------------------------------------------------------------------

def readme_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def test_readme_names_the_basedpyright_server() -> None:
    assert "--server basedpyright" in README and "lanser[basedpyright]" in README


def test_readme_step_examples_are_valid_steps() -> None:
    blocks = readme_blocks("jsonl")
    assert len(blocks) >= 2  # reward and batch
    for block in blocks:
        items = parse_steps(block)
        assert items and all(isinstance(i, Step) for i in items), items


@pytest.mark.server
def test_readme_reward_example_runs_as_described(tmp_path: Path) -> None:
    ws = tmp_path / "srcpkg"
    shutil.copytree(FIXTURES / "srcpkg", ws)
    steps = tmp_path / "steps.jsonl"
    steps.write_text(readme_blocks("jsonl")[0])
    result = run_cli("-w", str(ws), "reward", str(steps))
    assert result.code == 0, result.err
    records = [json.loads(line) for line in result.out.splitlines()]
    assert [(r["id"], r["status"]) for r in records] == [
        ("look", "ok"), ("fix", "ok"), ("new", "ok"), ("ren", "ok"), ("body", "ok"), ("back", "ok")]
    fix = records[1]
    assert fix["diagnostics"]["errors"] == 2 and fix["processReward"]["r"] == 0.9
    batch = tmp_path / "in.jsonl"
    batch.write_text(readme_blocks("jsonl")[1])
    out = run_cli("-w", str(ws), "batch", str(batch))
    assert out.code == 0, out.err
    assert [json.loads(line)["exitCode"] for line in out.out.splitlines()] == [0, 0, 0, 0, 0]
