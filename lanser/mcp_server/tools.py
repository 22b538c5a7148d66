"""The MCP tools: thin handlers over the backend (daemon) and the reward desk.

Every tool answers with structured content validated against a published
schema (:mod:`lanser.mcp_server.schemas`: the shipped bundle and reward-record
schemas) and a short text summary (the CLI's own summary lines, from
:mod:`lanser.output`).  A failure is an MCP tool error (``isError: true``)
whose text is the CLI's one stderr line (``lanser: E/AMBIGUOUS: ...;
candidates: py://...``) and whose structured content is the error bundle
(``status: "error"`` with ``error.code``, ``error.exitCode``, ``details``), never
a traceback.  Arguments that do not match a tool's input schema are
E/BAD_INPUT errors of the same shape.

The navigation and mutation tools send the CLI's own request (command name and
arguments) to the daemon, so their bundles are the bundles ``lanser CMD
--json`` prints for the same call, byte for byte.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools.base import Tool
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, ValidationError

from .. import output
from ..errors import BadInput, InternalError, LanserError, ReplayMismatch
from . import schemas as S
from .backend import Backend
from .rewards import RewardDesk
from .settings import McpSettings

log = logging.getLogger("lanser.mcp")

SELECTORS = """\
Selectors (lines and columns 1-based; columns in code points):
  src/app.py:42:7                      cursor, as compilers and Lanser's summaries print it
  src/app.py@L42:C7                    the same cursor
  src/app.py@R(42,7->44,1)             range
  py://pkg.mod#Class.method            symbol (its definition; the role :def is the default)
  py://pkg.mod#Class.method:body       the method's body (roles :def, :sig, :body, :doc; ?overload=N)
  ast://[module=pkg.mod]/[class=C]/[def=m]/call[2]   AST path
  anchor://src/app.py#"def load_data("   content anchor (`locate` mints one that survives edits)
  any form + ?v=<the file's git blob id when the selector was made: `git hash-object FILE`, 40 hex>,
    e.g. src/app.py:42:7?v=3b18e512dba79e4c8300dd08aeb37f8e728b8dad (mapped through later edits)
  or a PositionSpec object: {"kind": "cursor", "path": "src/app.py", "line": 41, "col": 6} (0-based)
Paths are workspace-relative; a path outside the workspace is refused (E/FS_PERMISSIONS)."""

SHORT_SELECTORS = """\
SELECTOR forms: src/app.py:42:7 | src/app.py@L42:C7 (cursor, 1-based) | src/app.py@R(42,7->44,1) (range) |
py://pkg.mod#Class.method[:sig|:body|:doc] (symbol) | ast://[module=pkg.mod]/[def=f] | anchor://src/app.py#"def f("
| any + ?v=<40-hex git blob id>; see `locate` for the full syntax."""

ERRORS = """\
Errors are tool errors carrying the contract code: E/BAD_SELECTOR_SYNTAX (says the column), E/NOT_FOUND
("did you mean" candidates), E/AMBIGUOUS (ranked candidates to paste), E/FS_PERMISSIONS (outside the
workspace, denied by --allow/--deny, dirty git tree), E/APPLY_CONFLICT, E/LS_TIMEOUT ...; the structured
content is the error bundle."""

INSTRUCTIONS = f"""\
Lanser: a pinned Pyright language server on one workspace (the server's -w), shared warm by every
agent connected to it. Ask with selectors, get deterministic JSON bundles (bundleId = sha256 of the
canonical bundle); edits are previewed by default and applied atomically with `apply`, through the
server's safety envelope (jail, dirty-tree guard, --allow/--deny), and a write by one agent is seen by
every agent's next query. reward_step scores a step with the per-step process reward.

{SELECTORS}

{ERRORS}"""

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                            open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False,
                         open_world_hint=False)
SESSION_STATE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                                open_world_hint=False)

SelectorArg = Annotated[str | dict[str, Any], Field(
    description="What to ask about: a selector string (src/app.py:42:7, py://pkg.mod#Class.method, "
                "ast://..., anchor://...) or a PositionSpec object (0-based lines and columns).")]
TargetArg = Annotated[str | dict[str, Any], Field(
    description="A workspace-relative file path (src/app.py) or a selector naming a file.")]
OptTargetArg = Annotated[str | dict[str, Any] | None, Field(
    description="Omit for the whole workspace; a file path (src/app.py); or a symbol/range selector "
                "(only diagnostics overlapping what it resolves to).")]
CursorArg = Annotated[int, Field(ge=0, description="Resume a truncated list at this index (meta.cursor).")]
ApplyArg = Annotated[bool, Field(description="false (default): preview only, nothing written. true: write "
                                             "atomically through the safety envelope.")]
StrictArg = Annotated[bool, Field(description="Refuse (E/APPLY_CONFLICT) when occurrences are left unrenamed "
                                              "or the edit removes comments such as # noqa.")]
NewNameArg = Annotated[str, Field(description="The new identifier.")]
TextArg = Annotated[str, Field(description="The replacement text (re-indented to the target).")]
KindArg = Annotated[Literal["quickfix", "source.organizeImports"] | None, Field(
    description="Only actions of this kind.")]
ActionIndexArg = Annotated[int | None, Field(ge=0, description="Apply the action with this index (as listed); "
                                                               "omit to list the actions.")]
StepArg = Annotated[dict[str, Any] | str, Field(description="One step, as a line of a `lanser reward` STEPS file.")]
SessionArg = Annotated[str, Field(min_length=1, description="The reward session (trajectory) name; give each "
                                                            "agent or episode its own.")]
AggregateArg = Annotated[Literal["sum", "min"], Field(description="sum: reward-to-go; min: PURE min-form credit.")]
CloseArg = Annotated[bool, Field(description="Forget the session afterwards (its preview copy is dropped).")]
TraceArg = Annotated[str, Field(description="A trace file inside the workspace (written with --trace-file).")]
OnlyArg = Annotated[int | None, Field(ge=1, description="Replay only operation N (1-based).")]

STEP_INPUT_SCHEMA = {
    "description": (
        "One step, as a line of a `lanser reward` STEPS file (an optional `id` is echoed back):\n"
        '  {"op": "patch", "patch": "<unified diff, as git diff prints it>"}\n'
        '  {"op": "write", "path": "src/x.py", "content": "..."}\n'
        '  {"op": "rename", "selector": "py://pkg.mod#f", "newName": "g"}\n'
        '  {"op": "edit", "selector": "py://pkg.mod#f:body", "text": "return 0"}\n'
        '  {"op": "query", "cmd": "def|refs|hover|symbols|diag|locate|prepare-rename", "selector": "..."}\n'
        '  {"op": "reset"}   (preview only: back to the session\'s base)'),
    "anyOf": [{"type": "object", "required": ["op"],
               "properties": {"op": {"enum": ["query", "patch", "write", "rename", "edit", "reset"]}}},
              {"type": "string", "description": "the same object as a JSON string"}],
}


class LanserTool(Tool):
    """A tool whose arguments, when they do not match its input schema, give an E/BAD_INPUT
    error bundle (the contract's shape) instead of the SDK's bare pydantic text."""

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        try:
            return await super().run(arguments, context, convert_result)
        except ToolError as exc:
            if not isinstance(exc.__cause__, ValidationError):
                raise
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(arguments)'}: {e['msg']}"
                                 for e in exc.__cause__.errors())
            err = BadInput(f"invalid arguments for {self.name}: {problems}")
            return error_result(_error_bundle(self.name, None, {"arguments": arguments}, err))


def _error_bundle(cmd: str, selector: str | None, args: dict[str, Any], err: LanserError) -> dict[str, Any]:
    from ..engine import error_bundle

    return error_bundle(cmd, selector, args, err)


def _text(text: str) -> list[Any]:
    return [TextContent(type="text", text=text)]


def error_result(bundle: dict[str, Any]) -> CallToolResult:
    """A tool error: the CLI's one error line, the error bundle as structured content."""
    return CallToolResult(content=_text(output.error_text(bundle)), structured_content=bundle, is_error=True)


def checked(kind: str, structured: dict[str, Any], text: str, cmd: str) -> CallToolResult:
    """A success, after checking ``structured`` against the tool's published schema."""
    bad = S.problems(kind, structured)
    if bad:
        log.error("%s: structured output does not match its schema: %s", cmd, bad)
        return error_result(_error_bundle(cmd, None, {}, InternalError(
            f"internal error: the {kind} does not match its schema: {bad[0]}")))
    return CallToolResult(content=_text(text), structured_content=structured)


def bundle_result(bundle: dict[str, Any]) -> CallToolResult:
    if bundle.get("status") == "error":
        return error_result(bundle)
    lines = output.summary(bundle)
    lines[-1:-1] = output.mutation_lines(bundle)
    return checked(S.BUNDLE, bundle, "\n".join(lines), str((bundle.get("request") or {}).get("cmd")))


def record_text(record: dict[str, Any], apply: bool) -> str:
    """One reward record in a few lines: outcome, reward, error counts."""
    pr = record.get("processReward") or {}
    comp = pr.get("components") or {}
    where = "applied to the workspace" if apply else "previewed in memory: nothing written"
    head = f"step {record.get('step')} ({record.get('op')}): {record.get('status')}, {where}"
    lines = [head]
    err = record.get("error")
    if isinstance(err, dict):
        lines.append(f"error: {err.get('code')}: {err.get('message')}")
    lines.append(f"processReward r={pr.get('r')}  (D {comp.get('diag_before')} -> {comp.get('diag_after')}, "
                 f"S={comp.get('safety')}, a={comp.get('alpha_conf')})")
    diags = record.get("diagnostics") or {}
    if diags:
        lines.append(f"workspace: {diags.get('errors')} errors, {diags.get('warnings')} warnings")
    lines.append(f"bundleId {record.get('bundleId')}")
    return "\n".join(lines)


def summary_text(summary: dict[str, Any]) -> str:
    def part(name: str) -> str:
        p = summary[name]
        return f"{name}: {p['steps']} step(s), return {p['return']} ({summary['aggregate']})"

    closed = "; closed" if summary["closed"] else ""
    return f"reward session {summary['session']!r}: {part('applied')}; {part('preview')}{closed}"


def _selector(value: str | dict[str, Any] | None) -> str | None:
    """A PositionSpec object becomes its JSON text, as the CLI takes it."""
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value


async def guarded(cmd: str, selector: str | None, args: dict[str, Any],
                  make: Callable[[], Awaitable[CallToolResult]]) -> CallToolResult:
    """Run a handler; a LanserError or an internal failure becomes an error bundle (no traceback)."""
    try:
        return await make()
    except LanserError as exc:
        return error_result(_error_bundle(cmd, selector, args, exc))
    except Exception as exc:
        log.error("%s failed: %s: %s", cmd, type(exc).__name__, exc)
        return error_result(_error_bundle(cmd, selector, args, InternalError(
            f"internal error: {type(exc).__name__}: {exc}")))


def make_tools(settings: McpSettings, backend: Backend, desk: RewardDesk) -> list[Tool]:
    """The tools of one server (closures over its backend and reward desk)."""

    async def run(cmd: str, selector: str | None, args: dict[str, Any] | None = None,
                  **options: Any) -> CallToolResult:
        async def go() -> CallToolResult:
            return bundle_result(await backend.run(cmd, selector, args or {}, **options))
        return await guarded(cmd, selector, args or {}, go)

    async def locate(selector: SelectorArg) -> CallToolResult:
        return await run("locate", _selector(selector))

    async def definition(selector: SelectorArg) -> CallToolResult:
        return await run("def", _selector(selector))

    async def references(selector: SelectorArg, cursor: CursorArg = 0) -> CallToolResult:
        return await run("refs", _selector(selector), cursor=cursor)

    async def hover(selector: SelectorArg) -> CallToolResult:
        return await run("hover", _selector(selector))

    async def symbols(target: TargetArg, cursor: CursorArg = 0) -> CallToolResult:
        return await run("symbols", _selector(target), cursor=cursor)

    async def diagnostics(target: OptTargetArg = None, cursor: CursorArg = 0) -> CallToolResult:
        return await run("diag", _selector(target), cursor=cursor)

    async def prepare_rename(selector: SelectorArg) -> CallToolResult:
        return await run("prepare-rename", _selector(selector))

    async def rename(selector: SelectorArg, new_name: NewNameArg, apply: ApplyArg = False,
                     strict: StrictArg = False) -> CallToolResult:
        return await run("rename", _selector(selector), {"newName": new_name, "apply": apply, "strict": strict,
                                                        "viaGit": False})

    async def code_actions(selector: SelectorArg, kind: KindArg = None, apply: ActionIndexArg = None,
                           strict: StrictArg = False) -> CallToolResult:
        args: dict[str, Any] = {"kind": kind}  # the CLI's arguments exactly: the same bundleId
        if apply is not None:
            args["apply"] = apply
        if strict:
            args["strict"] = True
        return await run("actions", _selector(selector), args)

    async def edit_symbol(selector: SelectorArg, text: TextArg, apply: ApplyArg = False,
                          strict: StrictArg = False) -> CallToolResult:
        args: dict[str, Any] = {"text": text, "apply": apply}
        if strict:
            args["strict"] = True
        return await run("edit", _selector(selector), args)

    async def reward_step(step: StepArg, apply: ApplyArg = False, session: SessionArg = "default") -> CallToolResult:
        args = {"step": step, "apply": apply, "session": session}

        async def go() -> CallToolResult:
            parsed: Any = step
            if isinstance(step, str):
                try:
                    parsed = json.loads(step)
                except ValueError as exc:
                    raise BadInput(f"the step is not JSON: {exc}") from None
            record = await desk.step(session, parsed, apply=apply)
            return checked(S.RECORD, record, record_text(record, apply), "reward")
        return await guarded("reward", None, args, go)

    async def reward_session_summary(session: SessionArg = "default", aggregate: AggregateArg = "sum",
                                     close: CloseArg = False) -> CallToolResult:
        args = {"session": session, "aggregate": aggregate, "close": close}

        async def go() -> CallToolResult:
            summary = await desk.summary(session, aggregate, close=close)
            return checked(S.SUMMARY, summary, summary_text(summary), "reward")
        return await guarded("reward", None, args, go)

    async def replay(trace: TraceArg, only: OnlyArg = None) -> CallToolResult:
        args = {"trace": trace, "only": only}

        async def go() -> CallToolResult:
            from ..trace.replay import replay as replay_trace
            from ..workspace import Workspace

            path, _ = Workspace(settings.workspace).resolve(trace)  # the jail: traces inside the workspace
            results = await asyncio.to_thread(replay_trace, str(path), settings.workspace, only=only)
            ops = [r.to_json() for r in results]
            bad = [r for r in results if r.status == "mismatch"]
            if bad:
                raise ReplayMismatch(f"operation {bad[0].op.index}: {bad[0].reason}", details={"operations": ops})
            scratch = any(r.scratch for r in results)
            out = {"status": "identical", "operations": ops, "scratch": scratch,
                   "bundles": [b for r in results for b in r.bundles],
                   "records": [rec for r in results for rec in r.records]}
            where = " (in a scratch copy: the trace writes; the workspace was not touched)" if scratch else ""
            lines = [f"{o['n']}: {o['cmd']} {o.get('selector') or ''} -> {o['status']}".rstrip() for o in ops]
            lines.append(f"{len(results)} operations replayed, all identical{where}")
            return checked(S.REPLAY, out, "\n".join(lines), "replay")
        return await guarded("replay", None, args, go)

    specs: list[tuple[Callable[..., Any], str, ToolAnnotations, str, str, str]] = [
        (locate, "Locate a selector", READ_ONLY, S.BUNDLE,
         ("Resolve a selector to a location (path, range, selectionRange, symbolId, confidence) and mint an "
         "anchor:// selector that finds the same code again after edits. Symbol, AST and anchor selectors "
         "resolve from the files alone. Examples: {\"selector\": \"py://shop.pricing#apply_discount\"}, "
         "{\"selector\": \"py://shop.models#Cart.total:body\"}, {\"selector\": \"src/shop/service.py:7:18\"}."),
         SELECTORS),
        (definition, "Go to definition", READ_ONLY, S.BUNDLE,
         ("Where the name at the selector is defined (textDocument/definition). facts.definitions lists "
         "{path, range} (0-based); the summary prints 1-based path:line:col, which pastes back as a selector. "
         "A selector that resolves to a definition is asked at its name. Examples: "
         "{\"selector\": \"src/shop/service.py:7:18\"}, {\"selector\": \"src/shop/service.py@L7:C18\"}."),
         SELECTORS),
        (references, "Find references", READ_ONLY, S.BUNDLE,
         ("Every reference to the name at the selector, its declaration included (textDocument/references), "
         "sorted by path and range. Example: {\"selector\": \"py://shop.pricing#apply_discount\"}."),
         SHORT_SELECTORS),
        (hover, "Hover (type and docs)", READ_ONLY, S.BUNDLE,
         ("The type and documentation of the name at the selector (textDocument/hover). "
         "Example: {\"selector\": \"src/shop/service.py:14:12\"}."), SHORT_SELECTORS),
        (symbols, "Document symbols", READ_ONLY, S.BUNDLE,
         ("The symbols of a file, flattened, with qualified names you can use in py:// selectors "
         "(textDocument/documentSymbol). Example: {\"target\": \"src/shop/models.py\"}."), SHORT_SELECTORS),
        (diagnostics, "Diagnostics", READ_ONLY, S.BUNDLE,
         ("Diagnostics as pyright checks them (the project's pyright configuration honoured): the whole "
         "workspace (no target), one file (\"src/shop/broken.py\"), or only those overlapping a symbol or "
         "range (\"py://shop.broken#bad_return\"). facts.counts has errors/warnings per file."), SHORT_SELECTORS),
        (prepare_rename, "Can this be renamed?", READ_ONLY, S.BUNDLE,
         ("Ask the server whether the name at the selector can be renamed (textDocument/prepareRename); a "
         "refusal (keyword, builtin, library symbol) is E/NOT_FOUND. Writes nothing. "
         "Example: {\"selector\": \"py://shop.pricing#format_price\"}."), SHORT_SELECTORS),
        (rename, "Rename a symbol", WRITES, S.BUNDLE,
         ("Rename the symbol at the selector across the workspace (textDocument/rename). By default a "
         "preview: edits.diff, the predicted error counts and processReward, nothing written. apply=true "
         "writes every file atomically (or none) through the safety envelope; every other agent's next "
         "query sees the new name. Occurrences the server's edit misses are listed "
         "(edits.unrenamedCandidates). Example: {\"selector\": \"py://shop.pricing#format_price\", "
         "\"new_name\": \"render_price\", \"apply\": true}."), SHORT_SELECTORS),
        (code_actions, "Code actions", WRITES, S.BUNDLE,
         ("List the code actions over the selector's range (quick fixes, plus \"Organize imports\"), or apply "
         "the one with index `apply` through the safety envelope. Example: {\"selector\": "
         "\"src/shop/broken.py@R(1,1->2,1)\", \"kind\": \"source.organizeImports\"}, then {..., \"apply\": 0}."),
         SHORT_SELECTORS),
        (edit_symbol, "Replace code at a selector", WRITES, S.BUNDLE,
         ("Replace exactly what the selector resolves to (a symbol's body, signature or whole definition, a "
         "range, an anchored snippet) with `text`, re-indented to the target. Preview by default (diff, "
         "predicted errors, processReward); apply=true writes. A result that no longer parses is "
         "E/APPLY_CONFLICT. Example: {\"selector\": \"py://shop.broken#bad_return:body\", "
         "\"text\": \"return item.quantity\"}."), SHORT_SELECTORS),
        (reward_step, "Score a step (process reward)", WRITES, S.RECORD,
         ("Run one step and get its process reward record (r = 0.5*(D_prev - D) + 0.4*(2*S - 1) - 0.1*(1 - a); "
         "D = workspace error count, S = safety checks passed, a = selector confidence). apply=false "
         "(default): the step joins the session's in-memory trajectory (the workspace as it was at the "
         "session's first preview, plus its previewed steps); nothing is written. apply=true: the step is "
         "applied to the workspace through the safety envelope, D_prev being the workspace as it is now. "
         "A failed step is a record with status \"error\" and S = 0. Example: {\"step\": {\"op\": \"patch\", "
         "\"patch\": \"--- a/src/x.py\\n+++ b/src/x.py\\n@@ ...\"}, \"session\": \"agent-1\"}."),
         "Steps are the lines of `lanser reward` STEPS files (the `step` argument lists the ops); the "
         "selectors in them are the other tools' selectors.\n" + SHORT_SELECTORS),
        (reward_session_summary, "Reward session summary", SESSION_STATE, S.SUMMARY,
         ("A reward session's records, applied and previewed, with value/return under `aggregate` (sum: "
         "reward-to-go; min: min-form credit). close=true forgets the session."), ""),
        (replay, "Replay a trace", READ_ONLY, S.REPLAY,
         ("Replay a Lanser trace file (lanser --trace-file) without a server and check that every bundle and "
         "reward record is regenerated byte for byte (E/REPLAY_MISMATCH otherwise); a trace that writes is "
         "replayed in a scratch copy, never in the workspace. Example: {\"trace\": \"traces/run.jsonl\"}."), ""),
    ]
    tools: list[Tool] = []
    for fn, title, hints, kind, what, tail in specs:
        description = what + ("\n\n" + tail if tail else "") + ("\n\n" + ERRORS if kind == S.BUNDLE else "")
        tool = LanserTool.from_function(fn, name=fn.__name__, title=title, description=description,
                                        annotations=hints, structured_output=False)
        tool.fn_metadata.output_schema = S.output_schema(kind)  # published as is; checked by `checked`
        if fn is reward_step:
            tool.parameters["properties"]["step"] = dict(STEP_INPUT_SCHEMA)
        tools.append(tool)
    return tools


def build_server(settings: McpSettings, backend: Backend, desk: RewardDesk) -> MCPServer:
    from .. import __version__

    return MCPServer(name="lanser", title="Lanser", version=__version__, instructions=INSTRUCTIONS,
                     tools=make_tools(settings, backend, desk), log_level="WARNING")
