"""Bad inputs: each gives its contract exit code, one ``lanser: E/...`` line on stderr and
no traceback; with ``--json`` an error bundle (``status: "error"``, ``error.code``).

Most of these fail before any server is needed, so they run the CLI in-process.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import CliResult, assert_clean_error, assert_error_bundle, copy_fixture, run_cli, run_cli_subprocess


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of fixtures/clean plus the bad_encoding files, a link out and a secret outside."""
    base = tmp_path_factory.mktemp("bad")
    root = copy_fixture("clean", base / "ws")
    for name in ("bad.py", "ok.py"):
        (root / name).write_bytes((Path(__file__).parent.parent / "fixtures" / "bad_encoding" / name).read_bytes())
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("SECRET = 1\n")
    (root / "link.py").symlink_to(outside / "secret.py")
    (root / "linkdir").symlink_to(outside)
    (root / "pkg").mkdir()
    return root


def both(ws: Path, *argv: str) -> tuple[CliResult, CliResult]:
    """The same command without and with --json."""
    return run_cli("-w", str(ws), *argv), run_cli("-w", str(ws), "--json", *argv)


def check(ws: Path, argv: tuple[str, ...], exit_code: int, code: str) -> dict[str, Any]:
    plain, as_json = both(ws, *argv)
    assert_clean_error(plain, exit_code)
    assert code in plain.err
    assert plain.out == ""
    return assert_error_bundle(as_json, exit_code, code)


# -- malformed selectors: exit 2 with the column of the first bad character -------------------

@pytest.mark.parametrize("selector,column", [
    ("app.py@X1:C1", 8),
    ("app.py@L0:C1", 9),
    ("app.py@L1:C", 12),
    ("app.py@L1:C0", 12),
    ("app.py@L1:C1junk", 13),
    ("app.py@R(1,1->)", 15),
    ("app.py", 7),
    ("@L1:C1", 1),
    ("py://pkg.mod#", 14),
    ("ast://[module=a", 16),
    ('anchor://app.py#"abc', 21),
    ('{"kind":"cursor"', 17),
    ('{"kind":"cursor","path":"app.py","line":-1,"col":0}', 41),
    ("app.py@L1:C1?v=zz", 16),
])
def test_malformed_selector(ws: Path, selector: str, column: int) -> None:
    bundle = check(ws, ("def", selector), 2, "E/BAD_SELECTOR_SYNTAX")
    assert bundle["error"]["details"]["column"] == column
    assert f"column {column}" in bundle["error"]["message"]
    assert bundle["error"]["retryable"] is False


# -- the jail ------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ("def", "../outside/secret.py@L1:C1"),
    ("def", "pkg/../../outside/secret.py@L1:C1"),
    ("symbols", "../outside/secret.py"),
    ("def", "/etc/passwd@L1:C1"),
    ("def", "file:///etc/hostname@L1:C1"),
])
def test_path_leaving_the_workspace(ws: Path, argv: tuple[str, ...]) -> None:
    check(ws, argv, 71, "E/FS_PERMISSIONS")


class OpenSpy:
    """Records every file this process opens below ``prefix`` (via an audit hook)."""

    def __init__(self) -> None:
        self.prefix: str | None = None
        self.seen: list[str] = []
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if self.prefix and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            path = os.fsdecode(args[0])
            if os.path.realpath(path).startswith(self.prefix):
                self.seen.append(path)


@pytest.fixture(scope="module")
def spy() -> Iterator[OpenSpy]:
    s = OpenSpy()
    yield s
    s.prefix = None


def test_open_spy_sees_reads_outside(ws: Path, spy: OpenSpy) -> None:
    """The spy itself works: a read through the link is seen."""
    spy.prefix, spy.seen = os.path.realpath(ws.parent / "outside"), []
    try:
        (ws / "link.py").read_bytes()
    finally:
        spy.prefix = None
    assert spy.seen == [str(ws / "link.py")]


@pytest.mark.parametrize("argv", [
    ("def", "link.py@L1:C1"),
    ("hover", "link.py@L1:C2"),
    ("symbols", "link.py"),
    ("locate", "link.py@L1:C1"),
    ("def", "linkdir/secret.py@L1:C1"),
    ("locate", 'anchor://link.py#"SECRET"'),
    ("locate", '{"kind":"cursor","path":"link.py","line":0,"col":0}'),
])
def test_symlink_pointing_outside(ws: Path, spy: OpenSpy, argv: tuple[str, ...]) -> None:
    spy.prefix, spy.seen = os.path.realpath(ws.parent / "outside"), []
    try:
        check(ws, argv, 71, "E/FS_PERMISSIONS")
    finally:
        spy.prefix = None
    assert spy.seen == [], f"read outside the workspace: {spy.seen}"


@pytest.mark.server
def test_diag_of_symlink_outside_reads_nothing_outside(ws: Path, spy: OpenSpy) -> None:
    spy.prefix, spy.seen = os.path.realpath(ws.parent / "outside"), []
    try:
        check(ws, ("diag", "link.py"), 71, "E/FS_PERMISSIONS")
    finally:
        spy.prefix = None
    assert spy.seen == []


# -- missing things ------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ("def", "missing.py@L1:C1"),
    ("symbols", "missing.py"),
    ("hover", "app.py@L999:C1"),        # past the end of the file
    ("def", "app.py@L1:C999"),          # past the end of the line
    ("symbols", "pkg"),                 # a directory
    ("def", "py://nosuch.module#f"),
])
def test_not_found(ws: Path, argv: tuple[str, ...]) -> None:
    check(ws, argv, 3, "E/NOT_FOUND")


def test_missing_file_for_diag(ws: Path) -> None:
    check(ws, ("diag", "missing.py"), 3, "E/NOT_FOUND")


def test_nonexistent_workspace(tmp_path: Path) -> None:
    gone = str(tmp_path / "no" / "such" / "dir")
    plain, as_json = run_cli("-w", gone, "def", "a.py@L1:C1"), run_cli("-w", gone, "--json", "def", "a.py@L1:C1")
    assert_clean_error(plain, 3)
    assert_error_bundle(as_json, 3, "E/NOT_FOUND")


def test_workspace_is_a_file(ws: Path) -> None:
    plain = run_cli("-w", str(ws / "app.py"), "def", "a.py@L1:C1")
    assert_clean_error(plain, 3)


# -- encodings -----------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [("def", "bad.py@L4:C5"), ("symbols", "bad.py"), ("locate", "bad.py@L1:C1")])
def test_non_utf8_file(ws: Path, argv: tuple[str, ...]) -> None:
    bundle = check(ws, argv, 75, "E/INDEXING_UNSUPPORTED")
    assert "bad.py" in bundle["error"]["message"]


def test_non_utf8_file_for_diag(ws: Path) -> None:
    check(ws, ("diag", "bad.py"), 75, "E/INDEXING_UNSUPPORTED")


@pytest.mark.parametrize("value", ["utf-32", "UTF8", "bytes", ""])
@pytest.mark.parametrize("where", ["before", "after"])
def test_bad_index_io_is_a_usage_error_like_every_bad_option_value(ws: Path, value: str, where: str) -> None:
    opt = ("--index-io", value)
    argv = (*opt, "def", "app.py@L1:C1") if where == "before" else ("def", "app.py@L1:C1", *opt)
    for extra in ((), ("--json",)):
        result = run_cli("-w", str(ws), *extra, *argv)
        assert result.code == 2 and result.out == "" and "Traceback" not in result.err
        assert "--index-io" in result.err and "utf-16" in result.err and "E/INDEXING" not in result.err


def test_bad_option_values_through_the_library_are_bad_input(ws: Path) -> None:
    """Where click does not check (SDK, daemon requests), the same values are E/BAD_INPUT (2)."""
    from lanser.engine import Engine, Options
    from lanser.errors import BadInput

    for options in (Options(workspace=str(ws), index_io="utf-32"), Options(workspace=str(ws), server="jedi")):
        with pytest.raises(BadInput) as info:
            Engine(options)
        assert (info.value.code, info.value.exit_code) == ("E/BAD_INPUT", 2)


# -- option values that make no sense -------------------------------------------------------------

@pytest.mark.parametrize("argv", [("--timeout", "0"), ("--timeout", "-1"), ("--cursor", "-5")])
def test_nonsense_option_values_are_usage_errors(ws: Path, argv: tuple[str, ...]) -> None:
    result = run_cli("-w", str(ws), *argv, "refs", "app.py@L3:C22")
    assert result.code == 2, (result.code, result.out, result.err)
    assert "Traceback" not in result.err and result.out == ""


# -- a huge file -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def big_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("big")
    lines = ['"""A generated 100k-line module."""', ""]
    i = 0
    while len(lines) < 99_998:
        lines += [f"def func_{i}(value: int) -> int:  # padding padding padding", f"    return value + {i}"]
        i += 1
    lines.append("TOTAL = func_0(1)")
    (root / "big.py").write_text("\n".join(lines) + "\n")
    assert (root / "big.py").stat().st_size > 4_000_000
    return root


def test_huge_file_locate(big_ws: Path) -> None:
    result = run_cli("-w", str(big_ws), "--json", "locate", "big.py@L99999:C9")
    assert result.code == 0, result.err
    assert result.bundle["resolution"]["resolved"]["range"] == [99998, 8, 99998, 8]


@pytest.mark.server
def test_huge_file_def_answers_or_times_out_cleanly(big_ws: Path) -> None:
    """The server needs ~10 s for this file on CI-class hardware: with a 4 s timeout the
    answer is either right or a clean E/LS_TIMEOUT, never a traceback or a hang."""
    started = time.monotonic()
    result = run_cli_subprocess("-w", str(big_ws), "--timeout", "4", "--json", "def", "big.py@L99999:C9")
    assert time.monotonic() - started < 30
    assert "Traceback" not in result.err
    if result.code == 0:
        assert result.bundle["facts"]["definitions"] == [{"path": "big.py", "range": [2, 4, 2, 10]}]
    else:
        assert_error_bundle(result, 64, "E/LS_TIMEOUT")


# -- ambiguous and missing symbols: pasteable candidates (issue 12, item 7) ------------------------

@pytest.fixture()
def reexport(tmp_path: Path) -> Path:
    """``to_native`` defined in two modules and re-exported by a third, which has no definition."""
    root = tmp_path / "re"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "_internal.py").write_text("def to_native(s: str) -> str:\n    return s\n")
    (root / "pkg" / "compat.py").write_text("def to_native(s: bytes) -> str:\n    return s.decode()\n")
    (root / "pkg" / "utils.py").write_text("from ._internal import to_native\n\n\ndef to_bytes() -> None:\n"
                                           "    pass\n")
    return root


def test_ambiguous_lists_pasteable_candidates_on_stderr(reexport: Path) -> None:
    plain = run_cli("-w", str(reexport), "locate", "py://pkg.utils#to_native")
    assert_clean_error(plain, 4)
    line = plain.err.strip()
    assert line.startswith("lanser: E/AMBIGUOUS: ")
    listed = line.split("; candidates: ", 1)[1].split(", ")
    assert sorted(listed) == ["py://pkg._internal#to_native", "py://pkg.compat#to_native"]
    for selector in listed:  # each one pastes back and resolves
        again = run_cli("-w", str(reexport), "--json", "locate", selector)
        assert again.code == 0 and again.bundle["resolution"]["resolved"]["confidence"] == 1


def test_duplicate_definitions_list_positions(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("import sys\nif sys.platform == 'win32':\n    def f():\n        return 1\n"
                                   "else:\n    def f():\n        return 2\n")
    plain = run_cli("-w", str(tmp_path), "locate", "py://m#f")
    assert_clean_error(plain, 4)
    assert plain.err.strip().endswith("; candidates: m.py:3:9, m.py:6:9")


def test_a_name_that_exists_nowhere_is_not_found_with_did_you_mean(reexport: Path) -> None:
    plain = run_cli("-w", str(reexport), "locate", "py://pkg.utils#to_bytez")
    assert_clean_error(plain, 3)
    assert "'to_bytez' exists nowhere" in plain.err and "did you mean: py://pkg.utils#to_bytes" in plain.err
    bundle = assert_error_bundle(run_cli("-w", str(reexport), "--json", "locate", "py://pkg.utils#to_bytez"),
                                 3, "E/NOT_FOUND")
    assert bundle["error"]["details"]["candidates"][0]["label"] == "pkg.utils#to_bytes"
    ast = run_cli("-w", str(reexport), "locate", "ast://[module=pkg.utils]/[def=to_bytez]")
    assert_clean_error(ast, 3)
    assert "did you mean: py://pkg.utils#to_bytes" in ast.err
