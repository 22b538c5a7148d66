"""All of stdout and stderr goes through here: bundles, summaries, reports, the one-line
error, notes and the progress bar.

``--json`` prints the bundle as RFC 8785 canonical JSON, one line, so two runs
give byte-identical output; without it a short human summary is printed.  The
streams are looked up at each call (``sys.stdout``/``sys.stderr``), so a caller
that redirects them (the tests, an embedding program) gets everything.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Sequence, TextIO

from .bundles.canonical import canonical_bytes


def json_line(obj: Any) -> str:
    return canonical_bytes(obj).decode("utf-8")


def emit_json(obj: Any, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    out.write(json_line(obj) + "\n")
    out.flush()


def emit_lines(lines: Sequence[str], stream: TextIO | None = None) -> None:
    """Lines of a human report on stdout (or ``stream``)."""
    out = stream or sys.stdout
    for line in lines:
        out.write(line + "\n")
    out.flush()


def emit_err_lines(lines: Sequence[str]) -> None:
    """Lines of a human report that belong on stderr (not an error line: see :func:`error`)."""
    emit_lines(lines, sys.stderr)


def candidate_selectors(candidates: list[dict[str, Any]]) -> list[str]:
    """Selectors a user can paste for ranked candidates: ``py://module#Qual`` for a
    definition (its label), else ``path:line:col`` (1-based) of its name or match, else the
    path.  Definitions sharing one label (``if``/``else`` variants) get ``path:line:col``."""
    labels = [c.get("label") if "s_ast" in (c.get("features") or {}) else None for c in candidates]
    out = []
    for c, label in zip(candidates, labels):
        rng = c.get("selectionRange") or c.get("range")
        if isinstance(label, str) and labels.count(label) == 1:
            out.append(f"py://{label}")
        elif isinstance(rng, list) and len(rng) == 4:
            out.append(f"{c.get('path')}:{rng[0] + 1}:{rng[1] + 1}")
        else:
            out.append(str(c.get("path")))
    return out


def error_text(bundle: dict[str, Any]) -> str:
    """The one stderr line of an error bundle; E/AMBIGUOUS lists its top candidates as
    selectors to paste (``candidates: A, B``)."""
    err = bundle.get("error") or {}
    text = f"lanser: {err.get('code')}: {err.get('message')}"
    cands = ((bundle.get("resolution") or {}).get("disambiguation")) or []
    if err.get("code") == "E/AMBIGUOUS" and cands:
        text += f"; candidates: {', '.join(candidate_selectors(cands))}"
    return text


def error_line(bundle: dict[str, Any], stream: TextIO | None = None) -> None:
    (stream or sys.stderr).write(error_text(bundle) + "\n")


def error(exc: Any, stream: TextIO | None = None) -> None:
    """The one stderr line of a LanserError raised outside a bundle: ``lanser: CODE: message``."""
    (stream or sys.stderr).write(f"lanser: {exc.code}: {exc.message}\n")


def note(text: str, stream: TextIO | None = None) -> None:
    """A line on stderr that is not an error (``lanser: ...``)."""
    out = stream or sys.stderr
    out.write(f"lanser: {text}\n")
    out.flush()


def _loc(item: dict[str, Any]) -> str:
    r = item.get("range") or [0, 0, 0, 0]
    return f"{item.get('path')}:{r[0] + 1}:{r[1] + 1}"


def _counts(diagnostics: list[dict[str, Any]]) -> dict[str, int]:
    """Counts of the listed diagnostics (a bundle that lists some without ``counts``:
    ``actions`` lists the diagnostics in its range)."""
    out = {"errors": 0, "warnings": 0, "informations": 0}
    for d in diagnostics:
        key = {"error": "errors", "warning": "warnings", "information": "informations"}.get(d.get("severity", ""))
        if key:
            out[key] += 1
    return out


def summary(bundle: dict[str, Any]) -> list[str]:
    """A few human lines per command (1-based line:col, in server units)."""
    facts = bundle.get("facts") or {}
    res = (bundle.get("resolution") or {}).get("resolved")
    lines: list[str] = []
    cmd = (bundle.get("request") or {}).get("cmd")
    if res and cmd == "locate":
        sym = f"  symbolId={res['symbolId']}" if res.get("symbolId") else ""
        lines.append(f"{_loc(res)}  confidence={res.get('confidence')}{sym}")
        if bundle["resolution"].get("anchor"):
            lines.append(f"anchor: {bundle['resolution']['anchor']}")
    for key in ("definitions", "references"):
        for item in facts.get(key) or []:
            lines.append(_loc(item))
        if key in facts and not facts[key]:
            lines.append(f"no {key}")
    if "hover" in facts:
        lines.append((facts["hover"] or {}).get("contents", "(no hover)"))
    for w in facts.get("warnings") or []:
        lines.append(f"warning: {w.get('message')}")
    for item in facts.get("symbols") or []:
        lines.append(f"{_loc(item)}  {item['kind']}  {item['qualname']}")
    if "diagnostics" in facts:
        for d in facts["diagnostics"]:
            lines.append(f"{_loc(d)}: {d['severity']}: {d['message'].splitlines()[0]}"
                         + (f" ({d['code']})" if d.get("code") else ""))
        c = facts.get("counts") or _counts(facts["diagnostics"])
        lines.append(f"{c.get('errors', 0)} errors, {c.get('warnings', 0)} warnings, "
                     f"{c.get('informations', 0)} informations")
    edits = bundle.get("edits") or {}
    if edits.get("diff"):
        lines.append(edits["diff"].rstrip("\n"))
    if edits:
        msg = ((edits.get("result") or {}).get("message")
               or ("applied" if edits.get("applied") else "dry run: nothing written"))
        lines.append(msg)
    lines.append(f"bundleId {bundle.get('bundleId')}")
    return lines


def emit_summary(bundle: dict[str, Any], stream: TextIO | None = None, *, extra: Sequence[str] = ()) -> None:
    """The summary lines; ``extra`` (a command's own lines) go before the final bundleId line."""
    lines = summary(bundle)
    lines[-1:-1] = extra
    emit_lines(lines, stream)


# -- progress ------------------------------------------------------------------------

PROGRESS_WIDTH = 24


class Progress:
    """``[#####-----] 5/12  3.1 steps/s  errors=2`` on stderr, redrawn in place with ``\\r`` and
    finished with a newline; drawn only when stderr is a terminal (a log or a pipe never sees
    it), a no-op otherwise."""

    def __init__(self, total: int | None, *, stream: TextIO | None = None, enabled: bool | None = None,
                 label: str = "steps") -> None:
        self.stream = stream or sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.total = total
        self.label = label
        self.done = 0
        self.started = time.monotonic()
        self._drawn = False

    def line(self, errors: int | None = None) -> str:
        """The bar's text (pure apart from the clock; tested directly)."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        if self.total:
            filled = min(PROGRESS_WIDTH, PROGRESS_WIDTH * self.done // self.total)
            head = f"[{'#' * filled}{'-' * (PROGRESS_WIDTH - filled)}] {self.done}/{self.total}"
        else:
            head = f"{self.done}"
        tail = f"  {rate:.1f} {self.label}/s"
        if errors is not None:
            tail += f"  errors={errors}"
        return head + tail

    def update(self, done: int | None = None, *, errors: int | None = None) -> None:
        self.done = self.done + 1 if done is None else done
        if not self.enabled:
            return
        self.stream.write("\r" + self.line(errors) + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def mutation_lines(bundle: dict[str, Any]) -> list[str]:
    """The lines a mutation's summary adds before its ``bundleId`` line: the rename
    placeholder, the listed code actions, unrenamed candidates, removed comments, the
    predicted or observed error counts and the processReward (the mutating
    commands' human output and ``lanser mcp``)."""
    facts = bundle.get("facts") or {}
    edits = bundle.get("edits") or {}
    lines: list[str] = []
    prep = facts.get("prepareRename")
    if prep and (bundle.get("request") or {}).get("cmd") == "prepare-rename":
        r = prep["range"]
        lines.append(f"{prep['path']}:{r[0] + 1}:{r[1] + 1}  renameable: {prep['placeholder']!r}")
    for a in facts.get("actions") or []:
        how = "edit" if a["hasEdit"] else f"command {a['command']}" if a["command"] else "resolve"
        lines.append(f"[{a['index']}] {a['kind'] or '-'}: {a['title']} ({how})")
    if "actions" in facts and not facts["actions"]:
        lines.append("no code actions here")
    for c in edits.get("unrenamedCandidates") or []:
        r = c["range"]
        lines.append(f"unrenamed candidate ({c['kind']}): {c['path']}:{r[0] + 1}:{r[1] + 1}")
    for c in edits.get("removedComments") or []:
        r = c["range"]
        what = f"pragma {c['pragma']!r}" if c.get("pragma") else "comment"
        lines.append(f"WARNING: removes {what}: {c['path']}:{r[0] + 1}:{r[1] + 1}  {c['text']}")
    for key in ("predictedDiagnostics", "observedDiagnostics"):
        if key in facts:
            b, a = facts[key]["before"], facts[key]["after"]
            lines.append(f"{'predicted' if key[0] == 'p' else 'observed'} errors: {b['errors']} -> {a['errors']}")
    if bundle.get("processReward"):
        lines.append(f"processReward r={bundle['processReward']['r']}")
    return lines
