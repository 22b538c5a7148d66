"""Re-indenting replacement text for ``lanser edit`` (pure)."""

from __future__ import annotations

import textwrap


def indentation_of(line: str) -> str:
    """The leading whitespace of ``line``."""
    return line[: len(line) - len(line.lstrip(" \t"))]


def reindent(text: str, target_indent: str, *, newline: str = "\n", first_line: bool = True) -> str:
    """Dedent ``text`` (``textwrap.dedent``) and prefix every non-empty line with
    ``target_indent``; whitespace-only lines become empty.  Lines are joined
    with ``newline`` (the file's); a final newline is kept if ``text`` had one.
    With ``first_line=False`` the first line is not indented (it continues a
    line that already carries the indentation)."""
    body = text.replace("\r\n", "\n")
    trailing = body.endswith("\n")
    lines = textwrap.dedent(body).split("\n")
    if trailing:
        lines = lines[:-1]
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            out.append("")
        elif i == 0 and not first_line:
            out.append(line)
        else:
            out.append(target_indent + line)
    return newline.join(out) + (newline if trailing else "")
