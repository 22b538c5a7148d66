"""The SWE-agent converter's edit semantics, without a server (lanser/integrations/trajectories)."""

from __future__ import annotations

from lanser.integrations.trajectories.swe_agent import Converter, read_only, submission


def conv(files: dict[str, str], version: str = "1") -> Converter:
    return Converter(lambda rel: files[rel].encode() if rel in files else None, root="/r", version=version)


def test_windowed_range_edit_v0_rewrites_every_line_with_a_newline_v1_splices():
    c0 = conv({"a.py": "a\nb"}, "0")
    c0.convert(0, "open a.py", "")
    item = c0.convert(1, "edit 1:1\nx\nend_of_edit\n", "File updated.")
    assert item.step == {"op": "write", "path": "a.py", "content": "x\nb\n", "id": "t1"}
    c1 = conv({"a.py": "a\nb"})
    c1.convert(0, 'open "/r/a.py"', "")
    assert c1.convert(1, "edit 1:1\nx\ny\nend_of_edit", "File updated.").step["content"] == "x\ny\nb"
    # an empty replacement deletes the lines; 0.x writes "\n" for an emptied file
    c0.convert(2, "edit 1:2\nend_of_edit", "File updated.")
    assert c0.files["a.py"] == "\n"


def test_windowed_create_then_edit_and_rejected_edits():
    c = conv({}, "0")
    assert c.convert(0, "create new.py\n", "[File: /r/new.py (1 lines total)]").step["content"] == "\n"
    assert c.convert(1, "edit 1:1\nprint(1)\nend_of_edit\n", "File updated.").step["content"] == "print(1)\n"
    rejected = c.convert(2, "edit 1:1\nprint(\nend_of_edit\n",
                         "Your proposed edit has introduced new syntax error(s).\nERRORS:\n- E999")
    assert not rejected.applied and rejected.step["content"] == "print(\n"
    assert rejected.revert == {"op": "write", "path": "new.py", "content": "print(1)\n", "id": "t2.revert"}
    assert c.files["new.py"] == "print(1)\n"  # the trajectory's file did not change
    c1 = conv({})
    assert c1.convert(0, "create n.py", "[File: /r/n.py (0 lines total)]").step["content"] == ""


def test_replace_edit_searches_the_window_and_the_bool_quirk():
    text = "\n".join("target" if i in (9, 249) else f"l{i}" for i in range(300)) + "\n"
    c = conv({"f.py": text})
    c.convert(0, "open f.py 250", "")
    item = c.convert(1, "edit target T", "Text replaced.")
    new = item.step["content"].split("\n")
    assert new[9] == "target" and new[249] == "T"
    # argparse type=bool: "False" is a non-empty string, so it means replace-all
    c2 = conv({"f.py": text})
    c2.convert(0, "open f.py 250", "")
    assert c2.convert(1, "edit target T False", "Replaced 2 occurrences.").step["content"].count("T\n") == 2
    c3 = conv({"f.py": "a\n"})
    c3.convert(0, "open f.py", "")
    assert c3.convert(1, "insert 'b'", "").step["content"] == "a\nb"
    assert c3.convert(2, "insert 'z' 0", "").step["content"] == "z\na\nb"


def test_str_replace_editor_create_replace_insert_undo():
    c = conv({"m.py": "def f():\n\treturn 1\n"})
    assert c.convert(0, "str_replace_editor view /r/m.py", "") is None
    item = c.convert(1, "str_replace_editor str_replace /r/m.py --old_str 'return 1' --new_str 'return 2'",
                     "The file /r/m.py has been edited.")
    assert item.step["content"] == "def f():\n        return 2\n"  # tabs expanded, as the tool does
    assert c.convert(2, "str_replace_editor insert /r/m.py --insert_line 0 --new_str '# top'", "").step[
        "content"] == "# top\ndef f():\n        return 2\n"
    assert c.convert(3, "str_replace_editor undo_edit /r/m.py", "Last edit to /r/m.py undone").step[
        "content"] == "def f():\n        return 2\n"
    skipped = c.convert(4, "str_replace_editor str_replace /r/m.py --old_str nothing --new_str x",
                        "No replacement was performed, old_str `nothing` did not appear verbatim in /r/m.py.")
    assert skipped.skipped and "did not apply" in skipped.reason
    out = c.convert(5, "str_replace_editor create /elsewhere/x.py --file_text 'x = 1'", "File created")
    assert out.step["path"] == "/elsewhere/x.py"  # outside the repository: Lanser's jail refuses it


def test_shell_commands_read_only_or_skipped_and_rm():
    assert read_only("ls -la") and read_only("grep -n foo src/x.py | head -5") and read_only("git diff HEAD")
    assert read_only('find_file "x.py"') and read_only("cat a.py && echo done")
    for cmd in ("python x.py", "sed -i s/a/b/ f.py", "echo x > f.py", "git checkout -- f.py", "rm -rf build",
                "find . -name '*.pyc' -delete", "pip install x", "cat a | tee b"):
        assert not read_only(cmd), cmd
    c = conv({"s.py": "x = 1\n"})
    assert c.convert(0, "python s.py", "").reason.startswith("shell command")
    item = c.convert(1, "rm s.py", "")
    assert item.step["op"] == "patch" and "deleted file mode 100644" in item.step["patch"]
    assert c.files["s.py"] is None
    assert c.convert(2, "rm *.py", "").skipped


def test_submission_normalised():
    assert submission({"info": {"submission": "\r\ndiff --git a/x b/x\r\n"}}) == "diff --git a/x b/x\n"
    assert submission({"info": {}}) is None
