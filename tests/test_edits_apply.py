"""Atomic, journaled, reversible apply (lanser.edits.transaction) and plan building."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lanser.edits import (
    apply_plan,
    edits_section,
    plan_from_contents,
    plan_from_workspace_edit,
    plan_write,
    recover,
    transaction,
)
from lanser.errors import ApplyConflict, ContentModified, FsPermissions
from lanser.workspace import Workspace

DATA = Path(__file__).parent / "data" / "edits"


def te(sl: int, sc: int, el: int, ec: int, new: str) -> dict:
    return {"range": {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}},
            "newText": new}


def snapshot(root: Path, skip_lanser: bool = True) -> dict[str, tuple]:
    """Every entry below root: bytes, mode, link target (follows nothing)."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        if skip_lanser and ".lanser" in rel_dir.parts:
            continue
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            rel = (rel_dir / name).as_posix()
            if skip_lanser and name == ".lanser":
                continue
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                out[rel] = ("file", p.read_bytes(), stat.S_IMODE(st.st_mode))
    return out


def rename_edit(root: Path, rels: list[str], old: str, new: str, enc: str = "utf-16") -> dict:
    """A WorkspaceEdit replacing every ``old`` token in the given files (like a rename)."""
    from lanser import codec
    from lanser.workspace import decode_source
    changes = {}
    for rel in rels:
        sf = decode_source((root / rel).read_bytes(), rel)
        edits = []
        for ln, line in enumerate(sf.lines):
            start = 0
            while (i := line.find(old, start)) >= 0:
                c0, c1 = codec.from_codepoints(line, i, enc), codec.from_codepoints(line, i + len(old), enc)
                edits.append(te(ln, c0, ln, c1, new))
                start = i + len(old)
        changes[(root / rel).as_uri()] = edits
    return {"changes": changes}


@pytest.fixture()
def fixtures_ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    root.mkdir()
    for name in ("crlf.py", "bom.py", "latin1.py", "script.py"):
        shutil.copyfile(DATA / name, root / name)
    os.chmod(root / "script.py", 0o755)
    os.chmod(root / "latin1.py", 0o600)
    return Workspace(root)


def test_crlf_bom_latin1_and_exec_bit_survive_byte_for_byte(fixtures_ws: Workspace) -> None:
    root = fixtures_ws.root
    names = ["bom.py", "crlf.py", "latin1.py", "script.py"]
    before = {n: (root / n).read_bytes() for n in names}
    for enc in ("utf-16", "utf-8", "codepoint"):
        for n in names:
            (root / n).write_bytes(before[n])
        plan = plan_from_workspace_edit(fixtures_ws, rename_edit(root, names, "greet", "hello"), encoding=enc)
        result = apply_plan(fixtures_ws, plan)
        assert result.applied and result.files == tuple(names)
        for n in names:
            assert (root / n).read_bytes() == before[n].replace(b"greet", b"hello"), (enc, n)
    assert stat.S_IMODE((root / "script.py").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "latin1.py").stat().st_mode) == 0o600
    assert (root / "bom.py").read_bytes().startswith(b"\xef\xbb\xbf")
    assert not list((root / ".lanser" / "journal").iterdir())  # committed: journal gone


def test_crlf_inserted_lf_becomes_crlf(fixtures_ws: Workspace) -> None:
    root = fixtures_ws.root
    edit = {"changes": {(root / "crlf.py").as_uri(): [te(1, 4, 1, 23, "x = 'hi '\n    return x + name")]}}
    apply_plan(fixtures_ws, plan_from_workspace_edit(fixtures_ws, edit))
    assert (root / "crlf.py").read_bytes() == (
        b"def greet(name):\r\n    x = 'hi '\r\n    return x + name\r\n\r\n\r\nprint(greet('x'))\r\n")


def test_latin1_non_ascii_edit_is_encoded_with_the_declared_codec(fixtures_ws: Workspace) -> None:
    root = fixtures_ws.root
    edit = {"changes": {(root / "latin1.py").as_uri(): [te(1, 5, 1, 8, "ÉTÉ")]}}
    apply_plan(fixtures_ws, plan_from_workspace_edit(fixtures_ws, edit))
    assert (root / "latin1.py").read_bytes() == (DATA / "latin1.py").read_bytes().replace(b"\xe9t\xe9", b"\xc9T\xc9")


def three_files(tmp_path: Path) -> tuple[Workspace, dict[str, bytes], dict[str, bytes]]:
    root = tmp_path / "ws"
    for d in ("a", "b", "c"):
        (root / d).mkdir(parents=True)
        (root / d / "m.py").write_text(f"value = '{d}'\n")
    ws = Workspace(root)
    old = {f"{d}/m.py": (root / d / "m.py").read_bytes() for d in "abc"}
    new = {p: data.replace(b"value", b"renamed") for p, data in old.items()}
    return ws, old, new


def _make_unwritable(directory: Path) -> bool:
    os.chmod(directory, 0o555)
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(directory)], capture_output=True, check=False)
    try:
        (directory / ".probe").write_text("x")
    except OSError:
        return True
    (directory / ".probe").unlink()
    return False


def _make_writable(directory: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(directory)], capture_output=True, check=False)
    os.chmod(directory, 0o755)


def test_fault_read_only_directory_mid_plan_rolls_back(tmp_path: Path) -> None:
    ws, old, new = three_files(tmp_path)
    outside = snapshot(tmp_path, skip_lanser=True)
    plan = plan_from_contents(ws, new)
    if not _make_unwritable(ws.root / "c"):
        _make_writable(ws.root / "c")
        pytest.skip("cannot make a directory unwritable here")
    try:
        with pytest.raises(FsPermissions) as info:
            apply_plan(ws, plan)
    finally:
        _make_writable(ws.root / "c")
    err = info.value
    assert err.exit_code == 71
    assert err.details["file"] == "c/m.py" and err.details["rollbackComplete"] is True
    assert err.details["rolledBack"] == ["a/m.py", "b/m.py"]
    assert "restored" in err.message
    assert snapshot(tmp_path, skip_lanser=True) == outside
    assert not list((ws.root / ".lanser" / "journal").iterdir())


def test_fault_injected_replace_failure_rolls_back(tmp_path: Path, monkeypatch) -> None:
    ws, old, new = three_files(tmp_path)
    (ws.root / "c" / "m.py").chmod(0o751)
    before = snapshot(ws.root)
    plan = plan_from_contents(ws, {**new, "d/new.py": b"x = 1\n", "a/m.py": None})
    calls = {"n": 0}
    real_replace = transaction._replace

    def failing(src: Path, dst: Path) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(transaction, "_replace", failing)
    with pytest.raises(ApplyConflict) as info:
        apply_plan(ws, plan)
    assert info.value.details["errno"] == "ENOSPC"
    assert info.value.details["rollbackComplete"] is True
    assert snapshot(ws.root) == before  # the deleted file is back, the new dir is gone, modes kept


CHILD = textwrap.dedent("""
    import sys
    from lanser.edits import apply_plan, plan_from_contents
    from lanser.workspace import Workspace
    ws = Workspace(sys.argv[1])
    new = {p: (ws.root / p).read_bytes().replace(b"value", b"renamed") for p in ("a/m.py", "b/m.py", "c/m.py")}
    new["d/created.py"] = b"created = 1\\n"
    apply_plan(ws, plan_from_contents(ws, new))
    print("finished")
""")


@pytest.mark.parametrize("kill_after", [1, 2, 3, 4])
def test_sigkill_between_replacements_then_recover(tmp_path: Path, kill_after: int) -> None:
    ws, old, new = three_files(tmp_path)
    before = snapshot(ws.root)
    marker = tmp_path / "marker"
    env = dict(os.environ, LANSER_TEST_PAUSE_AFTER_REPLACE=str(marker), LANSER_TEST_PAUSE_AT=str(kill_after))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(ws.root)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if marker.exists() and len(marker.read_text().splitlines()) >= kill_after:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    else:
        proc.kill()
        pytest.fail("the child never reached the pause hook")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # every file is entirely old or entirely new; exactly the first ones are new
    states = []
    for p in ("a/m.py", "b/m.py", "c/m.py"):
        data = (ws.root / p).read_bytes()
        assert data in (old[p], new[p])
        states.append("new" if data == new[p] else "old")
    order = sorted(["a/m.py", "b/m.py", "c/m.py", "d/created.py"])
    replaced = [ln.split()[1] for ln in marker.read_text().splitlines()]
    assert replaced == order[:kill_after]
    assert (ws.root / "d" / "created.py").exists() is (kill_after == 4)  # d/ sorts last
    journal_dir = ws.root / ".lanser" / "journal"
    assert len(list(journal_dir.glob("*.json"))) == 1

    reports = recover(ws)
    assert len(reports) == 1
    report = reports[0]
    assert report["rolledBack"] is True
    by_path = {f["path"]: f["state"] for f in report["files"]}
    assert by_path["d/created.py"] == ("restored" if kill_after == 4 else "old")
    for p, st in zip(("a/m.py", "b/m.py", "c/m.py"), states):
        assert by_path[p] == ("restored" if st == "new" else "old")
    assert "rolled back" in report["message"]
    assert snapshot(ws.root) == before  # all old again, created dir removed
    assert recover(ws) == []  # honest second run: nothing left
    assert not list(journal_dir.iterdir())


def test_recover_leaves_foreign_content_alone(tmp_path: Path) -> None:
    ws, old, new = three_files(tmp_path)
    plan = plan_from_contents(ws, new)
    journal = transaction._journal_for(ws, plan, "tx1")
    jdir = ws.root / ".lanser" / "journal"
    (jdir / "tx1").mkdir(parents=True)
    for e, c in zip(journal["entries"], plan.changes):
        (jdir / "tx1" / f"{e['n']}.old").write_bytes(c.before)
    (jdir / "tx1.json").write_text(json.dumps(journal))
    (ws.root / "a" / "m.py").write_bytes(new["a/m.py"])
    (ws.root / "b" / "m.py").write_bytes(b"edited by hand\n")
    (report,) = recover(ws)
    assert {f["path"]: f["state"] for f in report["files"]} == {
        "a/m.py": "restored", "b/m.py": "foreign", "c/m.py": "old"}
    assert (ws.root / "a" / "m.py").read_bytes() == old["a/m.py"]
    assert (ws.root / "b" / "m.py").read_bytes() == b"edited by hand\n"
    assert (jdir / "tx1.json.kept").exists() and (jdir / "tx1" / "1.old").read_bytes() == old["b/m.py"]
    assert recover(ws) == []


def test_recover_without_lanser_dir_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text("x = 1\n")
    assert recover(Workspace(tmp_path)) == []
    assert not (tmp_path / ".lanser").exists()


def test_jail_symlink_dotdot_and_file_uri_outside(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.py").write_text("secret = 1\n")
    (root / "inside.py").write_text("x = 1\n")
    (root / "link.py").symlink_to(outside / "secret.py")
    (root / "linkdir").symlink_to(outside)
    ws = Workspace(root)
    before = snapshot(tmp_path, skip_lanser=False)
    attempts = [
        {"changes": {(root / "link.py").as_uri(): [te(0, 0, 0, 6, "pwned")]}},
        {"changes": {(root / "linkdir" / "secret.py").as_uri(): [te(0, 0, 0, 6, "pwned")]}},
        {"changes": {"file://" + str(root) + "/../outside/secret.py": [te(0, 0, 0, 6, "pwned")]}},
        {"changes": {(outside / "secret.py").as_uri(): [te(0, 0, 0, 6, "pwned")]}},
        {"documentChanges": [{"kind": "create", "uri": (root / "linkdir" / "new.py").as_uri()}]},
        {"documentChanges": [{"kind": "rename", "oldUri": (root / "inside.py").as_uri(),
                              "newUri": (outside / "moved.py").as_uri()}]},
        {"changes": {(root / "inside.py").as_uri(): [te(0, 0, 0, 1, "y")],
                     (outside / "secret.py").as_uri(): [te(0, 0, 0, 6, "pwned")]}},
    ]
    for edit in attempts:
        with pytest.raises(FsPermissions):
            plan_from_workspace_edit(ws, edit)
    for path in ("../outside/secret.py", str(outside / "secret.py"), "linkdir/x.py"):
        with pytest.raises(FsPermissions):
            plan_write(ws, path, "pwned = 1\n")
    assert snapshot(tmp_path, skip_lanser=False) == before


def test_jail_rechecked_at_apply_time(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    outside = tmp_path / "outside"
    (root / "pkg").mkdir(parents=True)
    outside.mkdir()
    (root / "pkg" / "a.py").write_text("a = 1\n")
    (outside / "a.py").write_text("a = 1\n")
    ws = Workspace(root)
    plan = plan_from_contents(ws, {"pkg/a.py": b"a = 2\n"})
    shutil.rmtree(root / "pkg")
    (root / "pkg").symlink_to(outside)  # swapped for a link out of the jail after planning
    before = snapshot(tmp_path, skip_lanser=False)
    with pytest.raises(FsPermissions):
        apply_plan(ws, plan)
    after = snapshot(tmp_path, skip_lanser=False)
    assert {k: v for k, v in after.items() if not k.startswith("ws/.lanser")} == before


def test_deny_and_allow_globs_write_nothing(tmp_path: Path) -> None:
    ws, old, new = three_files(tmp_path)
    before = snapshot(ws.root)
    plan = plan_from_contents(ws, new)
    with pytest.raises(FsPermissions) as info:
        apply_plan(ws, plan, deny=["c/*"])
    assert info.value.details["paths"] == ["c/m.py"]
    with pytest.raises(FsPermissions):
        apply_plan(ws, plan, allow=["a/*", "b/*"])
    with pytest.raises(FsPermissions):
        apply_plan(ws, plan, allow=["*.py"], deny=["b/"])
    assert snapshot(ws.root) == before
    assert apply_plan(ws, plan, allow=["*.py"]).applied


def test_stale_content_is_content_modified(tmp_path: Path) -> None:
    ws, old, new = three_files(tmp_path)
    plan = plan_from_contents(ws, new)
    (ws.root / "b" / "m.py").write_text("value = 'changed'\n")
    before = snapshot(ws.root)
    with pytest.raises(ContentModified) as info:
        apply_plan(ws, plan)
    assert info.value.exit_code == 74
    assert snapshot(ws.root) == before


def test_overlapping_and_syntax_breaking_edits_are_refused(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("def f():\n    return 1\n")
    ws = Workspace(tmp_path)
    uri = (tmp_path / "m.py").as_uri()
    with pytest.raises(ApplyConflict) as info:
        plan_from_workspace_edit(ws, {"changes": {uri: [te(0, 0, 0, 5, "x"), te(0, 3, 0, 7, "y")]}})
    assert info.value.details["reason"] == "overlap"
    plan = plan_from_workspace_edit(ws, {"changes": {uri: [te(0, 5, 0, 7, "(:")]}})
    with pytest.raises(ApplyConflict) as info:
        apply_plan(ws, plan)
    assert info.value.details["reason"] == "syntax"
    assert (tmp_path / "m.py").read_text() == "def f():\n    return 1\n"


def test_noop_plan_is_not_success(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("x = 1\n")
    ws = Workspace(tmp_path)
    plan = plan_from_workspace_edit(ws, {"changes": {(tmp_path / "m.py").as_uri(): [te(0, 0, 0, 1, "x")]}})
    assert plan.is_noop
    result = apply_plan(ws, plan)
    assert result.applied is False and "nothing" in result.message
    section = edits_section(plan, result)
    assert section["applied"] is False and section["files"] == [] and section["diff"] == ""
    assert section["workspaceEdit"]["changes"]


def test_resource_operations(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "old.py").write_text("def f():\n    return 1\n")
    (tmp_path / "pkg" / "old.py").chmod(0o755)
    (tmp_path / "junk.py").write_text("junk = 1\n")
    ws = Workspace(tmp_path)
    u = lambda rel: (tmp_path / rel).as_uri()  # noqa: E731
    edit = {"documentChanges": [
        {"kind": "rename", "oldUri": u("pkg/old.py"), "newUri": u("pkg/sub/new.py")},
        {"textDocument": {"uri": u("pkg/sub/new.py"), "version": 3}, "edits": [te(0, 4, 0, 5, "g")]},
        {"kind": "create", "uri": u("pkg/sub/__init__.py")},
        {"kind": "delete", "uri": u("junk.py")},
        {"kind": "delete", "uri": u("missing.py"), "options": {"ignoreIfNotExists": True}},
    ]}
    plan = plan_from_workspace_edit(ws, edit, label="rename f")
    files = plan.to_json()["files"]
    assert [(f["path"], f["action"]) for f in files] == [
        ("junk.py", "delete"), ("pkg/old.py", "delete"), ("pkg/sub/__init__.py", "create"),
        ("pkg/sub/new.py", "create")]
    assert files[3]["renamedFrom"] == "pkg/old.py"
    result = apply_plan(ws, plan)
    assert result.applied
    assert (tmp_path / "pkg/sub/new.py").read_text() == "def g():\n    return 1\n"
    assert stat.S_IMODE((tmp_path / "pkg/sub/new.py").stat().st_mode) == 0o755
    assert (tmp_path / "pkg/sub/__init__.py").read_bytes() == b""
    assert not (tmp_path / "pkg/old.py").exists() and not (tmp_path / "junk.py").exists()
    with pytest.raises(ApplyConflict):
        plan_from_workspace_edit(ws, {"documentChanges": [{"kind": "create", "uri": u("pkg/sub/new.py")}]})


def test_plan_write_creates_and_overwrites(tmp_path: Path) -> None:
    (tmp_path / "bom.py").write_bytes(b"\xef\xbb\xbfx = 1\n")
    ws = Workspace(tmp_path)
    apply_plan(ws, plan_write(ws, "src/new.py", "# -*- coding: latin-1 -*-\ns = 'é'\n"))
    assert (tmp_path / "src/new.py").read_bytes() == b"# -*- coding: latin-1 -*-\ns = '\xe9'\n"
    apply_plan(ws, plan_write(ws, "bom.py", "x = 2\n"))
    assert (tmp_path / "bom.py").read_bytes() == b"\xef\xbb\xbfx = 2\n"
    with pytest.raises(FsPermissions):
        plan_write(ws, ".git/config", "x")


def test_lanser_dir_symlinked_outside_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "ws", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "a.py").write_text("a = 1\n")
    (root / ".lanser").symlink_to(outside)
    ws = Workspace(root)
    plan = plan_from_contents(ws, {"a.py": b"a = 2\n"})
    with pytest.raises(FsPermissions):
        apply_plan(ws, plan)
    assert list(outside.iterdir()) == []
    assert (root / "a.py").read_text() == "a = 1\n"


def test_result_json_shape(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("a = 1\n")
    ws = Workspace(tmp_path)
    plan = plan_from_contents(ws, {"a.py": b"a = 2\n"})
    result = apply_plan(ws, plan)
    section = edits_section(plan, result)
    assert section == {
        "workspaceEdit": None,
        "files": [{"path": "a.py", "action": "modify",
                   "before": plan.changes[0].before_id,
                   "after": plan.changes[0].after_id}],
        "diff": plan.diff(),
        "applied": True,
        "result": {"applied": True, "message": "applied: 1 file(s) written", "files": ["a.py"],
                   "git": {"git": False}, "via": "lanser"},
    }


def test_refused_edit_creates_no_lanser_dir(tmp_path: Path) -> None:
    """Refusals (globs, stale content, broken syntax) leave the workspace exactly as it was,
    without even the journal directory; the first accepted apply creates it."""
    ws, old, new = three_files(tmp_path)
    plan = plan_from_contents(ws, new)
    before = snapshot(ws.root, skip_lanser=False)
    with pytest.raises(FsPermissions):
        apply_plan(ws, plan, deny=["c/*"])
    broken = plan_from_contents(ws, {**new, "a/m.py": b"def (:\n"})
    with pytest.raises(ApplyConflict):
        apply_plan(ws, broken)
    assert snapshot(ws.root, skip_lanser=False) == before
    assert not (ws.root / ".lanser").exists()
    assert apply_plan(ws, plan).applied
    assert (ws.root / ".lanser" / ".gitignore").exists()


def test_an_apply_keeps_the_replaced_content_for_stale_selectors(tmp_path: Path) -> None:
    """The snapshot store is written where the contract needs it (issue 13): the content an
    apply replaced is kept under .lanser/snapshots/<blob id>, so a ``?v=`` selector made
    against it resolves when git has no blob for it (here: no repository at all)."""
    import asyncio

    from lanser.engine import Engine, Options
    from lanser.selectors.versions import old_text_for
    from lanser.workspace import blob_id

    (tmp_path / "m.py").write_text("def f():\n    return 1\n\n\nx = f()\n", encoding="utf-8")
    ws = Workspace(tmp_path)
    old = (tmp_path / "m.py").read_bytes()
    assert old_text_for(ws, "m.py", blob_id(old)) is None  # nothing keeps it yet
    result = apply_plan(ws, plan_from_contents(ws, {"m.py": b"# header\n" + old}))
    assert result.applied
    assert (tmp_path / ".lanser" / "snapshots" / blob_id(old)).read_bytes() == old
    assert old_text_for(ws, "m.py", blob_id(old)) == old.decode()

    async def locate() -> dict:
        async with Engine(Options(workspace=str(tmp_path))) as engine:
            return await engine.run("locate", f"m.py@L5:C5?v={blob_id(old)}")

    bundle = asyncio.run(locate())
    assert bundle["status"] == "ok", bundle["error"]
    assert bundle["resolution"]["resolved"]["range"][:2] == [5, 4]  # moved down by the new header line
